//! `perf-user diff`: compares two reports function by function (by symbol) and syscall by syscall
//! (by name), and calls a change a regression only when it is both large and statistically significant.
//!
//! The statistics work on the exported bucket histograms, so they need no raw samples:
//! - percentiles: a distribution-free confidence interval of each quantile from order statistics
//!   (the rank of the q-quantile among n calls is Binomial(n, q)), mapped through the cumulative
//!   bucket counts to values; a change is significant when the two intervals do not overlap;
//! - mean: Welch's z-test on the bucket moments (at least 30 calls a side);
//! - max: an exact exceedance test (how many new calls lie above the old maximum, against what
//!   exchangeable samples give under "no change"; at least 30 calls a side);
//! - for information, the two-sample Kolmogorov–Smirnov test on the bucket CDFs.
//!
//! Everything is deterministic: the same two files always give the same verdicts.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    model::LatencySummary,
    output::report::{BucketCount, Report},
};

/// One-sided error of each confidence bound (two-sided 95 % intervals).
const ALPHA_TAIL: f64 = 0.025;
/// z of the standard normal at 1 - ALPHA_TAIL.
const Z_TAIL: f64 = 1.959_963_984_540_054;
/// Mean and max are judged only with this many calls a side: Welch's z-test needs them for the
/// normal approximation, and below it one disturbed call (a page fault) moves either a lot.
const MIN_CALLS: u64 = 30;

/// What `--metric` compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    P50,
    P90,
    P99,
    P999,
    Mean,
    Max,
}

impl Metric {
    pub const ALL: [Metric; 6] = [Metric::P50, Metric::P90, Metric::P99, Metric::P999, Metric::Mean, Metric::Max];

    pub fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Mean => "mean",
            Metric::Max => "max",
        }
    }

    fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.50),
            Metric::P90 => Some(0.90),
            Metric::P99 => Some(0.99),
            Metric::P999 => Some(0.999),
            Metric::Mean | Metric::Max => None,
        }
    }

    fn of(self, l: &LatencySummary) -> u64 {
        match self {
            Metric::P50 => l.p50_ns,
            Metric::P90 => l.p90_ns,
            Metric::P99 => l.p99_ns,
            Metric::P999 => l.p999_ns,
            Metric::Mean => l.mean_ns,
            Metric::Max => l.max_ns,
        }
    }
}

/// `--warn-above` and `--fail-above`, in percent of the base value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub warn_pct: f64,
    pub fail_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { warn_pct: 5.0, fail_pct: 20.0 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Slower by at least --fail-above, significantly: fails the gate (exit 1).
    Regressed,
    /// Slower by at least --warn-above (below --fail-above), significantly.
    Slower,
    /// Faster by at least --warn-above, significantly.
    Improved,
    /// Changed by at least --warn-above, but the counts cannot tell it from noise.
    Inconclusive,
    /// Within --warn-above of the base (or no calls in either).
    Unchanged,
    /// Calls in the new report only.
    Appeared,
    /// Calls in the base report only.
    Vanished,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Regressed => "REGRESSED",
            Verdict::Slower => "slower",
            Verdict::Improved => "improved",
            Verdict::Inconclusive => "noise?",
            Verdict::Unchanged => "unchanged",
            Verdict::Appeared => "appeared",
            Verdict::Vanished => "vanished",
        }
    }
}

/// Direction a test found, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Significance {
    Slower,
    Faster,
    None,
}

/// A confidence interval in ns; `hi_ns` is `None` when the data bound it from one side only
/// (too few calls for that quantile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub lo_ns: u64,
    pub hi_ns: Option<u64>,
}

/// One metric of one function or syscall, base against new.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricChange {
    pub metric: Metric,
    pub base_ns: u64,
    pub new_ns: u64,
    /// `(new - base) / base * 100`; `None` when the base is 0.
    pub change_pct: Option<f64>,
    /// When significant: the change's 95 % bound nearest to zero (at least this much slower, or
    /// at most this much faster), from the intervals; the gate compares this, not `change_pct`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_bound_pct: Option<f64>,
    pub significance: Significance,
    /// 95 % intervals of quantiles (percentile metrics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ci: Option<Interval>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_ci: Option<Interval>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KsTest {
    /// Largest distance between the two bucket CDFs.
    pub d: f64,
    /// Asymptotic p-value (bucketing makes it conservative).
    pub p_value: f64,
}

/// One function or syscall.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// The function as tables show it: its symbol, or `object:symbol` when the reports hold that
    /// symbol in more than one object.
    pub name: String,
    /// The object's file name when the function is not in the executable (absent otherwise):
    /// functions are paired by object and symbol.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub object: String,
    /// The symbol, as the reports name it.
    #[serde(skip)]
    pub symbol: String,
    pub verdict: Verdict,
    pub base_count: u64,
    pub new_count: u64,
    /// The `--metric` change that decided the verdict.
    pub metric: MetricChange,
    /// Every metric, in the order p50, p90, p99, p99.9, mean, max.
    pub metrics: Vec<MetricChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<KsTest>,
    /// Slower functions, both reports with `--interference`: steal, interrupts, page faults or
    /// migrations that grew enough per call to name them (`cause.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<cause::Cause>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub regressed: usize,
    pub slower: usize,
    pub improved: usize,
    pub inconclusive: usize,
    pub unchanged: usize,
    pub appeared: usize,
    pub vanished: usize,
}

impl Counts {
    fn of(entries: &[Entry]) -> Counts {
        let mut c = Counts::default();
        for e in entries {
            match e.verdict {
                Verdict::Regressed => c.regressed += 1,
                Verdict::Slower => c.slower += 1,
                Verdict::Improved => c.improved += 1,
                Verdict::Inconclusive => c.inconclusive += 1,
                Verdict::Unchanged => c.unchanged += 1,
                Verdict::Appeared => c.appeared += 1,
                Verdict::Vanished => c.vanished += 1,
            }
        }
        c
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub file: String,
    pub pid: u32,
    pub exe: String,
    pub duration_ns: u64,
}

/// The whole comparison, as printed by `diff --format json` (schema `perf-ebpf-diff/v1`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    pub base: Side,
    pub new: Side,
    pub metric: Metric,
    pub warn_above_pct: f64,
    pub fail_above_pct: f64,
    pub functions: Vec<Entry>,
    /// `--span`s, paired by name; they gate like functions. Absent when neither report has spans.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Entry>,
    pub syscalls: Vec<Entry>,
    /// Verdicts of the functions.
    pub summary: Counts,
    /// Verdicts of the spans (absent without spans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_summary: Option<Counts>,
    /// Verdicts of the syscalls (shown, but they do not gate: their latency follows the machine).
    pub syscall_summary: Counts,
    /// True when a function or a span regressed beyond --fail-above: `perf-user diff` then exits 1.
    pub failed: bool,
}

pub const DIFF_SCHEMA: &str = "perf-ebpf-diff/v1";

/// Compares `new` against `base`.
pub fn compare(base: &Report, base_file: &str, new: &Report, new_file: &str, metric: Metric, t: Thresholds) -> Diff {
    let side = |r: &Report, file: &str| Side {
        file: file.to_string(),
        pid: r.target.pid,
        exe: r.target.exe.clone(),
        duration_ns: r.duration_ns,
    };
    let mut functions = pair_functions(base, new, metric, t);
    let spans = pair_up(
        base.spans.iter().map(|s| (s.row.symbol.as_str(), Dist::new(&s.row.latency, &s.row.buckets, on_ladder(base)))),
        new.spans.iter().map(|s| (s.row.symbol.as_str(), Dist::new(&s.row.latency, &s.row.buckets, on_ladder(new)))),
        metric,
        t,
    );
    let syscalls = pair_up(
        base.syscalls.iter().map(|s| (s.name.as_str(), Dist::new(&s.latency, &s.buckets, on_ladder(base)))),
        new.syscalls.iter().map(|s| (s.name.as_str(), Dist::new(&s.latency, &s.buckets, on_ladder(new)))),
        metric,
        t,
    );
    cause::name_causes(&mut functions, base, new);
    let summary = Counts::of(&functions);
    let syscall_summary = Counts::of(&syscalls);
    let span_summary = (!spans.is_empty()).then(|| Counts::of(&spans));
    Diff {
        schema: DIFF_SCHEMA,
        base: side(base, base_file),
        new: side(new, new_file),
        metric,
        warn_above_pct: t.warn_pct,
        fail_above_pct: t.fail_pct,
        failed: summary.regressed > 0 || span_summary.is_some_and(|s| s.regressed > 0),
        functions,
        spans,
        syscalls,
        summary,
        span_summary,
        syscall_summary,
    }
}

/// A latency distribution as a report holds it.
#[derive(Clone, Copy, Debug)]
struct Dist<'a> {
    summary: &'a LatencySummary,
    buckets: &'a [BucketCount],
    /// Buckets come from the tracer's log-linear ladder, so each `le_ns` also gives its low end.
    ladder: bool,
}

/// Reports written by perf-user use the kernel's bucket ladder; imported ones (bpftrace) do not.
fn on_ladder(r: &Report) -> bool {
    r.tool.name != "bpftrace"
}

/// Low end of the tracer's bucket (32 linear sub-buckets per power of two) whose high end is
/// `le`, or `None` when `le` is no bucket end of that ladder.
fn ladder_low(le: u64) -> Option<u64> {
    if le < 32 {
        return Some(le);
    }
    let shift = 63 - le.leading_zeros() - 5;
    let low = (le >> shift) << shift;
    (low.checked_add((1u64 << shift) - 1) == Some(le)).then_some(low)
}

impl<'a> Dist<'a> {
    fn new(summary: &'a LatencySummary, buckets: &'a [BucketCount], ladder: bool) -> Self {
        Dist { summary, buckets, ladder }
    }

    fn calls(&self) -> u64 {
        self.summary.count.max(hist_count(self.buckets))
    }
}

/// Functions paired by (object, symbol): the same symbol in two objects stays two entries, each
/// named `object:symbol` (the executable by its file name).
fn pair_functions(base: &Report, new: &Report, metric: Metric, t: Thresholds) -> Vec<Entry> {
    // "object\0symbol": a symbol holds no NUL, so the key splits back unambiguously.
    let keyed = |r: &Report| -> Vec<String> {
        r.functions.iter().map(|f| format!("{}\0{}", r.function_key(f).0, f.symbol)).collect()
    };
    let (bk, nk) = (keyed(base), keyed(new));
    let (bd, nd) = (dists(base), dists(new));
    let mut entries = pair_up(bk.iter().map(String::as_str).zip(bd), nk.iter().map(String::as_str).zip(nd), metric, t);
    let split = |k: &str| k.split_once('\0').map(|(o, s)| (o.to_owned(), s.to_owned())).unwrap_or_default();
    let all: Vec<(String, String)> = bk.iter().chain(&nk).map(|k| split(k)).collect();
    let exe_name = new.target.exe.rsplit('/').next().unwrap_or("").to_owned();
    for e in &mut entries {
        let (object, symbol) = split(&e.name);
        let ambiguous = all.iter().any(|(o, s)| *s == symbol && *o != object);
        let shown_object = if object.is_empty() { exe_name.clone() } else { object.clone() };
        e.name = if ambiguous { format!("{shown_object}:{symbol}") } else { symbol.clone() };
        e.object = object;
        e.symbol = symbol;
    }
    entries
}

fn dists(r: &Report) -> Vec<Dist<'_>> {
    r.functions.iter().map(|f| Dist::new(&f.latency, &f.buckets, on_ladder(r))).collect()
}

fn pair_up<'a>(
    base: impl Iterator<Item = (&'a str, Dist<'a>)>,
    new: impl Iterator<Item = (&'a str, Dist<'a>)>,
    metric: Metric,
    t: Thresholds,
) -> Vec<Entry> {
    let base: Vec<_> = base.collect();
    let new: Vec<_> = new.collect();
    let mut out = Vec::new();
    for (name, b) in &base {
        let n = new.iter().find(|(m, _)| m == name).map(|(_, d)| *d);
        out.push(judge(name, Some(*b), n, metric, t));
    }
    for (name, n) in &new {
        if !base.iter().any(|(m, _)| m == name) {
            out.push(judge(name, None, Some(*n), metric, t));
        }
    }
    // Worst first, then by size of the change.
    out.sort_by(|a, b| {
        rank(a.verdict).cmp(&rank(b.verdict)).then_with(|| {
            let ca = a.metric.change_pct.unwrap_or(0.0).abs();
            let cb = b.metric.change_pct.unwrap_or(0.0).abs();
            cb.total_cmp(&ca)
        })
    });
    out
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Regressed => 0,
        Verdict::Slower => 1,
        Verdict::Improved => 2,
        Verdict::Inconclusive => 3,
        Verdict::Appeared => 4,
        Verdict::Vanished => 5,
        Verdict::Unchanged => 6,
    }
}

fn judge(name: &str, base: Option<Dist<'_>>, new: Option<Dist<'_>>, metric: Metric, t: Thresholds) -> Entry {
    let empty = LatencySummary::default();
    let none = Dist::new(&empty, &[], true);
    let (b, n) = (base.unwrap_or(none), new.unwrap_or(none));
    let metrics: Vec<MetricChange> = Metric::ALL.iter().map(|&m| metric_change(m, &b, &n)).collect();
    let chosen = metrics.iter().find(|m| m.metric == metric).cloned().unwrap_or_else(|| metric_change(metric, &b, &n));
    let (bc, nc) = (b.calls(), n.calls());
    let verdict = match (bc, nc) {
        (0, 0) => Verdict::Unchanged,
        (0, _) => Verdict::Appeared,
        (_, 0) => Verdict::Vanished,
        _ => verdict(&chosen, t),
    };
    let ks = (hist_count(b.buckets) > 0 && hist_count(n.buckets) > 0).then(|| ks_test(b.buckets, n.buckets));
    Entry {
        name: name.to_string(),
        object: String::new(),
        symbol: name.to_string(),
        verdict,
        base_count: bc,
        new_count: nc,
        metric: chosen,
        metrics,
        ks,
        causes: Vec::new(),
    }
}

/// Fails the gate only when the data show the change beyond --fail-above with 95 % confidence (its
/// conservative bound, not just its point estimate, is past the gate): a run that happened to be a
/// little slower does not fail CI.
fn verdict(m: &MetricChange, t: Thresholds) -> Verdict {
    let Some(pct) = m.change_pct else {
        return if m.new_ns == 0 { Verdict::Unchanged } else { Verdict::Inconclusive };
    };
    let bound = m.change_bound_pct.unwrap_or(pct).min(pct);
    if bound >= t.fail_pct && m.significance == Significance::Slower {
        Verdict::Regressed
    } else if pct >= t.warn_pct && m.significance == Significance::Slower {
        Verdict::Slower
    } else if -pct >= t.warn_pct && m.significance == Significance::Faster {
        Verdict::Improved
    } else if pct.abs() >= t.warn_pct {
        Verdict::Inconclusive
    } else {
        Verdict::Unchanged
    }
}

fn metric_change(metric: Metric, b: &Dist<'_>, n: &Dist<'_>) -> MetricChange {
    let base_ns = metric.of(b.summary);
    let new_ns = metric.of(n.summary);
    let change_pct = (base_ns > 0).then(|| (new_ns as f64 - base_ns as f64) / base_ns as f64 * 100.0);
    let (mut base_ci, mut new_ci) = (None, None);
    let (significance, change_bound_pct) = match metric.quantile() {
        Some(q) => {
            base_ci = quantile_ci(b, q);
            new_ci = quantile_ci(n, q);
            match (base_ci, new_ci) {
                (Some(bi), Some(ni)) => {
                    let sig = intervals_differ(bi, ni);
                    let ratio_pct = |num: u64, den: u64| (den > 0).then(|| (num as f64 / den as f64 - 1.0) * 100.0);
                    let bound = match (sig, bi.hi_ns, ni.hi_ns) {
                        (Significance::Slower, Some(bh), _) => ratio_pct(ni.lo_ns, bh),
                        (Significance::Faster, _, Some(nh)) => ratio_pct(nh, bi.lo_ns),
                        _ => None,
                    };
                    (sig, bound)
                }
                _ => (Significance::None, None),
            }
        }
        None if metric == Metric::Mean => mean_test(b, n),
        None => (max_test(b, n), None),
    };
    MetricChange { metric, base_ns, new_ns, change_pct, change_bound_pct, significance, base_ci, new_ci }
}

// ---------------------------------------------------------------------------------------------

mod cause;
mod program;
mod stats;
mod text;

pub use program::*;
use stats::*;
pub use text::*;

#[cfg(test)]
mod tests;
