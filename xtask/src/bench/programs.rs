//! Section 7: each BPF program's run time per configuration, with the kernel's BPF statistics on
//! for these runs only (they slow every program down).

use super::{
    readings::{first_error, median_of},
    results::{CLOCK_PROGRAMS, EMPTY_PROGRAMS, ProgramCost},
    rounds::{Config, Ctx, Outcomes, interleaved, strings},
    run::Outcome,
    sys,
    tracer::Tracer,
};

/// The configurations: the report's label, the progress label, perf-user's flags.
const CONFIGS: [(&str, &str, &[&str]); 6] = [
    (EMPTY_PROGRAMS, "programs: floor", &["--probe-mode", "empty"]),
    (CLOCK_PROGRAMS, "programs: clock floor", &["--probe-mode", "clock"]),
    ("perf-user", "programs: perf-user", &[]),
    ("perf-user --attach-mode multi", "programs: pair", &["--attach-mode", "multi"]),
    ("perf-user --sample 10", "programs: sampled", &["--sample", "10"]),
    ("perf-user --latency-only", "programs: latency-only", &["--latency-only"]),
];

pub fn measure(ctx: &mut Ctx) -> Result<Vec<ProgramCost>, String> {
    if sys::tool("bpftool", "version").is_err() {
        return Err("skipped: bpftool not installed".into());
    }
    let was_on = sys::bpf_stats_enabled();
    sys::set_bpf_stats(true).map_err(|e| format!("skipped: {e:#}"))?;
    let traced = strings(&["calls", "--func", "push-rbp", "--iterations", &ctx.plan.traced_calls.to_string()]);
    let glob = "bench_target::funcs::push_rbp";
    let configs: Vec<Config> = CONFIGS
        .iter()
        .map(|(_, label, flags)| Config::new(*label, traced.clone(), Ok(Tracer::perf_user(glob, flags))))
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

/// Per configuration, each program that ran at least once per hundred calls.
fn rows(out: &Outcomes) -> Vec<ProgramCost> {
    let mut rows = Vec::new();
    for ((label, _, _), outcomes) in CONFIGS.iter().zip(out) {
        let mut names: Vec<String> =
            outcomes.iter().flatten().flat_map(|o| o.prog_stats.iter().map(|p| p.0.clone())).collect();
        names.sort();
        names.dedup();
        for name in names {
            let of = |o: &Outcome| o.prog_stats.iter().find(|p| p.0 == name).cloned();
            let ns = median_of(outcomes, |o| of(o).map(|p| p.2));
            let per_call = median_of(outcomes, |o| Some(of(o)?.1 as f64 / o.target?.calls as f64));
            if let (Ok(ns_per_run), Ok(runs_per_call)) = (ns, per_call)
                && runs_per_call >= 0.01
            {
                rows.push(ProgramCost { config: label, program: name, runs_per_call, ns_per_run });
            }
        }
    }
    rows
}
