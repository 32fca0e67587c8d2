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
    let traced = strings(&["calls", "--func", "push-rbp", "--iterations", &ctx.plan.traced_calls.to_string()]);
    let glob = "bench_target::funcs::push_rbp";
    let configs: Vec<Config> = CONFIGS
        .iter()
        .map(|(_, label, flags)| Config::new(*label, traced.clone(), Ok(Tracer::perf_user(glob, flags))))
        .collect();
    let out = with_bpf_stats(ctx, &configs)?;
    // Each program that ran at least once per hundred calls.
    let rows: Vec<ProgramCost> = CONFIGS
        .iter()
        .zip(&out)
        .flat_map(|((label, _, _), outcomes)| {
            program_medians(outcomes).into_iter().filter(|p| p.runs_per_call >= 0.01).map(|p| ProgramCost {
                config: label,
                program: p.name,
                runs_per_call: p.runs_per_call,
                ns_per_run: p.ns_per_run,
            })
        })
        .collect();
    if rows.is_empty() {
        return Err(out.iter().find_map(|o| first_error(o)).unwrap_or_else(|| "no program ran".into()));
    }
    Ok(rows)
}

/// Runs `configs` interleaved with the kernel's BPF statistics on, and puts them back as they were.
pub fn with_bpf_stats(ctx: &mut Ctx, configs: &[Config]) -> Result<Outcomes, String> {
    let _stats = sys::BpfStats::set(true).map_err(|e| format!("skipped: {e:#}"))?;
    Ok(interleaved(ctx, configs))
}

/// One BPF program's medians over one configuration's runs.
pub struct ProgramMedians {
    pub name: String,
    pub runs: f64,
    pub runs_per_call: f64,
    pub ns_per_run: f64,
}

/// Every program that ran in `outcomes`, by name, with its medians.
pub fn program_medians(outcomes: &[Result<Outcome, String>]) -> Vec<ProgramMedians> {
    let mut names: Vec<String> =
        outcomes.iter().flatten().flat_map(|o| o.prog_stats.iter().map(|p| p.0.clone())).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let of = |o: &Outcome| o.prog_stats.iter().find(|p| p.0 == name).cloned();
            let ns = median_of(outcomes, |o| of(o).map(|p| p.2));
            let runs = median_of(outcomes, |o| of(o).map(|p| p.1 as f64));
            let per_call = median_of(outcomes, |o| Some(of(o)?.1 as f64 / o.target?.calls as f64));
            match (ns, runs, per_call) {
                (Ok(ns_per_run), Ok(runs), Ok(runs_per_call)) => {
                    Some(ProgramMedians { name, runs, runs_per_call, ns_per_run })
                }
                _ => None,
            }
        })
        .collect()
}
