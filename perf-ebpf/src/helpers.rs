//! Small helpers every program uses (libbpf-tools keeps these in bits.bpf.h / maps.bpf.h): the
//! clock, counters, thread ids, histogram increments and a verifier-friendly frame index.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    maps::PerCpuArray,
};
use perf_ebpf_common::{Counter, HIST_BUCKETS, Hist, MAX_DEPTH, SYSCALL_NR_UPROBE, SYSCALL_NR_URETPROBE, hist_bucket};

use crate::maps::{COUNTERS, target_tgid};

#[inline(always)]
pub(crate) fn now_ns() -> u64 {
    // SAFETY: reads CLOCK_MONOTONIC; no pointers involved.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
pub(crate) fn bump(counter: Counter) {
    if let Some(c) = COUNTERS.get_ptr_mut(counter.index()) {
        // SAFETY: a valid per-CPU slot; only this CPU writes it and we are not preempted in BPF.
        unsafe { *c += 1 };
    }
}

/// A frame index the verifier can bound: callers already know `i < MAX_DEPTH`, but after loop
/// arithmetic LLVM may drop that knowledge, so hide the value from the optimiser and mask it
/// (MAX_DEPTH is a power of two, so the mask never changes a valid index).
#[inline(always)]
pub(crate) fn frame_index(i: u32) -> usize {
    // SAFETY: a volatile read of a local.
    let i = unsafe { core::ptr::read_volatile(&i) };
    (i & (MAX_DEPTH - 1)) as usize
}

/// The running thread's id. The function programs need no target check: every uprobe link is
/// created for the target's pid, and the kernel runs its program for that process only (a
/// `uprobe_multi` link checks the thread group, a perf-event uprobe the mm).
#[inline(always)]
pub(crate) fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// The current thread's id if it belongs to the target, else `None`: the first filter of the
/// tracepoint programs, which see every process.
#[inline(always)]
pub(crate) fn target_tid() -> Option<u32> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 != target_tgid() {
        return None;
    }
    Some(pid_tgid as u32)
}

#[inline(always)]
pub(crate) fn hist_add(map: &PerCpuArray<Hist>, index: u32, value_ns: u64) {
    let bucket = hist_bucket(value_ns) as usize;
    if let Some(h) = map.get_ptr_mut(index)
        && bucket < HIST_BUCKETS
    {
        // SAFETY: valid per-CPU map value, bucket bounds-checked above.
        unsafe { (*h).buckets[bucket] += 1 };
    }
}

/// Syscalls 335 (`uretprobe`: every traced return) and 336 (`uprobe`: every hit of a probe optimised
/// at a 5-byte nop) are our probes', never the target's.
#[inline(always)]
pub(crate) fn probe_syscall(nr: u64) -> bool {
    nr == u64::from(SYSCALL_NR_URETPROBE) || nr == u64::from(SYSCALL_NR_UPROBE)
}
