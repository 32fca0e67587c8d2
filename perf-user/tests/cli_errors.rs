//! Every bad input: one clear line on stderr, a non-zero exit, never a panic, never a harmed target.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::process::{Command, Output};

use common::*;

/// Runs perf-user to completion; a run that should have failed but hangs is killed and fails.
fn perf_user(args: &[&str]) -> Output {
    run_bounded(Command::new(PERF_USER).args(args))
}

fn run_bounded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let guard = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        // SAFETY: kill(2) of our child if it is still running after a minute.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let out = child.wait_with_output().expect("wait");
    drop(guard);
    assert!(
        out.status.code().is_some(),
        "perf-user {:?} hung or crashed: {:?}",
        cmd.get_args().collect::<Vec<_>>(),
        out.status
    );
    out
}

/// Asserts the one-line failure shape and returns the line.
fn fails_with(out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure, got {:?}; stderr: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error line expected, got: {stderr}");
    assert!(errors[0].contains(needle), "expected {needle:?} in: {stderr}");
    errors[0].to_string()
}

/// A target-app that feeds nothing (held): for errors that need a live process but no BPF.
fn idle_target(dir: &TempDir) -> TargetApp {
    TargetApp::start(dir, &["--hold"])
}

#[test]
fn pid_that_does_not_exist() {
    fails_with(&perf_user(&["attach", "--pid", "999999999", "--func", "x"]), "no such process");
    fails_with(&perf_user(&["attach", "--pid=-3", "--func", "x"]), "not a valid process id");
    fails_with(&perf_user(&["attach", "--pid", "abc", "--func", "x"]), "invalid value");
}

#[test]
fn glob_matching_nothing_names_close_matches() {
    let dir = TempDir::new("noglob");
    let app = idle_target(&dir);
    let line = fails_with(
        &perf_user(&["attach", "--pid", &app.pid.to_string(), "--func", "*OrderBook::aply"]),
        "matches no function",
    );
    assert!(line.contains("close matches") && line.contains("OrderBook::apply"), "{line}");
    // Regression: a misspelt type suggested `pipeline::run_engine` first, not `RiskEngine::check`.
    let line = fails_with(
        &perf_user(&["attach", "--pid", &app.pid.to_string(), "--func", "target_app::risk::Risk_Engine*"]),
        "matches no function",
    );
    let matches = line.split("close matches: ").nth(1).unwrap_or_default();
    assert!(matches.starts_with("target_app::risk::RiskEngine::check"), "{line}");
}

#[test]
fn a_bad_baseline_is_refused_before_attaching() {
    let dir = TempDir::new("baseline");
    let app = idle_target(&dir);
    let pid = app.pid.to_string();
    let attach =
        |baseline: &str| perf_user(&["attach", "--pid", &pid, "--func", "target_app::book::*", "--baseline", baseline]);
    fails_with(&attach("/nonexistent-dir/base.json"), "--baseline");
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    let line = fails_with(&attach(garbage.to_str().unwrap()), "--baseline");
    assert!(line.contains("not a perf-ebpf report"), "{line}");
}

#[test]
fn invalid_durations_addresses_and_counts() {
    let dir = TempDir::new("badargs");
    let app = idle_target(&dir);
    let pid = app.pid.to_string();
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--duration", "soon"]), "--duration");
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--interval", "0s"]), "--interval");
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--slow", "fast"]), "--slow");
    fails_with(&perf_user(&["attach", "--pid", &pid]), "nothing to trace");
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "0x1"]), "not the start of a function");
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "target_app::*", "--max-funcs", "2"]), "--max-funcs");
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--sample", "0"]), "--sample");
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--sample=-1"]), "--sample");
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--sample", "10", "--entry-only"]), "--entry-only");
    fails_with(
        &perf_user(&["attach", "--pid", &pid, "--func", "x", "--sample", "10", "--attach-mode", "single"]),
        "--attach-mode single",
    );
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--latency-only", "--entry-only"]), "--entry-only");
    fails_with(
        &perf_user(&["attach", "--pid", &pid, "--func", "x", "--latency-only", "--attach-mode", "multi"]),
        "--attach-mode multi",
    );
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--latency-only", "--per-thread"]), "--per-thread");
    // The syscall table needs the syscall tracepoints that --blocked-syscalls-only leaves off.
    for other in ["--syscalls", "--latency-only", "--entry-only"] {
        fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "x", "--blocked-syscalls-only", other]), other);
    }
}

#[test]
fn unwritable_export_path_is_refused_before_attaching() {
    let dir = TempDir::new("export");
    let app = idle_target(&dir);
    let out = perf_user(&[
        "attach",
        "--pid",
        &app.pid.to_string(),
        "--func",
        "target_app::book::*",
        "--export",
        "/nonexistent-dir/run.json",
    ]);
    fails_with(&out, "/nonexistent-dir/run.json");
}

#[test]
fn without_privileges_one_line_names_what_is_needed() {
    let dir = TempDir::new("nopriv");
    let app = idle_target(&dir);
    // Drop to nobody with no capabilities (util-linux setpriv); when we are not root we already lack them.
    // SAFETY: geteuid(2) has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let pid = app.pid.to_string();
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", PERF_USER]);
        c
    } else {
        Command::new(PERF_USER)
    };
    // Symbols of another user's process are unreadable too; either way one clear line.
    let out = run_bounded(cmd.args(["attach", "--pid", &pid, "--func", "target_app::book::*"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("root") || stderr.contains("ermission"), "{stderr}");
}

/// perf-user run against an idle target with one environment variable pointing at a simulated
/// kernel; it must fail with one line containing `needle`.
fn fails_on_simulated_kernel(test: &str, env: (&str, &str), extra: &[&str], needle: &str) {
    if !bpf_available(test) {
        return;
    }
    let dir = TempDir::new(test);
    let app = idle_target(&dir);
    let pid = app.pid.to_string();
    let mut args = vec!["attach", "--pid", &pid, "--func", "target_app::book::*"];
    args.extend_from_slice(extra);
    fails_with(&run_bounded(Command::new(PERF_USER).env(env.0, env.1).args(args)), needle);
}

#[test]
fn kernel_without_btf_is_one_line() {
    fails_on_simulated_kernel("kernel_without_btf_is_one_line", ("PERF_USER_BTF", "/nonexistent/vmlinux"), &[], "BTF");
}

/// Without uprobe_multi (kernels before 6.6) perf-user needs the uprobe PMU; a kernel without
/// uprobes has neither. Simulated with another sysfs root and the perf-event attach path.
#[test]
fn kernel_without_uprobes_is_one_line() {
    fails_on_simulated_kernel(
        "kernel_without_uprobes_is_one_line",
        ("PERF_USER_SYSFS", "/nonexistent"),
        &["--attach-mode", "single"],
        "no uprobe support",
    );
}

/// A kernel without `bpf_session_cookie` (before 6.13), simulated with a copy of this kernel's BTF
/// in which the kfunc's name is changed: `--latency-only` (and the benchmarks' `--probe-mode clock`)
/// is refused in one line, and the object
/// (whose cookie call then becomes `r0 = 0`) still loads and traces in the default mode.
#[test]
fn kernel_without_session_cookie() {
    if !bpf_available("kernel_without_session_cookie") {
        return;
    }
    let dir = TempDir::new("no-cookie");
    let path = btf_without_kfunc(&dir, "bpf_session_cookie");
    fails_on_simulated_kernel(
        "kernel_without_session_cookie",
        ("PERF_USER_BTF", path.to_str().unwrap()),
        &["--latency-only"],
        "--latency-only needs uprobe session cookies",
    );
    // The benchmarks' clock floor keeps the entry time in the cookie too.
    fails_on_simulated_kernel(
        "kernel_without_session_cookie",
        ("PERF_USER_BTF", path.to_str().unwrap()),
        &["--probe-mode", "clock"],
        "--probe-mode clock needs uprobe session cookies",
    );
    let app = idle_target(&dir);
    let out = run_bounded(Command::new(PERF_USER).env("PERF_USER_BTF", &path).args([
        "attach",
        "--no-tui",
        "--duration",
        "1s",
        "--pid",
        &app.pid.to_string(),
        "--func",
        "target_app::book::*",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("attached"), "{stdout}");
}

/// A target-app binary (e.g. a stripped copy) started with `--hold`, once it is ready.
fn spawn_held(binary: &std::path::Path, journal: &std::path::Path) -> std::process::Child {
    spawn_ready(Command::new(binary).args(["--hold", "--journal"]).arg(journal)).0
}

#[test]
fn stripped_binary_needs_symbols_and_works_with_them() {
    let dir = TempDir::new("stripped");
    let stripped = dir.join("target-app-stripped");
    let ok = Command::new("strip").arg("-o").arg(&stripped).arg(target_app_bin()).status().is_ok_and(|s| s.success());
    assert!(ok, "strip(1) failed");
    let mut child = spawn_held(&stripped, &dir.join("journal"));
    let pid = child.id().to_string();
    fails_with(&perf_user(&["attach", "--pid", &pid, "--func", "target_app::book::*"]), "stripped");
    if bpf_available("stripped_binary_needs_symbols_and_works_with_them") {
        let original = target_app_bin();
        let out = perf_user(&[
            "attach",
            "--no-tui",
            "--pid",
            &pid,
            "--func",
            "target_app::book::*",
            "--symbols",
            original.to_str().unwrap(),
            "--duration",
            "300ms",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("attached") && stdout.contains("target_app::book::OrderBook::apply"), "{stdout}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn report_of_bad_files() {
    let dir = TempDir::new("report");
    fails_with(&perf_user(&["report", "/nonexistent.json"]), "cannot read");
    let junk = dir.join("junk.json");
    std::fs::write(&junk, "{not json").unwrap();
    fails_with(&perf_user(&["report", junk.to_str().unwrap()]), "not a perf-ebpf report");
    let other = dir.join("other.json");
    std::fs::write(&other, r#"{"schema":"something/v9"}"#).unwrap();
    fails_with(&perf_user(&["report", other.to_str().unwrap()]), "schema");
}

#[test]
fn closed_stdout_pipe_is_success() {
    let dir = TempDir::new("pipe");
    let report = dir.join("r.json");
    std::fs::write(&report, r#"{"schema":"perf-ebpf/v1","target":{"pid":1,"exe":"x"},"duration_ns":1,"functions":[]}"#)
        .unwrap();
    let mut child = Command::new(PERF_USER)
        .args(["report", report.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// A stripped binary whose `.gnu_debuglink` names a debug file beside it needs no `--symbols`.
#[test]
fn stripped_binary_finds_its_debug_file_by_debuglink() {
    let dir = TempDir::new("debuglink");
    let debug = dir.join("target-app.debug");
    let stripped = dir.join("target-app-linked");
    let run = |cmd: &mut Command| cmd.status().is_ok_and(|s| s.success());
    assert!(run(Command::new("objcopy").arg("--only-keep-debug").arg(target_app_bin()).arg(&debug)), "objcopy");
    assert!(run(Command::new("strip").arg("-o").arg(&stripped).arg(target_app_bin())), "strip");
    // objcopy records the debug file's name (not its path) and its CRC in the stripped binary.
    assert!(
        run(Command::new("objcopy").current_dir(&dir.0).arg("--add-gnu-debuglink=target-app.debug").arg(&stripped)),
        "objcopy --add-gnu-debuglink"
    );
    if !bpf_available("stripped_binary_finds_its_debug_file_by_debuglink") {
        return;
    }
    let mut child = spawn_held(&stripped, &dir.join("journal"));
    let pid = child.id().to_string();
    let out = perf_user(&["attach", "--no-tui", "--pid", &pid, "--func", "target_app::book::*", "--duration", "300ms"]);
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("target_app::book::OrderBook::apply"), "{stdout}");
    // Moved away, the debug file is not found: the binary is stripped again.
    std::fs::rename(&debug, dir.join("elsewhere.debug")).unwrap();
    let mut child = spawn_held(&stripped, &dir.join("journal2"));
    let out = perf_user(&["attach", "--pid", &child.id().to_string(), "--func", "target_app::book::*"]);
    let _ = child.kill();
    let _ = child.wait();
    fails_with(&out, "stripped");
}
