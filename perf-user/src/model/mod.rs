//! What the tracer knows, as plain owned data: cumulative samples from the kernel, windows between
//! them, latency summaries (percentiles in one walk) and the attribution of each function. No I/O.
//!
//! Pure model: no I/O, no aya, no perf-ebpf-common; `bpf::collect` builds these types and
//! everything after it (app, tui, output) reads them.

mod attribution;
mod heat;
mod hist;
mod names;
mod sample;
mod session;
mod slow;
mod span;
mod steal;
mod tree;

pub use attribution::*;
pub use heat::*;
pub use hist::*;
pub use names::*;
pub use sample::*;
pub use session::*;
pub use slow::*;
pub use span::*;
pub use steal::*;
pub use tree::*;

#[cfg(test)]
mod tests;
