//! Section 5 of the report: how long attaching and detaching N functions takes, and a detach that
//! outlived the run's cap.

use std::fmt::Write as _;

use super::cell;
use crate::bench::results::Results;

/// Section 5: attach and detach time by number of functions.
pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 5. Attach time\n");
    let _ = writeln!(
        md,
        "perf-user start to its `attached N probes` line (symbols, calibration, load, attach), and SIGINT to \
         exit (final read, detach, report).\n\n\
         | functions | probes | attach | detach | detach per uprobe | runs |\n|---|---|---|---|---|---|"
    );
    for a in &r.attach {
        match &a.result {
            Ok(x) => {
                let uprobes = x.probes.saturating_sub(4).max(1) as f64;
                let (detach, per) = match (x.detach_s, x.detach_over_s) {
                    (Some(d), _) => (format!("{d:.3} s"), format!("{:.1} ms", d / uprobes * 1000.0)),
                    (None, Some(cap)) => (format!("> {cap:.0} s (finished in the background)"), "—".into()),
                    (None, None) => ("?".into(), "—".into()),
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.3} s | {detach} | {per} | {} |",
                    a.functions, x.probes, x.attach_s, x.runs
                );
            }
            Err(e) => {
                let _ = writeln!(md, "| {} | {} | | | | |", a.functions, cell(e));
            }
        }
    }
}
