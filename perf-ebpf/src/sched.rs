//! The scheduler programs: `sched_switch` times the target's threads off-CPU (blocked or waiting to
//! run) into their innermost traced frame; `sched_process_exit` drops an exiting thread's frames.

use aya_ebpf::{
    bindings::{pt_regs, task_struct},
    helpers::{
        bpf_probe_read_kernel,
        generated::{bpf_get_current_task_btf, bpf_task_pt_regs, bpf_task_storage_delete},
    },
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use perf_ebpf_common::{Counter, MAX_DEPTH, MAX_SYSCALLS, OFFCPU_BLOCKED, OFFCPU_NONE, OFFCPU_RUNQUEUE, ThreadState};

use crate::{
    helpers::{bump, frame_index, now_ns, probe_syscall, target_tid},
    interference::{switch_in, switch_out},
    maps::{config, target_tgid, task_tgid_offset, threads_map},
    syscalls::count_in_function,
    thread::{task_state, thread_state},
    top::note_top,
};

/// `TASK_RUNNING`: a thread switched out in this state was preempted, not blocked.
const TASK_RUNNING: u64 = 0;

/// A BTF tracepoint: `next` arrives as a typed task pointer, which task storage needs.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
    // The clock is read only for a target thread: every other switch on the machine returns after
    // the two tgid checks.
    let target = target_tgid();
    let mut now = 0;

    // The outgoing thread is still `current` here.
    let outgoing_is_target = target_tid().is_some();
    if outgoing_is_target {
        bump(Counter::TargetSwitches);
    }
    if outgoing_is_target && let Some(st) = thread_state() {
        now = now_ns();
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
        if config().syscalls_from_sched != 0 {
            // Blocked in it, or preempted inside it (a sleep whose timer expires while the thread
            // waits for a CPU never blocks): either way the time off-CPU is inside that syscall.
            st.blocked_nr = syscall_in_progress().map_or(0, |nr| nr + 1);
        }
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
    if now == 0 {
        now = now_ns();
    }
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

/// The syscall the current (outgoing) thread is in, read from the registers it entered the kernel
/// with (`--blocked-syscalls-only`, where no syscall tracepoint says it). Only a `syscall`
/// instruction leaves the return address in both `ip` and `cx`, and the flags in both `flags` and
/// `r11` (what the kernel itself checks before returning with `sysret`): a thread blocked in a page
/// fault, whose `orig_ax` holds the fault's error code, or preempted in user mode by an interrupt,
/// is not taken for one.
#[inline(always)]
fn syscall_in_progress() -> Option<u32> {
    // SAFETY: the current task, a trusted BTF pointer; the helper returns its user-mode registers
    // at the top of its kernel stack.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const pt_regs;
    if regs.is_null() {
        return None;
    }
    // SAFETY: a BTF-typed pointer to struct pt_regs: the verifier turns these loads into checked
    // reads, and a bad address reads as 0.
    let (nr, ip, cx, flags, r11) = unsafe { ((*regs).orig_rax, (*regs).rip, (*regs).rcx, (*regs).eflags, (*regs).r11) };
    (nr < u64::from(MAX_SYSCALLS) && !probe_syscall(nr) && ip == cx && flags == r11).then_some(nr as u32)
}

/// A target thread runs again at `now`: its time off-CPU goes to its innermost traced frame, and
/// to the syscall it is in (whose own time excludes it); with `--blocked-syscalls-only`, to the
/// frame's entry for the syscall `sched_switch` found it in.
#[inline(always)]
fn back_on_cpu(st: &mut ThreadState, now: u64) {
    if st.offcpu_start_ns == 0 {
        return;
    }
    let off_ns = now.saturating_sub(st.offcpu_start_ns);
    let kind = st.offcpu_kind;
    let blocked_nr = st.blocked_nr;
    st.offcpu_start_ns = 0;
    st.offcpu_kind = OFFCPU_NONE;
    st.blocked_nr = 0;
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
    if blocked_nr != 0 {
        frame.syscall_count += 1;
        note_top(&mut frame.top_syscalls, blocked_nr - 1, off_ns);
        count_in_function(frame.fn_id, blocked_nr - 1, off_ns);
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
