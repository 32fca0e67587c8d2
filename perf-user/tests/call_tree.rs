//! The call tree on a real target: target-app's `Engine::on_message` and the stages it calls, with
//! sleeps injected into the risk check. The kernel's per-call-path totals nest each stage under
//! on_message (never as a root of its own), count what target-app counts, and each slow
//! on_message names the callee that made it slow.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const ON_MESSAGE: &str = "target_app::engine::Engine::on_message";
const SIGNAL: &str = "target_app::signal::Signal::update";
const RISK: &str = "target_app::risk::RiskEngine::check";
const BOOK: &str = "target_app::book::OrderBook::apply";

fn nodes(report: &Value) -> &Vec<Value> {
    report["call_tree"].as_array().unwrap_or_else(|| panic!("no call_tree[] in {report}"))
}

fn traced() -> (Value, Value) {
    traced_run("call-tree", &SLEEPY_RISK_CHECKS, &[ON_MESSAGE, SIGNAL, RISK, BOOK], &["--slow", "150us"])
}

#[test]
fn call_tree_nests_stages_under_on_message_with_exact_counts() {
    if !bpf_available("call_tree_nests_stages_under_on_message_with_exact_counts") {
        return;
    }
    let (report, truth) = traced();
    let tree = nodes(&report);
    let by_symbol = |s: &str| tree.iter().filter(|n| n["symbol"] == s).collect::<Vec<_>>();
    let on_message = by_symbol(ON_MESSAGE);
    assert_eq!(on_message.len(), 1, "one path to on_message: {tree:#?}");
    let root = on_message[0];
    assert!(root["parent"].is_null(), "on_message is outermost: {root}");
    assert_eq!(root["object"], function(&report, ON_MESSAGE)["object"], "a node names its object: {root}");
    assert_eq!(u(&root["calls"]), u(&function(&report, ON_MESSAGE)["count"]));
    for stage in [SIGNAL, RISK, BOOK] {
        let found = by_symbol(stage);
        assert_eq!(found.len(), 1, "{stage} reached through one path: {tree:#?}");
        let n = found[0];
        assert_eq!(n["parent"], root["id"], "{stage} under on_message: {n}");
        assert_eq!(u(&n["depth"]), 1);
        assert_eq!(u(&n["calls"]), u(&function(&report, stage)["count"]), "{stage}");
    }
    // Exact against the truth: every risk check target-app made returned through this path.
    assert_eq!(u(&by_symbol(RISK)[0]["calls"]), u(&function(&truth, RISK)["count"]));
    // A path's parts sum to its wall time, and the callees' totals fit in the caller's callee part.
    let parts = |n: &Value| {
        ["self_oncpu_ns", "callees_ns", "syscalls_ns", "offcpu_blocked_ns", "offcpu_runqueue_ns"]
            .iter()
            .map(|k| u(&n[*k]))
            .sum::<u64>()
    };
    assert!(parts(root).abs_diff(u(&root["total_ns"])) <= u(&root["calls"]), "{root}");
    let children: u64 = tree.iter().filter(|n| n["parent"] == root["id"]).map(|n| u(&n["total_ns"])).sum();
    assert!(children <= u(&root["callees_ns"]) + u(&root["calls"]) * 1000, "{children} > {root}");
}

#[test]
fn slow_on_message_names_its_heaviest_callee() {
    if !bpf_available("slow_on_message_names_its_heaviest_callee") {
        return;
    }
    let (report, truth) = traced();
    let injected = u(&function(&truth, RISK)["injected_count"]);
    assert!(injected > 5, "too few injected sleeps: {injected}");
    let slow: Vec<&Value> =
        report["exemplars"].as_array().unwrap().iter().filter(|e| e["symbol"] == ON_MESSAGE).collect();
    for e in &slow {
        let callees = e["callees"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(callees.len() <= 3, "{e}");
        let ns: Vec<u64> = callees.iter().map(|c| u(&c["total_ns"])).collect();
        assert!(ns.windows(2).all(|w| w[0] >= w[1]), "heaviest first: {e}");
        // The callees named fit in the callee part (calibration may take a little from each).
        assert!(ns.iter().sum::<u64>() <= u(&e["attribution"]["callees_ns"]) + 10_000, "{e}");
    }
    // Every injected 200 µs sleep made a slow on_message whose heaviest callee is the risk check
    // that slept (the host's other load may add a few more, never fewer).
    let naming_risk =
        slow.iter().filter(|e| e["callees"][0]["symbol"] == RISK && u(&e["callees"][0]["total_ns"]) >= 200_000).count()
            as u64;
    assert!(naming_risk >= injected, "{naming_risk} slow on_message name {RISK}, {injected} injected: {slow:#?}");
}

/// The folded stacks of `perf-user flamegraph REPORT --folded` (with `extra` flags), root frame →
/// summed width, and every line's stack.
fn flame(report: &Value, name: &str, extra: &[&str]) -> (std::collections::BTreeMap<String, u64>, Vec<String>) {
    let dir = TempDir::new(name);
    let file = dir.join("report.json");
    std::fs::write(&file, serde_json::to_vec(report).unwrap()).unwrap();
    let out = std::process::Command::new(PERF_USER)
        .args(["flamegraph", file.to_str().unwrap(), "--folded", "-o", "-"])
        .args(extra)
        .output()
        .expect("run perf-user flamegraph");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut roots = std::collections::BTreeMap::new();
    let mut stacks = Vec::new();
    for l in text.lines() {
        let (stack, ns) = l.rsplit_once(' ').unwrap_or_else(|| panic!("a folded line: {l}"));
        *roots.entry(stack.split(';').next().unwrap().to_string()).or_insert(0u64) += ns.parse::<u64>().unwrap();
        stacks.push(stack.to_string());
    }
    (roots, stacks)
}

/// The nested flame graph of a real run: on_message is the only root and as wide as its traced
/// time; its stages are drawn inside it, never again at the top. `--slow-only` draws the slow
/// calls: a slow risk check inside a slow on_message is not a root of its own.
#[test]
fn flame_graph_nests_stages_inside_on_message_once() {
    if !bpf_available("flame_graph_nests_stages_inside_on_message_once") {
        return;
    }
    let (report, _truth) = traced();
    let (roots, stacks) = flame(&report, "flame-nested", &[]);
    assert_eq!(roots.keys().collect::<Vec<_>>(), [ON_MESSAGE], "only the outermost function is a root");
    let root_ns = u(&function(&report, ON_MESSAGE)["total_ns"]);
    // The path's own parts plus its callees' totals: equal to its wall time, but for the probe cost
    // the callees' totals lose to calibration (drawn back as "no kept path"), so within 1 %.
    let drawn = roots[ON_MESSAGE];
    assert!(drawn.abs_diff(root_ns) * 100 <= root_ns, "root width {drawn} ns, on_message's time {root_ns} ns");
    for stage in [SIGNAL, RISK, BOOK] {
        // A node is drawn as its parts, each after calibration. A stage of ~250 ns of own work per
        // call can have none left on a busy host, where the start-up probe cost reads high (a
        // known limit, issue 18); the one with injected sleeps always has its off-CPU time.
        let node = nodes(&report).iter().find(|n| n["symbol"] == stage).unwrap();
        let parts = ["self_oncpu_ns", "syscalls_ns", "offcpu_blocked_ns", "offcpu_runqueue_ns", "callees_ns"];
        let has_width = parts.iter().any(|p| u(&node[*p]) > 0);
        assert!(stage != RISK || has_width, "the risk check's sleeps are off-CPU time: {node}");
        let drawn = stacks.iter().any(|s| s.starts_with(&format!("{ON_MESSAGE};{stage};")));
        assert!(drawn || !has_width, "{stage} inside on_message, as it has width: {node}");
    }

    let (slow_roots, slow_stacks) = flame(&report, "flame-slow", &["--slow-only"]);
    assert!(slow_roots.contains_key(ON_MESSAGE), "{slow_roots:?}");
    let exemplars = report["exemplars"].as_array().unwrap();
    let slow_ns: u64 = exemplars.iter().filter(|e| e["symbol"] == ON_MESSAGE).map(|e| u(&e["duration_ns"])).sum();
    assert_eq!(slow_roots[ON_MESSAGE], slow_ns, "every slow on_message drawn whole, once");
    // Slow risk checks happened only inside slow on_messages: none is a root.
    assert!(!slow_roots.contains_key(RISK), "a slow risk check drawn twice: {slow_roots:?}");
    assert!(slow_stacks.iter().any(|s| s == &format!("{ON_MESSAGE};{RISK}")), "{slow_stacks:?}");
}

/// target-app fed at 200k messages/s and running, for the tests that read while it runs. Not flat
/// out: flat out its threads fill both CPUs, and perf-user's reading then preempts the engine, so
/// nothing would happen during the reading.
fn fed_target(dir: &TempDir) -> TargetApp {
    let app = TargetApp::start(dir, &["--hold", "--rate", "200000", "--duration", "60"]);
    app.signal(libc::SIGUSR2);
    app
}

/// `args` with `--func` for on_message and three of its stages.
fn with_stages(mut args: Vec<&str>) -> Vec<&str> {
    for f in [ON_MESSAGE, SIGNAL, RISK, BOOK] {
        args.extend(["--func", f]);
    }
    args
}

/// Runs that end while the target runs (`--duration`): the last reading freezes the functions and
/// reads the epoch copy it settles, so each function's timed calls are exactly its call-tree
/// nodes' sum, and its wall time too but for calibration (regression: the calls made between the
/// two reads made them differ by tens, in about half the runs; three runs in a row here).
#[test]
fn a_run_ended_while_the_target_runs_reads_functions_and_paths_alike() {
    let test = "a_run_ended_while_the_target_runs_reads_functions_and_paths_alike";
    if !bpf_available(test) {
        return;
    }
    let dir = TempDir::new("call-tree-running");
    let app = fed_target(&dir);
    for run in 0..3 {
        let export = dir.join(&format!("report-{run}.json"));
        let args = with_stages(vec!["--export", export.to_str().unwrap(), "--duration", "2s"]);
        PerfUser::attach(app.pid, &args).wait(Duration::from_secs(60));
        let report = read_json(&export);
        assert_eq!(report["end_reason"], "duration", "run {run}: the target still runs");
        let tree = nodes(&report);
        for f in [ON_MESSAGE, SIGNAL, RISK, BOOK] {
            let fr = function(&report, f);
            let of_f = tree.iter().filter(|n| n["symbol"] == f);
            let (calls, wall) = of_f.fold((0, 0), |(c, w), n| (c + u(&n["calls"]), w + u(&n["total_ns"])));
            assert!(u(&fr["count"]) > 1000, "run {run}, {f}: the target ran: {fr}");
            assert_eq!(calls, u(&fr["count"]), "run {run}, {f}: its nodes' calls against its timed calls");
            // The wall times are the same calls' too, each less the probe cost calibrated per call;
            // that is taken from own time, clamped at 0 per node and per function, so they differ
            // only where a busy host took one node's own time to 0 and not another's (35 µs of
            // 144 ms, once in 20 runs under stress-ng --cpu 2).
            let total = u(&fr["total_ns"]);
            assert!(
                wall.abs_diff(total) * 1000 <= total,
                "run {run}, {f}: its nodes' wall time {wall} against its {total}"
            );
        }
    }
}

/// Snapshots taken while the target runs (`--export-interval`): every reading is of settled
/// numbers (the kernel writes one of two copies, perf-user reads the one it just left), so in
/// every snapshot each function's timed calls are exactly its call-tree nodes' sum (regression:
/// read one map after the other, they differed by the calls made in between, in most snapshots).
#[test]
fn snapshots_taken_while_the_target_runs_read_functions_and_paths_alike() {
    let test = "snapshots_taken_while_the_target_runs_read_functions_and_paths_alike";
    if !bpf_available(test) {
        return;
    }
    let dir = TempDir::new("call-tree-snapshots");
    let app = fed_target(&dir);
    let export = dir.join("report.json");
    let args =
        with_stages(vec!["--export", export.to_str().unwrap(), "--export-interval", "250ms", "--duration", "3s"]);
    PerfUser::attach(app.pid, &args).wait(Duration::from_secs(60));
    let stream = std::fs::read_to_string(dir.join("report.ndjson")).unwrap();
    let snapshots: Vec<Value> = stream
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["end_reason"] == "running")
        .collect();
    assert!(snapshots.len() >= 5, "{} snapshots in 3 s at 250 ms", snapshots.len());
    let mut last = 0;
    for (i, report) in snapshots.iter().enumerate() {
        let tree = nodes(report);
        for f in [ON_MESSAGE, SIGNAL, RISK, BOOK] {
            let count = u(&function(report, f)["count"]);
            let calls: u64 = tree.iter().filter(|n| n["symbol"] == f).map(|n| u(&n["calls"])).sum();
            assert_eq!(calls, count, "snapshot {i}, {f}: its nodes' calls against its timed calls");
        }
        let count = u(&function(report, ON_MESSAGE)["count"]);
        assert!(i == 0 || count > last + 1000, "snapshot {i}: the target ran ({last} then {count} calls)");
        last = count;
    }
}

/// `--no-call-tree`: the kernel keeps no per-path totals, so the export has no call tree, but every
/// call is still counted and each slow on_message still names the risk check that made it slow
/// (a slow call's heaviest callees live in its frame, not in the path map).
#[test]
fn no_call_tree_keeps_no_paths_and_loses_no_call() {
    if !bpf_available("no_call_tree_keeps_no_paths_and_loses_no_call") {
        return;
    }
    let (report, truth) =
        traced_run("no-call-tree", &SLEEPY_RISK_CHECKS, &[ON_MESSAGE, RISK], &["--slow", "150us", "--no-call-tree"]);
    let tree = report["call_tree"].as_array().map(Vec::as_slice).unwrap_or_default();
    assert!(tree.is_empty(), "no call paths with --no-call-tree: {tree:#?}");
    assert_eq!(u(&function(&report, RISK)["count"]), u(&function(&truth, RISK)["count"]));
    let named = report["exemplars"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["symbol"] == ON_MESSAGE && e["callees"][0]["symbol"] == RISK)
        .count() as u64;
    let injected = u(&function(&truth, RISK)["injected_count"]);
    assert!(injected > 5 && named >= injected, "{named} slow on_message name {RISK}, {injected} injected");
}

/// An event loop on a real process: `run_server` → `serve` (never returns) → `handle`. No call of
/// the two callers returns while traced, yet the tree keeps the chain: `serve` an open node under
/// an open `run_server`, not a root stand-in that lost its own caller; `handle` under `serve`
/// with all its calls.
#[test]
fn a_caller_that_never_returns_keeps_its_own_caller() {
    if !can_run_c_fixture("a_caller_that_never_returns_keeps_its_own_caller") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = TempDir::new("event-loop");
    let exe = compile(&dir, "cc", &["-O2", "-fno-omit-frame-pointer", "-fcf-protection=none"], "event_loop.c", "loop");
    let (mut child, lines) = spawn_ready(std::process::Command::new(&exe).stdin(std::process::Stdio::piped()));
    let export = dir.join("report.json");
    let args = ["--export", export.to_str().unwrap(), "--duration", "3s", "--func", "run_server", "--func", "serve"];
    let mut pu = PerfUser::attach(child.id(), &[&args[..], &["--func", "handle", "--max-overhead", "1000"]].concat());
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"go\n").unwrap();
    lines.wait_for("done", Duration::from_secs(20));
    // The loop keeps running through perf-user's final reading, which freezes the functions first.
    pu.wait(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let report = read_json(&export);
    let tree = nodes(&report);
    let one = |s: &str| {
        let found: Vec<&Value> = tree.iter().filter(|n| n["symbol"] == s).collect();
        assert_eq!(found.len(), 1, "one node for {s}: {tree:#?}");
        found[0]
    };
    let (outer, serve, handle) = (one("run_server"), one("serve"), one("handle"));
    assert!(outer["parent"].is_null() && outer["open"] == true && u(&outer["depth"]) == 0, "{tree:#?}");
    assert!(serve["parent"] == outer["id"] && serve["open"] == true && u(&serve["depth"]) == 1, "{tree:#?}");
    assert_eq!(handle["parent"], serve["id"], "{tree:#?}");
    let calls = u(&function(&report, "handle")["count"]);
    assert!(calls > 100, "handle ran: {calls}");
    assert_eq!(u(&handle["calls"]), calls, "every handle call under serve: {tree:#?}");
    assert_eq!(u(&outer["total_ns"]), u(&handle["total_ns"]), "an open node weighs its callees: {tree:#?}");
}
