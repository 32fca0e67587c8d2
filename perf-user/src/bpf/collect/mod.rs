//! Reads the kernel's maps and ring buffer and turns kernel types into owned model types, in
//! exactly one place: nothing after this module sees aya or perf-ebpf-common.

use std::{
    os::fd::{AsFd, AsRawFd},
    time::Instant,
};

use aya::maps::{Array, IterableMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use perf_ebpf_common::{
    self as common, Counter, CpuInterf, EPOCHS, FuncStats, FuncSyscallKey, Hist, PathStats, RECENT_CALLS, SyscallStats,
    SyscallTotals, ThreadFuncKey, call_path_key_parts, func_stats_index, hist_bucket_bounds, names,
};

use crate::{
    bpf::{
        loader::{LoadError, Tracer},
        sys,
    },
    model::{
        Attribution, Bucket, BucketHist, CallPath, CalleeUse, Counters, Exemplar, FuncSample, FuncSyscall,
        InterfCounts, Lost, NestedCall, PathTotals, Sample, SpanSample, SyscallSample, SyscallUse, ThreadFuncSample,
        WindowCost,
    },
    target::syscalls,
};

pub struct Collector {
    /// Both epoch copies of each function's totals (`func_stats_index`).
    func_stats: PerCpuArray<MapData, FuncStats>,
    func_hist: PerCpuArray<MapData, Hist>,
    func_syscalls: PerCpuHashMap<MapData, FuncSyscallKey, SyscallTotals>,
    thread_funcs: PerCpuHashMap<MapData, ThreadFuncKey, FuncStats>,
    /// Both epoch copies of each call path's totals (`call_path_key`).
    call_paths: PerCpuHashMap<MapData, u64, PathStats>,
    /// The copy of the two above the programs write (`perf_ebpf_common::EPOCHS`).
    epoch: Array<MapData, u32>,
    /// Its value now.
    writing: u32,
    /// Each copy as read when the programs last left it: exact until they come back to it.
    settled: [Settled; EPOCHS as usize],
    syscall_stats: PerCpuArray<MapData, SyscallStats>,
    syscall_hist: PerCpuArray<MapData, Hist>,
    counters: PerCpuArray<MapData, u64>,
    cpu_interf: PerCpuArray<MapData, CpuInterf>,
    exemplars: RingBuf<MapData>,
    symbols: Vec<String>,
    started: Instant,
    /// CLOCK_MONOTONIC (the kernel's `bpf_ktime_get_ns`) at `started`: turns entry times into
    /// time since attach.
    origin_mono_ns: u64,
    /// Histograms last read, reused while a function's count has not moved (most ticks for most
    /// functions), which keeps a tick cheap with many functions.
    cache: Vec<FuncSample>,
    syscall_cache: Vec<SyscallSample>,
    pub per_thread: bool,
    /// Possible CPUs: the length of every per-CPU value.
    cpus: usize,
    /// `--latency-only`: its program counts no probe hits (one entry per call, one return per
    /// timed call), so they are derived from the counts.
    pub latency_only: bool,
    /// Probe cost per call measured at start-up, per function (its kind of probe site; zero: raw
    /// numbers).
    calibration: Vec<WindowCost>,
    /// What is subtracted from each function's wall and own time and its exemplars: the
    /// calibration, bounded by the fastest call seen (`FuncSample::probe_cost`).
    subtracted_ns: Vec<u64>,
    /// `--span`: the span maps, when spans were defined.
    pub spans: Option<crate::bpf::spans::SpanReader>,
    /// The kernel's per-thread state (`THREADS`), for the callers still running (`stacks`).
    threads: Option<MapData>,
    /// The traced process, whose threads' stacks name those callers (0: not read).
    pub target_pid: u32,
    /// Callers named from the stacks so far, by path id (`call_paths_with_running_callers`).
    running_callers: std::collections::HashMap<u64, CallPath>,
}

/// One epoch copy of the function and call-path totals, per CPU, as read when the programs left it.
#[derive(Default)]
struct Settled {
    /// `[fn_id][cpu]`.
    functions: Vec<Vec<FuncStats>>,
    /// Path id → its per-CPU totals.
    paths: std::collections::HashMap<u64, Vec<PathStats>>,
}

/// Callers remembered from the threads' stacks before the memory starts over (a path is 80 bytes).
const MAX_REMEMBERED_CALLERS: usize = 1 << 16;

fn take<T>(tracer: &mut Tracer, name: &str) -> Result<T, LoadError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = tracer.ebpf.take_map(name).ok_or_else(|| LoadError::MissingMap { name: name.to_owned() })?;
    T::try_from(map).map_err(|source| LoadError::Map { name: name.to_owned(), source })
}

fn sum_stats(v: &[FuncStats]) -> FuncStats {
    let mut s = FuncStats { calls: v.iter().map(|c| c.calls).sum(), ..FuncStats::default() };
    for c in v.iter().filter(|c| c.count > 0) {
        s.min_ns = if s.count == 0 { c.min_ns } else { s.min_ns.min(c.min_ns) };
        s.count += c.count;
        s.total_ns += c.total_ns;
        s.max_ns = s.max_ns.max(c.max_ns);
        s.self_oncpu_ns += c.self_oncpu_ns;
        s.callees_ns += c.callees_ns;
        s.syscalls_ns += c.syscalls_ns;
        s.offcpu_blocked_ns += c.offcpu_blocked_ns;
        s.offcpu_runqueue_ns += c.offcpu_runqueue_ns;
        s.syscall_count += c.syscall_count;
        s.irq_ns += c.irq_ns;
        s.softirq_ns += c.softirq_ns;
        s.steal_ns += c.steal_ns;
        s.irq_count += c.irq_count;
        s.timer_count += c.timer_count;
        s.page_faults += c.page_faults;
        s.switches_voluntary += c.switches_voluntary;
        s.switches_involuntary += c.switches_involuntary;
        s.migrations += c.migrations;
        s.major_faults += c.major_faults;
    }
    s
}

fn attribution(s: &FuncStats) -> Attribution {
    Attribution {
        self_oncpu_ns: s.self_oncpu_ns,
        callees_ns: s.callees_ns,
        syscalls_ns: s.syscalls_ns,
        offcpu_blocked_ns: s.offcpu_blocked_ns,
        offcpu_runqueue_ns: s.offcpu_runqueue_ns,
        irq_ns: s.irq_ns,
        softirq_ns: s.softirq_ns,
        steal_ns: s.steal_ns,
        interference: InterfCounts {
            irq_count: s.irq_count,
            timer_count: s.timer_count,
            page_faults: s.page_faults,
            switches_voluntary: s.switches_voluntary,
            switches_involuntary: s.switches_involuntary,
            migrations: s.migrations,
            major_faults: s.major_faults,
        },
    }
}

/// Keys `0..entries` of a per-CPU array, `[key][cpu]`, read with one bpf(2) call instead of one
/// per key (the per-tick cost of reading 512 syscall slots and every function's totals). `None`
/// when the kernel cannot (then the caller reads key by key).
fn percpu_array_values<V: aya::Pod>(map: &MapData, entries: u32, cpus: usize) -> Option<Vec<Vec<V>>> {
    if entries == 0 {
        return Some(Vec::new());
    }
    // The kernel lays each key's values out per CPU, each rounded up to 8 bytes.
    let stride = size_of::<V>().next_multiple_of(8);
    let mut keys = vec![0u32; entries as usize];
    let mut values = vec![0u64; (entries as usize * cpus * stride).div_ceil(8)];
    let mut out_batch = 0u32;
    let mut attr = sys::BatchAttr {
        out_batch: std::ptr::from_mut(&mut out_batch) as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: entries,
        map_fd: map.fd().as_fd().as_raw_fd().unsigned_abs(),
        ..sys::BatchAttr::default()
    };
    // ENOENT: the batch reached the end of the map, with `count` filled.
    // SAFETY: `keys` holds `count` keys, `values` `count` × cpus × stride bytes (the layout the
    // kernel writes for a per-CPU map) and `out_batch` one u32 key; all outlive the call.
    let done = match unsafe { sys::map_lookup_batch(&mut attr) } {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::ENOENT),
    };
    if !done || attr.count != entries || keys.iter().enumerate().any(|(i, &k)| k != i as u32) {
        return None;
    }
    let bytes = values.as_ptr().cast::<u8>();
    Some(
        (0..entries as usize)
            .map(|k| {
                (0..cpus)
                    // SAFETY: in bounds of `values` (sized above); V is plain data, read unaligned.
                    .map(|c| unsafe { std::ptr::read_unaligned(bytes.add((k * cpus + c) * stride).cast::<V>()) })
                    .collect()
            })
            .collect(),
    )
}

/// Keys `0..entries` of a per-CPU array, `[key][cpu]`: one batch call where the kernel allows,
/// else one lookup per key (a key that cannot be read has no values).
fn read_percpu_array<V: aya::Pod>(map: &PerCpuArray<MapData, V>, entries: u32, cpus: usize) -> Vec<Vec<V>> {
    percpu_array_values(map.map(), entries, cpus)
        .unwrap_or_else(|| (0..entries).map(|k| map.get(&k, 0).map(|v| v.to_vec()).unwrap_or_default()).collect())
}

/// Sums a histogram over CPUs into sorted non-empty buckets.
pub fn merge_hist(per_cpu: &[Hist]) -> BucketHist {
    let mut buckets = Vec::new();
    for i in 0..common::HIST_BUCKETS {
        let count: u64 = per_cpu.iter().map(|h| h.buckets[i]).sum();
        if count > 0 {
            let (low_ns, high_ns) = hist_bucket_bounds(i as u32);
            buckets.push(Bucket { low_ns, high_ns, count });
        }
    }
    BucketHist { buckets }
}

fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl Collector {
    /// Takes the maps out of the loaded object; `symbols[fn_id]` names the traced functions.
    /// `calibration[fn_id]`: the probe cost to subtract from that function (empty: none).
    pub fn new(tracer: &mut Tracer, symbols: Vec<String>, calibration: Vec<WindowCost>) -> Result<Self, LoadError> {
        Ok(Collector {
            func_stats: take(tracer, names::FUNC_STATS)?,
            func_hist: take(tracer, names::FUNC_HIST)?,
            func_syscalls: take(tracer, names::FUNC_SYSCALLS)?,
            thread_funcs: take(tracer, names::THREAD_FUNC_STATS)?,
            call_paths: take(tracer, names::CALL_PATHS)?,
            epoch: take(tracer, names::EPOCH)?,
            writing: 0,
            settled: Default::default(),
            syscall_stats: take(tracer, names::SYSCALL_STATS)?,
            syscall_hist: take(tracer, names::SYSCALL_HIST)?,
            counters: take(tracer, names::COUNTERS)?,
            cpu_interf: take(tracer, names::CPU_INTERF)?,
            exemplars: take(tracer, names::EXEMPLARS)?,
            cache: Vec::new(),
            syscall_cache: Vec::new(),
            symbols,
            started: Instant::now(),
            origin_mono_ns: tracer.attach_mono_ns,
            per_thread: false,
            cpus: aya::util::nr_cpus().map_err(|(what, source)| LoadError::Cpus { what, source })?,
            latency_only: false,
            subtracted_ns: calibration.iter().map(|c| c.median_ns).collect(),
            calibration,
            spans: None,
            threads: match tracer.ebpf.take_map(names::THREADS) {
                Some(aya::maps::Map::Unsupported(m)) => Some(m),
                _ => None,
            },
            target_pid: 0,
            running_callers: std::collections::HashMap::new(),
        })
    }

    /// Functions traced from now on (a library loaded later): ids continue from the last ones.
    pub fn add_functions(&mut self, symbols: Vec<String>, calibration: Vec<WindowCost>) {
        self.subtracted_ns.resize(self.symbols.len(), 0);
        self.calibration.resize(self.symbols.len(), WindowCost::default());
        self.subtracted_ns.extend(calibration.iter().map(|c| c.median_ns));
        self.calibration.extend(calibration);
        self.symbols.extend(symbols);
    }

    fn hist(map: &PerCpuArray<MapData, Hist>, index: u32) -> BucketHist {
        map.get(&index, 0).map(|v| merge_hist(&v)).unwrap_or_default()
    }

    /// Reads every map once: a cumulative sample since attach.
    /// Each possible CPU's steal clock at its last local-timer interrupt (ns), `None` while none
    /// was seen (or steal is not measured): one side of the `/proc/stat` cross-check.
    pub fn steal_at_last_tick_ns(&self) -> Vec<Option<u64>> {
        read_percpu_array(&self.cpu_interf, 1, self.cpus)
            .into_iter()
            .next()
            .map(|per_cpu| per_cpu.iter().map(|c| Some(c.steal_tick_ns).filter(|&ns| ns != 0)).collect())
            .unwrap_or_default()
    }

    /// One reading of every map: functions (probe cost taken out), syscalls, per-function
    /// syscalls, per-thread functions, spans and counters.
    pub fn sample(&mut self) -> Sample {
        let at_ns = self.started.elapsed().as_nanos() as u64;
        let left = self.switch_epoch();
        let functions = self.sample_functions(left);
        let syscalls = self.sample_syscalls();
        let func_syscalls = self.sample_func_syscalls();
        let threads = if self.per_thread { self.sample_threads() } else { Vec::new() };
        let spans = self.spans.as_mut().map(|r| r.sample()).unwrap_or_default();
        let call_paths = self.call_paths_with_running_callers(left);
        let counters = self.sample_counters(&functions, &spans);
        Sample { at_ns, functions, syscalls, func_syscalls, threads, spans, call_paths, counters }
    }

    /// Makes the programs write the other epoch copy and returns once none still writes the one
    /// they left, whose number it returns: that copy now holds every call returned before the
    /// switch, its functions' and its call paths' alike, and nothing changes it until the next
    /// switch. `None` when the switch failed (then both copies are read as they are, a moment
    /// apart).
    fn switch_epoch(&mut self) -> Option<u32> {
        let left = self.writing;
        self.epoch.set(0, left ^ 1, 0).ok()?;
        self.writing = left ^ 1;
        // Without the wait (it has never failed where the maps could be made) the left copy is
        // read at once: a call returning just then is missing from this reading, not lost (it
        // is in the next one of that copy).
        let _ = sys::wait_for_running_programs();
        Some(left)
    }

    /// Every function's per-CPU totals, `[fn_id][cpu]`, both epoch copies' together: the copy
    /// just `left` as read now with the other as read when it was left (the whole run as of the
    /// switch), or both as they are without a switch.
    fn function_totals(&mut self, left: Option<u32>) -> Vec<Vec<FuncStats>> {
        let n = self.symbols.len() as u32;
        let both = read_percpu_array(&self.func_stats, EPOCHS * n, self.cpus);
        let copy = |e: u32| -> Vec<Vec<FuncStats>> {
            (0..n).map(|id| both.get(func_stats_index(id, e) as usize).cloned().unwrap_or_default()).collect()
        };
        let [mut first, second] = match left {
            Some(e) => {
                self.settled[e as usize].functions = copy(e);
                [self.settled[0].functions.clone(), self.settled[1].functions.clone()]
            }
            None => [copy(0), copy(1)],
        };
        // A copy left before later functions were added is shorter: they had no calls in it.
        first.resize(n as usize, Vec::new());
        for (a, b) in first.iter_mut().zip(second) {
            a.extend(b);
        }
        first
    }

    /// Every traced function's stats and histograms (unchanged ones from the cache), with the
    /// calibrated probe cost subtracted.
    fn sample_functions(&mut self, left: Option<u32>) -> Vec<FuncSample> {
        let mut functions = Vec::with_capacity(self.symbols.len());
        let all_stats = self.function_totals(left);
        for (id, per_cpu) in (0u32..).zip(&all_stats) {
            let stats = sum_stats(per_cpu);
            let cached = self.cache.get(id as usize).filter(|c| c.count == stats.count);
            let (total_hist, self_hist) = match cached {
                Some(c) => (c.total_hist.clone(), c.self_hist.clone()),
                None => (
                    Self::hist(&self.func_hist, 2 * id + common::HIST_KIND_TOTAL),
                    Self::hist(&self.func_hist, 2 * id + common::HIST_KIND_SELF),
                ),
            };
            functions.push(FuncSample {
                id,
                calls: stats.calls,
                count: stats.count,
                total_ns: stats.total_ns,
                min_ns: stats.min_ns,
                max_ns: stats.max_ns,
                syscall_count: stats.syscall_count,
                attribution: attribution(&stats),
                total_hist,
                self_hist,
                // Raw here; set below, after the cache keeps the raw numbers.
                probe_cost_ns: 0,
            });
        }
        self.cache.clone_from(&functions);
        functions
            .into_iter()
            .map(|f| {
                let cost = f.probe_cost(self.calibration.get(f.id as usize).copied().unwrap_or_default());
                if let Some(s) = self.subtracted_ns.get_mut(f.id as usize) {
                    *s = cost;
                }
                f.without_probe_cost(cost)
            })
            .collect()
    }

    /// Every syscall seen, summed over CPUs (histograms of unchanged ones from the cache).
    fn sample_syscalls(&mut self) -> Vec<SyscallSample> {
        let mut syscalls = Vec::new();
        let all_syscalls = read_percpu_array(&self.syscall_stats, common::MAX_SYSCALLS, self.cpus);
        for (nr, v) in (0u32..).zip(&all_syscalls) {
            let mut t = SyscallStats::default();
            for c in v.iter() {
                t.count += c.count;
                t.completed += c.completed;
                t.errors += c.errors;
                t.total_ns += c.total_ns;
                t.max_ns = t.max_ns.max(c.max_ns);
            }
            let SyscallStats { count, completed, errors, total_ns, max_ns } = t;
            if count == 0 {
                continue;
            }
            let hist = match self.syscall_cache.iter().find(|s| s.nr == nr && s.completed == completed) {
                Some(c) => c.hist.clone(),
                None => Self::hist(&self.syscall_hist, nr),
            };
            syscalls.push(SyscallSample { nr, count, completed, errors, total_ns, max_ns, hist });
        }
        self.syscall_cache.clone_from(&syscalls);
        syscalls
    }

    /// Syscalls by the traced function they were made in.
    fn sample_func_syscalls(&self) -> Vec<FuncSyscall> {
        self.func_syscalls
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| FuncSyscall {
                fn_id: k.fn_id,
                nr: k.nr,
                count: v.iter().map(|t| t.count).sum(),
                total_ns: v.iter().map(|t| t.total_ns).sum(),
            })
            .collect()
    }

    /// Each thread's stats per function (`--per-thread`).
    fn sample_threads(&self) -> Vec<ThreadFuncSample> {
        self.thread_funcs
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                let s = sum_stats(&v);
                ThreadFuncSample {
                    tid: k.tid,
                    fn_id: k.fn_id,
                    count: s.count,
                    total_ns: s.total_ns,
                    min_ns: s.min_ns,
                    max_ns: s.max_ns,
                    attribution: attribution(&s),
                }
            })
            .collect()
    }

    /// The kernel's counters, with probe hits counted from the functions in latency-only mode.
    fn sample_counters(&self, functions: &[FuncSample], spans: &[SpanSample]) -> Counters {
        let c = |k: Counter| self.counters.get(&k.index(), 0).map(|v| v.iter().sum()).unwrap_or(0u64);
        let probe_hits =
            if self.latency_only { functions.iter().map(|f| f.calls() + f.count).sum() } else { c(Counter::ProbeHits) };
        Counters {
            probe_hits,
            exemplars: c(Counter::Exemplars),
            syscalls: c(Counter::Syscalls),
            switches: c(Counter::Switches),
            target_syscalls: c(Counter::TargetSyscalls),
            target_switches: c(Counter::TargetSwitches),
            lost: Lost {
                ringbuf_full: c(Counter::RingbufFull),
                thread_map_full: c(Counter::ThreadMapFull),
                depth_overflow: c(Counter::DepthOverflow),
                orphan_return: c(Counter::OrphanReturn),
                orphan_entry: c(Counter::OrphanEntry),
                attr_map_full: c(Counter::AttrMapFull),
                exemplars_evicted: 0,
                span_unmatched: spans.iter().map(SpanSample::unmatched).sum(),
                switch_in_unseen: c(Counter::SwitchInUnseen),
            },
        }
    }

    /// `read_call_paths`, plus the callers still running (no call of theirs returned yet, so no
    /// entry), as paths without calls: `CallTree::build` keeps those a kept path is reached
    /// through. A path's identity never changes, so callers named once are remembered; the
    /// threads' stacks are read only when a caller is missing and unknown, which neither a steady
    /// state with returning callers nor an event loop running all along pays for after its first
    /// tick.
    fn call_paths_with_running_callers(&mut self, left: Option<u32>) -> Vec<CallPath> {
        let mut paths = self.read_call_paths(left);
        let read: std::collections::HashSet<u64> = paths.iter().map(|p| p.id).collect();
        let unknown = |id: &u64| !read.contains(id) && !self.running_callers.contains_key(id);
        let missing = paths.iter().any(|p| p.depth > 0 && unknown(&p.parent));
        if let (true, Some(threads), true) = (missing, &self.threads, self.target_pid != 0) {
            if self.running_callers.len() > MAX_REMEMBERED_CALLERS {
                self.running_callers.clear();
            }
            for p in crate::bpf::stacks::running_callers(threads, self.target_pid) {
                self.running_callers.insert(p.id, p);
            }
        }
        paths.extend(self.running_callers.values().filter(|c| !read.contains(&c.id)));
        paths
    }

    /// Every call path's per-CPU totals, both epoch copies' together (as for `function_totals`).
    fn path_totals(&mut self, left: Option<u32>) -> std::collections::HashMap<u64, Vec<PathStats>> {
        let mut all: std::collections::HashMap<u64, Vec<PathStats>> = std::collections::HashMap::new();
        let Some(e) = left else {
            for (key, v) in self.call_paths.iter().filter_map(Result::ok) {
                all.entry(call_path_key_parts(key).0).or_default().extend(v.iter().copied());
            }
            return all;
        };
        // Only the left copy's entries are read: the other copy's are still being written.
        let keys: Vec<u64> = self.call_paths.keys().filter_map(Result::ok).collect();
        self.settled[e as usize].paths = keys
            .into_iter()
            .filter_map(|key| match call_path_key_parts(key) {
                (id, epoch) if epoch == e => Some((id, self.call_paths.get(&key, 0).ok()?.to_vec())),
                _ => None,
            })
            .collect();
        for copy in &self.settled {
            for (id, v) in &copy.paths {
                all.entry(*id).or_default().extend(v.iter().copied());
            }
        }
        all
    }

    /// Every call path's totals summed over CPUs, calibrated like their functions' calls. A CPU's
    /// copy with calls names its path (the kernel zeroes the other CPUs' copies).
    fn read_call_paths(&mut self, left: Option<u32>) -> Vec<CallPath> {
        self.path_totals(left)
            .into_iter()
            .filter_map(|(id, v)| {
                let first = v.iter().find(|p| p.count > 0).copied()?;
                let sum = |f: fn(&PathStats) -> u64| v.iter().map(f).sum::<u64>();
                let path = CallPath {
                    id,
                    parent: first.parent,
                    fn_id: first.fn_id,
                    parent_fn_id: first.parent_fn_id,
                    depth: first.depth,
                    totals: PathTotals {
                        calls: sum(|p| p.count),
                        total_ns: sum(|p| p.total_ns),
                        self_oncpu_ns: sum(|p| p.self_oncpu_ns),
                        callees_ns: sum(|p| p.callees_ns),
                        syscalls_ns: sum(|p| p.syscalls_ns),
                        offcpu_blocked_ns: sum(|p| p.offcpu_blocked_ns),
                        offcpu_runqueue_ns: sum(|p| p.offcpu_runqueue_ns),
                    },
                }
                .without_probe_cost(self.subtracted_ns.get(first.fn_id as usize).copied().unwrap_or(0));
                Some(path)
            })
            .collect()
    }

    /// Everything the ring buffer holds now (the kernel never wakes us; we drain on a timer).
    pub fn drain_exemplars(&mut self) -> Vec<Exemplar> {
        let mut out = Vec::new();
        let calibration = &self.subtracted_ns;
        while let Some(item) = self.exemplars.next() {
            if item.len() < size_of::<common::Exemplar>() {
                continue;
            }
            // SAFETY: the kernel wrote a whole `common::Exemplar` (size checked above); it is
            // #[repr(C)] plain data, and read_unaligned copes with any alignment of the item.
            let e: common::Exemplar = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
            let mut top: Vec<SyscallUse> = e
                .top_syscalls
                .iter()
                .filter(|s| s.count > 0)
                .map(|s| SyscallUse { name: syscalls::display(s.nr), count: u64::from(s.count), total_ns: s.total_ns })
                .collect();
            top.sort_by_key(|s| std::cmp::Reverse(s.total_ns));
            let cost = calibration.get(e.fn_id as usize).copied().unwrap_or(0);
            let mut attribution = Attribution {
                self_oncpu_ns: e.self_oncpu_ns,
                callees_ns: e.callees_ns,
                syscalls_ns: e.syscalls_ns,
                offcpu_blocked_ns: e.offcpu_blocked_ns,
                offcpu_runqueue_ns: e.offcpu_runqueue_ns,
                irq_ns: e.interf.irq_ns,
                softirq_ns: e.interf.softirq_ns,
                steal_ns: e.interf.steal_ns,
                interference: InterfCounts {
                    irq_count: u64::from(e.interf.irq_count),
                    timer_count: u64::from(e.interf.timer_count),
                    page_faults: u64::from(e.interf.page_faults),
                    switches_voluntary: u64::from(e.interf.switches_voluntary),
                    switches_involuntary: u64::from(e.interf.switches_involuntary),
                    migrations: u64::from(e.interf.migrations),
                    major_faults: u64::from(e.interf.major_faults),
                },
            };
            // What the parts cannot give back (a call shorter than the calibration) stays in the
            // wall time, so the parts sum to it.
            let kept = attribution.take_probe_cost(cost);
            let nested = nested_calls(&e, &self.symbols, calibration, self.origin_mono_ns);
            let mut callees: Vec<CalleeUse> = e
                .top_callees
                .iter()
                .filter(|c| c.count > 0)
                .map(|c| CalleeUse {
                    fn_id: c.fn_id,
                    symbol: self.symbols.get(c.fn_id as usize).cloned().unwrap_or_default(),
                    count: u64::from(c.count),
                    total_ns: c.total_ns,
                })
                .collect();
            callees.sort_by_key(|c| std::cmp::Reverse(c.total_ns));
            out.push(Exemplar {
                fn_id: e.fn_id,
                symbol: self.symbols.get(e.fn_id as usize).cloned().unwrap_or_default(),
                tid: e.tid,
                thread: comm(&e.comm),
                start_ns: e.entry_ts_ns,
                duration_ns: e.duration_ns.saturating_sub(cost - kept),
                attribution,
                syscall_count: e.syscall_count,
                syscalls: top,
                callees,
                at_ns: e.entry_ts_ns.saturating_sub(self.origin_mono_ns),
                seq: 0,
                nested,
                span: None,
            });
        }
        if let Some(r) = &mut self.spans {
            out.extend(r.drain_exemplars());
        }
        out
    }
}

/// CLOCK_MONOTONIC now, in ns (0 if the clock cannot be read, which Linux never does): the clock
/// of the kernel's timestamps (`bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// The calls of the thread's recent-call ring that ran inside exemplar `e` (entered at or after
/// it and returned before it), oldest first, calibrated like the functions' own calls.
fn nested_calls(
    e: &common::Exemplar,
    symbols: &[String],
    subtracted_ns: &[u64],
    origin_mono_ns: u64,
) -> Vec<NestedCall> {
    let end = e.entry_ts_ns.saturating_add(e.duration_ns);
    (0..RECENT_CALLS)
        .map(|k| &e.recent[(e.recent_next as usize).wrapping_add(k) % RECENT_CALLS])
        .filter(|r| r.depth > 0 && r.entry_ts_ns >= e.entry_ts_ns && r.entry_ts_ns.saturating_add(r.duration_ns) <= end)
        .map(|r| NestedCall {
            fn_id: r.fn_id,
            symbol: symbols.get(r.fn_id as usize).cloned().unwrap_or_default(),
            depth: r.depth,
            at_ns: r.entry_ts_ns.saturating_sub(origin_mono_ns),
            duration_ns: r.duration_ns.saturating_sub(subtracted_ns.get(r.fn_id as usize).copied().unwrap_or(0)),
        })
        .collect()
}

#[cfg(test)]
mod tests;
