//! Section 6's truth: perf-user's p50 and p99 of bench-target's 20 µs spin, a call of known
//! length, so the calibrated latencies can be checked against it.

use super::{
    readings::{export_field, median_of},
    results::Spin,
    rounds::{Config, Ctx, interleaved, strings},
    tracer::Tracer,
};

/// How long the spin busy-waits: the truth its percentiles are compared with.
pub const SPIN_NS: u64 = 20_000;

pub fn measure(ctx: &mut Ctx) -> Result<Spin, String> {
    let glob = "bench_target::funcs::spin";
    let target = strings(&[
        "calls",
        "--func",
        "spin",
        "--spin-ns",
        &SPIN_NS.to_string(),
        "--iterations",
        &ctx.plan.spin_calls.to_string(),
    ]);
    let config = Config::new("spin 20 µs perf-user", target, Ok(Tracer::PerfUser(strings(&["--func", glob]))));
    let out = interleaved(ctx, &[config]).remove(0);
    Ok(Spin {
        p50_ns: median_of(&out, |o| export_field(o, glob, "p50_ns"))?,
        p99_ns: median_of(&out, |o| export_field(o, glob, "p99_ns"))?,
    })
}
