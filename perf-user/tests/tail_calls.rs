//! Tail calls (a `jmp` that enters the callee at its caller's stack pointer), against a C fixture
//! compiled here that times its own calls: every call counted and timed in every attach mode.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{path::PathBuf, time::Duration};

use common::*;
use serde_json::Value;

/// Every function of the fixture that perf-user traces (`tc_untraced_leaf` is left out: the
/// target of a tail call into an untraced function).
const TRACED: [&str; 11] = [
    "tc_leaf_t",
    "tc_tail_traced",
    "tc_tail_untraced",
    "tc_chain_a",
    "tc_chain_b",
    "tc_chain_c",
    "tc_recurse",
    "tc_leaf_r",
    "tc_jmp_outer",
    "tc_jumper",
    "tc_after_jump",
];

/// The tail calls the fixture is for, as (caller, callee): each must be a `jmp` in the build.
const TAIL_CALLS: [(&str, &str); 5] = [
    ("tc_tail_traced", "tc_leaf_t"),
    ("tc_tail_untraced", "tc_untraced_leaf"),
    ("tc_chain_a", "tc_chain_b"),
    ("tc_chain_b", "tc_chain_c"),
    ("tc_recurse", "tc_leaf_r"),
];

/// The fixture built as a user would build it, in `dir`; panics unless its tail calls are `jmp`s
/// (a compiler that turned them into calls would make every test here pass for nothing).
fn build_fixture(dir: &TempDir) -> PathBuf {
    // -fcf-protection=none: where the compiler defaults to CET, every function would start with
    // `endbr64`, a first instruction the kernel single-steps (10-30 µs a hit) instead of `push rbp`.
    let exe =
        compile(dir, "cc", &["-O2", "-fno-omit-frame-pointer", "-fcf-protection=none"], "tailcalls.c", "tailcalls");
    let dump = disassemble(&exe);
    for (caller, callee) in TAIL_CALLS {
        let body: Vec<&str> =
            dump.lines().skip_while(|l| !l.ends_with(&format!("<{caller}>:"))).take_while(|l| !l.is_empty()).collect();
        let jumps = body.iter().any(|l| l.contains("jmp") && l.ends_with(&format!("<{callee}>")));
        let calls = body.iter().any(|l| l.contains("call") && l.ends_with(&format!("<{callee}>")));
        assert!(jumps && !calls, "{caller} must reach {callee} by a tail call (jmp):\n{}", body.join("\n"));
    }
    exe
}

/// Whether this test can run: BPF, and the C compiler and objdump the fixture's build needs.
fn can_run(test: &str) -> bool {
    can_run_c_fixture(test)
}

/// One traced run of the fixture from its first call to its exit. Returns (report, truth).
fn traced_fixture(name: &str, fixture_args: &[&str], flags: &[&str]) -> (Value, Value) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = TempDir::new(name);
    let exe = build_fixture(&dir);
    // The overhead guard would detach probes of this call-dense loop on a busy machine (it judges
    // by the probe cost calibrated under that load); these tests are about every call being seen.
    let mut args = vec!["--interval", "100ms", "--no-calibrate", "--max-overhead", "1000"];
    for f in TRACED {
        args.extend(["--func", f]);
    }
    args.extend(flags);
    traced_fixture_run(&dir, &exe, fixture_args, &args, Duration::from_secs(30))
}

/// The fixture's run without longjmps: enough calls for stable percentiles, over in a second.
const RUN: [&str; 4] = ["--iterations", "2000", "--depth", "3"];

/// p50 against the fixture's own clock, with the slack of trace_target.rs: the fixture's span
/// includes part of the probes' traps that ours (taken inside them) does not, and ours is read at
/// ±1.6 % bucket resolution.
fn assert_p50_close(report: &Value, truth: &Value, symbol: &str) {
    let (ours, theirs) = (u(&function(report, symbol)["p50_ns"]), u(&function(truth, symbol)["p50_ns"]));
    assert!(
        ours.abs_diff(theirs) as f64 <= theirs as f64 * 0.25 + 1_500.0,
        "{symbol}: p50 {ours} ns vs the fixture's {theirs} ns"
    );
}

fn callees_ns(report: &Value, symbol: &str) -> u64 {
    u(&function(report, symbol)["attribution"]["callees_ns"])
}

fn total_ns(report: &Value, symbol: &str) -> u64 {
    u(&function(report, symbol)["total_ns"])
}

/// Every call counted and timed as the fixture saw it, each tail-callee's whole time in its
/// caller's callees, nothing orphaned.
fn assert_every_call_timed(report: &Value, truth: &Value) {
    assert_eq!(report["end_reason"], "target-exited");
    for symbol in TRACED {
        let (ours, theirs) = (function(report, symbol), function(truth, symbol));
        assert_eq!(u(&ours["calls"]), u(&theirs["count"]), "{symbol}: calls entered");
        assert_eq!(u(&ours["count"]), u(&theirs["completed"]), "{symbol}: calls timed");
        if u(&theirs["completed"]) > 0 {
            assert_p50_close(report, truth, symbol);
        }
        let parts: u64 = ["self_oncpu_ns", "callees_ns", "syscalls_ns", "offcpu_blocked_ns", "offcpu_runqueue_ns"]
            .iter()
            .map(|p| u(&ours["attribution"][p]))
            .sum();
        assert_eq!(parts, u(&ours["total_ns"]), "{symbol}: the five parts sum to the wall time");
    }
    // Each of these callees is reached only by its caller's tail call: the caller's callees are
    // exactly the callee's wall time (raw numbers, --no-calibrate).
    for (caller, callee) in
        [("tc_tail_traced", "tc_leaf_t"), ("tc_chain_a", "tc_chain_b"), ("tc_chain_b", "tc_chain_c")]
    {
        assert_eq!(callees_ns(report, caller), total_ns(report, callee), "{caller}: callees = {callee}'s wall time");
    }
    // A tail call into an untraced function is the caller's own time, as any untraced callee.
    assert_eq!(callees_ns(report, "tc_tail_untraced"), 0);
    // tc_recurse's callees: its nested calls and the tail-called tc_leaf_r.
    assert!(callees_ns(report, "tc_recurse") > total_ns(report, "tc_leaf_r"));
    let lost = &report["lost"];
    for k in ["orphan_return", "orphan_entry", "depth_overflow", "thread_map_full"] {
        assert_eq!(u(&lost[k]), 0, "lost.{k}");
    }
}

/// The uprobe session (this kernel's default): one program at entry and return.
#[test]
fn tail_calls_are_timed_with_a_session() {
    if !can_run("tail_calls_are_timed_with_a_session") {
        return;
    }
    let (report, truth) = traced_fixture("tail-session", &RUN, &["--attach-mode", "session"]);
    assert_eq!(report["attach"], "uprobe_session");
    assert_every_call_timed(&report, &truth);
}

/// `uprobe_multi` links (kernels 6.6 to 6.12): an entry and a return program.
#[test]
fn tail_calls_are_timed_with_multi_links() {
    if !can_run("tail_calls_are_timed_with_multi_links") {
        return;
    }
    let (report, truth) = traced_fixture("tail-multi", &RUN, &["--attach-mode", "multi"]);
    assert_eq!(report["attach"], "uprobe_multi");
    assert_every_call_timed(&report, &truth);
}

/// One perf-event uprobe per function and program (older kernels).
#[test]
fn tail_calls_are_timed_with_single_probes() {
    if !can_run("tail_calls_are_timed_with_single_probes") {
        return;
    }
    let (report, truth) = traced_fixture("tail-single", &RUN, &["--attach-mode", "single"]);
    assert_eq!(report["attach"], "perf_event");
    assert_every_call_timed(&report, &truth);
}

/// `--sample 10`: every call counted; a timed caller's tail-callees are timed with it (its
/// attribution stays whole); a tail-callee of an untimed caller cannot be told from the next call
/// at the same depth and is drawn like an outermost call, so it is timed a little more often.
#[test]
fn tail_calls_are_counted_and_sampled_whole() {
    if !can_run("tail_calls_are_counted_and_sampled_whole") {
        return;
    }
    const N: f64 = 10.0;
    let (report, truth) = traced_fixture("tail-sample", &RUN, &["--sample", "10"]);
    assert_eq!((report["attach"].as_str(), u(&report["sample_every"])), (Some("uprobe_session"), 10));
    for symbol in TRACED {
        let (ours, theirs) = (function(&report, symbol), function(&truth, symbol));
        let (calls, timed) = (u(&ours["calls"]), u(&ours["count"]));
        assert_eq!(calls, u(&theirs["count"]), "{symbol}: every call counted");
        if calls >= 2_000 {
            // At most three draws reach a call (tc_chain_c: its own and its two callers').
            let share = timed as f64 / calls as f64;
            assert!((0.5 / N..=3.5 / N).contains(&share), "{symbol}: {timed} of {calls} timed");
            assert_p50_close(&report, &truth, symbol);
        }
    }
    let timed = |s: &str| u(&function(&report, s)["count"]);
    for (caller, callee) in
        [("tc_tail_traced", "tc_leaf_t"), ("tc_chain_a", "tc_chain_b"), ("tc_chain_b", "tc_chain_c")]
    {
        assert!(timed(callee) >= timed(caller), "{callee} is timed whenever its caller {caller} is");
    }
    let lost = &report["lost"];
    for k in ["orphan_return", "orphan_entry", "depth_overflow", "thread_map_full"] {
        assert_eq!(u(&lost[k]), 0, "lost.{k}");
    }
}

/// `--latency-only`: each call's entry time rides in its own session cookie, so a chain of tail
/// calls is timed call by call without any stack.
#[test]
fn tail_calls_are_timed_latency_only() {
    if !can_run("tail_calls_are_timed_latency_only") {
        return;
    }
    let (report, truth) = traced_fixture("tail-latency", &RUN, &["--latency-only"]);
    assert_eq!(report["probes"], "latency");
    for symbol in TRACED {
        let (ours, theirs) = (function(&report, symbol), function(&truth, symbol));
        assert_eq!(u(&ours["calls"]), u(&theirs["count"]), "{symbol}: calls entered");
        assert_eq!(u(&ours["count"]), u(&theirs["completed"]), "{symbol}: calls timed");
        if u(&theirs["completed"]) > 0 {
            assert_p50_close(&report, &truth, symbol);
        }
    }
}

/// Calls left by longjmp, each followed by a call at the same stack pointer (not a tail call: the
/// abandoned frame is dead). More of them than the shadow stack holds, inside one traced call:
/// kept by mistake, they would overflow it and take the next call's time from their caller.
#[test]
fn calls_left_by_longjmp_are_orphaned_not_kept() {
    if !can_run("calls_left_by_longjmp_are_orphaned_not_kept") {
        return;
    }
    const JUMPS: u64 = 50;
    let run = ["--iterations", "200", "--depth", "3", "--longjmp", "50"];
    for mode in ["session", "single"] {
        let (report, truth) = traced_fixture(&format!("tail-longjmp-{mode}"), &run, &["--attach-mode", mode]);
        for symbol in TRACED {
            let (ours, theirs) = (function(&report, symbol), function(&truth, symbol));
            assert_eq!(u(&ours["calls"]), u(&theirs["count"]), "{mode}: {symbol}: calls entered");
            assert_eq!(u(&ours["count"]), u(&theirs["completed"]), "{mode}: {symbol}: calls timed");
        }
        assert_eq!(u(&function(&truth, "tc_jumper")["count"]), JUMPS);
        assert_p50_close(&report, &truth, "tc_after_jump");
        assert_eq!(
            callees_ns(&report, "tc_jmp_outer"),
            total_ns(&report, "tc_after_jump"),
            "{mode}: tc_jmp_outer's callees are its completed calls"
        );
        assert_eq!(callees_ns(&report, "tc_tail_traced"), total_ns(&report, "tc_leaf_t"), "{mode}");
        let lost = &report["lost"];
        assert_eq!(u(&lost["orphan_entry"]), JUMPS, "{mode}: one orphaned entry per call left by longjmp");
        for k in ["orphan_return", "depth_overflow", "thread_map_full"] {
            assert_eq!(u(&lost[k]), 0, "{mode}: lost.{k}");
        }
    }
}
