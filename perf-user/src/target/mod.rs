//! What perf-user knows about the process it traces, read from its files and `/proc`: ELF
//! symbols and their demangled names, syscall names by number, the one `/proc` reader, and the
//! libraries a command will load (the dynamic loader's search, with `ld_cache`).
//!
//! Pure readers: no BPF, no terminal, no model. Every other layer may use them.

pub mod ld_cache;
pub mod needed;
pub mod proc;
pub mod symbols;
pub mod syscalls;
