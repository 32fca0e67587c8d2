//! Section 7 of the report: each BPF program's run time per configuration, from the kernel's own
//! accounting.

use std::fmt::Write as _;

use crate::bench::results::{EMPTY_PROGRAMS, Results};

/// Section 7: runs per call, ns per run and the work above the empty program's.
pub(super) fn section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## 7. Where perf-user's cost goes: BPF program run time\n");
    match &r.programs {
        Ok(rows) => {
            let empty = rows
                .iter()
                .filter(|p| p.config == EMPTY_PROGRAMS)
                .map(|p| p.ns_per_run)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
            let _ = writeln!(
                md,
                "`push_rbp` traced with `kernel.bpf_stats_enabled=1` (which adds its own clock reads to every \
                 run: compare with the empty programs, {}). *Work* is ns/run minus the empty program's.\n\n\
                 | configuration | program | runs per call | ns per run | work |\n|---|---|---|---|---|",
                empty.map_or_else(|| "not measured".into(), |e| format!("{e:.0} ns/run"))
            );
            for p in rows {
                let work = empty.map_or_else(String::new, |e| format!("{:.0}", p.ns_per_run - e));
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {:.2} | {:.0} | {work} |",
                    p.config, p.program, p.runs_per_call, p.ns_per_run
                );
            }
        }
        Err(e) => {
            let _ = writeln!(md, "{e}");
        }
    }
}
