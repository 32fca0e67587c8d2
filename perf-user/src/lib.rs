//! perf-user as a library: the pieces the `perf-user` binary wires together, also used by its
//! benchmarks and fuzz targets. Data flows one way: cli → symbols → loader → collect → model/app →
//! tui/report/export.

pub mod app;
pub mod bpftrace_import;
pub mod btf;
pub mod calibrate;
pub mod cli;
pub mod collect;
pub mod diff;
pub mod export;
pub mod flame;
pub mod kfunc;
pub mod loader;
pub mod model;
pub mod probe_site;
pub mod prometheus;
pub mod report;
pub mod symbols;
pub mod syscalls;
pub mod tui;
pub mod units;
pub mod uprobe_multi;
