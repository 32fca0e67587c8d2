//! Section 9 of the report: the real workloads, one table per workload and regime, every mode's
//! throughput, own p99 and CPU per operation, and what each mode cost against the untraced runs.

use std::fmt::Write as _;

use super::cell;
use crate::bench::{
    results::{Mode, Results, Server, Workload},
    stats::{RatioCi, med, median},
    text::{ci_text, duration, signed_ci, thousands},
};

pub(super) fn section(md: &mut String, r: &Results) {
    let w = &r.workloads;
    let _ = writeln!(md, "\n## 9. Real workloads: throughput, tail latency and CPU per request\n");
    let _ = writeln!(md, "{INTRO}");
    let _ = writeln!(md, "\n### target-app flat out\n\n{TARGET_APP}\n");
    match &w.target_app {
        Ok(t) => table(md, t),
        Err(e) => {
            let _ = writeln!(md, "{e}");
        }
    }
    let _ = writeln!(md, "\n### nginx under wrk\n");
    match &w.server {
        Ok(server) => {
            server_text(md, server, &w.calls_per_request, w.load_secs);
            for regime in &w.server_regimes {
                let _ = writeln!(md, "\n{}:\n", regime.name);
                table(md, regime);
            }
        }
        Err(e) => {
            let _ = writeln!(md, "{e}");
        }
    }
}

/// The server, its traced functions (first instruction, calls per request) and how it was run.
fn server_text(md: &mut String, s: &Server, calls_per_request: &[(String, f64)], load_secs: u64) {
    let functions: Vec<String> = s
        .functions
        .iter()
        .map(|(f, insn)| {
            let insn = insn.as_ref().map_or_else(|e| e.clone(), |i| format!("`{i}`"));
            let calls = calls_per_request.iter().find(|(name, _)| name == f);
            let calls = calls.map_or_else(String::new, |(_, c)| format!(", {c:.2} calls per request"));
            format!("`{f}` (first instruction {insn}{calls})")
        })
        .collect();
    let _ = writeln!(
        md,
        "{} (`{}`). Traced in every mode: {}, found in {}. {SERVER_RUN} wrk loads it from one thread for \
         {load_secs} s per run {SERVER_LOAD}",
        cell(&s.version),
        cell(&s.binary),
        functions.join(" and "),
        s.symbols,
    );
}

/// One workload: a row per mode.
fn table(md: &mut String, w: &Workload) {
    let unit = w.unit;
    let vs_bpftrace = w.runs_of(Mode::Bpftrace, |r| r.per_s).is_ok();
    let _ = writeln!(
        md,
        "| mode | {unit}s/s | throughput lost | p99 | p99 shift | CPU per {unit} | added CPU per {unit} |{} \
         tracer's own CPU per {unit} |\n|---|---|---|---|---|---|---|{}---|",
        if vs_bpftrace { " added CPU / bpftrace's |" } else { "" },
        if vs_bpftrace { "---|" } else { "" }
    );
    for (mode, _) in &w.modes {
        let mode = *mode;
        let per_s = match med(&w.runs_of(mode, |r| r.per_s)) {
            Ok(per_s) => per_s,
            Err(e) => {
                let _ = writeln!(md, "| {} | {} |", mode.label(), cell(&e));
                continue;
            }
        };
        let traced = mode != Mode::Untraced;
        let vs_untraced = |ci: Result<RatioCi, String>, unit: &str| match ci {
            _ if !traced => "—".to_string(),
            Ok(ci) => signed_ci(&ci, unit),
            Err(e) => e,
        };
        let ratio = match w.added_cpu_ratio(mode, Mode::Bpftrace) {
            _ if !traced || mode == Mode::Bpftrace => "—".to_string(),
            Ok(ci) => ci_text(&ci),
            Err(e) => e,
        };
        let cells = [
            thousands(per_s),
            vs_untraced(w.loss_pct(mode), " %"),
            med(&w.runs_of(mode, |r| r.p99_us)).map_or_else(|e| e, |p99| duration(p99 * 1e3)),
            vs_untraced(w.p99_shift_us(mode), " µs"),
            us(&med(&w.runs_of(mode, |r| r.cpu_per_op_us)), 2),
            vs_untraced(w.added_cpu_us(mode), " µs"),
        ];
        let tracer = if traced { us(&med(&w.runs_of(mode, |r| r.tracer_cpu_per_op_us)), 2) } else { "—".into() };
        let mut row: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        if vs_bpftrace {
            row.push(cell(&ratio));
        }
        row.push(cell(&tracer));
        let _ = writeln!(md, "| {} | {} |", mode.label(), row.join(" | "));
    }
    others(md, w);
}

/// How busy the rest of the machine was during the workload's runs.
fn others(md: &mut String, w: &Workload) {
    let modes = w.modes.iter().map(|(m, _)| *m);
    let mut pcts: Vec<f64> = modes.filter_map(|m| w.runs_of(m, |r| r.others_pct).ok()).flatten().collect();
    pcts.retain(|p| p.is_finite());
    if pcts.is_empty() {
        return;
    }
    pcts.sort_by(f64::total_cmp);
    let _ = writeln!(
        md,
        "\nOther processes (and the hypervisor) took a median {:.0} % of the machine's CPUs during these runs \
         (at most {:.0} %).",
        median(&pcts),
        pcts[pcts.len() - 1]
    );
}

/// µs with `digits` decimals, or why there is no number.
fn us(c: &Result<f64, String>, digits: usize) -> String {
    c.as_ref().map_or_else(|e| e.clone(), |v| format!("{v:.digits$} µs"))
}

const INTRO: &str = "What users feel: how much slower a traced program gets, and how much CPU tracing costs it. \
Each workload ran untraced and under each mode, the same functions traced in every mode, in interleaved rounds \
(each round starts one mode later than the last). Each mode's medians over the rounds are set against the \
untraced ones: *throughput lost* (% of the untraced rate), *p99 shift* (the workload's own p99), *added CPU* \
per request or message, each with a 95 % bootstrap interval (each mode's runs resampled on their own), beside \
each mode's median rate, p99 and CPU. Medians, not per-round differences: on a shared machine a burst of \
someone else's work spoils single runs, and a difference of two runs is spoiled twice as often as a median. CPU is user + system time of the server and the client (from \
`/proc/PID/stat` and wait4); the probes' programs and the tracepoints run inside those, while the tracer's own \
process is shown apart. The default mode's syscall and scheduler tracepoints also run for every other process on \
the machine, which no column here counts. The overhead guard is off (`--max-overhead 1000`): every probe stays \
attached.";

const TARGET_APP: &str = "target-app fed at 10M messages/s, far beyond what its pipeline takes, so it runs as fast \
as it can; each run is a fixed number of messages (sized from a first run of each mode to last about 3 s), and its \
rate is the messages over the time from the first fed to the last handled. The p99 is target-app's own, of \
`on_message` (its truth file); CPU is the process's. perf-user traces `target_app::*`, every function, as a user \
tracing their own program would start; bpftrace is compared on the server's two functions instead.";

const SERVER_RUN: &str = "nginx serves a 600-byte page from 127.0.0.1 with one worker, run as `nobody` from its own \
config in a temporary directory (sendfile, keep-alive, an access-log line per request written to /dev/null);";

const SERVER_LOAD: &str = "with 1 connection (each request waits for the last answer) or 8 (the worker and wrk \
busy on both cores); the p99 is wrk's. bpftrace runs its plain latency script on the worker \
(`-p`): per function, the entry time in a map keyed by thread and a `hist()` of the time at return.";
