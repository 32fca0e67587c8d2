//! Section 12's real program: target-app fed flat out and traced with `--func '*'`, untraced and
//! under each budget, in interleaved rounds. After the same settling time (the guard detaches
//! what it will), two truth snapshots (SIGUSR1) a measuring time apart give its messages per
//! second and its CPU per message over that window.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result, bail};

use crate::bench::{
    proc::{Proc, tail},
    results::GuardRow,
    rounds::{Ctx, file_label},
    stats::{Cell, median},
    sys,
    tracer::{self, Tracer},
};

const WHAT: &str = "target-app flat out, `--func '*'` (every function of its executable)";
/// The feed's rate: far above what the pipeline takes, so it runs flat out.
const FLAT_OUT_RATE: &str = "10000000";

/// How long target-app may take to write a snapshot: a heavily probed one answers slowly.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// One window of one run.
#[derive(Clone, Copy, Debug)]
struct Window {
    per_s: f64,
    /// CPU seconds (all threads, user + system) per message decoded.
    cpu_per_msg_s: f64,
    detached: f64,
    functions: f64,
}

pub fn rows(ctx: &mut Ctx, settle_ms: u64, budgets: &[Option<u32>]) -> Vec<GuardRow> {
    let tracers: Vec<Option<Tracer>> = std::iter::once(None)
        .chain(budgets.iter().map(|b| {
            let flags = b.map(|b| vec!["--max-overhead".to_string(), b.to_string()]).unwrap_or_default();
            let args: Vec<&str> = flags.iter().map(String::as_str).collect();
            Some(Tracer::perf_user("*", &args))
        }))
        .collect();
    let mut runs: Vec<Vec<Window>> = vec![Vec::new(); tracers.len()];
    for rep in 0..ctx.plan.reps {
        // Each round starts one configuration later: none always follows the same one.
        for k in 0..tracers.len() {
            let i = (k + rep) % tracers.len();
            let name = if i == 0 { "untraced".to_string() } else { budget_label(budgets[i - 1]) };
            let label = file_label(&format!("guard target-app {name}-{rep}"));
            match window(ctx, tracers[i].as_ref(), settle_ms, &label) {
                Ok(w) => {
                    eprintln!(
                        "bench: [{}/{}] guard target-app, {name:<18} {:.0} msg/s, {:.2} µs CPU/msg, {} of {} detached",
                        rep + 1,
                        ctx.plan.reps,
                        w.per_s,
                        w.cpu_per_msg_s * 1e6,
                        w.detached,
                        w.functions
                    );
                    runs[i].push(w);
                }
                Err(e) => {
                    eprintln!("bench: guard target-app, {name} (round {}) FAILED: {e:#}", rep + 1);
                    ctx.notes.push(format!("guard target-app, {name} (round {}) failed: {e:#}", rep + 1));
                }
            }
        }
    }
    let med = |runs: &[Window], f: fn(&Window) -> f64| -> Cell {
        if runs.is_empty() { Err("failed: no run".into()) } else { Ok(median(&runs.iter().map(f).collect::<Vec<_>>())) }
    };
    let (base_rate, base_cpu) = (med(&runs[0], |w| w.per_s), med(&runs[0], |w| w.cpu_per_msg_s));
    budgets
        .iter()
        .zip(&runs[1..])
        .map(|(&budget, r)| {
            let (rate, cpu) = (med(r, |w| w.per_s), med(r, |w| w.cpu_per_msg_s));
            GuardRow {
                what: WHAT,
                budget_pct: budget,
                probe_share_pct: probe_share(&base_cpu, &cpu, &rate),
                throughput_loss_pct: loss(&base_rate, &rate),
                detached: med(r, |w| w.detached),
                functions: med(r, |w| w.functions),
            }
        })
        .collect()
}

fn budget_label(budget: Option<u32>) -> String {
    budget.map_or_else(|| "guard off".to_string(), |b| format!("--max-overhead {b}"))
}

/// The CPU the probes added per message times the messages per second, in % of one CPU.
fn probe_share(base_cpu: &Cell, cpu: &Cell, rate: &Cell) -> Cell {
    match (base_cpu, cpu, rate) {
        (Ok(b), Ok(c), Ok(r)) => Ok(((c - b) * r * 100.0).max(0.0)),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e.clone()),
    }
}

fn loss(base: &Cell, rate: &Cell) -> Cell {
    match (base, rate) {
        (Ok(b), Ok(r)) if *b > 0.0 => Ok(((1.0 - r / b) * 100.0).max(0.0)),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        _ => Err("failed: no messages untraced".into()),
    }
}

/// One run: target-app held until the tracer is attached, released, left to settle, then
/// measured between two truth snapshots; SIGTERM ends it and perf-user with it.
fn window(ctx: &mut Ctx, tracer: Option<&Tracer>, settle_ms: u64, label: &str) -> Result<Window> {
    let truth = ctx.scratch.join(format!("{label}.truth.json"));
    let _ = std::fs::remove_file(&truth);
    let mut cmd = std::process::Command::new(&ctx.bins.target_app);
    cmd.args(["--rate", FLAT_OUT_RATE, "--hold", "--truth"]).arg(&truth);
    let mut app = Proc::spawn("target-app", &mut cmd)?;
    app.wait_for(|l| l.starts_with("ready pid="), Duration::from_secs(20))?;
    let attached = match tracer {
        Some(t) => tracer::attach(&ctx.bins, t, app.pid(), &ctx.scratch, label)?,
        None => None,
    };
    sys::signal(app.pid(), libc::SIGUSR2);
    let measured = (|| -> Result<(Snapshot, Snapshot)> {
        std::thread::sleep(Duration::from_millis(settle_ms));
        let first = snapshot(&app, &truth)?;
        std::thread::sleep(Duration::from_millis(ctx.plan.load_ms));
        Ok((first, snapshot(&app, &truth)?))
    })();
    let (first, second) = match measured {
        Ok(m) => m,
        Err(e) => {
            // A target too slowed to answer: the tracer detaches first (SIGINT: its links close in
            // parallel; a killed tracer's close one grace period each, for minutes), then the
            // target is killed.
            if let Some(a) = attached {
                let _ = a.stop(Some(Duration::from_secs(60)));
            }
            sys::signal(app.pid(), libc::SIGKILL);
            let _ = app.finish(Duration::from_secs(10));
            return Err(e);
        }
    };
    sys::signal(app.pid(), libc::SIGTERM);
    let status = app.finish(Duration::from_secs(60))?;
    if !status.success() {
        bail!("target-app failed ({status}):\n{}", tail(&app.log));
    }
    let (mut detached, mut functions) = (0.0, 0.0);
    if let Some(a) = attached {
        let stopped = a.stop(None)?.context("the tracer did not stop")?;
        let export = stopped.export()?.context("perf-user wrote no report")?;
        functions = super::functions_in(&export).unwrap_or(0.0);
        detached = super::detached_in(&export).unwrap_or(0.0);
    }
    let messages = second.decoded.saturating_sub(first.decoded);
    let secs = second.duration_s - first.duration_s;
    if messages == 0 || secs <= 0.0 {
        bail!("target-app decoded no message in the measured window");
    }
    Ok(Window {
        per_s: messages as f64 / secs,
        cpu_per_msg_s: (second.cpu_s - first.cpu_s) / messages as f64,
        detached,
        functions,
    })
}

struct Snapshot {
    decoded: u64,
    duration_s: f64,
    cpu_s: f64,
}

/// Asks target-app for a truth snapshot (SIGUSR1) and reads it once it is written.
fn snapshot(app: &Proc, truth: &Path) -> Result<Snapshot> {
    let _ = std::fs::remove_file(truth);
    sys::signal(app.pid(), libc::SIGUSR1);
    let deadline = std::time::Instant::now() + SNAPSHOT_TIMEOUT;
    loop {
        // Written to a temp file and renamed: once it exists, it is whole.
        if let Ok(text) = std::fs::read_to_string(truth) {
            let v: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", truth.display()))?;
            let num = |p: &str| v.pointer(p).and_then(serde_json::Value::as_f64);
            return match (num("/pipeline/decoded"), num("/duration_ns"), num("/cpu_ns")) {
                (Some(d), Some(t), Some(c)) => Ok(Snapshot { decoded: d as u64, duration_s: t / 1e9, cpu_s: c / 1e9 }),
                _ => bail!("{} lacks pipeline.decoded, duration_ns or cpu_ns", truth.display()),
            };
        }
        if std::time::Instant::now() > deadline {
            bail!("target-app wrote no truth snapshot within {SNAPSHOT_TIMEOUT:?} of SIGUSR1");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
