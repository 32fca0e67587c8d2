//! The whole screen: which view goes where at each terminal size.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    widgets::Widget,
};

use crate::app::{App, Pane, View};

/// Main-area height below which the detail pane gives way to two summary lines.
pub(crate) const DETAIL_MIN_MAIN_HEIGHT: u16 = 28;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let header_h = if self.target_exited { 3 } else { 2 };
        let [header, main, footer] =
            Layout::vertical([Constraint::Length(header_h), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
        (&Header(self)).render(header, buf);
        match self.ui.view {
            View::Functions => functions_view(self, main, buf),
            View::Syscalls => (&SyscallTable(self)).render(main, buf),
            View::Exemplars => (&ExemplarTable(self)).render(main, buf),
            View::Tree => (&TreeTable(self)).render(main, buf),
            View::Spans => spans_view(self, main, buf),
        }
        if self.ui.view == View::Exemplars && self.ui.exemplar.open {
            (&Breakdown(self)).render(main, buf);
        }
        (&Footer(self)).render(footer, buf);
        if self.ui.help {
            (&Help).render(area, buf);
        }
    }
}

pub(crate) fn functions_view(app: &App, area: Rect, buf: &mut Buffer) {
    // Spans (`--span`) take their rows at the bottom while the rest stays usable.
    let spans_h = span_table_height(app);
    let area = if spans_h > 0 && area.height >= spans_h + 10 {
        let [rest, spans] = Layout::vertical([Constraint::Fill(1), Constraint::Length(spans_h)]).areas(area);
        (&SpanTable { app, selectable: false }).render(spans, buf);
        rest
    } else {
        area
    };
    if area.height >= DETAIL_MIN_MAIN_HEIGHT && area.width >= 60 {
        // The table takes what its rows need, the detail pane between 16 rows and 60 % of the rest.
        let wanted = app.ui.visible.len() as u16 + 3;
        let detail = area.height.saturating_sub(wanted).min(area.height * 6 / 10).max(16);
        let [table, detail_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(detail)]).areas(area);
        (&FunctionTable(app)).render(table, buf);
        lower_pane(app, detail_area, buf);
    } else if app.ui.pane != Pane::Detail && area.height >= 10 {
        // Short: the heatmap or the threads share the height with the table.
        let [table, lower] = Layout::vertical([Constraint::Fill(1), Constraint::Percentage(55)]).areas(area);
        (&FunctionTable(app)).render(table, buf);
        lower_pane(app, lower, buf);
    } else if area.height >= 10 {
        let [table, mini] = Layout::vertical([Constraint::Fill(1), Constraint::Length(2)]).areas(area);
        (&FunctionTable(app)).render(table, buf);
        (&MiniDetail(app)).render(mini, buf);
    } else {
        (&FunctionTable(app)).render(area, buf);
    }
}

/// Under the functions table: the detail pane, the heatmap (`h`) or the threads (`t`).
fn lower_pane(app: &App, area: Rect, buf: &mut Buffer) {
    match app.ui.pane {
        Pane::Detail => (&Detail(app)).render(area, buf),
        Pane::Heatmap => (&Heatmap(app)).render(area, buf),
        Pane::Threads => (&ThreadPane(app)).render(area, buf),
    }
}
