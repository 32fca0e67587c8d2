//! diff's verdicts on synthetic reports: significant changes, noise, and the edge cases.

use super::*;
use crate::output::report::{FunctionReport, SCHEMA};

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

/// Two reports with interference: `f` 2x slower, its new time all steal and page faults.
fn with_steal(steal_per_call_ns: u64, faults_per_call: u64) -> (Report, Report) {
    let mut base = report(&[("f", 1000, 10_000.0)]);
    let mut new = report(&[("f", 1000, 20_000.0)]);
    for (r, steal, faults) in [(&mut base, 0, 0), (&mut new, steal_per_call_ns, faults_per_call)] {
        r.interference = true;
        let f = &mut r.functions[0];
        let wall = f.latency.mean_ns * f.latency.count;
        f.attribution.parts.steal_ns = steal * f.latency.count;
        f.attribution.parts.self_oncpu_ns = wall - f.attribution.parts.steal_ns;
        f.attribution.parts.interference.page_faults = faults * f.latency.count;
    }
    (base, new)
}

#[test]
fn a_regression_in_steal_or_faults_is_named_as_such() {
    let (base, new) = with_steal(9_000, 3);
    let d = run(&base, &new, Metric::P50);
    let f = &d.functions[0];
    assert_eq!(f.verdict, Verdict::Regressed);
    let kinds: Vec<&str> = f.causes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["steal", "page_faults"]);
    let t = text(&d);
    assert!(t.contains("steal 0ns → 9.00µs a call, page faults 0.00 → 3.00 a call"), "{t}");

    // The same slowdown in own compute names nothing.
    let (base, new) = with_steal(0, 0);
    let d = run(&base, &new, Metric::P50);
    assert_eq!(d.functions[0].verdict, Verdict::Regressed);
    assert!(d.functions[0].causes.is_empty());
    // Nor do reports without --interference, where the parts are not split.
    let (mut base, new) = with_steal(9_000, 3);
    base.interference = false;
    assert!(run(&base, &new, Metric::P50).functions[0].causes.is_empty());
}

/// `f` in the executable and in `libx.so`, in both reports; only the library's got slower. Paired
/// by object and symbol: two entries, each named with its object, the library's regressed.
#[test]
fn one_name_in_two_objects_is_paired_by_object() {
    let with_objects = |lib_center: f64| {
        let mut r = report(&[("f", 20_000, 10_000.0), ("f", 20_000, lib_center)]);
        r.target.exe = "/opt/app/bin/app".into();
        r.functions[0].object = r.target.exe.clone();
        r.functions[1].object = "/opt/app/lib/libx.so".into();
        r
    };
    let (base, mut new) = (with_objects(10_000.0), with_objects(13_000.0));
    // Another build of the executable at another path is still "the executable".
    new.target.exe = "/tmp/build/app".into();
    new.functions[0].object = new.target.exe.clone();
    // The library's row first in one report: pairing does not follow the order.
    new.functions.reverse();
    let d = run(&base, &new, Metric::P50);
    let names: Vec<(&str, &str, Verdict)> =
        d.functions.iter().map(|e| (e.name.as_str(), e.object.as_str(), e.verdict)).collect();
    assert_eq!(names, [("libx.so:f", "libx.so", Verdict::Regressed), ("app:f", "", Verdict::Unchanged)], "{d:#?}");
    // A symbol in one object only keeps its plain name.
    let d = run(&report(&[("g", 100, 1_000.0)]), &report(&[("g", 100, 1_000.0)]), Metric::P50);
    assert_eq!(d.functions[0].name, "g");
}
