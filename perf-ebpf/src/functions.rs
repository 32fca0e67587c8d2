//! The function programs: entry and return probes, the session program (both in one), and the
//! count-only, latency-only and empty/clock floor variants perf-user attaches to the traced functions.

use aya_ebpf::{
    EbpfContext,
    helpers::generated::{bpf_get_attach_cookie, bpf_get_func_ip},
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use core::ffi::c_void;
use perf_ebpf_common::{
    Counter, HIST_KIND_TOTAL, SLOW_FROZEN, ThreadState, func_stats_index, latency_cookie, latency_cookie_read,
};

use crate::{
    helpers::{bump, frame_index, hist_add, now_ns},
    interference::settle,
    maps::{FUNC_HIST, FUNC_SLOW, FUNC_STATS, config, epoch},
    record::{Call, count_call, record_call, record_path, remember_nested, stats_add},
    sampling::{sample_draw, sampled_in},
    thread::{drop_dead_frames, pop_frame, push_frame, thread_state, thread_state_or_new},
    top::note_top,
};

/// Entry-only mode (binaries that may unwind through a probed frame, where a uretprobe would
/// abort the process): counts calls, times nothing.
#[uprobe]
pub fn func_count(ctx: ProbeContext) -> u32 {
    bump(Counter::ProbeHits);
    // SAFETY: the helper only reads the attach cookie of the running program's link.
    let fn_id = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    count_call(fn_id);
    0
}

/// The floor for benchmarks: the same attach points with programs that do nothing.
#[uprobe]
pub fn func_entry_empty(_ctx: ProbeContext) -> u32 {
    0
}

#[uretprobe]
pub fn func_exit_empty(_ctx: RetProbeContext) -> u32 {
    0
}

/// The floor of session attachment: runs at entry and, returning 0, at return too. With
/// `--sample N` it skips the return probe as `func_session` skips a sampled-out call's (the same
/// draw, nothing else), which makes it the floor of sampled tracing.
/// Written without `#[uprobe]`, whose wrapper always returns 0.
#[unsafe(no_mangle)]
#[unsafe(link_section = "uprobe")]
extern "C" fn func_session_empty(_ctx_ptr: *mut c_void) -> u32 {
    if config().sample_every <= 1 {
        return 0;
    }
    // SAFETY: as in `func_session`.
    let cookie = unsafe { bpf_session_cookie() };
    // A set cookie is the return of a call drawn at entry; null: the kernel lacks the kfunc.
    // SAFETY: see above.
    if cookie.is_null() || unsafe { *cookie } != 0 {
        return 0;
    }
    if !sample_draw() {
        return 1;
    }
    // SAFETY: see above.
    unsafe { *cookie = 1 };
    0
}

/// The floor of timing a call (`--probe-mode clock`, benchmarks): the empty session program plus
/// what any per-call timer must do, one clock read at entry and one at return, the entry's kept
/// in the session cookie and the return's difference stored back so neither read is optimised out.
/// Measured beside `func_session_empty`, it tells how much of perf-user's cost is the clock alone.
/// Written without `#[uprobe]`, whose wrapper always returns 0.
#[unsafe(no_mangle)]
#[unsafe(link_section = "uprobe")]
extern "C" fn func_session_clock(_ctx_ptr: *mut c_void) -> u32 {
    // SAFETY: as in `func_session`.
    let cookie = unsafe { bpf_session_cookie() };
    if cookie.is_null() {
        return 1;
    }
    let now = now_ns();
    // SAFETY: see above. A set cookie is the return (as in `func_latency`); the clock is never 0.
    unsafe { *cookie = if *cookie == 0 { now } else { now.wrapping_sub(*cookie) } };
    0
}

/// Entry and return in one program, attached as a `uprobe_multi` session. At entry it returns 0
/// to be called again at the return, or 1 to skip the return probe (an untimed, sampled-out call).
/// Written without `#[uprobe]`, whose wrapper always returns 0.
#[unsafe(no_mangle)]
#[unsafe(link_section = "uprobe")]
extern "C" fn func_session(ctx_ptr: *mut c_void) -> u32 {
    let ctx = ProbeContext::new(ctx_ptr);
    // SAFETY: a kprobe-type program's context is the trapped task's pt_regs.
    let sp = unsafe { (*ctx.regs).rsp };
    // SAFETY: the kfunc returns this session's cookie slot, valid for the program run; null only
    // where the loader found no such kfunc in the kernel.
    let cookie = unsafe { bpf_session_cookie() };
    if cookie.is_null() {
        return func_session_by_ip(ctx_ptr, sp);
    }
    // The kernel zeroes the cookie at every entry (see `func_latency`); a timed entry stores its
    // function id + 1, so the return needs neither bpf_get_func_ip nor the attach cookie.
    // SAFETY: see above.
    let saved = unsafe { *cookie };
    if saved != 0 {
        func_return((saved - 1) as u32, sp, now_ns());
        return 0;
    }
    match session_entry(ctx_ptr, sp) {
        Some(fn_id) => {
            // SAFETY: see above.
            unsafe { *cookie = u64::from(fn_id) + 1 };
            0
        }
        // Untimed (sampled out, no thread state): skip the return probe.
        None => 1,
    }
}

/// `func_session` on a kernel without `bpf_session_cookie`: at entry the kernel points ip at the
/// probed address, which is what bpf_get_func_ip returns; at return ip is the return address in
/// the caller.
#[inline(always)]
fn func_session_by_ip(ctx_ptr: *mut c_void, sp: u64) -> u32 {
    let ctx = ProbeContext::new(ctx_ptr);
    // SAFETY: as in `func_session`; the helper reads the running program's attach context only.
    let is_return = unsafe { (*ctx.regs).rip != bpf_get_func_ip(ctx_ptr) };
    if is_return {
        let now = now_ns();
        // SAFETY: as in `begin_entry`.
        let fn_id = unsafe { bpf_get_attach_cookie(ctx_ptr) } as u32;
        func_return(fn_id, sp, now);
        return 0;
    }
    if session_entry(ctx_ptr, sp).is_some() { 0 } else { 1 }
}

/// A session's entry: the timed call's function id, or `None` when it is left untimed.
#[inline(always)]
fn session_entry(ctx_ptr: *mut c_void, sp: u64) -> Option<u32> {
    let (fn_id, st) = begin_entry(ctx_ptr, sp)?;
    if config().sample_every > 1 && !sampled_in(st, fn_id, sp) {
        return None;
    }
    push_frame(st, fn_id, sp, now_ns());
    Some(fn_id)
}

unsafe extern "C" {
    /// The 8 bytes a uprobe session keeps from a call's entry to its return (kfunc, 6.13+). The
    /// call instruction is made a kfunc call by perf-user's loader (aya 0.14 cannot), which also
    /// checks the kernel's prototype takes no argument.
    fn bpf_session_cookie() -> *mut u64;
}

/// Latency only (`--latency-only`): a session program that keeps the entry timestamp in the
/// session cookie, so a call costs two clock reads and three per-CPU array updates; no thread
/// state, no attribution. With `--sample N` each call is timed with probability 1/N on its own.
/// No target check: a session link is scoped to the target's threads by the kernel; probe hits
/// are derived from the counts by userspace.
#[unsafe(no_mangle)]
#[unsafe(link_section = "uprobe")]
extern "C" fn func_latency(ctx_ptr: *mut c_void) -> u32 {
    // SAFETY: the kfunc returns this session's cookie slot, valid for the program run.
    let cookie = unsafe { bpf_session_cookie() };
    if cookie.is_null() {
        return 1;
    }
    // The kernel starts every call's cookie at 0 (uprobes' handler_chain), and the entry stores a
    // CLOCK_MONOTONIC reading, never 0: a set cookie means this is the return. Cheaper than
    // bpf_get_func_ip (~10 ns a run here); perf-user's calibration checks it holds.
    // SAFETY: see above.
    let is_return = unsafe { *cookie } != 0;
    if !is_return {
        // SAFETY: as in `begin_entry`.
        let fn_id = unsafe { bpf_get_attach_cookie(ctx_ptr) } as u32;
        count_call(fn_id);
        if config().sample_every > 1 && !sample_draw() {
            return 1;
        }
        // SAFETY: see above.
        unsafe { *cookie = latency_cookie(now_ns(), fn_id) };
        return 0;
    }
    let now = now_ns();
    // SAFETY: see above.
    let (fn_id, wall_ns) = latency_cookie_read(unsafe { *cookie }, now);
    if let Some(s) = FUNC_STATS.get_ptr_mut(func_stats_index(fn_id, epoch())) {
        stats_add(s, &Call::wall_only(wall_ns));
    }
    hist_add(&FUNC_HIST, 2 * fn_id + HIST_KIND_TOTAL, wall_ns);
    0
}

/// What every entry does first: the hit and call counts, and the thread's state with the frames
/// of calls that ended unseen dropped. `None` when the thread has no state (counted in
/// `lost.thread_map_full`).
#[inline(always)]
fn begin_entry(ctx: *mut c_void, sp: u64) -> Option<(u32, &'static mut ThreadState)> {
    bump(Counter::ProbeHits);
    // SAFETY: the helper only reads the attach cookie of the running program's link.
    let fn_id = unsafe { bpf_get_attach_cookie(ctx) } as u32;
    count_call(fn_id);
    let st = thread_state_or_new()?;
    // SAFETY: `st` is the current thread's task storage; a thread's state is only touched by
    // that thread's programs (and sched_switch on its CPU), which never run concurrently.
    let st = unsafe { &mut *st };
    drop_dead_frames(st, sp);
    Some((fn_id, st))
}

#[uprobe]
pub fn func_entry(ctx: ProbeContext) -> u32 {
    // SAFETY: a kprobe-type program's context is the trapped task's pt_regs.
    let sp = unsafe { (*ctx.regs).rsp };
    func_entry_at(ctx.as_ptr(), sp);
    0
}

/// A call's entry at stack pointer `sp`; true when it is timed (has a frame to return to).
#[inline(always)]
fn func_entry_at(ctx: *mut c_void, sp: u64) -> bool {
    let Some((fn_id, st)) = begin_entry(ctx, sp) else {
        return false;
    };
    push_frame(st, fn_id, sp, now_ns());
    true
}

#[uretprobe]
pub fn func_exit(ctx: RetProbeContext) -> u32 {
    // SAFETY: as in `func_entry`.
    let sp = unsafe { (*ctx.regs).rsp };
    let now = now_ns();
    // SAFETY: as in `begin_entry`.
    let fn_id = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    func_return(fn_id, sp, now);
    0
}

/// A call's return at time `now`, `sp` being the stack pointer after `ret`.
#[inline(always)]
fn func_return(fn_id: u32, sp: u64, now: u64) {
    bump(Counter::ProbeHits);
    // The exemplar threshold, read first: a frozen function (perf-user's last reading) records
    // nothing more, in any map, so the function and path totals it reads agree.
    let slow_ns = FUNC_SLOW.get(fn_id).copied().unwrap_or(0);
    if slow_ns == SLOW_FROZEN {
        return;
    }
    // After `ret` popped the return address, sp is 8 above the entry's stack pointer.
    let entry_sp = sp.wrapping_sub(8);
    let Some(st) = thread_state() else {
        bump(Counter::OrphanReturn);
        return;
    };
    // SAFETY: as in `begin_entry`.
    let st = unsafe { &mut *st };
    // What interfered since the last event was the returning call's.
    settle(st);
    let Some(idx) = pop_frame(st, fn_id, entry_sp) else {
        return;
    };
    let frame = &st.frames[frame_index(idx)];
    let call = Call::of_frame(frame, now);
    let parent = if idx > 0 {
        let caller = &st.frames[frame_index(idx - 1)];
        (caller.path_id, caller.fn_id)
    } else {
        (0, 0)
    };
    // Before the per-call recording: in this order the verifier's walk of the program stays far
    // below its 1M-instruction limit (the other order exceeded it, E2BIG at load).
    let epoch = epoch();
    if config().call_paths != 0 {
        record_path(frame, parent, idx, epoch, &call);
    }
    record_call(fn_id, epoch, &call, frame, st, slow_ns);
    if idx > 0 {
        let entry_ts_ns = frame.entry_ts_ns;
        let caller = &mut st.frames[frame_index(idx - 1)];
        caller.callees_ns += call.wall_ns;
        note_top(&mut caller.top_callees, fn_id, call.wall_ns);
        remember_nested(st, fn_id, idx, entry_ts_ns, call.wall_ns);
    }
}
