//! Kernel side of perf-ebpf: times every call of the traced functions of one process and splits it
//! into own CPU, callees, syscalls and off-CPU time (see ATTRIBUTION.md), aggregating in per-CPU maps.
#![no_std]
#![no_main]

use aya_ebpf::{
    EbpfContext,
    bindings::{pt_regs, task_struct},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user,
        generated::{
            bpf_get_attach_cookie, bpf_get_current_task_btf, bpf_get_func_ip, bpf_get_prandom_u32,
            bpf_task_storage_delete, bpf_task_storage_get,
        },
    },
    macros::{btf_tracepoint, map, raw_tracepoint, uprobe, uretprobe},
    maps::{Array, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{BtfTracePointContext, ProbeContext, RawTracePointContext, RetProbeContext},
};
use core::ffi::c_void;
use perf_ebpf_common::{
    COUNTER_ATTR_MAP_FULL, COUNTER_COUNT, COUNTER_DEPTH_OVERFLOW, COUNTER_EXEMPLARS, COUNTER_ORPHAN_ENTRY,
    COUNTER_ORPHAN_RETURN, COUNTER_PROBE_HITS, COUNTER_RINGBUF_FULL, COUNTER_SWITCHES, COUNTER_SYSCALLS,
    COUNTER_THREAD_MAP_FULL, Config, EXEMPLAR_RING_BYTES, Exemplar, FRAME_TOP_SYSCALLS, Frame, FuncStats,
    FuncSyscallKey, HIST_BUCKETS, HIST_KIND_SELF, HIST_KIND_TOTAL, Hist, MAX_DEPTH, MAX_FUNC_SYSCALLS, MAX_FUNCS,
    MAX_SYSCALLS, MAX_THREAD_FUNCS, OFFCPU_BLOCKED, OFFCPU_NONE, OFFCPU_RUNQUEUE, SYSCALL_NR_UPROBE,
    SYSCALL_NR_URETPROBE, SyscallSlot, SyscallStats, SyscallTotals, ThreadFuncKey, ThreadState, hist_bucket,
    latency_cookie, latency_cookie_read, xorshift64,
};

// ---------------------------------------------------------------------------------------------
// Globals, set by the loader before load (read-only afterwards, so the verifier sees constants)
// ---------------------------------------------------------------------------------------------

#[unsafe(no_mangle)]
static TARGET_TGID: u32 = 0;
/// Byte offset of `tgid` in `struct task_struct`, read by the loader from the kernel's BTF.
#[unsafe(no_mangle)]
static TASK_TGID_OFFSET: u32 = 0;

/// Load-time knobs (see `Config`).
#[unsafe(no_mangle)]
static CONFIG: Config = Config { slow_ns: 0, per_thread: 0, sample_every: 0, sample_below: 0, _pad: 0 };

#[inline(always)]
fn target_tgid() -> u32 {
    // SAFETY: a plain read of a global the loader wrote before load; volatile so the compiler does
    // not fold the zero initialiser.
    unsafe { core::ptr::read_volatile(&TARGET_TGID) }
}

#[inline(always)]
fn config() -> Config {
    // SAFETY: as in `target_tgid`.
    unsafe { core::ptr::read_volatile(&CONFIG) }
}

// ---------------------------------------------------------------------------------------------
// Maps (names and value types from perf-ebpf-common)
// ---------------------------------------------------------------------------------------------

#[map(name = "FUNC_STATS")]
static FUNC_STATS: PerCpuArray<FuncStats> = PerCpuArray::with_max_entries(MAX_FUNCS, 0);
/// Two histograms per function: `2 * fn_id + HIST_KIND_{TOTAL,SELF}`.
#[map(name = "FUNC_HIST")]
static FUNC_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(2 * MAX_FUNCS, 0);
/// Per-function exemplar threshold in ns (0: use `Config::slow_ns`), kept at p99.9 by `--slow auto`.
#[map(name = "FUNC_SLOW")]
static FUNC_SLOW: Array<u64> = Array::with_max_entries(MAX_FUNCS, 0);
/// Functions seen enclosing other traced calls (1), set by the kernel: only an untimed call of
/// one of these needs its return address read (`bpf_probe_read_user`, ~65 ns here) to tell later
/// whether the calls below it are nested in it (see `sampled_in`).
#[map(name = "FUNC_NESTS")]
static FUNC_NESTS: Array<u32> = Array::with_max_entries(MAX_FUNCS, 0);
#[map(name = "FUNC_SYSCALLS")]
static FUNC_SYSCALLS: PerCpuHashMap<FuncSyscallKey, SyscallTotals> =
    PerCpuHashMap::with_max_entries(MAX_FUNC_SYSCALLS, 0);
#[map(name = "THREAD_FUNC_STATS")]
static THREAD_FUNC_STATS: PerCpuHashMap<ThreadFuncKey, FuncStats> =
    PerCpuHashMap::with_max_entries(MAX_THREAD_FUNCS, 0);
#[map(name = "SYSCALL_STATS")]
static SYSCALL_STATS: PerCpuArray<SyscallStats> = PerCpuArray::with_max_entries(MAX_SYSCALLS, 0);
#[map(name = "SYSCALL_HIST")]
static SYSCALL_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(MAX_SYSCALLS, 0);
/// A BTF-defined task-local storage map (aya-ebpf 0.2 has no type for it): the fields only carry
/// the map's type, key, value and flags in their BTF; the loader creates the map from that.
#[repr(C)]
struct TaskStorage<V> {
    r#type: *const [i32; BPF_MAP_TYPE_TASK_STORAGE],
    key: *const i32,
    value: *const V,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; BPF_F_NO_PREALLOC],
}
// SAFETY: never dereferenced; only its address is passed to helpers.
unsafe impl<V> Sync for TaskStorage<V> {}
const BPF_MAP_TYPE_TASK_STORAGE: usize = 29;
const BPF_F_NO_PREALLOC: usize = 1;
const BPF_LOCAL_STORAGE_GET_F_CREATE: u64 = 1;

/// Each target thread's shadow stack and syscall/off-CPU state, stored on the task itself: found
/// without hashing, created zeroed on first use, freed by the kernel with the thread.
#[unsafe(link_section = ".maps")]
#[unsafe(export_name = "THREADS")]
static THREADS: TaskStorage<ThreadState> = TaskStorage {
    r#type: core::ptr::null(),
    key: core::ptr::null(),
    value: core::ptr::null(),
    max_entries: core::ptr::null(),
    map_flags: core::ptr::null(),
};
#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);
/// Each CPU's sampling generator state (see `sample_draw`).
#[map(name = "SAMPLE_RNG")]
static SAMPLE_RNG: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "EXEMPLARS")]
static EXEMPLARS: RingBuf = RingBuf::with_byte_size(EXEMPLAR_RING_BYTES, 0);

/// `bpf_ringbuf_submit` flag: do not wake the reader; userspace drains on a timer.
const BPF_RB_NO_WAKEUP: u64 = 1;
/// `-MAX_ERRNO`: syscall return values in [-4095, -1] are errors.
const MAX_ERRNO: i64 = 4095;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: reads CLOCK_MONOTONIC; no pointers involved.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn bump(counter: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(counter) {
        // SAFETY: a valid per-CPU slot; only this CPU writes it and we are not preempted in BPF.
        unsafe { *c += 1 };
    }
}

/// A frame index the verifier can bound: callers already know `i < MAX_DEPTH`, but after loop
/// arithmetic LLVM may drop that knowledge, so hide the value from the optimiser and mask it
/// (MAX_DEPTH is a power of two, so the mask never changes a valid index).
#[inline(always)]
fn frame_index(i: u32) -> usize {
    // SAFETY: a volatile read of a local.
    let i = unsafe { core::ptr::read_volatile(&i) };
    (i & (MAX_DEPTH - 1)) as usize
}

/// The running thread's id. The function programs need no target check: every uprobe link is
/// created for the target's pid, and the kernel runs its program for that process only (a
/// `uprobe_multi` link checks the thread group, a perf-event uprobe the mm).
#[inline(always)]
fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// The current thread's id if it belongs to the target, else `None`: the first filter of the
/// tracepoint programs, which see every process.
#[inline(always)]
fn target_tid() -> Option<u32> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 != target_tgid() {
        return None;
    }
    Some(pid_tgid as u32)
}

/// `THREADS` as the task-storage helpers take it.
#[inline(always)]
fn threads_map() -> *mut c_void {
    core::ptr::from_ref(&THREADS).cast_mut().cast()
}

#[inline(always)]
fn task_state(task: *mut task_struct, flags: u64) -> Option<*mut ThreadState> {
    let map = threads_map();
    // SAFETY: `map` is the task storage map, `task` a task pointer the verifier has typed (the
    // current task, or a BTF tracepoint's argument); a null value with F_CREATE zero-fills.
    let st = unsafe { bpf_task_storage_get(map, task, core::ptr::null_mut(), flags) }.cast::<ThreadState>();
    if st.is_null() { None } else { Some(st) }
}

/// The current thread's state, if it has one.
#[inline(always)]
fn thread_state() -> Option<*mut ThreadState> {
    // SAFETY: no arguments; returns the running task.
    task_state(unsafe { bpf_get_current_task_btf() }, 0)
}

/// The current thread's state, created zeroed on first use.
#[inline(always)]
fn thread_state_or_new() -> Option<*mut ThreadState> {
    // SAFETY: as above.
    let st = task_state(unsafe { bpf_get_current_task_btf() }, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if st.is_none() {
        bump(COUNTER_THREAD_MAP_FULL);
    }
    st
}

#[inline(always)]
fn hist_add(map: &PerCpuArray<Hist>, index: u32, value_ns: u64) {
    let bucket = hist_bucket(value_ns) as usize;
    if let Some(h) = map.get_ptr_mut(index) {
        if bucket < HIST_BUCKETS {
            // SAFETY: valid per-CPU map value, bucket bounds-checked above.
            unsafe { (*h).buckets[bucket] += 1 };
        }
    }
}

/// The attribution of one completed call.
struct Call {
    wall_ns: u64,
    self_oncpu_ns: u64,
    callees_ns: u64,
    syscalls_ns: u64,
    offcpu_blocked_ns: u64,
    offcpu_runqueue_ns: u64,
    syscall_count: u64,
}

impl Call {
    /// A call timed without attribution (`--latency-only`): the parts stay 0, which `stats_add`'s
    /// additions of them compile away.
    #[inline(always)]
    fn wall_only(wall_ns: u64) -> Call {
        Call {
            wall_ns,
            self_oncpu_ns: 0,
            callees_ns: 0,
            syscalls_ns: 0,
            offcpu_blocked_ns: 0,
            offcpu_runqueue_ns: 0,
            syscall_count: 0,
        }
    }
}

#[inline(always)]
fn stats_add(s: *mut FuncStats, c: &Call) {
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
    }
}

// ---------------------------------------------------------------------------------------------
// Function entry / return
// ---------------------------------------------------------------------------------------------

/// Entry-only mode (binaries that may unwind through a probed frame, where a uretprobe would
/// abort the process): counts calls, times nothing.
#[uprobe]
pub fn func_count(ctx: ProbeContext) -> u32 {
    bump(COUNTER_PROBE_HITS);
    // SAFETY: the helper only reads the attach cookie of the running program's link.
    let fn_id = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    count_call(fn_id);
    0
}

#[inline(always)]
fn count_call(fn_id: u32) {
    if let Some(s) = FUNC_STATS.get_ptr_mut(fn_id) {
        // SAFETY: valid per-CPU map value.
        unsafe { (*s).calls += 1 };
    }
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
    if let Some(s) = FUNC_STATS.get_ptr_mut(fn_id) {
        stats_add(s, &Call::wall_only(wall_ns));
    }
    hist_add(&FUNC_HIST, 2 * fn_id + HIST_KIND_TOTAL, wall_ns);
    0
}

/// True for about one draw in `sample_every`. A per-CPU xorshift64 generator (seeded once per CPU
/// from `bpf_get_prandom_u32`) compared with the precomputed `sample_below`: no helper call and
/// no division per draw, which a sampled-out call would otherwise pay for nothing. Two threads
/// preempting each other mid-draw on one CPU at worst repeat a draw.
#[inline(always)]
fn sample_draw() -> bool {
    let Some(state) = SAMPLE_RNG.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: a valid per-CPU map value.
    let mut x = unsafe { *state };
    if x == 0 {
        // SAFETY: no arguments.
        x = (u64::from(unsafe { bpf_get_prandom_u32() }) << 1) | 1;
    }
    x = xorshift64(x);
    // SAFETY: as above.
    unsafe { *state = x };
    ((x >> 32) as u32) < config().sample_below
}

/// Sampling: whether this call is timed. Every call nested in a timed one is, so attribution
/// inside a timed call stays exact; an outermost call is drawn, one in `sample_every`, and the
/// calls nested in an untimed one stay untimed (each function is then timed one call in N).
#[inline(always)]
fn sampled_in(st: &mut ThreadState, fn_id: u32, sp: u64) -> bool {
    if st.depth != 0 {
        return true;
    }
    if st.untimed_root_sp != 0 && sp < st.untimed_root_sp {
        match untimed_root_running(st) {
            Some(true) => return false,
            Some(false) => {}
            // Not known: this is the first call seen below one of that function's calls. From now
            // on its untimed calls keep their return address; this call is drawn as a root.
            None => {
                if let Some(n) = FUNC_NESTS.get_ptr_mut(st.untimed_root_fn) {
                    // SAFETY: a valid map value; racing writers all store 1.
                    unsafe { *n = 1 };
                }
            }
        }
    }
    // Random, not a counter: a counter aliases with the order of roots (with two roots per
    // message, one of them would never be picked by an even N).
    if sample_draw() {
        st.untimed_root_sp = 0;
        return true;
    }
    st.untimed_root_sp = sp;
    st.untimed_root_fn = fn_id;
    st.untimed_root_ret = match FUNC_NESTS.get(fn_id) {
        // SAFETY: bpf_probe_read_user checks the address; a failed read gives an error.
        Some(&n) if n != 0 => unsafe { bpf_probe_read_user(sp as *const u64) }.unwrap_or(0),
        _ => 0,
    };
    false
}

/// Whether the untimed outermost call is still running, if that can be told. A deeper entry alone
/// does not say so: the call may have returned unseen (its return probe was skipped) and the
/// thread since gone deeper through another path; then its return-address slot has been
/// overwritten. Without the return address (a function not yet seen enclosing traced calls) it
/// cannot be told.
#[inline(always)]
fn untimed_root_running(st: &ThreadState) -> Option<bool> {
    if st.untimed_root_ret == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_user checks the address; a failed read gives an error.
    let ret = unsafe { bpf_probe_read_user(st.untimed_root_sp as *const u64) };
    Some(ret == Ok(st.untimed_root_ret))
}

/// What every entry does first: the hit and call counts, and the thread's state with the frames
/// of calls that ended unseen dropped. `None` when the thread has no state (counted in
/// `lost.thread_map_full`).
#[inline(always)]
fn begin_entry(ctx: *mut c_void, sp: u64) -> Option<(u32, &'static mut ThreadState)> {
    bump(COUNTER_PROBE_HITS);
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

#[inline(always)]
fn push_frame(st: &mut ThreadState, fn_id: u32, sp: u64, now: u64) {
    let depth = st.depth;
    st.depth = depth.saturating_add(1);
    if depth >= MAX_DEPTH {
        bump(COUNTER_DEPTH_OVERFLOW);
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
fn drop_dead_frames(st: &mut ThreadState, sp: u64) {
    if st.depth > MAX_DEPTH {
        return;
    }
    for _ in 0..MAX_DEPTH {
        if st.depth == 0 || st.frames[frame_index(st.depth - 1)].stack_ptr > sp {
            return;
        }
        st.depth -= 1;
        bump(COUNTER_ORPHAN_ENTRY);
    }
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
    bump(COUNTER_PROBE_HITS);
    // After `ret` popped the return address, sp is 8 above the entry's stack pointer.
    let entry_sp = sp.wrapping_sub(8);
    let Some(st) = thread_state() else {
        bump(COUNTER_ORPHAN_RETURN);
        return;
    };
    // SAFETY: as in `begin_entry`.
    let st = unsafe { &mut *st };
    if st.depth > MAX_DEPTH {
        // The returning call was one of those counted in COUNTER_DEPTH_OVERFLOW.
        st.depth -= 1;
        return;
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
        bump(COUNTER_ORPHAN_RETURN);
        return;
    };
    for _ in 0..(st.depth - 1 - idx).min(MAX_DEPTH) {
        bump(COUNTER_ORPHAN_ENTRY);
    }
    st.depth = idx;
    let frame = &st.frames[frame_index(idx)];
    let wall_ns = now.saturating_sub(frame.entry_ts_ns);
    let accounted = frame
        .callees_ns
        .saturating_add(frame.syscalls_ns)
        .saturating_add(frame.offcpu_blocked_ns)
        .saturating_add(frame.offcpu_runqueue_ns);
    let call = Call {
        wall_ns,
        self_oncpu_ns: wall_ns.saturating_sub(accounted),
        callees_ns: frame.callees_ns,
        syscalls_ns: frame.syscalls_ns,
        offcpu_blocked_ns: frame.offcpu_blocked_ns,
        offcpu_runqueue_ns: frame.offcpu_runqueue_ns,
        syscall_count: frame.syscall_count,
    };
    record_call(fn_id, &call, frame);
    if idx > 0 {
        st.frames[frame_index(idx - 1)].callees_ns += wall_ns;
    }
}

#[inline(always)]
fn record_call(fn_id: u32, call: &Call, frame: &Frame) {
    if let Some(s) = FUNC_STATS.get_ptr_mut(fn_id) {
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
                bump(COUNTER_ATTR_MAP_FULL);
            }
            s = THREAD_FUNC_STATS.get_ptr_mut(key);
        }
        if let Some(s) = s {
            stats_add(s, call);
        }
    }
    let slow_ns = match FUNC_SLOW.get(fn_id) {
        Some(&t) if t != 0 => t,
        _ => cfg.slow_ns,
    };
    if slow_ns != 0 && call.wall_ns >= slow_ns {
        send_exemplar(fn_id, current_tid(), call, frame);
    }
}

#[inline(always)]
fn send_exemplar(fn_id: u32, tid: u32, call: &Call, frame: &Frame) {
    let Some(mut entry) = EXEMPLARS.reserve::<Exemplar>(0) else {
        bump(COUNTER_RINGBUF_FULL);
        return;
    };
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    entry.write(Exemplar {
        fn_id,
        tid,
        entry_ts_ns: frame.entry_ts_ns,
        duration_ns: call.wall_ns,
        self_oncpu_ns: call.self_oncpu_ns,
        callees_ns: call.callees_ns,
        syscalls_ns: call.syscalls_ns,
        offcpu_blocked_ns: call.offcpu_blocked_ns,
        offcpu_runqueue_ns: call.offcpu_runqueue_ns,
        syscall_count: call.syscall_count,
        top_syscalls: frame.top_syscalls,
        comm,
    });
    entry.submit(BPF_RB_NO_WAKEUP);
    bump(COUNTER_EXEMPLARS);
}

// ---------------------------------------------------------------------------------------------
// Syscalls
// ---------------------------------------------------------------------------------------------

// The syscall programs are BTF tracepoints: their arguments are typed, so sys_exit reads the
// syscall number straight from the registers and drops `uretprobe` (every traced return is one)
// before any map lookup.

#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter(ctx: BtfTracePointContext) -> i32 {
    // sys_enter(struct pt_regs *regs, long id)
    let nr: u64 = ctx.arg(1);
    // Our own probes' syscalls: every traced return, and every hit of an optimised nop5 probe.
    if nr == u64::from(SYSCALL_NR_URETPROBE) || nr == u64::from(SYSCALL_NR_UPROBE) {
        return 0;
    }
    let Some(_) = target_tid() else { return 0 };
    let now = now_ns();
    // Counted at entry, like `strace -c` and bpftrace on sys_enter: a syscall that never returns
    // (exit_group, a thread killed in futex) still happened.
    if let Some(s) = SYSCALL_STATS.get_ptr_mut(nr as u32) {
        // SAFETY: valid per-CPU map value.
        unsafe { (*s).count += 1 };
    }
    let Some(st) = thread_state_or_new() else {
        return 0;
    };
    // SAFETY: see `begin_entry`.
    let st = unsafe { &mut *st };
    st.in_syscall = 1;
    st.sys_nr = nr as u32;
    st.sys_entry_ts_ns = now;
    st.sys_offcpu_ns = 0;
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    // sys_exit(struct pt_regs *regs, long ret)
    let regs: *const pt_regs = ctx.arg(0);
    // SAFETY: a BTF-typed tracepoint argument: the verifier checks this load against struct pt_regs.
    let nr = unsafe { (*regs).orig_rax };
    // The uretprobe syscall leaves orig_ax at -1 (no syscall to restart) by the time it exits.
    if nr == u64::from(SYSCALL_NR_URETPROBE) || nr == u64::from(SYSCALL_NR_UPROBE) || nr >= u64::from(MAX_SYSCALLS) {
        return 0;
    }
    let Some(_) = target_tid() else { return 0 };
    let Some(st) = thread_state() else {
        return 0;
    };
    // SAFETY: see `begin_entry`.
    let st = unsafe { &mut *st };
    if st.in_syscall == 0 {
        return 0;
    }
    st.in_syscall = 0;
    let now = now_ns();
    let ret: i64 = ctx.arg(1);
    let nr = st.sys_nr;
    let wall_ns = now.saturating_sub(st.sys_entry_ts_ns);
    bump(COUNTER_SYSCALLS);
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

    // Attribute to the innermost traced frame, if any.
    let depth = st.depth;
    if depth == 0 || depth > MAX_DEPTH {
        return 0;
    }
    let frame = &mut st.frames[frame_index(depth - 1)];
    // Off-CPU time inside the syscall is already in the frame's off-CPU parts.
    frame.syscalls_ns += wall_ns.saturating_sub(st.sys_offcpu_ns);
    frame.syscall_count += 1;
    note_top_syscall(&mut frame.top_syscalls, nr, wall_ns);
    let key = FuncSyscallKey { fn_id: frame.fn_id, nr };
    match FUNC_SYSCALLS.get_ptr_mut(key) {
        // SAFETY: valid per-CPU map value.
        Some(t) => unsafe {
            (*t).count += 1;
            (*t).total_ns += wall_ns;
        },
        None => {
            let t = SyscallTotals { count: 1, total_ns: wall_ns };
            if FUNC_SYSCALLS.insert(key, t, 0).is_err() {
                bump(COUNTER_ATTR_MAP_FULL);
            }
        }
    }
    0
}

/// Keeps the `FRAME_TOP_SYSCALLS` syscall numbers with the most wall time of one call.
#[inline(always)]
fn note_top_syscall(slots: &mut [SyscallSlot; FRAME_TOP_SYSCALLS], nr: u32, wall_ns: u64) {
    for slot in slots.iter_mut() {
        if slot.count != 0 && slot.nr == nr {
            slot.count += 1;
            slot.total_ns += wall_ns;
            return;
        }
    }
    let mut victim = 0;
    let mut victim_ns = u64::MAX;
    for (i, slot) in slots.iter().enumerate() {
        let ns = if slot.count == 0 { 0 } else { slot.total_ns };
        if ns < victim_ns {
            victim = i;
            victim_ns = ns;
        }
    }
    if let Some(slot) = slots.get_mut(victim) {
        if slot.count == 0 || wall_ns > slot.total_ns {
            *slot = SyscallSlot { nr, count: 1, total_ns: wall_ns };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduler
// ---------------------------------------------------------------------------------------------

/// `TASK_RUNNING`: a thread switched out in this state was preempted, not blocked.
const TASK_RUNNING: u64 = 0;

/// A BTF tracepoint: `next` arrives as a typed task pointer, which task storage needs.
#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
    let now = now_ns();
    let target = target_tgid();

    // The outgoing thread is still `current` here.
    if target_tid().is_some() {
        if let Some(st) = thread_state() {
            let preempt: u64 = ctx.arg(0);
            let prev_state: u64 = ctx.arg(3);
            // SAFETY: see `begin_entry`.
            let st = unsafe { &mut *st };
            st.offcpu_start_ns = now;
            st.offcpu_kind = if preempt & 0xff != 0 || prev_state & 0xffff_ffff == TASK_RUNNING {
                OFFCPU_RUNQUEUE
            } else {
                OFFCPU_BLOCKED
            };
            bump(COUNTER_SWITCHES);
        }
    }

    let next: u64 = ctx.arg(2);
    // SAFETY: a global written by the loader before load.
    let tgid_off = unsafe { core::ptr::read_volatile(&TASK_TGID_OFFSET) };
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
    if st.offcpu_start_ns == 0 {
        return 0;
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
        return 0;
    }
    let frame = &mut st.frames[frame_index(depth - 1)];
    if kind == OFFCPU_BLOCKED {
        frame.offcpu_blocked_ns += off_ns;
    } else {
        frame.offcpu_runqueue_ns += off_ns;
    }
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    // Fires in do_exit() with the exiting thread as `current`.
    let Some(_) = target_tid() else { return 0 };
    let Some(st) = thread_state() else {
        return 0;
    };
    // SAFETY: see `begin_entry`.
    let depth = unsafe { (*st).depth };
    for _ in 0..depth.min(MAX_DEPTH) {
        bump(COUNTER_ORPHAN_ENTRY);
    }
    // SAFETY: the current task; its storage would also go when the task is freed.
    unsafe { bpf_task_storage_delete(threads_map(), bpf_get_current_task_btf()) };
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
