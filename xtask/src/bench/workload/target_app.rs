//! Section 9's own program: target-app fed flat out (as fast as its pipeline takes messages), a
//! fixed number of messages per run, its throughput and `on_message` p99 from its truth file.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context, Result, bail};

use super::{MachineCpu, per_op_us, rounds};
use crate::bench::{
    proc::{Proc, tail},
    readings::function_field,
    results::{Mode, WorkRun, Workload},
    rounds::{Ctx, file_label, note_warnings},
    sys,
    tracer::{self, Tracer},
};

pub const NAME: &str = "target-app flat out";
/// Every function of target-app, as a user tracing their own program would start.
pub const GLOB: &str = "target_app::*";
/// The handler of one message, target-app's own p99 (its truth file times it).
const ON_MESSAGE: &str = "target_app::engine::Engine::on_message";
/// Messages of a sizing run, and of every run with `--quick`.
const SIZING_MESSAGES: u64 = 100_000;
/// The feed's rate: far above what the pipeline takes, so it runs flat out.
const FLAT_OUT_RATE: &str = "10000000";
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub fn measure(ctx: &mut Ctx) -> Result<Workload, String> {
    let tracers: Vec<(Mode, Result<Tracer, String>)> = Mode::ALL.map(|m| (m, tracer(m))).into();
    let messages = sizes(ctx, &tracers);
    let modes = rounds(ctx, NAME, &tracers, ctx.plan.workload_rounds, |ctx, mode, tracer, label| {
        let n = messages.iter().find(|(m, _)| *m == mode).map_or(SIZING_MESSAGES, |(_, n)| *n);
        run(ctx, tracer, n, label)
    });
    Ok(Workload { name: NAME.into(), short: "target-app", unit: "message", modes })
}

fn tracer(mode: Mode) -> Result<Tracer, String> {
    match (mode, mode.perf_user_flags()) {
        (Mode::Untraced, _) => Ok(Tracer::None),
        (_, Some(flags)) => Ok(Tracer::perf_user(GLOB, flags)),
        // One uprobe and one uretprobe per function, attached one by one: compared on nginx.
        (_, None) => Err(format!("skipped: bpftrace is compared on the server's two functions, not on `{GLOB}`")),
    }
}

/// Messages per run of each mode, so that each run lasts about the plan's time: from one run of
/// `SIZING_MESSAGES` (not reported); with `--quick`, `SIZING_MESSAGES` for all.
fn sizes(ctx: &mut Ctx, tracers: &[(Mode, Result<Tracer, String>)]) -> Vec<(Mode, u64)> {
    let Some(ms) = ctx.plan.app_ms else { return Vec::new() };
    let mut sizes = Vec::new();
    for (mode, tracer) in tracers {
        let Ok(tracer) = tracer else { continue };
        let label = file_label(&format!("{NAME} sizing {}", mode.label()));
        match run(ctx, tracer, SIZING_MESSAGES, &label) {
            Ok(r) => sizes.push((*mode, ((r.per_s * ms as f64 / 1e3) as u64).max(SIZING_MESSAGES))),
            Err(e) => eprintln!("bench: sizing {NAME}, {}: {e:#}", mode.label()),
        }
    }
    sizes
}

/// One run: target-app held until the tracer is attached, then fed `messages` flat out; it
/// drains its pipeline, writes its truth file and exits, and perf-user with it.
fn run(ctx: &mut Ctx, tracer: &Tracer, messages: u64, label: &str) -> Result<WorkRun> {
    let truth_path = ctx.scratch.join(format!("{label}.truth.json"));
    let _ = std::fs::remove_file(&truth_path);
    let mut cmd = Command::new(&ctx.bins.target_app);
    cmd.args(["--rate", FLAT_OUT_RATE, "--messages", &messages.to_string(), "--hold", "--truth"]).arg(&truth_path);
    let mut app = Proc::spawn("target-app", &mut cmd)?;
    app.wait_for(|l| l.starts_with("ready pid="), Duration::from_secs(20))?;
    let attached = tracer::attach(&ctx.bins, tracer, app.pid(), &ctx.scratch, label)?;
    let tracer_pid = attached.as_ref().map(|a| a.pid());
    let tracer_before = tracer_pid.and_then(sys::cpu_time_s);
    let app_before = sys::cpu_time_s(app.pid()).unwrap_or(0.0);
    let machine = MachineCpu::now();
    sys::signal(app.pid(), libc::SIGUSR2);
    let status = app.finish(RUN_TIMEOUT)?;
    if !status.success() {
        bail!("target-app failed ({status}):\n{}", tail(&app.log));
    }
    // The tracer is not reaped yet: its CPU time can still be read, even if it has exited.
    let tracer_after = tracer_pid.and_then(sys::cpu_time_s);
    let truth = read_truth(&truth_path)?;
    let tracer_s = tracer_before.zip(tracer_after).map_or(0.0, |(a, b)| b - a);
    let others_pct = machine.others_pct(truth.cpu_s - app_before + tracer_s);
    if let Some(a) = attached {
        let stopped = a.stop(None)?.context("the tracer did not stop")?;
        let export = stopped.export()?.context("perf-user wrote no report")?;
        note_warnings(ctx, Some(&export));
        let calls = function_field(&export, ON_MESSAGE, "calls").unwrap_or(0.0);
        if calls < truth.messages as f64 {
            bail!("perf-user saw {calls} calls of {ON_MESSAGE} for {} messages", truth.messages);
        }
    }
    Ok(WorkRun {
        per_s: truth.messages as f64 / truth.duration_s,
        p99_us: truth.on_message_p99_ns / 1e3,
        cpu_per_op_us: truth.cpu_s / truth.messages.max(1) as f64 * 1e6,
        tracer_cpu_per_op_us: per_op_us(tracer_before, tracer_after, truth.messages).unwrap_or(0.0),
        others_pct,
    })
}

/// What the bench reads from target-app's truth file.
struct Truth {
    messages: u64,
    /// From the first message fed to the file's writing, after the pipeline drained.
    duration_s: f64,
    cpu_s: f64,
    on_message_p99_ns: f64,
}

fn read_truth(path: &Path) -> Result<Truth> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let num = |key: &str| v.get(key).and_then(serde_json::Value::as_f64);
    // Its `functions[]` are keyed by `symbol`, as perf-user's are.
    match (num("messages_fed"), num("duration_ns"), num("cpu_ns"), function_field(&v, ON_MESSAGE, "p99_ns")) {
        (Some(m), Some(d), Some(c), Some(p99)) if m > 0.0 && d > 0.0 => {
            Ok(Truth { messages: m as u64, duration_s: d / 1e9, cpu_s: c / 1e9, on_message_p99_ns: p99 })
        }
        _ => bail!("{} lacks messages_fed, duration_ns, cpu_ns or {ON_MESSAGE}'s p99_ns", path.display()),
    }
}
