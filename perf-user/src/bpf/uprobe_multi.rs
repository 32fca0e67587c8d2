//! Programs aya 0.14 cannot load: uprobes attached through one `uprobe_multi` link per program
//! (kernel 6.6+) instead of one perf event per function.
//!
//! aya loads the object and creates the maps; this module loads a second copy of chosen programs
//! with the expected attach type the kernel wants for `BPF_LINK_CREATE` (`BPF_TRACE_UPROBE_MULTI`),
//! relocated against aya's maps so both copies share every map. One link carries all functions
//! (offsets + cookies), so attaching 1,000 functions is one syscall and detaching them one RCU
//! grace period instead of one per probe.

use std::{
    collections::{HashMap, HashSet},
    ffi::CString,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd},
    path::Path,
};

use aya::{Ebpf, maps::Map};

use crate::bpf::sys::{
    self, BPF_F_UPROBE_MULTI_RETURN, BPF_PROG_TYPE_KPROBE, ProgLoadAttr, SyscallError, UprobeMultiLinkAttr,
};
pub use crate::bpf::sys::{BPF_TRACE_UPROBE_MULTI, BPF_TRACE_UPROBE_SESSION};

/// What a link runs its program on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Entry,
    Return,
    /// Loaded with [`BPF_TRACE_UPROBE_SESSION`].
    Session,
}

/// Why the second copy of the object could not be prepared, a program not loaded or a link not
/// created. Kernel failures keep the [`SyscallError`] (and so the errno) as their source.
#[derive(Debug, thiserror::Error)]
pub enum UprobeMultiError {
    #[error("parsing the eBPF object")]
    Parse(#[source] aya_obj::ParseError),
    #[error("duplicating map {map}")]
    DupMap { map: String, source: io::Error },
    #[error("maps not created by the loader: {}", .missing.join(", "))]
    MissingMaps { missing: Vec<String> },
    #[error("relocating {what}")]
    Relocate { what: &'static str, source: aya_obj::relocation::EbpfRelocationError },
    #[error("no program {program} in the object")]
    NoProgram { program: String },
    #[error("no code for program {program}")]
    NoCode { program: String },
    #[error("the object's licence contains a NUL byte")]
    License,
    #[error("program {program} has {count} instructions, more than bpf(2) takes")]
    TooLong { program: String, count: usize },
    /// `verifier` is the end of the verifier's log (empty when it wrote none).
    #[error("loading {program}{}", if .verifier.is_empty() { String::new() } else { format!(" ({})", .verifier) })]
    Load { program: String, verifier: String, source: SyscallError },
    #[error("one cookie per offset and at least one offset ({offsets} offsets, {cookies} cookies)")]
    Offsets { offsets: usize, cookies: usize },
    #[error("{count} offsets are more than one link takes")]
    TooManyOffsets { count: usize },
    #[error("path {path:?} contains a NUL byte")]
    NulInPath { path: String },
    /// The kernel refused the link: its errno is the cause.
    #[error(transparent)]
    Link(SyscallError),
}

impl UprobeMultiError {
    /// The kernel's errno when bpf(2) refused (`Some(libc::EPERM)`: not permitted).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            UprobeMultiError::Load { source, .. } | UprobeMultiError::Link(source) => source.raw_os_error(),
            UprobeMultiError::DupMap { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The eBPF object relocated against the maps aya created, ready to load programs from.
pub struct RawObject {
    obj: aya_obj::Object,
    /// Duplicates of aya's map descriptors, so the maps live as long as programs loaded here need them.
    _map_fds: Vec<OwnedFd>,
}

/// The map behind any of aya's map kinds (all of them wrap a `MapData`).
fn map_fd(map: &Map) -> BorrowedFd<'_> {
    let data = match map {
        Map::Array(d)
        | Map::ArrayOfMaps(d)
        | Map::BloomFilter(d)
        | Map::CgroupArray(d)
        | Map::CgroupStorage(d)
        | Map::CgrpStorage(d)
        | Map::CpuMap(d)
        | Map::DevMap(d)
        | Map::DevMapHash(d)
        | Map::HashMap(d)
        | Map::HashOfMaps(d)
        | Map::InodeStorage(d)
        | Map::LpmTrie(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuCgroupStorage(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::PerfEventArray(d)
        | Map::ProgramArray(d)
        | Map::Queue(d)
        | Map::ReusePortSockArray(d)
        | Map::RingBuf(d)
        | Map::SockHash(d)
        | Map::SockMap(d)
        | Map::SkStorage(d)
        | Map::Stack(d)
        | Map::StackTraceMap(d)
        | Map::Unsupported(d)
        | Map::XskMap(d) => d,
    };
    data.fd().as_fd()
}

impl RawObject {
    /// Parses `object` again and points its map references at the maps `ebpf` created from it.
    /// Call before taking any map out of `ebpf`.
    pub fn new(object: &[u8], ebpf: &Ebpf) -> Result<Self, UprobeMultiError> {
        let mut obj = aya_obj::Object::parse(object).map_err(UprobeMultiError::Parse)?;
        let mut fds: HashMap<String, OwnedFd> = HashMap::new();
        for (name, map) in ebpf.maps() {
            let fd = map_fd(map)
                .try_clone_to_owned()
                .map_err(|source| UprobeMultiError::DupMap { map: name.to_owned(), source })?;
            fds.insert(name.to_owned(), fd);
        }
        let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
        let maps = std::mem::take(&mut obj.maps);
        let mut missing = Vec::new();
        let pairs: Vec<(&str, RawFd, &aya_obj::Map)> = maps
            .iter()
            .filter_map(|(name, m)| match fds.get(name) {
                Some(fd) => Some((name.as_str(), fd.as_raw_fd(), m)),
                None => {
                    missing.push(name.clone());
                    None
                }
            })
            .collect();
        if !missing.is_empty() {
            return Err(UprobeMultiError::MissingMaps { missing });
        }
        obj.relocate_maps(pairs.into_iter(), &text_sections)
            .map_err(|source| UprobeMultiError::Relocate { what: "maps", source })?;
        obj.relocate_calls(&text_sections).map_err(|source| UprobeMultiError::Relocate { what: "calls", source })?;
        Ok(RawObject { obj, _map_fds: fds.into_values().collect() })
    }

    /// Loads program `name` as a kprobe-type program expecting `attach_type`. On a verifier error
    /// the error carries the end of the verifier's log.
    pub fn load(&self, name: &str, attach_type: u32) -> Result<OwnedFd, UprobeMultiError> {
        let program = || name.to_owned();
        let prog = self.obj.programs.get(name).ok_or_else(|| UprobeMultiError::NoProgram { program: program() })?;
        let func = (self.obj.functions.get(&prog.function_key()))
            .ok_or_else(|| UprobeMultiError::NoCode { program: program() })?;
        let license = CString::new(self.obj.license.as_bytes()).map_err(|_| UprobeMultiError::License)?;
        let mut prog_name = [0u8; 16];
        for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
            *d = s;
        }
        let count = func.instructions.len();
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_KPROBE,
            insn_cnt: u32::try_from(count).map_err(|_| UprobeMultiError::TooLong { program: program(), count })?,
            insns: func.instructions.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name,
            expected_attach_type: attach_type,
            ..ProgLoadAttr::default()
        };
        // SAFETY: `insns` points at the `insn_cnt` instructions of `func` and `license` at a
        // CString, both borrowed from `self` for the call; no log buffer yet.
        match unsafe { sys::prog_load(&mut attr) } {
            Ok(fd) => Ok(fd),
            Err(source) => {
                // Load again with the verifier's log so the error says why.
                let mut log = vec![0u8; 1 << 20];
                attr.log_level = 1;
                attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
                attr.log_buf = log.as_mut_ptr() as u64;
                // SAFETY: as above, and `log_buf` points at `log_size` bytes of `log`, alive here.
                let _ = unsafe { sys::prog_load(&mut attr) };
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let tail: Vec<&str> = text.lines().rev().take(3).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(UprobeMultiError::Load { program: program(), verifier: tail.join(" / "), source })
            }
        }
    }
}

/// Attaches `prog` (loaded with [`BPF_TRACE_UPROBE_MULTI`], or [`BPF_TRACE_UPROBE_SESSION`] for
/// [`Link::Session`]) at every file offset of `binary`, each with its cookie, in process `pid`
/// only. The link detaches all of them when dropped.
pub fn attach(
    prog: BorrowedFd<'_>,
    binary: &Path,
    offsets: &[u64],
    cookies: &[u64],
    pid: u32,
    how: Link,
) -> Result<OwnedFd, UprobeMultiError> {
    if offsets.len() != cookies.len() || offsets.is_empty() {
        return Err(UprobeMultiError::Offsets { offsets: offsets.len(), cookies: cookies.len() });
    }
    let path = CString::new(binary.as_os_str().as_encoded_bytes())
        .map_err(|_| UprobeMultiError::NulInPath { path: binary.display().to_string() })?;
    let cnt = u32::try_from(offsets.len()).map_err(|_| UprobeMultiError::TooManyOffsets { count: offsets.len() })?;
    let mut attr = UprobeMultiLinkAttr {
        // A `BorrowedFd` is never negative.
        prog_fd: prog.as_raw_fd().unsigned_abs(),
        attach_type: if how == Link::Session { BPF_TRACE_UPROBE_SESSION } else { BPF_TRACE_UPROBE_MULTI },
        path: path.as_ptr() as u64,
        offsets: offsets.as_ptr() as u64,
        cookies: cookies.as_ptr() as u64,
        cnt,
        multi_flags: if how == Link::Return { BPF_F_UPROBE_MULTI_RETURN } else { 0 },
        pid,
        ..UprobeMultiLinkAttr::default()
    };
    // SAFETY: `path` is a CString, `offsets` and `cookies` slices of `cnt` u64 each, all borrowed
    // for the call.
    unsafe { sys::link_create(&mut attr) }.map_err(UprobeMultiError::Link)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refusals are typed: bad input before the call, the kernel's errno (kept as the source)
    /// after it, so EPERM is told by number.
    #[test]
    fn link_errors_keep_the_errno() {
        let not_a_program = std::fs::File::open("/dev/null").unwrap();
        let exe = std::env::current_exe().unwrap();
        let e = attach(not_a_program.as_fd(), &exe, &[0x1000], &[], 1, Link::Entry).unwrap_err();
        assert!(matches!(e, UprobeMultiError::Offsets { offsets: 1, cookies: 0 }), "{e:?}");
        assert_eq!(e.raw_os_error(), None);

        // /dev/null is no BPF program: EBADF or EINVAL as root, EPERM without privileges.
        let e = attach(not_a_program.as_fd(), &exe, &[0x1000], &[7], std::process::id(), Link::Entry).unwrap_err();
        let errno = e.raw_os_error().unwrap_or_else(|| panic!("no errno in {e:?}"));
        let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(io.raw_os_error(), Some(errno));
        assert!(sys::error_chain(&e).contains(&io.to_string()), "{}", sys::error_chain(&e));
    }
}
