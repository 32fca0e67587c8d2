//! What the terminal UI draws, as widgets that borrow the app's derived data. Rendering does no
//! I/O and changes nothing: percentiles and rows were computed on the last tick (`App::rebuild`).
//! One file per widget; each borrows `App` and draws into a `Buffer`.

mod breakdown;
mod calls;
mod chrome;
mod columns;
mod detail;
mod format;
mod functions;
mod heatmap;
mod histogram;
mod parts;
mod screen;
mod spans;
mod threads;
mod tree;
mod trend;

pub(crate) use breakdown::*;
pub(crate) use calls::*;
pub(crate) use chrome::*;
pub(crate) use columns::*;
pub(crate) use detail::*;
pub(crate) use format::*;
pub(crate) use functions::*;
pub(crate) use heatmap::*;
pub(crate) use histogram::*;
pub(crate) use parts::*;
pub(crate) use spans::*;
pub(crate) use threads::*;
pub(crate) use tree::*;
pub(crate) use trend::*;
