//! The per-thread shadow stack: each target thread's state in task storage, and the push, pop and
//! clean-up of its traced frames, matched by stack pointer (docs/ATTRIBUTION.md).

use aya_ebpf::{
    bindings::task_struct,
    helpers::generated::{bpf_get_current_task_btf, bpf_task_storage_get},
};
use perf_ebpf_common::{Counter, MAX_DEPTH, ThreadState};

use crate::{
    helpers::{bump, frame_index},
    maps::threads_map,
};

const BPF_LOCAL_STORAGE_GET_F_CREATE: u64 = 1;

#[inline(always)]
pub(crate) fn task_state(task: *mut task_struct, flags: u64) -> Option<*mut ThreadState> {
    let map = threads_map();
    // SAFETY: `map` is the task storage map, `task` a task pointer the verifier has typed (the
    // current task, or a BTF tracepoint's argument); a null value with F_CREATE zero-fills.
    let st = unsafe { bpf_task_storage_get(map, task, core::ptr::null_mut(), flags) }.cast::<ThreadState>();
    if st.is_null() { None } else { Some(st) }
}

/// The current thread's state, if it has one.
#[inline(always)]
pub(crate) fn thread_state() -> Option<*mut ThreadState> {
    // SAFETY: no arguments; returns the running task.
    task_state(unsafe { bpf_get_current_task_btf() }, 0)
}

/// The current thread's state, created zeroed on first use.
#[inline(always)]
pub(crate) fn thread_state_or_new() -> Option<*mut ThreadState> {
    // SAFETY: as above.
    let st = task_state(unsafe { bpf_get_current_task_btf() }, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if st.is_none() {
        bump(Counter::ThreadMapFull);
    }
    st
}

#[inline(always)]
pub(crate) fn push_frame(st: &mut ThreadState, fn_id: u32, sp: u64, now: u64) {
    let depth = st.depth;
    st.depth = depth.saturating_add(1);
    if depth >= MAX_DEPTH {
        bump(Counter::DepthOverflow);
        return;
    }
    let f = &mut st.frames[frame_index(depth)];
    f.fn_id = fn_id;
    f.stack_ptr = sp;
    f.entry_ts_ns = now;
    // Volatile stores: plain ones get merged into a memset, which BPF runs as a byte-at-a-time
    // loop (~200 instructions, a third of this program's cost).
    // SAFETY: writes through references to fields of a live map value.
    unsafe {
        core::ptr::write_volatile(&mut f.callees_ns, 0);
        core::ptr::write_volatile(&mut f.syscalls_ns, 0);
        core::ptr::write_volatile(&mut f.offcpu_blocked_ns, 0);
        core::ptr::write_volatile(&mut f.offcpu_runqueue_ns, 0);
        core::ptr::write_volatile(&mut f.syscall_count, 0);
    }
    for slot in f.top_syscalls.iter_mut() {
        slot.count = 0;
    }
}

/// Pops frames whose call must have ended without a return we saw (longjmp, unwinding, a
/// uretprobe that was not yet attached when the call began): a live caller's frame always lies
/// above (at a higher address than) `sp`. Counted as orphaned entries, never timed.
#[inline(always)]
pub(crate) fn drop_dead_frames(st: &mut ThreadState, sp: u64) {
    if st.depth > MAX_DEPTH {
        return;
    }
    for _ in 0..MAX_DEPTH {
        if st.depth == 0 || st.frames[frame_index(st.depth - 1)].stack_ptr > sp {
            return;
        }
        st.depth -= 1;
        bump(Counter::OrphanEntry);
    }
}

/// The return of a call of `fn_id` entered at `entry_sp`: pops its frame and every deeper one (calls
/// that ended unseen, counted as orphaned entries) and gives the frame's index, or `None` when the
/// call has no frame (deeper than `MAX_DEPTH`, or a return without an entry: counted).
#[inline(always)]
pub(crate) fn pop_frame(st: &mut ThreadState, fn_id: u32, entry_sp: u64) -> Option<u32> {
    if st.depth > MAX_DEPTH {
        // The returning call was one of those counted in Counter::DepthOverflow.
        st.depth -= 1;
        return None;
    }
    // The returning call's frame is the one entered at this stack pointer; frames above it
    // (deeper) belong to calls that ended unseen.
    let mut found = None;
    for i in 0..MAX_DEPTH {
        if i >= st.depth {
            break;
        }
        let idx = frame_index(st.depth - 1 - i);
        let f = &st.frames[idx];
        if f.stack_ptr == entry_sp && f.fn_id == fn_id {
            found = Some(idx as u32);
            break;
        }
        if f.stack_ptr > entry_sp {
            break;
        }
    }
    let Some(idx) = found else {
        bump(Counter::OrphanReturn);
        return None;
    };
    for _ in 0..(st.depth - 1 - idx).min(MAX_DEPTH) {
        bump(Counter::OrphanEntry);
    }
    st.depth = idx;
    Some(idx)
}
