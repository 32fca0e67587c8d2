//! Latency histograms: the kernel's log-linear buckets as owned data, merged, subtracted and
//! summarised (percentiles with hdrhistogram's semantics, in one walk over the buckets).

use std::sync::LazyLock;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

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

    /// The distribution as an hdrhistogram (each bucket recorded at its midpoint): what
    /// [`BucketHist::summary`] computes without building one.
    pub fn to_hdr(&self) -> Histogram<u64> {
        // 3 significant figures: finer than our ±1.6 % buckets, so the conversion adds no error of note.
        let mut h = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_hist());
        for b in &self.buckets {
            // Auto-resize is on, so recording cannot fail for any u64 below the histogram's limit.
            let _ = h.record_n(hdr_value(b), b.count);
        }
        h
    }

    /// Percentiles and moments. `exact` carries the kernel's exact count/sum/min/max when the
    /// histogram covers the whole run; windows pass `None` and get bucket-resolution min/max.
    ///
    /// Runs on every refresh for every function, window, sparkline point and `--slow auto`
    /// threshold, so it allocates nothing: one cumulative walk over the sorted buckets gives
    /// every percentile, with the values (and the mean, to the bit) that
    /// [`BucketHist::to_hdr`]'s hdrhistogram would give. Each bucket lands in its own
    /// hdrhistogram bin (ours are ±1.6 % wide, its bins ±0.05 %), so walking our buckets is
    /// walking its bins.
    pub fn summary(&self, exact: Option<ExactTotals>) -> LatencySummary {
        let recorded = self.count();
        let count = exact.map_or(recorded, |e| e.count);
        if count == 0 || recorded == 0 {
            return LatencySummary { count, ..LatencySummary::default() };
        }
        const QUANTILES: [f64; 4] = [0.50, 0.90, 0.99, 0.999];
        // hdrhistogram's rank of a quantile: ceil(q × n), at least 1.
        let ranks = QUANTILES.map(|q| ((q * recorded as f64).ceil() as u64).max(1));
        let grid: &Histogram<u64> = &HDR_GRID;
        // The exact totals carry the mean; only windows need it from the buckets.
        let want_mean = exact.is_none();
        let mut values = [0u64; 4];
        let mut next = 0;
        let mut seen = 0u64;
        let mut mean = 0.0_f64;
        for b in self.buckets.iter().filter(|b| b.count > 0) {
            let v = hdr_value(b);
            seen += b.count;
            while next < ranks.len() && seen >= ranks[next] {
                values[next] = grid.highest_equivalent(v);
                next += 1;
            }
            if want_mean {
                // The same terms, in the same order, as `Histogram::mean`.
                mean += grid.median_equivalent(v) as f64 * b.count as f64 / recorded as f64;
            } else if next == ranks.len() {
                break;
            }
        }
        let (min_ns, max_ns, mean_ns) = match exact {
            Some(e) => (e.min_ns, e.max_ns, e.total_ns.checked_div(e.count).unwrap_or(0)),
            None => (
                self.buckets.first().map_or(0, |b| b.low_ns),
                self.buckets.last().map_or(0, |b| b.high_ns.min(b.low_ns.saturating_mul(2))),
                mean as u64,
            ),
        };
        // Percentiles are clamped into [min, max]: a bucket midpoint can overshoot the exact extremes.
        let clamp = |v: u64| v.clamp(min_ns, max_ns.max(min_ns));
        LatencySummary {
            count,
            min_ns,
            mean_ns,
            p50_ns: clamp(values[0]),
            p90_ns: clamp(values[1]),
            p99_ns: clamp(values[2]),
            p999_ns: clamp(values[3]),
            max_ns,
        }
    }
}

/// The value a bucket is counted at in hdrhistogram terms: its midpoint, kept inside the range
/// hdrhistogram can record.
fn hdr_value(b: &Bucket) -> u64 {
    b.mid_ns().min(i64::MAX as u64 / 2)
}

/// An empty 3-significant-figure histogram: only its bin layout is used, to map a value to the
/// bin edges hdrhistogram would report (the layout depends on the precision, not on the data).
static HDR_GRID: LazyLock<Histogram<u64>> =
    LazyLock::new(|| Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_hist()));

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

impl LatencySummary {
    /// The percentiles clamped into `[min_ns, max_ns]`, after either was replaced by an exact
    /// value (a bucket midpoint can lie beyond the kernel's exact maximum).
    pub fn clamped(mut self) -> LatencySummary {
        let (lo, hi) = (self.min_ns, self.max_ns.max(self.min_ns));
        for p in [&mut self.p50_ns, &mut self.p90_ns, &mut self.p99_ns, &mut self.p999_ns] {
            *p = (*p).clamp(lo, hi);
        }
        self
    }
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
