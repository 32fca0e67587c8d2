//! Section 10 of the report: what `--interference` adds and what the call tree costs per traced
//! call (paired runs and program time), and per interrupt, softirq and page fault (the
//! system-wide programs' run time).

use std::fmt::Write as _;

use crate::bench::{
    interference::PROGRAM_CONFIGS,
    results::{InterfProgram, InterferenceCost, Results},
    stats::{Runs, median_ci},
    text::ci_text,
};

pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 10. What `--interference` adds, and what the call tree costs\n");
    match &r.interference {
        Ok(c) => {
            paired(md, c);
            match &c.programs {
                Ok(rows) => programs(md, rows),
                Err(e) => {
                    let _ = writeln!(md, "\nProgram run time: {e}");
                }
            }
        }
        Err(e) => {
            let _ = writeln!(md, "{e}");
        }
    }
}

fn paired(md: &mut String, c: &InterferenceCost) {
    let ci_cell = |runs: &Runs| match median_ci(runs) {
        Ok(ci) => ci_text(&ci),
        Err(e) => e,
    };
    let _ = writeln!(
        md,
        "Paired runs (`bench-target pair`, as in section 1): perf-user's default mode on the function, and on \
         its twin the default mode again (the method's own ratio), with `--interference`, or without the call \
         tree (`--no-call-tree`); each run gives the ratio of the twin's added cost to the function's, the \
         median of {} runs with its 95 % interval.\n\n\
         | function | default / default | `--interference` / default | `--no-call-tree` / default |\n\
         |---|---|---|---|\n| `{}` | {} | {} | {} |",
        c.same.as_ref().map_or(0, Vec::len),
        c.func,
        ci_cell(&c.same),
        ci_cell(&c.interference),
        ci_cell(&c.no_call_tree)
    );
}

/// The median ns per run of the program whose (15-character) name starts with `prefix`.
fn ns(rows: &[InterfProgram], config: &str, prefix: &str) -> Option<f64> {
    rows.iter().find(|p| p.config == config && p.program.starts_with(prefix)).map(|p| p.ns_per_run)
}

/// Program work per traced call: each per-call program's ns per run times its runs per call.
fn per_call_ns(rows: &[InterfProgram], config: &str) -> f64 {
    let per_call = ["func_", "sys_", "sched_switch"];
    rows.iter()
        .filter(|p| p.config == config && per_call.iter().any(|k| p.program.starts_with(k)))
        .map(|p| p.ns_per_run * p.runs_per_call)
        .sum()
}

fn programs(md: &mut String, rows: &[InterfProgram]) {
    let _ = writeln!(
        md,
        "\n`push_rbp` traced with `kernel.bpf_stats_enabled=1` (which adds its own clock reads to every run, \
         about an empty program's run time: see section 7), every program that ran during the loop; the \
         interrupt, softirq and fault programs run for the whole machine.\n\n\
         | configuration | program | runs | runs per call | ns per run |\n|---|---|---|---|---|"
    );
    for p in rows {
        let _ = writeln!(
            md,
            "| {} | `{}` | {:.0} | {:.4} | {:.0} |",
            p.config, p.program, p.runs, p.runs_per_call, p.ns_per_run
        );
    }
    let (off, on, no_tree) = (PROGRAM_CONFIGS[0].0, PROGRAM_CONFIGS[1].0, PROGRAM_CONFIGS[2].0);
    let pair = |a: &str, b: &str| Some(ns(rows, on, a)? + ns(rows, on, b)?);
    let show = |v: Option<f64>| v.map_or_else(|| "none during the loop".to_string(), |v| format!("{v:.0} ns"));
    let _ = writeln!(
        md,
        "\nFrom these, per traced call: perf-user's programs do {:.0} ns of work with `--interference`, {:.0} ns \
         without, {:.0} ns without the call tree (`--no-call-tree`). Per event of the whole machine (entry + exit programs): device interrupt {}; local-timer \
         interrupt {}; softirq {}; user page fault of any process {}.",
        per_call_ns(rows, on),
        per_call_ns(rows, off),
        per_call_ns(rows, no_tree),
        show(pair("irq_entry", "irq_exit")),
        show(pair("local_timer_en", "local_timer_ex")),
        show(pair("softirq_entry", "softirq_exit")),
        show(ns(rows, on, "page_fault_use")),
    );
}
