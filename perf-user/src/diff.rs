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
    report::{BucketCount, Report},
    units::{fmt_count, fmt_ns},
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
    pub name: String,
    pub verdict: Verdict,
    pub base_count: u64,
    pub new_count: u64,
    /// The `--metric` change that decided the verdict.
    pub metric: MetricChange,
    /// Every metric, in the order p50, p90, p99, p99.9, mean, max.
    pub metrics: Vec<MetricChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<KsTest>,
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
    pub syscalls: Vec<Entry>,
    /// Verdicts of the functions.
    pub summary: Counts,
    /// Verdicts of the syscalls (shown, but they do not gate: their latency follows the machine).
    pub syscall_summary: Counts,
    /// True when a function regressed beyond --fail-above: `perf-user diff` then exits 1.
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
    let functions = pair_up(
        base.functions.iter().map(|f| (f.symbol.as_str(), Dist::new(&f.latency, &f.buckets, on_ladder(base)))),
        new.functions.iter().map(|f| (f.symbol.as_str(), Dist::new(&f.latency, &f.buckets, on_ladder(new)))),
        metric,
        t,
    );
    let syscalls = pair_up(
        base.syscalls.iter().map(|s| (s.name.as_str(), Dist::new(&s.latency, &s.buckets, on_ladder(base)))),
        new.syscalls.iter().map(|s| (s.name.as_str(), Dist::new(&s.latency, &s.buckets, on_ladder(new)))),
        metric,
        t,
    );
    let summary = Counts::of(&functions);
    let syscall_summary = Counts::of(&syscalls);
    Diff {
        schema: DIFF_SCHEMA,
        base: side(base, base_file),
        new: side(new, new_file),
        metric,
        warn_above_pct: t.warn_pct,
        fail_above_pct: t.fail_pct,
        failed: summary.regressed > 0,
        functions,
        syscalls,
        summary,
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
    Entry { name: name.to_string(), verdict, base_count: bc, new_count: nc, metric: chosen, metrics, ks }
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
// Statistics on bucket histograms
// ---------------------------------------------------------------------------------------------

fn hist_count(buckets: &[BucketCount]) -> u64 {
    buckets.iter().map(|b| b.count).sum()
}

/// Disjoint intervals mean the quantiles differ (each interval misses with ≤ 5 %).
fn intervals_differ(base: Interval, new: Interval) -> Significance {
    match (base.hi_ns, new.hi_ns) {
        (Some(bh), _) if new.lo_ns > bh => Significance::Slower,
        (_, Some(nh)) if nh < base.lo_ns => Significance::Faster,
        _ => Significance::None,
    }
}

/// Lowest and highest value a bucket can hold: its ladder low end if known, else just above the
/// previous non-empty bucket (or the exact minimum); at most its `le_ns` (and the exact maximum).
fn bucket_range(d: &Dist<'_>, i: usize) -> (u64, u64) {
    let (buckets, s) = (d.buckets, d.summary);
    let le = buckets[i].le_ns;
    let lo = match i.checked_sub(1) {
        Some(p) => buckets[p].le_ns.saturating_add(1),
        None if s.min_ns > 0 => s.min_ns.min(le),
        None => 0,
    };
    let lo = match ladder_low(le).filter(|_| d.ladder) {
        Some(ladder) => lo.max(ladder.min(le)),
        None => lo,
    };
    let hi = if s.max_ns > 0 { le.min(s.max_ns.max(lo)) } else { le };
    (lo, hi)
}

/// Index of the bucket holding the `rank`-th smallest value (1-based).
fn bucket_of_rank(buckets: &[BucketCount], rank: u64) -> Option<usize> {
    let mut cum = 0u64;
    for (i, b) in buckets.iter().enumerate() {
        cum = cum.saturating_add(b.count);
        if cum >= rank {
            return Some(i);
        }
    }
    None
}

/// 95 % distribution-free confidence interval of the `q`-quantile: the true quantile lies between
/// the order statistics of ranks `l` and `u`, where the number of calls below it is Binomial(n, q).
/// `None` without data; `hi_ns: None` when n is too small to bound it from above.
fn quantile_ci(d: &Dist<'_>, q: f64) -> Option<Interval> {
    let buckets = d.buckets;
    let n = hist_count(buckets);
    if n == 0 {
        return None;
    }
    let (l, u) = order_stat_ranks(n, q);
    let lo_ns = match l {
        0 => 0,
        l => bucket_of_rank(buckets, l).map_or(0, |i| bucket_range(d, i).0),
    };
    let hi_ns = u.and_then(|u| bucket_of_rank(buckets, u)).and_then(|i| {
        let (_, hi) = bucket_range(d, i);
        // The open-ended top bucket bounds nothing unless the exact maximum is known.
        (hi != u64::MAX).then_some(hi)
    });
    Some(Interval { lo_ns, hi_ns })
}

/// Ranks (1-based) of the order statistics bounding the q-quantile of n values with 1 - ALPHA_TAIL
/// each: `l` (0: no lower bound) with P(B >= l) >= 1 - α and `u` (None: no upper bound within n)
/// with P(B <= u - 1) >= 1 - α, for B ~ Binomial(n, q).
pub fn order_stat_ranks(n: u64, q: f64) -> (u64, Option<u64>) {
    let nf = n as f64;
    let var = nf * q * (1.0 - q);
    if var >= 1000.0 {
        // Normal approximation with continuity correction: off by far less than one rank here.
        let sd = var.sqrt();
        let l = (nf * q + 0.5 - Z_TAIL * sd).floor().max(0.0) as u64;
        let u = (nf * q + 0.5 + Z_TAIL * sd).ceil() as u64;
        return (l, (u <= n).then_some(u));
    }
    let cdf = BinomialCdf::new(n, q);
    // l: largest with 1 - cdf(l - 1) >= 1 - α, i.e. cdf(l - 1) <= α.
    let mut l = 0;
    while l < n && cdf.at(l) <= ALPHA_TAIL {
        l += 1;
    }
    // u: smallest with cdf(u - 1) >= 1 - α.
    let mut u = l.max(1);
    while u <= n && cdf.at(u - 1) < 1.0 - ALPHA_TAIL {
        u += 1;
    }
    (l, (u <= n).then_some(u))
}

/// Binomial(n, p) CDF, exact, computed over the window of k that carries any mass.
struct BinomialCdf {
    first: u64,
    cum: Vec<f64>,
}

impl BinomialCdf {
    fn new(n: u64, p: f64) -> Self {
        let ratio = p / (1.0 - p);
        let mode = (((n + 1) as f64) * p).floor().min(n as f64) as u64;
        // Relative weights outward from the mode; pmf(k+1)/pmf(k) = (n-k)/(k+1) * p/(1-p).
        let mut up = vec![1.0_f64];
        let mut k = mode;
        while k < n {
            let w = up[up.len() - 1] * (n - k) as f64 / (k + 1) as f64 * ratio;
            if w < 1e-18 {
                break;
            }
            up.push(w);
            k += 1;
        }
        let mut down = Vec::new();
        let (mut k, mut w) = (mode, 1.0_f64);
        while k > 0 {
            w = w * k as f64 / ((n - k + 1) as f64 * ratio);
            if w < 1e-18 {
                break;
            }
            down.push(w);
            k -= 1;
        }
        let first = mode - down.len() as u64;
        let weights: Vec<f64> = down.into_iter().rev().chain(up).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cum = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        BinomialCdf { first, cum }
    }

    /// P(B <= k).
    fn at(&self, k: u64) -> f64 {
        if k < self.first {
            return 0.0;
        }
        self.cum.get((k - self.first) as usize).copied().unwrap_or(1.0)
    }
}

/// Mean and variance of a bucket histogram, each bucket at the middle of its possible range.
fn moments(d: &Dist<'_>) -> (f64, f64, u64) {
    let n = hist_count(d.buckets);
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    let mids: Vec<(f64, u64)> = (0..d.buckets.len())
        .map(|i| {
            let (lo, hi) = bucket_range(d, i);
            let hi = if hi == u64::MAX { lo } else { hi };
            ((lo as f64 + hi as f64) / 2.0, d.buckets[i].count)
        })
        .collect();
    let mean = mids.iter().map(|(v, c)| v * *c as f64).sum::<f64>() / n as f64;
    let var = mids.iter().map(|(v, c)| (v - mean).powi(2) * *c as f64).sum::<f64>() / (n.max(2) - 1) as f64;
    (mean, var, n)
}

/// Welch's z-test of the means (two-sided 95 %), and the change's bound nearest to zero.
fn mean_test(b: &Dist<'_>, n: &Dist<'_>) -> (Significance, Option<f64>) {
    let (mb, vb, nb) = moments(b);
    let (mn, vn, nn) = moments(n);
    if nb < MIN_CALLS || nn < MIN_CALLS || mb <= 0.0 {
        return (Significance::None, None);
    }
    let se = (vb / nb as f64 + vn / nn as f64).sqrt();
    let diff = mn - mb;
    // With every call in one bucket on each side (se = 0), different buckets are a real difference.
    let sig = if diff > Z_TAIL * se && diff > 0.0 {
        Significance::Slower
    } else if diff < -Z_TAIL * se && diff < 0.0 {
        Significance::Faster
    } else {
        Significance::None
    };
    let bound = match sig {
        Significance::Slower => Some((diff - Z_TAIL * se) / mb * 100.0),
        Significance::Faster => Some((diff + Z_TAIL * se) / mb * 100.0),
        Significance::None => None,
    };
    (sig, bound)
}

/// The maximum is one call: ask instead whether more calls than chance lie beyond the other side's
/// maximum. With no change all n + m calls are exchangeable, so the chance that at least k of the
/// m new ones exceed all n old ones (the top k overall are all new) is C(m, k) / C(n + m, k).
fn max_test(b: &Dist<'_>, n: &Dist<'_>) -> Significance {
    let above = |d: &Dist<'_>, limit: u64| -> u64 {
        (0..d.buckets.len()).filter(|&i| bucket_range(d, i).0 > limit).map(|i| d.buckets[i].count).sum()
    };
    let (nb, nn) = (hist_count(b.buckets), hist_count(n.buckets));
    if nb < MIN_CALLS || nn < MIN_CALLS {
        return Significance::None;
    }
    if exceedance_p(above(n, b.summary.max_ns), nn, nb) < ALPHA_TAIL {
        Significance::Slower
    } else if exceedance_p(above(b, n.summary.max_ns), nb, nn) < ALPHA_TAIL {
        Significance::Faster
    } else {
        Significance::None
    }
}

/// P(the k largest of m + n exchangeable values all come from the m) = C(m, k) / C(m + n, k).
fn exceedance_p(k: u64, m: u64, n: u64) -> f64 {
    if k > m {
        return 0.0;
    }
    let mut p = 1.0;
    for i in 0..k {
        p *= (m - i) as f64 / (m + n - i) as f64;
        if p < 1e-300 {
            return 0.0;
        }
    }
    p
}

/// Two-sample Kolmogorov–Smirnov on the bucket CDFs (evaluated at every bucket bound of either).
pub fn ks_test(a: &[BucketCount], b: &[BucketCount]) -> KsTest {
    let (na, nb) = (hist_count(a), hist_count(b));
    if na == 0 || nb == 0 {
        return KsTest { d: 0.0, p_value: 1.0 };
    }
    let mut bounds: Vec<u64> = a.iter().chain(b).map(|x| x.le_ns).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let cdf = |h: &[BucketCount], n: u64, x: u64| {
        h.iter().take_while(|k| k.le_ns <= x).map(|k| k.count).sum::<u64>() as f64 / n as f64
    };
    let d = bounds.iter().map(|&x| (cdf(a, na, x) - cdf(b, nb, x)).abs()).fold(0.0, f64::max);
    let ne = (na as f64 * nb as f64) / (na as f64 + nb as f64);
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    KsTest { d, p_value: kolmogorov_q(lambda) }
}

/// Q_KS(λ) = 2 Σ (-1)^(j-1) exp(-2 j² λ²).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let term = sign * 2.0 * (-2.0 * (j * j) as f64 * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    sum.clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

pub fn json(d: &Diff) -> Vec<u8> {
    // Plain structs of numbers and strings: serialising cannot fail.
    let mut v = serde_json::to_vec_pretty(d).unwrap_or_default();
    v.push(b'\n');
    v
}

fn fmt_pct(m: &MetricChange) -> String {
    let star = if m.significance == Significance::None { "" } else { "*" };
    match m.change_pct {
        Some(p) if p.abs() >= 1000.0 => format!("{p:+.0}%{star}"),
        Some(p) => format!("{p:+.1}%{star}"),
        None if m.new_ns == 0 => "=".into(),
        None => "new".into(),
    }
}

fn fmt_interval(i: Option<Interval>) -> String {
    match i {
        None => "-".into(),
        Some(Interval { lo_ns, hi_ns: Some(hi) }) => format!("[{}, {}]", fmt_ns(lo_ns), fmt_ns(hi)),
        Some(Interval { lo_ns, hi_ns: None }) => format!("[{}, ?]", fmt_ns(lo_ns)),
    }
}

fn table(o: &mut String, title: &str, entries: &[Entry]) {
    if entries.is_empty() {
        return;
    }
    let width = entries.iter().map(|e| e.name.chars().count()).max().unwrap_or(8).clamp(8, 60);
    let _ = writeln!(
        o,
        "{:<10} {:<width$} {:>15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "VERDICT", title, "CALLS", "P50", "P90", "P99", "P99.9", "MEAN", "MAX"
    );
    for e in entries {
        let calls = format!("{}→{}", fmt_count(e.base_count), fmt_count(e.new_count));
        let _ = write!(o, "{:<10} {:<width$} {:>15}", e.verdict.label(), e.name, calls);
        for m in &e.metrics {
            let _ = write!(o, " {:>9}", fmt_pct(m));
        }
        o.push('\n');
    }
}

/// The human view: tables of changes (`*` = significant), then why each non-unchanged entry got its verdict.
pub fn text(d: &Diff) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "base {} (pid {}, {})  →  new {} (pid {}, {})",
        d.base.file,
        d.base.pid,
        fmt_ns(d.base.duration_ns),
        d.new.file,
        d.new.pid,
        fmt_ns(d.new.duration_ns)
    );
    let _ = writeln!(
        o,
        "judged on {}: slower beyond +{}% warns, beyond +{}% regresses; only significant changes count (* = 95 %)\n",
        d.metric.name(),
        d.warn_above_pct,
        d.fail_above_pct
    );
    table(&mut o, "FUNCTION", &d.functions);
    if !d.syscalls.is_empty() {
        o.push('\n');
        table(&mut o, "SYSCALL", &d.syscalls);
    }
    let notable: Vec<&Entry> =
        d.functions.iter().chain(&d.syscalls).filter(|e| e.verdict != Verdict::Unchanged).collect();
    if !notable.is_empty() {
        o.push('\n');
    }
    for e in notable {
        let m = &e.metric;
        let why = match e.verdict {
            Verdict::Slower if m.change_pct.is_some_and(|p| p >= d.fail_above_pct) => format!(
                "significant, but only at least {:+.1}% is certain, below the +{}% gate",
                m.change_bound_pct.unwrap_or(0.0),
                d.fail_above_pct
            ),
            Verdict::Appeared => format!("no calls in base, {} in new", e.new_count),
            Verdict::Vanished => format!("{} calls in base, none in new", e.base_count),
            Verdict::Inconclusive => "not significant: too few calls or overlapping intervals".into(),
            _ => String::new(),
        };
        let ci = if m.base_ci.is_some() {
            format!(" (95% CI {} → {})", fmt_interval(m.base_ci), fmt_interval(m.new_ci))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "{} {}: {} {} → {} {}{}{}{}",
            e.verdict.label(),
            e.name,
            m.metric.name(),
            fmt_ns(m.base_ns),
            fmt_ns(m.new_ns),
            fmt_pct(m),
            ci,
            if why.is_empty() { "" } else { "; " },
            why
        );
    }
    let line = |s: &Counts| {
        format!(
            "{} regressed, {} slower, {} improved, {} inconclusive, {} unchanged, {} appeared, {} vanished",
            s.regressed, s.slower, s.improved, s.inconclusive, s.unchanged, s.appeared, s.vanished
        )
    };
    let _ = writeln!(o, "\nfunctions: {}", line(&d.summary));
    if !d.syscalls.is_empty() {
        let _ = writeln!(o, "syscalls (shown, not gating): {}", line(&d.syscall_summary));
    }
    if d.failed {
        let _ = writeln!(o, "FAIL: a function's {} regressed beyond +{}%", d.metric.name(), d.fail_above_pct);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FunctionReport, SCHEMA};

    /// A histogram on the tracer's own ladder (32 sub-buckets per power of two) of `n` values
    /// spread evenly over [center * 0.8, center * 1.2], with a tail at 3x for 2 %.
    fn dist(n: u64, center: f64) -> (LatencySummary, Vec<BucketCount>) {
        let mut counts = std::collections::BTreeMap::<u64, u64>::new();
        let mut values: Vec<u64> = (0..n)
            .map(|i| {
                let x = (i as f64 + 0.5) / n as f64;
                let v = if x > 0.98 { center * 3.0 * (1.0 + (x - 0.98)) } else { center * (0.8 + 0.4 * x / 0.98) };
                v as u64
            })
            .collect();
        values.sort_unstable();
        for &v in &values {
            *counts.entry(le_of(v)).or_default() += 1;
        }
        let q = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n as usize) - 1];
        let s = LatencySummary {
            count: n,
            min_ns: values[0],
            mean_ns: values.iter().sum::<u64>() / n,
            p50_ns: q(0.5),
            p90_ns: q(0.9),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            max_ns: values[values.len() - 1],
        };
        (s, counts.into_iter().map(|(le_ns, count)| BucketCount { le_ns, count }).collect())
    }

    /// Upper bound of the tracer's bucket holding `v` (32 linear sub-buckets per power of two).
    fn le_of(v: u64) -> u64 {
        if v < 32 {
            return v;
        }
        let shift = 63 - v.leading_zeros() - 5;
        ((v >> shift) << shift) + (1 << shift) - 1
    }

    fn report(fns: &[(&str, u64, f64)]) -> Report {
        Report {
            schema: SCHEMA.into(),
            functions: fns
                .iter()
                .map(|&(name, n, c)| {
                    let (latency, buckets) = dist(n, c);
                    FunctionReport { symbol: name.into(), latency, buckets, ..FunctionReport::default() }
                })
                .collect(),
            ..Report::default()
        }
    }

    fn run(base: &Report, new: &Report, metric: Metric) -> Diff {
        compare(base, "base", new, "new", metric, Thresholds::default())
    }

    #[test]
    fn identical_distributions_are_unchanged() {
        let r = report(&[("f", 100_000, 10_000.0), ("g", 5, 1_000.0)]);
        for m in Metric::ALL {
            let d = run(&r, &r, m);
            assert!(!d.failed, "{m:?}");
            assert!(d.functions.iter().all(|e| e.verdict == Verdict::Unchanged), "{m:?}: {d:#?}");
        }
    }

    #[test]
    fn a_30_percent_shift_with_many_calls_is_a_regression() {
        let base = report(&[("f", 20_000, 10_000.0)]);
        let new = report(&[("f", 20_000, 13_000.0)]);
        for m in Metric::ALL {
            let d = run(&base, &new, m);
            assert_eq!(d.functions[0].verdict, Verdict::Regressed, "{m:?}: {:#?}", d.functions[0]);
            assert!(d.failed);
        }
        // And the other way round is an improvement.
        let d = run(&new, &base, Metric::P99);
        assert_eq!(d.functions[0].verdict, Verdict::Improved);
        assert!(!d.failed);
    }

    #[test]
    fn a_30_percent_shift_with_5_calls_is_not_significant() {
        let base = report(&[("f", 5, 10_000.0)]);
        let new = report(&[("f", 5, 13_000.0)]);
        for m in Metric::ALL {
            let d = run(&base, &new, m);
            let e = &d.functions[0];
            assert!(e.metric.change_pct.unwrap_or(0.0) > 20.0, "{m:?}: the shift is there: {e:#?}");
            assert_eq!(e.verdict, Verdict::Inconclusive, "{m:?}: {e:#?}");
            assert!(!d.failed);
        }
    }

    #[test]
    fn small_changes_stay_below_the_warning() {
        let base = report(&[("f", 50_000, 10_000.0)]);
        let new = report(&[("f", 50_000, 10_300.0)]);
        let d = run(&base, &new, Metric::P50);
        assert_eq!(d.functions[0].verdict, Verdict::Unchanged, "{:#?}", d.functions[0]);
        // A 10 % shift is significant with this many calls: a warning, not a failure.
        let new = report(&[("f", 50_000, 11_000.0)]);
        let d = run(&base, &new, Metric::P50);
        assert_eq!(d.functions[0].verdict, Verdict::Slower, "{:#?}", d.functions[0]);
        assert!(!d.failed);
    }

    #[test]
    fn the_gate_needs_the_whole_interval_beyond_it() {
        // 40 calls 30 % apart: certainly slower, but only ~+13 % is certain, so no failure.
        let base = report(&[("f", 40, 10_000.0)]);
        let new = report(&[("f", 40, 13_000.0)]);
        let d = run(&base, &new, Metric::P50);
        let m = &d.functions[0].metric;
        assert_eq!(m.significance, Significance::Slower, "{m:#?}");
        assert!(m.change_pct.unwrap_or(0.0) > 25.0 && m.change_bound_pct.unwrap_or(99.0) < 20.0, "{m:#?}");
        assert_eq!(d.functions[0].verdict, Verdict::Slower);
        assert!(!d.failed);
        assert!(text(&d).contains("below the +20% gate"), "{}", text(&d));
    }

    #[test]
    fn appeared_and_vanished_functions() {
        let base = report(&[("old", 100, 1000.0), ("both", 100, 1000.0)]);
        let new = report(&[("both", 100, 1000.0), ("new", 100, 1000.0)]);
        let d = run(&base, &new, Metric::P99);
        let v = |n: &str| d.functions.iter().find(|e| e.name == n).map(|e| e.verdict);
        assert_eq!(v("old"), Some(Verdict::Vanished));
        assert_eq!(v("new"), Some(Verdict::Appeared));
        assert_eq!(v("both"), Some(Verdict::Unchanged));
        assert!(!d.failed);
        let t = text(&d);
        assert!(t.contains("vanished old") && t.contains("appeared new"), "{t}");
    }

    #[test]
    fn order_statistic_ranks_match_the_binomial() {
        // No upper bound for p99 until 0.99^n <= 2.5 %, i.e. n >= 368 (docs/EXPORT.md).
        assert_eq!(order_stat_ranks(5, 0.99).1, None);
        assert_eq!(order_stat_ranks(367, 0.99).1, None);
        assert_eq!(order_stat_ranks(368, 0.99).1, Some(368));
        assert_eq!(order_stat_ranks(35, 0.9).1, None);
        assert!(order_stat_ranks(36, 0.9).1.is_some());
        assert_eq!(order_stat_ranks(3687, 0.999).1, None);
        assert!(order_stat_ranks(3688, 0.999).1.is_some());
        // Median of 100: the textbook interval is ranks 40..61.
        assert_eq!(order_stat_ranks(100, 0.5), (40, Some(61)));
        // Exact and normal branches agree where they meet.
        let (l, u) = order_stat_ranks(4_100, 0.5);
        assert!(l.abs_diff(1987) <= 1 && u.unwrap_or(0).abs_diff(2114) <= 1, "{l} {u:?}");
        let small = BinomialCdf::new(10, 0.3);
        assert!((small.at(2) - 0.382_783).abs() < 1e-5);
        assert!((small.at(10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ks_sees_a_shift_and_not_a_copy() {
        let (_, a) = dist(10_000, 1000.0);
        let (_, b) = dist(10_000, 1300.0);
        assert!(ks_test(&a, &b).p_value < 1e-6);
        let same = ks_test(&a, &a);
        assert_eq!(same.d, 0.0);
        assert!((same.p_value - 1.0).abs() < 1e-9);
        // 3 of 5 new calls above all 5 old ones: 10/120, not significant.
        assert!((exceedance_p(3, 5, 5) - 10.0 / 120.0).abs() < 1e-12);
        assert_eq!(exceedance_p(6, 5, 5), 0.0);
    }

    #[test]
    fn ladder_low_ends_match_the_kernel_buckets() {
        for v in [0u64, 31, 32, 33, 63, 64, 1000, 123_456_789, 1 << 40] {
            let le = le_of(v);
            let low = ladder_low(le).unwrap_or_else(|| panic!("{le} is a bucket end"));
            assert!(low <= v && v <= le, "{v}: [{low}, {le}]");
            let b = perf_ebpf_common::hist_bucket(v);
            assert_eq!((low, le), perf_ebpf_common::hist_bucket_bounds(b), "{v}");
        }
        assert_eq!(ladder_low(1000), None);
    }

    #[test]
    fn json_output_names_verdicts() {
        let base = report(&[("f", 20_000, 10_000.0)]);
        let new = report(&[("f", 20_000, 13_000.0)]);
        let v: serde_json::Value = serde_json::from_slice(&json(&run(&base, &new, Metric::P99))).unwrap_or_default();
        assert_eq!(v["schema"], DIFF_SCHEMA);
        assert_eq!(v["functions"][0]["verdict"], "regressed");
        assert_eq!(v["functions"][0]["metric"]["metric"], "p99");
        assert_eq!(v["failed"], true);
    }
}
