//! What a run leaves behind or serves: the report model and its serialisers (JSON, text, CSV,
//! Markdown), the Prometheus endpoint, flame graphs, `diff`, and bpftrace's output read as a report.
//!
//! Built from `model` types only: output never imports `bpf`, aya or perf-ebpf-common, and never
//! touches a map.

pub mod bpftrace_import;
pub mod diff;
pub mod escape;
pub mod export;
pub mod files;
pub mod flame;
pub mod prometheus;
pub mod report;
pub mod trace;
