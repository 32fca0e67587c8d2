//! The selected function per thread (`t`, with `--per-thread`): which threads ran it and how each
//! one's calls split, off-CPU as blocked and run queue.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Margin, Rect},
    style::{Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Cell, Paragraph, Row, Table, Widget},
};

use crate::{app::App, model::ThreadFuncSample};

/// (title, width): the thread column takes what is left.
const COLS: [(&str, u16); 8] =
    [("Calls", 7), ("Mean", 7), ("Max", 7), ("Own", 5), ("Callee", 6), ("Sys", 5), ("Blocked", 7), ("RunQ", 5)];

pub struct ThreadPane<'a>(pub &'a App);

impl Widget for &ThreadPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(row) = app.selected_function() else {
            Block::bordered().title(" Threads ").render(area, buf);
            return;
        };
        let mut threads: Vec<&ThreadFuncSample> =
            app.derived.sample.threads.iter().filter(|t| t.fn_id == row.id && t.count > 0).collect();
        threads.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.tid.cmp(&b.tid)));
        let block = Block::bordered()
            .title(Line::from(vec![
                Span::raw(" "),
                Span::styled(
                    ellipsize_left(app.symbol(row.id), usize::from(area.width.saturating_sub(40))),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" · by thread ({}) ", threads.len())),
            ]))
            .title(Line::from(" t: detail ").right_aligned());
        let inner_w = area.width.saturating_sub(2);
        let keep = fit_columns(&COLS.map(|c| (c.1, 1)), inner_w, 14);
        let cols: Vec<_> = COLS.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| *c).collect();
        let name_w = inner_w.saturating_sub(cols.iter().map(|c| c.1 + 1).sum());
        let mut header = vec![Cell::from("Thread")];
        header.extend(cols.iter().map(|c| right(c.0.to_string())));
        let mut widths = vec![Constraint::Length(name_w)];
        widths.extend(cols.iter().map(|c| Constraint::Length(c.1)));
        let rows: Vec<Row> = threads
            .iter()
            .take(usize::from(area.height.saturating_sub(3)))
            .map(|t| {
                let name = app.info.thread_names.iter().find(|(tid, _)| *tid == t.tid).map_or("", |(_, n)| n.as_str());
                let mut cells = vec![Cell::from(ellipsize_left(&format!("{} {name}", t.tid), usize::from(name_w)))];
                cells.extend(cols.iter().map(|c| right(cell(c.0, t))));
                Row::new(cells)
            })
            .collect();
        let table = Table::new(rows, widths)
            .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
            .block(block)
            .column_spacing(1);
        Widget::render(table, area, buf);
        if threads.is_empty() {
            let msg = if app.derived.sample.threads.is_empty() {
                "no per-thread statistics (attach with --per-thread)"
            } else {
                "no thread ran this function in this window"
            };
            let inner = Rect { y: area.y + 2, height: area.height.saturating_sub(3), ..area }.inner(Margin::new(1, 0));
            Paragraph::new(msg).dim().render(inner, buf);
        }
    }
}

fn cell(col: &str, t: &ThreadFuncSample) -> String {
    let a = &t.attribution;
    let total = a.total_ns().max(1) as f64;
    let share = |ns: u64| pct(ns as f64 / total);
    match col {
        "Calls" => fit_count(t.count),
        "Mean" => fit_ns(t.total_ns.checked_div(t.count).unwrap_or(0)),
        "Max" => fit_ns(t.max_ns),
        "Own" => share(a.self_oncpu_ns + a.interference_ns()),
        "Callee" => share(a.callees_ns),
        "Sys" => share(a.syscalls_ns),
        "Blocked" => share(a.offcpu_blocked_ns),
        _ => share(a.offcpu_runqueue_ns),
    }
}
