//! Command-line behaviour of the real binary: every bad input is one line on
//! stderr and exit code 2, before any thread starts; `--help` documents all.

#![expect(clippy::expect_used, reason = "tests panic with context")]

use assert_cmd::Command;

fn target_app() -> Command {
    Command::new(env!("CARGO_BIN_EXE_target-app"))
}

/// Runs with `args`, expects a one-line usage error mentioning `needle`.
fn assert_rejected(args: &[&str], needle: &str) {
    let out = target_app().args(args).timeout(std::time::Duration::from_secs(10)).output().expect("run target-app");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr:?} lacks {needle:?}");
    assert!(out.stdout.is_empty(), "{args:?} started anyway");
}

#[test]
fn bad_flags_are_one_line_errors() {
    assert_rejected(&["--frobnicate"], "--frobnicate");
    assert_rejected(&["--rate", "fast"], "fast");
    assert_rejected(&["--rate", "0"], "--rate");
    assert_rejected(&["--rate"], "--rate");
    assert_rejected(&["--messages", "-1"], "-1");
    assert_rejected(&["--seed", "x"], "x");
    assert_rejected(&["--duration", "soon"], "soon");
    assert_rejected(&["--duration", "0"], "seconds");
    assert_rejected(&["stray"], "stray");
}

#[test]
fn bad_inject_specs_name_the_bad_part() {
    assert_rejected(&["--inject", "risk=sleep:1ms:every:2"], "unknown stage 'risk'");
    assert_rejected(&["--inject", "book=nap:1ms:every:2"], "unknown action 'nap'");
    assert_rejected(&["--inject", "book=sleep:1xs:every:2"], "bad duration '1xs'");
    assert_rejected(&["--inject", "book=sleep:200:every:2"], "missing unit");
    assert_rejected(&["--inject", "book=spin:1ms:every:0"], "bad count '0'");
    assert_rejected(&["--inject", "book=spin:1ms:every"], "spin:DUR:every:N");
    assert_rejected(&["--inject", "gateway=syscalls:many"], "bad count 'many'");
    assert_rejected(&["--inject", "book=fsync:every:3"], "journal");
    assert_rejected(&["--inject", "book"], "STAGE=SPEC");
    assert_rejected(&["--inject", "book=syscalls:1", "--inject", "book=syscalls:2"], "more than once");
}

#[test]
fn help_documents_every_flag() {
    let out = target_app().arg("--help").output().expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--rate",
        "--seed",
        "--duration",
        "--messages",
        "--hold",
        "--truth",
        "--journal",
        "--inject",
        "sleep:DUR:every:N",
        "spin:DUR:every:N",
        "syscalls:K",
        "fsync:every:N",
        "pagefault:[P:]every:N",
        "migrate:every:N",
        "risk_check",
        "SIGUSR1",
        "SIGUSR2",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn version_prints_and_exits_zero() {
    target_app().arg("--version").assert().success();
}
