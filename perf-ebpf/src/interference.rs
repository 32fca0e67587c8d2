//! `--interference`: what took a traced call's CPU away while it ran. Hard interrupts, the local
//! timer and softirqs add up per CPU; hypervisor steal is read from the kernel's `steal_time`.
//!
//! The interrupt programs fire system-wide and never look up a thread: they only keep this CPU's
//! running totals (`CPU_INTERF`). A target thread keeps a reading of them (`ThreadState::mark`),
//! taken when it comes on CPU; each of its events (entry, return, syscall entry and exit,
//! switch-out) adds the differences since to its innermost frame and takes a new reading. So a
//! call pays one per-CPU array read and one steal read per event, and an interrupt costs a few
//! stores whoever it interrupts. Time stolen or spent in interrupts while the thread was off CPU
//! never reaches a frame: the reading is retaken at switch-in.

use aya_ebpf::{
    helpers::{
        bpf_probe_read_kernel,
        generated::{bpf_get_current_task, bpf_get_smp_processor_id},
    },
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use perf_ebpf_common::{CpuInterf, INTERF_STEAL, MAX_DEPTH, ThreadState};

use crate::{
    helpers::{frame_index, now_ns, target_tid},
    maps::{CPU_INTERF, config, steal_layout, task_maj_flt_offset},
    sched::catch_up_switch_in,
    thread::thread_state,
};

/// This CPU's steal so far in ns (0 where not available), from the hypervisor's per-CPU steal
/// clock (`struct kvm_steal_time`), which it updates at every VM entry.
#[inline(always)]
fn steal_now(c: *mut CpuInterf) -> u64 {
    if config().interference & INTERF_STEAL == 0 {
        return 0;
    }
    // SAFETY: `c` is this CPU's map value (see `settle`); bpf_probe_read_kernel checks addresses.
    unsafe {
        let mut addr = (*c).steal_addr;
        if addr == 0 {
            let l = steal_layout();
            let task = bpf_get_current_task() as *const u8;
            let Ok(cfs_rq) = bpf_probe_read_kernel(task.wrapping_add(l.task_cfs_rq as usize).cast::<u64>()) else {
                return 0;
            };
            let Ok(rq) = bpf_probe_read_kernel((cfs_rq as *const u8).wrapping_add(l.cfs_rq_rq as usize).cast::<u64>())
            else {
                return 0;
            };
            addr = rq.wrapping_add(l.steal_minus_rq);
            (*c).steal_addr = addr;
        }
        bpf_probe_read_kernel(addr as *const u64).unwrap_or(0)
    }
}

#[inline(always)]
fn cpu() -> Option<*mut CpuInterf> {
    CPU_INTERF.get_ptr_mut(0)
}

/// Takes new readings for `st`, the current thread's state, first adding what happened since the
/// last ones to its innermost frame: its CPU's totals (see `settle_cpu`) and its own major-fault
/// count. Called at every event of a target thread while it is on CPU, in its own context.
///
/// First, a switch-in no `sched_switch` reported is closed (see `catch_up_switch_in`): every
/// event of the thread (entry, return, syscall entry and exit) comes through here, with or
/// without `--interference`.
#[inline(always)]
pub(crate) fn settle(st: &mut ThreadState) {
    if st.offcpu_start_ns != 0 {
        catch_up_switch_in(st, now_ns());
    }
    settle_on_cpu(st);
}

/// `settle` for a thread known to be on CPU since its last switch-in.
#[inline(always)]
fn settle_on_cpu(st: &mut ThreadState) {
    if config().interference == 0 {
        return;
    }
    settle_cpu(st);
    settle_faults(st);
}

/// The current thread's major faults since its last reading go to its innermost frame, unless
/// they were taken inside a syscall (the kernel's faults on user memory there, `copy_to_user`,
/// are the syscall's time, as `page_fault_user` leaves them out too). `maj_flt` is the thread's
/// own counter (`mm_account_fault`, what `getrusage` reports), bumped once a fault completes: the
/// delta between two events is exactly the faults that completed between them, wherever the
/// thread ran and however long it slept in them.
#[inline(always)]
fn settle_faults(st: &mut ThreadState) {
    let off = task_maj_flt_offset();
    if off == 0 {
        return;
    }
    // SAFETY: no arguments; the running task, which `st` belongs to (every caller runs in its
    // context). bpf_probe_read_kernel checks the address.
    let Ok(maj) = (unsafe {
        let task = bpf_get_current_task() as *const u8;
        bpf_probe_read_kernel(task.wrapping_add(off as usize).cast::<u64>())
    }) else {
        return;
    };
    let m = &mut st.mark;
    if m.flt_valid != 0 && st.in_syscall == 0 {
        let depth = st.depth;
        if depth != 0 && depth <= MAX_DEPTH {
            let f = &mut st.frames[frame_index(depth - 1)].interf;
            f.major_faults += maj.saturating_sub(m.maj_flt) as u32;
        }
    }
    m.maj_flt = maj;
    m.flt_valid = 1;
}

/// Takes a new reading of this CPU's totals for `st`, first adding what happened since the last
/// one to its innermost frame (and to its current syscall's interference) when that reading is
/// of this CPU.
#[inline(always)]
fn settle_cpu(st: &mut ThreadState) {
    let Some(c) = cpu() else { return };
    let steal = steal_now(c);
    // SAFETY: a valid per-CPU map value; the interrupt programs that write it do not run on this
    // CPU while a BPF program does (the kernel counts them as misses), and we only read.
    let c = unsafe { *c };
    let m = &mut st.mark;
    if m.valid != 0 {
        let irq = c.irq_ns.saturating_sub(m.irq_ns);
        let softirq = c.softirq_ns.saturating_sub(m.softirq_ns);
        let stolen = steal.saturating_sub(m.steal_ns);
        let irqs = c.irq_count.saturating_sub(m.irq_count) as u32;
        let timers = c.timer_count.saturating_sub(m.timer_count) as u32;
        if st.in_syscall != 0 {
            st.sys_interf_ns += irq + softirq + stolen;
        }
        let depth = st.depth;
        if depth != 0 && depth <= MAX_DEPTH {
            let f = &mut st.frames[frame_index(depth - 1)].interf;
            f.irq_ns += irq;
            f.softirq_ns += softirq;
            f.steal_ns += stolen;
            f.irq_count += irqs;
            f.timer_count += timers;
        }
    }
    m.irq_ns = c.irq_ns;
    m.softirq_ns = c.softirq_ns;
    m.steal_ns = steal;
    m.irq_count = c.irq_count;
    m.timer_count = c.timer_count;
    m.valid = 1;
}

/// The thread goes off CPU: settle, then forget the reading (it is of this CPU only).
#[inline(always)]
pub(crate) fn switch_out(st: &mut ThreadState, voluntary: bool) {
    if config().interference == 0 {
        return;
    }
    settle_on_cpu(st);
    st.mark.valid = 0;
    // SAFETY: no arguments.
    st.mark.last_cpu_plus1 = unsafe { bpf_get_smp_processor_id() } + 1;
    let depth = st.depth;
    if depth != 0 && depth <= MAX_DEPTH {
        let f = &mut st.frames[frame_index(depth - 1)].interf;
        if voluntary {
            f.switches_voluntary += 1;
        } else {
            f.switches_involuntary += 1;
        }
    }
}

/// The thread comes on CPU (this one): a migration if it left another, and a fresh reading of
/// the CPU's totals (not of its faults: `current` is still the outgoing thread here, and its own
/// counter did not move while it was off CPU).
#[inline(always)]
pub(crate) fn switch_in(st: &mut ThreadState) {
    if config().interference == 0 {
        return;
    }
    // SAFETY: no arguments.
    let here = unsafe { bpf_get_smp_processor_id() } + 1;
    let depth = st.depth;
    if st.mark.last_cpu_plus1 != 0 && st.mark.last_cpu_plus1 != here && depth != 0 && depth <= MAX_DEPTH {
        st.frames[frame_index(depth - 1)].interf.migrations += 1;
    }
    st.mark.valid = 0;
    settle_cpu(st);
}

#[inline(always)]
fn irq_begin() {
    if let Some(c) = cpu() {
        // SAFETY: this CPU's value; hard interrupt handlers do not nest.
        unsafe { (*c).irq_start_ns = now_ns() };
    }
}

#[inline(always)]
fn irq_end(timer: bool) {
    let Some(c) = cpu() else { return };
    // SAFETY: as in `irq_begin`.
    unsafe {
        let start = (*c).irq_start_ns;
        if start == 0 {
            return;
        }
        (*c).irq_start_ns = 0;
        (*c).irq_ns += now_ns().saturating_sub(start);
        (*c).irq_count += 1;
        if timer {
            (*c).timer_count += 1;
        }
    }
}

#[btf_tracepoint(function = "irq_handler_entry")]
pub fn irq_entry(_ctx: BtfTracePointContext) -> i32 {
    irq_begin();
    0
}

#[btf_tracepoint(function = "irq_handler_exit")]
pub fn irq_exit(_ctx: BtfTracePointContext) -> i32 {
    irq_end(false);
    0
}

#[btf_tracepoint(function = "local_timer_entry")]
pub fn local_timer_entry(_ctx: BtfTracePointContext) -> i32 {
    irq_begin();
    // The tick is where the kernel folds the steal clock into /proc/stat: keep the clock as of
    // then too, for user space's cross-check (one read per tick, steal off: none).
    if let Some(c) = cpu() {
        let steal = steal_now(c);
        if steal != 0 {
            // SAFETY: this CPU's value, as in `irq_begin`.
            unsafe { (*c).steal_tick_ns = steal };
        }
    }
    0
}

#[btf_tracepoint(function = "local_timer_exit")]
pub fn local_timer_exit(_ctx: BtfTracePointContext) -> i32 {
    irq_end(true);
    0
}

#[btf_tracepoint(function = "softirq_entry")]
pub fn softirq_entry(_ctx: BtfTracePointContext) -> i32 {
    if let Some(c) = cpu() {
        // SAFETY: this CPU's value; softirqs do not nest on a CPU.
        unsafe {
            (*c).softirq_start_ns = now_ns();
            (*c).softirq_start_irq_ns = (*c).irq_ns;
        }
    }
    0
}

#[btf_tracepoint(function = "softirq_exit")]
pub fn softirq_exit(_ctx: BtfTracePointContext) -> i32 {
    let Some(c) = cpu() else { return 0 };
    // SAFETY: as in `softirq_entry`.
    unsafe {
        let start = (*c).softirq_start_ns;
        if start == 0 {
            return 0;
        }
        (*c).softirq_start_ns = 0;
        let inner_irq = (*c).irq_ns.saturating_sub((*c).softirq_start_irq_ns);
        (*c).softirq_ns += now_ns().saturating_sub(start).saturating_sub(inner_irq);
    }
    0
}

/// A user page fault of a target thread, counted in its innermost frame.
#[btf_tracepoint(function = "page_fault_user")]
pub fn page_fault_user(_ctx: BtfTracePointContext) -> i32 {
    let Some(_) = target_tid() else { return 0 };
    let Some(st) = thread_state() else { return 0 };
    // SAFETY: the current thread's state (see `functions::begin_entry`).
    let st = unsafe { &mut *st };
    let depth = st.depth;
    if depth != 0 && depth <= MAX_DEPTH {
        st.frames[frame_index(depth - 1)].interf.page_faults += 1;
    }
    0
}
