//! The syscall programs (BTF tracepoints `sys_enter`/`sys_exit`): every syscall of the target in
//! per-syscall statistics, and its time in the innermost traced frame with the frame's top syscalls.

use aya_ebpf::{bindings::pt_regs, macros::btf_tracepoint, programs::BtfTracePointContext};
use perf_ebpf_common::{
    Counter, FuncSyscallKey, MAX_DEPTH, MAX_SYSCALLS, PAGE_BYTES, SYSCALL_NR_UPROBE, SYSCALL_NR_URETPROBE,
    SyscallTotals, ThreadState,
};

use crate::{
    helpers::{bump, frame_index, hist_add, now_ns, probe_syscall, target_tid},
    interference::settle,
    maps::{FUNC_SYSCALLS, SYSCALL_HIST, SYSCALL_STATS, TRAMPOLINE, config},
    thread::{thread_state, thread_state_or_new},
    top::note_top,
};

/// `-MAX_ERRNO`: syscall return values in [-4095, -1] are errors.
const MAX_ERRNO: i64 = 4095;

// The syscall programs are BTF tracepoints: their arguments are typed, so sys_exit reads the
// syscall number straight from the registers and drops `uretprobe` (every traced return is one)
// before any map lookup.

#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter(ctx: BtfTracePointContext) -> i32 {
    // sys_enter(struct pt_regs *regs, long id)
    let nr: u64 = ctx.arg(1);
    // Our own probes' syscalls: every traced return, and every hit of an optimised nop5 probe.
    if nr == u64::from(SYSCALL_NR_URETPROBE) {
        note_trampoline(&ctx);
        return 0;
    }
    if nr == u64::from(SYSCALL_NR_UPROBE) {
        return 0;
    }
    let Some(_) = target_tid() else { return 0 };
    bump(Counter::TargetSyscalls);
    let table = config().syscall_table != 0;
    let st = if table {
        // Counted at entry, like `strace -c` and bpftrace on sys_enter: a syscall that never
        // returns (exit_group, a thread killed in futex) still happened.
        if let Some(s) = SYSCALL_STATS.get_ptr_mut(nr as u32) {
            // SAFETY: valid per-CPU map value.
            unsafe { (*s).count += 1 };
        }
        thread_state_or_new()
    } else {
        // Without the table only attribution needs syscalls: one outside every traced call (no
        // open frame; none can open before it returns) is left alone.
        thread_state().filter(|st| {
            // SAFETY: see `functions::begin_entry`.
            unsafe { (**st).depth != 0 }
        })
    };
    let Some(st) = st else {
        return 0;
    };
    let now = now_ns();
    // SAFETY: see `functions::begin_entry`.
    let st = unsafe { &mut *st };
    settle(st);
    st.sys_interf_ns = 0;
    st.in_syscall = 1;
    st.sys_nr = nr as u32;
    st.sys_entry_ts_ns = now;
    st.sys_offcpu_ns = 0;
    0
}

/// The uretprobe syscall is made by the trampoline every traced return goes through, from inside
/// it: the first one of the target tells where that trampoline is, at the start of the page of the
/// syscall's return address (`uprobe_get_trampoline_vaddr` is the `[uprobes]` area's start, and
/// the trampoline is its first slot). Later ones cost a map read.
#[inline(always)]
fn note_trampoline(ctx: &BtfTracePointContext) {
    let Some(t) = TRAMPOLINE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a valid map value; every writer stores the same value.
    if unsafe { *t } != 0 || target_tid().is_none() {
        return;
    }
    let regs: *const pt_regs = ctx.arg(0);
    // SAFETY: a BTF-typed tracepoint argument: the verifier checks this load against struct pt_regs.
    let ip = unsafe { (*regs).rip };
    // SAFETY: as above.
    unsafe { *t = ip & !(PAGE_BYTES - 1) };
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    // sys_exit(struct pt_regs *regs, long ret)
    let regs: *const pt_regs = ctx.arg(0);
    // SAFETY: a BTF-typed tracepoint argument: the verifier checks this load against struct pt_regs.
    let nr = unsafe { (*regs).orig_rax };
    // The uretprobe syscall leaves orig_ax at -1 (no syscall to restart) by the time it exits.
    if probe_syscall(nr) || nr >= u64::from(MAX_SYSCALLS) {
        return 0;
    }
    let Some(_) = target_tid() else { return 0 };
    let Some(st) = thread_state() else {
        return 0;
    };
    // SAFETY: see `functions::begin_entry`.
    let st = unsafe { &mut *st };
    if st.in_syscall == 0 {
        return 0;
    }
    // Interference inside the syscall: counted in the frame's interference parts, so taken out
    // of its syscall time below (as off-CPU time is).
    settle(st);
    st.in_syscall = 0;
    let now = now_ns();
    let ret: i64 = ctx.arg(1);
    let nr = st.sys_nr;
    let wall_ns = now.saturating_sub(st.sys_entry_ts_ns);
    bump(Counter::Syscalls);
    if config().syscall_table != 0 {
        record_syscall(nr, ret, wall_ns);
    }
    attribute_syscall(st, nr, wall_ns);
    0
}

/// The syscall table's numbers (`--syscalls`) of a completed syscall.
#[inline(always)]
fn record_syscall(nr: u32, ret: i64, wall_ns: u64) {
    if let Some(s) = SYSCALL_STATS.get_ptr_mut(nr) {
        // SAFETY: valid per-CPU map value.
        unsafe {
            (*s).completed += 1;
            (*s).total_ns += wall_ns;
            if (-MAX_ERRNO..0).contains(&ret) {
                (*s).errors += 1;
            }
            if wall_ns > (*s).max_ns {
                (*s).max_ns = wall_ns;
            }
        }
    }
    hist_add(&SYSCALL_HIST, nr, wall_ns);
}

/// A completed syscall `nr` of `wall_ns`, attributed to the thread's innermost traced frame, if any.
#[inline(always)]
fn attribute_syscall(st: &mut ThreadState, nr: u32, wall_ns: u64) {
    let depth = st.depth;
    if depth == 0 || depth > MAX_DEPTH {
        return;
    }
    let frame = &mut st.frames[frame_index(depth - 1)];
    // Off-CPU time inside the syscall is already in the frame's off-CPU parts.
    frame.syscalls_ns += wall_ns.saturating_sub(st.sys_offcpu_ns).saturating_sub(st.sys_interf_ns);
    frame.syscall_count += 1;
    note_top(&mut frame.top_syscalls, nr, wall_ns);
    count_in_function(frame.fn_id, nr, wall_ns);
}

/// One syscall `nr` of `ns` in function `fn_id`'s per-syscall totals.
#[inline(always)]
pub(crate) fn count_in_function(fn_id: u32, nr: u32, ns: u64) {
    let key = FuncSyscallKey { fn_id, nr };
    match FUNC_SYSCALLS.get_ptr_mut(key) {
        // SAFETY: valid per-CPU map value.
        Some(t) => unsafe {
            (*t).count += 1;
            (*t).total_ns += ns;
        },
        None => {
            let t = SyscallTotals { count: 1, total_ns: ns };
            if FUNC_SYSCALLS.insert(key, t, 0).is_err() {
                bump(Counter::AttrMapFull);
            }
        }
    }
}
