//! Columns that fit: which columns a width allows, scrolling, and the shared table frame.

use ratatui::{
    layout::{Constraint, Flex},
    style::{Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, HighlightSpacing, Row, Table},
};

use crate::app::{App, View};

/// Picks the columns to show: by priority (lower first) while the fixed widths plus one space
/// each leave at least `min_flex` cells for the flexible column. Returns one flag per column.
pub(crate) fn fit_columns(widths: &[(u16, u8)], avail: u16, min_flex: u16) -> Vec<bool> {
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&i| widths[i].1);
    let mut used = min_flex;
    let mut keep = vec![false; widths.len()];
    for i in order {
        let need = widths[i].0 + 1;
        if used + need <= avail {
            used += need;
            keep[i] = true;
        }
    }
    keep
}

/// Rows `offset..offset+height` of a list of `len` with `selected` visible (it sits at the bottom
/// when scrolled: stateless, so drawing needs no mutable scroll state).
pub(crate) fn scroll(len: usize, selected: usize, height: usize) -> usize {
    if height == 0 || len <= height { 0 } else { selected.saturating_sub(height - 1).min(len - height) }
}

pub(crate) fn table_block(app: &App, extra: Line<'static>) -> Block<'static> {
    let mut tabs = Vec::with_capacity(8);
    let count = |v: View| match v {
        View::Functions => format!("{}/{}", app.ui.visible.len(), app.derived.functions.len()),
        View::Syscalls => app.ui.visible_syscalls.len().to_string(),
        View::Exemplars => app.ui.visible_exemplars.len().to_string(),
        View::Tree => app.derived.tree.nodes.len().to_string(),
        View::Spans => app.session.spans.len().to_string(),
    };
    let views = app.views();
    for (i, v) in views.iter().enumerate() {
        let text = format!(" {} ({}) ", v.label(), count(*v));
        tabs.push(if *v == app.ui.view {
            Span::styled(
                format!("▸{}", text.trim_start()),
                Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            )
        } else {
            Span::raw(text)
        });
        if i + 1 < views.len() {
            tabs.push(Span::raw("│").dim());
        }
    }
    Block::bordered().title(Line::from(tabs)).title(extra.right_aligned())
}

pub(crate) fn filter_note(app: &App) -> String {
    if app.ui.filter.is_empty() && !app.ui.filter_editing {
        String::new()
    } else {
        format!(" filter \"{}\" ", app.ui.filter)
    }
}

pub(crate) fn position_note(offset: usize, shown: usize, len: usize) -> Line<'static> {
    if len > shown && shown > 0 {
        Line::from(format!(" {}-{} of {} ", offset + 1, offset + shown, len)).right_aligned()
    } else {
        Line::default()
    }
}

pub(crate) fn selectable_table<'a>(
    rows: Vec<Row<'a>>,
    widths: Vec<Constraint>,
    header: Row<'a>,
    block: Block<'a>,
) -> Table<'a> {
    Table::new(rows, widths)
        .header(header.style(Style::default().add_modifier(Modifier::BOLD)).bottom_margin(0))
        .block(block)
        .column_spacing(1)
        .flex(Flex::Start)
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
}
