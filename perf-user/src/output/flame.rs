//! `perf-user flamegraph`: a report's time as folded stacks, rendered to SVG by `inferno`.
//!
//! Widths are nanoseconds of wall time summed over all calls. With a call tree in the report
//! (`call_tree[]`), frames nest by real call paths: each traced callee is drawn inside the caller
//! that called it, never again as a root, so the roots' widths sum to the traced root time. Older
//! reports draw one root per function (callees then appear twice). `--slow-only` draws the slow
//! calls (exemplars) only, each outermost one a root with its heaviest callees inside.

use std::fmt::Write as _;

use crate::{
    model::{Attribution, Exemplar, SyscallUse},
    output::report::{CallNodeReport, FunctionReport, Report},
};

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
    wait_lines(a, &f.attribution.syscalls, &mut line);
}

/// The frames after own CPU and callees, the same for a function and a slow call: syscalls by
/// name, off-CPU and interference.
fn wait_lines(a: &Attribution, syscalls: &[SyscallUse], line: &mut impl FnMut(&str, u64)) {
    // syscalls_ns is syscall wall time minus the off-CPU time inside syscalls; the per-name wall
    // times only say how it divides, so it is split in their proportions.
    let shares = split(a.syscalls_ns, &syscalls.iter().map(|s| s.total_ns).collect::<Vec<_>>());
    let attributed: u64 = shares.iter().sum();
    for (s, ns) in syscalls.iter().zip(shares) {
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

/// What the flame graph is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Source {
    /// Every call: nested by call path when the report has a call tree, else one root per function.
    #[default]
    AllCalls,
    /// The slow calls kept (`exemplars[]`): each outermost one a root, its heaviest callees inside.
    SlowOnly,
}

/// The folded stacks (`frame;frame;… ns` per line).
pub fn folded(r: &Report, source: Source) -> String {
    let mut o = String::new();
    match source {
        Source::SlowOnly => slow_lines(&mut o, r),
        Source::AllCalls if !r.call_tree.is_empty() => tree_lines(&mut o, r),
        Source::AllCalls => {
            for f in &r.functions {
                // Two functions of one name in two objects stay two frames.
                function_lines(&mut o, f, &r.shown_name(f));
            }
        }
    }
    o
}

/// One call path's own parts, under its stack of callers; its callees draw their own lines.
fn tree_lines(o: &mut String, r: &Report) {
    let nodes = &r.call_tree;
    let mut stacks: Vec<String> = Vec::with_capacity(nodes.len());
    for n in nodes {
        // Depth first: a caller comes before its callees, so its stack is already there.
        let caller = n.parent.and_then(|p| stacks.get(p)).cloned();
        // Named as the tables name its function: `object:symbol` when two objects share it.
        let name = frame(&r.node_function(n).map_or_else(|| n.symbol.clone(), |f| r.shown_name(f)));
        let stack = match caller {
            Some(c) => format!("{c};{name}"),
            None => name,
        };
        stacks.push(stack);
    }
    for (i, n) in nodes.iter().enumerate() {
        let stack = &stacks[i];
        let mut line = |part: &str, ns: u64| {
            if ns > 0 {
                let _ = writeln!(o, "{stack};{part} {ns}");
            }
        };
        if n.open {
            continue;
        }
        line("self_oncpu", n.totals.self_oncpu_ns);
        syscall_lines(&mut line, n.totals.syscalls_ns, r.node_function(n));
        line("offcpu;blocked", n.totals.offcpu_blocked_ns);
        line("offcpu;runqueue", n.totals.offcpu_runqueue_ns);
        // `--interference` takes its parts out of own CPU time; a path keeps no split of them.
        let parts = n.totals.self_oncpu_ns
            + n.totals.callees_ns
            + n.totals.syscalls_ns
            + n.totals.offcpu_blocked_ns
            + n.totals.offcpu_runqueue_ns;
        line("interference", n.totals.total_ns.saturating_sub(parts));
        let drawn: u64 = children(nodes, i).map(|c| c.totals.total_ns).sum();
        line("callees;(no kept path)", n.totals.callees_ns.saturating_sub(drawn));
    }
}

fn children(nodes: &[CallNodeReport], i: usize) -> impl Iterator<Item = &CallNodeReport> {
    nodes.iter().filter(move |c| c.parent == Some(i))
}

/// The syscall part split over the function's syscall names, as `function_lines` does.
fn syscall_lines(line: &mut impl FnMut(&str, u64), syscalls_ns: u64, f: Option<&FunctionReport>) {
    let names = f.map(|f| f.attribution.syscalls.as_slice()).unwrap_or_default();
    let shares = split(syscalls_ns, &names.iter().map(|s| s.total_ns).collect::<Vec<_>>());
    let attributed: u64 = shares.iter().sum();
    for (s, ns) in names.iter().zip(shares) {
        line(&format!("syscalls;{}", frame(&s.name)), ns);
    }
    line("syscalls;(unnamed)", syscalls_ns.saturating_sub(attributed));
}

/// Whether slow call `inner` ran inside slow call `outer` (same thread, within its time).
fn inside(inner: &Exemplar, outer: &Exemplar) -> bool {
    !std::ptr::eq(inner, outer)
        && inner.tid == outer.tid
        && outer.start_ns <= inner.start_ns
        && inner.start_ns.saturating_add(inner.duration_ns) <= outer.start_ns.saturating_add(outer.duration_ns)
}

/// The slow calls: those inside another slow call are already drawn within it, as its callees.
fn slow_lines(o: &mut String, r: &Report) {
    let ex: Vec<&Exemplar> = r.exemplars.iter().filter(|e| e.span.is_none()).collect();
    for e in ex.iter().filter(|e| !ex.iter().any(|outer| inside(e, outer))) {
        let name = frame(&e.symbol);
        let a = &e.attribution;
        let mut line = |stack: &str, ns: u64| {
            if ns > 0 {
                let _ = writeln!(o, "{name};{stack} {ns}");
            }
        };
        line("self_oncpu", a.self_oncpu_ns);
        let named: u64 = e.callees.iter().map(|c| c.total_ns).sum::<u64>().min(a.callees_ns);
        let shares = split(named, &e.callees.iter().map(|c| c.total_ns).collect::<Vec<_>>());
        for (c, ns) in e.callees.iter().zip(shares) {
            line(&frame(&c.symbol), ns);
        }
        line("callees;(other)", a.callees_ns - named);
        wait_lines(a, &e.syscalls, &mut line);
    }
}

/// The SVG of `folded(r, source)`.
pub fn svg(r: &Report, source: Source, title: &str) -> Result<Vec<u8>, FlameError> {
    let lines = folded(r, source);
    if lines.is_empty() {
        return Err(FlameError::Empty);
    }
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = crate::output::escape::control(title).into_owned();
    opt.subtitle = Some(
        match source {
            Source::SlowOnly => "slow calls only: width = their wall time (ns), each traced callee inside its caller",
            Source::AllCalls if !r.call_tree.is_empty() => {
                "width = wall time (ns) summed over all calls, nested by call path"
            }
            Source::AllCalls => "width = wall time (ns) summed over all calls; callees also appear as their own roots",
        }
        .into(),
    );
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
        model::{Attribution, PathTotals, SyscallUse},
        output::report::{AttributionReport, SCHEMA},
    };

    #[test]
    fn control_characters_never_reach_the_folded_text_or_the_svg() {
        let mut r = report();
        r.functions[0].symbol = "app::\x1b]0;pwned\x07f".into();
        let folded = folded(&r, Source::AllCalls);
        assert!(!folded.chars().any(|c| c.is_control() && c != '\n'), "{folded}");
        assert!(folded.contains("\\x1b]0:pwned\\x07f"), "{folded}");
        let svg = svg(&r, Source::AllCalls, "pid 1 /bin/\x1b[2J").unwrap_or_default();
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
        let f = folded(&report(), Source::AllCalls);
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
        let s = String::from_utf8(svg(&report(), Source::AllCalls, "t").unwrap_or_default()).unwrap_or_default();
        assert!(
            s.starts_with("<?xml") && s.contains("app::f") && s.contains("self_oncpu"),
            "{}",
            &s[..200.min(s.len())]
        );
        assert!(matches!(svg(&Report::default(), Source::AllCalls, "t"), Err(FlameError::Empty)));
    }

    fn node(id: usize, parent: Option<usize>, symbol: &str, total_ns: u64, self_ns: u64) -> CallNodeReport {
        CallNodeReport {
            id,
            parent,
            symbol: symbol.into(),
            depth: u32::from(parent.is_some()),
            totals: PathTotals {
                calls: 1,
                total_ns,
                self_oncpu_ns: self_ns,
                callees_ns: total_ns - self_ns,
                ..PathTotals::default()
            },
            ..CallNodeReport::default()
        }
    }

    /// Root frame → summed width of the folded lines.
    fn roots(folded: &str) -> std::collections::BTreeMap<String, u64> {
        let mut m = std::collections::BTreeMap::new();
        for l in folded.lines() {
            let (stack, ns) = l.rsplit_once(' ').unwrap_or_default();
            let root = stack.split(';').next().unwrap_or_default().to_string();
            *m.entry(root).or_default() += ns.parse::<u64>().unwrap_or_default();
        }
        m
    }

    #[test]
    fn nested_by_call_path_roots_sum_to_the_root_time_and_callees_are_never_roots() {
        let mut r = report();
        // f calls g twice as long as h; g also calls h; f's callee time not in a kept path: 50.
        r.call_tree = vec![
            node(0, None, "app::f", 1000, 250),
            node(1, Some(0), "app::g", 500, 400),
            node(2, Some(1), "app::h", 100, 100),
            node(3, Some(0), "app::h", 200, 200),
            node(4, None, "app::idle", 40, 40),
        ];
        let f = folded(&r, Source::AllCalls);
        let roots = roots(&f);
        assert_eq!(roots.keys().collect::<Vec<_>>(), ["app::f", "app::idle"], "{f}");
        assert_eq!(roots.values().sum::<u64>(), 1040, "the roots' totals: {f}");
        assert_eq!(roots["app::f"], 1000);
        let lines: Vec<&str> = f.lines().collect();
        assert!(lines.contains(&"app::f;app::g;app::h;self_oncpu 100"), "{f}");
        assert!(lines.contains(&"app::f;app::h;self_oncpu 200"), "{f}");
        assert!(lines.contains(&"app::f;callees;(no kept path) 50"), "{f}");
        let svg = String::from_utf8(svg(&r, Source::AllCalls, "t").unwrap_or_default()).unwrap_or_default();
        assert!(svg.contains("nested by call path"));
    }

    /// `malloc` in the executable and in libc, both called from f: two frames, each named by its
    /// object, each with its own function's syscalls.
    #[test]
    fn nested_nodes_of_one_symbol_in_two_objects_are_two_frames() {
        let mut r = report();
        let malloc = |object: &str, syscall: &str| FunctionReport {
            symbol: "malloc".into(),
            object: object.into(),
            attribution: AttributionReport {
                syscalls: vec![SyscallUse { name: syscall.into(), count: 1, total_ns: 10 }],
                ..AttributionReport::default()
            },
            ..FunctionReport::default()
        };
        r.functions.push(malloc("/bin/app", "brk"));
        r.functions.push(malloc("/lib/libc.so.6", "mmap"));
        let with = |mut n: CallNodeReport, object: &str| {
            n.object = object.into();
            n.totals.syscalls_ns = 5;
            n.totals.self_oncpu_ns -= 5;
            n
        };
        r.call_tree = vec![
            node(0, None, "app::f", 1000, 700),
            with(node(1, Some(0), "malloc", 200, 200), "/bin/app"),
            with(node(2, Some(0), "malloc", 100, 100), "/lib/libc.so.6"),
        ];
        let f = folded(&r, Source::AllCalls);
        let lines: Vec<&str> = f.lines().collect();
        assert!(lines.contains(&"app::f;app:malloc;self_oncpu 195"), "{f}");
        assert!(lines.contains(&"app::f;libc.so.6:malloc;self_oncpu 95"), "{f}");
        assert!(lines.contains(&"app::f;app:malloc;syscalls;brk 5"), "{f}");
        assert!(lines.contains(&"app::f;libc.so.6:malloc;syscalls;mmap 5"), "{f}");
    }

    #[test]
    fn slow_only_draws_outermost_slow_calls_with_their_heaviest_callees() {
        use crate::model::CalleeUse;
        let slow = |symbol: &str, tid: u32, start_ns: u64, duration_ns: u64, callees_ns: u64| Exemplar {
            symbol: symbol.into(),
            tid,
            start_ns,
            duration_ns,
            attribution: Attribution { self_oncpu_ns: duration_ns - callees_ns, callees_ns, ..Attribution::default() },
            ..Exemplar::default()
        };
        let mut outer = slow("app::on_message", 1, 1000, 500, 450);
        outer.callees = vec![CalleeUse { fn_id: 1, symbol: "app::check".into(), count: 1, total_ns: 400 }];
        let mut r = report();
        r.exemplars = vec![
            outer,
            slow("app::check", 1, 1050, 400, 0),
            // Same times, another thread: not inside.
            slow("app::check", 2, 1050, 300, 0),
        ];
        let f = folded(&r, Source::SlowOnly);
        let roots = roots(&f);
        assert_eq!(roots.get("app::on_message"), Some(&500), "{f}");
        assert_eq!(roots.get("app::check"), Some(&300), "only the other thread's: {f}");
        assert!(f.lines().any(|l| l == "app::on_message;app::check 400"), "{f}");
        assert!(f.lines().any(|l| l == "app::on_message;callees;(other) 50"), "{f}");
    }
}
