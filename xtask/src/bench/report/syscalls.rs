//! Section 2 of the report: what tracing syscalls costs the getppid loop, per tracer, against
//! perf-user's own cost and with each tracer's CPU.

use std::fmt::Write as _;

use super::cell;
use crate::bench::{
    results::Results,
    stats::{added, ratio},
    text::{ns, times},
};

/// Section 2: the getppid loop's ns per call under each tracer, and the tracer's CPU.
pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 2. Syscall tracing overhead (getppid loop, ns per call)\n");
    let _ = writeln!(
        md,
        "| tracer | ns/call | added | vs perf-user added | tracer CPU during the loop (% of one core) |\n\
         |---|---|---|---|---|"
    );
    let base = r.syscalls.iter().find(|s| s.tracer == "untraced").map(|s| s.ns_per_call.clone());
    let base = base.unwrap_or_else(|| Err("no untraced run".into()));
    let pu_added = r
        .syscalls
        .iter()
        .find(|s| s.tracer.starts_with("perf-user"))
        .map_or_else(|| Err("no perf-user run".to_string()), |s| added(&s.ns_per_call, &base));
    for s in &r.syscalls {
        let (add, vs) = if s.tracer == "untraced" {
            ("—".to_string(), "—".to_string())
        } else {
            let a = added(&s.ns_per_call, &base);
            (ns(&a), times(&ratio(&a, &pu_added)))
        };
        let cpu = match &s.tracer_cpu_pct {
            Ok(v) => format!("{v:.1}"),
            Err(e) => e.clone(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            s.tracer,
            cell(&ns(&s.ns_per_call)),
            cell(&add),
            cell(&vs),
            if s.tracer == "untraced" { "—".into() } else { cell(&cpu) }
        );
    }
}
