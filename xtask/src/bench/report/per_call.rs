//! Section 1 of the report: the per-call cost of tracing an empty function, in separate runs and
//! paired ones, split into where it goes, and per attach mode and timing mode.

use std::fmt::Write as _;

use super::func_row;
use crate::bench::{
    results::Results,
    stats::{Cell, Runs, added_runs, med, median_ci, ratio},
    text::{ci_text, ns, times},
};

/// Section 1, table by table.
pub(super) fn section(md: &mut String, r: &Results) {
    separate_runs(md, r);
    paired_runs(md, r);
    where_cost_goes(md, r);
    attached_as_pair(md, r);
    latency_only(md, r);
    sampled(md, r);
}

/// The separate runs of each function: absolute and added ns per call, and the ratios.
fn separate_runs(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 1. Per-call cost on an empty function (ns per call)\n");
    let _ = writeln!(
        md,
        "Added = traced − untraced ns/call, as bench-target measures its own loop. Floor: perf-user \
         `--probe-mode empty` (one session program that does nothing, on the same attach points); \
         + tracepoints: the same with the syscall and scheduler tracepoints attribution attaches \
         (`--syscalls`), which each probe's own syscalls pass through. perf-user: default flags \
         (a session, attribution).\n"
    );
    let _ = writeln!(
        md,
        "| function | first instruction | untraced | floor added | floor + tracepoints added | perf-user added | \
         bpftrace added | perf-user / floor + tracepoints | perf-user / floor | perf-user / bpftrace |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for c in &r.calls {
        let pu = added_runs(&c.perf_user, &c.untraced);
        let floor = added_runs(&c.floor, &c.untraced);
        let floor_tp = added_runs(&c.floor_tracepoints, &c.untraced);
        let bt = added_runs(&c.bpftrace, &c.untraced);
        func_row(
            md,
            c.func,
            &[
                format!("`{}`", c.first_insn.as_ref().unwrap_or_else(|e| e)),
                ns(&med(&c.untraced)),
                ns(&floor),
                ns(&floor_tp),
                ns(&pu),
                ns(&bt),
                times(&ratio(&pu, &floor_tp)),
                times(&ratio(&pu, &floor)),
                times(&ratio(&pu, &bt)),
            ],
        );
    }
}

/// The paired runs: each run's ratio of the twin's added cost to the function's.
fn paired_runs(md: &mut String, r: &Results) {
    let _ = writeln!(
        md,
        "\nPaired runs (`bench-target pair`): the function and its twin (the same code at another address) \
         called in alternating blocks of 100, each timed on its own, with empty programs on the function and \
         the mode named on the twin (bpftrace on the function in the last column); each run gives the ratio \
         of the twin's added cost to the function's, the median of {} runs with its 95 % interval. Empty \
         programs on both sides test the method itself. perf-user's default mode brings its tracepoints, which \
         both functions' probe syscalls pass through, so its ratio is over the floor + tracepoints.\n\n\
         | function | empty / floor | clock floor / floor | latency-only / floor | perf-user / floor + tracepoints | \
         latency-only sampled / bpftrace |\n|---|---|---|---|---|---|",
        r.pairs.first().and_then(|p| p.same.as_ref().ok()).map_or(0, Vec::len)
    );
    for p in &r.pairs {
        let ci_cell = |runs: &Runs| match median_ci(runs) {
            Ok(ci) => ci_text(&ci),
            Err(e) => e,
        };
        let cells = [&p.same, &p.clock, &p.latency, &p.perf_user, &p.latency_sampled_vs_bpftrace].map(ci_cell);
        func_row(md, p.func, &cells);
    }
}

/// perf-user's added cost split into the probes, the tracepoints and its programs.
fn where_cost_goes(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\nWhere perf-user's added cost goes, per call:\n");
    for c in &r.calls {
        let pu = added_runs(&c.perf_user, &c.untraced);
        let floor = added_runs(&c.floor, &c.untraced);
        let tracepoints = added_runs(&c.floor_tracepoints, &c.floor);
        let programs = added_runs(&c.perf_user, &c.floor_tracepoints);
        let share = |part: &Cell| match ratio(part, &pu) {
            Ok(x) => format!("{:.0} %", x * 100.0),
            Err(e) => e,
        };
        let _ = writeln!(
            md,
            "- `{}`: the probes {} ns ({}), the tracepoints on the probes' own syscalls {} ns ({}), \
             perf-user's programs {} ns ({})",
            c.func,
            ns(&floor),
            share(&floor),
            ns(&tracepoints),
            share(&tracepoints),
            ns(&programs),
            share(&programs)
        );
    }
}

/// `--attach-mode multi`: an entry and a return program instead of one session program.
fn attached_as_pair(md: &mut String, r: &Results) {
    let _ = writeln!(
        md,
        "\nAttached as an entry and a return program (`--attach-mode multi`: `uprobe_multi` links, the \
         default where the kernel has no sessions), against empty programs attached the same way, with \
         the tracepoints:\n\n| function | pair floor + tracepoints added | perf-user pair added | \
         perf-user / floor |\n|---|---|---|---|"
    );
    for c in &r.calls {
        let pu = added_runs(&c.pair, &c.untraced);
        let floor = added_runs(&c.pair_floor, &c.untraced);
        func_row(md, c.func, &[ns(&floor), ns(&pu), times(&ratio(&pu, &floor))]);
    }
}

/// `--latency-only` against the floor and the clock floor.
fn latency_only(md: &mut String, r: &Results) {
    let _ = writeln!(
        md,
        "\nWithout attribution (`--latency-only`: the entry time kept in the session cookie, no thread \
         state, no tracepoints), against the floor and the clock floor (`--probe-mode clock`: the empty \
         session program reading the clock at entry and at return, the least any timing adds):\n\n\
         | function | floor added | clock floor added | clock floor / floor | latency-only added | \
         latency-only / floor | latency-only / clock floor |\n|---|---|---|---|---|---|---|"
    );
    for c in &r.calls {
        let lat = added_runs(&c.latency, &c.untraced);
        let floor = added_runs(&c.floor, &c.untraced);
        let clock = added_runs(&c.clock_floor, &c.untraced);
        func_row(
            md,
            c.func,
            &[
                ns(&floor),
                ns(&clock),
                times(&ratio(&clock, &floor)),
                ns(&lat),
                times(&ratio(&lat, &floor)),
                times(&ratio(&lat, &clock)),
            ],
        );
    }
}

/// `--sample 10`, with and without attribution, against the sampled floors and bpftrace.
fn sampled(md: &mut String, r: &Results) {
    match &r.sampling {
        Ok(()) => {
            let _ = writeln!(
                md,
                "\nSampled (`--sample 10`: every call counted, one in ten timed, the others' return probe \
                 skipped), against the sampled floor (the empty session program making the same draw; \
                 with the tracepoints for the default mode) and bpftrace:\n\n\
                 | function | sampled floor added | floor / bpftrace | latency-only sampled added | / floor | \
                 / bpftrace | sampled floor + tracepoints added | perf-user sampled added | / floor + tracepoints | \
                 / bpftrace |\n|---|---|---|---|---|---|---|---|---|---|"
            );
            for c in &r.calls {
                let bt = added_runs(&c.bpftrace, &c.untraced);
                let floor = added_runs(&c.sampled_floor, &c.untraced);
                let lat = added_runs(&c.latency_sampled, &c.untraced);
                let floor_tp = added_runs(&c.sampled_floor_tracepoints, &c.untraced);
                let pu = added_runs(&c.sampled, &c.untraced);
                func_row(
                    md,
                    c.func,
                    &[
                        ns(&floor),
                        times(&ratio(&floor, &bt)),
                        ns(&lat),
                        times(&ratio(&lat, &floor)),
                        times(&ratio(&lat, &bt)),
                        ns(&floor_tp),
                        ns(&pu),
                        times(&ratio(&pu, &floor_tp)),
                        times(&ratio(&pu, &bt)),
                    ],
                );
            }
        }
        Err(why) => {
            let _ = writeln!(md, "\nSampled tracing: {why}.");
        }
    }
}
