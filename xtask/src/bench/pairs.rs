//! Section 1's paired runs: `bench-target pair` alternates the function and its twin in blocks
//! of 100 calls, timing each, with empty programs on the function and the measured mode on the
//! twin (bpftrace on the function for the comparison with it). Machine noise then hits both sides
//! of a ratio alike; each run gives one ratio of added costs.

use super::{
    calls::{FUNCS, bpftrace_latency, raw_symbol},
    readings::{counted_every_call, median_of, runs_of},
    results::PairRow,
    rounds::{Config, Ctx, repeated, strings},
    run::Outcome,
    stats::{Cell, Runs},
    tracer::Tracer,
};

/// One row per probed function.
pub fn measure(ctx: &mut Ctx, binutils: bool) -> Vec<PairRow> {
    FUNCS.iter().map(|&(name, arg, path)| pair_row(ctx, name, arg, &path, binutils)).collect()
}

fn pair_row(ctx: &mut Ctx, name: &'static str, arg: &str, path: &[&str], binutils: bool) -> PairRow {
    let glob = path.join("::");
    let twin = format!("{glob}_twin");
    let symbol = raw_symbol(&ctx.bins.bench_target, path, binutils);
    let bpftrace = bpftrace_latency(&ctx.bins, &symbol);
    let pair = |calls: u64| strings(&["pair", "--func", arg, "--iterations", &calls.to_string()]);
    let (traced, untraced) = (pair(ctx.plan.traced_calls), pair(ctx.plan.untraced_calls / 2));
    let floor_and = |extra: &[&str]| {
        let floor = Tracer::perf_user(&glob, &["--probe-mode", "empty"]);
        Ok(Tracer::Pair(Box::new(floor), Box::new(Tracer::perf_user(&twin, extra))))
    };
    let counted = || counted_every_call(twin.clone());
    let configs = [
        Config::new(format!("{name} pair untraced"), untraced, Ok(Tracer::None)),
        Config::new(format!("{name} pair floor/floor"), traced.clone(), floor_and(&["--probe-mode", "empty"])),
        Config::new(format!("{name} pair floor/clock"), traced.clone(), floor_and(&["--probe-mode", "clock"])),
        Config::new(format!("{name} pair floor/latency-only"), traced.clone(), floor_and(&["--latency-only"]))
            .checked(counted()),
        Config::new(format!("{name} pair floor/perf-user"), traced.clone(), floor_and(&[])).checked(counted()),
        Config::new(
            format!("{name} pair bpftrace/latency-only sampled"),
            traced,
            bpftrace.map(|b| {
                Tracer::Pair(Box::new(b), Box::new(Tracer::perf_user(&twin, &["--latency-only", "--sample", "10"])))
            }),
        ),
    ];
    let out = repeated(ctx, &configs, ctx.plan.pair_reps);
    let side = |o: &Outcome, twin: bool| o.target?.pair_ns.map(|(f, t)| if twin { t } else { f });
    let untraced = (median_of(&out[0], |o| side(o, false)), median_of(&out[0], |o| side(o, true)));
    PairRow {
        func: name,
        same: ratios(&out[1], &untraced),
        clock: ratios(&out[2], &untraced),
        latency: ratios(&out[3], &untraced),
        perf_user: ratios(&out[4], &untraced),
        latency_sampled_vs_bpftrace: ratios(&out[5], &untraced),
    }
}

/// Each run's (twin − its untraced cost) / (function − its untraced cost).
pub fn ratios(outcomes: &[Result<Outcome, String>], untraced: &(Cell, Cell)) -> Runs {
    match untraced {
        (Ok(uf), Ok(ut)) => runs_of(outcomes, |o| {
            let (f, t) = o.target?.pair_ns?;
            (f - uf > 0.0).then(|| (t - ut) / (f - uf))
        }),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}
