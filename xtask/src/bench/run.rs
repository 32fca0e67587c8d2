//! One measurement: bench-target under one tracer, driven in lock step over pipes (target ready →
//! tracer attached → go → result → tracer stopped → target released); every process is killed on
//! any error, so a failed run never leaves probes or targets behind.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    proc::{Proc, tail},
    sys,
    tracer::{self, Attached, Tracer},
};

/// Longest measured loop (strace's ptrace stops are the slowest case).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Paths of the binaries a run may start.
pub struct Bins {
    pub perf_user: PathBuf,
    /// Appended to every `perf-user attach` (e.g. turning its overhead guard off).
    pub perf_user_args: Vec<String>,
    pub bench_target: PathBuf,
    pub target_app: PathBuf,
    pub bpftrace: Option<PathBuf>,
    pub strace: Option<PathBuf>,
    /// Section 9's real server and its load generator.
    pub nginx: Option<PathBuf>,
    pub wrk: Option<PathBuf>,
}

/// The target's own result line: `calls=… elapsed_ns=… ns_per_call=… calls_per_sec=…`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TargetResult {
    pub calls: u64,
    pub ns_per_call: f64,
    pub calls_per_sec: f64,
    /// `bench-target pair`: ns per call of the function and of its twin, each timed on its own.
    pub pair_ns: Option<(f64, f64)>,
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `None` when the run only attached (no go).
    pub target: Option<TargetResult>,
    /// Tracer start to its "attached"/"READY" line.
    pub attach_s: Option<f64>,
    /// SIGINT to the tracer's exit.
    pub detach_s: Option<f64>,
    /// Set instead of `detach_s` when the tracer was still detaching after the run's cap: it was
    /// left to finish in the background.
    pub detach_over_s: Option<f64>,
    /// The `N` of perf-user's `attached N probes` line.
    pub probes: Option<u64>,
    /// The tracer's utime+stime during the measured loop, in % of one core.
    pub tracer_cpu_pct: Option<f64>,
    /// The tracer's peak RSS (VmHWM) at the end of the loop.
    pub tracer_vmhwm_kb: Option<u64>,
    /// perf-user's `--export` report.
    pub export: Option<serde_json::Value>,
    /// With `kernel.bpf_stats_enabled`: each of the tracer's BPF programs that ran during the
    /// loop, as (name, runs, ns per run).
    pub prog_stats: Vec<(String, u64, f64)>,
    /// The tracer's stdout and stderr, interleaved.
    pub tracer_output: Vec<String>,
}
/// Runs `bench-target TARGET_ARGS --wait-stdin` under `tracer`. With `go == false` the loop never
/// starts: the run measures attach and detach only. With `detach_cap`, a tracer still detaching
/// after that long is left to finish in the background (the kernel unregisters uprobes one grace
/// period at a time). `label` names the files left in `scratch`.
pub fn run_once(
    bins: &Bins,
    target_args: &[String],
    tracer: &Tracer,
    go: bool,
    detach_cap: Option<Duration>,
    scratch: &Path,
    label: &str,
) -> Result<Outcome> {
    let mut target_cmd = Command::new(&bins.bench_target);
    target_cmd.args(target_args).arg("--wait-stdin");
    let mut target = Proc::spawn("bench-target", &mut target_cmd)?;
    target.wait_for(|l| l.starts_with("ready pid="), Duration::from_secs(20))?;
    let pid = target.pid();

    // A tracer elsewhere traces an idle bench-target of its own, which lives until this run ends.
    let (_elsewhere, pid, tracer) = match tracer {
        Tracer::Elsewhere(inner) => {
            let mut idle_cmd = Command::new(&bins.bench_target);
            idle_cmd.args(["calls", "--func", "push-rbp", "--iterations", "1", "--wait-stdin"]);
            let mut idle = Proc::spawn("idle bench-target", &mut idle_cmd)?;
            idle.wait_for(|l| l.starts_with("ready pid="), Duration::from_secs(20))?;
            let idle_pid = idle.pid();
            (Some(idle), idle_pid, &**inner)
        }
        _ => (None, pid, tracer),
    };
    // The first of a pair runs beside the measured one, from before it attaches until it is gone.
    let (first, tracer) = match tracer {
        Tracer::Pair(first, second) => {
            let first = tracer::attach(bins, first, pid, scratch, &format!("{label}-first"))?;
            (Some(first.context("the first tracer of a pair traces nothing")?), &**second)
        }
        _ => (None, tracer),
    };
    let Some(attached) = tracer::attach(bins, tracer, pid, scratch, label)? else {
        let result = if go { Some(go_and_wait(&mut target)?) } else { None };
        release(&mut target)?;
        return Ok(Outcome { target: result, ..Outcome::default() });
    };
    let mut outcome = Outcome { attach_s: Some(attached.attach_s), probes: attached.probes(), ..Outcome::default() };
    if go {
        measure_loop(&mut target, &attached, &mut outcome)?;
    }
    let Some(stopped) = attached.stop(detach_cap)? else {
        outcome.detach_over_s = detach_cap.map(|cap| cap.as_secs_f64());
        release(&mut target)?;
        return Ok(outcome);
    };
    outcome.detach_s = Some(stopped.detach_s);
    if let Some(first) = first {
        stop_first(first)?;
    }
    release(&mut target)?;
    outcome.export = stopped.export()?;
    outcome.tracer_output = stopped.output;
    Ok(outcome)
}

/// Starts the target's loop and reads its result, with the tracer's CPU, peak memory and (with
/// `kernel.bpf_stats_enabled`) its programs' runs during the loop.
fn measure_loop(target: &mut Proc, tracer: &Attached, outcome: &mut Outcome) -> Result<()> {
    let tracer_pid = tracer.pid();
    // Programs also run before the loop (perf-user's calibration): count the loop only.
    let stats_before = if sys::bpf_stats_enabled() { sys::prog_stats(tracer_pid) } else { Vec::new() };
    let cpu_before = sys::cpu_time_s(tracer_pid);
    let t0 = Instant::now();
    let result = go_and_wait(target)?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu_after = sys::cpu_time_s(tracer_pid);
    outcome.tracer_cpu_pct = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) if wall > 0.0 => Some((b - a).max(0.0) / wall * 100.0),
        _ => None,
    };
    outcome.tracer_vmhwm_kb = sys::vmhwm_kb(tracer_pid);
    outcome.target = Some(result);
    if sys::bpf_stats_enabled() {
        outcome.prog_stats = loop_prog_stats(&stats_before, sys::prog_stats(tracer_pid));
    }
    Ok(())
}

/// Each program's runs and ns per run between two `sys::prog_stats` readings. By program id;
/// perf-user's calibration holds copies of the same programs, so of each name the one that ran
/// most in the loop is kept.
fn loop_prog_stats(before: &[(u32, String, u64, u64)], after: Vec<(u32, String, u64, u64)>) -> Vec<(String, u64, f64)> {
    let mut stats: Vec<(String, u64, f64)> = Vec::new();
    for (id, name, runs, ns) in after {
        let (runs0, ns0) = before.iter().find(|b| b.0 == id).map_or((0, 0), |b| (b.2, b.3));
        let Some(runs) = runs.checked_sub(runs0).filter(|&r| r > 0) else { continue };
        if stats.iter().any(|s| s.0 == name && s.1 >= runs) {
            continue;
        }
        stats.retain(|s| s.0 != name);
        stats.push((name, runs, ns.saturating_sub(ns0) as f64 / runs as f64));
    }
    stats
}

/// Stops the first tracer of a pair: one that failed midway left its side of the pair untraced,
/// so the run has no result.
fn stop_first(first: Attached) -> Result<()> {
    let Some(stopped) = first.stop(None)? else { return Ok(()) };
    if !stopped.status.success() {
        bail!("the first tracer of the pair failed ({}):\n{}", stopped.status, tail(&stopped.output));
    }
    Ok(())
}

/// bench-target: start the loop and wait for its result line.
fn go_and_wait(target: &mut Proc) -> Result<TargetResult> {
    target.send_line("go").context("starting bench-target")?;
    let line = target.wait_for(|l| l.starts_with("calls="), RUN_TIMEOUT)?;
    parse_target_line(&line).with_context(|| format!("bench-target printed {line:?}"))
}

/// bench-target: close its stdin so it exits, and check it did.
fn release(target: &mut Proc) -> Result<()> {
    target.close_stdin();
    let status = target.finish(Duration::from_secs(10))?;
    if !status.success() {
        bail!("bench-target failed ({status}):\n{}", tail(&target.log));
    }
    Ok(())
}

fn parse_target_line(line: &str) -> Option<TargetResult> {
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some(TargetResult {
        calls: field("calls")? as u64,
        ns_per_call: field("ns_per_call")?,
        calls_per_sec: field("calls_per_sec")?,
        pair_ns: field("ns_per_call_first").zip(field("ns_per_call_twin")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_target_result_line() {
        let r = parse_target_line("calls=300000 elapsed_ns=787897699 ns_per_call=2626.33 calls_per_sec=380760")
            .unwrap_or_else(|| panic!("unparsed"));
        assert_eq!(r.calls, 300_000);
        assert!((r.ns_per_call - 2626.33).abs() < 1e-9);
        assert_eq!(r.pair_ns, None);
        assert!(parse_target_line("ready pid=5").is_none());
        let line =
            "calls=600 elapsed_ns=9 ns_per_call=1.5 calls_per_sec=6 ns_per_call_first=1.25 ns_per_call_twin=1.75";
        assert_eq!(parse_target_line(line).and_then(|r| r.pair_ns), Some((1.25, 1.75)));
    }
}
