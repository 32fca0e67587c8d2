//! How the UI judges a p99 or p99.9: against the same function in a baseline report
//! (`--baseline FILE.json`, a previous export) or above a fixed threshold (`--slow DURATION`).
//! Pure: the baseline is read once at start-up, the verdict is a lookup.

use std::collections::HashMap;

use crate::output::report::Report;

/// A p99 or p99.9 is worse than its baseline when it grew by more than this factor, better when
/// it shrank by as much: run-to-run noise of a tail percentile is of this order.
pub const BASELINE_TOLERANCE: f64 = 1.2;

/// Which tail percentile a cell shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    P99,
    P999,
}

/// What a tail cell says, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to compare with, or within the tolerance.
    Plain,
    /// Above the threshold, or worse than the baseline.
    Worse,
    /// Better than the baseline (and under the threshold).
    Better,
}

/// What tail latencies are compared with.
#[derive(Clone, Debug, Default)]
pub struct TailColours {
    /// `--slow DURATION`: a tail at or above it is worse.
    pub threshold_ns: Option<u64>,
    /// Per function, paired as `diff` pairs them (`Report::function_key`: the object's file name,
    /// empty for the executable, and the symbol): the baseline's (p99, p99.9) of timed calls.
    /// `malloc` of the executable is never judged against libc's.
    pub baseline: HashMap<(String, String), (u64, u64)>,
}

impl TailColours {
    pub fn new(threshold_ns: Option<u64>, baseline: Option<&Report>) -> TailColours {
        let baseline = baseline
            .map(|r| {
                r.functions
                    .iter()
                    .filter(|f| f.latency.count > 0)
                    .map(|f| {
                        let (object, symbol) = r.function_key(f);
                        ((object.to_owned(), symbol.to_owned()), (f.latency.p99_ns, f.latency.p999_ns))
                    })
                    .collect()
            })
            .unwrap_or_default();
        TailColours { threshold_ns, baseline }
    }

    /// The verdict on `ns`, the `tail` percentile of the function `key` (object file name, empty
    /// for the executable, and symbol; `App::function_key`); 0 timed calls: `Plain`.
    pub fn judge(&self, key: (&str, &str), tail: Tail, ns: u64, timed: u64) -> Verdict {
        if timed == 0 {
            return Verdict::Plain;
        }
        if self.threshold_ns.is_some_and(|t| ns >= t) {
            return Verdict::Worse;
        }
        let Some(&(p99, p999)) = self.baseline.get(&(key.0.to_owned(), key.1.to_owned())) else {
            return Verdict::Plain;
        };
        let base = match tail {
            Tail::P99 => p99,
            Tail::P999 => p999,
        } as f64;
        let now = ns as f64;
        if base > 0.0 && now > base * BASELINE_TOLERANCE {
            Verdict::Worse
        } else if now * BASELINE_TOLERANCE < base {
            Verdict::Better
        } else {
            Verdict::Plain
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{model::LatencySummary, output::report::FunctionReport};

    fn baseline() -> Report {
        let f = |symbol: &str, p99_ns, count| FunctionReport {
            symbol: symbol.into(),
            latency: LatencySummary { count, p99_ns, p999_ns: p99_ns * 10, ..LatencySummary::default() },
            ..FunctionReport::default()
        };
        Report { functions: vec![f("app::a", 1_000, 50), f("app::untimed", 0, 0)], ..Report::default() }
    }

    #[test]
    fn tails_are_judged_against_the_baseline_with_a_tolerance() {
        let c = TailColours::new(None, Some(&baseline()));
        assert_eq!(c.judge(("", "app::a"), Tail::P99, 1_100, 5), Verdict::Plain, "within 20 %");
        assert_eq!(c.judge(("", "app::a"), Tail::P99, 1_300, 5), Verdict::Worse);
        assert_eq!(c.judge(("", "app::a"), Tail::P99, 700, 5), Verdict::Better);
        assert_eq!(
            c.judge(("", "app::a"), Tail::P999, 13_000, 5),
            Verdict::Worse,
            "p99.9 against the baseline's p99.9"
        );
        assert_eq!(c.judge(("", "app::a"), Tail::P999, 11_000, 5), Verdict::Plain);
        assert_eq!(c.judge(("", "app::new"), Tail::P99, 1_000_000, 5), Verdict::Plain, "not in the baseline");
        assert_eq!(c.judge(("", "app::untimed"), Tail::P99, 1_000_000, 5), Verdict::Plain, "nothing timed there");
        assert_eq!(c.judge(("", "app::a"), Tail::P99, 1_000_000, 0), Verdict::Plain, "nothing timed here");
    }

    #[test]
    fn a_threshold_marks_tails_at_or_above_it() {
        let c = TailColours::new(Some(1_000_000), Some(&baseline()));
        assert_eq!(c.judge(("", "app::new"), Tail::P99, 1_000_000, 5), Verdict::Worse);
        assert_eq!(c.judge(("", "app::new"), Tail::P999, 999_999, 5), Verdict::Plain);
        assert_eq!(c.judge(("", "app::a"), Tail::P99, 700, 5), Verdict::Better, "under it, the baseline decides");
        assert_eq!(TailColours::default().judge(("", "app::a"), Tail::P99, u64::MAX, 5), Verdict::Plain);
    }
}
