//! The scheduler programs: `sched_switch` times the target's threads off-CPU (blocked or waiting to
//! run) into their innermost traced frame; `sched_process_exit` drops an exiting thread's frames.

use aya_ebpf::{
    bindings::task_struct,
    helpers::{
        bpf_probe_read_kernel,
        generated::{bpf_get_current_task_btf, bpf_task_storage_delete},
    },
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use perf_ebpf_common::{Counter, MAX_DEPTH, OFFCPU_BLOCKED, OFFCPU_NONE, OFFCPU_RUNQUEUE, ThreadState};

use crate::{
    helpers::{bump, frame_index, now_ns, target_tid},
    interference::{switch_in, switch_out},
    maps::{target_tgid, task_tgid_offset, threads_map},
    thread::{task_state, thread_state},
};

/// `TASK_RUNNING`: a thread switched out in this state was preempted, not blocked.
const TASK_RUNNING: u64 = 0;

/// A BTF tracepoint: `next` arrives as a typed task pointer, which task storage needs.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
    let now = now_ns();
    let target = target_tgid();

    // The outgoing thread is still `current` here.
    if target_tid().is_some()
        && let Some(st) = thread_state()
    {
        let preempt: u64 = ctx.arg(0);
        let prev_state: u64 = ctx.arg(3);
        // SAFETY: see `functions::begin_entry`.
        let st = unsafe { &mut *st };
        catch_up_switch_in(st, now);
        st.offcpu_start_ns = now;
        st.offcpu_kind = if preempt & 0xff != 0 || prev_state & 0xffff_ffff == TASK_RUNNING {
            OFFCPU_RUNQUEUE
        } else {
            OFFCPU_BLOCKED
        };
        switch_out(st, st.offcpu_kind == OFFCPU_BLOCKED);
        bump(Counter::Switches);
    }

    let next: u64 = ctx.arg(2);
    let tgid_off = task_tgid_offset();
    // SAFETY: bpf_probe_read_kernel checks the address; a bad read returns an error, never faults.
    let next_tgid = unsafe { bpf_probe_read_kernel((next + tgid_off as u64) as *const i32) };
    if next_tgid.map(|t| t as u32) != Ok(target) {
        return 0;
    }
    let Some(st) = task_state(next as *mut task_struct, 0) else {
        return 0;
    };
    // SAFETY: the incoming thread is not running anywhere, so nothing else touches its state now.
    let st = unsafe { &mut *st };
    back_on_cpu(st, now);
    // sched_switch runs on the CPU `next` is about to run on.
    switch_in(st);
    0
}

/// Closes a switch-out whose switch-in no `sched_switch` reported, at one of the thread's own
/// events (`now`): it runs, so it came back. This kernel emits no `sched_switch` when the outgoing
/// task is one of the VM agent's threads (pid 1's; ftrace sees none either), so a thread switched
/// in after one is not seen coming back (docs/ATTRIBUTION.md, "Unseen switch-ins"). Its off-CPU
/// time then runs to `now`, which is later than the real switch-in by the kernel's path back to
/// this event (the rest of `schedule()` and of the syscall or fault it slept in); the migration,
/// if any, is counted exactly, as the thread runs now on the CPU it was switched in on.
#[inline(always)]
pub(crate) fn catch_up_switch_in(st: &mut ThreadState, now: u64) {
    if st.offcpu_start_ns == 0 {
        return;
    }
    bump(Counter::SwitchInUnseen);
    back_on_cpu(st, now);
    switch_in(st);
}

/// A target thread runs again at `now`: its time off-CPU goes to its innermost traced frame, and
/// to the syscall it is in (whose own time excludes it).
#[inline(always)]
fn back_on_cpu(st: &mut ThreadState, now: u64) {
    if st.offcpu_start_ns == 0 {
        return;
    }
    let off_ns = now.saturating_sub(st.offcpu_start_ns);
    let kind = st.offcpu_kind;
    st.offcpu_start_ns = 0;
    st.offcpu_kind = OFFCPU_NONE;
    if st.in_syscall != 0 {
        st.sys_offcpu_ns += off_ns;
    }
    let depth = st.depth;
    if depth == 0 || depth > MAX_DEPTH {
        return;
    }
    let frame = &mut st.frames[frame_index(depth - 1)];
    if kind == OFFCPU_BLOCKED {
        frame.offcpu_blocked_ns += off_ns;
    } else {
        frame.offcpu_runqueue_ns += off_ns;
    }
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    // Fires in do_exit() with the exiting thread as `current`.
    let Some(_) = target_tid() else { return 0 };
    let Some(st) = thread_state() else {
        return 0;
    };
    // SAFETY: see `functions::begin_entry`.
    let depth = unsafe { (*st).depth };
    for _ in 0..depth.min(MAX_DEPTH) {
        bump(Counter::OrphanEntry);
    }
    // SAFETY: the current task; its storage would also go when the task is freed.
    unsafe { bpf_task_storage_delete(threads_map(), bpf_get_current_task_btf()) };
    0
}
