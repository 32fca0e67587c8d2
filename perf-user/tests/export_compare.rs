//! Export, compare and draw: `report` reads back what `attach --export` writes, `diff` judges two
//! reports (exit 1 only for significant regressions beyond --fail-above, 2 for bad input) and
//! `flamegraph` draws one. File-based tests run anywhere; the two-run diff needs BPF.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{path::Path, process::Command, sync::Mutex};

use assert_cmd::prelude::*;
use common::*;
use serde_json::{Value, json};

/// The tracer-backed tests share the machine's CPUs: one at a time keeps their timings honest.
static TRACED: Mutex<()> = Mutex::new(());

fn perf_user() -> Command {
    Command::new(PERF_USER)
}

/// Upper end of the tracer's bucket holding `v` (32 linear sub-buckets per power of two).
fn le_of(v: u64) -> u64 {
    if v < 32 {
        return v;
    }
    let shift = 63 - v.leading_zeros() - 5;
    ((v >> shift) << shift) + (1 << shift) - 1
}

/// `n` calls spread evenly over [0.8, 1.2] × `center` ns, as a report's buckets and summary.
fn function(symbol: &str, n: u64, center: u64) -> Value {
    let mut values: Vec<u64> = (0..n).map(|i| center * 8 / 10 + center * 4 / 10 * i / n.max(1)).collect();
    values.sort_unstable();
    let mut buckets: Vec<(u64, u64)> = Vec::new();
    for v in &values {
        match buckets.last_mut() {
            Some((le, c)) if *le == le_of(*v) => *c += 1,
            _ => buckets.push((le_of(*v), 1)),
        }
    }
    let q = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n as usize) - 1];
    let total: u64 = values.iter().sum();
    json!({
        "symbol": symbol,
        "raw_symbol": format!("_ZN{symbol}E"),
        "address": 4096,
        "count": n, "min_ns": values[0], "mean_ns": total / n, "p50_ns": q(0.5), "p90_ns": q(0.9),
        "p99_ns": q(0.99), "p999_ns": q(0.999), "max_ns": values[values.len() - 1],
        "buckets": buckets.iter().map(|(le, c)| json!({"le_ns": le, "count": c})).collect::<Vec<_>>(),
        "self_oncpu": {"count": n, "min_ns": 1, "mean_ns": 2, "p50_ns": 2, "p90_ns": 3, "p99_ns": 4, "p999_ns": 5, "max_ns": 6},
        "attribution": {
            "self_oncpu_ns": total / 2, "callees_ns": total / 4, "syscalls_ns": total / 8,
            "offcpu_blocked_ns": total / 16, "offcpu_runqueue_ns": total - total / 2 - total / 4 - total / 8 - total / 16,
            "syscalls": [{"name": "futex", "count": 3, "total_ns": total / 8 + 10}, {"name": "write", "count": 1, "total_ns": 7}]
        },
        "probe": {"entry_insn": "push rbp", "single_step": false}
    })
}

fn report(functions: Vec<Value>) -> Value {
    json!({
        "schema": "perf-ebpf/v1",
        "tool": {"name": "perf-user", "version": "0.1.0"},
        "target": {"pid": 4242, "exe": "/usr/bin/app", "comm": "app"},
        "started_unix_ns": 1_700_000_000_000_000_000u64,
        "duration_ns": 5_000_000_000u64,
        "end_reason": "duration",
        "functions": functions,
        "syscalls": [{
            "name": "futex", "nr": 202, "count": 30, "min_ns": 100, "mean_ns": 150, "p50_ns": 140, "p90_ns": 190,
            "p99_ns": 199, "p999_ns": 199, "max_ns": 199, "errors": 2, "total_ns": 4500,
            "buckets": [{"le_ns": 143, "count": 20}, {"le_ns": 199, "count": 10}]
        }],
        "exemplars": [{
            "symbol": "app::slow", "tid": 7, "thread": "worker", "start_ns": 99, "duration_ns": 5000,
            "attribution": {"self_oncpu_ns": 1000, "callees_ns": 0, "syscalls_ns": 0, "offcpu_blocked_ns": 4000, "offcpu_runqueue_ns": 0},
            "syscall_count": 1, "syscalls": [{"name": "clock_nanosleep", "count": 1, "total_ns": 4000}]
        }],
        "lost": {"ringbuf_full": 1, "thread_map_full": 0, "depth_overflow": 2, "orphan_return": 0, "orphan_entry": 3,
                 "attr_map_full": 0, "exemplars_evicted": 4},
        "probe_hits": 123_456,
        "threads": [{"tid": 7, "thread": "worker", "symbol": "app::slow", "count": 5, "total_ns": 500, "min_ns": 90,
                     "max_ns": 110, "attribution": {"self_oncpu_ns": 500, "callees_ns": 0, "syscalls_ns": 0,
                     "offcpu_blocked_ns": 0, "offcpu_runqueue_ns": 0}}],
        "warnings": ["an example warning"]
    })
}

fn write(dir: &TempDir, name: &str, v: &Value) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

/// Every field of `expected` is in `actual` with the same value (`actual` may have more).
fn assert_contains(actual: &Value, expected: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let got = a.get(k).unwrap_or_else(|| panic!("{at}.{k} missing"));
                assert_contains(got, v, &format!("{at}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{at}: length");
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                assert_contains(a, e, &format!("{at}[{i}]"));
            }
        }
        (e, a) => assert_eq!(a, e, "{at}"),
    }
}

/// Runs perf-user, requires `code` and at most one line on stderr without a panic; returns (stdout, stderr).
fn run(args: &[&str], code: i32) -> (String, String) {
    let out = perf_user().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "perf-user {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim_end().lines().count() <= 1, "more than one line on stderr: {stderr}");
    (stdout, stderr)
}

#[test]
fn report_json_round_trips_every_field() {
    let dir = TempDir::new("roundtrip");
    let original = report(vec![function("app::fast", 1000, 1000), function("app::slow", 50, 80_000)]);
    let path = write(&dir, "r.json", &original);
    let (out, _) = run(&["report", path.to_str().unwrap(), "--format", "json"], 0);
    let back: Value = serde_json::from_str(&out).unwrap();
    assert_contains(&back, &original, "report");
    // And once more: the output is itself a valid input giving the same numbers.
    let again = write(&dir, "again.json", &back);
    let (out2, _) = run(&["report", again.to_str().unwrap(), "--format", "json"], 0);
    assert_eq!(serde_json::from_str::<Value>(&out2).unwrap(), back);
}

#[test]
fn report_text_shows_functions_attribution_and_syscalls() {
    let dir = TempDir::new("text");
    let path = write(&dir, "r.json", &report(vec![function("app::fast", 1000, 1000)]));
    let (text, _) = run(&["report", path.to_str().unwrap()], 0);
    for needle in [
        "FUNCTION",
        "app::fast",
        "OWN",
        "CALLEE",
        "OFF",
        "50%",
        "25%",
        "SYSCALL",
        "futex",
        "syscalls while innermost",
        "app::fast: futex 3×",
        "lost:",
        "warning: an example warning",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let (csv, _) = run(&["report", path.to_str().unwrap(), "--format", "csv"], 0);
    assert!(csv.lines().any(|l| l.starts_with("function,app::fast,1000,")), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("syscall,futex,30,")), "{csv}");
    let (md, _) = run(&["report", path.to_str().unwrap(), "--format", "markdown"], 0);
    assert!(md.contains("| `app::fast` | 1000 |"), "{md}");
}

#[test]
fn report_reads_the_last_ndjson_snapshot() {
    let dir = TempDir::new("ndjson");
    let mut first = report(vec![function("app::f", 10, 1000)]);
    first["end_reason"] = json!("running");
    let last = report(vec![function("app::f", 20, 1000)]);
    let text = format!("{}\n{}\n", serde_json::to_string(&first).unwrap(), serde_json::to_string(&last).unwrap());
    let p = dir.join("run.ndjson");
    std::fs::write(&p, text).unwrap();
    let (out, _) = run(&["report", p.to_str().unwrap(), "--format", "json"], 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["functions"][0]["count"], 20);
    assert_eq!(v["end_reason"], "duration");
}

#[test]
fn diff_flags_a_significant_regression_and_exits_1() {
    let dir = TempDir::new("diff");
    let base =
        write(&dir, "base.json", &report(vec![function("app::a", 20_000, 10_000), function("app::b", 20_000, 5_000)]));
    let new =
        write(&dir, "new.json", &report(vec![function("app::a", 20_000, 13_000), function("app::b", 20_000, 5_000)]));
    let (out, _) = run(&["diff", base.to_str().unwrap(), new.to_str().unwrap()], 1);
    assert!(out.lines().any(|l| l.starts_with("REGRESSED") && l.contains("app::a")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("unchanged") && l.contains("app::b")), "{out}");
    assert!(out.contains("FAIL:"), "{out}");
    // Above the gate it is only a warning.
    let (out, _) = run(&["diff", base.to_str().unwrap(), new.to_str().unwrap(), "--fail-above", "50%"], 0);
    assert!(out.lines().any(|l| l.starts_with("slower") && l.contains("app::a")), "{out}");
    // The other way round is an improvement.
    let (out, _) = run(&["diff", new.to_str().unwrap(), base.to_str().unwrap(), "--metric", "mean"], 0);
    assert!(out.lines().any(|l| l.starts_with("improved") && l.contains("app::a")), "{out}");
    // JSON output for machines.
    let (out, _) =
        run(&["diff", base.to_str().unwrap(), new.to_str().unwrap(), "--format", "json", "--metric", "p50"], 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "perf-ebpf-diff/v1");
    assert_eq!(v["failed"], true);
    let a = v["functions"].as_array().unwrap().iter().find(|e| e["name"] == "app::a").unwrap();
    assert_eq!(a["verdict"], "regressed");
    assert_eq!(a["metric"]["metric"], "p50");
    assert_eq!(a["metric"]["significance"], "slower");
    assert_eq!(a["metrics"].as_array().unwrap().len(), 6);
}

#[test]
fn diff_does_not_call_noise_a_regression() {
    let dir = TempDir::new("noise");
    // Five calls each, 30 % apart: too few to tell.
    let base = write(&dir, "base.json", &report(vec![function("app::a", 5, 10_000)]));
    let new = write(&dir, "new.json", &report(vec![function("app::a", 5, 13_000)]));
    for metric in ["p50", "p90", "p99", "p999", "mean", "max"] {
        let (out, _) = run(&["diff", base.to_str().unwrap(), new.to_str().unwrap(), "--metric", metric], 0);
        assert!(out.lines().any(|l| l.starts_with("noise?") && l.contains("app::a")), "{metric}: {out}");
    }
    // Identical reports: nothing changed.
    let (out, _) = run(&["diff", base.to_str().unwrap(), base.to_str().unwrap()], 0);
    assert!(out.contains("0 regressed, 0 slower, 0 improved, 0 inconclusive, 1 unchanged"), "{out}");
}

#[test]
fn diff_names_appeared_and_vanished_functions_and_syscalls() {
    let dir = TempDir::new("appear");
    let base =
        write(&dir, "base.json", &report(vec![function("app::old", 100, 1000), function("app::kept", 100, 1000)]));
    let mut n = report(vec![function("app::kept", 100, 1000), function("app::new", 100, 1000)]);
    n["syscalls"][0]["name"] = json!("read");
    let new = write(&dir, "new.json", &n);
    let (out, _) = run(&["diff", base.to_str().unwrap(), new.to_str().unwrap()], 0);
    for l in ["vanished app::old", "appeared app::new", "vanished futex", "appeared read"] {
        assert!(out.contains(l), "missing {l:?} in\n{out}");
    }
    assert!(out.contains("1 appeared, 1 vanished"), "{out}");
}

#[test]
fn diff_and_report_read_bpftrace_histograms() {
    let dir = TempDir::new("bpftrace");
    let hist = |shift: u64, n: u64| {
        let buckets: Vec<Value> = (0..4u64)
            .map(|i| {
                let min = 1u64 << (10 + i + shift);
                json!({"min": min, "max": 2 * min - 1, "count": if i == 1 { n } else { n / 10 }})
            })
            .collect();
        format!(
            "{}\n{}\n",
            json!({"type": "attached_probes", "data": {"probes": 1}}),
            json!({"type": "hist", "data": {"@ns": {"read": buckets}}})
        )
    };
    let (base, new) = (dir.join("base.bt"), dir.join("new.bt"));
    std::fs::write(&base, hist(0, 50_000)).unwrap();
    // Four times slower: with power-of-two buckets a mere doubling cannot be proven beyond +20 %.
    std::fs::write(&new, hist(2, 50_000)).unwrap();
    let (out, _) = run(&["report", base.to_str().unwrap()], 0);
    assert!(out.contains("@ns[read]"), "{out}");
    let (out, _) = run(&["diff", base.to_str().unwrap(), new.to_str().unwrap(), "--metric", "p50"], 1);
    assert!(out.lines().any(|l| l.starts_with("REGRESSED") && l.contains("@ns[read]")), "{out}");
}

#[test]
fn flamegraph_is_well_formed_svg_with_every_part() {
    let dir = TempDir::new("flame");
    let mut functions: Vec<Value> = STAGES.iter().map(|s| function(s, 1000, 10_000)).collect();
    functions.push(function("app::never_called", 1, 1));
    functions[8]["attribution"] = json!({"self_oncpu_ns": 0, "callees_ns": 0, "syscalls_ns": 0,
        "offcpu_blocked_ns": 0, "offcpu_runqueue_ns": 0, "syscalls": []});
    let path = write(&dir, "r.json", &report(functions));
    let svg = dir.join("out.svg");
    run(&["flamegraph", path.to_str().unwrap(), "-o", svg.to_str().unwrap()], 0);
    let text = std::fs::read_to_string(&svg).unwrap();
    // inferno declares the SVG DTD, as SVG files do.
    let opts = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
    let doc = roxmltree::Document::parse_with_options(&text, opts).unwrap_or_else(|e| panic!("not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let titles: Vec<String> =
        doc.descendants().filter(|n| n.has_tag_name("title")).filter_map(|n| n.text()).map(str::to_string).collect();
    for stage in STAGES {
        assert!(titles.iter().any(|t| t.starts_with(stage)), "no frame for {stage}");
    }
    for part in ["self_oncpu", "callees", "syscalls", "futex", "blocked", "runqueue", "offcpu"] {
        assert!(titles.iter().any(|t| t.starts_with(&format!("{part} ("))), "no frame {part}: {titles:?}");
    }
    assert!(!text.contains("app::never_called"));
    // Folded stacks for other tools.
    let folded = dir.join("out.folded");
    run(&["flamegraph", path.to_str().unwrap(), "-o", folded.to_str().unwrap(), "--folded"], 0);
    let f = std::fs::read_to_string(&folded).unwrap();
    assert!(f.lines().any(|l| l.starts_with("target_app::feed::decode;offcpu;blocked ")), "{f}");
    assert!(f.lines().any(|l| l.starts_with("target_app::feed::decode;syscalls;futex ")), "{f}");
}

#[test]
fn bad_inputs_give_one_line_and_the_documented_exit_code() {
    let dir = TempDir::new("bad");
    let good = write(&dir, "good.json", &report(vec![function("app::a", 10, 1000)]));
    let g = good.to_str().unwrap();
    let missing = dir.join("missing.json");
    let m = missing.to_str().unwrap();
    let malformed = dir.join("malformed.json");
    std::fs::write(&malformed, "{\"schema\": \"perf-ebpf/v1\", \"functions\": [").unwrap();
    let bad = malformed.to_str().unwrap();
    let wrong = write(&dir, "wrong.json", &json!({"schema": "something/v9", "functions": []}));
    let w = wrong.to_str().unwrap();
    let not_report = write(&dir, "notreport.json", &json!({"schema": "perf-ebpf/v1", "functions": "no"}));
    let nr = not_report.to_str().unwrap();
    let empty = write(&dir, "empty.json", &report(vec![]));
    let sink = dir.join("out.svg");
    let o = sink.to_str().unwrap();

    // diff: bad input is exit 2, so CI can tell it from a regression (exit 1).
    for (args, needle) in [
        (vec!["diff", m, g], "cannot read"),
        (vec!["diff", g, m], "cannot read"),
        (vec!["diff", bad, g], "not a perf-ebpf report"),
        (vec!["diff", g, w], "schema 'something/v9'"),
        (vec!["diff", g, nr], "not a perf-ebpf report"),
        (vec!["diff", g, g, "--fail-above", "abc"], "--fail-above 'abc'"),
        (vec!["diff", g, g, "--fail-above", "-5"], "--fail-above"),
        (vec!["diff", g, g, "--fail-above", "NaN"], "--fail-above"),
        (vec!["diff", g, g, "--warn-above", "30", "--fail-above", "20"], "--warn-above 30 is above --fail-above 20"),
    ] {
        let (_, err) = run(&args, 2);
        assert!(err.contains(needle) && err.starts_with("perf-user: error: "), "{args:?}: {err}");
    }
    // report and flamegraph: the project's error path, exit 1.
    for (args, needle) in [
        (vec!["report", m], "cannot read"),
        (vec!["report", bad], "not a perf-ebpf report"),
        (vec!["report", w], "schema"),
        (vec!["flamegraph", m, "-o", o], "cannot read"),
        (vec!["flamegraph", bad, "-o", o], "not a perf-ebpf report"),
        (vec!["flamegraph", w, "-o", o], "schema"),
        (vec!["flamegraph", empty.to_str().unwrap(), "-o", o], "nothing to draw"),
    ] {
        let (_, err) = run(&args, 1);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out_dir = dir.join("no/such/dir/out.svg");
    let (_, err) = run(&["flamegraph", g, "-o", out_dir.to_str().unwrap()], 1);
    assert!(err.contains("cannot write"), "{err}");
}

#[test]
fn bad_attach_export_and_prometheus_flags_fail_before_attaching() {
    let me = std::process::id().to_string();
    let dir = TempDir::new("flags");
    let export = dir.join("r.json");
    let e = export.to_str().unwrap();
    for (extra, needle) in [
        (vec!["--prometheus", "nonsense"], "--prometheus 'nonsense': expected ADDR:PORT"),
        (vec!["--prometheus", "127.0.0.1"], "expected ADDR:PORT"),
        (vec!["--prometheus", "127.0.0.1:99999"], "expected ADDR:PORT"),
        (vec!["--prometheus", "localhost:x"], "expected ADDR:PORT"),
        (vec!["--export-interval", "1s"], "--export-interval needs --export"),
        (vec!["--export", e, "--export-interval", "soon"], "--export-interval"),
        (vec!["--export", e, "--export-interval", "0s"], "--export-interval must be greater than zero"),
    ] {
        let mut args = vec!["attach", "--no-tui", "--pid", &me, "--func", "main"];
        args.extend(extra.iter().copied());
        let (_, err) = run(&args, 1);
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    // A port in use is reported before any probe is placed (no BPF needed to get this far).
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (_, err) = run(&["attach", "--no-tui", "--pid", &me, "--func", "main", "--prometheus", &addr], 1);
    assert!(err.contains(&format!("--prometheus {addr}: cannot listen")), "{err}");
    assert!(!Path::new(&export).exists());
}

/// Base and new runs of target-app traced on `target_app::risk::*`, written to files.
fn traced_pair(dir: &TempDir, name: &str, new_extra: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let _one_at_a_time = TRACED.lock().unwrap_or_else(|e| e.into_inner());
    let app = ["--rate", "20000", "--messages", "20000"];
    let (base, _) = traced_run(&format!("{name}-base"), &app, &["target_app::risk::*"], &[]);
    let mut new_args = app.to_vec();
    new_args.extend_from_slice(new_extra);
    let (new, _) = traced_run(&format!("{name}-new"), &new_args, &["target_app::risk::*"], &[]);
    (write(dir, "base.json", &base), write(dir, "new.json", &new))
}

#[test]
fn diff_of_real_runs_catches_an_injected_spin_in_risk_check() {
    if !bpf_available("diff_of_real_runs_catches_an_injected_spin_in_risk_check") {
        return;
    }
    let dir = TempDir::new("diff-spin");
    let (base, new) = traced_pair(&dir, "spin", &["--inject", "risk_check=spin:20us:every:1"]);
    let out = perf_user().args(["diff"]).arg(&base).arg(&new).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a 20 µs spin per call must fail the gate:\n{text}");
    let line = text.lines().find(|l| l.starts_with("REGRESSED")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("target_app::risk::RiskEngine::check"), "{text}");
}

#[test]
fn diff_of_two_unchanged_real_runs_passes() {
    if !bpf_available("diff_of_two_unchanged_real_runs_passes") {
        return;
    }
    let dir = TempDir::new("diff-same");
    // The gate's confidence intervals cover sampling noise, not a neighbour stealing this 2-CPU
    // VM's time during one run (once seen in CI: p50 equal, p99 of a 250 ns function doubled in
    // the second run). Such a pair is taken again, once: a diff that flags unchanged code on
    // its own fails both pairs.
    let mut attempt = 0;
    let (base, new, out) = loop {
        attempt += 1;
        let (base, new) = traced_pair(&dir, &format!("same{attempt}"), &[]);
        let out = perf_user().args(["diff", "--format", "json"]).arg(&base).arg(&new).output().unwrap();
        if out.status.code() == Some(0) || attempt == 2 {
            break (base, new, out);
        }
        eprintln!(
            "unchanged pair {attempt} judged regressed (noisy machine?); one more pair:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = serde_json::to_string_pretty(&v["functions"]).unwrap();
    assert_eq!(out.status.code(), Some(0), "no change must pass:\n{text}");
    assert_eq!(v["failed"], false);
    assert!(v["functions"].as_array().unwrap().iter().all(|f| f["verdict"] != "regressed"), "{text}");
    // The text view agrees (syscalls may vary between runs; they are shown but do not gate).
    perf_user().args(["diff"]).arg(&base).arg(&new).assert().success();
}
