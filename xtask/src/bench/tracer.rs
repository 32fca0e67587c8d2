//! The tracers a run can put on a process (perf-user, bpftrace, strace, or two at once): how each
//! is started on a pid, when it counts as attached, and how it is stopped and its report read.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    proc::{Proc, tail},
    run::Bins,
    sys,
};

/// How long a tracer may take to attach (bpftrace compiles its script first; 1,000 functions).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a tracer may take to stop and write its report once interrupted.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The tracer on another, idle bench-target instead of the measured one: what a process pays
    /// for a tracer that does not trace it (system-wide tracepoints run on its syscalls too).
    Elsewhere(Box<Tracer>),
}

impl Tracer {
    /// perf-user on the functions `func` matches, with `extra` flags.
    pub fn perf_user(func: &str, extra: &[&str]) -> Tracer {
        let args = ["--func", func].iter().chain(extra).map(|s| (*s).to_string()).collect();
        Tracer::PerfUser(args)
    }
}

/// A tracer that has said it is attached.
pub struct Attached {
    proc: Proc,
    /// Start to the "attached" line.
    pub attach_s: f64,
    /// The "attached" line itself.
    pub ready_line: String,
    export_path: Option<PathBuf>,
    log_path: PathBuf,
}

/// A tracer that has exited.
pub struct Stopped {
    pub status: ExitStatus,
    /// SIGINT to exit.
    pub detach_s: f64,
    /// Its stdout and stderr, interleaved.
    pub output: Vec<String>,
    export_path: Option<PathBuf>,
}

/// Starts `tracer` on `pid` and waits for it to say it is attached; `None` for `Tracer::None`.
/// Its files (`LABEL.json`, `LABEL.log`, `LABEL.strace`) go to `scratch`.
pub fn attach(bins: &Bins, tracer: &Tracer, pid: u32, scratch: &Path, label: &str) -> Result<Option<Attached>> {
    let export_path = scratch.join(format!("{label}.json"));
    let _ = std::fs::remove_file(&export_path);
    let Some((mut cmd, ready)) = command(bins, tracer, pid, &export_path, scratch, label)? else {
        return Ok(None);
    };
    let started = Instant::now();
    let mut proc = Proc::spawn(&format!("{tracer:?}").chars().take(60).collect::<String>(), &mut cmd)?;
    let ready_line = proc.wait_for(ready, ATTACH_TIMEOUT)?;
    Ok(Some(Attached {
        proc,
        attach_s: started.elapsed().as_secs_f64(),
        ready_line,
        export_path: matches!(tracer, Tracer::PerfUser(_)).then_some(export_path),
        log_path: scratch.join(format!("{label}.log")),
    }))
}

impl Attached {
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The `N` of perf-user's `attached N probes` line.
    pub fn probes(&self) -> Option<u64> {
        self.ready_line.strip_prefix("attached ").and_then(|r| r.split_whitespace().next()?.parse().ok())
    }

    /// SIGINT, then waits for the exit (killing the tracer after `STOP_TIMEOUT`). With `cap`, a
    /// tracer still detaching after that long is left to finish in the background (the kernel
    /// unregisters uprobes one grace period at a time): `None`.
    pub fn stop(mut self, cap: Option<Duration>) -> Result<Option<Stopped>> {
        let stop = Instant::now();
        let pid = self.pid();
        sys::interrupt(pid);
        if let Some(cap) = cap
            && !self.proc.exited_within(cap)?
        {
            eprintln!("bench: the tracer (pid {pid}) is still detaching after {cap:?}; it finishes in the background");
            // Dropping it kills and reaps it; the kernel may take minutes to unregister its probes.
            thread::spawn(move || drop(self.proc));
            return Ok(None);
        }
        let status = self.proc.finish(STOP_TIMEOUT)?;
        let detach_s = stop.elapsed().as_secs_f64();
        self.proc.drain(Duration::from_secs(5));
        let output = std::mem::take(&mut self.proc.log);
        // Kept next to the reports, for reading a surprising number later.
        let _ = std::fs::write(&self.log_path, output.join("\n"));
        Ok(Some(Stopped { status, detach_s, output, export_path: self.export_path }))
    }
}

impl Stopped {
    /// perf-user's `--export` report; `None` for other tracers.
    pub fn export(&self) -> Result<Option<serde_json::Value>> {
        let Some(path) = &self.export_path else { return Ok(None) };
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "perf-user ({}) wrote no report {}; its output:\n{}",
                self.status,
                path.display(),
                tail(&self.output)
            )
        })?;
        Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?))
    }
}

/// The flags the harness adds to every `perf-user attach`, less those the run sets itself (a run
/// that gives `--max-overhead` measures the guard, which the harness otherwise turns off).
fn harness_flags<'a>(harness: &'a [String], run: &[String]) -> Vec<&'a String> {
    let mut out = Vec::new();
    let mut flags = harness.iter().peekable();
    while let Some(flag) = flags.next() {
        let value = flags.next_if(|v| !v.starts_with("--"));
        if run.contains(flag) {
            continue;
        }
        out.push(flag);
        out.extend(value);
    }
    out
}

/// Recognises a tracer's line saying it has attached.
type Ready = fn(&str) -> bool;

/// The command that starts `tracer` on `pid` and the test of its "attached" line; `None` for
/// `Tracer::None`.
fn command(
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
            c.args(args).args(harness_flags(&bins.perf_user_args, args));
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
        Tracer::Elsewhere(..) => bail!("a tracer elsewhere is started by `run_once`"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_sets_a_harness_flag_keeps_its_own_value() {
        let harness: Vec<String> = ["--max-overhead", "1000", "--no-calibrate"].map(String::from).to_vec();
        let run: Vec<String> = ["--func", "x", "--max-overhead", "25"].map(String::from).to_vec();
        assert_eq!(harness_flags(&harness, &run), vec!["--no-calibrate"]);
        assert_eq!(harness_flags(&harness, &[]), harness.iter().collect::<Vec<_>>());
    }
}
