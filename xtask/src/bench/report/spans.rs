//! Section 11 of the report: what one span costs under perf-user's `--span` and under bpftrace's
//! keyed-timing script, each over the two empty uprobes every tool pays first.

use std::fmt::Write as _;

use super::cell;
use crate::bench::{
    results::Results,
    spans::{FLOOR, UNTRACED},
    stats::{Cell, added, ratio},
    text::{ns, times},
};

/// Section 11: ns per span (both endpoints), what each tracer adds, and its own work over the floor.
pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 11. Spans: one keyed span against bpftrace's script (ns per span)\n");
    let _ = writeln!(
        md,
        "bench-target calls `push_rbp(i)` then `push_rbp_twin(i)`; perf-user runs `--span \
         bench=push_rbp(arg0)..push_rbp_twin(arg0)`, bpftrace `@start[arg0] = nsecs` at the first and \
         `hist(nsecs - @start[arg0]); delete(@start[arg0])` at the second. \"Own work\" is what the tool \
         adds over two empty uprobes on the same functions.\n"
    );
    let _ = writeln!(
        md,
        "| tracer | ns/span | added | own work over the floor | vs bpftrace's own work | tracer CPU (% of one core) |\n\
         |---|---|---|---|---|---|"
    );
    let find = |label: &str| -> Cell {
        r.spans
            .iter()
            .find(|s| s.tracer == label)
            .map_or_else(|| Err(format!("no {label} run")), |s| s.ns_per_span.clone())
    };
    let (base, floor) = (find(UNTRACED), find(FLOOR));
    let bpftrace_own = r
        .spans
        .iter()
        .find(|s| s.tracer.starts_with("bpftrace keyed"))
        .map_or_else(|| Err("no bpftrace run".to_string()), |s| added(&s.ns_per_span, &floor));
    for s in &r.spans {
        let dash = || "—".to_string();
        let (add, own, vs) = match s.tracer {
            UNTRACED => (dash(), dash(), dash()),
            FLOOR => (ns(&added(&s.ns_per_span, &base)), dash(), dash()),
            _ => {
                let own = added(&s.ns_per_span, &floor);
                (ns(&added(&s.ns_per_span, &base)), ns(&own), times(&ratio(&own, &bpftrace_own)))
            }
        };
        let cpu = match (&s.tracer_cpu_pct, s.tracer) {
            (_, UNTRACED) => dash(),
            (Ok(v), _) => format!("{v:.1}"),
            (Err(e), _) => e.clone(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            s.tracer,
            cell(&ns(&s.ns_per_span)),
            cell(&add),
            cell(&own),
            cell(&vs),
            cell(&cpu)
        );
    }
}
