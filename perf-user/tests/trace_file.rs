//! `--trace FILE`: a run with injected sleeps leaves a Chrome trace-event file that parses, holds
//! every injected slow call on its thread's track, nested in the slow call that made it, with the
//! traced calls that ran inside.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use common::*;
use serde_json::Value;

const RISK: &str = "target_app::risk::RiskEngine::check";
const SIGNAL: &str = "target_app::signal::Signal::update";
const GATEWAY: &str = "target_app::gateway::Gateway::send";
const ON_MESSAGE: &str = "target_app::engine::Engine::on_message";

/// A complete event: (name, category, tid, start µs, end µs).
type Call = (String, String, u64, f64, f64);

fn calls(trace: &Value) -> Vec<Call> {
    let events = trace["traceEvents"].as_array().expect("traceEvents[]");
    events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_f64().unwrap_or_else(|| panic!("ts is a number: {e}"));
            let dur = e["dur"].as_f64().unwrap_or_else(|| panic!("dur is a number: {e}"));
            assert!(ts >= 0.0 && dur >= 0.0, "{e}");
            assert!(e["pid"].is_u64() && e["tid"].is_u64(), "{e}");
            let s = |k: &str| e[k].as_str().unwrap_or_else(|| panic!("{k} is a string: {e}")).to_string();
            (s("name"), s("cat"), u(&e["tid"]), ts, ts + dur)
        })
        .collect()
}

fn inside(inner: &Call, outer: &Call) -> bool {
    inner.2 == outer.2 && outer.3 <= inner.3 && inner.4 <= outer.4 + 1e-6
}

#[test]
fn trace_file_holds_the_slow_calls_nested_on_their_threads() {
    if !bpf_available("trace_file_holds_the_slow_calls_nested_on_their_threads") {
        return;
    }
    let dir = TempDir::new("trace-file");
    let path = dir.join("slow.trace.json");
    let (report, truth) = traced_run(
        "trace",
        &[&SLEEPY_RISK_CHECKS[..], &["--inject", "gateway=sleep:300us:every:200"]].concat(),
        &[ON_MESSAGE, SIGNAL, RISK, GATEWAY],
        &["--slow", "150us", "--trace", path.to_str().unwrap()],
    );
    let trace = read_json(&path);
    let pid = u(&report["target"]["pid"]);
    let all = calls(&trace);
    let events = trace["traceEvents"].as_array().unwrap();
    assert!(events.iter().all(|e| e["pid"] == pid), "one process");
    let thread_name = |tid: u64| {
        events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "thread_name" && u(&e["tid"]) == tid)
            .and_then(|e| e["args"]["name"].as_str())
            .unwrap_or_else(|| panic!("no thread_name for tid {tid}"))
            .to_string()
    };
    let slow = |name: &str, min_us: f64| -> Vec<&Call> {
        all.iter().filter(|c| c.0 == name && c.1 == "slow" && c.4 - c.3 >= min_us).collect()
    };
    // Every injected sleep made a slow call of at least its length.
    for (func, sleep_us, thread) in [(RISK, 200.0, "engine"), (GATEWAY, 300.0, "gateway")] {
        let injected = u(&function(&truth, func)["injected_count"]);
        assert!(injected > 5, "too few injected sleeps in {func}: {injected}");
        let found = slow(func, sleep_us);
        assert!(
            found.len() as u64 >= injected,
            "{func}: {} slow calls ≥ {sleep_us} µs, {injected} injected",
            found.len()
        );
        for c in &found {
            assert!(thread_name(c.2).starts_with(thread), "{func} on track {:?}", thread_name(c.2));
        }
    }
    let (risk, gw) = (slow(RISK, 200.0), slow(GATEWAY, 300.0));
    assert_ne!(risk[0].2, gw[0].2, "engine and gateway are separate tracks");
    // Each slow risk check lies inside the slow on_message that made it, which also holds the
    // signal update that ran before it (sent from the kernel's ring of recent nested calls).
    for r in &risk {
        let parent = all
            .iter()
            .find(|c| c.0 == ON_MESSAGE && c.1 == "slow" && inside(r, c))
            .unwrap_or_else(|| panic!("risk check {r:?} has no slow on_message around it"));
        let signal = all.iter().find(|c| c.0 == SIGNAL && inside(c, parent) && c.4 <= r.3 + 1e-6);
        assert!(signal.is_some(), "no signal update before {r:?} inside {parent:?}");
        assert!(all.iter().all(|c| c.2 != r.2 || c.1 != "slow" || c.0 != GATEWAY), "gateway on the engine track");
    }
    // Nested calls are not slow calls: they come from inside one, in the nested category.
    assert!(all.iter().any(|c| c.0 == SIGNAL && c.1 == "nested"), "no nested signal update at all");
}

/// Slow calls that entered while perf-user was still starting (calibrating, between attaching
/// the probes and its first reading) keep their real time in the trace: times count from the
/// moment the probes began to attach, before which no call can have been timed. Regression: such
/// calls were all placed at 0 (a clamp of the negative difference), stacked at the trace's start.
#[test]
fn slow_calls_during_start_up_keep_their_time() {
    if !bpf_available("slow_calls_during_start_up_keep_their_time") {
        return;
    }
    let dir = TempDir::new("start-up-times");
    // Fed from the start (not held): calls run through the whole start-up, every one slow.
    let app = TargetApp::start(&dir, &["--rate", "2000", "--duration", "30"]);
    let path = dir.join("start.trace.json");
    let mut pu = PerfUser::attach(
        app.pid,
        &[
            "--func",
            RISK,
            "--slow",
            "1ns",
            "--exemplars",
            "100000",
            "--duration",
            "2s",
            "--trace",
            path.to_str().unwrap(),
        ],
    );
    pu.wait(std::time::Duration::from_secs(60));
    let starts: Vec<f64> = calls(&read_json(&path)).iter().map(|c| c.3).collect();
    assert!(starts.len() > 100, "{} slow calls", starts.len());
    let at_zero = starts.iter().filter(|&&s| s <= 0.0).count();
    assert_eq!(at_zero, 0, "slow calls placed at the very start, of {}", starts.len());
    let first = starts.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(first < 1e6, "the first slow call {first} µs after attach, in a run of 2 s");
}
