//! Everything that touches the kernel's BPF interfaces: loading the embedded object, attaching
//! probes, calibrating their cost, and reading the maps back as owned model types (`collect`).
//!
//! This is the only layer that imports aya or perf-ebpf-common. It may use `target` (symbols to
//! attach to) and `model` (the types `collect` produces); it never imports `app`, `tui` or `output`.

pub mod btf;
pub mod calibrate;
pub mod collect;
pub mod kfunc;
pub mod loader;
pub mod probe_site;
pub mod spans;
pub mod stacks;
pub mod sys;
pub mod uprobe_multi;
