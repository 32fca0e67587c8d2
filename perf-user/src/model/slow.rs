//! Which calls count as slow (`--slow auto`'s per-function thresholds) and which slow calls stay in
//! memory once it is full: relative to each function's own distribution and rate, fair across functions.

use super::{BucketHist, Exemplar};

/// The quantile a function's threshold starts at: the slowest 0.1 % of its calls.
pub const SLOW_QUANTILE: f64 = 0.999;
/// At most about this many slow calls a second per function: a function making 100,000 calls a
/// second would send 100 a second at its p99.9 alone, so its threshold rises to the quantile that
/// leaves this many above it.
pub const SLOW_PER_FUNC_PER_S: f64 = 2.0;
/// A slow call takes at least this many times its function's median: a function whose calls all
/// take about the same time has no slow ones, only noise around its median.
pub const SLOW_OVER_MEDIAN: u64 = 4;
/// Calls a function must have made before it gets a threshold (a p99.9 of fewer means little).
pub const SLOW_MIN_CALLS: u64 = 100;

/// `--slow auto`'s threshold for one function, from its calibrated histogram since attach and its
/// calls per second lately: the higher of just above its p99.9's bucket (raised to the quantile that leaves about
/// `SLOW_PER_FUNC_PER_S` calls a second above it) and `SLOW_OVER_MEDIAN` times its median. `None`
/// before `SLOW_MIN_CALLS` calls.
pub fn auto_threshold_ns(hist: &BucketHist, calls_per_s: f64) -> Option<u64> {
    let n = hist.count();
    if n < SLOW_MIN_CALLS {
        return None;
    }
    let q = if calls_per_s > SLOW_PER_FUNC_PER_S { 1.0 - SLOW_PER_FUNC_PER_S / calls_per_s } else { 0.0 };
    // Longer than every call in the quantile's bucket: at most a share 1 − q of the calls.
    let tail = hist.quantile_high_ns(q.max(SLOW_QUANTILE)).saturating_add(1);
    let median = hist.quantile_high_ns(0.5);
    Some(tail.max(median.saturating_mul(SLOW_OVER_MEDIAN)).max(1))
}

impl BucketHist {
    /// The top of the bucket holding the value of rank ⌈q × n⌉: at most a share 1 − q of the
    /// values lie above it. The unbounded top bucket gives its low end.
    pub fn quantile_high_ns(&self, q: f64) -> u64 {
        let n = self.count();
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for b in &self.buckets {
            seen += b.count;
            if seen >= rank {
                return if b.high_ns == u64::MAX { b.low_ns } else { b.high_ns };
            }
        }
        self.buckets.last().map_or(0, |b| b.low_ns)
    }
}

/// Trims `kept` (oldest first) to `capacity` slow calls and says how many went: each one taken
/// from the owner (a function, or a span) with the most calls kept, its oldest first, so that one
/// with many slow calls cannot push out another's rare ones. One pass, whatever the excess.
pub fn evict_fairly(kept: &mut std::collections::VecDeque<Exemplar>, capacity: usize) -> u64 {
    let excess = kept.len().saturating_sub(capacity);
    if excess == 0 {
        return 0;
    }
    // A function is its id, a span its name (every slow span carries the same placeholder id, far
    // beyond any function's); owners are ranked in key order, so a tie goes to the lowest key
    // whatever the order the calls came in.
    fn owner(e: &Exemplar) -> (u32, &str) {
        (e.fn_id, if e.span.is_some() { e.symbol.as_str() } else { "" })
    }
    let mut keys: Vec<(u32, &str)> = kept.iter().map(owner).collect();
    keys.sort_unstable();
    keys.dedup();
    let of: Vec<usize> = kept.iter().map(|e| keys.binary_search(&owner(e)).unwrap_or(0)).collect();
    let mut count = vec![0usize; keys.len()];
    for &o in &of {
        count[o] += 1;
    }
    let mut drop = vec![0usize; count.len()];
    for _ in 0..excess {
        // The fullest owner; on a tie the lowest key.
        let Some((f, _)) = count.iter().enumerate().max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i))) else { break };
        count[f] -= 1;
        drop[f] += 1;
    }
    let mut at = 0;
    kept.retain(|_| {
        let d = &mut drop[of[at]];
        at += 1;
        if *d > 0 {
            *d -= 1;
            false
        } else {
            true
        }
    });
    excess as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Bucket;

    fn hist(points: &[(u64, u64)]) -> BucketHist {
        BucketHist { buckets: points.iter().map(|&(v, count)| Bucket { low_ns: v, high_ns: v, count }).collect() }
    }

    #[test]
    fn threshold_follows_the_p999_of_a_rare_function() {
        let h = hist(&[(1_000, 9_000), (2_000, 985), (40_000, 10), (50_000, 5)]);
        assert_eq!(auto_threshold_ns(&h, 1.0), Some(40_001), "above the bucket of the p99.9");
        assert_eq!(auto_threshold_ns(&hist(&[(1_000, 99)]), 1.0), None, "too few calls");
    }

    #[test]
    fn fast_busy_functions_do_not_flood_regression() {
        // A trivial function: 200 ns median, a 7-60 µs tail from interrupts, 100,000 calls/s. Its
        // p99.9 (8 µs) would send 100 calls a second; the rate budget lifts it to the top 2 a second.
        let h = hist(&[(200, 999_000), (8_000, 800), (30_000, 180), (60_000, 20)]);
        let t = auto_threshold_ns(&h, 100_000.0).unwrap_or(0);
        let above: u64 = h.buckets.iter().filter(|b| b.high_ns >= t).map(|b| b.count).sum();
        assert!(t >= 30_000 && above as f64 / 1e6 * 100_000.0 <= 2.0 * SLOW_PER_FUNC_PER_S, "{t} {above}");
    }

    #[test]
    fn a_tight_distribution_has_no_slow_calls_near_its_median() {
        let h = hist(&[(1_000, 5_000), (1_100, 5_000), (1_300, 10)]);
        assert_eq!(auto_threshold_ns(&h, 1.0), Some(4_400), "4 × the median, not its p99.9");
    }

    #[test]
    fn a_flooding_function_cannot_evict_another_ones_rare_calls_regression() {
        let mut kept = std::collections::VecDeque::new();
        let mut evicted = 0;
        kept.push_back(Exemplar { fn_id: 1, seq: 0, ..Exemplar::default() });
        for seq in 1..=100 {
            kept.push_back(Exemplar { fn_id: 0, seq, ..Exemplar::default() });
            evicted += evict_fairly(&mut kept, 10);
        }
        assert_eq!(kept.len(), 10);
        assert_eq!(kept.iter().filter(|e| e.fn_id == 1).count(), 1, "the rare call stays");
        assert_eq!(evicted, 91);
        let seqs: Vec<u64> = kept.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 92, 93, 94, 95, 96, 97, 98, 99, 100], "the flooder's newest stay");
        // Two equal functions share the room.
        kept.extend((0..10).map(|_| Exemplar { fn_id: 2, ..Exemplar::default() }));
        evict_fairly(&mut kept, 10);
        assert_eq!(kept.iter().filter(|e| e.fn_id == 2).count(), 5, "{kept:?}");
    }

    /// Regression: slow spans carry the placeholder id `u32::MAX`, and eviction sized a vector by
    /// the largest id: 32 GiB, and perf-user aborted (losing its export) as soon as a span's slow
    /// spans filled the room. Spans are owners of their own, by name.
    #[test]
    fn slow_spans_are_evicted_fairly_by_span_and_never_sized_by_their_id_regression() {
        use crate::model::SpanEnds;
        let span = |name: &str, seq| Exemplar {
            fn_id: u32::MAX,
            symbol: name.into(),
            seq,
            span: Some(SpanEnds::default()),
            ..Exemplar::default()
        };
        let mut kept: std::collections::VecDeque<Exemplar> = (0..30).map(|s| span("tick", s)).collect();
        kept.push_back(span("rare", 30));
        kept.push_back(Exemplar { fn_id: 3, seq: 31, ..Exemplar::default() });
        assert_eq!(evict_fairly(&mut kept, 10), 22);
        let of = |name: &str| kept.iter().filter(|e| e.span.is_some() && e.symbol == name).count();
        assert_eq!((of("tick"), of("rare")), (8, 1), "the flooding span gives way: {kept:?}");
        assert_eq!(kept.iter().filter(|e| e.fn_id == 3).count(), 1, "the function's call stays");
        assert_eq!(kept.front().map(|e| e.seq), Some(22), "the flooder's oldest went first");
    }
}
