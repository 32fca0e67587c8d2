//! target-app: the process perf-ebpf traces in its demos and tests, and the
//! ground truth they compare against.
//!
//! A small trading pipeline (feed → book → signal → risk → matching →
//! gateway → journal) whose stage functions are `#[inline(never)]` with
//! stable paths, so they can be probed by name (`target_app::book::*`), and
//! which times every stage call itself and writes the result as JSON.

pub mod app;
pub mod book;
pub mod cli;
pub mod engine;
pub mod feed;
pub mod gateway;
pub mod inject;
pub mod journal;
pub mod latency;
pub mod matching;
pub mod pipeline;
pub mod risk;
pub mod rng;
pub mod signal;
pub mod stage;
pub mod tick;
pub mod truth;
pub mod types;
