//! The spans' rows (`--span`) in the text, CSV and Markdown tables: the same latency columns as
//! functions, plus what matching lost.

use std::fmt::Write as _;

use super::{csv_field, csv_latency, latency_cells, text_cells, truncate};
use crate::{
    model::Exemplar,
    output::{escape::control, report::Report},
    units::fmt_ns,
};

/// The spans table and where each span runs from and to; nothing without spans.
pub(super) fn text(r: &Report, o: &mut String) {
    if r.spans.is_empty() {
        return;
    }
    let width = r.spans.iter().map(|s| s.row.symbol.chars().count()).max().unwrap_or(8).clamp(8, 40);
    let _ = writeln!(
        o,
        "\n{:<width$} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "SPAN", "STARTS", "COUNT", "MIN", "P50", "P90", "P99", "P99.9", "MAX", "UNMATCHED"
    );
    for s in &r.spans {
        let f = &s.row;
        let _ = writeln!(
            o,
            "{:<width$} {:>9} {:>9} {} {:>9}",
            truncate(&control(&f.symbol), width),
            f.calls,
            f.latency.count,
            text_cells(&latency_cells(f, true)),
            s.starts_lost + s.ends_without_start,
        );
    }
    for s in &r.spans {
        let _ = writeln!(o, "  {}: {} .. {}", control(&s.row.symbol), control(&s.from), control(&s.to));
    }
}

/// A slow span: its key and the threads it ran across.
pub(super) fn exemplar_line(e: &Exemplar) -> Option<String> {
    let span = e.span.as_ref()?;
    Some(format!(
        "  {} span {} key {}: tid {} ({}) -> tid {} ({})",
        fmt_ns(e.duration_ns),
        control(&e.symbol),
        span.key,
        span.start_tid,
        control(&span.start_thread),
        e.tid,
        control(&e.thread)
    ))
}

pub(super) fn csv(r: &Report, o: &mut String) {
    for s in &r.spans {
        let _ = writeln!(o, "span,{},{},,,,,,", csv_field(&s.row.symbol), csv_latency(&s.row.latency));
    }
}

pub(super) fn markdown(r: &Report, o: &mut String) {
    if r.spans.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n| span | from | to | starts | count | p50 | p90 | p99 | p99.9 | max | unmatched |");
    let _ = writeln!(o, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cell = |s: &str| control(s).replace('|', "\\|").replace('`', "'");
    for s in &r.spans {
        let f = &s.row;
        let _ = writeln!(
            o,
            "| `{}` | `{}` | `{}` | {} | {} | {} | {} |",
            cell(&f.symbol),
            cell(&s.from),
            cell(&s.to),
            f.calls,
            f.latency.count,
            latency_cells(f, false).join(" | "),
            s.starts_lost + s.ends_without_start
        );
    }
}
