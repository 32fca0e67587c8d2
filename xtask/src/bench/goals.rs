//! The goals docs/BENCHMARKS.md states, each judged from the results by its own function; `goals`
//! lists them in the order of the report's table.

use std::fmt::Write as _;

use super::{
    judge::{Goal, Status, judge, judge_ci, judge_interval, list_text},
    results::{CLOCK_PROGRAMS, CallRow, EMPTY_PROGRAMS, Load, Mode, PairRow, Results, SAMPLED_LOAD, Workload},
    stats::{RatioCi, Runs, added_runs, median_ci, ratio_ci},
    text::{ci_text, signed_ci, thousands},
};

pub fn goals(r: &Results) -> Vec<Goal> {
    let mut goals = vec![limit_goal(r, Timed::Attributing), limit_goal(r, Timed::LatencyOnly)];
    goals.push(sampled_vs_bpftrace(r));
    goals.push(latency_sampled_vs_bpftrace(r));
    goals.push(empty_function_p50(r));
    goals.push(spin_accuracy(r));
    goals.push(nothing_lost_at_1m(r));
    goals.push(sampled_nothing_lost_at_1m(r));
    goals.push(attach_1000(r));
    let [default, blocked_only, latency_only, latency_sampled] = SERVER_CPU_GOALS;
    goals.push(server_cpu(r, default));
    goals.push(server_loss(r));
    goals.push(server_cpu(r, blocked_only));
    goals.push(server_cpu(r, latency_only));
    goals.push(server_cpu(r, latency_sampled));
    goals.push(target_app_loss(r));
    goals.push(guard_kept(r));
    goals.push(span_vs_bpftrace(r));
    goals
}

/// Section 12: with the guard on, the probes' share of one CPU and the target's throughput loss
/// both stay within `--max-overhead`, each judged on its interval (in points over the budget).
fn guard_kept(r: &Results) -> Goal {
    let over = |e: &Result<RatioCi, String>, budget: f64| {
        e.clone().map(|ci| RatioCi { ratio: ci.ratio - budget, lo: ci.lo - budget, hi: ci.hi - budget })
    };
    let values: Vec<(String, Result<RatioCi, String>)> = r
        .guard
        .iter()
        .filter_map(|g| {
            let budget = f64::from(g.budget_pct?);
            // The set's name without its details (the table has them).
            let what = g.what.split(", ").next().unwrap_or(g.what);
            Some([
                (format!("{what} at {budget} %, CPU"), over(&g.probe_share_pct, budget)),
                (format!("{what} at {budget} %, throughput"), over(&g.throughput_loss_pct, budget)),
            ])
        })
        .flatten()
        .collect();
    let (measured, status) = if values.is_empty() {
        ("not run".into(), Status::NotMeasured("no guarded run".into()))
    } else {
        judge_interval(&values, |ci| format!("{} over the budget", signed_ci(ci, " points")), 0.0)
    };
    Goal {
        goal: "the overhead guard keeps the probes' CPU and the throughput lost within `--max-overhead` (section 12)",
        measured,
        status,
    }
}

/// Section 11: perf-user's own work per span (over two empty uprobes) at most bpftrace's.
fn span_vs_bpftrace(r: &Results) -> Goal {
    let of = |prefix: &str| {
        r.spans
            .iter()
            .find(|s| s.tracer.starts_with(prefix))
            .map_or_else(|| Err(format!("no {prefix} run")), |s| s.ns_runs.clone())
    };
    // Own work: each tool's cost over the floor, as a ratio of medians with its interval.
    let ratio = ratio_ci(&of("perf-user"), &of("bpftrace keyed"), &of(super::spans::FLOOR));
    let (measured, status) = judge_interval(&[("perf-user / bpftrace".to_string(), ratio)], ci_text, 1.0);
    Goal { goal: "a span's own work ≤ bpftrace's keyed-timing script (section 11)", measured, status }
}

/// The two timed modes judged against 1.1 × the floor attached the same way: the default mode
/// (attributing) and `--latency-only`.
#[derive(Clone, Copy)]
enum Timed {
    Attributing,
    LatencyOnly,
}

impl Timed {
    fn goal(self) -> &'static str {
        match self {
            Timed::Attributing => {
                "perf-user added cost ≤ 1.1 × the floor attached the same way (session + tracepoints)"
            }
            Timed::LatencyOnly => "… without attribution (`--latency-only`) ≤ 1.1 × the floor (session)",
        }
    }

    /// The mode's paired ratios over its floor (section 1).
    fn paired(self, p: &PairRow) -> &Runs {
        if let Timed::Attributing = self { &p.perf_user } else { &p.latency }
    }

    /// The mode's and its floor's separate runs (section 1).
    fn separate(self, c: &CallRow) -> (&Runs, &Runs) {
        match self {
            Timed::Attributing => (&c.perf_user, &c.floor_tracepoints),
            Timed::LatencyOnly => (&c.latency, &c.floor),
        }
    }

    /// The floor's name in the measured text, and the mode's configuration in section 7.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Timed::Attributing => ("floor + tracepoints", "perf-user"),
            Timed::LatencyOnly => ("floor", "perf-user --latency-only"),
        }
    }
}

/// The 1.1 × goals, judged on the paired runs (both sides timed at once); the clock floor, the
/// separate runs and the program-time estimate say the same from other angles.
fn limit_goal(r: &Results, timed: Timed) -> Goal {
    let (floor_name, programs) = timed.names();
    let (measured, status) = judge_ci(&per_pair(r, |p| timed.paired(p)), &format!("{floor_name}, paired"), 1.1);
    let separate = per_func_ci(r, |c| {
        let (mode, floor) = timed.separate(c);
        ratio_ci(mode, floor, &c.untraced)
    });
    let measured = format!(
        "{measured}; the clock reads alone, paired: {}; separate runs: {}",
        list_text(&per_pair(r, |p| &p.clock), ci_text),
        list_text(&separate, ci_text)
    ) + &from_program_time(r, programs, &|c| timed.separate(c).1);
    Goal { goal: timed.goal(), measured, status }
}

fn sampled_vs_bpftrace(r: &Results) -> Goal {
    let (measured, status) = match &r.sampling {
        Err(why) => (why.clone(), Status::NotMeasured("not implemented".into())),
        Ok(()) => {
            let (measured, status) =
                judge_ci(&per_func_ci(r, |c| ratio_ci(&c.sampled, &c.bpftrace, &c.untraced)), "bpftrace", 0.4);
            (measured + &floor_vs_bpftrace(r, |c| &c.sampled_floor_tracepoints), status)
        }
    };
    Goal { goal: "sampled (1 in 10) added cost ≤ 0.4 × bpftrace", measured, status }
}

/// Paired with bpftrace on the twin (neither brings tracepoints that would slow the other).
fn latency_sampled_vs_bpftrace(r: &Results) -> Goal {
    let (mut measured, status) = judge_ci(&per_pair(r, |p| &p.latency_sampled_vs_bpftrace), "bpftrace, paired", 0.4);
    let separate = per_func_ci(r, |c| ratio_ci(&c.latency_sampled, &c.bpftrace, &c.untraced));
    let _ = write!(measured, "; separate runs: {}", list_text(&separate, ci_text));
    if r.sampling.is_ok() {
        measured += &floor_vs_bpftrace(r, |c| &c.sampled_floor);
    }
    Goal { goal: "… without attribution (`--latency-only --sample 10`) ≤ 0.4 × bpftrace", measured, status }
}

/// What the kernel alone charges for sampling, in the same unit: no sampled mode can be cheaper.
fn floor_vs_bpftrace(r: &Results, floor: fn(&CallRow) -> &Runs) -> String {
    let parts = per_func_ci(r, |c| ratio_ci(floor(c), &c.bpftrace, &c.untraced));
    format!(" (empty programs sampled the same way: {})", list_text(&parts, ci_text))
}

fn empty_function_p50(r: &Results) -> Goal {
    let p50s: Vec<(String, _)> = r.calls.iter().map(|c| (c.func.to_string(), c.p50_ns.clone())).collect();
    let (measured, status) = judge(&p50s, |x| format!("p50 {x:.0} ns"), |x| x.abs() <= 100.0);
    Goal { goal: "empty function p50 within ±100 ns of 0", measured, status }
}

fn spin_accuracy(r: &Results) -> Goal {
    let spin_ns = r.spin_ns as f64;
    let err = |x: f64| (x - spin_ns) / spin_ns * 100.0;
    let (measured, status) = match &r.spin {
        Ok(s) => {
            let p50 = err(s.p50_ns);
            let status = if p50.abs() <= 3.0 { Status::Met } else { Status::NotMet };
            (format!("p50 {p50:+.2} %, p99 {:+.2} % (judged on p50)", err(s.p99_ns)), status)
        }
        Err(e) => (e.clone(), Status::NotMeasured(e.clone())),
    };
    Goal { goal: "20 µs spin within ±3 %", measured, status }
}

fn nothing_lost_at_1m(r: &Results) -> Goal {
    let at_1m = r.loads.iter().find(|l| l.label == "1M calls/s");
    let (measured, status) = match at_1m.map(|l| &l.result) {
        Some(Ok(l)) => {
            let ok = l.nothing_lost() && l.cpu_pct < 2.0;
            (describe_load(l), if ok { Status::Met } else { Status::NotMet })
        }
        Some(Err(e)) => (format!("{e}{}", why_not_1m(r)), Status::NotMeasured("1M calls/s not reached".into())),
        None => ("no 1M run".into(), Status::NotMeasured("no 1M run".into())),
    };
    Goal { goal: "no lost events and perf-user < 2 % of one core at 1M calls/s", measured, status }
}

/// 1M calls/s not reached: the best rate instead, and why even empty programs cannot reach it.
fn why_not_1m(r: &Results) -> String {
    let best = match &r.ceiling.result {
        Ok(c) => format!("; at the ceiling instead: {}", describe_load(c)),
        Err(_) => String::new(),
    };
    // Why: even empty programs on the cheapest probe site cost this much per call.
    let floor = r.calls.iter().filter_map(|c| added_runs(&c.floor, &c.untraced).ok()).fold(f64::INFINITY, f64::min);
    let why = if floor.is_finite() && floor > 0.0 {
        format!("; the floor alone costs {floor:.0} ns per call, i.e. at most {}/s", thousands(1e9 / floor))
    } else {
        String::new()
    };
    best + &why
}

fn sampled_nothing_lost_at_1m(r: &Results) -> Goal {
    let sampled_1m = r.loads.iter().find(|l| l.label.starts_with("1M") && l.label.ends_with(SAMPLED_LOAD));
    let (measured, status) = match sampled_1m.map(|l| &l.result) {
        Some(Ok(l)) => {
            let ok = l.nothing_lost() && l.cpu_pct < 2.0;
            (describe_load(l), if ok { Status::Met } else { Status::NotMet })
        }
        Some(Err(e)) => (e.clone(), Status::NotMeasured(e.clone())),
        None => ("no run".into(), Status::NotMeasured("no run".into())),
    };
    Goal { goal: "… counting every call, timing 1 in 10 (`--latency-only --sample 10`)", measured, status }
}

fn attach_1000(r: &Results) -> Goal {
    let thousand = r.attach.iter().find(|a| a.functions == 1000).map(|a| &a.result);
    let (measured, status) = match thousand {
        Some(Ok(a)) => (format!("{:.3} s", a.attach_s), if a.attach_s < 1.0 { Status::Met } else { Status::NotMet }),
        Some(Err(e)) => (e.clone(), Status::NotMeasured(e.clone())),
        None => ("no run".into(), Status::NotMeasured("no run".into())),
    };
    Goal { goal: "attach 1,000 functions < 1 s", measured, status }
}

/// Section 9's comparisons with bpftrace's added CPU per request on the real server: the goal,
/// the mode judged, the limit.
const SERVER_CPU_GOALS: [(&str, Mode, f64); 4] = [
    ("real server (nginx): perf-user's added CPU per request ≤ bpftrace's, while attributing", Mode::Default, 1.0),
    ("… attributing without syscall tracepoints (`--blocked-syscalls-only`) ≤ bpftrace's", Mode::BlockedSyscalls, 1.0),
    ("… without attribution (`--latency-only`) ≤ 0.5 × bpftrace's", Mode::LatencyOnly, 0.5),
    ("… `--latency-only --sample 10` ≤ 0.2 × bpftrace's", Mode::LatencySampled, 0.2),
];

/// A goal on the server's regimes: `judge` gets them, or the goal is not measured.
fn on_regimes(r: &Results, goal: &'static str, judge: impl Fn(&[Workload]) -> (String, Status)) -> Goal {
    let (measured, status) = match (&r.workloads.server, r.workloads.server_regimes.as_slice()) {
        (Err(e), _) => (e.clone(), Status::NotMeasured(e.clone())),
        (Ok(_), []) => (String::new(), Status::NotMeasured("no regime measured".into())),
        (Ok(_), regimes) => judge(regimes),
    };
    Goal { goal, measured, status }
}

/// A comparison of medians, with its interval, in each regime.
fn per_regime(
    regimes: &[Workload],
    f: impl Fn(&Workload) -> Result<RatioCi, String>,
) -> Vec<(String, Result<RatioCi, String>)> {
    regimes.iter().map(|w| (w.short.to_string(), f(w))).collect()
}

/// `mode`'s added CPU per request over bpftrace's, per regime, against `limit`.
fn server_cpu(r: &Results, (goal, mode, limit): (&'static str, Mode, f64)) -> Goal {
    on_regimes(r, goal, |regimes| {
        let ratios = per_regime(regimes, |w| w.added_cpu_ratio(mode, Mode::Bpftrace));
        let (measured, status) = judge_ci(&ratios, "bpftrace's", limit);
        let us = |ci: &RatioCi| signed_ci(ci, " µs");
        let measured = format!(
            "{measured}; added CPU per request, this mode: {}; bpftrace: {}",
            list_text(&per_regime(regimes, |w| w.added_cpu_us(mode)), us),
            list_text(&per_regime(regimes, |w| w.added_cpu_us(Mode::Bpftrace)), us)
        );
        (measured, status)
    })
}

/// The default mode's throughput loss minus bpftrace's, per regime, at most 0.
fn server_loss(r: &Results) -> Goal {
    on_regimes(r, "… and its throughput loss ≤ bpftrace's", |regimes| {
        let over = per_regime(regimes, |w| w.loss_over(Mode::Default, Mode::Bpftrace));
        let (measured, status) =
            judge_interval(&over, |ci| format!("{} over bpftrace's loss", signed_ci(ci, " pp")), 0.0);
        let pct = |ci: &RatioCi| signed_ci(ci, " %");
        let measured = format!(
            "{measured}; throughput lost, perf-user: {}; bpftrace: {}",
            list_text(&per_regime(regimes, |w| w.loss_pct(Mode::Default)), pct),
            list_text(&per_regime(regimes, |w| w.loss_pct(Mode::Bpftrace)), pct)
        );
        (measured, status)
    })
}

/// target-app flat out under the default mode on every function: the loss, stated.
fn target_app_loss(r: &Results) -> Goal {
    let goal = "target-app flat out under the default mode on `target_app::*`: throughput loss stated";
    let w = match &r.workloads.target_app {
        Ok(w) => w,
        Err(e) => return Goal { goal, measured: e.clone(), status: Status::NotMeasured(e.clone()) },
    };
    let shown = |ci: Result<RatioCi, String>, unit: &str| ci.map_or_else(|e| e, |ci| signed_ci(&ci, unit));
    let status = match w.loss_pct(Mode::Default) {
        Ok(_) => Status::Stated,
        Err(e) => Status::NotMeasured(e),
    };
    let measured = format!(
        "messages/s lost: {}; its own on_message p99 {}; CPU per message {}; with `--latency-only --sample 10`: {} lost",
        shown(w.loss_pct(Mode::Default), " %"),
        shown(w.p99_shift_us(Mode::Default), " µs"),
        shown(w.added_cpu_us(Mode::Default), " µs"),
        shown(w.loss_pct(Mode::LatencySampled), " %")
    );
    Goal { goal, measured, status }
}

/// One ratio per measured function.
fn per_func_ci(r: &Results, f: impl Fn(&CallRow) -> Result<RatioCi, String>) -> Vec<(String, Result<RatioCi, String>)> {
    r.calls.iter().map(|c| (c.func.to_string(), f(c))).collect()
}

/// Each function's paired ratios, as their median and its interval.
fn per_pair(r: &Results, f: impl Fn(&PairRow) -> &Runs) -> Vec<(String, Result<RatioCi, String>)> {
    r.pairs.iter().map(|p| (p.func.to_string(), median_ci(f(p)))).collect()
}

/// The same ratio estimated from section 7 instead: perf-user differs from its floor only in what
/// its function programs do, which the kernel's own run-time accounting measures per run with
/// little noise, so `1 + that work per call / the floor's added cost` (section 7 traces push_rbp).
/// With the clock floor measured, the same estimate for it tells how much of that the clock reads
/// alone take.
fn from_program_time(r: &Results, config: &str, floor: &dyn Fn(&CallRow) -> &Runs) -> String {
    let Some(push_rbp) = r.calls.iter().find(|c| c.func == "push_rbp") else {
        return String::new();
    };
    let Ok(floor_ns) = added_runs(floor(push_rbp), &push_rbp.untraced) else {
        return String::new();
    };
    let estimate =
        |config: &str| program_work(r, config).filter(|w| floor_ns > 0.0 && *w > 0.0).map(|w| (1.0 + w / floor_ns, w));
    let Some((ratio, work)) = estimate(config) else {
        return String::new();
    };
    let mut text = format!("; from program run time (section 7): push_rbp {ratio:.2}× ({work:.0} ns of work per call");
    if let Some((ratio, work)) = estimate(CLOCK_PROGRAMS) {
        let _ = write!(text, "; the clock reads alone: {work:.0} ns, {ratio:.2}×");
    }
    text + ")"
}

/// Section 7: the work per call of `config`'s function programs above the empty programs' (the
/// tracepoint programs run in the floor too).
fn program_work(r: &Results, config: &str) -> Option<f64> {
    let programs = r.programs.as_ref().ok()?;
    let empty = programs.iter().filter(|p| p.config == EMPTY_PROGRAMS).map(|p| p.ns_per_run).reduce(f64::min)?;
    let runs = programs.iter().filter(|p| p.config == config && p.program.starts_with("func_"));
    let work = runs.map(|p| (p.ns_per_run - empty).max(0.0) * p.runs_per_call).sum();
    Some(work)
}

/// A load row as a goal's measured text: the rate reached, perf-user's CPU, what was lost.
pub fn describe_load(l: &Load) -> String {
    format!(
        "{}/s, perf-user {:.2} % of a core, {}",
        thousands(l.reached_per_s),
        l.cpu_pct,
        if l.nothing_lost() { "nothing lost".to_string() } else { l.lost_text() }
    ) + &l.retired_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::results::{
        Load, LoadRow, ProgramCost,
        fixtures::{paired, results, row, server, workload},
    };

    /// Three steady rounds: untraced 100 req/s at 20 µs; bpftrace 90 req/s, +10 µs; perf-user's
    /// modes as given (rate, CPU per request).
    fn regime(short: &'static str, default: (f64, f64), latency: (f64, f64), sampled: (f64, f64)) -> Workload {
        let rounds = |r: (f64, f64)| vec![Some(r); 3];
        workload(
            short,
            &[
                (Mode::Untraced, rounds((100.0, 20.0))),
                (Mode::Default, rounds(default)),
                (Mode::BlockedSyscalls, rounds(latency)),
                (Mode::LatencyOnly, rounds(latency)),
                (Mode::LatencySampled, rounds(sampled)),
                (Mode::Bpftrace, rounds((90.0, 30.0))),
            ],
        )
    }

    #[test]
    fn the_guard_is_judged_on_every_budget_and_a_span_against_bpftrace() {
        use crate::bench::results::{GuardRow, SpanRow};
        // A share known to ±1 point.
        let est = |x: f64| Ok(RatioCi { ratio: x, lo: x - 1.0, hi: x + 1.0 });
        let guard = |budget: Option<u32>, share: f64| GuardRow {
            what: "set, its details",
            budget_pct: budget,
            probe_share_pct: est(share),
            throughput_loss_pct: est(share / 2.0),
            detached: Ok(1.0),
            functions: Ok(2.0),
        };
        // Three runs each, 1 % apart.
        let span = |tracer: &'static str, ns: f64| SpanRow {
            tracer,
            ns_per_span: Ok(ns),
            ns_runs: Ok(vec![ns * 0.99, ns, ns * 1.01]),
            tracer_cpu_pct: Ok(0.0),
        };
        let mut r = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        r.guard = vec![guard(None, 90.0), guard(Some(25), 23.5), guard(Some(10), 8.5)];
        r.spans = vec![
            span(crate::bench::spans::FLOOR, 1000.0),
            span("perf-user --span", 1500.0),
            span("bpftrace keyed-timing script", 2000.0),
        ];
        let g = goals(&r);
        assert_eq!(g[15].status, Status::Met, "{:?}", g[15]);
        assert_eq!(g[16].status, Status::Met, "0.5×: {:?}", g[16]);
        r.guard[2] = guard(Some(10), 12.0);
        r.spans[1] = span("perf-user --span", 2100.0);
        let g = goals(&r);
        assert_eq!(g[15].status, Status::NotMet, "12 % over a 10 % budget: {:?}", g[15]);
        assert_eq!(g[16].status, Status::NotMet, "1.1×: {:?}", g[16]);
        // Within the budget in CPU but not in throughput (a program whose probes slow its
        // bottleneck thread): not kept.
        r.guard[2] = GuardRow { throughput_loss_pct: est(14.0), ..guard(Some(10), 8.0) };
        assert_eq!(goals(&r)[15].status, Status::NotMet, "14 % throughput lost: {:?}", goals(&r)[15]);
        // A median within the budget whose interval reaches past it: these runs cannot tell.
        r.guard[2] =
            GuardRow { throughput_loss_pct: Ok(RatioCi { ratio: 8.6, lo: 3.9, hi: 14.2 }), ..guard(Some(10), 8.0) };
        assert_eq!(goals(&r)[15].status, Status::Inconclusive, "8.6 % (3.9–14.2): {:?}", goals(&r)[15]);
        assert!(
            goals(&r)[15]
                .measured
                .contains("set at 10 %, throughput: -1.4 points (95 % CI -6.1 to +4.2) over the budget"),
            "{:?}",
            goals(&r)[15]
        );
        // The span ratio on its interval too: runs that overlap bpftrace's cannot tell.
        r.spans[1] = SpanRow { ns_runs: Ok(vec![1800.0, 2000.0, 2200.0]), ..span("perf-user --span", 2000.0) };
        assert_eq!(goals(&r)[16].status, Status::Inconclusive, "{:?}", goals(&r)[16]);
    }

    #[test]
    fn the_real_server_is_judged_against_bpftrace_per_regime() {
        let mut r = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        let g = goals(&r);
        assert_eq!(g.len(), 17, "{g:?}");
        for goal in &g[9..14] {
            assert_eq!(goal.status, Status::NotMeasured("skipped: nginx not installed".into()), "{goal:?}");
        }
        assert!(matches!(g[14].status, Status::NotMeasured(_)), "no target-app run: {:?}", g[14]);
        assert!(matches!(g[15].status, Status::NotMeasured(_)), "no guard run: {:?}", g[15]);
        assert!(matches!(g[16].status, Status::NotMeasured(_)), "no span run: {:?}", g[16]);

        // Default: +15 µs against bpftrace's +10 (1.5×), 88 req/s against 90; latency-only +4 µs
        // (0.4×); sampled +3 µs (0.3×, over 0.2×).
        r.workloads = server(vec![regime("1 connection", (88.0, 35.0), (95.0, 24.0), (99.0, 23.0))]);
        let g = goals(&r);
        assert_eq!(g[9].status, Status::NotMet, "{:?}", g[9]);
        assert!(g[9].measured.starts_with("1 connection: 1.50× bpftrace's; added CPU per request, this mode: 1 connection +15.0 µs; bpftrace: 1 connection +10.0 µs"), "{:?}", g[9]);
        assert_eq!(g[10].status, Status::NotMet, "12 % lost against 10 %: {:?}", g[10]);
        assert!(g[10].measured.starts_with("1 connection: +2.0 pp over bpftrace's loss"), "{:?}", g[10]);
        // Without syscall tracepoints (as latency-only here): +4 µs, 0.4×.
        assert_eq!(g[11].status, Status::Met, "{:?}", g[11]);
        assert_eq!((&g[12].status, &g[13].status), (&Status::Met, &Status::NotMet), "{g:?}");

        // Every regime must meet it: a second regime where the default mode is cheaper is not enough.
        r.workloads = server(vec![
            regime("1 connection", (95.0, 25.0), (95.0, 24.0), (99.0, 21.0)),
            regime("8 connections", (85.0, 40.0), (95.0, 24.0), (99.0, 21.0)),
        ]);
        let g = goals(&r);
        assert_eq!((&g[9].status, &g[10].status, &g[13].status), (&Status::NotMet, &Status::NotMet, &Status::Met));
    }

    #[test]
    fn target_app_loss_is_stated() {
        let mut r = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        let mut app = regime("target-app", (25.0, 80.0), (50.0, 40.0), (60.0, 30.0));
        app.unit = "message";
        r.workloads.target_app = Ok(app);
        let g = goals(&r);
        assert_eq!(g[14].status, Status::Stated, "{:?}", g[14]);
        assert!(g[14].measured.starts_with("messages/s lost: +75.0 %; its own on_message p99 +60.0 µs"), "{:?}", g[14]);
    }

    #[test]
    fn goals_are_judged_from_added_costs() {
        // Paired: perf-user 1.05× the floor: met (separate runs: 1,050 added over a 1,000 floor).
        let g = goals(&results(vec![row(2.0, 1002.0, 1052.0, 802.0)]));
        assert!(g[0].measured.starts_with("push_rbp: 1.05× floor + tracepoints, paired; the clock reads alone, paired: push_rbp 1.04×; separate runs: push_rbp 1.05×"), "{g:?}");
        assert_eq!(g[0].status, Status::Met, "{g:?}");
        assert!(matches!(g[1].status, Status::NotMeasured(_)), "no latency-only row: not measured");
        assert!(matches!(g[2].status, Status::NotMeasured(_)), "no sampling: not measured");
        assert!(matches!(g[3].status, Status::NotMeasured(_)));
        assert_eq!(g[4].status, Status::Met);
        assert_eq!(g[5].status, Status::Met, "p50 +0.5 %");
        assert!(matches!(g[6].status, Status::NotMeasured(_)), "1M unreachable");
        assert!(matches!(g[7].status, Status::NotMeasured(_)), "no sampled 1M run");
        assert_eq!(g[8].status, Status::Met);
        // Latency only: paired 1.08× the floor; sampled 0.375× bpftrace.
        let mut res = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        res.pairs = vec![paired(vec![1.05], Ok(vec![1.08]), Ok(vec![0.375]))];
        let g = goals(&res);
        assert_eq!((&g[1].status, &g[3].status), (&Status::Met, &Status::Met), "{g:?}");
        // Nothing paired: the goals judged on pairs are not measured, never met by default.
        res.pairs.clear();
        assert!(matches!(goals(&res)[0].status, Status::NotMeasured(_)));
        // Sampled 350 against bpftrace's 800: not met, and the sampled floors say how close it can get.
        let mut r = row(2.0, 1002.0, 1052.0, 802.0);
        (r.latency_sampled, r.sampled_floor) = (Ok(vec![302.0]), Ok(vec![242.0]));
        (r.sampled, r.sampled_floor_tracepoints) = (Ok(vec![352.0]), Ok(vec![322.0]));
        let mut res = results(vec![r]);
        res.sampling = Ok(());
        let g = goals(&res);
        assert_eq!(g[2].status, Status::NotMet, "{g:?}");
        assert!(
            g[2].measured.contains("0.44× bpftrace (empty programs sampled the same way: push_rbp 0.40×)"),
            "{g:?}"
        );
        assert!(g[3].measured.ends_with("(empty programs sampled the same way: push_rbp 0.30×)"), "{g:?}");
        let mut res = results(vec![row(2.0, 1002.0, 1502.0, 802.0)]);
        res.pairs = vec![paired(vec![1.5], Ok(vec![1.08]), Ok(vec![0.375]))];
        assert_eq!(goals(&res)[0].status, Status::NotMet, "1.5× floor");
    }

    #[test]
    fn program_run_time_gives_a_second_estimate_of_the_ratio() {
        let mut r = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        let cost = |config, program: &str, runs_per_call, ns_per_run| ProgramCost {
            config,
            program: program.into(),
            runs_per_call,
            ns_per_run,
        };
        r.programs = Ok(vec![
            cost(EMPTY_PROGRAMS, "func_session_em", 2.0, 36.0),
            cost("perf-user", "func_session", 2.0, 96.0),
            cost("perf-user", "sys_enter", 1.0, 40.0),
        ]);
        let g = goals(&r);
        // 2 runs × 60 ns of work over a 1,000 ns floor; the tracepoint program is in the floor too.
        let expected = "; from program run time (section 7): push_rbp 1.12× (120 ns of work per call)";
        assert!(g[0].measured.ends_with(expected), "{g:?}");
        assert!(!g[1].measured.contains("program run time"), "no latency-only program measured: {g:?}");

        // With the clock floor measured, the share of the clock reads (2 × 20 ns) is shown too.
        if let Ok(p) = &mut r.programs {
            p.push(cost(CLOCK_PROGRAMS, "func_session_cl", 2.0, 56.0));
        }
        let g = goals(&r);
        let expected = "push_rbp 1.12× (120 ns of work per call; the clock reads alone: 40 ns, 1.04×)";
        assert!(g[0].measured.ends_with(expected), "{g:?}");
    }

    #[test]
    fn a_ratio_goal_the_runs_cannot_decide_is_inconclusive() {
        // Paired ratios around 1.05× but swinging ±20 %: the interval straddles 1.1.
        let swing = |m: f64| (0..11).map(|i| m * (0.8 + 0.04 * f64::from(i))).collect::<Vec<_>>();
        let mut res = results(vec![row(0.0, 1000.0, 1050.0, 1400.0)]);
        res.pairs = vec![paired(swing(1.05), Ok(vec![1.08]), Ok(vec![0.375]))];
        let g = goals(&res);
        assert_eq!(g[0].status, Status::Inconclusive, "{g:?}");
        assert!(g[0].measured.starts_with("push_rbp: 1.05× (95 % CI "), "{g:?}");
        // The same median from steady runs is met; from runs all beyond 1.1×, not met.
        res.pairs = vec![paired(vec![1.05; 11], Ok(vec![1.08]), Ok(vec![0.375]))];
        assert_eq!(goals(&res)[0].status, Status::Met);
        res.pairs = vec![paired(swing(1.3).iter().map(|x| x.max(1.15)).collect(), Ok(vec![1.08]), Ok(vec![0.375]))];
        assert_eq!(goals(&res)[0].status, Status::NotMet);
    }

    #[test]
    fn retired_exemplars_are_shown_but_are_not_lost_events() {
        let load = |exemplars_retired, uncounted| LoadRow {
            label: "1M calls/s".into(),
            result: Ok(Load {
                reached_per_s: 1e6,
                cpu_pct: 0.5,
                vmhwm_kb: 1024,
                lost: vec![],
                exemplars_retired,
                uncounted,
            }),
        };
        let mut r = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        r.loads = vec![load(7300, 0)];
        let g = goals(&r);
        assert_eq!(g[6].status, Status::Met, "{g:?}");
        assert!(g[6].measured.contains("nothing lost (7,300 older slow-call exemplars retired"), "{g:?}");
        r.loads = vec![load(0, 3)];
        assert_eq!(goals(&r)[6].status, Status::NotMet, "calls the kernel did not count are lost");
    }

    #[test]
    fn a_missing_number_is_not_measured_rather_than_met() {
        let mut res = results(vec![row(2.0, 1002.0, 1052.0, 802.0)]);
        res.pairs[0].perf_user = Err("failed: boom".into());
        let g = goals(&res);
        assert!(matches!(g[0].status, Status::NotMeasured(_)), "{g:?}");
        assert!(g[0].measured.starts_with("push_rbp: failed: boom"), "{g:?}");
    }
}
