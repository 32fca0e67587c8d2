//! `cargo xtask stress-tests`: the attribution and interference tests, N times in a row, with
//! `stress-ng --cpu 2` competing for the CPUs: the busy machine they must hold on (issue 17).

use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{build_ebpf, build_host_release, cargo, setup, status, workspace_root};

/// The integration tests whose numbers a busy machine disturbs most; `--tests` names others
/// (guard, soak) when a change moves their numbers.
pub const DEFAULT_TESTS: [&str; 2] = ["attribution", "interference"];

/// stress-ng, stopped (with its workers) when dropped, on every path out.
struct Stressor(Child);

impl Stressor {
    fn start(cpus: u32) -> Result<Stressor> {
        let child = Command::new("stress-ng")
            .args(["--cpu", &cpus.to_string(), "--timeout", "0", "--quiet"])
            .stdout(Stdio::null())
            .spawn()
            .context("cannot run stress-ng (install it: apt-get install stress-ng)")?;
        Ok(Stressor(child))
    }
}

impl Drop for Stressor {
    fn drop(&mut self) {
        // SIGTERM: stress-ng then stops its own workers (SIGKILL would orphan them).
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill(2) on the child we started and have not yet waited for.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.0.wait();
    }
}

/// `cargo test` of the stress tests; `build_only`: compile them, run nothing.
fn test_command(tests: &[String], build_only: bool) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.args(["test", "--release", "-p", "perf-user"]);
    for t in tests {
        cmd.args(["--test", t]);
    }
    if build_only {
        cmd.arg("--no-run");
    } else {
        // One test at a time: each traces a target-app of its own and compares timing.
        cmd.args(["--", "--test-threads=1"]);
    }
    cmd.env("CI", "true").current_dir(workspace_root());
    cmd
}

pub fn run(runs: u32, cpus: u32, tests: &[String]) -> Result<()> {
    if let Some(bad) =
        tests.iter().find(|t| !workspace_root().join("perf-user/tests").join(format!("{t}.rs")).is_file())
    {
        bail!("--tests: no integration test file perf-user/tests/{bad}.rs");
    }
    let tc = setup()?;
    build_ebpf(&tc)?;
    build_host_release()?;
    // Built once, before the load starts.
    status(&mut test_command(tests, true)).context("building the tests")?;
    let _stress = Stressor::start(cpus)?;
    let mut failed = Vec::new();
    for run in 1..=runs {
        eprintln!("xtask: stress run {run} of {runs} ({} tests, stress-ng --cpu {cpus})", tests.join(" + "));
        if status(&mut test_command(tests, false)).is_err() {
            failed.push(run);
        }
    }
    if !failed.is_empty() {
        bail!("{} of {runs} runs failed under stress-ng --cpu {cpus}: runs {failed:?}", failed.len());
    }
    eprintln!("xtask: {runs} of {runs} runs passed under stress-ng --cpu {cpus}");
    Ok(())
}
