//! What loading and attaching can fail with: one variant per step, each keeping the kernel's or
//! aya's error as its source so the errno is read with `raw_os_error()`, never from text.

use std::path::PathBuf;

use crate::bpf::{btf, uprobe_multi};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("permission denied loading BPF programs: run as root or with CAP_BPF and CAP_PERFMON")]
    NotPermitted,
    #[error("this kernel has no uprobe support (no uprobe_multi links, no {0}/bus/event_source/devices/uprobe)")]
    NoUprobes(String),
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    #[error("resolving the eBPF object's kernel functions: {0}")]
    Kfunc(String),
    #[error("loading the eBPF object")]
    Object(#[source] aya::EbpfError),
    #[error("no program {name} in the eBPF object")]
    MissingProgram { name: String },
    #[error("program {name}")]
    Program {
        name: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("no map {name} in the eBPF object")]
    MissingMap { name: String },
    #[error("map {name}")]
    Map {
        name: String,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("reading the kernel's BTF")]
    KernelBtf(#[source] aya::BtfError),
    #[error("waiting for the running BPF programs to finish")]
    Wait(#[from] crate::bpf::sys::SyscallError),
    #[error("counting possible CPUs ({what})")]
    Cpus {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} needs {needs}")]
    Unsupported { what: &'static str, needs: String },
    /// Preparing the object for `uprobe_multi` failed; kept as text because it is cached and
    /// reported only if a multi attach is tried.
    #[error("uprobe_multi: {0}")]
    UprobeMultiSetup(String),
    #[error("uprobe_multi")]
    UprobeMulti(#[source] uprobe_multi::UprobeMultiError),
    #[error("attaching {what}")]
    Attach {
        what: String,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("attaching {what}")]
    AttachLink {
        what: String,
        #[source]
        source: uprobe_multi::UprobeMultiError,
    },
    #[error("interrupted (SIGINT/SIGTERM) while attaching; nothing is left attached")]
    Interrupted,
    #[error("every function was refused by the kernel ({count}); first: {first}")]
    AllRefused { count: usize, first: String },
    #[error("{count} functions requested but at most {max} can be traced (raise --max-funcs)")]
    TooManyFunctions { count: usize, max: usize },
    #[error("cannot open {path} to probe it")]
    OpenObject { path: PathBuf, source: std::io::Error },
}

impl LoadError {
    /// The OS error under this one (aya keeps it as the source of its `SyscallError`).
    pub fn os_error(&self) -> Option<i32> {
        os_error(self)
    }
}

/// The first `io::Error` with an errno in `e`'s source chain.
fn os_error(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(code) = err.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error) {
            return Some(code);
        }
        cur = err.source();
    }
    None
}

/// EPERM anywhere under `e` means missing privileges, said as such.
pub(super) fn or_not_permitted(e: LoadError) -> LoadError {
    if e.os_error() == Some(libc::EPERM) { LoadError::NotPermitted } else { e }
}
