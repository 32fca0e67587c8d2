//! Unit tests of the model: histogram arithmetic, windows, attribution sums and session rates.

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
    // A measured cost for the function's kind of site replaces the rule of thumb: 30 µs a hit.
    let measured: Vec<FuncInfo> = infos.iter().map(|i| FuncInfo { hit_cost_ns: 30_000, ..i.clone() }).collect();
    let o = probe_overhead_pct(&w, &measured, 1000.0);
    assert!((o[0].1 - 600.0).abs() < 1e-9 && (o[1].1 - 600.0).abs() < 1e-9, "{o:?}");
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
        ..Attribution::default()
    };
    let s = a.shares();
    assert!((s.self_oncpu + s.callees + s.syscalls + s.offcpu - 1.0).abs() < 1e-9);
    assert_eq!(Attribution::default().shares(), Shares::default());
    // Interference (`--interference`) is a fifth share: the five still cover everything.
    let b = Attribution { irq_ns: 7, steal_ns: 11, softirq_ns: 2, ..a };
    let s = b.shares();
    assert!((s.self_oncpu + s.callees + s.syscalls + s.offcpu + s.interference - 1.0).abs() < 1e-9);
    assert!((s.interference - 20.0 / 120.0).abs() < 1e-9);
}

#[test]
fn probe_cost_comes_from_own_compute_then_interference_and_the_parts_still_sum() {
    let mut a = Attribution { self_oncpu_ns: 30, irq_ns: 50, steal_ns: 100, syscalls_ns: 40, ..Attribution::default() };
    let wall = a.total_ns();
    assert_eq!(a.take_probe_cost(70), 0);
    assert_eq!((a.self_oncpu_ns, a.irq_ns, a.steal_ns, a.syscalls_ns), (0, 10, 100, 40));
    assert_eq!(a.total_ns(), wall - 70);
    // More than own compute and interference hold: the rest is reported, not taken elsewhere.
    assert_eq!(a.take_probe_cost(200), 90);
    assert_eq!(a.total_ns(), 40);
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
fn one_second_window_is_one_second_when_ticks_arrive_late() {
    // Regression: the "1 s" window took the newest sample at least 1 s old, so a tick that came
    // 0.1 ms late made it span 1.25 s (and count a quarter more calls) at 250 ms ticks.
    let mut s = Session::new(vec![FuncInfo::default()], 10);
    let late = [0, 250_100_000, 500_000_000, 750_000_000, 1_000_000_000, 1_250_000_000];
    for (i, at_ns) in late.into_iter().enumerate() {
        s.push(Sample { at_ns, ..sample(0, i as u64 * 25) });
    }
    let w1 = s.window(Window::Last1s).unwrap_or_default();
    assert!(w1.at_ns.abs_diff(1_000_000_000) <= 125_000_000, "the 1 s window spans {} ns", w1.at_ns);
    assert_eq!(w1.functions[0].count, 100, "four ticks of 25 calls, not five");
    // Nothing older than the latest yet: an empty window, not everything.
    let mut one = Session::new(vec![FuncInfo::default()], 10);
    one.push(sample(1, 10));
    assert_eq!(one.window(Window::Last1s).unwrap_or_default().functions[0].count, 0);
}

#[test]
fn percentiles_stay_inside_exact_extremes() {
    // Regression: a syscall's exact maximum replaced the bucket one after the summary, leaving
    // p50 (a bucket midpoint) above max_ns in the export.
    let one_bucket = BucketHist { buckets: vec![Bucket { low_ns: 1_024, high_ns: 1_055, count: 10 }] };
    let mut s = one_bucket.summary(None);
    s.max_ns = 1_030;
    let s = s.clamped();
    for p in [s.p50_ns, s.p90_ns, s.p99_ns, s.p999_ns] {
        assert!((s.min_ns..=s.max_ns).contains(&p), "{s:?}");
    }
    assert_eq!(s.p50_ns, 1_030);
}

#[test]
fn the_credible_floor_is_the_calibration_spread() {
    assert_eq!(WindowCost { median_ns: 0, min_ns: 0 }.floor_ns(), 0, "nothing subtracted: raw numbers");
    assert_eq!(WindowCost { median_ns: 887, min_ns: 840 }.floor_ns(), 47);
    assert_eq!(WindowCost { median_ns: 700, min_ns: 700 }.floor_ns(), 1, "never 0 once something is subtracted");
}

#[test]
fn exemplars_keep_the_newest() {
    let mut s = Session::new(vec![], 2);
    s.add_exemplars((0..5).map(|i| Exemplar { tid: i, ..Exemplar::default() }));
    assert_eq!(s.exemplars.iter().map(|e| e.tid).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(s.exemplars_evicted, 3);
}

/// Log-linear buckets like the kernel's (32 per power of two), from a pseudo-random spread of
/// values, so the one-walk summary can be held against hdrhistogram itself.
fn log_linear(seed: u64, n: u64, spread: u64) -> BucketHist {
    let mut counts = std::collections::BTreeMap::new();
    let mut v = seed;
    for _ in 0..n {
        v = v.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        // Mostly short calls with a long tail, over `spread` powers of two.
        let ns = (1u64 << ((v >> 59) % spread.max(1))) | ((v >> 40) % 4096);
        let width = if ns < 32 { 1 } else { 1u64 << (63 - ns.leading_zeros() - 5) };
        *counts.entry(ns & !(width - 1)).or_insert(0u64) += 1;
    }
    BucketHist {
        buckets: counts
            .into_iter()
            .map(|(low_ns, count)| {
                let width = if low_ns < 32 { 1 } else { 1u64 << (63 - low_ns.leading_zeros() - 5) };
                Bucket { low_ns, high_ns: low_ns + width - 1, count }
            })
            .collect(),
    }
}

/// What the refresh path reported before it stopped building an hdrhistogram per call
/// (BENCHMARKS.md §8): the one-walk summary must give the very same numbers.
fn summary_through_hdr(h: &BucketHist, exact: Option<ExactTotals>) -> LatencySummary {
    let hdr = h.to_hdr();
    let count = exact.map_or(hdr.len(), |e| e.count);
    if count == 0 || hdr.is_empty() {
        return LatencySummary { count, ..LatencySummary::default() };
    }
    let (min_ns, max_ns, mean_ns) = match exact {
        Some(e) => (e.min_ns, e.max_ns, e.total_ns.checked_div(e.count).unwrap_or(0)),
        None => (
            h.buckets.first().map_or(0, |b| b.low_ns),
            h.buckets.last().map_or(0, |b| b.high_ns.min(b.low_ns.saturating_mul(2))),
            hdr.mean() as u64,
        ),
    };
    let clamp = |v: u64| v.clamp(min_ns, max_ns.max(min_ns));
    let q = |q: f64| clamp(hdr.value_at_quantile(q));
    LatencySummary {
        count,
        min_ns,
        mean_ns,
        p50_ns: q(0.50),
        p90_ns: q(0.90),
        p99_ns: q(0.99),
        p999_ns: q(0.999),
        max_ns,
    }
}

#[test]
fn one_walk_summary_equals_hdrhistogram() {
    let mut cases = vec![
        BucketHist::default(),
        hist(&[(0, 3)]),
        hist(&[(1000, 98), (100_000, 2)]),
        hist(&[(u64::MAX / 4, 1), (u64::MAX - 1, 1)]),
        BucketHist { buckets: vec![Bucket { low_ns: 7, high_ns: u64::MAX, count: 5 }] },
    ];
    for seed in 0..40 {
        let h = log_linear(seed, 1 + seed * seed * 50, 1 + seed % 30);
        cases.push(h.shifted_down(seed * 37));
        let half = BucketHist { buckets: h.buckets.iter().map(|b| Bucket { count: b.count / 2, ..*b }).collect() };
        cases.push(h.since(&half));
        cases.push(half);
        cases.push(h);
    }
    for h in &cases {
        assert_eq!(h.summary(None), summary_through_hdr(h, None), "{h:?}");
        let exact = ExactTotals { count: h.count(), total_ns: 12_345, min_ns: 3, max_ns: 9_000 };
        assert_eq!(h.summary(Some(exact)), summary_through_hdr(h, Some(exact)), "{h:?}");
    }
}

#[test]
fn a_slow_call_names_its_heaviest_callees_as_shares_of_its_time() {
    let e = Exemplar {
        duration_ns: 1000,
        attribution: Attribution { callees_ns: 990, self_oncpu_ns: 10, ..Attribution::default() },
        callees: vec![
            CalleeUse { fn_id: 1, symbol: "app::gateway::Gateway::send".into(), count: 1, total_ns: 970 },
            CalleeUse { fn_id: 2, symbol: "apply".into(), count: 2, total_ns: 20 },
        ],
        ..Exemplar::default()
    };
    assert_eq!(e.callees_text(), "callees 99%: Gateway::send 97%, apply 2%");
    assert_eq!(Exemplar::default().callees_text(), "");
    assert_eq!(short_symbol("a::b"), "a::b");
}
