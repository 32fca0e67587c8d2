//! The per-thread shadow stack: each target thread's state in task storage, and the push, pop and
//! clean-up of its traced frames, matched by stack pointer (docs/ATTRIBUTION.md).

use aya_ebpf::{
    bindings::task_struct,
    helpers::{
        bpf_probe_read_user,
        generated::{bpf_get_current_task_btf, bpf_task_storage_get},
    },
};
use perf_ebpf_common::{Counter, Interf, MAX_DEPTH, PAGE_BYTES, ThreadState, call_path_id};

use crate::{
    helpers::{bump, frame_index},
    interference::settle,
    maps::{TRAMPOLINE, threads_map},
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
    // What interfered until now was the caller's.
    settle(st);
    let depth = st.depth;
    st.depth = depth.saturating_add(1);
    if depth >= MAX_DEPTH {
        bump(Counter::DepthOverflow);
        return;
    }
    let parent_path = if depth == 0 { 0 } else { st.frames[frame_index(depth - 1)].path_id };
    let f = &mut st.frames[frame_index(depth)];
    f.fn_id = fn_id;
    f.path_id = call_path_id(parent_path, fn_id);
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
        core::ptr::write_volatile(&mut f.interf, Interf::default());
    }
    for slot in f.top_syscalls.iter_mut() {
        slot.count = 0;
    }
    for slot in f.top_callees.iter_mut() {
        slot.count = 0;
    }
}

/// Pops the frames of calls that must have ended without a return we saw (longjmp, unwinding, a
/// uretprobe the kernel could not install or that was not attached yet when the call began), as the
/// kernel drops their return instances here (`cleanup_return_instances`). Counted as orphaned
/// entries, never timed. A live caller's frame lies above (at a higher address than) `sp`, or at
/// `sp` itself when this call was reached from it by a tail call (see `tail_called`); everything
/// else is dead (docs/ATTRIBUTION.md, "Tail calls").
#[inline(always)]
pub(crate) fn drop_dead_frames(st: &mut ThreadState, sp: u64) {
    if st.depth > MAX_DEPTH {
        return;
    }
    for _ in 0..MAX_DEPTH {
        if st.depth == 0 {
            return;
        }
        let top_sp = st.frames[frame_index(st.depth - 1)].stack_ptr;
        if top_sp > sp {
            return;
        }
        if top_sp == sp {
            break;
        }
        st.depth -= 1;
        bump(Counter::OrphanEntry);
    }
    // A frame entered at `sp` is on top: the caller of a tail call, or a call that ended unseen.
    if tail_called(sp) {
        return;
    }
    for _ in 0..MAX_DEPTH {
        if st.depth == 0 || st.frames[frame_index(st.depth - 1)].stack_ptr != sp {
            return;
        }
        st.depth -= 1;
        bump(Counter::OrphanEntry);
    }
}

/// Whether the call entering at `sp`, where a frame of ours was entered too, was reached from that
/// frame's call by a tail call (`jmp`), so that the kernel will report that call's return right
/// after this one's. The kernel's own test (`prepare_uretprobe`'s `chained`): a `call` writes its
/// return address at `sp`; a `jmp` leaves the caller's there, which the kernel replaced with its
/// trampoline when the caller was entered. Read only at an entry at a frame's stack pointer (a
/// tail call, or a call after one that ended unseen), never on an ordinary call's path.
#[inline(always)]
fn tail_called(sp: u64) -> bool {
    // SAFETY: bpf_probe_read_user checks the address; a failed read gives an error.
    let Ok(ret_addr) = (unsafe { bpf_probe_read_user(sp as *const u64) }) else {
        return false;
    };
    match TRAMPOLINE.get(0) {
        Some(&t) if t != 0 => ret_addr == t,
        // Not learned yet (no traced return since attach, or a kernel whose trampoline traps
        // instead of making the uretprobe syscall): the trampoline starts a page, which a return
        // address after a call instruction almost never does.
        _ => ret_addr != 0 && ret_addr & (PAGE_BYTES - 1) == 0,
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
