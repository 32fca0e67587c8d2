//! Section 12's real program: target-app fed flat out and traced with `--func '*'` (every function
//! of its executable, std's and its dependencies' included). Its threads are pinned to one CPU, so
//! whatever the probes take is taken from that CPU's work: the share of its time they cost is the
//! throughput it loses, which is what `--max-overhead` (% of one CPU) promises to bound.
//!
//! Each run is paired: one process measured untraced, then traced, so only its own drift (±5 %
//! from one window to the next) is left: separate pinned processes also differ from each other
//! by up to ±7 %, and unpinned ones by ±15 % (which of its four threads share a core). After a warm-up, two truth snapshots
//! (SIGUSR1) a measuring time apart give its untraced messages per second and CPU per message;
//! perf-user attaches to the running process (as it would to a server), and after the settling time
//! (the guard detaches what it will) two more give the traced ones.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result, bail};

use crate::bench::{
    proc::{Proc, tail},
    results::GuardRow,
    rounds::{Ctx, file_label},
    stats::{Cell, Estimate, median, median_ci},
    sys,
    tracer::{self, Attached, Tracer},
};

const WHAT: &str = "target-app flat out on one CPU, `--func '*'` (every function of its executable)";
/// The feed's rate: far above what the pipeline takes, so it runs flat out.
const FLAT_OUT_RATE: &str = "10000000";
/// Untraced seconds before the first snapshot: a fresh target-app speeds up over its first
/// seconds (its book and caches warming, ~15 % from 2 s to a minute), which would flatter the
/// traced window measured after it.
const WARM_UP: Duration = Duration::from_secs(8);

/// How long target-app may take to write a snapshot: a heavily probed one answers slowly.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// One measured window of one process.
#[derive(Clone, Copy, Debug)]
struct Window {
    per_s: f64,
    /// CPU seconds (all threads, user + system) per message decoded.
    cpu_per_msg_s: f64,
}

/// One process, measured untraced and then traced.
#[derive(Clone, Copy, Debug)]
struct Paired {
    untraced: Window,
    traced: Window,
    detached: f64,
    functions: f64,
}

impl Paired {
    /// The share of the process's CPU time the probes took, in %: its CPU per message grew from
    /// untraced to traced by their cost.
    fn probe_share_pct(&self) -> f64 {
        ((1.0 - self.untraced.cpu_per_msg_s / self.traced.cpu_per_msg_s) * 100.0).max(0.0)
    }

    fn loss_pct(&self) -> f64 {
        ((1.0 - self.traced.per_s / self.untraced.per_s) * 100.0).max(0.0)
    }
}

pub fn rows(ctx: &mut Ctx, settle_ms: u64, budgets: &[u32]) -> Vec<GuardRow> {
    let cpu = match last_cpu() {
        Ok(cpu) => cpu,
        Err(e) => {
            ctx.notes.push(format!("guard target-app not run: {e:#}"));
            return Vec::new();
        }
    };
    let mut runs: Vec<Vec<Paired>> = vec![Vec::new(); budgets.len()];
    // As many as section 1's paired runs: with three, one pair spoiled by the host (a traced
    // window slowed by someone else's work) set the interval's end alone.
    let pairs = ctx.plan.pair_reps;
    for rep in 0..pairs {
        // Each round starts one budget later: none always follows the same one.
        for k in 0..budgets.len() {
            let i = (k + rep) % budgets.len();
            let name = format!("--max-overhead {}", budgets[i]);
            let label = file_label(&format!("guard target-app {name}-{rep}"));
            let tracer = Tracer::perf_user("*", &["--max-overhead", &budgets[i].to_string()]);
            match paired(ctx, &tracer, cpu, settle_ms, &label) {
                Ok(p) => {
                    eprintln!(
                        "bench: [{}/{}] guard target-app, {name:<18} {:.0} → {:.0} msg/s (lost {:.1} %), \
                         {:.2} → {:.2} µs CPU/msg, {} of {} detached",
                        rep + 1,
                        pairs,
                        p.untraced.per_s,
                        p.traced.per_s,
                        p.loss_pct(),
                        p.untraced.cpu_per_msg_s * 1e6,
                        p.traced.cpu_per_msg_s * 1e6,
                        p.detached,
                        p.functions
                    );
                    runs[i].push(p);
                }
                Err(e) => {
                    eprintln!("bench: guard target-app, {name} (round {}) FAILED: {e:#}", rep + 1);
                    ctx.notes.push(format!("guard target-app, {name} (round {}) failed: {e:#}", rep + 1));
                }
            }
        }
    }
    let med = |runs: &[Paired], f: fn(&Paired) -> f64| -> Cell {
        if runs.is_empty() { Err("failed: no run".into()) } else { Ok(median(&runs.iter().map(f).collect::<Vec<_>>())) }
    };
    // Each run is its own untraced/traced pair, so each gives its own share and loss: their median
    // with the interval of resampled medians.
    let est = |runs: &[Paired], f: fn(&Paired) -> f64| -> Estimate {
        if runs.is_empty() { Err("failed: no run".into()) } else { median_ci(&Ok(runs.iter().map(f).collect())) }
    };
    budgets
        .iter()
        .zip(&runs)
        .map(|(&budget, r)| GuardRow {
            what: WHAT,
            budget_pct: Some(budget),
            probe_share_pct: est(r, Paired::probe_share_pct),
            throughput_loss_pct: est(r, Paired::loss_pct),
            detached: med(r, |p| p.detached),
            functions: med(r, |p| p.functions),
        })
        .collect()
}

/// The highest CPU the bench may run on: target-app's, leaving the others to perf-user and the
/// bench.
fn last_cpu() -> Result<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer and size describe `set`, which lives across the call.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Err(std::io::Error::last_os_error()).context("reading the bench's CPU affinity");
    }
    // SAFETY: CPU_ISSET only reads the set, for CPU numbers within its size.
    (0..libc::CPU_SETSIZE as usize)
        .rev()
        .find(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .context("the bench may run on no CPU")
}

/// target-app started on CPU `cpu` alone (its threads inherit the affinity).
fn spawn_pinned(ctx: &Ctx, cpu: usize, truth: &Path) -> Result<Proc> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = std::process::Command::new(&ctx.bins.target_app);
    cmd.args(["--rate", FLAT_OUT_RATE, "--truth"]).arg(truth);
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // sched_setaffinity(2), which is async-signal-safe, on a set built on its own stack.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            match libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    Proc::spawn("target-app", &mut cmd)
}

/// One paired run: target-app measured untraced, then `tracer` attached to it and, after
/// `settle_ms`, measured traced; SIGTERM ends it, then the tracer.
fn paired(ctx: &mut Ctx, tracer: &Tracer, cpu: usize, settle_ms: u64, label: &str) -> Result<Paired> {
    let truth = ctx.scratch.join(format!("{label}.truth.json"));
    let _ = std::fs::remove_file(&truth);
    let mut app = spawn_pinned(ctx, cpu, &truth)?;
    app.wait_for(|l| l.starts_with("ready pid="), Duration::from_secs(20))?;
    let load = Duration::from_millis(ctx.plan.load_ms);
    let untraced = measure(&app, &truth, WARM_UP, load).inspect_err(|_| kill(&mut app))?;
    let attached = tracer::attach(&ctx.bins, tracer, app.pid(), &ctx.scratch, label).inspect_err(|_| kill(&mut app))?;
    let traced = match measure(&app, &truth, Duration::from_millis(settle_ms), load) {
        Ok(w) => w,
        Err(e) => {
            // A target too slowed to answer: the tracer detaches first (SIGINT: its links close in
            // parallel; a killed tracer's close one grace period each, for minutes), then the
            // target is killed.
            if let Some(a) = attached {
                let _ = a.stop(Some(Duration::from_secs(60)));
            }
            kill(&mut app);
            return Err(e);
        }
    };
    sys::signal(app.pid(), libc::SIGTERM);
    let status = app.finish(Duration::from_secs(60))?;
    if !status.success() {
        bail!("target-app failed ({status}):\n{}", tail(&app.log));
    }
    let (detached, functions) = guard_verdict(attached)?;
    Ok(Paired { untraced, traced, detached, functions })
}

/// `wait`, then one measured window of `load`, between two truth snapshots.
fn measure(app: &Proc, truth: &Path, wait: Duration, load: Duration) -> Result<Window> {
    std::thread::sleep(wait);
    let first = snapshot(app, truth)?;
    std::thread::sleep(load);
    window(&first, &snapshot(app, truth)?)
}

/// Ends a target-app given up on.
fn kill(app: &mut Proc) {
    sys::signal(app.pid(), libc::SIGKILL);
    let _ = app.finish(Duration::from_secs(10));
}

/// The functions the guard detached and the functions traced, from the stopped tracer's report.
fn guard_verdict(attached: Option<Attached>) -> Result<(f64, f64)> {
    let Some(a) = attached else { return Ok((0.0, 0.0)) };
    let stopped = a.stop(None)?.context("the tracer did not stop")?;
    let export = stopped.export()?.context("perf-user wrote no report")?;
    Ok((super::detached_in(&export).unwrap_or(0.0), super::functions_in(&export).unwrap_or(0.0)))
}

/// Messages per second and CPU per message between two snapshots.
fn window(first: &Snapshot, second: &Snapshot) -> Result<Window> {
    let messages = second.decoded.saturating_sub(first.decoded);
    let secs = second.duration_s - first.duration_s;
    if messages == 0 || secs <= 0.0 {
        bail!("target-app decoded no message in the measured window");
    }
    Ok(Window { per_s: messages as f64 / secs, cpu_per_msg_s: (second.cpu_s - first.cpu_s) / messages as f64 })
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
