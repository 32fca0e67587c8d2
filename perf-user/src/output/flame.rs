//! `perf-user flamegraph`: a report's attribution as folded stacks (one root per function, split
//! into its five parts and the syscall part by syscall name), rendered to SVG by `inferno`.
//!
//! Widths are nanoseconds of wall time summed over all calls. Callees are traced functions with
//! their own roots, so their time appears twice: under the caller's `callees` and as their own root.

use std::fmt::Write as _;

use crate::output::report::{FunctionReport, Report};

#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    #[error("no function in the report has recorded time; nothing to draw")]
    Empty,
    #[error("rendering the flame graph: {0}")]
    Render(std::io::Error),
}

/// Frame names may not contain the folded format's separator, nor control characters: the folded
/// text is printed (`-o -`) and the SVG is XML, which has no place for them.
fn frame(name: &str) -> String {
    crate::output::escape::control(name).replace(';', ":")
}

/// Splits `total` over `weights` proportionally; rounding leftovers go to the largest weight, so
/// the parts always sum to `total`.
fn split(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut parts: Vec<u64> = weights.iter().map(|&w| (u128::from(total) * u128::from(w) / sum) as u64).collect();
    let given: u64 = parts.iter().sum();
    // Ties go to the first: the result does not depend on how max_by_key breaks them.
    if let Some(i) = (0..weights.len()).max_by_key(|&i| (weights[i], std::cmp::Reverse(i))) {
        parts[i] += total.saturating_sub(given);
    }
    parts
}

fn function_lines(o: &mut String, f: &FunctionReport, shown: &str) {
    let name = frame(shown);
    let a = &f.attribution.parts;
    let mut line = |stack: &str, ns: u64| {
        if ns > 0 {
            let _ = writeln!(o, "{name};{stack} {ns}");
        }
    };
    line("self_oncpu", a.self_oncpu_ns);
    line("callees", a.callees_ns);
    // syscalls_ns is syscall wall time minus the off-CPU time inside syscalls; the per-name wall
    // times only say how it divides, so it is split in their proportions.
    let names = &f.attribution.syscalls;
    let shares = split(a.syscalls_ns, &names.iter().map(|s| s.total_ns).collect::<Vec<_>>());
    let attributed: u64 = shares.iter().sum();
    for (s, ns) in names.iter().zip(shares) {
        line(&format!("syscalls;{}", frame(&s.name)), ns);
    }
    line("syscalls;(unnamed)", a.syscalls_ns.saturating_sub(attributed));
    line("offcpu;blocked", a.offcpu_blocked_ns);
    line("offcpu;runqueue", a.offcpu_runqueue_ns);
    // `--interference`: taken from own CPU (or syscalls), so siblings of those, not children.
    line("interference;irq", a.irq_ns);
    line("interference;softirq", a.softirq_ns);
    line("interference;steal", a.steal_ns);
}

/// The folded stacks (`frame;frame;… ns` per line), in report order.
pub fn folded(r: &Report) -> String {
    let mut o = String::new();
    for f in &r.functions {
        // Two functions of one name in two objects stay two frames.
        function_lines(&mut o, f, &r.shown_name(f));
    }
    o
}

/// The SVG of `folded(r)`.
pub fn svg(r: &Report, title: &str) -> Result<Vec<u8>, FlameError> {
    let lines = folded(r);
    if lines.is_empty() {
        return Err(FlameError::Empty);
    }
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = crate::output::escape::control(title).into_owned();
    opt.subtitle = Some("width = wall time (ns) summed over all calls; callees also appear as their own roots".into());
    opt.count_name = "ns".into();
    opt.deterministic = true;
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, lines.lines(), &mut out).map_err(FlameError::Render)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{Attribution, SyscallUse},
        output::report::{AttributionReport, SCHEMA},
    };

    #[test]
    fn control_characters_never_reach_the_folded_text_or_the_svg() {
        let mut r = report();
        r.functions[0].symbol = "app::\x1b]0;pwned\x07f".into();
        let folded = folded(&r);
        assert!(!folded.chars().any(|c| c.is_control() && c != '\n'), "{folded}");
        assert!(folded.contains("\\x1b]0:pwned\\x07f"), "{folded}");
        let svg = svg(&r, "pid 1 /bin/\x1b[2J").unwrap_or_default();
        let opts = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
        let text = String::from_utf8_lossy(&svg);
        let doc = roxmltree::Document::parse_with_options(&text, opts);
        assert!(doc.is_ok(), "not well-formed XML: {:?}", doc.err());
    }

    fn report() -> Report {
        Report {
            schema: SCHEMA.into(),
            functions: vec![
                FunctionReport {
                    symbol: "app::f".into(),
                    attribution: AttributionReport {
                        parts: Attribution {
                            self_oncpu_ns: 100,
                            callees_ns: 50,
                            syscalls_ns: 31,
                            offcpu_blocked_ns: 20,
                            offcpu_runqueue_ns: 10,
                            irq_ns: 7,
                            steal_ns: 3,
                            ..Attribution::default()
                        },
                        syscalls: vec![
                            SyscallUse { name: "write".into(), count: 1, total_ns: 40 },
                            SyscallUse { name: "futex".into(), count: 1, total_ns: 20 },
                        ],
                    },
                    ..FunctionReport::default()
                },
                FunctionReport {
                    symbol: "app::idle".into(),
                    attribution: AttributionReport::default(),
                    ..FunctionReport::default()
                },
            ],
            ..Report::default()
        }
    }

    #[test]
    fn folded_lines_carry_every_part_and_sum_to_the_wall_time() {
        let f = folded(&report());
        let lines: Vec<&str> = f.lines().collect();
        assert!(lines.contains(&"app::f;self_oncpu 100"), "{f}");
        assert!(lines.contains(&"app::f;callees 50"));
        assert!(lines.contains(&"app::f;syscalls;write 21"), "{f}");
        assert!(lines.contains(&"app::f;syscalls;futex 10"));
        assert!(lines.contains(&"app::f;offcpu;blocked 20"));
        assert!(lines.contains(&"app::f;offcpu;runqueue 10"));
        assert!(lines.contains(&"app::f;interference;irq 7"), "{f}");
        assert!(lines.contains(&"app::f;interference;steal 3"), "{f}");
        let sum: u64 = lines.iter().filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum();
        assert_eq!(sum, 221);
        assert!(!f.contains("app::idle"), "functions without time draw nothing");
    }

    #[test]
    fn split_is_proportional_and_exact() {
        assert_eq!(split(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split(7, &[0, 0]), vec![0, 0]);
        assert_eq!(split(u64::MAX, &[u64::MAX, 1]).iter().map(|&v| u128::from(v)).sum::<u128>(), u128::from(u64::MAX));
    }

    #[test]
    fn svg_names_the_parts_and_an_empty_report_is_an_error() {
        let s = String::from_utf8(svg(&report(), "t").unwrap_or_default()).unwrap_or_default();
        assert!(
            s.starts_with("<?xml") && s.contains("app::f") && s.contains("self_oncpu"),
            "{}",
            &s[..200.min(s.len())]
        );
        assert!(matches!(svg(&Report::default(), "t"), Err(FlameError::Empty)));
    }
}
