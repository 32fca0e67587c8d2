//! One thread's record of latencies, shared by the per-stage and tick-to-trade truths: an HDR
//! histogram with fixed bounds (recording never allocates) plus the exact count, min, max and sum.

use hdrhistogram::Histogram;

/// Highest latency the histogram resolves; anything longer is clamped (a stage that takes a
/// minute is a hang, not a latency).
const HIST_MAX_NS: u64 = 60_000_000_000;

/// Latencies recorded by the one thread that owns this, so recording takes no lock.
#[derive(Debug, Clone)]
pub struct LatencyRecord {
    hist: Histogram<u64>,
    count: u64,
    min_ns: u64,
    max_ns: u64,
    sum_ns: u128,
}

/// What a [`LatencyRecord`] holds, summed up: all zero when nothing was recorded. The truth file
/// writes these fields inline in each stage and in tick-to-trade (`#[serde(flatten)]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    pub sum_ns: u64,
}

impl LatencyRecord {
    pub fn new() -> Result<LatencyRecord, hdrhistogram::CreationError> {
        Ok(LatencyRecord {
            hist: Histogram::new_with_bounds(1, HIST_MAX_NS, 3)?,
            count: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            sum_ns: 0,
        })
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    #[inline(always)]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns);
        self.count += 1;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns += u128::from(ns);
    }

    /// The histogram, for callers that export its buckets.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    pub fn summary(&self) -> LatencySummary {
        if self.count == 0 {
            return LatencySummary::default();
        }
        // Quantiles come from hdrhistogram buckets (0.1 % resolution); clamp them into the exact
        // [min, max] so p999 never exceeds max.
        let q = |quantile: f64| self.hist.value_at_quantile(quantile).clamp(self.min_ns, self.max_ns);
        LatencySummary {
            count: self.count,
            min_ns: self.min_ns,
            mean_ns: u64::try_from(self.sum_ns / u128::from(self.count)).unwrap_or(u64::MAX),
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            max_ns: self.max_ns,
            sum_ns: u64::try_from(self.sum_ns).unwrap_or(u64::MAX),
        }
    }
}
