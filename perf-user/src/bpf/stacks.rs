//! The shadow stacks of the target's running threads, read from the kernel's per-thread state
//! (`THREADS`, task storage, looked up by a pidfd of each thread). They name the call paths of
//! callers still running: a caller that never returns (an event loop) has no entry in
//! `CALL_PATHS`, since a path's entry is written when a call returns, so without its stack frame
//! its callees would hang under a stand-in that knows its function but not its own caller.

use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd};

use aya::maps::MapData;
use perf_ebpf_common::{self as common, MAX_DEPTH, ThreadState};

use crate::{
    bpf::sys::{self, ElemAttr},
    model::CallPath,
    target::proc,
};

/// `pidfd_open` flag: a pidfd of one thread rather than of a whole process (Linux 6.9+).
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// The call path of every traced frame open on a thread of `pid`, as a `CallPath` without calls
/// (its caller's path, its function, its depth). Threads that exited meanwhile, or that never
/// entered a traced function, add nothing.
pub fn running_callers(threads: &MapData, pid: u32) -> Vec<CallPath> {
    let mut out = Vec::new();
    for tid in proc::threads(pid) {
        let Some(st) = thread_state(threads, tid) else { continue };
        let depth = st.depth.min(MAX_DEPTH) as usize;
        for (i, f) in st.frames.iter().enumerate().take(depth) {
            let (parent, parent_fn_id) =
                if i == 0 { (0, 0) } else { (st.frames[i - 1].path_id, st.frames[i - 1].fn_id) };
            // A frame in the middle of being written is not a path: its id would not match.
            if f.path_id != common::call_path_id(parent, f.fn_id) {
                break;
            }
            out.push(CallPath {
                id: f.path_id,
                parent,
                fn_id: f.fn_id,
                parent_fn_id,
                depth: i as u32,
                ..CallPath::default()
            });
        }
    }
    out
}

/// Thread `tid`'s state in `THREADS`, if it has one.
fn thread_state(threads: &MapData, tid: u32) -> Option<Box<ThreadState>> {
    let tid = libc::pid_t::try_from(tid).ok()?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is
    // passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: `fd` was just returned by pidfd_open and nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let key: i32 = pidfd.as_raw_fd();
    let mut value = vec![0u8; size_of::<ThreadState>()];
    let mut attr = ElemAttr {
        map_fd: u32::try_from(threads.fd().as_fd().as_raw_fd()).ok()?,
        key: std::ptr::from_ref(&key) as u64,
        value: value.as_mut_ptr() as u64,
        ..ElemAttr::default()
    };
    // SAFETY: `key` is one i32 (the map's key: a pidfd) and `value` room for one ThreadState (the
    // map's value, the type the kernel side stores), both alive for the call.
    unsafe { sys::map_lookup_elem(&mut attr) }.ok()?;
    // SAFETY: the kernel wrote a whole ThreadState, #[repr(C)] plain integers (any bit pattern is
    // valid); read_unaligned copes with the buffer's alignment.
    Some(Box::new(unsafe { std::ptr::read_unaligned(value.as_ptr().cast::<ThreadState>()) }))
}
