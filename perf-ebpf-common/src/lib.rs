//! The contract between the kernel programs (`perf-ebpf`) and the loader (`perf-user`):
//! `#[repr(C)]` map values with explicit widths and padding, map names, limits and the histogram bucket layout.
#![no_std]

use core::mem::size_of;

mod counters;
mod hist;
pub mod spans;

pub use counters::Counter;
pub use hist::{HIST_BUCKETS, HIST_MAX_EXP, HIST_SUB_BITS, HIST_SUB_COUNT, hist_bucket, hist_bucket_bounds};

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Default number of traceable functions (entries of the per-function maps); the loader may raise it.
pub const MAX_FUNCS: u32 = 1024;
/// `--latency-only` keeps a call's function id in 16 bits of the session cookie.
pub const LATENCY_MAX_FUNCS: u32 = 1 << 16;
const LATENCY_FN_MASK: u32 = LATENCY_MAX_FUNCS - 1;
const LATENCY_TS_SHIFT: u32 = 17;
const LATENCY_LOW_MASK: u64 = (1 << LATENCY_TS_SHIFT) - 1;

/// A latency-only call's session cookie: its entry time and function, so the return needs no
/// helper call for either. Bit 0 is always set (the kernel starts each cookie at 0, which is how
/// the program tells an entry), bits 1..=16 hold the function id (at most `LATENCY_MAX_FUNCS`),
/// the top 47 the low bits of the clock: calls up to 2^47 ns (39 hours) are timed exactly.
#[inline(always)]
pub const fn latency_cookie(now_ns: u64, fn_id: u32) -> u64 {
    (now_ns << LATENCY_TS_SHIFT) | (((fn_id & LATENCY_FN_MASK) as u64) << 1) | 1
}

/// The function id and wall time of a call whose entry stored `cookie`, returning at `now_ns`.
#[inline(always)]
pub const fn latency_cookie_read(cookie: u64, now_ns: u64) -> (u32, u64) {
    let fn_id = ((cookie >> 1) as u32) & LATENCY_FN_MASK;
    let wall_ns = ((now_ns << LATENCY_TS_SHIFT).wrapping_sub(cookie & !LATENCY_LOW_MASK)) >> LATENCY_TS_SHIFT;
    (fn_id, wall_ns)
}
/// Traced frames kept per thread; deeper calls are counted in `Counter::DepthOverflow`, never guessed.
pub const MAX_DEPTH: u32 = 32;
const _: () = assert!(MAX_DEPTH.is_power_of_two(), "the kernel masks frame indexes with MAX_DEPTH - 1");
/// Syscall numbers below this get their own statistics; x86-64 has fewer than 512.
pub const MAX_SYSCALLS: u32 = 512;
/// Distinct (function, syscall) pairs attributed.
pub const MAX_FUNC_SYSCALLS: u32 = 8192;
/// Distinct (thread, function) pairs kept with `--per-thread`.
pub const MAX_THREAD_FUNCS: u32 = 8192;
/// Syscalls remembered per frame for its exemplar, by wall time.
pub const FRAME_TOP_SYSCALLS: usize = 4;
/// Nested traced calls each thread remembers after they return (a ring), sent with a slow call that
/// encloses them (`--trace`): the most recent ones, so a slow call shows what it ran last.
pub const RECENT_CALLS: usize = 16;
const _: () = assert!(RECENT_CALLS.is_power_of_two(), "the kernel masks ring indexes with RECENT_CALLS - 1");
/// Traced callees remembered per frame for its exemplar, by wall time ("callees 99%: Gateway::send 97%").
pub const FRAME_TOP_CALLEES: usize = 3;
/// Entries of `CALL_PATHS`: a call path (a traced function reached through one chain of traced
/// callers) takes one per epoch copy it has calls in, so at least half as many distinct paths are
/// kept; later new paths are counted in `Counter::AttrMapFull`.
pub const MAX_CALL_PATHS: u32 = 16384;
/// `FUNC_SLOW[fn_id]` value that freezes the function: its returns record nothing more (the
/// run's last reading while the target runs: every map then holds the same calls, histograms and
/// per-thread rows included).
pub const SLOW_FROZEN: u64 = u64::MAX;
/// Ring buffer for slow-call exemplars, in bytes (a power of two, multiple of the page size).
pub const EXEMPLAR_RING_BYTES: u32 = 1 << 20;
/// x86-64 `uretprobe` syscall: the kernel enters it on every uretprobe return, so it is ours, not the target's.
pub const SYSCALL_NR_URETPROBE: u32 = 335;
/// x86-64 page size: the kernel's uretprobe trampoline starts a page.
pub const PAGE_BYTES: u64 = 4096;
/// x86-64 `uprobe` syscall: an optimised uprobe on a 5-byte nop enters it on every hit (6.18+).
pub const SYSCALL_NR_UPROBE: u32 = 336;

// ---------------------------------------------------------------------------------------------
// Map and global names (the strings both sides use)
// ---------------------------------------------------------------------------------------------

pub mod names {
    pub const FUNC_STATS: &str = "FUNC_STATS";
    pub const FUNC_HIST: &str = "FUNC_HIST";
    pub const FUNC_SYSCALLS: &str = "FUNC_SYSCALLS";
    pub const FUNC_SLOW: &str = "FUNC_SLOW";
    pub const FUNC_NESTS: &str = "FUNC_NESTS";
    pub const THREAD_FUNC_STATS: &str = "THREAD_FUNC_STATS";
    pub const SYSCALL_STATS: &str = "SYSCALL_STATS";
    pub const SYSCALL_HIST: &str = "SYSCALL_HIST";
    pub const THREADS: &str = "THREADS";
    pub const COUNTERS: &str = "COUNTERS";
    pub const CALL_PATHS: &str = "CALL_PATHS";
    pub const EXEMPLARS: &str = "EXEMPLARS";
    /// One u32: the epoch copy the return programs write (see [`super::EPOCHS`]).
    pub const EPOCH: &str = "EPOCH";

    pub const GLOBAL_TARGET_TGID: &str = "TARGET_TGID";
    pub const GLOBAL_TASK_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
    /// Offset of `maj_flt` in `struct task_struct` (`--interference`'s major faults), 0: unknown.
    pub const GLOBAL_TASK_MAJ_FLT_OFFSET: &str = "TASK_MAJ_FLT_OFFSET";
    /// A [`super::Config`].
    pub const GLOBAL_CONFIG: &str = "CONFIG";

    pub const PROG_FUNC_ENTRY: &str = "func_entry";
    pub const PROG_FUNC_EXIT: &str = "func_exit";
    pub const PROG_FUNC_COUNT: &str = "func_count";
    pub const PROG_FUNC_ENTRY_EMPTY: &str = "func_entry_empty";
    pub const PROG_FUNC_EXIT_EMPTY: &str = "func_exit_empty";
    /// One program for entry and return (`uprobe_multi` session, kernel 6.13+).
    pub const PROG_FUNC_SESSION: &str = "func_session";
    pub const PROG_FUNC_SESSION_EMPTY: &str = "func_session_empty";
    pub const PROG_FUNC_LATENCY: &str = "func_latency";
    /// The empty session program plus a clock read at entry and return (benchmarks).
    pub const PROG_FUNC_SESSION_CLOCK: &str = "func_session_clock";
    pub const PROG_SYS_ENTER: &str = "sys_enter";
    pub const PROG_SYS_EXIT: &str = "sys_exit";
    pub const PROG_SCHED_SWITCH: &str = "sched_switch";
    pub const PROG_PROCESS_EXIT: &str = "sched_process_exit";
    /// `--interference`: hard interrupts, x86 local timer, softirqs (BTF tracepoints) and user page faults.
    pub const PROG_IRQ_ENTRY: &str = "irq_entry";
    pub const PROG_IRQ_EXIT: &str = "irq_exit";
    pub const PROG_TIMER_ENTRY: &str = "local_timer_entry";
    pub const PROG_TIMER_EXIT: &str = "local_timer_exit";
    pub const PROG_SOFTIRQ_ENTRY: &str = "softirq_entry";
    pub const PROG_SOFTIRQ_EXIT: &str = "softirq_exit";
    pub const PROG_PAGE_FAULT: &str = "page_fault_user";
    pub const CPU_INTERF: &str = "CPU_INTERF";
    /// A [`super::StealLayout`].
    pub const GLOBAL_STEAL_LAYOUT: &str = "STEAL_LAYOUT";
}

/// The `STEAL_LAYOUT` global: how to reach this CPU's `struct kvm_steal_time` (whose first field
/// `steal` is the ns the hypervisor did not run this vCPU) without ksym support (this kernel's
/// kallsyms has no data symbols, so a typed ksym cannot load): the running task's
/// `se.cfs_rq->rq` is this CPU's `runqueues`; per-CPU variables keep their distance from it.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct StealLayout {
    /// Offset of `se.cfs_rq` in `struct task_struct`.
    pub task_cfs_rq: u64,
    /// Offset of `rq` in `struct cfs_rq`.
    pub cfs_rq_rq: u64,
    /// `steal_time`'s offset minus `runqueues`' in the per-CPU section (BTF `DATASEC`), as i64.
    pub steal_minus_rq: u64,
}
const _: () = assert!(size_of::<StealLayout>() == 24);

// ---------------------------------------------------------------------------------------------
// Map values
// ---------------------------------------------------------------------------------------------

/// One latency histogram: `FUNC_HIST[2 * fn_id + HIST_KIND_*]`, `SYSCALL_HIST[nr]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Hist {
    pub buckets: [u64; HIST_BUCKETS],
}
const _: () = assert!(size_of::<Hist>() == HIST_BUCKETS * 8);

/// Index offset of a function's wall-time histogram in `FUNC_HIST`.
pub const HIST_KIND_TOTAL: u32 = 0;
/// Index offset of a function's self-on-CPU-time histogram in `FUNC_HIST`.
pub const HIST_KIND_SELF: u32 = 1;

/// Per-function totals (`FUNC_STATS[fn_id]`, per CPU), and per (thread, function) with `--per-thread`.
/// The five attribution parts of every completed call sum to its wall time.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct FuncStats {
    /// Every call that entered (timed or not).
    pub calls: u64,
    /// Timed calls: those that returned through our probe, which the other fields describe.
    pub count: u64,
    pub total_ns: u64,
    /// Valid only when `count > 0`.
    pub min_ns: u64,
    pub max_ns: u64,
    pub self_oncpu_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
    /// Syscalls made while this function was the innermost traced frame.
    pub syscall_count: u64,
    /// `--interference`: the parts of on-CPU time that were not the function's own compute
    /// (taken out of `self_oncpu_ns`, or of `syscalls_ns` when they landed inside a syscall),
    /// and counts, all while the function was innermost. See [`Interf`].
    pub irq_ns: u64,
    pub softirq_ns: u64,
    pub steal_ns: u64,
    pub irq_count: u64,
    pub timer_count: u64,
    pub page_faults: u64,
    pub switches_voluntary: u64,
    pub switches_involuntary: u64,
    pub migrations: u64,
    /// Major page faults (I/O) among `page_faults`' user-mode ones; see [`Interf::major_faults`].
    pub major_faults: u64,
}
const _: () = assert!(size_of::<FuncStats>() == 88 + 10 * 8);

/// What interfered with one call while it was the innermost traced frame and its thread was on
/// CPU (`--interference`): time taken by hard interrupts, softirqs and the hypervisor (steal),
/// and counts of interrupts, local-timer interrupts, user page faults, context switches and CPU
/// migrations. Interference while the thread was off CPU is not here (it is off-CPU time).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Interf {
    /// Hard-interrupt handlers (`irq_handler_entry/exit`, x86 `local_timer_entry/exit`).
    pub irq_ns: u64,
    /// Softirqs (`softirq_entry/exit`), minus hard interrupts that landed inside them.
    pub softirq_ns: u64,
    /// Hypervisor steal: the growth of this CPU's `kvm_steal_time.steal`.
    pub steal_ns: u64,
    /// Hard interrupts, the local timer's included.
    pub irq_count: u32,
    /// Local-timer interrupts (the scheduler tick and hrtimers).
    pub timer_count: u32,
    pub page_faults: u32,
    /// Switched out blocked (sleep, wait, I/O).
    pub switches_voluntary: u32,
    /// Switched out while runnable (preempted).
    pub switches_involuntary: u32,
    /// Ran again on another CPU than the one it was switched out of.
    pub migrations: u32,
    /// Major page faults (the kernel had to read the page: `VM_FAULT_MAJOR`) taken in user mode:
    /// the growth of the thread's own `task_struct.maj_flt` (what `getrusage` reports) between
    /// its events outside syscalls. A subset of `page_faults`.
    pub major_faults: u32,
    pub _reserved: u32,
}
const _: () = assert!(size_of::<Interf>() == 56);

/// `CPU_INTERF[0]`, per CPU: running totals of this CPU's interrupt and softirq time, which a
/// frame takes differences of (one per-CPU array read per event instead of a thread lookup per
/// interrupt), and the entry times of the handlers running now.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct CpuInterf {
    pub irq_ns: u64,
    pub softirq_ns: u64,
    pub irq_count: u64,
    pub timer_count: u64,
    /// Start of the hard interrupt handler running now, 0 when none.
    pub irq_start_ns: u64,
    /// Start of the softirq running now, 0 when none, and `irq_ns` at that start (hard interrupts
    /// inside a softirq are not the softirq's).
    pub softirq_start_ns: u64,
    pub softirq_start_irq_ns: u64,
    /// This CPU's `struct kvm_steal_time` address, found once (0: not yet).
    pub steal_addr: u64,
    /// The steal clock (ns) at this CPU's last local-timer interrupt (0: none seen yet), which the
    /// kernel folds into `/proc/stat` at its ticks: user space reads it to check the two agree.
    pub steal_tick_ns: u64,
}
const _: () = assert!(size_of::<CpuInterf>() == 72);

/// A thread's reading of its CPU's interference totals, taken when it came on CPU or at its last
/// event since: the next event adds the differences to the innermost frame.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct InterfMark {
    pub irq_ns: u64,
    pub softirq_ns: u64,
    pub steal_ns: u64,
    pub irq_count: u64,
    pub timer_count: u64,
    /// Non-zero while the reading is of the CPU the thread runs on (cleared at switch-out).
    pub valid: u32,
    /// The CPU the thread was last switched out of (migrations), + 1; 0 before the first switch.
    pub last_cpu_plus1: u32,
    /// The thread's `maj_flt` when last read; meaningful once `flt_valid` is set. A counter of the
    /// thread's own, so unlike the CPU's totals it stays valid across switches.
    pub maj_flt: u64,
    pub flt_valid: u32,
    pub _reserved: u32,
}
const _: () = assert!(size_of::<InterfMark>() == 64);

/// Key of `FUNC_SYSCALLS`: which syscall, made while which function was innermost.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct FuncSyscallKey {
    pub fn_id: u32,
    pub nr: u32,
}
const _: () = assert!(size_of::<FuncSyscallKey>() == 8);

/// Value of `FUNC_SYSCALLS`: count and wall time (off-CPU included) per (function, syscall).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SyscallTotals {
    pub count: u64,
    pub total_ns: u64,
}
const _: () = assert!(size_of::<SyscallTotals>() == 16);

/// Key of `THREAD_FUNC_STATS`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct ThreadFuncKey {
    pub tid: u32,
    pub fn_id: u32,
}
const _: () = assert!(size_of::<ThreadFuncKey>() == 8);

/// `SYSCALL_STATS[nr]`, per CPU: every syscall of the target, whatever was on its stack.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SyscallStats {
    /// Syscalls entered.
    pub count: u64,
    /// Syscalls that returned (the latency fields cover these).
    pub completed: u64,
    pub errors: u64,
    pub total_ns: u64,
    pub max_ns: u64,
}
const _: () = assert!(size_of::<SyscallStats>() == 40);

/// One syscall number's share of a single call, kept for its exemplar.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SyscallSlot {
    pub nr: u32,
    /// 0 when the slot is empty.
    pub count: u32,
    pub total_ns: u64,
}
const _: () = assert!(size_of::<SyscallSlot>() == 16);

/// One traced callee's share of a single call, kept for its exemplar.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct CalleeSlot {
    pub fn_id: u32,
    /// Calls of it; 0 when the slot is empty.
    pub count: u32,
    pub total_ns: u64,
}
const _: () = assert!(size_of::<CalleeSlot>() == 16);

/// The id of the call path that reaches `fn_id` from the path `parent` (0: `fn_id` is an
/// outermost traced call): a 63-bit mix of both, never 0, so equal chains of traced callers get
/// equal ids on every thread and CPU without a shared allocator (collisions: ~n²/2^64). The top
/// bit is left for the epoch in `CALL_PATHS` keys ([`call_path_key`]).
#[inline(always)]
pub const fn call_path_id(parent: u64, fn_id: u32) -> u64 {
    let mut x = parent ^ (fn_id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x &= !CALL_PATH_EPOCH_BIT;
    if x == 0 { 1 } else { x }
}

// ---------------------------------------------------------------------------------------------
// Epochs: two copies of the function totals and call paths, so a reading is of settled numbers
//
// The return programs add each call to the copy `EPOCH[0]` names, the function's totals and its
// call path's in the same run. To read, perf-user switches `EPOCH` to the other copy and waits
// until no program still runs (an RCU grace period): the copy it left then holds exactly the
// calls returned before the switch, in both maps, and stays still until the next switch. The
// copy written now was left at the previous switch and read then; that reading plus this one is
// the whole run as of this switch, with every function's count its call paths' sum. No copy is
// ever zeroed.

/// `EPOCH[0]`'s values: the copy being written (the other one is being read or at rest).
pub const EPOCHS: u32 = 2;
/// The bit of a `CALL_PATHS` key that names its epoch copy (path ids never have it).
pub const CALL_PATH_EPOCH_BIT: u64 = 1 << 63;

/// `FUNC_STATS` index of function `fn_id`'s totals in copy `epoch` (both copies side by side, so a
/// reading of functions `0..n` is one batch of keys `0..2n`).
#[inline(always)]
pub const fn func_stats_index(fn_id: u32, epoch: u32) -> u32 {
    fn_id.wrapping_mul(EPOCHS).wrapping_add(epoch & 1)
}

/// `CALL_PATHS` key of path `id` in copy `epoch`.
#[inline(always)]
pub const fn call_path_key(id: u64, epoch: u32) -> u64 {
    (id & !CALL_PATH_EPOCH_BIT) | ((epoch & 1) as u64) << 63
}

/// The path id and epoch copy of a `CALL_PATHS` key.
#[inline(always)]
pub const fn call_path_key_parts(key: u64) -> (u64, u32) {
    (key & !CALL_PATH_EPOCH_BIT, (key >> 63) as u32)
}

/// `CALL_PATHS[path id]`, per CPU: the calls that returned through one call path, with their
/// attribution. `parent` and `fn_id` let userspace rebuild the tree.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct PathStats {
    /// The caller's path id; 0 for an outermost traced call.
    pub parent: u64,
    pub fn_id: u32,
    /// Traced frames above it (0: outermost).
    pub depth: u32,
    /// The caller's function (unused at depth 0): names the caller's path while none of its calls
    /// has returned yet (an event loop that runs until the end).
    pub parent_fn_id: u32,
    pub _pad: u32,
    pub count: u64,
    pub total_ns: u64,
    pub self_oncpu_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
}
const _: () = assert!(size_of::<PathStats>() == 80);

/// One active traced call on a thread's shadow stack.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Frame {
    pub fn_id: u32,
    pub _pad: u32,
    /// The stack pointer at entry (pointing at the return address). It identifies the call: the
    /// return of this call sees `sp == stack_ptr + 8`, and a frame whose `stack_ptr` is below a new
    /// entry's stack pointer, or at it unless the new call is its tail call, can no longer be live
    /// (its call ended unseen).
    pub stack_ptr: u64,
    pub entry_ts_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
    pub syscall_count: u64,
    pub top_syscalls: [SyscallSlot; FRAME_TOP_SYSCALLS],
    pub interf: Interf,
    /// Its call path (see `call_path_id`).
    pub path_id: u64,
    /// The traced callees with the most wall time in this call.
    pub top_callees: [CalleeSlot; FRAME_TOP_CALLEES],
}
const _: () =
    assert!(size_of::<Frame>() == 72 + 16 * FRAME_TOP_SYSCALLS + size_of::<Interf>() + 16 * FRAME_TOP_CALLEES);

/// A nested traced call that returned, kept in its thread's `ThreadState::recent` ring.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct RecentCall {
    pub fn_id: u32,
    /// Its frame's depth (1: called from an outermost traced call); 0 marks an empty slot.
    pub depth: u32,
    pub entry_ts_ns: u64,
    pub duration_ns: u64,
}
const _: () = assert!(size_of::<RecentCall>() == 24);

/// `offcpu_kind` values.
pub const OFFCPU_NONE: u32 = 0;
pub const OFFCPU_BLOCKED: u32 = 1;
pub const OFFCPU_RUNQUEUE: u32 = 2;

/// `THREADS[tid]`: the per-thread bookkeeping of the attribution model.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ThreadState {
    /// Active traced calls, including those deeper than `MAX_DEPTH` (which have no frame).
    pub depth: u32,
    /// Non-zero while the thread is inside a syscall of number `sys_nr`. All fields start at zero
    /// because new entries are copied from a zeroed template.
    pub in_syscall: u32,
    pub sys_nr: u32,
    /// With `Config::syscalls_from_sched`: 1 + the syscall the thread was switched out in (blocked
    /// or preempted), 0 when none (it left the CPU outside a syscall, in a page fault say).
    pub blocked_nr: u32,
    pub sys_entry_ts_ns: u64,
    /// Off-CPU time inside the current syscall (subtracted from its attributed time).
    pub sys_offcpu_ns: u64,
    /// When the thread was switched out, or 0 while it runs.
    pub offcpu_start_ns: u64,
    pub offcpu_kind: u32,
    pub _pad: u32,
    /// Sampling: the stack pointer at entry of the outermost call left untimed, so the calls
    /// nested in it (lower addresses) stay untimed too; 0 when none is open.
    pub untimed_root_sp: u64,
    /// Its return address, as found at `untimed_root_sp` at entry: while the call runs the slot
    /// keeps it; once the call has returned (unseen) the caller's next calls overwrite it. 0 when
    /// not read: the function was not yet known to enclose traced calls (`FUNC_NESTS`).
    pub untimed_root_ret: u64,
    /// Its function id.
    pub untimed_root_fn: u32,
    pub _pad1: u32,
    /// `--interference`: the CPU's totals when last read for this thread.
    pub mark: InterfMark,
    /// Interference inside the current syscall (taken out of its attributed time, like off-CPU).
    pub sys_interf_ns: u64,
    pub frames: [Frame; MAX_DEPTH as usize],
    /// The nested calls that returned last, written at `recent_next % RECENT_CALLS`.
    pub recent: [RecentCall; RECENT_CALLS],
    pub recent_next: u32,
    pub _pad2: u32,
}
const _: () = assert!(
    size_of::<ThreadState>()
        == 72 + 8 + size_of::<InterfMark>() + size_of::<Frame>() * MAX_DEPTH as usize + 24 * RECENT_CALLS + 8
);

/// The `CONFIG` global: knobs fixed at load (read-only, so the verifier prunes what they turn off).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Config {
    /// Calls at least this long are sent as exemplars, unless `FUNC_SLOW[fn_id]` sets the
    /// function's own threshold (`--slow auto`); 0 in both sends none.
    pub slow_ns: u64,
    /// Non-zero: keep `THREAD_FUNC_STATS`.
    pub per_thread: u32,
    /// Session programs time one outermost call in this many (with everything nested in it) and
    /// only count the others; 0 or 1 times every call.
    pub sample_every: u32,
    /// `sample_below(sample_every)`: a uniform 32-bit draw below it times the call.
    pub sample_below: u32,
    /// `INTERF_*` bits: split on-CPU time into own compute, interrupts, softirqs and steal, and
    /// count faults, switches and migrations per call (`--interference`).
    pub interference: u32,
    /// Non-zero (`--syscalls`): every syscall of the target goes into `SYSCALL_STATS` and
    /// `SYSCALL_HIST`. Zero: only syscalls made inside a traced call are followed (attribution
    /// needs no others), so the target's other syscalls cost one state lookup.
    pub syscall_table: u32,
    /// Non-zero: keep `CALL_PATHS` (the call tree); zero (`--no-call-tree`) saves one per-CPU hash
    /// update per timed return.
    pub call_paths: u32,
    /// Non-zero (`--blocked-syscalls-only`): the syscall tracepoints are not attached (so no other
    /// process pays for them) and syscalls are named where the target leaves the CPU in them, by
    /// `sched_switch`, with the time off-CPU; their on-CPU time stays in own CPU time.
    pub syscalls_from_sched: u32,
    pub _pad: u32,
}

/// `Config::interference`: interference is measured.
pub const INTERF_ON: u32 = 1;
/// `Config::interference`: the kernel has a per-CPU `steal_time` the object was linked to.
pub const INTERF_STEAL: u32 = 2;
const _: () = assert!(size_of::<Config>() == 40);

/// One step of the kernel's per-CPU sampling generator (xorshift64; `x` must not be 0).
#[inline(always)]
pub const fn xorshift64(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The draw threshold for timing one call in `every`: a uniform u32 is below it with chance
/// 1/`every` (to within 2^-32), so the kernel compares instead of dividing.
pub const fn sample_below(every: u32) -> u32 {
    if every <= 1 { u32::MAX } else { u32::MAX / every }
}

/// A slow call, sent whole through the `EXEMPLARS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exemplar {
    pub fn_id: u32,
    pub tid: u32,
    pub entry_ts_ns: u64,
    pub duration_ns: u64,
    pub self_oncpu_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
    pub syscall_count: u64,
    pub top_syscalls: [SyscallSlot; FRAME_TOP_SYSCALLS],
    pub comm: [u8; 16],
    pub interf: Interf,
    /// The thread's recent nested calls when this one returned (a copy of `ThreadState::recent`,
    /// oldest at `recent_next % RECENT_CALLS`): those that started at or after `entry_ts_ns` ran
    /// inside this call.
    pub recent: [RecentCall; RECENT_CALLS],
    pub recent_next: u32,
    pub _pad: u32,
    /// Its traced callees with the most wall time (direct callees only), empty slots at count 0.
    pub top_callees: [CalleeSlot; FRAME_TOP_CALLEES],
}
const _: () = assert!(
    size_of::<Exemplar>()
        == 72 + 16 * FRAME_TOP_SYSCALLS + 16 + size_of::<Interf>() + 24 * RECENT_CALLS + 8 + 16 * FRAME_TOP_CALLEES
);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: every type below is #[repr(C)], made only of integers and arrays of them, with all
    // padding written out as fields, so any bit pattern is a valid value and none has uninit bytes.
    unsafe impl aya::Pod for Hist {}
    unsafe impl aya::Pod for FuncStats {}
    unsafe impl aya::Pod for FuncSyscallKey {}
    unsafe impl aya::Pod for SyscallTotals {}
    unsafe impl aya::Pod for ThreadFuncKey {}
    unsafe impl aya::Pod for SyscallStats {}
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for Exemplar {}
    unsafe impl aya::Pod for CpuInterf {}
    unsafe impl aya::Pod for StealLayout {}
    unsafe impl aya::Pod for PathStats {}
}

#[cfg(test)]
mod tests;
