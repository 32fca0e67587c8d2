//! Section 8 of the report: perf-user's userspace hot paths, as criterion measured them, with
//! the notes the benches print about the UI's frame budget.

use std::fmt::Write as _;

use super::cell;
use crate::bench::{results::Results, text::duration};

/// Section 8: one row per criterion bench, then the notes the benches print.
pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 8. Userspace hot paths (criterion)\n");
    match &r.hot_paths {
        Ok(h) => {
            let _ = writeln!(
                md,
                "`cargo bench -p perf-user` (`perf-user/benches/`): the work perf-user does per tick and per \
                 function (merging per-CPU histograms, percentiles, windows), per frame of the UI, and once \
                 at attach (symbols of a real binary). Median per iteration.\n\n\
                 | benchmark | median | ± |\n|---|---|---|"
            );
            for row in &h.rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} |",
                    cell(&row.name),
                    duration(row.median_ns),
                    duration(row.deviation_ns)
                );
            }
            for note in &h.notes {
                let _ = writeln!(md, "\n{note}");
            }
        }
        Err(e) => {
            let _ = writeln!(md, "{e}");
        }
    }
}
