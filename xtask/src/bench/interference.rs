//! Section 10: what `--interference` adds and what the call tree costs, per traced call (paired
//! runs: the default mode on the function, the same with `--interference` or `--no-call-tree` on
//! its twin, so both see the same machine and the same system-wide programs), and per hard
//! interrupt, local-timer interrupt, softirq and user page fault (the programs' run time, with
//! `kernel.bpf_stats_enabled` on for those runs only).

use super::{
    calls::FUNCS,
    pairs::ratios,
    programs::{program_medians, with_bpf_stats},
    readings::{first_error, median_of},
    results::{InterfProgram, InterferenceCost},
    rounds::{Config, Ctx, repeated, strings},
    run::Outcome,
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

/// Each program's run time under each configuration, interleaved, with BPF statistics on. Every
/// program that ran is kept: the interrupt programs run far less often than once per call.
fn programs(ctx: &mut Ctx, arg: &str, glob: &str) -> Result<Vec<InterfProgram>, String> {
    let traced = strings(&["calls", "--func", arg, "--iterations", &ctx.plan.traced_calls.to_string()]);
    let configs: Vec<Config> = PROGRAM_CONFIGS
        .iter()
        .map(|(label, flags)| {
            Config::new(format!("interference programs: {label}"), traced.clone(), Ok(Tracer::perf_user(glob, flags)))
        })
        .collect();
    let out = with_bpf_stats(ctx, &configs)?;
    let rows: Vec<InterfProgram> = PROGRAM_CONFIGS
        .iter()
        .zip(&out)
        .flat_map(|((label, _), outcomes)| {
            program_medians(outcomes).into_iter().map(|p| InterfProgram {
                config: label,
                program: p.name,
                runs: p.runs,
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
