//! Colours and glyphs of the four parts of a call (ATTRIBUTION.md), and the split bar.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::Widget,
};

use crate::model::{Attribution, Shares};

/// (glyph, colour, label) for own CPU, callees, syscalls, off-CPU. The glyphs differ too, so the
/// bar reads without colour (and in text snapshots).
pub(crate) const PARTS: [(char, Color, &str); 4] = [
    ('█', Color::Green, "own CPU"),
    ('▓', Color::Blue, "callees"),
    ('▒', Color::Yellow, "syscalls"),
    ('░', Color::Red, "off-CPU"),
];

pub(crate) fn share_parts(s: &Shares) -> [f64; 4] {
    [s.self_oncpu, s.callees, s.syscalls, s.offcpu]
}

/// The biggest part of one call: its label and share.
pub(crate) fn dominant(a: &Attribution) -> (&'static str, f64) {
    let s = share_parts(&a.shares());
    let (i, v) = s.iter().enumerate().fold((0, 0.0), |best, (i, &v)| if v > best.1 { (i, v) } else { best });
    (PARTS[i].2, v)
}

/// One line, `width` cells, split between the four parts by largest remainder (cells sum to width).
pub struct AttributionBar {
    pub shares: Shares,
}

impl Widget for &AttributionBar {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let width = usize::from(area.width);
        if width == 0 || area.height == 0 {
            return;
        }
        let parts = share_parts(&self.shares);
        let total: f64 = parts.iter().sum();
        if total <= 0.0 {
            buf.set_stringn(area.x, area.y, "no time measured", width, Style::default().dim());
            return;
        }
        let exact: Vec<f64> = parts.iter().map(|p| p / total * width as f64).collect();
        let mut cells: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
        let mut left = width.saturating_sub(cells.iter().sum());
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
        for &i in order.iter().cycle().take(8) {
            if left == 0 {
                break;
            }
            if exact[i] > 0.0 {
                cells[i] += 1;
                left -= 1;
            }
        }
        let mut x = area.x;
        for (i, &n) in cells.iter().enumerate() {
            let (glyph, color, _) = PARTS[i];
            for _ in 0..n {
                if x >= area.right() {
                    break;
                }
                buf[(x, area.y)].set_char(glyph).set_fg(color);
                x += 1;
            }
        }
    }
}

/// Short labels, for when the full ones do not fit.
const SHORT: [&str; 4] = ["own", "callee", "sys", "off"];

/// `█ own CPU 42%  ▓ callees 30%  ▒ syscalls 8%  ░ off-CPU 20%` in at most `width` cells: the full
/// labels when they fit, else short ones, else glyphs and numbers; a number is never cut.
pub(crate) fn legend(shares: &Shares, width: u16) -> Line<'static> {
    let values = share_parts(shares);
    let variant = |labels: [&str; 4], gap: &'static str| {
        let mut spans = Vec::with_capacity(8);
        for (i, v) in values.iter().enumerate() {
            let (glyph, color, _) = PARTS[i];
            if i > 0 {
                spans.push(Span::raw(gap));
            }
            let text = if labels[i].is_empty() {
                format!("{glyph}{}", pct(*v))
            } else {
                format!("{glyph} {} {}", labels[i], pct(*v))
            };
            spans.push(Span::styled(text, Style::default().fg(color)));
        }
        Line::from(spans)
    };
    let full = PARTS.map(|p| p.2);
    let candidates = [variant(full, "  "), variant(SHORT, "  "), variant(SHORT, " "), variant([""; 4], " ")];
    let fits = |l: &Line| l.width() <= usize::from(width);
    let last = candidates.len() - 1;
    candidates.into_iter().enumerate().find(|(i, l)| fits(l) || *i == last).map(|(_, l)| l).unwrap_or_default()
}
