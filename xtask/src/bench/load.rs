//! Sections 3 and 4: perf-user on `nop5` flat out (the ceiling), then at the paced rates the
//! ceiling allows; perf-user's CPU, peak memory and anything lost at each.

use super::{
    calls::FUNCS,
    readings::{export_field, median_of},
    results::{Load, LoadRow, SAMPLED_LOAD},
    rounds::{Config, Ctx, interleaved, strings},
    run::Outcome,
    text::thousands,
    tracer::Tracer,
};

const LOAD_RATES: [(&str, u64); 2] = [("100k calls/s", 100_000), ("1M calls/s", 1_000_000)];

/// The ceiling row, then the paced rows and the sampled mode's.
pub fn measure(ctx: &mut Ctx) -> (LoadRow, Vec<LoadRow>) {
    let ceiling = LoadRow { label: "flat out (ceiling)".into(), result: load(ctx, "nop5 flat out", 0, &[]) };
    let reached = ceiling.result.as_ref().map(|c| c.reached_per_s).ok();
    let mut loads: Vec<LoadRow> = LOAD_RATES
        .iter()
        .map(|&(label, rate)| {
            let result = match reached {
                // Within 2 % of the target counts as reachable: pacing then holds the rate.
                Some(max) if max >= rate as f64 * 0.98 => load(ctx, &format!("nop5 at {label}"), rate, &[]),
                Some(max) => Err(format!(
                    "not reachable here: traced calls top out at {}/s (see the ceiling row)",
                    thousands(max)
                )),
                None => Err("skipped: the ceiling run failed".into()),
            };
            LoadRow { label: label.into(), result }
        })
        .collect();
    loads.extend(sampled(ctx));
    (ceiling, loads)
}

/// The cheapest mode that still counts every call (a sampled-out call costs its entry trap):
/// flat out, then at 1M calls/s if it got there.
fn sampled(ctx: &mut Ctx) -> [LoadRow; 2] {
    let sampled = ["--latency-only", "--sample", "10"];
    let flat = load(ctx, "nop5 flat out, latency-only sampled", 0, &sampled);
    let result = match &flat {
        Ok(c) if c.reached_per_s >= 1e6 * 0.98 => load(ctx, "nop5 at 1M, latency-only sampled", 1_000_000, &sampled),
        Ok(c) => Err(format!("not reachable here: calls top out at {}/s", thousands(c.reached_per_s))),
        Err(_) => Err("skipped: the ceiling run failed".into()),
    };
    [
        LoadRow { label: format!("flat out, {SAMPLED_LOAD}"), result: flat },
        LoadRow { label: format!("1M calls/s, {SAMPLED_LOAD}"), result },
    ]
}

/// perf-user with `flags` on `nop5` called at `rate` (0: flat out) for the plan's load time.
fn load(ctx: &mut Ctx, label: &str, rate: u64, flags: &[&str]) -> Result<Load, String> {
    let glob = FUNCS[1].2.join("::");
    let target = strings(&[
        "calls",
        "--func",
        "nop5",
        "--iterations",
        "1000000000000",
        "--duration-ms",
        &ctx.plan.load_ms.to_string(),
        "--rate",
        &rate.to_string(),
    ]);
    let config = Config::new(label, target, Ok(Tracer::perf_user(&glob, flags)));
    let out = interleaved(ctx, &[config]).remove(0);
    let (lost, exemplars_retired) = lost_counters(&out);
    // `calls`: every call the kernel counted, timed or sampled out.
    let uncounted = out
        .iter()
        .flatten()
        .filter_map(|o| Some(o.target?.calls as i64 - export_field(o, &glob, "calls")? as i64))
        .sum();
    Ok(Load {
        reached_per_s: median_of(&out, |o| o.target.map(|t| t.calls_per_sec))?,
        cpu_pct: median_of(&out, |o| o.tracer_cpu_pct)?,
        vmhwm_kb: median_of(&out, |o| o.tracer_vmhwm_kb.map(|k| k as f64))? as u64,
        lost,
        exemplars_retired,
        uncounted,
    })
}

/// The report's non-zero `lost{}` counters summed over the runs, and the retired exemplars apart
/// (a retention bound, not a loss).
fn lost_counters(out: &[Result<Outcome, String>]) -> (Vec<(String, u64)>, u64) {
    let mut lost: Vec<(String, u64)> = Vec::new();
    let mut exemplars_retired = 0;
    for o in out.iter().flatten() {
        let Some(map) = o.export.as_ref().and_then(|e| e.get("lost")).and_then(|l| l.as_object()) else { continue };
        for (k, v) in map {
            let v = v.as_u64().unwrap_or(0);
            if k == "exemplars_evicted" {
                exemplars_retired += v;
                continue;
            }
            match lost.iter_mut().find(|(name, _)| name == k) {
                Some(entry) => entry.1 += v,
                None if v > 0 => lost.push((k.clone(), v)),
                None => {}
            }
        }
    }
    (lost, exemplars_retired)
}
