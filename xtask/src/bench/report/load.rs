//! Sections 3 and 4 of the report: the rate perf-user can trace, and its own CPU, memory and losses
//! at paced rates.

use std::fmt::Write as _;

use super::cell;
use crate::bench::{results::Results, text::thousands};

/// Sections 3–4: one row per load, the ceiling first.
pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 3–4. Throughput ceiling and perf-user's own cost\n");
    let _ = writeln!(
        md,
        "perf-user (default flags unless the row says otherwise, guard off) tracing `nop5` while bench-target \
         calls it at a paced rate, or flat out. *Lost* also lists calls the target made that perf-user did not \
         count; slow-call exemplars beyond the newest `--exemplars` (1,000 by default), which perf-user received \
         and let go, are shown beside it but are not lost events.\n\n\
         | load | reached calls/s | perf-user CPU (% of one core) | perf-user peak RSS | lost |\n|---|---|---|---|---|"
    );
    for l in std::iter::once(&r.ceiling).chain(&r.loads) {
        match &l.result {
            Ok(x) => {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.2} | {:.1} MiB | {} |",
                    l.label,
                    thousands(x.reached_per_s),
                    x.cpu_pct,
                    x.vmhwm_kb as f64 / 1024.0,
                    cell(&(x.lost_text() + &x.retired_text()))
                );
            }
            Err(e) => {
                let _ = writeln!(md, "| {} | {} | | | |", l.label, cell(e));
            }
        }
    }
}
