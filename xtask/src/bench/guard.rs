//! Section 12: does the overhead guard keep its promise? `--max-overhead P` says the probes cost
//! at most P % of one CPU. bench-target calls many functions round robin, flat out on one thread,
//! so the share of its time the probes take is the share of one CPU they cost: `1 − untraced ns
//! per call / traced ns per call`. The loop runs unmeasured for a while first, so the guard (which
//! needs two seconds of rates) has detached what it will before the measured seconds.
//!
//! Then a real program: target-app flat out on one CPU under `--func '*'` (every function of its
//! executable, std's and its dependencies' included), each process measured untraced and then
//! traced (see `app`).

use super::{
    readings::{median_of, runs_of},
    results::GuardRow,
    rounds::{Config, Ctx, interleaved, strings},
    run::Outcome,
    stats::{Estimate, Runs, medians_ci},
    tracer::Tracer,
};

/// Unmeasured seconds of calls before the measured loop.
const SETTLE_MS: u64 = 8000;
/// The budgets measured; `None`: the guard off.
const BUDGETS: [Option<u32>; 3] = [None, Some(25), Some(10)];
/// The budgets target-app is measured under. Not the guard off: every function of a Rust program
/// probed, std's included, slows it a thousandfold (section 9 shows its own functions unguarded).
const APP_BUDGETS: [u32; 2] = [25, 10];

/// The function sets: name in the table, bench-target's `--func`, perf-user's glob, what their
/// entry is.
const SETS: [(&str, &str, &str, &str); 2] = [
    ("many", "many", "bench_target::many::*", "1,000 functions, `push rbp` (emulated)"),
    ("stepped", "stepped", "bench_target::stepped::*", "100 functions, `endbr64` (single-stepped)"),
];

pub fn measure(ctx: &mut Ctx) -> Vec<GuardRow> {
    let mut rows: Vec<GuardRow> =
        SETS.iter().flat_map(|&(name, func, glob, what)| set_rows(ctx, name, func, glob, what)).collect();
    rows.extend(app::rows(ctx, SETTLE_MS, &APP_BUDGETS));
    rows
}

mod app;

fn set_rows(ctx: &mut Ctx, name: &'static str, func: &str, glob: &str, what: &'static str) -> Vec<GuardRow> {
    let target = strings(&[
        "calls",
        "--func",
        func,
        "--iterations",
        &u64::MAX.to_string(),
        "--duration-ms",
        &ctx.plan.load_ms.to_string(),
        "--settle-ms",
        &SETTLE_MS.to_string(),
    ]);
    let mut configs = vec![Config::new(format!("guard {name} untraced"), target.clone(), Ok(Tracer::None))];
    for budget in BUDGETS {
        let flags = budget.map(|b| strings(&["--max-overhead", &b.to_string()])).unwrap_or_default();
        let label = budget.map_or_else(|| "guard off".to_string(), |b| format!("--max-overhead {b}"));
        let args: Vec<&str> = flags.iter().map(String::as_str).collect();
        configs.push(Config::new(format!("guard {name} {label}"), target.clone(), Ok(Tracer::perf_user(glob, &args))));
    }
    let out = interleaved(ctx, &configs);
    let untraced = runs_of(&out[0], ns_per_call);
    BUDGETS
        .iter()
        .zip(&out[1..])
        .map(|(&budget, o)| {
            let share = share(&untraced, &runs_of(o, ns_per_call));
            GuardRow {
                what,
                budget_pct: budget,
                probe_share_pct: share.clone(),
                // One thread flat out: what the probes take of it is what it loses.
                throughput_loss_pct: share,
                detached: median_of(o, detached),
                functions: median_of(o, |o| functions_in(o.export.as_ref()?)),
            }
        })
        .collect()
}

fn ns_per_call(o: &Outcome) -> Option<f64> {
    o.target.map(|t| t.ns_per_call)
}

/// The share of the loop's time the probes took, in %: what they cost of its one CPU, on the
/// medians of ns per call, with the interval of resampled medians (the runs are not paired).
fn share(untraced: &Runs, traced: &Runs) -> Estimate {
    medians_ci(&[untraced, traced], |m| (m[1] > 0.0).then(|| ((1.0 - m[0] / m[1]) * 100.0).max(0.0)))
}

/// Functions the guard detached: its warnings in perf-user's report.
fn detached(o: &Outcome) -> Option<f64> {
    detached_in(o.export.as_ref()?)
}

/// Functions the guard detached, counted in a perf-user report's warnings.
pub(super) fn detached_in(export: &serde_json::Value) -> Option<f64> {
    let warnings = export.get("warnings")?.as_array()?;
    Some(warnings.iter().filter(|w| w.as_str().is_some_and(|w| w.contains("overhead guard: detached"))).count() as f64)
}

/// Functions a perf-user report traced.
pub(super) fn functions_in(export: &serde_json::Value) -> Option<f64> {
    Some(export.get("functions")?.as_array()?.len() as f64)
}
