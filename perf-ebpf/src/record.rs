//! What a call leaves in the maps: its count at entry, and at return its wall time and five parts
//! in the per-function totals and histograms, per thread with `--per-thread`, and as an exemplar when slow.

use aya_ebpf::helpers::bpf_get_current_comm;
use perf_ebpf_common::{
    Counter, Exemplar, Frame, FuncStats, HIST_KIND_SELF, HIST_KIND_TOTAL, Interf, PathStats, RECENT_CALLS, RecentCall,
    ThreadFuncKey, ThreadState, call_path_key, func_stats_index,
};

use crate::{
    helpers::{bump, current_tid, hist_add},
    maps::{CALL_PATHS, EXEMPLARS, FUNC_HIST, FUNC_STATS, THREAD_FUNC_STATS, config, epoch},
};

/// `bpf_ringbuf_submit` flag: do not wake the reader; userspace drains on a timer.
const BPF_RB_NO_WAKEUP: u64 = 1;

/// The attribution of one completed call.
pub(crate) struct Call {
    pub(crate) wall_ns: u64,
    pub(crate) self_oncpu_ns: u64,
    pub(crate) callees_ns: u64,
    pub(crate) syscalls_ns: u64,
    pub(crate) offcpu_blocked_ns: u64,
    pub(crate) offcpu_runqueue_ns: u64,
    pub(crate) syscall_count: u64,
    pub(crate) interf: Interf,
}

impl Call {
    /// A call timed without attribution (`--latency-only`): the parts stay 0, which `stats_add`'s
    /// additions of them compile away.
    #[inline(always)]
    pub(crate) fn wall_only(wall_ns: u64) -> Call {
        Call {
            wall_ns,
            self_oncpu_ns: 0,
            callees_ns: 0,
            syscalls_ns: 0,
            offcpu_blocked_ns: 0,
            offcpu_runqueue_ns: 0,
            syscall_count: 0,
            interf: Interf::default(),
        }
    }

    /// The call whose shadow-stack frame is `frame`, returning at `now`: own CPU time is what the
    /// other parts leave of the wall time.
    #[inline(always)]
    pub(crate) fn of_frame(frame: &Frame, now: u64) -> Call {
        let wall_ns = now.saturating_sub(frame.entry_ts_ns);
        let accounted = frame
            .callees_ns
            .saturating_add(frame.syscalls_ns)
            .saturating_add(frame.offcpu_blocked_ns)
            .saturating_add(frame.offcpu_runqueue_ns);
        // The interference parts fit in what is left, so the parts sum to the wall time even when
        // two sources saw the same nanoseconds (steal while an interrupt handler ran is in both).
        let mut room = wall_ns.saturating_sub(accounted);
        let mut interf = frame.interf;
        interf.irq_ns = interf.irq_ns.min(room);
        room -= interf.irq_ns;
        interf.softirq_ns = interf.softirq_ns.min(room);
        room -= interf.softirq_ns;
        interf.steal_ns = interf.steal_ns.min(room);
        room -= interf.steal_ns;
        Call {
            wall_ns,
            self_oncpu_ns: room,
            callees_ns: frame.callees_ns,
            syscalls_ns: frame.syscalls_ns,
            offcpu_blocked_ns: frame.offcpu_blocked_ns,
            offcpu_runqueue_ns: frame.offcpu_runqueue_ns,
            syscall_count: frame.syscall_count,
            interf,
        }
    }
}

#[inline(always)]
pub(crate) fn stats_add(s: *mut FuncStats, c: &Call) {
    // SAFETY: `s` points to a valid per-CPU (or hash) map value owned by this CPU for this program run.
    unsafe {
        if (*s).count == 0 || c.wall_ns < (*s).min_ns {
            (*s).min_ns = c.wall_ns;
        }
        if c.wall_ns > (*s).max_ns {
            (*s).max_ns = c.wall_ns;
        }
        (*s).count += 1;
        (*s).total_ns += c.wall_ns;
        (*s).self_oncpu_ns += c.self_oncpu_ns;
        (*s).callees_ns += c.callees_ns;
        (*s).syscalls_ns += c.syscalls_ns;
        (*s).offcpu_blocked_ns += c.offcpu_blocked_ns;
        (*s).offcpu_runqueue_ns += c.offcpu_runqueue_ns;
        (*s).syscall_count += c.syscall_count;
        // Zero in latency-only calls and without `--interference`; these additions stay cheap.
        (*s).irq_ns += c.interf.irq_ns;
        (*s).softirq_ns += c.interf.softirq_ns;
        (*s).steal_ns += c.interf.steal_ns;
        (*s).irq_count += u64::from(c.interf.irq_count);
        (*s).timer_count += u64::from(c.interf.timer_count);
        (*s).page_faults += u64::from(c.interf.page_faults);
        (*s).switches_voluntary += u64::from(c.interf.switches_voluntary);
        (*s).switches_involuntary += u64::from(c.interf.switches_involuntary);
        (*s).migrations += u64::from(c.interf.migrations);
        (*s).major_faults += u64::from(c.interf.major_faults);
    }
}

/// One more call of `fn_id` entered, timed or not.
#[inline(always)]
pub(crate) fn count_call(fn_id: u32) {
    if let Some(s) = FUNC_STATS.get_ptr_mut(func_stats_index(fn_id, epoch())) {
        // SAFETY: valid per-CPU map value.
        unsafe { (*s).calls += 1 };
    }
}

/// A completed, attributed call of `fn_id` whose frame (already popped) is `frame`, on the thread
/// whose state is `st` (its ring of recent nested calls goes with an exemplar), into epoch copy
/// `epoch`; `func_slow_ns` is its `FUNC_SLOW` threshold (0: the run's).
#[inline(always)]
pub(crate) fn record_call(fn_id: u32, epoch: u32, call: &Call, frame: &Frame, st: &ThreadState, func_slow_ns: u64) {
    if let Some(s) = FUNC_STATS.get_ptr_mut(func_stats_index(fn_id, epoch)) {
        stats_add(s, call);
    }
    hist_add(&FUNC_HIST, 2 * fn_id + HIST_KIND_TOTAL, call.wall_ns);
    hist_add(&FUNC_HIST, 2 * fn_id + HIST_KIND_SELF, call.self_oncpu_ns);
    let cfg = config();
    if cfg.per_thread != 0 {
        let key = ThreadFuncKey { tid: current_tid(), fn_id };
        let mut s = THREAD_FUNC_STATS.get_ptr_mut(key);
        if s.is_none() {
            if THREAD_FUNC_STATS.insert(key, FuncStats::default(), 0).is_err() {
                bump(Counter::AttrMapFull);
            }
            s = THREAD_FUNC_STATS.get_ptr_mut(key);
        }
        if let Some(s) = s {
            stats_add(s, call);
        }
    }
    let slow_ns = if func_slow_ns != 0 { func_slow_ns } else { cfg.slow_ns };
    if slow_ns != 0 && call.wall_ns >= slow_ns {
        send_exemplar(fn_id, current_tid(), call, frame, st);
    }
}

/// A completed call whose frame (already popped, at `depth`) is `frame`, called through the path
/// `parent` (path id, function): added to its call path's totals in epoch copy `epoch`, the path
/// created there on its first call.
#[inline(always)]
pub(crate) fn record_path(frame: &Frame, parent: (u64, u32), depth: u32, epoch: u32, c: &Call) {
    let key = call_path_key(frame.path_id, epoch);
    let Some(p) = CALL_PATHS.get_ptr_mut(key) else {
        let v = PathStats {
            parent: parent.0,
            fn_id: frame.fn_id,
            depth,
            parent_fn_id: parent.1,
            _pad: 0,
            count: 1,
            total_ns: c.wall_ns,
            self_oncpu_ns: c.self_oncpu_ns,
            callees_ns: c.callees_ns,
            syscalls_ns: c.syscalls_ns,
            offcpu_blocked_ns: c.offcpu_blocked_ns,
            offcpu_runqueue_ns: c.offcpu_runqueue_ns,
        };
        if CALL_PATHS.insert(key, v, 0).is_err() {
            bump(Counter::AttrMapFull);
        }
        return;
    };
    // SAFETY: a valid per-CPU map value, this CPU's for this program run.
    unsafe {
        // The insert set these on its own CPU only (the kernel zeroes the other CPUs' copies):
        // a CPU's first call of the path names it there, once, so every copy with calls names its
        // path (userspace reads identity from a copy with calls only) and the hot path skips four
        // stores per return.
        if (*p).count == 0 {
            (*p).parent = parent.0;
            (*p).fn_id = frame.fn_id;
            (*p).depth = depth;
            (*p).parent_fn_id = parent.1;
        }
        (*p).count += 1;
        (*p).total_ns += c.wall_ns;
        (*p).self_oncpu_ns += c.self_oncpu_ns;
        (*p).callees_ns += c.callees_ns;
        (*p).syscalls_ns += c.syscalls_ns;
        (*p).offcpu_blocked_ns += c.offcpu_blocked_ns;
        (*p).offcpu_runqueue_ns += c.offcpu_runqueue_ns;
    }
}

/// A nested call (its frame was at `depth` > 0) returned: the thread remembers it in its ring of
/// recent calls, for the slow call around it. Four stores; the oldest entry is overwritten.
#[inline(always)]
pub(crate) fn remember_nested(st: &mut ThreadState, fn_id: u32, depth: u32, frame_entry_ns: u64, wall_ns: u64) {
    let i = (st.recent_next as usize) & (RECENT_CALLS - 1);
    st.recent[i] = RecentCall { fn_id, depth, entry_ts_ns: frame_entry_ns, duration_ns: wall_ns };
    st.recent_next = st.recent_next.wrapping_add(1);
}

#[inline(always)]
fn send_exemplar(fn_id: u32, tid: u32, call: &Call, frame: &Frame, st: &ThreadState) {
    let Some(mut entry) = EXEMPLARS.reserve::<Exemplar>(0) else {
        bump(Counter::RingbufFull);
        return;
    };
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    let e = entry.as_mut_ptr();
    // Field by field into the reserved entry: the whole struct (with the ring) would not fit on the
    // 512-byte BPF stack.
    // SAFETY: `e` points to a reserved, writable ring-buffer entry of `size_of::<Exemplar>()` bytes;
    // every field is written before submit.
    unsafe {
        (*e).fn_id = fn_id;
        (*e).tid = tid;
        (*e).entry_ts_ns = frame.entry_ts_ns;
        (*e).duration_ns = call.wall_ns;
        (*e).self_oncpu_ns = call.self_oncpu_ns;
        (*e).callees_ns = call.callees_ns;
        (*e).syscalls_ns = call.syscalls_ns;
        (*e).offcpu_blocked_ns = call.offcpu_blocked_ns;
        (*e).offcpu_runqueue_ns = call.offcpu_runqueue_ns;
        (*e).syscall_count = call.syscall_count;
        (*e).top_syscalls = frame.top_syscalls;
        (*e).comm = comm;
        (*e).interf = call.interf;
        for i in 0..RECENT_CALLS {
            (*e).recent[i] = st.recent[i];
        }
        (*e).recent_next = st.recent_next;
        (*e)._pad = 0;
        (*e).top_callees = frame.top_callees;
    }
    entry.submit(BPF_RB_NO_WAKEUP);
    bump(Counter::Exemplars);
}
