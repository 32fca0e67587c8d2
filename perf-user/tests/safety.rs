//! The traced process must never be harmed, probes never left behind, numbers never lost.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use common::*;

const RISK: &str = "target_app::risk::RiskEngine::check";

/// target-app built with panic=unwind (`cargo build --profile release-unwind -p target-app`).
fn unwind_bin() -> PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release-unwind/target-app");
    assert!(p.exists(), "{} missing: cargo xtask test builds it", p.display());
    p
}

#[test]
fn panic_unwind_target_survives_injected_panics_under_default_behaviour() {
    if !bpf_available("panic_unwind_target_survives_injected_panics_under_default_behaviour") {
        return;
    }
    let dir = TempDir::new("unwind");
    let truth_path = dir.join("truth.json");
    let (mut child, _out) = spawn_ready(
        Command::new(unwind_bin())
            .args(["--hold", "--rate", "20000", "--messages", "20000", "--inject", "risk_check=panic:every:50"])
            .arg("--truth")
            .arg(&truth_path)
            .arg("--journal")
            .arg(dir.join("journal"))
            .stderr(std::process::Stdio::null()),
    );
    let pid = child.id();
    let export = dir.join("r.json");
    let mut pu = PerfUser::attach(pid, &["--func", RISK, "--export", export.to_str().unwrap()]);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGUSR2) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "target-app did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the traced panic=unwind target died: {status}");
    pu.wait(Duration::from_secs(30));
    let truth = read_json(&truth_path);
    let report = read_json(&export);
    let panics = u(&truth["pipeline"]["panics_caught"]);
    assert!(panics > 10, "too few injected panics: {panics}");
    let warnings = report["warnings"].as_array().expect("warnings[]");
    assert!(warnings.iter().any(|w| w.as_str().unwrap_or("").contains("unwind")), "{warnings:?}");
    // Entry-only still counts every call, including those that panicked (which the app's own
    // timer never finished).
    let f = function(&report, RISK);
    let t = function(&truth, RISK);
    assert_eq!(u(&f["calls"]), u(&t["count"]) + u(&t["injected_count"]));
    assert_eq!(u(&f["count"]), 0, "entry-only times nothing");
}

/// Program ids our perf-user process holds, from its fdinfo.
fn prog_ids(pid: u32) -> Vec<u32> {
    assert!(perf_user::target::proc::exists(pid), "perf-user (pid {pid}) is gone");
    perf_user::target::proc::bpf_prog_ids(pid)
}

fn prog_exists(id: u32) -> bool {
    Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn sigkill_of_perf_user_leaves_no_program_and_the_target_running() {
    let test = "sigkill_of_perf_user_leaves_no_program_and_the_target_running";
    if !bpf_available(test) || !tool_available(test, "bpftool", &["version"]) {
        return;
    }
    let dir = TempDir::new("sigkill");
    let app = TargetApp::start(&dir, &["--rate", "5000"]);
    let pu = PerfUser::attach(app.pid, &["--func", "target_app::*", "--syscalls"]);
    let ids = prog_ids(pu.child.id());
    assert!(ids.len() >= 6, "expected our programs in fdinfo, got {ids:?}");
    assert!(ids.iter().all(|&id| prog_exists(id)));
    pu.signal(libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids.iter().any(|&id| prog_exists(id)) {
        assert!(Instant::now() < deadline, "programs {ids:?} outlived perf-user");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The target goes on working: a truth snapshot shows messages still flowing.
    app.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    let before = u(&read_json(&app.truth)["messages_fed"]);
    std::thread::sleep(Duration::from_millis(500));
    app.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    let after = u(&read_json(&app.truth)["messages_fed"]);
    assert!(after > before, "target stalled after perf-user was killed ({before} → {after})");
    drop(pu);
}

#[test]
fn sigterm_detaches_and_still_writes_the_export() {
    if !bpf_available("sigterm_detaches_and_still_writes_the_export") {
        return;
    }
    let dir = TempDir::new("sigterm");
    let app = TargetApp::start(&dir, &["--rate", "5000"]);
    let export = dir.join("r.json");
    let mut pu = PerfUser::attach(app.pid, &["--func", "target_app::book::*", "--export", export.to_str().unwrap()]);
    let ids = prog_ids(pu.child.id());
    std::thread::sleep(Duration::from_millis(800));
    pu.signal(libc::SIGTERM);
    pu.wait(Duration::from_secs(20));
    let report = read_json(&export);
    assert_eq!(report["end_reason"], "signal");
    assert!(u(&function(&report, "target_app::book::OrderBook::apply")["count"]) > 0);
    // The kernel frees programs after an RCU grace period: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids.iter().any(|&id| prog_exists(id)) {
        assert!(Instant::now() < deadline, "programs {ids:?} left after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signal 0 only checks the process exists.
    assert_eq!(unsafe { libc::kill(app.pid as i32, 0) }, 0, "the target must outlive the tracer");
}

#[test]
fn overhead_guard_detaches_the_hottest_probes_and_says_so() {
    if !bpf_available("overhead_guard_detaches_the_hottest_probes_and_says_so") {
        return;
    }
    let dir = TempDir::new("guard");
    let app = TargetApp::start(&dir, &["--rate", "20000"]);
    let export = dir.join("r.json");
    let mut args = vec!["--export", export.to_str().unwrap(), "--max-overhead", "2", "--duration", "4s"];
    for s in STAGES {
        args.extend(["--func", s]);
    }
    let mut pu = PerfUser::attach(app.pid, &args);
    pu.wait(Duration::from_secs(60));
    let report = read_json(&export);
    let warnings: Vec<&str> = report["warnings"].as_array().unwrap().iter().filter_map(|w| w.as_str()).collect();
    assert!(warnings.iter().any(|w| w.contains("overhead guard: detached")), "{warnings:?}");
    let detached: Vec<&str> = report["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["probe"]["detached"] == true)
        .map(|f| f["symbol"].as_str().unwrap())
        .collect();
    assert!(!detached.is_empty(), "a function must be marked detached");
    assert!(detached.len() < STAGES.len() || warnings.len() >= STAGES.len(), "{detached:?}");
    // SAFETY: signal 0 only checks the process exists.
    assert_eq!(unsafe { libc::kill(app.pid as i32, 0) }, 0, "the target must be unharmed");
}

#[test]
fn target_exiting_during_attach_ends_cleanly_either_way() {
    if !bpf_available("target_exiting_during_attach_ends_cleanly_either_way") {
        return;
    }
    // The target lives ~150 ms; perf-user starts at various points of its life. Whatever the
    // timing: a clean run with the export saying the target exited, or one clear error line.
    for delay_ms in [0u64, 30, 80, 140] {
        let dir = TempDir::new("exit-attach");
        let mut app = Command::new(target_app_bin())
            .args(["--rate", "20000", "--duration", "0.15", "--journal"])
            .arg(dir.join("journal"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = app.id();
        // Reap it the moment it exits, as a real parent would: a zombie left around keeps the
        // kernel's uprobe teardown waiting.
        let reaper = std::thread::spawn(move || app.wait());
        std::thread::sleep(Duration::from_millis(delay_ms));
        let export = dir.join("r.json");
        let mut cmd = Command::new(PERF_USER);
        cmd.args(["attach", "--no-tui", "--pid", &pid.to_string()]);
        for s in STAGES {
            cmd.args(["--func", s]);
        }
        let out = cmd.arg("--export").arg(&export).stdin(std::process::Stdio::null()).output().unwrap();
        let _ = reaper.join();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "delay {delay_ms} ms: {stderr}");
        if out.status.success() {
            let report = read_json(&export);
            assert_eq!(report["end_reason"], "target-exited", "delay {delay_ms} ms");
        } else {
            let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
            assert_eq!(errors.len(), 1, "delay {delay_ms} ms: one clear error expected: {stderr}");
        }
    }
}

/// A target in another mount namespace (a container) is traced through /proc/PID/exe, and the
/// run says so on stderr and in the export instead of silently following it.
#[test]
fn target_in_another_mount_namespace_is_named() {
    if !bpf_available("target_in_another_mount_namespace_is_named") {
        return;
    }
    let dir = TempDir::new("mntns");
    // unshare(1) execs target-app in a new mount namespace: the child's pid is target-app's.
    let (mut child, _lines) = spawn_ready(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(target_app_bin())
            .args(["--hold", "--journal"])
            .arg(dir.join("journal"))
            .stderr(std::process::Stdio::null()),
    );
    let pid = child.id();
    let ours = perf_user::target::proc::namespace(std::process::id(), "mnt").unwrap();
    assert_ne!(perf_user::target::proc::namespace(pid, "mnt").unwrap(), ours, "unshare gave no new namespace");
    let export = dir.join("r.json");
    let out = Command::new(PERF_USER)
        .args(["attach", "--no-tui", "--pid", &pid.to_string(), "--func", "target_app::book::*", "--duration", "300ms"])
        .arg("--export")
        .arg(&export)
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("another mount namespace"), "{stderr}");
    let report = read_json(&export);
    let warnings = report["warnings"].as_array().expect("warnings[]");
    assert!(warnings.iter().any(|w| w.as_str().unwrap_or("").contains("another mount namespace")), "{warnings:?}");
}
