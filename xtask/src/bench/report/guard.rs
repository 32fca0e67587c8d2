//! Section 12 of the report: the share of one CPU the probes took once the overhead guard had
//! settled, against the budget it promises.

use std::fmt::Write as _;

use super::cell;
use crate::bench::{
    judge::{Status, judge_interval},
    results::Results,
    text::pct_ci,
};

pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 12. The overhead guard's promise (`--max-overhead`, % of one CPU)\n");
    let _ = writeln!(
        md,
        "bench-target calls a set of functions round robin, flat out on one thread, traced with `--func` on all \
         of them. The loop runs unmeasured for 8 s (the guard needs 2 s of rates, then detaches the hottest \
         until its estimate fits), then is timed. On one busy thread, the probes' share of its time is the \
         share of one CPU they cost: 1 − untraced ns per call / traced ns per call, which is also the \
         throughput it loses.\n\n\
         target-app runs flat out (its feed far faster than its pipeline) with all its threads pinned to \
         one CPU, so what the probes take is taken from that CPU's work: their share of its time is the \
         throughput it loses. Each run is one process measured twice, untraced and then traced, so only \
         its own drift (±5 % from one window to the next) is left, not the differences between processes \
         (up to ±7 % more). After 8 s of warm-up, two truth \
         snapshots (SIGUSR1) the measured time apart give its messages per second and its CPU per message; \
         then perf-user attaches with `--func '*'` (every function of its executable, std's and its \
         dependencies' included) and, after the same 8 s, two more snapshots give the traced ones. The \
         probes' share is 1 − untraced CPU per message / traced CPU per message; the throughput lost, 1 − \
         traced / untraced messages per second; each the median over as many pairs as section 1's paired \
         runs (with three, one pair whose traced window the host slowed set the interval's end alone).\n\n\
         Each share and loss comes with its 95 % bootstrap interval (bench-target: medians of the untraced \
         and the traced runs resampled; target-app: the median of the paired runs' own values resampled). \
         \"Kept\" when both intervals lie within the budget, \"**no**\" when either lies wholly beyond it, \
         \"inconclusive\" otherwise: these runs cannot tell.\n"
    );
    let _ = writeln!(
        md,
        "| functions | guard | probes' share of one CPU | throughput lost | functions detached | kept |\n|---|---|---|---|---|---|"
    );
    for g in &r.guard {
        let guard = g.budget_pct.map_or_else(|| "off".to_string(), |b| format!("{b} %"));
        let share = g.probe_share_pct.as_ref().map_or_else(Clone::clone, pct_ci);
        let lost = g.throughput_loss_pct.as_ref().map_or_else(Clone::clone, pct_ci);
        // The guard off detaches nothing: its report is not needed (a 1,000-function tracer may
        // still be detaching when the run gives up on it).
        let detached = match (g.budget_pct, &g.detached, &g.functions) {
            (None, ..) => "—".to_string(),
            (Some(_), Ok(d), Ok(n)) => format!("{d:.0} of {n:.0}"),
            (Some(_), Err(e), _) | (Some(_), _, Err(e)) => e.clone(),
        };
        // The goal's rule, row by row: both intervals within the budget.
        let kept = g.budget_pct.map_or("—", |b| {
            let values = [
                ("CPU".to_string(), g.probe_share_pct.clone()),
                ("throughput".to_string(), g.throughput_loss_pct.clone()),
            ];
            match judge_interval(&values, pct_ci, f64::from(b)).1 {
                Status::Met => "yes",
                Status::NotMet => "**no**",
                Status::Inconclusive => "inconclusive",
                Status::NotMeasured(_) | Status::Stated => "not measured",
            }
        });
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(g.what),
            guard,
            cell(&share),
            cell(&lost),
            cell(&detached),
            kept
        );
    }
}
