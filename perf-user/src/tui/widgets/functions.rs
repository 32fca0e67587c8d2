//! The functions table: one row per traced function, sortable.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Margin, Rect},
    style::{Color, Modifier, Style, Stylize},
    text::Line,
    widgets::{Cell, Paragraph, Row, StatefulWidget, TableState, Widget},
};

use crate::app::{App, FunctionRow, SortKey, Tail, Verdict};

#[derive(Clone, Copy)]
pub(crate) enum FnCol {
    Calls,
    Rate,
    P50,
    P90,
    P99,
    P999,
    Max,
    Own,
    Callees,
    Sys,
    Off,
    /// p99 over the last ticks, as a sparkline (not a number: `fn_cell` leaves it empty).
    Trend,
}

/// (column, title, width, priority, sort key): display order; priority decides what narrow
/// terminals drop. Each width holds its title and the sort arrow.
pub(crate) const FN_COLS: [(FnCol, &str, u16, u8, SortKey); 12] = [
    (FnCol::Calls, "Calls", 7, 11, SortKey::Calls),
    (FnCol::Rate, "Calls/s", 9, 3, SortKey::Rate),
    (FnCol::P50, "p50", 7, 2, SortKey::P50),
    (FnCol::P90, "p90", 7, 10, SortKey::P90),
    (FnCol::P99, "p99", 7, 1, SortKey::P99),
    (FnCol::P999, "p99.9", 7, 4, SortKey::P999),
    (FnCol::Max, "Max", 7, 5, SortKey::Max),
    (FnCol::Own, "Own", 5, 6, SortKey::OwnCpu),
    (FnCol::Callees, "Callee", 7, 9, SortKey::Callees),
    (FnCol::Sys, "Sys", 5, 8, SortKey::Syscalls),
    (FnCol::Off, "Off", 5, 7, SortKey::OffCpu),
    (FnCol::Trend, "p99 trend", 10, 12, SortKey::P99),
];

/// Narrowest name column before numbers are dropped.
pub(crate) const MIN_NAME: u16 = 20;

pub(crate) fn fn_cell(col: FnCol, r: &FunctionRow) -> String {
    let l = &r.latency;
    // Timed calls, not all calls: an entry-only, sampled-out or guard-detached function has calls
    // but no times, and must read `—`, never a measured `0ns`.
    let n = l.count;
    // Nothing split (untimed, or `--latency-only`): a dash, not 0 %.
    let s = &r.shares;
    let split = s.self_oncpu + s.callees + s.syscalls + s.offcpu + s.interference > 0.0;
    let share = |v: f64| if n == 0 || !split { UNTIMED.to_string() } else { pct(v) };
    match col {
        FnCol::Calls => fit_count(r.calls),
        FnCol::Rate => fit_rate(r.calls_per_s),
        FnCol::P50 => lat_floor(l.p50_ns, n, r.floor_ns),
        FnCol::P90 => lat_floor(l.p90_ns, n, r.floor_ns),
        FnCol::P99 => lat_floor(l.p99_ns, n, r.floor_ns),
        FnCol::P999 => lat_floor(l.p999_ns, n, r.floor_ns),
        FnCol::Max => lat_floor(l.max_ns, n, r.floor_ns),
        FnCol::Own => share(r.shares.self_oncpu),
        FnCol::Callees => share(r.shares.callees),
        FnCol::Sys => share(r.shares.syscalls),
        FnCol::Off => share(r.shares.offcpu),
        FnCol::Trend => String::new(),
    }
}

/// A p99 or p99.9 cell's colour: red when above `--slow DURATION` or worse than `--baseline`,
/// green when better than the baseline.
pub(crate) fn tail_style(app: &App, col: FnCol, r: &FunctionRow) -> Style {
    let (tail, ns) = match col {
        FnCol::P99 => (Tail::P99, r.latency.p99_ns),
        FnCol::P999 => (Tail::P999, r.latency.p999_ns),
        _ => return Style::default(),
    };
    match app.tails.judge(app.function_key(r.id), tail, ns, r.latency.count) {
        Verdict::Worse => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        Verdict::Better => Style::default().fg(Color::Green),
        Verdict::Plain => Style::default(),
    }
}

pub struct FunctionTable<'a>(pub &'a App);

impl Widget for &FunctionTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let ui = &app.ui;
        let arrow = if ui.descending { "▼" } else { "▲" };
        let note = format!("{} sort {} {arrow} ", filter_note(app), ui.sort.label());
        let inner_w = area.width.saturating_sub(2 + 2); // borders, highlight symbol
        let keep = fit_columns(&FN_COLS.map(|c| (c.2, c.3)), inner_w, MIN_NAME);
        let cols: Vec<_> = FN_COLS.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| *c).collect();
        let fixed: u16 = cols.iter().map(|c| c.2 + 1).sum();
        let name_w = inner_w.saturating_sub(fixed);

        let title = |t: &str, key: SortKey| if key == ui.sort { format!("{t}{arrow}") } else { t.to_string() };
        let mut header = vec![Cell::from(title("Function", SortKey::Name))];
        header.extend(cols.iter().map(|c| match c.0 {
            FnCol::Trend => Cell::from(c.1),
            _ => right(title(c.1, c.4)),
        }));
        let mut widths = vec![Constraint::Length(name_w)];
        widths.extend(cols.iter().map(|c| Constraint::Length(c.2)));

        let height = usize::from(area.height.saturating_sub(3));
        let offset = scroll(ui.visible.len(), ui.selected[0], height);
        let shown = ui.visible.len().saturating_sub(offset).min(height);
        let rows: Vec<Row> = ui.visible[offset..offset + shown]
            .iter()
            .map(|&i| {
                let r = &app.derived.functions[i];
                // Functions whose probes are special are marked in the table: `!` single-stepped
                // (expensive), `x` detached by the overhead guard; the detail pane says more.
                let info = app.session.functions.get(r.id as usize);
                let mark = match info {
                    Some(f) if f.detached => "x ",
                    Some(f) if f.single_step => "! ",
                    _ => "",
                };
                let name = format!("{mark}{}", app.symbol(r.id));
                let mut cells = vec![Cell::from(ellipsize_left(&name, usize::from(name_w)))];
                cells.extend(cols.iter().map(|c| match c.0 {
                    FnCol::Trend => Cell::from(trend(app.p99_history(r.id), usize::from(c.2))),
                    _ => right(fn_cell(c.0, r)).style(tail_style(app, c.0, r)),
                }));
                let row = Row::new(cells);
                if r.calls == 0 || info.is_some_and(|f| f.detached) { row.style(Style::default().dim()) } else { row }
            })
            .collect();
        let block = table_block(app, Line::from(note)).title_bottom(position_note(offset, shown, ui.visible.len()));
        let table = selectable_table(rows, widths, Row::new(header), block);
        let mut state = TableState::default().with_selected((!ui.visible.is_empty()).then(|| ui.selected[0] - offset));
        StatefulWidget::render(table, area, buf, &mut state);

        if ui.visible.is_empty() {
            let msg = if app.derived.functions.is_empty() {
                "no functions traced (attach with --func GLOB)"
            } else if !ui.show_uncalled && app.derived.functions.iter().all(|r| r.calls == 0) {
                "no calls in this window yet (z lists the functions without calls)"
            } else {
                "no function matches the filter (Esc clears it)"
            };
            let inner = Rect { y: area.y + 2, height: area.height.saturating_sub(3), ..area }.inner(Margin::new(1, 0));
            Paragraph::new(msg).dim().render(inner, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LatencySummary;

    #[test]
    fn an_untimed_function_with_calls_shows_dashes_not_0ns() {
        // Entry-only or sampled out: calls counted, nothing timed.
        let row = FunctionRow { calls: 1234, latency: LatencySummary::default(), ..FunctionRow::default() };
        for (col, title, ..) in FN_COLS {
            let cell = fn_cell(col, &row);
            match title {
                "Calls" => assert_eq!(cell, "1234"),
                "Calls/s" | "p99 trend" => {}
                _ => assert_eq!(cell, UNTIMED, "{title}"),
            }
        }
    }
}
