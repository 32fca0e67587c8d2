//! What perf-user knows about the process it traces, read from its files and `/proc`: ELF
//! symbols and their demangled names, and syscall names by number.
//!
//! Pure readers: no BPF, no terminal, no model. Every other layer may use them.

pub mod symbols;
pub mod syscalls;
