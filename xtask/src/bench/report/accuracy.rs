//! Section 6 of the report: perf-user's percentiles against the truth (an empty function, a 20 µs
//! spin) and bpftrace's fullest bucket beside them.

use std::fmt::Write as _;

use super::cell;
use crate::bench::{results::Results, text::thousands};

/// Section 6: the empty functions' p50 and p99, then the spin's.
pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 6. Accuracy\n");
    let _ = writeln!(
        md,
        "| calls of | truth | perf-user p50 | perf-user p99 | bpftrace hist bucket |\n|---|---|---|---|---|"
    );
    for c in &r.calls {
        let _ = writeln!(
            md,
            "| `{}` (empty) | ~0 ns | {} | {} | {} |",
            c.func,
            cell(&c.p50_ns.as_ref().map_or_else(|e| e.clone(), |v| format!("{v:.0} ns"))),
            cell(&c.p99_ns.as_ref().map_or_else(|e| e.clone(), |v| format!("{v:.0} ns"))),
            cell(c.bpftrace_bucket.as_ref().unwrap_or_else(|e| e))
        );
    }
    let spin_ns = r.spin_ns as f64;
    match &r.spin {
        Ok(s) => {
            let _ = writeln!(
                md,
                "| `spin` | {} ns | {:.0} ns ({:+.2} %) | {:.0} ns ({:+.2} %) | |",
                thousands(spin_ns),
                s.p50_ns,
                (s.p50_ns - spin_ns) / spin_ns * 100.0,
                s.p99_ns,
                (s.p99_ns - spin_ns) / spin_ns * 100.0
            );
        }
        Err(e) => {
            let _ = writeln!(md, "| `spin` | {} ns | {} | | |", thousands(spin_ns), cell(e));
        }
    }
}
