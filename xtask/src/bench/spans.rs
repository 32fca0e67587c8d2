//! Section 11: what a span costs (`--span`), against the bpftrace script people write for keyed
//! timing (`@start[arg0] = nsecs` at one function, `hist(nsecs - @start[arg0])` and `delete` at the
//! other). bench-target calls `push_rbp(i)` then `push_rbp_twin(i)`: one span per iteration,
//! keyed by `i`. Two empty uprobes on the same functions are the kernel's floor for any tool.

use super::{
    calls::{FUNCS, raw_symbol},
    readings::{bpftrace_hist, median_of, ns_per_call, runs_of},
    results::SpanRow,
    rounds::{Check, Config, Ctx, interleaved, strings},
    run::Outcome,
    tracer::Tracer,
};

/// The span's two endpoints in bench-target.
const FROM: [&str; 3] = ["bench_target", "funcs", "push_rbp"];
const TO: [&str; 3] = ["bench_target", "funcs", "push_rbp_twin"];
/// The row every other is compared with.
pub const UNTRACED: &str = "untraced";
/// The row of two empty uprobes: what any tool pays before its own work.
pub const FLOOR: &str = "two empty uprobes (bpftrace)";

pub fn measure(ctx: &mut Ctx, binutils: bool) -> Vec<SpanRow> {
    debug_assert_eq!(FUNCS[0].2, FROM);
    let target = strings(&["calls", "--func", "span", "--iterations", &ctx.plan.traced_calls.to_string()]);
    let spec = format!("bench={}(arg0)..{}(arg0)", FROM.join("::"), TO.join("::"));
    let symbols = raw_symbol(&ctx.bins.bench_target, &FROM, binutils)
        .and_then(|from| Ok((from, raw_symbol(&ctx.bins.bench_target, &TO, binutils)?)));
    let bpftrace = |script: fn(&str, &str, &str) -> String| match (&ctx.bins.bpftrace, &symbols) {
        (None, _) => Err("skipped: bpftrace not installed".to_string()),
        (_, Err(e)) => Err(format!("skipped: no raw symbol ({e})")),
        (Some(_), Ok((from, to))) => {
            Ok(Tracer::Bpftrace(script(&ctx.bins.bench_target.display().to_string(), from, to)))
        }
    };
    let configs = vec![
        Config::new(format!("spans {UNTRACED}"), target.clone(), Ok(Tracer::None)),
        Config::new(format!("spans {FLOOR}"), target.clone(), bpftrace(empty_probes)),
        Config::new("spans perf-user --span", target.clone(), Ok(Tracer::PerfUser(strings(&["--span", &spec]))))
            .checked(perf_user_timed_every_span()),
        Config::new("spans bpftrace script", target, bpftrace(keyed_timing))
            .checked(Box::new(bpftrace_timed_every_span)),
    ];
    let labels = [UNTRACED, FLOOR, "perf-user --span", "bpftrace keyed-timing script"];
    let out = interleaved(ctx, &configs);
    labels
        .iter()
        .zip(&out)
        .map(|(label, o)| SpanRow {
            tracer: label,
            ns_per_span: median_of(o, ns_per_call),
            ns_runs: runs_of(o, ns_per_call),
            tracer_cpu_pct: median_of(o, |o| o.tracer_cpu_pct),
        })
        .collect()
}

/// Two uprobes that do nothing: the trap and the program call, the same for every tool.
fn empty_probes(bin: &str, from: &str, to: &str) -> String {
    format!("uprobe:{bin}:{from} {{ }}\nuprobe:{bin}:{to} {{ }}")
}

/// The script `--span` replaces: the start time under the key, then a histogram of the difference.
fn keyed_timing(bin: &str, from: &str, to: &str) -> String {
    format!(
        "uprobe:{bin}:{from} {{ @start[arg0] = nsecs; }}\n\
         uprobe:{bin}:{to} /@start[arg0]/ {{ @h = hist(nsecs - @start[arg0]); delete(@start[arg0]); }}"
    )
}

/// perf-user must have timed one span per iteration.
fn perf_user_timed_every_span() -> Check {
    Box::new(|o: &Outcome| {
        let calls = o.target.map_or(0, |t| t.calls);
        let span = o
            .export
            .as_ref()
            .and_then(|e| {
                e.get("spans")?
                    .as_array()?
                    .iter()
                    .find(|s| s.get("symbol").and_then(serde_json::Value::as_str) == Some("bench"))
                    .cloned()
            })
            .ok_or("no span `bench` in perf-user's report")?;
        let count = span.get("count").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if count == calls { Ok(()) } else { Err(format!("perf-user timed {count} spans of {calls}")) }
    })
}

/// bpftrace's histogram must hold (nearly) every span; its hash map may refuse a few under load.
fn bpftrace_timed_every_span(o: &Outcome) -> Result<(), String> {
    let calls = o.target.map_or(0, |t| t.calls);
    let seen = bpftrace_hist(o).iter().map(|(count, _)| count).sum::<u64>();
    if seen as f64 >= calls as f64 * 0.99 {
        Ok(())
    } else {
        Err(format!("bpftrace's histogram holds {seen} of {calls} spans"))
    }
}
