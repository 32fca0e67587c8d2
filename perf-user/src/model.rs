//! What the tracer knows, as plain owned data: cumulative samples from the kernel, windows between
//! them, latency summaries (via hdrhistogram) and the attribution of each function. No I/O.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Histograms
// ---------------------------------------------------------------------------------------------

/// One non-empty bucket of a log-linear histogram: values in `[low_ns, high_ns]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub low_ns: u64,
    pub high_ns: u64,
    pub count: u64,
}

impl Bucket {
    /// The value a bucket stands for: its midpoint (the top bucket, unbounded, stands for its low end).
    pub fn mid_ns(&self) -> u64 {
        if self.high_ns == u64::MAX { self.low_ns } else { self.low_ns + (self.high_ns - self.low_ns) / 2 }
    }
}

/// A latency histogram as the kernel counts it: sorted, non-empty buckets only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketHist {
    pub buckets: Vec<Bucket>,
}

impl BucketHist {
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    /// `self - base` for cumulative histograms (buckets that did not grow disappear).
    pub fn since(&self, base: &BucketHist) -> BucketHist {
        let mut out = Vec::with_capacity(self.buckets.len());
        let mut j = 0;
        for b in &self.buckets {
            while j < base.buckets.len() && base.buckets[j].low_ns < b.low_ns {
                j += 1;
            }
            let old = base.buckets.get(j).filter(|o| o.low_ns == b.low_ns).map_or(0, |o| o.count);
            let count = b.count.saturating_sub(old);
            if count > 0 {
                out.push(Bucket { count, ..*b });
            }
        }
        BucketHist { buckets: out }
    }

    /// Every value lowered by `ns` (floored at zero): the probe-cost correction. Buckets that
    /// land on the same range are merged.
    pub fn shifted_down(&self, ns: u64) -> BucketHist {
        let mut out: Vec<Bucket> = Vec::with_capacity(self.buckets.len());
        for b in &self.buckets {
            let low_ns = b.low_ns.saturating_sub(ns);
            let high_ns = if b.high_ns == u64::MAX { u64::MAX } else { b.high_ns.saturating_sub(ns) };
            match out.last_mut() {
                Some(last) if last.low_ns == low_ns => {
                    last.count += b.count;
                    last.high_ns = last.high_ns.max(high_ns);
                }
                _ => out.push(Bucket { low_ns, high_ns, count: b.count }),
            }
        }
        BucketHist { buckets: out }
    }

    /// Adds `other` bucket by bucket.
    pub fn merge(&mut self, other: &BucketHist) {
        let mut merged = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut i, mut j) = (0, 0);
        while i < self.buckets.len() || j < other.buckets.len() {
            match (self.buckets.get(i), other.buckets.get(j)) {
                (Some(a), Some(b)) if a.low_ns == b.low_ns => {
                    merged.push(Bucket { count: a.count + b.count, ..*a });
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a.low_ns < b.low_ns => {
                    merged.push(*a);
                    i += 1;
                }
                (Some(a), None) => {
                    merged.push(*a);
                    i += 1;
                }
                (_, Some(b)) => {
                    merged.push(*b);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        self.buckets = merged;
    }

    /// The distribution as an hdrhistogram (each bucket recorded at its midpoint).
    pub fn to_hdr(&self) -> Histogram<u64> {
        // 3 significant figures: finer than our ±1.6 % buckets, so the conversion adds no error of note.
        let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_hist());
        for b in &self.buckets {
            // Auto-resize is on, so recording cannot fail for any u64 below the histogram's limit.
            let _ = h.record_n(b.mid_ns().min(i64::MAX as u64 / 2), b.count);
        }
        h
    }

    /// Percentiles and moments. `exact` carries the kernel's exact count/sum/min/max when the
    /// histogram covers the whole run; windows pass `None` and get bucket-resolution min/max.
    pub fn summary(&self, exact: Option<ExactTotals>) -> LatencySummary {
        let h = self.to_hdr();
        let count = exact.map_or(h.len(), |e| e.count);
        if count == 0 || h.is_empty() {
            return LatencySummary { count, ..LatencySummary::default() };
        }
        let q = |q: f64| h.value_at_quantile(q);
        let (min_ns, max_ns, mean_ns) = match exact {
            Some(e) => (e.min_ns, e.max_ns, e.total_ns.checked_div(e.count).unwrap_or(0)),
            None => (
                self.buckets.first().map_or(0, |b| b.low_ns),
                self.buckets.last().map_or(0, |b| b.high_ns.min(b.low_ns.saturating_mul(2))),
                h.mean() as u64,
            ),
        };
        // Percentiles are clamped into [min, max]: a bucket midpoint can overshoot the exact extremes.
        let clamp = |v: u64| v.clamp(min_ns, max_ns.max(min_ns));
        LatencySummary {
            count,
            min_ns,
            mean_ns,
            p50_ns: clamp(q(0.50)),
            p90_ns: clamp(q(0.90)),
            p99_ns: clamp(q(0.99)),
            p999_ns: clamp(q(0.999)),
            max_ns,
        }
    }
}

fn unreachable_hist() -> Histogram<u64> {
    // `Histogram::new(3)` only fails for sigfig > 5; keep a fallback rather than a panic path.
    Histogram::<u64>::new_with_bounds(1, u64::MAX / 2, 2).unwrap_or_else(|_| std::process::abort())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExactTotals {
    pub count: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

// ---------------------------------------------------------------------------------------------
// Attribution
// ---------------------------------------------------------------------------------------------

/// Where a function's wall time went (ATTRIBUTION.md): five disjoint parts summing to the wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub self_oncpu_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
}

impl Attribution {
    pub fn total_ns(&self) -> u64 {
        self.self_oncpu_ns + self.callees_ns + self.syscalls_ns + self.offcpu_blocked_ns + self.offcpu_runqueue_ns
    }

    pub fn offcpu_ns(&self) -> u64 {
        self.offcpu_blocked_ns + self.offcpu_runqueue_ns
    }

    pub fn since(&self, base: &Attribution) -> Attribution {
        Attribution {
            self_oncpu_ns: self.self_oncpu_ns.saturating_sub(base.self_oncpu_ns),
            callees_ns: self.callees_ns.saturating_sub(base.callees_ns),
            syscalls_ns: self.syscalls_ns.saturating_sub(base.syscalls_ns),
            offcpu_blocked_ns: self.offcpu_blocked_ns.saturating_sub(base.offcpu_blocked_ns),
            offcpu_runqueue_ns: self.offcpu_runqueue_ns.saturating_sub(base.offcpu_runqueue_ns),
        }
    }

    /// Shares of the total in [0, 1]: (own CPU, callees, syscalls, off-CPU).
    pub fn shares(&self) -> Shares {
        let total = self.total_ns();
        if total == 0 {
            return Shares::default();
        }
        let f = |v: u64| v as f64 / total as f64;
        Shares {
            self_oncpu: f(self.self_oncpu_ns),
            callees: f(self.callees_ns),
            syscalls: f(self.syscalls_ns),
            offcpu: f(self.offcpu_ns()),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shares {
    pub self_oncpu: f64,
    pub callees: f64,
    pub syscalls: f64,
    pub offcpu: f64,
}

// ---------------------------------------------------------------------------------------------
// Samples: cumulative readings of the kernel's maps
// ---------------------------------------------------------------------------------------------

/// Cumulative totals of one function since attach.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FuncSample {
    pub id: u32,
    /// Calls that entered, timed or not (0 when only `count` is known).
    pub calls: u64,
    /// Timed calls: the histograms, totals and attribution describe these.
    pub count: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub syscall_count: u64,
    pub attribution: Attribution,
    pub total_hist: BucketHist,
    pub self_hist: BucketHist,
    /// Probe cost taken from each of its calls (`without_probe_cost`; 0: raw numbers).
    pub probe_cost_ns: u64,
}

impl FuncSample {
    /// Every call seen: more than `count` when sampling left some untimed.
    pub fn calls(&self) -> u64 {
        self.calls.max(self.count)
    }

    /// The probe cost to take from each of this function's calls, given what calibration measured.
    /// Every call carries a whole probe cost, so the fastest call seen (wall or own time) can
    /// carry at most `fastest - cost.min_ns` of the target's own time: a calibration whose fastest
    /// run is slower than the function's fastest call overestimates here (a busy host while
    /// perf-user calibrated, a different CPU state than the target's) and is lowered by that much.
    /// Without this, such a calibration zeroes small functions' latencies and own time.
    pub fn probe_cost(&self, cost: WindowCost) -> u64 {
        if self.count == 0 || cost.median_ns == 0 {
            return cost.median_ns;
        }
        let self_low = self.self_hist.buckets.first().map_or(self.min_ns, |b| b.low_ns);
        let fastest = self.min_ns.min(self_low);
        cost.median_ns.saturating_sub(cost.min_ns.saturating_sub(fastest))
    }

    /// Removes the probes' own cost (`ns` per call, measured by calibration) from the wall time,
    /// where it sits, and so from own CPU time.
    pub fn without_probe_cost(mut self, ns: u64) -> FuncSample {
        self.probe_cost_ns = ns;
        if ns == 0 {
            return self;
        }
        let total = ns.saturating_mul(self.count);
        self.total_ns = self.total_ns.saturating_sub(total);
        self.attribution.self_oncpu_ns = self.attribution.self_oncpu_ns.saturating_sub(total);
        self.min_ns = self.min_ns.saturating_sub(ns);
        self.max_ns = self.max_ns.saturating_sub(ns);
        self.total_hist = self.total_hist.shifted_down(ns);
        self.self_hist = self.self_hist.shifted_down(ns);
        self
    }

    pub fn exact(&self) -> ExactTotals {
        ExactTotals { count: self.count, total_ns: self.total_ns, min_ns: self.min_ns, max_ns: self.max_ns }
    }

    /// The calls made after `base` was taken (min/max then come from the buckets).
    pub fn since(&self, base: &FuncSample) -> FuncSample {
        FuncSample {
            id: self.id,
            calls: self.calls.saturating_sub(base.calls),
            count: self.count.saturating_sub(base.count),
            total_ns: self.total_ns.saturating_sub(base.total_ns),
            min_ns: 0,
            max_ns: 0,
            syscall_count: self.syscall_count.saturating_sub(base.syscall_count),
            attribution: self.attribution.since(&base.attribution),
            total_hist: self.total_hist.since(&base.total_hist),
            self_hist: self.self_hist.since(&base.self_hist),
            probe_cost_ns: self.probe_cost_ns,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyscallSample {
    pub nr: u32,
    /// Entered (what strace and bpftrace count).
    pub count: u64,
    /// Returned: the latency fields and the histogram cover these.
    pub completed: u64,
    pub errors: u64,
    pub total_ns: u64,
    pub max_ns: u64,
    pub hist: BucketHist,
}

impl SyscallSample {
    pub fn since(&self, base: &SyscallSample) -> SyscallSample {
        SyscallSample {
            nr: self.nr,
            count: self.count.saturating_sub(base.count),
            completed: self.completed.saturating_sub(base.completed),
            errors: self.errors.saturating_sub(base.errors),
            total_ns: self.total_ns.saturating_sub(base.total_ns),
            max_ns: 0,
            hist: self.hist.since(&base.hist),
        }
    }
}

/// Syscalls made while a function was the innermost traced frame (count and wall time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FuncSyscall {
    pub fn_id: u32,
    pub nr: u32,
    pub count: u64,
    pub total_ns: u64,
}

/// Per (thread, function) totals, with `--per-thread`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadFuncSample {
    pub tid: u32,
    pub fn_id: u32,
    pub count: u64,
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub attribution: Attribution,
}

/// What could not be seen or kept; all cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    /// Exemplars dropped: the ring buffer was full.
    pub ringbuf_full: u64,
    /// Events dropped: the per-thread state map was full.
    pub thread_map_full: u64,
    /// Calls deeper than the kernel's stack depth: counted in `probe_hits`, not timed.
    pub depth_overflow: u64,
    /// Returns without a recorded entry.
    pub orphan_return: u64,
    /// Entries that never returned (thread exit, longjmp, unwinding).
    pub orphan_entry: u64,
    /// (function, syscall) or (thread, function) attributions dropped: their map was full.
    pub attr_map_full: u64,
    /// Exemplars received but not kept in memory (only the newest are).
    pub exemplars_evicted: u64,
}

impl Lost {
    /// Data the kernel had but could not keep for lack of room (ring buffer, maps).
    pub fn dropped(&self) -> u64 {
        self.ringbuf_full + self.thread_map_full + self.attr_map_full
    }

    /// Everything not timed or kept: `dropped()` plus calls deeper than the stack and calls whose
    /// entry or return was not seen (e.g. in flight while attaching).
    pub fn total(&self) -> u64 {
        self.ringbuf_full
            + self.thread_map_full
            + self.depth_overflow
            + self.orphan_return
            + self.orphan_entry
            + self.attr_map_full
    }
}

/// Tool health counters (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub probe_hits: u64,
    pub exemplars: u64,
    pub syscalls: u64,
    pub switches: u64,
    pub lost: Lost,
}

/// One slow call, with its breakdown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exemplar {
    #[serde(skip)]
    pub fn_id: u32,
    pub symbol: String,
    pub tid: u32,
    pub thread: String,
    /// CLOCK_MONOTONIC at entry.
    pub start_ns: u64,
    pub duration_ns: u64,
    pub attribution: Attribution,
    pub syscall_count: u64,
    /// The syscalls with the most wall time inside this call, by wall time.
    pub syscalls: Vec<SyscallUse>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallUse {
    pub name: String,
    pub count: u64,
    pub total_ns: u64,
}

/// One reading of all maps, cumulative since attach; `at_ns` is monotonic time since attach.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub at_ns: u64,
    pub functions: Vec<FuncSample>,
    pub syscalls: Vec<SyscallSample>,
    pub func_syscalls: Vec<FuncSyscall>,
    pub threads: Vec<ThreadFuncSample>,
    pub counters: Counters,
}

impl Sample {
    /// What happened between `base` and `self`.
    pub fn since(&self, base: &Sample) -> Sample {
        let functions = self
            .functions
            .iter()
            .map(|f| match base.functions.iter().find(|b| b.id == f.id) {
                Some(b) => f.since(b),
                None => f.clone(),
            })
            .collect();
        let syscalls = self
            .syscalls
            .iter()
            .map(|s| match base.syscalls.iter().find(|b| b.nr == s.nr) {
                Some(b) => s.since(b),
                None => s.clone(),
            })
            .filter(|s| s.count > 0)
            .collect();
        let func_syscalls = self
            .func_syscalls
            .iter()
            .map(|s| {
                let b = base.func_syscalls.iter().find(|b| b.fn_id == s.fn_id && b.nr == s.nr);
                FuncSyscall {
                    count: s.count.saturating_sub(b.map_or(0, |b| b.count)),
                    total_ns: s.total_ns.saturating_sub(b.map_or(0, |b| b.total_ns)),
                    ..*s
                }
            })
            .filter(|s| s.count > 0)
            .collect();
        let c = &self.counters;
        let b = &base.counters;
        Sample {
            at_ns: self.at_ns.saturating_sub(base.at_ns),
            functions,
            syscalls,
            func_syscalls,
            threads: self.threads.clone(),
            counters: Counters {
                probe_hits: c.probe_hits.saturating_sub(b.probe_hits),
                exemplars: c.exemplars.saturating_sub(b.exemplars),
                syscalls: c.syscalls.saturating_sub(b.syscalls),
                switches: c.switches.saturating_sub(b.switches),
                lost: c.lost,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Session: the history of samples and what is derived from it
// ---------------------------------------------------------------------------------------------

/// A traced function's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FuncInfo {
    pub id: u32,
    /// Demangled name.
    pub symbol: String,
    pub raw_symbol: String,
    pub address: u64,
    /// First instruction at the probe site, and whether the kernel must single-step it (slow).
    pub entry_insn: String,
    pub single_step: bool,
    /// Its probes were removed by the overhead guard; its numbers stop there.
    pub detached: bool,
    /// Probe cost subtracted from each of its calls (depends on the kind of probe site).
    pub calibration_ns: u64,
}

/// What a probe pair adds inside a measured call, from timing an empty function at start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCost {
    /// The median: subtracted from every call.
    pub median_ns: u64,
    /// The fastest: how low a call's probe cost can be (bounds the subtraction, see
    /// `FuncSample::probe_cost`).
    pub min_ns: u64,
}

/// A single-stepped probe hit costs about this many times an emulated one (measured here: ~10 µs
/// against ~1 µs).
pub const SINGLE_STEP_FACTOR: f64 = 10.0;

/// Estimated share of one CPU (in %) each attached function's probes cost the target, from a
/// window: calls/s × probe hits per call × cost per hit (× `SINGLE_STEP_FACTOR` when stepped).
pub fn probe_overhead_pct(window: &Sample, functions: &[FuncInfo], cost_per_hit_ns: f64) -> Vec<(u32, f64)> {
    if window.at_ns == 0 {
        return Vec::new();
    }
    window
        .functions
        .iter()
        .filter_map(|f| {
            let info = functions.get(f.id as usize).filter(|i| !i.detached)?;
            let factor = if info.single_step { SINGLE_STEP_FACTOR } else { 1.0 };
            // An entry hit for every call, a return hit for every timed one (none in entry-only
            // mode, one in N with --sample N).
            let hits_per_s = rate_per_s(f.calls() + f.count, window.at_ns);
            Some((f.id, hits_per_s * cost_per_hit_ns * factor / 1e9 * 100.0))
        })
        .collect()
}

/// Time windows the UI and export can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Window {
    #[default]
    AllTime,
    Last1s,
    Last10s,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::AllTime, Window::Last1s, Window::Last10s];

    pub fn span_ns(self) -> Option<u64> {
        match self {
            Window::AllTime => None,
            Window::Last1s => Some(1_000_000_000),
            Window::Last10s => Some(10_000_000_000),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::AllTime => "all",
            Window::Last1s => "1s",
            Window::Last10s => "10s",
        }
    }

    pub fn next(self) -> Window {
        match self {
            Window::AllTime => Window::Last1s,
            Window::Last1s => Window::Last10s,
            Window::Last10s => Window::AllTime,
        }
    }
}

/// Everything a session accumulates: owned by the app, fed one `Sample` per tick.
#[derive(Debug, Default)]
pub struct Session {
    pub functions: Vec<FuncInfo>,
    /// Cumulative samples (oldest first) for windows and rates: every one of the last
    /// `DENSE_SPAN_NS`, then one a second back to `HISTORY_SPAN_NS`. Each holds every function's
    /// cumulative histograms, which only gain buckets: keeping a minute of them at 4 a second grew
    /// perf-user by 18 MiB in a 10-minute soak.
    history: VecDeque<Sample>,
    /// Subtracted from everything after a reset.
    baseline: Option<Sample>,
    /// p99 (ns) per function over time, one point per tick, for sparklines.
    pub p99_history: Vec<VecDeque<u64>>,
    pub exemplars: VecDeque<Exemplar>,
    pub exemplar_capacity: usize,
    pub exemplars_evicted: u64,
    /// The last-second window, computed once per sample: the sparkline, the rates, the UI and the
    /// overhead guard all read it every tick.
    last_second: Option<Sample>,
}

/// The longest window (10 s) and a second to find its start in.
const HISTORY_SPAN_NS: u64 = 11_000_000_000;
const DENSE_SPAN_NS: u64 = 2_000_000_000;
const SPARSE_STEP_NS: u64 = 1_000_000_000;
const SPARK_POINTS: usize = 120;

impl Session {
    pub fn new(functions: Vec<FuncInfo>, exemplar_capacity: usize) -> Self {
        let n = functions.len();
        Session { functions, p99_history: vec![VecDeque::new(); n], exemplar_capacity, ..Session::default() }
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.history.back()
    }

    pub fn push(&mut self, sample: Sample) {
        // The export and `--slow auto` say what is subtracted now (it can drop as calls arrive).
        for f in &sample.functions {
            if let Some(info) = self.functions.get_mut(f.id as usize) {
                info.calibration_ns = f.probe_cost_ns;
            }
        }
        let now = sample.at_ns;
        self.history.push_back(sample);
        while self.history.len() > 2
            && self.history.front().is_some_and(|s| now.saturating_sub(s.at_ns) > HISTORY_SPAN_NS)
        {
            self.history.pop_front();
        }
        // Older than the dense span: keep one sample a second.
        let mut last_kept: Option<u64> = None;
        self.history.retain(|s| {
            if now.saturating_sub(s.at_ns) <= DENSE_SPAN_NS {
                return true;
            }
            match last_kept {
                Some(t) if s.at_ns.saturating_sub(t) < SPARSE_STEP_NS => false,
                _ => {
                    last_kept = Some(s.at_ns);
                    true
                }
            }
        });
        self.last_second = self.compute_window(Window::Last1s);
        // Sparkline: p99 of the last second, per function.
        for (i, hist) in self.p99_history.iter_mut().enumerate() {
            let p99 = self
                .last_second
                .as_ref()
                .and_then(|w| w.functions.iter().find(|f| f.id as usize == i))
                .map_or(0, |f| f.total_hist.summary(None).p99_ns);
            hist.push_back(p99);
            if hist.len() > SPARK_POINTS {
                hist.pop_front();
            }
        }
    }

    pub fn add_exemplars(&mut self, new: impl IntoIterator<Item = Exemplar>) {
        for e in new {
            self.exemplars.push_back(e);
            if self.exemplars.len() > self.exemplar_capacity {
                self.exemplars.pop_front();
                self.exemplars_evicted += 1;
            }
        }
    }

    /// Forget everything so far: numbers restart from the latest sample.
    pub fn reset(&mut self) {
        self.baseline = self.history.back().cloned();
        self.last_second = self.compute_window(Window::Last1s);
        self.exemplars.clear();
        for h in &mut self.p99_history {
            h.clear();
        }
    }

    /// The sample for a window: everything since attach (or reset), or the difference between the
    /// latest sample and the newest one at least `span` older.
    pub fn window(&self, w: Window) -> Option<Sample> {
        match w {
            Window::Last1s => self.last_second.clone(),
            _ => self.compute_window(w),
        }
    }

    /// The last second, borrowed (see `last_second`).
    pub fn last_second(&self) -> Option<&Sample> {
        self.last_second.as_ref()
    }

    fn compute_window(&self, w: Window) -> Option<Sample> {
        let latest = self.history.back()?;
        let base = match w.span_ns() {
            None => self.baseline.as_ref(),
            Some(span) => {
                let cutoff = latest.at_ns.saturating_sub(span);
                let older = self.history.iter().rev().find(|s| s.at_ns <= cutoff).or(self.history.front());
                match (older, &self.baseline) {
                    (Some(o), Some(b)) if b.at_ns > o.at_ns => Some(b),
                    (o, _) => o,
                }
            }
        };
        Some(match base {
            Some(b) if !std::ptr::eq(b, latest) => {
                let mut s = latest.since(b);
                s.counters.lost = latest.counters.lost;
                s
            }
            Some(_) => latest.since(latest),
            None => {
                let mut s = latest.clone();
                s.at_ns = latest.at_ns;
                s
            }
        })
    }

    /// Probe hits per second over the last second.
    pub fn hits_per_s(&self) -> f64 {
        self.last_second().filter(|w| w.at_ns > 0).map_or(0.0, |w| w.counters.probe_hits as f64 * 1e9 / w.at_ns as f64)
    }

    pub fn elapsed_ns(&self) -> u64 {
        self.history.back().map_or(0, |s| s.at_ns)
    }
}

/// Calls per second of a window sample.
pub fn rate_per_s(count: u64, span_ns: u64) -> f64 {
    if span_ns == 0 { 0.0 } else { count as f64 * 1e9 / span_ns as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(points: &[(u64, u64)]) -> BucketHist {
        BucketHist { buckets: points.iter().map(|&(v, c)| Bucket { low_ns: v, high_ns: v, count: c }).collect() }
    }

    #[test]
    fn summary_percentiles_follow_the_buckets() {
        // 98 calls of 1000 ns, 2 of 100_000 ns.
        let h = hist(&[(1000, 98), (100_000, 2)]);
        let s = h.summary(None);
        assert_eq!(s.count, 100);
        assert!((s.p50_ns as f64 - 1000.0).abs() < 2.0, "{s:?}");
        assert!((s.p99_ns as f64 - 100_000.0).abs() < 100.0, "{s:?}");
        let exact = h.summary(Some(ExactTotals { count: 100, total_ns: 298_000, min_ns: 990, max_ns: 100_010 }));
        assert_eq!((exact.min_ns, exact.max_ns, exact.mean_ns), (990, 100_010, 2980));
    }

    #[test]
    fn probe_cost_correction_shifts_and_merges() {
        let h = BucketHist {
            buckets: vec![
                Bucket { low_ns: 100, high_ns: 103, count: 1 },
                Bucket { low_ns: 500, high_ns: 515, count: 2 },
                Bucket { low_ns: 520, high_ns: 535, count: 3 },
            ],
        };
        let s = h.shifted_down(510);
        assert_eq!(s.count(), 6);
        assert_eq!(s.buckets[0], Bucket { low_ns: 0, high_ns: 5, count: 3 });
        assert_eq!(s.buckets[1], Bucket { low_ns: 10, high_ns: 25, count: 3 });
        let f = FuncSample {
            count: 6,
            total_ns: 3000,
            min_ns: 100,
            max_ns: 535,
            attribution: Attribution { self_oncpu_ns: 2000, callees_ns: 1000, ..Attribution::default() },
            total_hist: h,
            ..FuncSample::default()
        }
        .without_probe_cost(100);
        assert_eq!((f.total_ns, f.attribution.self_oncpu_ns, f.min_ns, f.max_ns), (2400, 1400, 0, 435));
        assert_eq!(f.total_ns, f.attribution.total_ns(), "parts still sum to the wall time");
    }

    #[test]
    fn probe_cost_is_bounded_by_the_fastest_call() {
        let hist = |lows: &[u64]| BucketHist {
            buckets: lows.iter().map(|&low_ns| Bucket { low_ns, high_ns: low_ns + 15, count: 1 }).collect(),
        };
        let f = FuncSample {
            count: 3,
            total_ns: 1800,
            min_ns: 560,
            max_ns: 640,
            attribution: Attribution { self_oncpu_ns: 1700, callees_ns: 100, ..Attribution::default() },
            total_hist: hist(&[560, 600, 640]),
            self_hist: hist(&[520, 540, 640]),
            ..FuncSample::default()
        };
        // A calibration that fits under every call is taken whole.
        assert_eq!(f.probe_cost(WindowCost { median_ns: 500, min_ns: 480 }), 500);
        // One whose fastest run (690) is slower than the fastest own time (520) is lowered by the
        // difference; unbounded it would have zeroed the own time.
        let cost = f.probe_cost(WindowCost { median_ns: 700, min_ns: 690 });
        assert_eq!(cost, 530);
        let g = f.without_probe_cost(cost);
        assert_eq!(g.attribution.self_oncpu_ns, 1700 - 3 * 530);
        assert!(g.total_hist.summary(None).p50_ns > 0);
        let none = WindowCost { median_ns: 700, min_ns: 650 };
        assert_eq!(FuncSample::default().probe_cost(none), 700, "no calls yet: the calibration as measured");

        // What was subtracted reaches the function's info (the export's `probe.calibration_ns`).
        let mut s = Session::new(vec![FuncInfo { calibration_ns: 700, ..FuncInfo::default() }], 10);
        s.push(Sample { at_ns: 1, functions: vec![g], ..Sample::default() });
        assert_eq!(s.functions[0].calibration_ns, 530);
    }

    #[test]
    fn overhead_estimate_weighs_rate_and_single_steps() {
        let infos = vec![
            FuncInfo { id: 0, ..FuncInfo::default() },
            FuncInfo { id: 1, single_step: true, ..FuncInfo::default() },
            FuncInfo { id: 2, detached: true, ..FuncInfo::default() },
        ];
        let w = Sample {
            at_ns: 1_000_000_000,
            functions: (0..3).map(|id| FuncSample { id, count: 100_000, ..FuncSample::default() }).collect(),
            ..Sample::default()
        };
        // 100k calls/s × 2 hits × 1 µs = 20 % of a CPU; single-stepped ×10; detached not counted.
        let o = probe_overhead_pct(&w, &infos, 1000.0);
        assert_eq!(o.len(), 2);
        assert!((o[0].1 - 20.0).abs() < 1e-9 && (o[1].1 - 200.0).abs() < 1e-9, "{o:?}");
        // Entry-only (nothing timed) or sampled: one hit per call, plus one per timed call.
        let sampled = Sample {
            at_ns: 1_000_000_000,
            functions: vec![FuncSample { id: 0, calls: 100_000, count: 10_000, ..FuncSample::default() }],
            ..Sample::default()
        };
        let o = probe_overhead_pct(&sampled, &infos, 1000.0);
        assert!((o[0].1 - 11.0).abs() < 1e-9, "{o:?}");
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(BucketHist::default().summary(None), LatencySummary::default());
    }

    #[test]
    fn since_and_merge_are_inverse() {
        let a = hist(&[(10, 1), (20, 2)]);
        let b = hist(&[(20, 3), (40, 4)]);
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m, hist(&[(10, 1), (20, 5), (40, 4)]));
        assert_eq!(m.since(&a), b);
        assert_eq!(m.since(&m), BucketHist::default());
    }

    #[test]
    fn attribution_shares_sum_to_one() {
        let a = Attribution {
            self_oncpu_ns: 10,
            callees_ns: 20,
            syscalls_ns: 30,
            offcpu_blocked_ns: 25,
            offcpu_runqueue_ns: 15,
        };
        let s = a.shares();
        assert!((s.self_oncpu + s.callees + s.syscalls + s.offcpu - 1.0).abs() < 1e-9);
        assert_eq!(Attribution::default().shares(), Shares::default());
    }

    fn sample(at_s: u64, count: u64) -> Sample {
        Sample {
            at_ns: at_s * 1_000_000_000,
            functions: vec![FuncSample { id: 0, count, total_hist: hist(&[(100, count)]), ..FuncSample::default() }],
            counters: Counters { probe_hits: 2 * count, ..Counters::default() },
            ..Sample::default()
        }
    }

    #[test]
    fn windows_subtract_the_right_sample_and_reset_rebases() {
        let mut s = Session::new(vec![FuncInfo::default()], 10);
        for t in 0..=20 {
            s.push(sample(t, t * 100));
        }
        let all = s.window(Window::AllTime).unwrap_or_default();
        assert_eq!(all.functions[0].count, 2000);
        let w1 = s.window(Window::Last1s).unwrap_or_default();
        assert_eq!(w1.functions[0].count, 100);
        assert_eq!(w1.at_ns, 1_000_000_000);
        assert!((s.hits_per_s() - 200.0).abs() < 1e-6);
        let w10 = s.window(Window::Last10s).unwrap_or_default();
        assert_eq!(w10.functions[0].count, 1000);
        s.reset();
        s.push(sample(21, 2150));
        assert_eq!(s.window(Window::AllTime).unwrap_or_default().functions[0].count, 150);
        assert_eq!(s.window(Window::Last10s).unwrap_or_default().functions[0].count, 150);
        assert_eq!(s.p99_history[0].len(), 1);
    }

    #[test]
    fn history_stays_bounded_and_windows_stay_right_at_four_ticks_a_second() {
        let mut s = Session::new(vec![FuncInfo::default()], 10);
        let tick = |i: u64| Sample { at_ns: i * 250_000_000, ..sample(0, i * 25) };
        for i in 0..=2400 {
            s.push(tick(i));
        }
        // 10 minutes of ticks: 9 from the last 2 s, then one a second back to 11 s.
        assert!(s.history.len() <= 20, "{} samples kept", s.history.len());
        let w1 = s.window(Window::Last1s).unwrap_or_default();
        assert_eq!((w1.at_ns, w1.functions[0].count), (1_000_000_000, 100));
        let w10 = s.window(Window::Last10s).unwrap_or_default();
        assert!((10_000_000_000..=11_000_000_000).contains(&w10.at_ns), "10 s window spans {} ns", w10.at_ns);
        assert_eq!(w10.functions[0].count, w10.at_ns / 10_000_000, "100 calls a second");
    }

    #[test]
    fn exemplars_keep_the_newest() {
        let mut s = Session::new(vec![], 2);
        s.add_exemplars((0..5).map(|i| Exemplar { tid: i, ..Exemplar::default() }));
        assert_eq!(s.exemplars.iter().map(|e| e.tid).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(s.exemplars_evicted, 3);
    }
}
