//! The call-tree view: one row per call path, indented under its caller, with its wall time,
//! calls, own CPU time and share of its caller's time (uftrace's graph, live).

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Margin, Rect},
    style::Stylize,
    text::Line,
    widgets::{Cell, Paragraph, Row, StatefulWidget, TableState, Widget},
};

use crate::app::{App, View};

pub struct TreeTable<'a>(pub &'a App);

/// (title, width, priority): the function column takes what is left.
pub(crate) const TREE_COLS: [(&str, u16, u8); 5] =
    [("Total", 8, 0), ("Calls", 8, 1), ("Own", 8, 2), ("Mean", 8, 4), ("Parent%", 7, 3)];

impl Widget for &TreeTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let ui = &app.ui;
        let tree = &app.derived.tree;
        let inner_w = area.width.saturating_sub(4);
        let keep = fit_columns(&TREE_COLS.map(|c| (c.1, c.2)), inner_w, 24);
        let fixed: u16 = TREE_COLS.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.1 + 1).sum();
        let name_w = usize::from(inner_w.saturating_sub(fixed));
        let mut header = vec![Cell::from("Call path (traced callers above)")];
        let mut widths = vec![Constraint::Length(name_w as u16)];
        for (c, _) in TREE_COLS.iter().zip(&keep).filter(|(_, k)| **k) {
            header.push(right(c.0.to_string()));
            widths.push(Constraint::Length(c.1));
        }
        let height = usize::from(area.height.saturating_sub(3));
        let len = ui.visible_tree.len();
        let at = ui.selected[View::Tree as usize];
        let offset = scroll(len, at, height);
        let shown = len.saturating_sub(offset).min(height);
        let rows: Vec<Row> = ui.visible_tree[offset..offset + shown]
            .iter()
            .map(|&i| {
                let n = &tree.nodes[i];
                let glyph = match (n.children.is_empty(), ui.tree.folded.contains(&n.path)) {
                    (true, _) => "  ",
                    (false, true) => "▸ ",
                    (false, false) => "▾ ",
                };
                let indent = "  ".repeat((depth_in(tree, i)).min(name_w / 4));
                let head = format!("{indent}{glyph}");
                let name = ellipsize_left(app.symbol(n.fn_id), name_w.saturating_sub(head.chars().count()));
                let open = if n.open { "(running) " } else { "" };
                let values = [
                    fit_ns(n.totals.total_ns),
                    if n.open { "-".to_string() } else { fit_count(n.totals.calls) },
                    if n.open { "-".to_string() } else { fit_ns(n.totals.self_oncpu_ns) },
                    if n.open {
                        "-".to_string()
                    } else {
                        fit_ns(n.totals.total_ns.checked_div(n.totals.calls).unwrap_or(0))
                    },
                    pct(tree.share_of_parent(i)),
                ];
                let mut cells = vec![Cell::from(format!("{head}{open}{name}"))];
                cells.extend(values.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| right(v)));
                Row::new(cells)
            })
            .collect();
        let block = table_block(app, Line::from(format!(" {} ", app.derived.window.label())))
            .title_bottom(Line::from(" Enter/←→ fold · l heaviest callee · u caller "))
            .title_bottom(position_note(offset, shown, len));
        let table = selectable_table(rows, widths, Row::new(header), block);
        let mut state = TableState::default().with_selected((len > 0).then(|| at - offset));
        StatefulWidget::render(table, area, buf, &mut state);
        if len == 0 {
            let inner = Rect { y: area.y + 2, height: area.height.saturating_sub(3), ..area }.inner(Margin::new(1, 0));
            Paragraph::new(
                "no traced call has returned in this window (--latency-only and --no-call-tree keep no tree)",
            )
            .dim()
            .render(inner, buf);
        }
    }
}

/// How many callers node `i` has in the tree (its indent).
fn depth_in(tree: &crate::model::CallTree, mut i: usize) -> usize {
    let mut d = 0;
    while let Some(p) = tree.nodes[i].parent {
        d += 1;
        i = p;
    }
    d
}
