//! Runs the real binary and checks its truth file: per-stage counts, the
//! pipeline invariants, injections, and the signal protocol.

#![expect(clippy::expect_used, reason = "tests panic with context")]

mod common;

use common::{Running, TempDir, function, read_truth, run, u64_at, wait_for_file};
use serde_json::Value;

const STAGES: [&str; 8] = ["decode", "book", "signal", "risk_check", "matching", "on_message", "gateway", "journal"];

fn count(truth: &Value, stage: &str) -> u64 {
    u64_at(function(truth, stage), "count")
}

fn injected(truth: &Value, stage: &str) -> u64 {
    u64_at(function(truth, stage), "injected_count")
}

/// Invariants that hold for any truth file, snapshot or final: each report
/// is a consistent cut of the pipeline.
fn assert_consistent(truth: &Value) {
    let p = &truth["pipeline"];
    let n = |k: &str| u64_at(p, k);
    assert_eq!(truth["schema"], "perf-ebpf-truth/v1");
    assert_eq!(n("decode_errors"), 0);
    assert_eq!(n("decoded"), u64_at(truth, "messages_fed"), "{p}");
    assert_eq!(count(truth, "decode"), n("decoded"));
    assert_eq!(count(truth, "on_message"), n("decoded"));
    assert_eq!(count(truth, "book"), n("book_updates"));
    assert_eq!(n("book_updates"), n("decoded"));
    assert_eq!(count(truth, "signal"), n("decoded"));
    assert_eq!(n("risk_checked"), n("signals_fired"));
    assert_eq!(count(truth, "risk_check"), n("risk_checked"));
    assert!(n("risk_rejected") <= n("risk_checked"));
    assert_eq!(n("orders_submitted"), n("risk_checked") - n("risk_rejected"));
    assert_eq!(count(truth, "matching"), n("orders_submitted"));
    // Every order at the gateway passed risk; every fill went out too.
    assert_eq!(n("gateway_orders"), n("orders_submitted"));
    assert_eq!(n("gateway_fills"), n("fills"));
    assert_eq!(n("gateway_sent"), n("gateway_orders") + n("gateway_fills"));
    assert_eq!(count(truth, "gateway"), n("gateway_sent"));
    assert_eq!(n("journaled"), n("gateway_sent"));
    assert_eq!(count(truth, "journal"), n("journaled"));

    let functions = truth["functions"].as_array().expect("functions");
    let stages: Vec<&str> = functions.iter().map(|f| f["stage"].as_str().expect("stage")).collect();
    assert_eq!(stages, STAGES);
    for f in functions {
        let v = |k: &str| u64_at(f, k);
        let symbol = f["symbol"].as_str().expect("symbol");
        assert!(symbol.starts_with("target_app::"), "{symbol}");
        if v("count") == 0 {
            continue;
        }
        let ordered = [v("min_ns"), v("p50_ns"), v("p90_ns"), v("p99_ns"), v("p999_ns"), v("max_ns")];
        assert!(ordered.windows(2).all(|w| w[0] <= w[1]), "{f}");
        assert!(v("min_ns") <= v("mean_ns") && v("mean_ns") <= v("max_ns"), "{f}");
    }
    // The callees are timed inside on_message's own interval.
    let sum = |s: &str| u64_at(function(truth, s), "sum_ns");
    assert!(sum("on_message") >= sum("book") + sum("signal") + sum("risk_check") + sum("matching"));
}

#[test]
fn fixed_message_count_gives_a_consistent_final_truth() {
    let dir = TempDir::new("messages");
    let truth_path = dir.join("t.json");
    let journal_path = dir.join("journal.log");
    let out = run(&[
        "--rate",
        "20000",
        "--messages",
        "20000",
        "--truth",
        truth_path.to_str().expect("utf-8 path"),
        "--journal",
        journal_path.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ready pid="), "{stdout}");
    assert!(stderr.contains("fed 20000 messages"), "{stderr}");
    assert!(stderr.contains("risk_check"), "{stderr}");

    let truth = read_truth(&truth_path);
    assert_consistent(&truth);
    assert_eq!(truth["final"], true);
    assert_eq!(u64_at(&truth, "messages_fed"), 20_000);
    let pid: u64 = stdout.trim().trim_start_matches("ready pid=").parse().expect("pid");
    assert_eq!(u64_at(&truth["target"], "pid"), pid);
    let exe = truth["target"]["exe"].as_str().expect("exe");
    assert!(exe.starts_with('/') && exe.ends_with("target-app"), "{exe}");
    let window = &truth["window"];
    assert!(u64_at(window, "start_unix_ns") < u64_at(window, "end_unix_ns"));
    assert!(u64_at(&truth, "duration_ns") > 0);
    // Pacing can run late but never early.
    let rate = truth["rate_achieved_per_s"].as_f64().expect("rate");
    assert!(rate > 0.0 && rate <= 20_000.0 * 1.01, "{rate}");

    let p = &truth["pipeline"];
    // The generated market exercises every branch.
    for key in ["signals_fired", "risk_rejected", "orders_submitted", "fills"] {
        assert!(u64_at(p, key) > 0, "{key} is 0: {p}");
    }
    for stage in STAGES {
        assert_eq!(injected(&truth, stage), 0, "{stage}");
    }
    let journal = std::fs::read_to_string(&journal_path).expect("journal kept when given");
    assert_eq!(journal.lines().count() as u64, u64_at(p, "journaled"));
}

#[test]
fn same_seed_same_pipeline() {
    let dir = TempDir::new("seed");
    let counts = |seed: &str, name: &str| {
        let path = dir.join(name);
        let out = run(&[
            "--rate",
            "200000",
            "--messages",
            "5000",
            "--seed",
            seed,
            "--truth",
            path.to_str().expect("utf-8 path"),
        ]);
        assert!(out.status.success());
        read_truth(&path)["pipeline"].clone()
    };
    let a = counts("7", "a.json");
    assert_eq!(a, counts("7", "b.json"));
    assert_ne!(a, counts("8", "c.json"));
}

#[test]
fn default_journal_is_removed_at_exit() {
    let out = run(&["--rate", "100000", "--messages", "1000"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid = stdout.trim().trim_start_matches("ready pid=");
    let journal = std::env::temp_dir().join(format!("target-app-{pid}.journal"));
    assert!(!journal.exists(), "{} left behind", journal.display());
}

fn run_injected(name: &str, rate: &str, inject: &str) -> Value {
    let dir = TempDir::new(name);
    let path = dir.join("t.json");
    let out = run(&[
        "--rate",
        rate,
        "--messages",
        "20000",
        "--inject",
        inject,
        "--truth",
        path.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let truth = read_truth(&path);
    assert_consistent(&truth);
    truth
}

#[test]
fn risk_check_sleep_every_100th_call() {
    let truth = run_injected("sleep", "20000", "risk_check=sleep:200us:every:100");
    let f = function(&truth, "risk_check");
    let calls = u64_at(f, "count");
    assert!(calls >= 500, "too few risk checks to see 1 %: {calls}");
    assert_eq!(u64_at(f, "injected_count"), calls / 100);
    // At least 1 % of calls took ≥ 200 µs, so the top 0.1 % did.
    assert!(u64_at(f, "p999_ns") >= 200_000, "{f}");
    assert!(u64_at(f, "max_ns") >= 200_000, "{f}");
    assert!(u64_at(f, "sum_ns") >= calls / 100 * 200_000, "{f}");
    // The caller's inclusive time contains the sleeps too.
    assert!(u64_at(function(&truth, "on_message"), "max_ns") >= 200_000);
    for stage in STAGES.iter().filter(|s| **s != "risk_check") {
        assert_eq!(injected(&truth, stage), 0, "{stage}");
    }
}

#[test]
fn signal_spin_every_1000th_call() {
    let truth = run_injected("spin", "100000", "signal=spin:50us:every:1000");
    let f = function(&truth, "signal");
    assert_eq!(u64_at(f, "count"), 20_000);
    assert_eq!(u64_at(f, "injected_count"), 20);
    assert!(u64_at(f, "max_ns") >= 50_000, "{f}");
    assert!(u64_at(f, "sum_ns") >= 20 * 50_000, "{f}");
}

#[test]
fn gateway_syscalls_on_every_call() {
    let truth = run_injected("syscalls", "100000", "gateway=syscalls:5");
    let calls = count(&truth, "gateway");
    assert!(calls > 0);
    assert_eq!(injected(&truth, "gateway"), calls);
}

#[test]
fn journal_fsync_every_10th_call() {
    let truth = run_injected("fsync", "100000", "journal=fsync:every:10");
    assert_eq!(injected(&truth, "journal"), count(&truth, "journal") / 10);
}

#[test]
fn hold_feeds_nothing_until_sigusr2_and_sigint_exits_cleanly() {
    let dir = TempDir::new("hold");
    let path = dir.join("t.json");
    let app = Running::start(&["--hold", "--rate", "20000", "--truth", path.to_str().expect("utf-8 path")]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    app.signal(libc::SIGUSR1);
    wait_for_file(&path);
    let held = read_truth(&path);
    assert_consistent(&held);
    assert_eq!(held["final"], false);
    assert_eq!(u64_at(&held, "messages_fed"), 0);
    assert_eq!(u64_at(&held, "duration_ns"), 0);
    for stage in STAGES {
        assert_eq!(count(&held, stage), 0, "{stage} ran while held");
    }

    let released_at = common_unix_ns();
    app.signal(libc::SIGUSR2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    app.signal(libc::SIGINT);
    let status = app.wait();
    assert!(status.success(), "{status:?}");
    let truth = read_truth(&path);
    assert_consistent(&truth);
    assert_eq!(truth["final"], true);
    assert!(u64_at(&truth, "messages_fed") > 0);
    assert!(u64_at(&truth["window"], "start_unix_ns") >= released_at, "fed before SIGUSR2");
}

fn common_unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .expect("clock after 1970")
}

#[test]
fn sigusr1_snapshots_while_running_and_sigterm_exits_zero() {
    let dir = TempDir::new("usr1");
    let path = dir.join("t.json");
    let app = Running::start(&["--rate", "20000", "--truth", path.to_str().expect("utf-8")]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    app.signal(libc::SIGUSR1);
    wait_for_file(&path);
    let snapshot = read_truth(&path);
    assert_consistent(&snapshot);
    assert_eq!(snapshot["final"], false);
    let fed_at_snapshot = u64_at(&snapshot, "messages_fed");
    assert!(fed_at_snapshot > 0);

    app.signal(libc::SIGTERM);
    let status = app.wait();
    assert!(status.success(), "{status:?}");
    let truth = read_truth(&path);
    assert_consistent(&truth);
    assert_eq!(truth["final"], true);
    assert!(u64_at(&truth, "messages_fed") >= fed_at_snapshot);
    assert!(!dir.join("t.json.tmp").exists());
}

#[test]
fn duration_ends_the_run() {
    let dir = TempDir::new("duration");
    let path = dir.join("t.json");
    let out = run(&["--rate", "20000", "--duration", "0.3", "--truth", path.to_str().expect("utf-8")]);
    assert!(out.status.success());
    let truth = read_truth(&path);
    assert_consistent(&truth);
    assert!(u64_at(&truth, "messages_fed") > 0);
}

#[test]
fn unwritable_truth_path_fails_with_one_line() {
    let out = run(&["--messages", "10", "--truth", "/nonexistent-dir/for/target-app/t.json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("cannot write the truth file"), "{stderr}");
}
