//! The one place perf-user calls bpf(2) itself (for what aya 0.14 cannot do): every raw
//! `union bpf_attr` layout we pass, and the single `syscall(SYS_bpf)` behind typed commands.
//!
//! Callers build an attribute struct and call the command's function; a failure is a
//! [`SyscallError`] that names the command and keeps the kernel's `io::Error` as its source, so
//! callers test `raw_os_error()` (EPERM, ENOENT) instead of reading messages.

use std::{
    fmt, io,
    os::fd::{FromRawFd, OwnedFd, RawFd},
};

/// The bpf(2) commands perf-user issues itself (`enum bpf_cmd`, uapi/linux/bpf.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Cmd {
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    ProgLoad = 5,
    MapLookupBatch = 24,
    LinkCreate = 28,
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cmd::MapCreate => "BPF_MAP_CREATE",
            Cmd::MapLookupElem => "BPF_MAP_LOOKUP_ELEM",
            Cmd::MapUpdateElem => "BPF_MAP_UPDATE_ELEM",
            Cmd::ProgLoad => "BPF_PROG_LOAD",
            Cmd::MapLookupBatch => "BPF_MAP_LOOKUP_BATCH",
            Cmd::LinkCreate => "BPF_LINK_CREATE",
        })
    }
}

/// A failed bpf(2) call: which command, and the kernel's error as the source.
#[derive(Debug, thiserror::Error)]
#[error("bpf({cmd}) failed")]
pub struct SyscallError {
    pub cmd: Cmd,
    #[source]
    pub io_error: io::Error,
}

impl SyscallError {
    /// The errno, for decisions (`Some(libc::EPERM)`: not permitted).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_error.raw_os_error()
    }
}

/// `BPF_PROG_TYPE_KPROBE` (`enum bpf_prog_type`): uprobes are kprobe-type programs.
pub const BPF_PROG_TYPE_KPROBE: u32 = 2;
/// `enum bpf_attach_type` values (uapi/linux/bpf.h).
pub const BPF_TRACE_UPROBE_MULTI: u32 = 48;
/// Kernel 6.13+: one program at entry and return (the entry returning non-zero skips the return).
pub const BPF_TRACE_UPROBE_SESSION: u32 = 57;
/// `BPF_LINK_CREATE` flag of `uprobe_multi`: the link runs its program at return.
pub const BPF_F_UPROBE_MULTI_RETURN: u32 = 1;

/// The prefix of `union bpf_attr` that `BPF_PROG_LOAD` reads, up to `expected_attach_type`; the
/// kernel accepts a shorter attr and zero-fills the rest.
#[repr(C)]
#[derive(Default)]
pub struct ProgLoadAttr {
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub insns: u64,
    pub license: u64,
    pub log_level: u32,
    pub log_size: u32,
    pub log_buf: u64,
    pub kern_version: u32,
    pub prog_flags: u32,
    pub prog_name: [u8; 16],
    pub prog_ifindex: u32,
    pub expected_attach_type: u32,
}
const _: () = assert!(size_of::<ProgLoadAttr>() == 72);

/// The `BPF_LINK_CREATE` part of `union bpf_attr` for `uprobe_multi` links.
#[repr(C)]
#[derive(Default)]
pub struct UprobeMultiLinkAttr {
    pub prog_fd: u32,
    pub target_fd: u32,
    pub attach_type: u32,
    pub flags: u32,
    pub path: u64,
    pub offsets: u64,
    pub ref_ctr_offsets: u64,
    pub cookies: u64,
    pub cnt: u32,
    pub multi_flags: u32,
    pub pid: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<UprobeMultiLinkAttr>() == 64);

/// The `batch` member of `union bpf_attr` (`BPF_MAP_LOOKUP_BATCH`, kernel 5.6+).
#[repr(C)]
#[derive(Default)]
pub struct BatchAttr {
    pub in_batch: u64,
    pub out_batch: u64,
    pub keys: u64,
    pub values: u64,
    pub count: u32,
    pub map_fd: u32,
    pub elem_flags: u64,
    pub flags: u64,
}
const _: () = assert!(size_of::<BatchAttr>() == 56);

/// The element member of `union bpf_attr` (`BPF_MAP_LOOKUP_ELEM`).
#[repr(C)]
#[derive(Default)]
pub struct ElemAttr {
    pub map_fd: u32,
    pub _pad: u32,
    pub key: u64,
    pub value: u64,
    pub flags: u64,
}
const _: () = assert!(size_of::<ElemAttr>() == 32);

/// The prefix of `union bpf_attr` that `BPF_MAP_CREATE` reads, up to `inner_map_fd`.
#[repr(C)]
#[derive(Default)]
pub struct MapCreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
}
const _: () = assert!(size_of::<MapCreateAttr>() == 24);

/// The attribute structs above, and only they, may be handed to [`sys_bpf`].
trait Attr: private::Sealed {}
impl Attr for MapCreateAttr {}
impl Attr for ElemAttr {}
impl Attr for ProgLoadAttr {}
impl Attr for UprobeMultiLinkAttr {}
impl Attr for BatchAttr {}
mod private {
    pub trait Sealed {}
    impl Sealed for super::MapCreateAttr {}
    impl Sealed for super::ElemAttr {}
    impl Sealed for super::ProgLoadAttr {}
    impl Sealed for super::UprobeMultiLinkAttr {}
    impl Sealed for super::BatchAttr {}
}

/// The single bpf(2) call site.
///
/// # Safety
/// Every pointer field of `attr` must point at memory valid for what the kernel reads or writes
/// for `cmd` (see each command's function), alive for the call.
unsafe fn sys_bpf<T: Attr>(cmd: Cmd, attr: &mut T) -> Result<libc::c_long, SyscallError> {
    // SAFETY: `attr` is one of the #[repr(C)] prefixes of `union bpf_attr` above (sealed trait),
    // live and fully initialised for the call; its size is passed alongside. Its pointer fields
    // are valid for the kernel's accesses: the caller's contract.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_long, std::ptr::from_mut(attr), size_of::<T>()) };
    if ret < 0 {
        return Err(SyscallError { cmd, io_error: io::Error::last_os_error() });
    }
    Ok(ret)
}

/// Takes ownership of the descriptor a successful command returned.
fn owned_fd(cmd: Cmd, ret: libc::c_long) -> Result<OwnedFd, SyscallError> {
    let fd = RawFd::try_from(ret)
        .map_err(|_| SyscallError { cmd, io_error: io::Error::other("bpf(2) returned an invalid fd") })?;
    // SAFETY: the kernel just returned this new descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `BPF_PROG_LOAD`: the new program's descriptor.
///
/// # Safety
/// `insns` must point at `insn_cnt` instructions, `license` at a NUL-terminated string and
/// `log_buf` (when `log_size` is set) at `log_size` writable bytes, all alive for the call.
pub unsafe fn prog_load(attr: &mut ProgLoadAttr) -> Result<OwnedFd, SyscallError> {
    // SAFETY: forwarded from this function's contract.
    let ret = unsafe { sys_bpf(Cmd::ProgLoad, attr) }?;
    owned_fd(Cmd::ProgLoad, ret)
}

/// `BPF_LINK_CREATE` of a `uprobe_multi` link: the link's descriptor (closing it detaches).
///
/// # Safety
/// `path` must point at a NUL-terminated path, `offsets` and `cookies` (and `ref_ctr_offsets`
/// when set) at `cnt` u64 each, all alive for the call.
pub unsafe fn link_create(attr: &mut UprobeMultiLinkAttr) -> Result<OwnedFd, SyscallError> {
    // SAFETY: forwarded from this function's contract.
    let ret = unsafe { sys_bpf(Cmd::LinkCreate, attr) }?;
    owned_fd(Cmd::LinkCreate, ret)
}

/// `BPF_MAP_LOOKUP_ELEM`: copies the value at `key` into `value`. A missing key is an error whose
/// `raw_os_error()` is `Some(libc::ENOENT)`.
///
/// # Safety
/// `key` must point at one key of the map and `value` at room for one of its values, both alive
/// for the call.
pub unsafe fn map_lookup_elem(attr: &mut ElemAttr) -> Result<(), SyscallError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { sys_bpf(Cmd::MapLookupElem, attr) }.map(|_| ())
}

/// `BPF_MAP_LOOKUP_BATCH`: fills `keys` and `values` and sets `attr.count` to what it read.
/// ENOENT (the batch reached the end of the map) comes back as an error whose `raw_os_error()`
/// is `Some(libc::ENOENT)`, with `count` still valid.
///
/// # Safety
/// `keys` must have room for `count` keys, `values` for `count` values of the map (per-CPU maps:
/// × possible CPUs, each rounded up to 8 bytes), `out_batch` (and `in_batch` when set) for one
/// key, all alive for the call.
pub unsafe fn map_lookup_batch(attr: &mut BatchAttr) -> Result<(), SyscallError> {
    // SAFETY: forwarded from this function's contract.
    unsafe { sys_bpf(Cmd::MapLookupBatch, attr) }.map(|_| ())
}

/// Returns once every BPF program that was running when it was called has finished (Linux's
/// `synchronize_rcu()`: non-sleepable programs, ours, run inside an RCU read-side section).
///
/// bpf(2) has no command for that, but updating an array of maps waits for it, so that userspace
/// knows no program still uses the old inner map (the kernel's own selftests wait this way). A
/// throwaway one-slot array of maps is made and updated. Milliseconds.
pub fn wait_for_running_programs() -> Result<(), SyscallError> {
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    const BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
    let create = |attr: &mut MapCreateAttr| {
        // SAFETY: BPF_MAP_CREATE reads no pointer from this prefix.
        let ret = unsafe { sys_bpf(Cmd::MapCreate, attr) }?;
        owned_fd(Cmd::MapCreate, ret)
    };
    let one = |map_type, inner_map_fd| MapCreateAttr {
        map_type,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
        inner_map_fd,
    };
    let inner = create(&mut one(BPF_MAP_TYPE_ARRAY, 0))?;
    let inner_fd = u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&inner)).unwrap_or(u32::MAX);
    let outer = create(&mut one(BPF_MAP_TYPE_ARRAY_OF_MAPS, inner_fd))?;
    let (key, value) = (0u32, inner_fd);
    let mut attr = ElemAttr {
        map_fd: u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&outer)).unwrap_or(u32::MAX),
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_ref(&value) as u64,
        flags: 0,
    };
    // SAFETY: `key` and `value` are one u32 each, the map's key and value, alive for the call.
    unsafe { sys_bpf(Cmd::MapUpdateElem, &mut attr) }.map(|_| ())
}

/// An error and all its sources on one line, `a: b: c`, for the places that must flatten one
/// into a string.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errno survives as the source: callers decide on `raw_os_error()`, never on text.
    #[test]
    fn a_failed_call_keeps_the_errno_as_its_source() {
        // A batch lookup on fd u32::MAX (no such descriptor) fails with EBADF everywhere, root or not.
        let mut attr = BatchAttr { map_fd: u32::MAX, count: 1, ..BatchAttr::default() };
        // SAFETY: the kernel rejects the descriptor before it touches any (null) buffer.
        let e = unsafe { map_lookup_batch(&mut attr) }.unwrap_err();
        assert_eq!(e.cmd, Cmd::MapLookupBatch);
        assert!(e.raw_os_error().is_some(), "{e:?}");
        let source = std::error::Error::source(&e).unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(source.raw_os_error(), e.raw_os_error());
        assert!(error_chain(&e).starts_with("bpf(BPF_MAP_LOOKUP_BATCH) failed: "), "{}", error_chain(&e));
    }
}
