//! What perf-user knows about the process it traces, read from its files and `/proc`: ELF
//! symbols and their demangled names, syscall names by number, and the one `/proc` reader.
//!
//! Pure readers: no BPF, no terminal, no model. Every other layer may use them.

pub mod proc;
pub mod symbols;
pub mod syscalls;
