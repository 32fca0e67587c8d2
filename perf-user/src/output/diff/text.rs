//! The diff as text for people and as JSON for CI.

use super::*;

use crate::{
    output::escape::{self, control},
    units::{fmt_count, fmt_ns},
};

pub fn json(d: &Diff) -> Vec<u8> {
    // Plain structs of numbers and strings: serialising cannot fail.
    let mut v = serde_json::to_vec_pretty(d).unwrap_or_default();
    v.push(b'\n');
    v
}

fn fmt_pct(m: &MetricChange) -> String {
    let star = if m.significance == Significance::None { "" } else { "*" };
    match m.change_pct {
        Some(p) if p.abs() >= 1000.0 => format!("{p:+.0}%{star}"),
        Some(p) => format!("{p:+.1}%{star}"),
        None if m.new_ns == 0 => "=".into(),
        None => "new".into(),
    }
}

fn fmt_interval(i: Option<Interval>) -> String {
    match i {
        None => "-".into(),
        Some(Interval { lo_ns, hi_ns: Some(hi) }) => format!("[{}, {}]", fmt_ns(lo_ns), fmt_ns(hi)),
        Some(Interval { lo_ns, hi_ns: None }) => format!("[{}, ?]", fmt_ns(lo_ns)),
    }
}

fn table(o: &mut String, title: &str, entries: &[Entry]) {
    if entries.is_empty() {
        return;
    }
    let names: Vec<_> = entries.iter().map(|e| control(&e.name)).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(8).clamp(8, 60);
    let _ = writeln!(
        o,
        "{:<10} {:<width$} {:>15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "VERDICT", title, "CALLS", "P50", "P90", "P99", "P99.9", "MEAN", "MAX"
    );
    for (e, name) in entries.iter().zip(&names) {
        let calls = format!("{}→{}", fmt_count(e.base_count), fmt_count(e.new_count));
        let _ = write!(o, "{:<10} {:<width$} {:>15}", e.verdict.label(), name, calls);
        for m in &e.metrics {
            let _ = write!(o, " {:>9}", fmt_pct(m));
        }
        o.push('\n');
    }
}

/// `; steal 2.0µs → 310µs a call, page faults 0.00 → 16.00 a call`: what grew, when named.
fn causes_text(causes: &[super::cause::Cause]) -> String {
    let named: Vec<String> = causes
        .iter()
        .map(|c| match c.kind {
            "steal" | "interrupts" => {
                format!("{} {} → {} a call", c.kind, fmt_ns(c.base_per_call as u64), fmt_ns(c.new_per_call as u64))
            }
            kind => format!("{} {:.2} → {:.2} a call", kind.replace('_', " "), c.base_per_call, c.new_per_call),
        })
        .collect();
    if named.is_empty() { String::new() } else { format!("; {}", named.join(", ")) }
}

/// The human view: tables of changes (`*` = significant), then why each non-unchanged entry got its verdict.
pub fn text(d: &Diff) -> String {
    let mut o = String::new();
    header(&mut o, d);
    tables(&mut o, d);
    reasons(&mut o, d);
    summary(&mut o, d);
    // File names and anything else from the inputs: shown, never obeyed by the terminal.
    escape::lines(&o).into_owned()
}

/// The two files compared and the gate the verdicts were judged on.
fn header(o: &mut String, d: &Diff) {
    let _ = writeln!(
        o,
        "base {} (pid {}, {})  →  new {} (pid {}, {})",
        d.base.file,
        d.base.pid,
        fmt_ns(d.base.duration_ns),
        d.new.file,
        d.new.pid,
        fmt_ns(d.new.duration_ns)
    );
    let _ = writeln!(
        o,
        "judged on {}: slower beyond +{}% warns, beyond +{}% regresses; only significant changes count (* = 95 %)\n",
        d.metric.name(),
        d.warn_above_pct,
        d.fail_above_pct
    );
}

/// One table per kind of entry; spans and syscalls only when there are some.
fn tables(o: &mut String, d: &Diff) {
    table(o, "FUNCTION", &d.functions);
    if !d.spans.is_empty() {
        o.push('\n');
        table(o, "SPAN", &d.spans);
    }
    if !d.syscalls.is_empty() {
        o.push('\n');
        table(o, "SYSCALL", &d.syscalls);
    }
}

/// Why each entry that is not unchanged got its verdict, one line each.
fn reasons(o: &mut String, d: &Diff) {
    let notable: Vec<&Entry> =
        d.functions.iter().chain(&d.spans).chain(&d.syscalls).filter(|e| e.verdict != Verdict::Unchanged).collect();
    if !notable.is_empty() {
        o.push('\n');
    }
    for e in notable {
        let m = &e.metric;
        let why = match e.verdict {
            Verdict::Slower if m.change_pct.is_some_and(|p| p >= d.fail_above_pct) => format!(
                "significant, but only at least {:+.1}% is certain, below the +{}% gate",
                m.change_bound_pct.unwrap_or(0.0),
                d.fail_above_pct
            ),
            Verdict::Appeared => format!("no calls in base, {} in new", e.new_count),
            Verdict::Vanished => format!("{} calls in base, none in new", e.base_count),
            Verdict::Inconclusive => "not significant: too few calls or overlapping intervals".into(),
            _ => String::new(),
        };
        let ci = if m.base_ci.is_some() {
            format!(" (95% CI {} → {})", fmt_interval(m.base_ci), fmt_interval(m.new_ci))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "{} {}: {} {} → {} {}{}{}{}{}",
            e.verdict.label(),
            control(&e.name),
            m.metric.name(),
            fmt_ns(m.base_ns),
            fmt_ns(m.new_ns),
            fmt_pct(m),
            ci,
            if why.is_empty() { "" } else { "; " },
            why,
            causes_text(&e.causes)
        );
    }
}

/// The verdict counts per kind and the FAIL line.
fn summary(o: &mut String, d: &Diff) {
    let line = |s: &Counts| {
        format!(
            "{} regressed, {} slower, {} improved, {} inconclusive, {} unchanged, {} appeared, {} vanished",
            s.regressed, s.slower, s.improved, s.inconclusive, s.unchanged, s.appeared, s.vanished
        )
    };
    let _ = writeln!(o, "\nfunctions: {}", line(&d.summary));
    if let Some(s) = &d.span_summary {
        let _ = writeln!(o, "spans: {}", line(s));
    }
    if !d.syscalls.is_empty() {
        let _ = writeln!(o, "syscalls (shown, not gating): {}", line(&d.syscall_summary));
    }
    if d.failed {
        let _ = writeln!(o, "FAIL: a function's or span's {} regressed beyond +{}%", d.metric.name(), d.fail_above_pct);
    }
}
