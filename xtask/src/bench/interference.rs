//! Section 10: what `--interference` adds and what the call tree costs, per traced call (paired
//! runs: the default mode on the function, the same with `--interference` or `--no-call-tree` on
//! its twin, so both see the same machine and the same system-wide programs), and per hard
//! interrupt, local-timer interrupt, softirq and user page fault (the programs' run time, with
//! `kernel.bpf_stats_enabled` on for those runs only).

use super::{
    calls::FUNCS,
    pairs::ratios,
    readings::{first_error, median_of},
    results::{InterfProgram, InterferenceCost},
    rounds::{Config, Ctx, Outcomes, interleaved, repeated, strings},
    run::Outcome,
    sys,
    tracer::Tracer,
};

/// The program-time configurations: the report's label and perf-user's flags.
pub const PROGRAM_CONFIGS: [(&str, &[&str]); 3] = [
    ("perf-user", &[]),
    ("perf-user --interference", &["--interference"]),
    ("perf-user --no-call-tree", &["--no-call-tree"]),
];

pub fn measure(ctx: &mut Ctx) -> Result<InterferenceCost, String> {
    let (name, arg, path) = FUNCS[0];
    let glob = path.join("::");
    let twin = format!("{glob}_twin");
    let pair = |calls: u64| strings(&["pair", "--func", arg, "--iterations", &calls.to_string()]);
    let (traced, untraced) = (pair(ctx.plan.traced_calls), pair(ctx.plan.untraced_calls / 2));
    let default_and = |extra: &[&str]| {
        Ok(Tracer::Pair(Box::new(Tracer::perf_user(&glob, &[])), Box::new(Tracer::perf_user(&twin, extra))))
    };
    let configs = [
        Config::new(format!("{name} interference pair untraced"), untraced, Ok(Tracer::None)),
        Config::new(format!("{name} interference pair default/default"), traced.clone(), default_and(&[])),
        Config::new(
            format!("{name} interference pair default/interference"),
            traced.clone(),
            default_and(&["--interference"]),
        ),
        Config::new(format!("{name} interference pair default/no-call-tree"), traced, default_and(&["--no-call-tree"])),
    ];
    let out = repeated(ctx, &configs, ctx.plan.pair_reps);
    let side = |o: &Outcome, twin: bool| o.target?.pair_ns.map(|(f, t)| if twin { t } else { f });
    let base = (median_of(&out[0], |o| side(o, false)), median_of(&out[0], |o| side(o, true)));
    Ok(InterferenceCost {
        func: name,
        same: ratios(&out[1], &base),
        interference: ratios(&out[2], &base),
        no_call_tree: ratios(&out[3], &base),
        programs: programs(ctx, arg, &glob),
    })
}

/// Each program's run time under both configurations, interleaved, with BPF statistics on.
fn programs(ctx: &mut Ctx, arg: &str, glob: &str) -> Result<Vec<InterfProgram>, String> {
    let was_on = sys::bpf_stats_enabled();
    sys::set_bpf_stats(true).map_err(|e| format!("skipped: {e:#}"))?;
    let traced = strings(&["calls", "--func", arg, "--iterations", &ctx.plan.traced_calls.to_string()]);
    let configs: Vec<Config> = PROGRAM_CONFIGS
        .iter()
        .map(|(label, flags)| {
            Config::new(format!("interference programs: {label}"), traced.clone(), Ok(Tracer::perf_user(glob, flags)))
        })
        .collect();
    let out = interleaved(ctx, &configs);
    if !was_on {
        let _ = sys::set_bpf_stats(false);
    }
    let rows = rows(&out);
    if rows.is_empty() {
        return Err(out.iter().find_map(|o| first_error(o)).unwrap_or_else(|| "no program ran".into()));
    }
    Ok(rows)
}

/// Per configuration, every program that ran (the interrupt programs run far less often than
/// once per call, so none is filtered out).
fn rows(out: &Outcomes) -> Vec<InterfProgram> {
    let mut rows = Vec::new();
    for ((label, _), outcomes) in PROGRAM_CONFIGS.iter().zip(out) {
        let mut names: Vec<String> =
            outcomes.iter().flatten().flat_map(|o| o.prog_stats.iter().map(|p| p.0.clone())).collect();
        names.sort();
        names.dedup();
        for name in names {
            let of = |o: &Outcome| o.prog_stats.iter().find(|p| p.0 == name).cloned();
            let ns = median_of(outcomes, |o| of(o).map(|p| p.2));
            let runs = median_of(outcomes, |o| of(o).map(|p| p.1 as f64));
            let per_call = median_of(outcomes, |o| Some(of(o)?.1 as f64 / o.target?.calls as f64));
            if let (Ok(ns_per_run), Ok(runs), Ok(runs_per_call)) = (ns, runs, per_call) {
                rows.push(InterfProgram { config: label, program: name, runs, runs_per_call, ns_per_run });
            }
        }
    }
    rows
}
