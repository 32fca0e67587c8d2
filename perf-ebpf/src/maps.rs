//! Every map and load-time global of the kernel side, and their accessors: the state the programs
//! share with each other and with perf-user (names and value types from perf-ebpf-common).

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray, PerCpuHashMap, RingBuf},
};
use core::ffi::c_void;
use perf_ebpf_common::{
    Config, Counter, CpuInterf, EPOCHS, EXEMPLAR_RING_BYTES, FuncStats, FuncSyscallKey, Hist, MAX_CALL_PATHS,
    MAX_FUNC_SYSCALLS, MAX_FUNCS, MAX_SYSCALLS, MAX_THREAD_FUNCS, PathStats, StealLayout, SyscallStats, SyscallTotals,
    ThreadFuncKey, ThreadState,
};

// Globals, set by the loader before load (read-only afterwards, so the verifier sees constants).

#[unsafe(no_mangle)]
static TARGET_TGID: u32 = 0;
/// Byte offset of `tgid` in `struct task_struct`, read by the loader from the kernel's BTF.
#[unsafe(no_mangle)]
static TASK_TGID_OFFSET: u32 = 0;
/// Byte offset of `maj_flt` in `struct task_struct` (0: not known, major faults not counted).
#[unsafe(no_mangle)]
static TASK_MAJ_FLT_OFFSET: u32 = 0;

/// Load-time knobs (see `Config`).
#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    slow_ns: 0,
    per_thread: 0,
    sample_every: 0,
    sample_below: 0,
    interference: 0,
    syscall_table: 0,
    call_paths: 0,
    syscalls_from_sched: 0,
    _pad: 0,
};

/// Where this CPU's steal clock is (see `StealLayout`); meaningful only with `INTERF_STEAL`.
#[unsafe(no_mangle)]
static STEAL_LAYOUT: StealLayout = StealLayout { task_cfs_rq: 0, cfs_rq_rq: 0, steal_minus_rq: 0 };

#[inline(always)]
pub(crate) fn steal_layout() -> StealLayout {
    // SAFETY: as in `target_tgid`.
    unsafe { core::ptr::read_volatile(&STEAL_LAYOUT) }
}

#[inline(always)]
pub(crate) fn target_tgid() -> u32 {
    // SAFETY: a plain read of a global the loader wrote before load; volatile so the compiler does
    // not fold the zero initialiser.
    unsafe { core::ptr::read_volatile(&TARGET_TGID) }
}

#[inline(always)]
pub(crate) fn task_tgid_offset() -> u32 {
    // SAFETY: as in `target_tgid`.
    unsafe { core::ptr::read_volatile(&TASK_TGID_OFFSET) }
}

#[inline(always)]
pub(crate) fn task_maj_flt_offset() -> u32 {
    // SAFETY: as in `target_tgid`.
    unsafe { core::ptr::read_volatile(&TASK_MAJ_FLT_OFFSET) }
}

#[inline(always)]
pub(crate) fn config() -> Config {
    // SAFETY: as in `target_tgid`.
    unsafe { core::ptr::read_volatile(&CONFIG) }
}

/// Two copies of each function's totals, `func_stats_index(fn_id, epoch)` (see `EPOCH`).
#[map(name = "FUNC_STATS")]
pub(crate) static FUNC_STATS: PerCpuArray<FuncStats> = PerCpuArray::with_max_entries(EPOCHS * MAX_FUNCS, 0);
/// The copy of `FUNC_STATS` and `CALL_PATHS` the return programs write (0 or 1), switched by
/// perf-user to read the other one settled (see `perf_ebpf_common::EPOCHS`).
#[map(name = "EPOCH")]
pub(crate) static EPOCH: Array<u32> = Array::with_max_entries(1, 0);

/// The copy to record into now: read once per program run, so a call's function totals and its
/// call path go to the same copy.
#[inline(always)]
pub(crate) fn epoch() -> u32 {
    EPOCH.get(0).copied().unwrap_or(0) & 1
}
/// Two histograms per function: `2 * fn_id + HIST_KIND_{TOTAL,SELF}`.
#[map(name = "FUNC_HIST")]
pub(crate) static FUNC_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(2 * MAX_FUNCS, 0);
/// Per-function exemplar threshold in ns (0: use `Config::slow_ns`), kept at p99.9 by `--slow auto`.
#[map(name = "FUNC_SLOW")]
pub(crate) static FUNC_SLOW: Array<u64> = Array::with_max_entries(MAX_FUNCS, 0);
/// Functions seen enclosing other traced calls (1), set by the kernel: only an untimed call of
/// one of these needs its return address read (`bpf_probe_read_user`, ~65 ns here) to tell later
/// whether the calls below it are nested in it (see `sampling::sampled_in`).
#[map(name = "FUNC_NESTS")]
pub(crate) static FUNC_NESTS: Array<u32> = Array::with_max_entries(MAX_FUNCS, 0);
#[map(name = "FUNC_SYSCALLS")]
pub(crate) static FUNC_SYSCALLS: PerCpuHashMap<FuncSyscallKey, SyscallTotals> =
    PerCpuHashMap::with_max_entries(MAX_FUNC_SYSCALLS, 0);
#[map(name = "THREAD_FUNC_STATS")]
pub(crate) static THREAD_FUNC_STATS: PerCpuHashMap<ThreadFuncKey, FuncStats> =
    PerCpuHashMap::with_max_entries(MAX_THREAD_FUNCS, 0);
/// Per call path totals, keyed by path id and epoch copy (`perf_ebpf_common::call_path_key`): the
/// call tree.
#[map(name = "CALL_PATHS")]
pub(crate) static CALL_PATHS: PerCpuHashMap<u64, PathStats> = PerCpuHashMap::with_max_entries(MAX_CALL_PATHS, 0);
#[map(name = "SYSCALL_STATS")]
pub(crate) static SYSCALL_STATS: PerCpuArray<SyscallStats> = PerCpuArray::with_max_entries(MAX_SYSCALLS, 0);
#[map(name = "SYSCALL_HIST")]
pub(crate) static SYSCALL_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(MAX_SYSCALLS, 0);

/// A BTF-defined task-local storage map (aya-ebpf 0.2 has no type for it): the fields only carry
/// the map's type, key, value and flags in their BTF; the loader creates the map from that.
#[repr(C)]
pub(crate) struct TaskStorage<V> {
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

/// `THREADS` as the task-storage helpers take it.
#[inline(always)]
pub(crate) fn threads_map() -> *mut c_void {
    core::ptr::from_ref(&THREADS).cast_mut().cast()
}

/// The target's uretprobe trampoline: the address the kernel writes over the return address of every
/// call it will report the return of, learned from the target's first `uretprobe` syscall (see
/// `syscalls::note_trampoline`); 0 until then. It tells a tail call (see `thread::tail_called`).
#[map(name = "TRAMPOLINE")]
pub(crate) static TRAMPOLINE: Array<u64> = Array::with_max_entries(1, 0);

#[map(name = "COUNTERS")]
pub(crate) static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);
/// Each CPU's sampling generator state (see `sampling::sample_draw`).
#[map(name = "SAMPLE_RNG")]
pub(crate) static SAMPLE_RNG: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "EXEMPLARS")]
pub(crate) static EXEMPLARS: RingBuf = RingBuf::with_byte_size(EXEMPLAR_RING_BYTES, 0);
/// Each CPU's running interrupt and softirq totals (`--interference`, see `interference.rs`).
#[map(name = "CPU_INTERF")]
pub(crate) static CPU_INTERF: PerCpuArray<CpuInterf> = PerCpuArray::with_max_entries(1, 0);
