//! The overhead guard against a C fixture compiled here that counts its own calls: detaching the
//! function that costs too much loses no call of any other function, in every attach mode.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use common::*;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/guard_detach.c");

/// The fixture built as a user would build it, in `dir`; panics unless each function starts with
/// the probe site the test counts on (`push rbp`, emulated, but `gd_stepped`'s `lea`).
fn build_fixture(dir: &TempDir) -> PathBuf {
    let exe = dir.join("guard_detach");
    // -fcf-protection=none: with CET every function would start with `endbr64` (single-stepped).
    let out = Command::new("cc")
        .args(["-O2", "-fno-omit-frame-pointer", "-fcf-protection=none", "-pthread", "-o"])
        .arg(&exe)
        .arg(FIXTURE)
        .output()
        .expect("run cc (the tests compile a C fixture)");
    assert!(out.status.success(), "cc {FIXTURE}: {}", String::from_utf8_lossy(&out.stderr));
    let dump = Command::new("objdump").args(["-d", "--no-show-raw-insn"]).arg(&exe).output().expect("run objdump");
    assert!(dump.status.success(), "objdump: {}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    for (f, first) in [("gd_cheap_a", "push"), ("gd_cheap_b", "push"), ("gd_costly", "push"), ("gd_stepped", "lea")] {
        let insn = dump.lines().skip_while(|l| !l.ends_with(&format!("<{f}>:"))).nth(1).unwrap_or_default();
        assert!(insn.split_whitespace().nth(1) == Some(first), "{f} must start with {first}: {insn}");
    }
    exe
}

/// Whether this test can run: BPF, and the compiler and objdump the fixture's build needs (in CI a
/// failure, outside it a printed skip).
fn can_run(test: &str) -> bool {
    bpf_available(test) && tool_available(test, "cc", &["--version"]) && tool_available(test, "objdump", &["--version"])
}

/// One traced run at a time: two on a 2-CPU machine slow each other down.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the fixture with `fixture_args` traced with `flags` from its first call to its exit.
/// Returns (report, truth).
fn traced_fixture(name: &str, fixture_args: &[&str], funcs: &[&str], flags: &[&str]) -> (Value, Value) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = TempDir::new(name);
    let exe = build_fixture(&dir);
    let truth = dir.join("truth.json");
    let (mut child, lines) = spawn_ready(
        Command::new(&exe).args(fixture_args).arg("--truth").arg(&truth).stdin(Stdio::piped()).stderr(Stdio::inherit()),
    );
    let export = dir.join("report.json");
    let mut args = vec!["--export", export.to_str().unwrap(), "--interval", "100ms"];
    for f in funcs {
        args.extend(["--func", f]);
    }
    args.extend(flags);
    let mut pu = PerfUser::attach(child.id(), &args);
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    lines.wait_for("done", Duration::from_secs(120));
    let status = child.wait().expect("wait for the fixture");
    assert!(status.success(), "fixture exited with {status}");
    pu.wait(Duration::from_secs(60));
    (read_json(&export), read_json(&truth))
}

fn detached(report: &Value, symbol: &str) -> bool {
    function(report, symbol)["probe"]["detached"] == true
}

/// `gd_costly` is called 1,000 times per loop for one call of each cheap function and 300 µs of
/// spinning: nearly all the probe cost is its own, whatever the load, and without it the rest is
/// far under the 10 % budget. The guard must take it away and nothing else; the cheap functions'
/// calls must all be there, entered and timed.
fn detaching_one_function_loses_no_other_call(mode: &str) {
    let test = format!("detaching_one_function_loses_no_other_call ({mode})");
    if !can_run(&test) {
        return;
    }
    let fixture = ["--seconds", "5", "--threads", "2", "--costly", "1000", "--spin-us", "300"];
    let funcs = ["gd_cheap_a", "gd_cheap_b", "gd_costly"];
    let (report, truth) =
        traced_fixture(&format!("guard-{mode}"), &fixture, &funcs, &["--max-overhead", "10", "--attach-mode", mode]);
    assert_eq!(report["end_reason"], "target-exited");
    let warnings = report["warnings"].to_string();
    assert!(detached(&report, "gd_costly"), "{test}: the guard must detach gd_costly: {warnings}");
    assert!(u(&function(&report, "gd_costly")["calls"]) > 0, "{test}: gd_costly counted before its detach");
    for f in ["gd_cheap_a", "gd_cheap_b"] {
        assert!(!detached(&report, f), "{test}: {f} must keep its probes: {warnings}");
        let (ours, theirs) = (function(&report, f), u(&function(&truth, f)["count"]));
        assert!(theirs > 1000, "{test}: {f} ran only {theirs} times");
        assert_eq!(u(&ours["calls"]), theirs, "{test}: {f} calls entered");
        assert_eq!(u(&ours["count"]), theirs, "{test}: {f} calls timed");
    }
}

#[test]
fn detaching_one_function_loses_no_other_call_session() {
    detaching_one_function_loses_no_other_call("session");
}

#[test]
fn detaching_one_function_loses_no_other_call_multi() {
    detaching_one_function_loses_no_other_call("multi");
}

#[test]
fn detaching_one_function_loses_no_other_call_single() {
    detaching_one_function_loses_no_other_call("single");
}
