//! perf-user as a library: the pieces the `perf-user` binary wires together, also used by its
//! benchmarks and fuzz targets. Data flows one way (docs/ARCHITECTURE.md):
//! cli → target (symbols) → bpf (load, attach, collect) → model → app → tui / output.

pub mod app;
pub mod attach;
pub mod bpf;
pub mod cli;
pub mod commands;
pub mod model;
pub mod output;
pub mod target;
pub mod tui;
pub mod units;
