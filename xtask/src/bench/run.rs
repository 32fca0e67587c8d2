//! One measurement: bench-target under one tracer, driven in lock step over pipes (target ready →
//! tracer attached → go → result → tracer stopped → target released); every process is killed on
//! any error, so a failed run never leaves probes or targets behind.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError, Sender},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::sys;

/// How long a tracer may take to attach (bpftrace compiles its script first; 1,000 functions).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a tracer may take to stop and write its report once interrupted.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest measured loop (strace's ptrace stops are the slowest case).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Paths of the binaries a run may start.
pub struct Bins {
    pub perf_user: PathBuf,
    /// Appended to every `perf-user attach` (e.g. turning its overhead guard off).
    pub perf_user_args: Vec<String>,
    pub bench_target: PathBuf,
    pub bpftrace: Option<PathBuf>,
    pub strace: Option<PathBuf>,
}

/// What traces the target during a run.
#[derive(Clone, Debug)]
pub enum Tracer {
    None,
    /// `perf-user attach --pid P --no-tui --export FILE` followed by these arguments.
    PerfUser(Vec<String>),
    /// `bpftrace -B line -p P -e SCRIPT`; `{pid}` in the script becomes the target's pid. A
    /// `BEGIN` probe printing `READY` is added: bpftrace fires it after every probe is attached.
    Bpftrace(String),
    /// `strace -c -f -p P -o FILE`.
    Strace,
    /// Two tracers at once (`bench-target pair`: the first on a function, the second on its
    /// twin), attached in that order and stopped in the reverse one. The outcome's tracer
    /// figures (attach time, CPU, export) are the second's.
    Pair(Box<Tracer>, Box<Tracer>),
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

    let export_path = scratch.join(format!("{label}.json"));
    let _ = std::fs::remove_file(&export_path);
    // The first of a pair runs beside the measured one, from before it attaches until it is gone.
    let (first, tracer) = match tracer {
        Tracer::Pair(first, second) => {
            let first_export = scratch.join(format!("{label}-first.json"));
            let Some((cmd, ready)) =
                tracer_command(bins, first, pid, &first_export, scratch, &format!("{label}-first"))?
            else {
                bail!("the first tracer of a pair traces nothing");
            };
            (Some(start_tracer(first, cmd, ready)?.0), &**second)
        }
        _ => (None, tracer),
    };
    let Some((cmd, ready)) = tracer_command(bins, tracer, pid, &export_path, scratch, label)? else {
        let result = if go { Some(target.go_and_wait()?) } else { None };
        target.release()?;
        return Ok(Outcome { target: result, ..Outcome::default() });
    };
    let started = Instant::now();
    let (mut tracer_proc, ready_line) = start_tracer(tracer, cmd, ready)?;
    let mut outcome = Outcome {
        attach_s: Some(started.elapsed().as_secs_f64()),
        probes: ready_line.strip_prefix("attached ").and_then(|r| r.split_whitespace().next()?.parse().ok()),
        ..Outcome::default()
    };
    let tracer_pid = tracer_proc.pid();

    if go {
        // Programs also run before the loop (perf-user's calibration): count the loop only.
        let stats_before = if sys::bpf_stats_enabled() { sys::prog_stats(tracer_pid) } else { Vec::new() };
        let cpu_before = sys::cpu_time_s(tracer_pid);
        let t0 = Instant::now();
        let result = target.go_and_wait()?;
        let wall = t0.elapsed().as_secs_f64();
        let cpu_after = sys::cpu_time_s(tracer_pid);
        outcome.tracer_cpu_pct = match (cpu_before, cpu_after) {
            (Some(a), Some(b)) if wall > 0.0 => Some((b - a).max(0.0) / wall * 100.0),
            _ => None,
        };
        outcome.tracer_vmhwm_kb = sys::vmhwm_kb(tracer_pid);
        outcome.target = Some(result);
        if sys::bpf_stats_enabled() {
            // By program id; perf-user's calibration holds copies of the same programs, so of
            // each name the one that ran most in the loop is kept.
            let mut stats: Vec<(String, u64, f64)> = Vec::new();
            for (id, name, runs, ns) in sys::prog_stats(tracer_pid) {
                let (runs0, ns0) = stats_before.iter().find(|b| b.0 == id).map_or((0, 0), |b| (b.2, b.3));
                let Some(runs) = runs.checked_sub(runs0).filter(|&r| r > 0) else { continue };
                if stats.iter().any(|s| s.0 == name && s.1 >= runs) {
                    continue;
                }
                stats.retain(|s| s.0 != name);
                stats.push((name, runs, ns.saturating_sub(ns0) as f64 / runs as f64));
            }
            outcome.prog_stats = stats;
        }
    }

    let stop = Instant::now();
    sys::interrupt(tracer_pid);
    if let Some(cap) = detach_cap
        && !tracer_proc.exited_within(cap)?
    {
        outcome.detach_over_s = Some(cap.as_secs_f64());
        eprintln!(
            "bench: the tracer (pid {tracer_pid}) is still detaching after {cap:?}; it finishes in the background"
        );
        // Dropping it kills and reaps it; the kernel may take minutes to unregister its probes.
        thread::spawn(move || drop(tracer_proc));
        target.release()?;
        return Ok(outcome);
    }
    let status = tracer_proc.finish(STOP_TIMEOUT)?;
    outcome.detach_s = Some(stop.elapsed().as_secs_f64());
    if let Some(mut first) = first {
        // A first tracer that failed midway left its side of the pair untraced: no result.
        sys::interrupt(first.pid());
        let status = first.finish(STOP_TIMEOUT)?;
        if !status.success() {
            first.drain(Duration::from_secs(5));
            bail!("the first tracer of the pair failed ({status}):\n{}", tail(&first.log));
        }
    }
    tracer_proc.drain(Duration::from_secs(5));
    outcome.tracer_output = std::mem::take(&mut tracer_proc.log);
    // Kept next to the reports, for reading a surprising number later.
    let _ = std::fs::write(scratch.join(format!("{label}.log")), outcome.tracer_output.join("\n"));
    target.release()?;

    if let Tracer::PerfUser(_) = tracer {
        let text = std::fs::read_to_string(&export_path).with_context(|| {
            format!(
                "perf-user ({status}) wrote no report {}; its output:\n{}",
                export_path.display(),
                tail(&outcome.tracer_output)
            )
        })?;
        outcome.export =
            Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", export_path.display()))?);
    }
    Ok(outcome)
}

/// Recognises a tracer's line saying it has attached.
type Ready = fn(&str) -> bool;

/// The command that starts `tracer` on `pid` and the test of its "attached" line; `None` for
/// `Tracer::None`.
fn tracer_command(
    bins: &Bins,
    tracer: &Tracer,
    pid: u32,
    export_path: &Path,
    scratch: &Path,
    label: &str,
) -> Result<Option<(Command, Ready)>> {
    Ok(Some(match tracer {
        Tracer::None => return Ok(None),
        Tracer::PerfUser(args) => {
            let mut c = Command::new(&bins.perf_user);
            c.args(["attach", "--pid", &pid.to_string(), "--no-tui", "--export"]).arg(export_path);
            c.args(args).args(&bins.perf_user_args);
            (c, |l| l.starts_with("attached "))
        }
        Tracer::Bpftrace(script) => {
            let bin = bins.bpftrace.as_ref().context("bpftrace is not installed")?;
            let script = format!("BEGIN {{ printf(\"READY\\n\"); }}\n{}", script.replace("{pid}", &pid.to_string()));
            let mut c = Command::new(bin);
            c.args(["-B", "line", "-p", &pid.to_string(), "-e", &script]);
            (c, |l| l.trim() == "READY")
        }
        Tracer::Strace => {
            let bin = bins.strace.as_ref().context("strace is not installed")?;
            let mut c = Command::new(bin);
            c.args(["-c", "-f", "-p", &pid.to_string(), "-o"]).arg(scratch.join(format!("{label}.strace")));
            (c, |l| l.contains("attached"))
        }
        Tracer::Pair(..) => bail!("a pair of tracers cannot be one of a pair"),
    }))
}

/// Starts a tracer and waits for its "attached" line.
fn start_tracer(tracer: &Tracer, mut cmd: Command, ready: Ready) -> Result<(Proc, String)> {
    let mut proc = Proc::spawn(&format!("{tracer:?}").chars().take(60).collect::<String>(), &mut cmd)?;
    let line = proc.wait_for(ready, ATTACH_TIMEOUT)?;
    Ok((proc, line))
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A child process whose stdout and stderr arrive as lines on one channel; killed when dropped.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: Vec<String>,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command) -> Result<Proc> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            forward_lines(out, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, tx);
        }
        Ok(Proc { name: name.to_string(), stdin: child.stdin.take(), child, lines: rx, log: Vec::new() })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line satisfying `pred`, keeping every line seen in `log`.
    fn wait_for(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if pred(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("{}: nothing expected after {timeout:?}; output so far:\n{}", self.name, tail(&self.log))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    bail!("{} exited ({status}) early; its output:\n{}", self.name, tail(&self.log))
                }
            }
        }
    }

    /// bench-target: start the loop and wait for its result line.
    fn go_and_wait(&mut self) -> Result<TargetResult> {
        let stdin = self.stdin.as_mut().context("bench-target's stdin is closed")?;
        stdin.write_all(b"go\n").and_then(|()| stdin.flush()).context("starting bench-target")?;
        let line = self.wait_for(|l| l.starts_with("calls="), RUN_TIMEOUT)?;
        parse_target_line(&line).with_context(|| format!("bench-target printed {line:?}"))
    }

    /// bench-target: close its stdin so it exits, and check it did.
    fn release(&mut self) -> Result<()> {
        self.stdin = None;
        let status = self.finish(Duration::from_secs(10))?;
        if !status.success() {
            bail!("bench-target failed ({status}):\n{}", tail(&self.log));
        }
        Ok(())
    }

    /// Whether the process exits within `timeout` (it is left running otherwise).
    fn exited_within(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(self.child.try_wait()?.is_some())
    }

    /// Waits for the process to exit, killing it after `timeout`.
    fn finish(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let status = self.child.wait()?;
                bail!("{} did not exit within {timeout:?} and was killed ({status})", self.name);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Collects the lines still in flight after exit.
    fn drain(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.log.push(line);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward_lines(stream: impl Read + Send + 'static, tx: Sender<String>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
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
