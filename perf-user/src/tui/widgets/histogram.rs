//! The latency histogram: log-scaled buckets drawn as eighth-block bars.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::Rect,
    style::{Color, Style},
    widgets::Widget,
};

use crate::model::BucketHist;

/// Bars over the log-linear buckets on a log time axis: each column sums the buckets (or the part
/// of a bucket) it covers, so adjacent buckets group when there are more than columns. The row
/// under the bars marks the percentiles; the last row labels the axis.
pub struct LatencyHistogram<'a> {
    pub hist: &'a BucketHist,
    pub markers: [(&'static str, u64); 3],
}

pub(crate) const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

impl LatencyHistogram<'_> {
    /// `[lo, hi)` in log2(ns), at least one octave wide.
    fn range(&self) -> Option<(f64, f64)> {
        let first = self.hist.buckets.first()?;
        let last = self.hist.buckets.last()?;
        let lo = (first.low_ns.max(1) as f64).log2();
        let hi = upper_log2(last.low_ns, last.high_ns);
        let (mut lo, mut hi) = (lo.min(hi), hi.max(lo));
        if hi - lo < 1.0 {
            let pad = (1.0 - (hi - lo)) / 2.0;
            lo -= pad;
            hi += pad;
        }
        Some((lo, hi))
    }
}

/// log2 of a bucket's exclusive upper end (the unbounded top bucket counts as one sub-bucket wide).
pub(crate) fn upper_log2(low_ns: u64, high_ns: u64) -> f64 {
    if high_ns == u64::MAX { (low_ns.max(1) as f64).log2() + 1.0 / 32.0 } else { (high_ns as f64 + 1.0).log2() }
}

impl Widget for &LatencyHistogram<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < 8 || area.height < 3 {
            return;
        }
        let Some((lo, hi)) = self.range() else {
            buf.set_stringn(area.x, area.y, "no calls in this window", usize::from(area.width), Style::default().dim());
            return;
        };
        let axis = Axis { lo, per_log2: f64::from(area.width) / (hi - lo), width: usize::from(area.width) };
        let bars_h = usize::from(area.height - 2);
        self.bars(&axis, area, bars_h, buf);
        let marker_y = area.y + bars_h as u16;
        self.markers(&axis, area.x, marker_y, buf);
        axis.labels(area.x, marker_y + 1, buf);
    }
}

/// The log time axis: `lo` (log2 ns) at column 0, `per_log2` columns per octave.
struct Axis {
    lo: f64,
    per_log2: f64,
    width: usize,
}

impl Axis {
    fn col_of(&self, ns: u64) -> usize {
        (((ns.max(1) as f64).log2() - self.lo) * self.per_log2).clamp(0.0, (self.width - 1) as f64) as usize
    }

    /// Axis labels, evenly spaced on the log scale.
    fn labels(&self, x0: u16, axis_y: u16, buf: &mut Buffer) {
        let w = self.width;
        let n_labels = (w / 14).max(2);
        let mut next_free = 0usize;
        for i in 0..n_labels {
            let c = i * (w - 1) / (n_labels - 1);
            // The first label is the axis' left end, the last its right end, others column middles.
            let at = if i == 0 {
                0.0
            } else if i == n_labels - 1 {
                w as f64
            } else {
                c as f64 + 0.5
            };
            let ns = (self.lo + at / self.per_log2).exp2();
            let label = fit_ns(ns.round().min(u64::MAX as f64) as u64);
            let len = label.chars().count();
            let x = if i == 0 {
                0
            } else if i == n_labels - 1 {
                w.saturating_sub(len)
            } else {
                c.saturating_sub(len / 2)
            };
            if x < next_free || x + len > w {
                continue;
            }
            buf.set_stringn(x0 + x as u16, axis_y, &label, len, Style::default().dim());
            next_free = x + len + 1;
        }
    }
}

impl LatencyHistogram<'_> {
    /// Each column's count: the buckets (or the part of a bucket) it covers.
    fn columns(&self, axis: &Axis) -> Vec<f64> {
        let w = axis.width;
        let mut cols = vec![0.0f64; w];
        for b in &self.hist.buckets {
            let a = ((b.low_ns.max(1) as f64).log2() - axis.lo) * axis.per_log2;
            let e = (upper_log2(b.low_ns, b.high_ns) - axis.lo) * axis.per_log2;
            let count = b.count as f64;
            if e - a <= 1.0 {
                // Narrower than a column: all of it in the column of its middle.
                let c = ((a + e) / 2.0).clamp(0.0, (w - 1) as f64) as usize;
                cols[c] += count;
                continue;
            }
            // Wider: spread over the columns it covers, by overlap.
            let (first, last) = (a.floor().max(0.0) as usize, (e.ceil().max(0.0) as usize).min(w));
            for (c, v) in cols.iter_mut().enumerate().take(last).skip(first) {
                let overlap = (e.min(c as f64 + 1.0) - a.max(c as f64)).max(0.0);
                *v += count * overlap / (e - a);
            }
        }
        cols
    }

    /// The bars, in eighth blocks, coloured past p99 and p99.9.
    fn bars(&self, axis: &Axis, area: Rect, bars_h: usize, buf: &mut Buffer) {
        let cols = self.columns(axis);
        let max = cols.iter().copied().fold(0.0, f64::max);
        let (c99, c999) = (axis.col_of(self.markers[1].1), axis.col_of(self.markers[2].1));
        for (c, &v) in cols.iter().enumerate() {
            if v <= 0.0 || max <= 0.0 {
                continue;
            }
            let eighths = ((v / max) * (bars_h * 8) as f64).round().max(1.0) as usize;
            let color = if c >= c999 {
                Color::Red
            } else if c >= c99 {
                Color::Yellow
            } else {
                Color::Cyan
            };
            let x = area.x + c as u16;
            for row in 0..bars_h {
                let fill = eighths.saturating_sub(row * 8).min(8);
                if fill == 0 {
                    break;
                }
                let y = area.y + (bars_h - 1 - row) as u16;
                buf[(x, y)].set_char(EIGHTHS[fill]).set_fg(color);
            }
        }
    }

    /// Percentile markers: `▲p50`, merged when they share a column, flipped left at the right edge.
    fn markers(&self, axis: &Axis, x0: u16, marker_y: u16, buf: &mut Buffer) {
        let w = axis.width;
        let mut groups: Vec<(usize, String)> = Vec::with_capacity(3);
        for &(label, ns) in &self.markers {
            let c = axis.col_of(ns);
            match groups.last_mut() {
                Some((gc, text)) if *gc == c => {
                    // `p50/99/99.9`: one `p` is enough.
                    text.push('/');
                    text.push_str(label.trim_start_matches('p'));
                }
                _ => groups.push((c, label.to_string())),
            }
        }
        let style = Style::default().fg(Color::Magenta);
        let mut min_x = 0usize;
        for (i, (c, labels)) in groups.iter().enumerate() {
            let c = *c;
            let next = groups.get(i + 1).map_or(w, |g| g.0);
            let len = labels.chars().count();
            buf[(x0 + c as u16, marker_y)].set_char('▲').set_style(style);
            // The labels go right of the marker if they fit before the next one, else left of it.
            let (x, room) = if c + 1 + len <= next {
                (c + 1, len)
            } else if c >= min_x + len {
                (c - len, len)
            } else {
                (c + 1, next.saturating_sub(c + 1))
            };
            buf.set_stringn(x0 + x as u16, marker_y, labels, room, style);
            min_x = (c + 1).max(x + room);
        }
    }
}
