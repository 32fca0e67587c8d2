//! What the main loop asks the app after each reading: the overhead guard's verdict, `--slow auto`'s
//! per-function thresholds and the `--no-tui` progress line. Pure reads of the session.

use super::App;
use crate::{model, units};

/// Once over its budget, the guard detaches down to this share of it, not to the budget itself:
/// what the estimate misses (a real program's probes came to 0.55–1.3× it, docs/ATTRIBUTION.md,
/// "Probe cost and calibration") and the rebound after each detach (a CPU-bound target speeds up
/// by what it freed, so the remaining probes fire more often) would otherwise leave it hovering
/// over the budget. 1 / 1.3 rounds to this.
pub const GUARD_LOW_WATER: f64 = 0.75;

impl App {
    /// `--max-overhead`: when the probes' estimated cost over the last second exceeds the budget,
    /// the hottest functions are given up, one by one, until it fits in `GUARD_LOW_WATER` of it.
    /// Never silently: each one comes back with the note for the UI and the export.
    pub fn overhead_guard(&self, max_pct: f64) -> Vec<(u32, String)> {
        if self.target_exited || self.session.elapsed_ns() < 2_000_000_000 {
            return Vec::new();
        }
        let (mut probes, fixed) = (self.overhead.probes_pct, self.overhead.fixed_pct);
        if probes + fixed <= max_pct {
            return Vec::new();
        }
        // No detach lowers the tracepoints' part: the probes get what it leaves of the low-water
        // mark, or the whole mark when the tracepoints alone take it (the notes say their cost).
        let low = max_pct * GUARD_LOW_WATER;
        let room = if fixed < low { low - fixed } else { low };
        let tracepoints = if fixed > 0.0 { format!(", the tracepoints ~{fixed:.1}% of it") } else { String::new() };
        let mut costs = self.overhead.by_function.clone();
        costs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut out = Vec::new();
        for (fn_id, pct) in costs {
            if probes <= room {
                break;
            }
            let name = self.session.functions.get(fn_id as usize).map_or("?", |f| f.symbol.as_str());
            let total = probes + fixed;
            out.push((
                fn_id,
                format!(
                    "overhead guard: detached {name} (probes cost ~{total:.1}% of a CPU{tracepoints} > --max-overhead {max_pct}%; it alone ~{pct:.1}%)"
                ),
            ));
            probes -= pct;
        }
        out
    }

    /// `--max-overhead`'s other half: once a run, when the syscall and scheduler tracepoints alone
    /// take the guard's low-water mark, a warning that no detach can keep the budget and that
    /// `--latency-only` (no tracepoints) can. The guard then holds only the probes to the mark.
    pub fn tracepoints_over_budget(&mut self, max_pct: f64) -> Option<String> {
        if self.tracepoints_warned || self.target_exited || self.session.elapsed_ns() < 2_000_000_000 {
            return None;
        }
        let fixed = self.overhead.fixed_pct;
        let low = max_pct * GUARD_LOW_WATER;
        if fixed < low {
            return None;
        }
        self.tracepoints_warned = true;
        Some(format!(
            "warning: the syscall and scheduler tracepoints alone cost the target ~{fixed:.1}% of a CPU \
             ({} syscalls and switch-outs × {} ns each), over the guard's mark {low:.1}% ({GUARD_LOW_WATER} × --max-overhead {max_pct}%): \
             detaching functions cannot lower that; --latency-only has no tracepoints",
            units::fmt_rate(self.overhead.tracepoint_events_per_s),
            self.info.tracepoint_cost_per_syscall_ns
        ))
    }

    /// `--slow auto`: each function's exemplar threshold follows its own distribution and rate
    /// (`model::auto_threshold_ns`), as `(fn_id, threshold_ns)`. The kernel compares raw wall
    /// times (probe cost included) with the threshold, while the session's histograms are
    /// calibrated: the probe cost is added back.
    pub fn auto_thresholds(&self) -> Vec<(u32, u64)> {
        let Some(latest) = self.session.latest() else { return Vec::new() };
        latest
            .functions
            .iter()
            .filter_map(|f| {
                let rate = self.last_second_rate(|w| w.functions.iter().find(|g| g.id == f.id).map(|g| g.count));
                let threshold = model::auto_threshold_ns(&f.total_hist, rate)?;
                let probe_cost = self.session.functions.get(f.id as usize).map_or(0, |fi| fi.calibration_ns);
                Some((f.id, threshold.saturating_add(probe_cost)))
            })
            .collect()
    }

    /// `--slow auto` for spans: the rule functions follow (`model::auto_threshold_ns`: above the
    /// p99.9 and 4× the median, raised so that about two spans a second are slow), from each
    /// span's histogram and its rate over the last second. Spans carry no probe-cost calibration.
    pub fn span_auto_thresholds(&self) -> Vec<(u32, u64)> {
        let Some(latest) = self.session.latest() else { return Vec::new() };
        latest
            .spans
            .iter()
            .filter_map(|s| {
                let rate =
                    self.last_second_rate(|w| w.spans.iter().find(|g| g.row.id == s.row.id).map(|g| g.row.count));
                Some((s.row.id, model::auto_threshold_ns(&s.row.total_hist, rate)?))
            })
            .collect()
    }

    /// Per second over the last second, of what `count` reads from that window (0 without one).
    fn last_second_rate(&self, count: impl Fn(&model::Sample) -> Option<u64>) -> f64 {
        self.session.last_second().and_then(|w| count(w).map(|c| model::rate_per_s(c, w.at_ns))).unwrap_or(0.0)
    }

    /// One line a second without the terminal UI: rates over the last second and the slowest p99.
    pub fn progress_line(&self) -> String {
        let s = &self.session;
        let Some(w) = s.last_second() else {
            return String::new();
        };
        let calls: u64 = w.functions.iter().map(|f| f.calls()).sum();
        let slowest =
            w.functions.iter().filter(|f| f.count > 0).map(|f| (f.total_hist.summary(None).p99_ns, f.id)).max();
        let top = slowest
            .and_then(|(p99, id)| {
                s.functions.get(id as usize).map(|fi| {
                    format!("; slowest p99 {} {}", units::fmt_ns(p99), crate::output::escape::control(&fi.symbol))
                })
            })
            .unwrap_or_default();
        let spans = self.span_progress(w);
        let lost = &w.counters.lost;
        format!(
            "[{:>6}] {} calls, {} probe hits (~{:.1}% of a CPU), {} dropped, {} untimed{}{spans}\n",
            units::fmt_ns(s.elapsed_ns()),
            units::fmt_rate(model::rate_per_s(calls, w.at_ns)),
            units::fmt_rate(s.hits_per_s()),
            self.overhead.total_pct(),
            lost.dropped(),
            lost.total().saturating_sub(lost.dropped()),
            top
        )
    }

    /// The progress line's span part: each `--span`'s rate and p99 over the last second, and its
    /// unmatched starts/ends when there are any (empty without spans).
    fn span_progress(&self, w: &model::Sample) -> String {
        let mut out = String::new();
        for span in &w.spans {
            let Some(info) = self.session.spans.iter().find(|i| i.id == span.row.id) else { continue };
            let name = crate::output::escape::control(&info.name);
            out.push_str(&format!("; span {name} {}", units::fmt_rate(model::rate_per_s(span.row.count, w.at_ns))));
            if span.row.count > 0 {
                out.push_str(&format!(" p99 {}", units::fmt_ns(span.row.total_hist.summary(None).p99_ns)));
            }
            let unmatched = span.unmatched();
            if unmatched > 0 {
                out.push_str(&format!(", {unmatched} unmatched"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::{app::Event, tui::fixtures};

    #[test]
    fn guard_waits_two_seconds_then_gives_up_the_hottest_until_the_budget_fits() {
        // Eight functions at (i % 6 + 1) × 500 calls/s, two hits each at 1 µs: 2.4 % in all.
        let young = fixtures::app(8, 1);
        assert!(young.overhead_guard(0.0).is_empty(), "no verdict on less than two seconds");
        let app = fixtures::app(8, 5);
        assert!(app.overhead_guard(5.0).is_empty(), "within budget");
        let detached = app.overhead_guard(1.0);
        let ids: Vec<u32> = detached.iter().map(|d| d.0).collect();
        assert_eq!(ids, vec![5, 4, 3, 2], "hottest first, until the rest fits in 3/4 of 1 %");
        assert!(detached[0].1.contains("overhead guard: detached") && detached[0].1.contains("--max-overhead 1%"));
    }

    #[test]
    fn guard_ignores_detached_functions_and_an_exited_target() {
        let mut app = fixtures::app(8, 5);
        for fn_id in [5, 4] {
            app.handle(Event::ProbesDetached { fn_id, note: String::new() });
        }
        // 2.4 % - 0.6 % - 0.5 % = 1.3 %: two more (0.4 %, 0.3 %) bring it under 3/4 of 1 %.
        assert_eq!(app.overhead_guard(1.0).iter().map(|d| d.0).collect::<Vec<_>>(), vec![3, 2]);
        assert!(app.overhead_guard(1.4).is_empty(), "under the budget, nothing is detached to reach the low water");
        app.handle(Event::TargetExited);
        assert!(app.overhead_guard(0.0).is_empty());
    }

    #[test]
    fn auto_thresholds_follow_the_functions_own_tail_plus_the_probe_cost() {
        let mut app = fixtures::app(3, 3);
        assert!(fixtures::empty_app(3).auto_thresholds().is_empty(), "nothing before a sample");
        let plain = app.auto_thresholds();
        assert_eq!(plain.len(), 3);
        app.session.functions[1].calibration_ns = 700;
        let with_cost = app.auto_thresholds();
        assert_eq!(with_cost[1].1, plain[1].1 + 700);
        assert_eq!(with_cost[0], plain[0]);
        let (hist, rate) = app
            .session
            .latest()
            .zip(app.session.last_second())
            .map(|(s, w)| (s.functions[0].total_hist.clone(), crate::model::rate_per_s(w.functions[0].count, w.at_ns)))
            .unwrap_or_default();
        assert_eq!(Some(plain[0].1), crate::model::auto_threshold_ns(&hist, rate));
        assert!(plain[0].1 >= hist.summary(None).p999_ns, "never below the p99.9");
    }

    #[test]
    fn progress_line_names_each_span_with_its_rate_p99_and_losses() {
        use crate::model::{Bucket, BucketHist, FuncSample, Sample, SpanInfo, SpanSample};
        let mut app = fixtures::empty_app(1);
        app.session.spans =
            vec![SpanInfo { id: 0, name: "tick\x1b[2J_to_trade".into(), from: "a(arg0)".into(), to: "b(ret)".into() }];
        let tick = |at_ns: u64, span: SpanSample| Event::Tick {
            sample: Sample { at_ns, spans: vec![span], ..Sample::default() },
            exemplars: vec![],
        };
        app.handle(tick(0, SpanSample { row: FuncSample { id: 0, ..FuncSample::default() }, ..SpanSample::default() }));
        let hist = BucketHist { buckets: vec![Bucket { low_ns: 40_000, high_ns: 41_000, count: 900 }] };
        let row =
            FuncSample { id: 0, calls: 1000, count: 900, max_ns: 41_000, total_hist: hist, ..FuncSample::default() };
        app.handle(tick(1_000_000_000, SpanSample { row, starts: 1000, pending: 40, ..SpanSample::default() }));
        let line = app.progress_line();
        assert!(line.contains("; span tick"), "{line}");
        assert!(!line.contains('\x1b'), "a span name is printed escaped: {line:?}");
        assert!(line.contains("900/s") && line.contains("p99 4") && line.contains("60 unmatched"), "{line}");
    }

    /// Regression: a span's threshold was its p99.9 alone, so a span 500,000 times a second sent
    /// 500 slow spans a second through the ring buffer (3,000 evicted in 9 s of bench). Spans
    /// follow the functions' rule: the rate budget and 4× the median.
    #[test]
    fn a_busy_span_sends_about_two_slow_spans_a_second_and_a_rare_one_its_p999() {
        use crate::model::{FuncSample, Sample, SpanInfo, SpanSample};
        let mut app = fixtures::empty_app(1);
        app.session.spans = ["busy", "rare"]
            .iter()
            .enumerate()
            .map(|(id, name)| SpanInfo { id: id as u32, name: (*name).into(), ..SpanInfo::default() })
            .collect();
        let span = |id: u32, points: &[(u64, u64)]| {
            let total_hist = fixtures::hist(points);
            SpanSample {
                row: FuncSample { id, count: total_hist.count(), total_hist, ..FuncSample::default() },
                ..SpanSample::default()
            }
        };
        let tick = |at_ns: u64, spans: Vec<SpanSample>| Event::Tick {
            sample: Sample { at_ns, spans, ..Sample::default() },
            exemplars: vec![],
        };
        app.handle(tick(0, vec![span(0, &[]), span(1, &[])]));
        assert!(app.span_auto_thresholds().is_empty(), "no threshold before 100 spans");
        // One second: 500,000 busy spans of about 1 µs with a tail, 1,000 rare ones.
        let busy = [(1_000, 499_000), (5_000, 900), (20_000, 90), (90_000, 10)];
        let rare = [(40_000, 998), (400_000, 2)];
        app.handle(tick(1_000_000_000, vec![span(0, &busy), span(1, &rare)]));
        let t = app.span_auto_thresholds();
        let of = |id: u32| t.iter().find(|(i, _)| *i == id).map_or(0, |(_, ns)| *ns);
        let above =
            |points: &[(u64, u64)], ns: u64| points.iter().filter(|(v, _)| *v >= ns).map(|(_, c)| c).sum::<u64>();
        assert!(above(&busy, of(0)) <= 2 * 2, "busy: threshold {} leaves {} a second", of(0), above(&busy, of(0)));
        assert_eq!(Some(of(1)), crate::model::auto_threshold_ns(&fixtures::hist(&rare), 1000.0), "rare: the same rule");
        assert!(of(1) > 4 * 40_000, "rare: above 4× its median");
    }

    #[test]
    fn progress_line_names_the_slowest_function() {
        assert_eq!(fixtures::empty_app(2).progress_line(), "");
        let app = fixtures::app(3, 3);
        let line = app.progress_line();
        assert!(line.starts_with('[') && line.ends_with('\n'), "{line}");
        assert!(line.contains("calls,") && line.contains("probe hits") && line.contains("0 dropped"), "{line}");
        // Function 2 has the largest base latency of the three.
        assert!(line.contains("slowest p99") && line.contains("target_app::signal::Signal::update"), "{line}");
    }
}
