//! Section 9: what tracing costs programs users run, not an empty function: target-app flat out,
//! and nginx under wrk with one connection and with many, in every mode, in interleaved rounds.

mod nginx;
mod server;
mod target_app;
mod wrk;

use std::time::Instant;

use super::{
    results::{Mode, WorkRun, Workloads},
    rounds::{Ctx, file_label, first_line},
    sys,
    text::thousands,
    tracer::Tracer,
};

pub fn measure(ctx: &mut Ctx) -> Workloads {
    let target_app = target_app::measure(ctx);
    let server = server::measure(ctx);
    Workloads {
        target_app,
        server: server.server,
        server_regimes: server.regimes,
        calls_per_request: server.calls_per_request,
        load_secs: ctx.plan.server_secs,
    }
}

/// Every mode's runs of one workload, in `Mode::ALL`'s order, one per round.
type ModeRuns = Vec<(Mode, Vec<Result<WorkRun, String>>)>;

/// Runs `run` for every mode in each of `reps` rounds; each round starts one mode later than the
/// last, so that no mode always follows the same one. A mode whose tracer is missing records why,
/// once per round; a failed run is noted.
fn rounds(
    ctx: &mut Ctx,
    name: &str,
    tracers: &[(Mode, Result<Tracer, String>)],
    reps: usize,
    mut run: impl FnMut(&mut Ctx, Mode, &Tracer, &str) -> anyhow::Result<WorkRun>,
) -> ModeRuns {
    let mut all: ModeRuns = tracers.iter().map(|(m, _)| (*m, Vec::new())).collect();
    for rep in 0..reps {
        for k in 0..tracers.len() {
            let i = (k + rep) % tracers.len();
            let (mode, tracer) = &tracers[i];
            let result = match tracer {
                Err(why) => Err(why.clone()),
                Ok(tracer) => {
                    let label = file_label(&format!("{name} {}-{rep}", mode.label()));
                    let r = run(ctx, *mode, tracer, &label);
                    progress(ctx, name, *mode, rep, reps, &r);
                    r.map_err(|e| format!("failed: {}", first_line(&format!("{e:#}"))))
                }
            };
            all[i].1.push(result);
        }
    }
    all
}

/// The run's progress line; a failure also goes to the report's notes.
fn progress(ctx: &mut Ctx, name: &str, mode: Mode, rep: usize, reps: usize, r: &anyhow::Result<WorkRun>) {
    let what = format!("[{}/{reps}] {name}, {}", rep + 1, mode.label());
    match r {
        Ok(w) => eprintln!(
            "bench: {what:<60} {}/s p99 {:.0} µs cpu {:.2} µs/op tracer {:.2} µs/op",
            thousands(w.per_s),
            w.p99_us,
            w.cpu_per_op_us,
            w.tracer_cpu_per_op_us
        ),
        Err(e) => {
            eprintln!("bench: {what} FAILED: {e:#}");
            ctx.notes.push(format!("{name}, {} (round {}) failed: {e:#}", mode.label(), rep + 1));
        }
    }
}

/// The machine's busy time at the start of a run, to tell what other processes took during it.
struct MachineCpu {
    busy_s: Option<f64>,
    at: Instant,
}

impl MachineCpu {
    fn now() -> MachineCpu {
        MachineCpu { busy_s: sys::machine_busy_s(), at: Instant::now() }
    }

    /// The share of all CPUs busy since `now()` but not with the run's own `ours_s` seconds.
    fn others_pct(&self, ours_s: f64) -> f64 {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let wall = self.at.elapsed().as_secs_f64();
        match (self.busy_s, sys::machine_busy_s()) {
            (Some(before), Some(after)) if wall > 0.0 => ((after - before - ours_s) / (wall * cpus) * 100.0).max(0.0),
            _ => f64::NAN,
        }
    }
}

/// CPU seconds between two readings, per operation, in µs.
fn per_op_us(before: Option<f64>, after: Option<f64>, ops: u64) -> Option<f64> {
    Some(((after? - before?).max(0.0)) / ops.max(1) as f64 * 1e6)
}
