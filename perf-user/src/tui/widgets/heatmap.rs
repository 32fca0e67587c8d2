//! The latency heatmap of the selected function (`h`): time left to right, one column per tick,
//! latency bottom to top by powers of two, the calls in each cell as a shade (darker: more).

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Widget},
};

use crate::{app::App, model::HeatColumn};

/// From no calls to the most in any cell shown; a log scale, so a few slow calls still show.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];
/// The latency labels on the left.
const AXIS_W: u16 = 7;

pub struct Heatmap<'a>(pub &'a App);

impl Widget for &Heatmap<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(row) = app.selected_function() else {
            Block::bordered().title(" Latency over time ").render(area, buf);
            return;
        };
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let block = Block::bordered()
            .title(Line::from(vec![
                Span::raw(" "),
                Span::styled(ellipsize_left(app.symbol(row.id), usize::from(area.width.saturating_sub(44))), bold),
                Span::raw(" · latency over time "),
            ]))
            .title(Line::from(" shade: calls (log) · h: detail ").right_aligned());
        let inner = block.inner(area);
        block.render(area, buf);
        let empty = std::collections::VecDeque::new();
        let (heat, times) = app.heat(row.id);
        let heat = heat.unwrap_or(&empty);
        if inner.height < 3 || inner.width <= AXIS_W + 4 {
            return;
        }
        let plot_w = usize::from(inner.width - AXIS_W - 1);
        let cols: Vec<&HeatColumn> = heat.iter().skip(heat.len().saturating_sub(plot_w)).collect();
        let (lo, hi) = row_range(&cols);
        let Some((lo, hi)) = lo.zip(hi) else {
            buf.set_line(inner.x, inner.y, &Line::from("no timed calls yet").dim(), inner.width);
            return;
        };
        let lines = inner.height - 1;
        // Powers of two per screen line: all rows fit, at least 1.
        let per = (u16::from(hi - lo) + 1).div_ceil(lines).max(1);
        let shown_rows = (u16::from(hi - lo) + 1).div_ceil(per);
        let top_y = inner.y + lines.saturating_sub(shown_rows);
        let max = cols.iter().flat_map(|c| c.cells.iter().map(|&(_, n)| n)).max().unwrap_or(1).max(1);
        for line in 0..shown_rows {
            let first = lo + (line * per) as u8;
            let y = inner.bottom() - 2 - line;
            if y < top_y {
                break;
            }
            let label = if line % 2 == 0 || per > 1 { fit_ns(1u64 << first.min(63)) } else { String::new() };
            buf.set_stringn(
                inner.x,
                y,
                format!("{label:>w$}", w = usize::from(AXIS_W)),
                usize::from(AXIS_W),
                Style::default().dim(),
            );
            for (x, c) in cols.iter().enumerate() {
                let n: u64 = c
                    .cells
                    .iter()
                    .filter(|&&(r, _)| r >= first && u16::from(r) < u16::from(first) + per)
                    .map(|&(_, n)| n)
                    .sum();
                let cell = &mut buf[(inner.x + AXIS_W + 1 + x as u16, y)];
                cell.set_char(SHADES[shade(n, max)]).set_fg(Color::LightRed);
            }
        }
        let span = match (times.iter().rev().nth(cols.len().saturating_sub(1)), times.back()) {
            (Some(a), Some(b)) => b.saturating_sub(*a),
            _ => 0,
        };
        let axis =
            format!("−{}{:>w$}", fmt_uptime(span), "now", w = cols.len().saturating_sub(fmt_uptime(span).len() + 1));
        buf.set_stringn(inner.x + AXIS_W + 1, inner.bottom() - 1, axis, plot_w, Style::default().dim());
    }
}

/// Lowest and highest latency rows with calls in any column.
fn row_range(cols: &[&HeatColumn]) -> (Option<u8>, Option<u8>) {
    let rows = cols.iter().flat_map(|c| c.cells.iter().filter(|c| c.1 > 0).map(|c| c.0));
    (rows.clone().min(), rows.max())
}

/// The shade of `n` calls when the fullest cell has `max`: 0 only for none, log-scaled above.
fn shade(n: u64, max: u64) -> usize {
    if n == 0 {
        return 0;
    }
    let f = (n as f64).ln_1p() / (max as f64).ln_1p();
    ((f * 4.0).ceil() as usize).clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_shows_and_only_the_fullest_cell_is_black() {
        assert_eq!(shade(0, 1000), 0);
        assert_eq!(shade(1, 1000), 1, "a single slow call is still visible");
        assert_eq!(shade(1000, 1000), 4);
        assert!(shade(30, 1000) < 4);
    }
}
