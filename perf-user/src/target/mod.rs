//! What perf-user knows about the process it traces, read from its files and `/proc`: ELF
//! symbols and their demangled names, syscall names by number, the one `/proc` reader, and the
//! libraries a command will load (the dynamic loader's search, with `ld_cache`, laid out as
//! `loader_layout` asks the command's own loader).
//!
//! Readers: no BPF, no terminal, no model (`loader_layout` runs the loader in list mode, nothing
//! else runs anything). Every other layer may use them.

pub mod ld_cache;
pub mod loader_layout;
pub mod needed;
pub mod proc;
pub mod symbols;
pub mod syscalls;
