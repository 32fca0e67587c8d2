//! `perf-user run -- CMD`: CMD is traced from its first call (counts equal target-app's truth
//! exactly), perf-user ends with CMD's status, a bad command fails in one line, and a SIGINT sent
//! to perf-user reaches CMD.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    process::{Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use common::*;

/// `perf-user run --no-tui ARGS -- CMD…`, to its end.
fn run(args: &[&str], cmd: &[&str]) -> Output {
    Command::new(PERF_USER)
        .args(["run", "--no-tui", "--max-overhead", "1000"])
        .args(args)
        .arg("--")
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("spawn perf-user")
}

fn stage_args(export: &str) -> Vec<String> {
    let mut args = vec!["--export".to_string(), export.to_string()];
    for s in STAGES {
        args.extend(["--func".to_string(), s.to_string()]);
    }
    args
}

/// Every stage's count in the export equals target-app's own.
fn assert_counts_equal_truth(report: &serde_json::Value, truth: &serde_json::Value, what: &str) {
    for stage in STAGES {
        let ours = u(&function(report, stage)["calls"]);
        let theirs = u(&function(truth, stage)["count"]);
        assert_eq!(ours, theirs, "{what}: {stage}: perf-user counted {ours}, target-app {theirs}");
    }
}

/// target-app started by perf-user is traced from its first message to its last: every count
/// equals its truth, in every attach mode and sampled, and perf-user exits with its status.
#[test]
fn run_traces_every_message_from_the_first() {
    if !bpf_available("run_traces_every_message_from_the_first") {
        return;
    }
    let app = target_app_bin();
    for extra in [&[][..], &["--attach-mode", "multi"], &["--attach-mode", "single"], &["--sample", "10"]] {
        let dir = TempDir::new("run");
        let (export, truth, journal) = (dir.join("report.json"), dir.join("truth.json"), dir.join("journal"));
        let mut args = stage_args(export.to_str().unwrap());
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let cmd = [
            app.to_str().unwrap(),
            "--messages",
            "20000",
            "--rate",
            "20000",
            "--truth",
            truth.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
        ];
        let out = run(&args, &cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: perf-user ended with {}: {stderr}", out.status);
        let (report, truth) = (read_json(&export), read_json(&truth));
        assert_counts_equal_truth(&report, &truth, &format!("{extra:?}"));
        assert_eq!(u(&function(&truth, STAGES[0])["count"]), 20_000);
        // CMD's own execve is no exec away from the target: the run ends at its exit.
        assert_eq!(report["end_reason"], "target-exited", "{extra:?}");
        assert_eq!(report["target"]["comm"], "target-app");
        assert_eq!(report["target"]["exe"], std::fs::canonicalize(&app).unwrap().display().to_string());
    }
}

#[test]
fn perf_user_exits_with_the_status_of_its_command() {
    if !bpf_available("perf_user_exits_with_the_status_of_its_command") {
        return;
    }
    let out = run(&["--syscalls"], &["sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // Killed by a signal: 128 + its number, as shells say.
    let out = run(&["--syscalls"], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A command that is not there or cannot run: one line, a shell's status, nothing started.
#[test]
fn a_bad_command_fails_in_one_line() {
    if !bpf_available("a_bad_command_fails_in_one_line") {
        return;
    }
    let dir = TempDir::new("run-bad");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    for (cmd, status, says) in [
        ("perf-user-no-such-command", 127, "perf-user-no-such-command: command not found"),
        ("/no/such/dir/cmd", 127, "/no/such/dir/cmd: command not found"),
        (plain.to_str().unwrap(), 126, "not an executable file"),
    ] {
        let out = run(&["--syscalls"], &[cmd]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{cmd}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{cmd}: one line: {stderr}");
        assert!(stderr.starts_with("perf-user: error: ") && stderr.contains(says), "{cmd}: {stderr}");
        assert!(out.stdout.is_empty(), "{cmd}: nothing traced: {}", String::from_utf8_lossy(&out.stdout));
    }
}

/// SIGINT sent to perf-user goes to CMD: target-app drains, writes its truth and exits 0, and
/// only then does perf-user finish, with every call counted.
#[test]
fn sigint_to_perf_user_reaches_the_command() {
    if !bpf_available("sigint_to_perf_user_reaches_the_command") {
        return;
    }
    let dir = TempDir::new("run-sigint");
    let (export, truth, journal) = (dir.join("report.json"), dir.join("truth.json"), dir.join("journal"));
    let app = target_app_bin();
    let mut child = Command::new(PERF_USER)
        .args(["run", "--no-tui", "--max-overhead", "1000"])
        .args(stage_args(export.to_str().unwrap()))
        .arg("--")
        .arg(&app)
        .args(["--rate", "5000", "--truth", truth.to_str().unwrap(), "--journal", journal.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn perf-user");
    // target-app shares perf-user's stdout: its `ready` line says it runs (and is traced).
    let lines = Lines::new(child.stdout.take().unwrap());
    lines.wait_for("ready pid=", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = wait(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "perf-user ended with {status}");
    // target-app writes its truth only when SIGINT (or SIGTERM) made it stop.
    let (report, truth) = (read_json(&export), read_json(&truth));
    assert!(u(&function(&truth, STAGES[0])["count"]) > 0, "target-app fed nothing");
    assert_counts_equal_truth(&report, &truth, "after SIGINT");
    assert_eq!(report["end_reason"], "target-exited");
}

fn wait(child: &mut std::process::Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("perf-user did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
