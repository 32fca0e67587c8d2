//! Samples: cumulative readings of the kernel's maps, as `collect` hands them over, and the
//! windows (differences) between two of them.

use super::*;

use serde::{Deserialize, Serialize};

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
        // Own compute first, then the interference parts (`--interference`); what they cannot
        // give stays in the wall time, so the parts still sum to it.
        let kept = self.attribution.take_probe_cost(total);
        self.total_ns = self.total_ns.saturating_sub(total - kept);
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
    /// `--span`: starts never matched (evicted from the bounded map of waiting starts, or
    /// replaced by a later start under the same key) plus ends that found no start.
    #[serde(default)]
    pub span_unmatched: u64,
    /// Switch-ins of the target's threads no `sched_switch` reported (on this kernel: those right
    /// after one of the VM agent's threads), closed at the thread's next event: not lost, but
    /// their off-CPU time ends there (docs/ATTRIBUTION.md).
    #[serde(default)]
    pub switch_in_unseen: u64,
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
    /// Every syscall and switch-out of the target the tracepoints ran on (0 without them): what
    /// they cost the target whatever it traces (`Overhead::fixed_pct`).
    pub target_syscalls: u64,
    pub target_switches: u64,
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
    /// Its direct traced callees with the most wall time (at most 3, kept by the kernel for the
    /// whole call), by wall time: "callees 99%: Gateway::send 97%".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callees: Vec<CalleeUse>,
    /// A span's exemplar (`symbol` is the span's name): its key and where it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SpanEnds>,
    /// Time since attach at entry (what the UI and the `--trace` file place it at).
    #[serde(skip)]
    pub at_ns: u64,
    /// Arrival order in the session, unique: the UI's selection follows it.
    #[serde(skip)]
    pub seq: u64,
    /// Traced calls that ran inside it, oldest first: the last few the kernel kept per thread
    /// (`RECENT_CALLS`), so a long call with many callees shows only its final ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nested: Vec<NestedCall>,
}

impl Exemplar {
    /// Its heaviest traced callees as shares of its wall time, e.g. "callees 99%: Gateway::send 97%,
    /// Book::apply 1%"; empty when none was traced.
    pub fn callees_text(&self) -> String {
        self.callees_text_named(|c| short_symbol(&c.symbol).to_string())
    }

    /// `callees_text` with each callee named by `name` (the UI names the object when two traced
    /// objects have a function of that name).
    pub fn callees_text_named(&self, name: impl Fn(&CalleeUse) -> String) -> String {
        if self.callees.is_empty() {
            return String::new();
        }
        let total = self.duration_ns.max(1) as f64;
        let pct = |ns: u64| format!("{:.0}%", ns as f64 * 100.0 / total);
        let names: Vec<String> = self.callees.iter().map(|c| format!("{} {}", name(c), pct(c.total_ns))).collect();
        format!("callees {}: {}", pct(self.attribution.callees_ns), names.join(", "))
    }
}

/// The last two `::` segments of a symbol (`Gateway::send` for `app::gateway::Gateway::send`).
pub fn short_symbol(symbol: &str) -> &str {
    let mut cut = symbol.len();
    for _ in 0..2 {
        match symbol[..cut].rfind("::") {
            Some(i) => cut = i,
            None => return symbol,
        }
    }
    &symbol[cut + 2..]
}

/// One traced callee's share of a slow call: its calls and their wall time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalleeUse {
    #[serde(skip)]
    pub fn_id: u32,
    pub symbol: String,
    pub count: u64,
    pub total_ns: u64,
}

/// A traced call that ran inside a slow one, from the thread's ring of recent calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedCall {
    #[serde(skip)]
    pub fn_id: u32,
    pub symbol: String,
    /// Its depth on the thread's traced stack (0 would be outermost; nested calls are at least 1).
    pub depth: u32,
    /// Time since attach at entry.
    pub at_ns: u64,
    pub duration_ns: u64,
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
    /// `--span`: one per span, by id.
    pub spans: Vec<SpanSample>,
    /// Per call path totals (the call tree's data), cumulative.
    pub call_paths: Vec<CallPath>,
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
        let spans = self
            .spans
            .iter()
            .map(|s| match base.spans.iter().find(|b| b.row.id == s.row.id) {
                Some(b) => s.since(b),
                None => s.clone(),
            })
            .collect();
        let base_paths: std::collections::HashMap<u64, &CallPath> = base.call_paths.iter().map(|p| (p.id, p)).collect();
        let call_paths = self
            .call_paths
            .iter()
            .map(|p| base_paths.get(&p.id).map_or(*p, |b| p.since(b)))
            .filter(|p| p.totals.calls > 0)
            .collect();
        let c = &self.counters;
        let b = &base.counters;
        Sample {
            at_ns: self.at_ns.saturating_sub(base.at_ns),
            functions,
            syscalls,
            func_syscalls,
            threads: self.threads.clone(),
            spans,
            call_paths,
            counters: Counters {
                probe_hits: c.probe_hits.saturating_sub(b.probe_hits),
                exemplars: c.exemplars.saturating_sub(b.exemplars),
                syscalls: c.syscalls.saturating_sub(b.syscalls),
                switches: c.switches.saturating_sub(b.switches),
                target_syscalls: c.target_syscalls.saturating_sub(b.target_syscalls),
                target_switches: c.target_switches.saturating_sub(b.target_switches),
                lost: c.lost,
            },
        }
    }
}
