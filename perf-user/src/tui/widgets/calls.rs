//! The syscalls and slow-calls (exemplars) views.

use super::*;
use std::fmt::Write as _;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Margin, Rect},
    style::{Color, Style, Stylize},
    text::Line,
    widgets::{Cell, Paragraph, Row, StatefulWidget, TableState, Widget},
};

use crate::app::{App, ExemplarSort};

pub struct SyscallTable<'a>(pub &'a App);

/// (title, width, priority). "Inside" is their wall time while a traced function was innermost:
/// the rows are ranked by it (idle waits of untraced code last), then by total time.
pub(crate) const SYS_COLS: [(&str, u16, u8); 8] = [
    ("Calls", 7, 1),
    ("Errors", 7, 4),
    ("p50", 7, 3),
    ("p99", 7, 2),
    ("Max", 7, 5),
    ("Inside", 8, 0),
    ("Total", 8, 0),
    ("Time%", 6, 6),
];

impl Widget for &SyscallTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let ui = &app.ui;
        let inner_w = area.width.saturating_sub(4);
        let keep = fit_columns(&SYS_COLS.map(|c| (c.1, c.2)), inner_w, 16);
        let fixed: u16 = SYS_COLS.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.1 + 1).sum();
        let name_w = inner_w.saturating_sub(fixed);
        // The long label where it fits; cut, it read "Syscall (while any" at 80 columns.
        const LONG: &str = "Syscall (while any traced code ran)";
        let label = if usize::from(name_w) >= LONG.chars().count() { LONG } else { "Syscall" };
        let mut header = vec![Cell::from(label)];
        let mut widths = vec![Constraint::Length(name_w)];
        for (c, _) in SYS_COLS.iter().zip(&keep).filter(|(_, k)| **k) {
            header.push(right(c.0.to_string()));
            widths.push(Constraint::Length(c.1));
        }
        let all_ns: u64 = app.derived.syscalls.iter().map(|s| s.total_ns).sum();
        let height = usize::from(area.height.saturating_sub(3));
        let len = ui.visible_syscalls.len();
        let offset = scroll(len, ui.selected[1], height);
        let shown = len.saturating_sub(offset).min(height);
        let rows: Vec<Row> = ui.visible_syscalls[offset..offset + shown]
            .iter()
            .map(|&i| {
                let s = &app.derived.syscalls[i];
                let values = [
                    fit_count(s.count),
                    fit_count(s.errors),
                    fit_ns(s.p50_ns),
                    fit_ns(s.p99_ns),
                    fit_ns(s.max_ns),
                    fit_ns(s.inside_ns),
                    fit_ns(s.total_ns),
                    pct(if all_ns == 0 { 0.0 } else { s.total_ns as f64 / all_ns as f64 }),
                ];
                let mut cells = vec![Cell::from(ellipsize_left(&s.name, usize::from(name_w)))];
                cells.extend(values.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| right(v)));
                let row = Row::new(cells);
                if s.errors > 0 { row.style(Style::default().fg(Color::Yellow)) } else { row }
            })
            .collect();
        let order = if app.info.syscalls_inside_only {
            " inside traced calls only (all: --syscalls) "
        } else {
            " by Inside, Total "
        };
        let block = table_block(app, Line::from(order)).title_bottom(position_note(offset, shown, len));
        let table = selectable_table(rows, widths, Row::new(header), block);
        let mut state = TableState::default().with_selected((len > 0).then(|| ui.selected[1] - offset));
        StatefulWidget::render(table, area, buf, &mut state);
        if len == 0 {
            let inner = Rect { y: area.y + 2, height: area.height.saturating_sub(3), ..area }.inner(Margin::new(1, 0));
            Paragraph::new("no syscalls seen in this window (attach with --syscalls)").dim().render(inner, buf);
        }
    }
}

pub struct ExemplarTable<'a>(pub &'a App);

/// (title, width, priority); the function and syscall columns share what is left.
pub(crate) const EX_COLS: [(&str, u16, u8); 9] = [
    ("At", 7, 1),
    ("Duration", 9, 0),
    ("Thread", 16, 3),
    ("Own", 5, 5),
    ("Callee", 6, 7),
    ("Sys", 5, 6),
    ("Blk", 5, 4),
    ("RunQ", 5, 8),
    ("Split", 10, 2),
];

impl Widget for &ExemplarTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let ui = &app.ui;
        let exemplars = app.exemplars();
        let inner_w = area.width.saturating_sub(4);
        let keep = fit_columns(&EX_COLS.map(|c| (c.1, c.2)), inner_w, 40);
        let fixed: u16 = EX_COLS.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.1 + 1).sum();
        let flex = inner_w.saturating_sub(fixed + 1);
        let fn_w = flex / 2;
        let ex = app.ui.exemplar;
        let arrow = if ex.descending { "▼" } else { "▲" };
        let (header, widths) = exemplar_header(ex.sort, arrow, &keep, fn_w, flex - fn_w);

        let height = usize::from(area.height.saturating_sub(3));
        let len = ui.visible_exemplars.len();
        let offset = scroll(len, ui.selected[2], height);
        let shown = len.saturating_sub(offset).min(height);
        let mut split_buf = Buffer::empty(Rect::new(0, 0, 10, 1));
        let rows: Vec<Row> = ui.visible_exemplars[offset..offset + shown]
            .iter()
            .filter_map(|&i| exemplars.get(i))
            .map(|e| exemplar_row(app, e, &keep, fn_w, &mut split_buf))
            .collect();
        let evicted = app.derived.lost.exemplars_evicted;
        let sort = format!(" sort {} {arrow} ", ex.sort.label());
        let note = if evicted > 0 {
            format!("{}{} evicted{sort}", filter_note(app), fit_count(evicted))
        } else {
            format!("{}{sort}", filter_note(app))
        };
        let block = table_block(app, Line::from(note))
            .title_bottom(Line::from(" Enter: breakdown · s: sort by time/duration "))
            .title_bottom(position_note(offset, shown, len));
        let table = selectable_table(rows, widths, Row::new(header), block);
        let mut state = TableState::default().with_selected((len > 0).then(|| ui.selected[2] - offset));
        StatefulWidget::render(table, area, buf, &mut state);
        if len == 0 {
            let inner = Rect { y: area.y + 2, height: area.height.saturating_sub(3), ..area }.inner(Margin::new(1, 0));
            Paragraph::new("no slow calls yet (exemplars are calls over the --slow threshold)")
                .dim()
                .render(inner, buf);
        }
    }
}

/// The slow-calls table's header (the sorted column marked) and column widths: the function,
/// the columns that fit (`keep`), and the top syscalls.
fn exemplar_header(
    sort: ExemplarSort,
    arrow: &str,
    keep: &[bool],
    fn_w: u16,
    sys_w: u16,
) -> (Vec<Cell<'static>>, Vec<Constraint>) {
    let sorted = |t: &str| match (t, sort) {
        ("At", ExemplarSort::Time) | ("Duration", ExemplarSort::Duration) => format!("{t}{arrow}"),
        _ => t.to_string(),
    };
    let mut header = vec![Cell::from("Function")];
    let mut widths = vec![Constraint::Length(fn_w)];
    for (c, _) in EX_COLS.iter().zip(keep).filter(|(_, k)| **k) {
        header.push(if c.0 == "Split" || c.0 == "Thread" { Cell::from(c.0) } else { right(sorted(c.0)) });
        widths.push(Constraint::Length(c.1));
    }
    header.push(Cell::from("Top syscalls"));
    widths.push(Constraint::Length(sys_w));
    (header, widths)
}

/// One slow call's row: name, the kept columns, its split bar (drawn into `split_buf`), then its
/// heaviest callee and its syscalls.
fn exemplar_row(
    app: &App,
    e: &crate::model::Exemplar,
    keep: &[bool],
    fn_w: u16,
    split_buf: &mut Buffer,
) -> Row<'static> {
    let s = e.attribution.shares();
    split_buf.reset();
    (&AttributionBar { shares: s }).render(split_buf.area, split_buf);
    let split: String = split_buf.content().iter().map(|c| c.symbol()).collect();
    let a = &e.attribution;
    // A slow span's time runs across threads: it has no parts to show.
    let share = |v: f64| if e.span.is_some() { "—".to_string() } else { pct(v) };
    let part = |ns: u64| share(ns as f64 / a.total_ns().max(1) as f64);
    let values = [
        format!("+{}", fmt_uptime(e.at_ns)),
        fit_ns(e.duration_ns),
        ellipsize_left(&thread(e), 16),
        share(s.self_oncpu),
        share(s.callees),
        share(s.syscalls),
        part(a.offcpu_blocked_ns),
        part(a.offcpu_runqueue_ns),
        if e.span.is_some() { "span".into() } else { split },
    ];
    let mut cells = vec![Cell::from(ellipsize_left(app.exemplar_name(e), usize::from(fn_w)))];
    for ((v, _), c) in values.into_iter().zip(keep).zip(&EX_COLS).filter(|((_, k), _)| **k) {
        cells.push(if c.0 == "Split" || c.0 == "Thread" { Cell::from(v) } else { right(v) });
    }
    let mut sys = String::new();
    if let Some(ends) = &e.span {
        let _ = write!(sys, "key {} from {} {}", ends.key, ends.start_tid, ends.start_thread);
    }
    if let Some(c) = e.callees.first() {
        let share = pct(c.total_ns as f64 / e.duration_ns.max(1) as f64);
        let _ = write!(sys, "→{} {share}", app.callee_name(c));
    }
    for u in &e.syscalls {
        if !sys.is_empty() {
            sys.push_str(", ");
        }
        let _ = write!(sys, "{}×{} {}", u.name, u.count, fit_ns(u.total_ns));
    }
    cells.push(Cell::from(sys));
    Row::new(cells)
}
