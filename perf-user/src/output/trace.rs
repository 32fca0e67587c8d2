//! `--trace FILE`: the slow calls kept and the traced calls nested in them as Chrome trace-event
//! JSON (the format Perfetto and chrome://tracing open), one track per thread.
//!
//! Each call is a complete event (`"ph": "X"`, times in µs since attach); calls on one thread nest
//! by time, which is how both viewers draw a call inside another. A nested call is clamped into the
//! slow call around it (probe costs are subtracted per function, so its raw end can pass its
//! parent's by a few ns) and written once even when it is itself a kept slow call.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use crate::model::{Attribution, Exemplar};

/// The trace of `exemplars` (any order) of process `pid` named `process`, as JSON bytes.
pub fn serialize(exemplars: &[Exemplar], pid: u32, process: &str) -> Vec<u8> {
    let mut events = vec![meta("process_name", pid, 0, process)];
    let mut threads: BTreeMap<u32, &str> = BTreeMap::new();
    for e in exemplars {
        let name = threads.entry(e.tid).or_insert(&e.thread);
        if name.is_empty() {
            *name = &e.thread;
        }
    }
    for (&tid, name) in &threads {
        let label = if name.is_empty() { format!("thread {tid}") } else { format!("{name} ({tid})") };
        events.push(meta("thread_name", pid, tid, &label));
    }
    // Slow calls first, so that a call that is both kept and nested is written as the slow one.
    let mut calls: Vec<(u32, u64, u64, Value)> = Vec::new();
    let mut seen: HashSet<(u32, u32, u64)> = HashSet::new();
    for e in exemplars {
        if seen.insert((e.tid, e.fn_id, e.at_ns)) {
            calls.push((e.tid, e.at_ns, e.duration_ns, slow_event(e, pid)));
        }
    }
    for e in exemplars {
        for n in &e.nested {
            if seen.insert((e.tid, n.fn_id, n.at_ns)) {
                let args = json!({ "duration_ns": n.duration_ns, "depth": n.depth, "inside": e.symbol });
                let v = json!({ "name": n.symbol, "cat": "nested", "ph": "X", "pid": pid, "tid": e.tid, "args": args });
                calls.push((e.tid, n.at_ns.max(e.at_ns), n.duration_ns, v));
            }
        }
    }
    // By thread and start, outer calls before the calls they enclose; each call is clamped into
    // the innermost open call it starts in.
    calls.sort_by_key(|c| (c.0, c.1, std::cmp::Reverse(c.2)));
    let mut open: Vec<(u32, u64)> = Vec::new();
    for (tid, at, dur, mut v) in calls {
        while open.last().is_some_and(|&(t, end)| t != tid || end <= at) {
            open.pop();
        }
        let mut end = at.saturating_add(dur);
        if let Some(&(_, parent_end)) = open.last() {
            end = end.min(parent_end);
        }
        open.push((tid, end));
        v["ts"] = json!(us(at));
        v["dur"] = json!(us(end - at));
        events.push(v);
    }
    let doc = json!({ "traceEvents": events, "displayTimeUnit": "ns" });
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

fn meta(what: &str, pid: u32, tid: u32, name: &str) -> Value {
    json!({ "name": what, "ph": "M", "pid": pid, "tid": tid, "args": { "name": name } })
}

/// A slow call's event, without its times.
fn slow_event(e: &Exemplar, pid: u32) -> Value {
    let a: &Attribution = &e.attribution;
    let syscalls: Vec<String> =
        e.syscalls.iter().map(|s| format!("{} ×{} {} ns", s.name, s.count, s.total_ns)).collect();
    json!({
        "name": e.symbol, "cat": "slow", "ph": "X", "pid": pid, "tid": e.tid,
        "args": {
            "duration_ns": e.duration_ns,
            "own_cpu_ns": a.self_oncpu_ns,
            "callees_ns": a.callees_ns,
            "syscalls_ns": a.syscalls_ns,
            "blocked_ns": a.offcpu_blocked_ns,
            "runqueue_ns": a.offcpu_runqueue_ns,
            "syscall_count": e.syscall_count,
            "syscalls": syscalls,
        },
    })
}

/// Trace-event times are µs; fractions keep the ns.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NestedCall;

    fn call(fn_id: u32, tid: u32, at_ns: u64, duration_ns: u64) -> Exemplar {
        Exemplar {
            fn_id,
            symbol: format!("f{fn_id}"),
            tid,
            thread: "w".into(),
            at_ns,
            duration_ns,
            ..Exemplar::default()
        }
    }

    #[test]
    fn nested_calls_lie_inside_their_slow_call_and_are_written_once() {
        let mut outer = call(1, 7, 1_000, 10_000);
        let nested =
            |fn_id, at_ns, duration_ns| NestedCall { fn_id, symbol: format!("f{fn_id}"), depth: 1, at_ns, duration_ns };
        // The inner call is a kept slow call too, and overruns the outer one by 5 ns.
        outer.nested = vec![nested(2, 2_000, 9_005), nested(3, 1_500, 100)];
        let inner = call(2, 7, 2_000, 9_005);
        let v: Value = serde_json::from_slice(&serialize(&[inner, outer], 42, "app")).unwrap_or_default();
        let events = v["traceEvents"].as_array().cloned().unwrap_or_default();
        let x: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(x.len(), 3, "{x:?}");
        let f2: Vec<&&Value> = x.iter().filter(|e| e["name"] == "f2").collect();
        assert_eq!(f2.len(), 1, "written once");
        for e in &x {
            let (ts, dur) = (e["ts"].as_f64().unwrap_or(-1.0), e["dur"].as_f64().unwrap_or(-1.0));
            assert!(ts >= 1.0 && ts + dur <= 11.0 + 1e-9, "{e}");
        }
        assert!(events.iter().any(|e| e["name"] == "thread_name" && e["tid"] == 7 && e["args"]["name"] == "w (7)"));
    }
}
