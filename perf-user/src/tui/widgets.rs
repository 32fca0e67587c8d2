//! What the terminal UI draws, as widgets that borrow the app's derived data. Rendering does no
//! I/O and changes nothing: percentiles and rows were computed on the last tick (`App::rebuild`).

use std::fmt::Write as _;

use ratatui::{
    buffer::Buffer,
    layout::{Alignment, Constraint, Flex, Layout, Margin, Rect},
    style::{Color, Modifier, Style, Stylize},
    text::{Line, Span, Text},
    widgets::{
        Block, Cell, Clear, HighlightSpacing, Paragraph, Row, Sparkline, StatefulWidget, Table, TableState, Widget,
    },
};

use crate::{
    app::{App, FunctionRow, SortKey, View},
    model::{Attribution, BucketHist, Exemplar, Shares},
    units::{fmt_count, fmt_ns, fmt_rate},
};

// ---------------------------------------------------------------------------------------------
// Formatting: every number fits its column, whatever its size
// ---------------------------------------------------------------------------------------------

/// `fmt_ns`, but beyond 1000 s in minutes, hours or days, so that even the unbounded top bucket
/// (≥ 36 min) or a garbage maximum fits a 7-column cell.
pub fn fit_ns(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 1000.0 {
        fmt_ns(ns)
    } else if s < 6000.0 {
        format!("{:.0}min", s / 60.0)
    } else if s < 36_000.0 {
        format!("{:.1}h", s / 3600.0)
    } else if s < 360_000.0 {
        format!("{:.0}h", s / 3600.0)
    } else if s < 86_400.0 * 100_000.0 {
        format!("{:.0}d", s / 86_400.0)
    } else {
        ">1e5d".into()
    }
}

/// 3 significant digits with k/M/G/T/P/E.
fn si(v: f64) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut v = v.max(0.0);
    let mut u = 0;
    while v >= 999.5 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    let unit = UNITS[u];
    if u == 0 {
        format!("{v:.0}")
    } else if v < 10.0 {
        format!("{v:.2}{unit}")
    } else if v < 100.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

/// `fmt_count` up to 10M (`9999.9k`), then `12.3M`, `4.56G`, … (at most 7 characters).
pub fn fit_count(n: u64) -> String {
    if n < 10_000_000 { fmt_count(n) } else { si(n as f64) }
}

/// `fmt_rate` up to 10M/s, then `12.3M/s`, `4.56G/s`, … (at most 9 characters).
pub fn fit_rate(per_s: f64) -> String {
    if per_s < 1e7 { fmt_rate(per_s) } else { format!("{}/s", si(per_s)) }
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// A latency cell: `-` when nothing was measured.
fn lat(ns: u64, count: u64) -> String {
    if count == 0 { "-".into() } else { fit_ns(ns) }
}

/// `12.3s`, `4m05s`, `2h07m`.
pub fn fmt_uptime(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    if s < 60 {
        format!("{:.1}s", ns as f64 / 1e9)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Keeps the end of a long name (`…book::OrderBook::apply`): the tail tells functions apart.
pub fn ellipsize_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(width + 2);
    out.push('…');
    out.extend(s.chars().skip(n - (width - 1)));
    out
}

fn right(s: String) -> Cell<'static> {
    Cell::from(Text::from(s).alignment(Alignment::Right))
}

// ---------------------------------------------------------------------------------------------
// Colours and glyphs of the four parts of a call (ATTRIBUTION.md)
// ---------------------------------------------------------------------------------------------

/// (glyph, colour, label) for own CPU, callees, syscalls, off-CPU. The glyphs differ too, so the
/// bar reads without colour (and in text snapshots).
const PARTS: [(char, Color, &str); 4] = [
    ('█', Color::Green, "own CPU"),
    ('▓', Color::Blue, "callees"),
    ('▒', Color::Yellow, "syscalls"),
    ('░', Color::Red, "off-CPU"),
];

fn share_parts(s: &Shares) -> [f64; 4] {
    [s.self_oncpu, s.callees, s.syscalls, s.offcpu]
}

/// The biggest part of one call: its label and share.
fn dominant(a: &Attribution) -> (&'static str, f64) {
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

/// `█ own CPU 42%  ▓ callees 30%  ▒ syscalls 8%  ░ off-CPU 20%`.
fn legend(shares: &Shares) -> Line<'static> {
    let mut spans = Vec::with_capacity(8);
    for (i, v) in share_parts(shares).iter().enumerate() {
        let (glyph, color, label) = PARTS[i];
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(format!("{glyph} {label} {}", pct(*v)), Style::default().fg(color)));
    }
    Line::from(spans)
}

// ---------------------------------------------------------------------------------------------
// Latency histogram
// ---------------------------------------------------------------------------------------------

/// Bars over the log-linear buckets on a log time axis: each column sums the buckets (or the part
/// of a bucket) it covers, so adjacent buckets group when there are more than columns. The row
/// under the bars marks the percentiles; the last row labels the axis.
pub struct LatencyHistogram<'a> {
    pub hist: &'a BucketHist,
    pub markers: [(&'static str, u64); 3],
}

const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

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
fn upper_log2(low_ns: u64, high_ns: u64) -> f64 {
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
        let w = usize::from(area.width);
        let bars_h = usize::from(area.height - 2);
        let per_log2 = w as f64 / (hi - lo);
        let col_of = |ns: u64| (((ns.max(1) as f64).log2() - lo) * per_log2).clamp(0.0, (w - 1) as f64) as usize;

        let mut cols = vec![0.0f64; w];
        for b in &self.hist.buckets {
            let a = ((b.low_ns.max(1) as f64).log2() - lo) * per_log2;
            let e = (upper_log2(b.low_ns, b.high_ns) - lo) * per_log2;
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
        let max = cols.iter().copied().fold(0.0, f64::max);
        let (c99, c999) = (col_of(self.markers[1].1), col_of(self.markers[2].1));
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

        // Percentile markers: `▲p50`, merged when they share a column, flipped left at the right edge.
        let marker_y = area.y + bars_h as u16;
        let mut groups: Vec<(usize, String)> = Vec::with_capacity(3);
        for &(label, ns) in &self.markers {
            let c = col_of(ns);
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
            buf[(area.x + c as u16, marker_y)].set_char('▲').set_style(style);
            // The labels go right of the marker if they fit before the next one, else left of it.
            let (x, room) = if c + 1 + len <= next {
                (c + 1, len)
            } else if c >= min_x + len {
                (c - len, len)
            } else {
                (c + 1, next.saturating_sub(c + 1))
            };
            buf.set_stringn(area.x + x as u16, marker_y, labels, room, style);
            min_x = (c + 1).max(x + room);
        }

        // Axis labels, evenly spaced on the log scale.
        let axis_y = marker_y + 1;
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
            let ns = (lo + at / per_log2).exp2();
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
            buf.set_stringn(area.x + x as u16, axis_y, &label, len, Style::default().dim());
            next_free = x + len + 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Columns that fit
// ---------------------------------------------------------------------------------------------

/// Picks the columns to show: by priority (lower first) while the fixed widths plus one space
/// each leave at least `min_flex` cells for the flexible column. Returns one flag per column.
fn fit_columns(widths: &[(u16, u8)], avail: u16, min_flex: u16) -> Vec<bool> {
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
fn scroll(len: usize, selected: usize, height: usize) -> usize {
    if height == 0 || len <= height { 0 } else { selected.saturating_sub(height - 1).min(len - height) }
}

fn table_block(app: &App, extra: Line<'static>) -> Block<'static> {
    let mut tabs = Vec::with_capacity(8);
    let counts = [
        format!("{}/{}", app.ui.visible.len(), app.derived.functions.len()),
        app.ui.visible_syscalls.len().to_string(),
        app.ui.visible_exemplars.len().to_string(),
    ];
    for (i, v) in View::ALL.iter().enumerate() {
        let text = format!(" {} ({}) ", v.label(), counts[i]);
        tabs.push(if *v == app.ui.view {
            Span::styled(
                format!("▸{}", text.trim_start()),
                Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            )
        } else {
            Span::raw(text)
        });
        if i < 2 {
            tabs.push(Span::raw("│").dim());
        }
    }
    Block::bordered().title(Line::from(tabs)).title(extra.right_aligned())
}

fn filter_note(app: &App) -> String {
    if app.ui.filter.is_empty() && !app.ui.filter_editing {
        String::new()
    } else {
        format!(" filter \"{}\" ", app.ui.filter)
    }
}

fn position_note(offset: usize, shown: usize, len: usize) -> Line<'static> {
    if len > shown && shown > 0 {
        Line::from(format!(" {}-{} of {} ", offset + 1, offset + shown, len)).right_aligned()
    } else {
        Line::default()
    }
}

fn selectable_table<'a>(rows: Vec<Row<'a>>, widths: Vec<Constraint>, header: Row<'a>, block: Block<'a>) -> Table<'a> {
    Table::new(rows, widths)
        .header(header.style(Style::default().add_modifier(Modifier::BOLD)).bottom_margin(0))
        .block(block)
        .column_spacing(1)
        .flex(Flex::Start)
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
}

// ---------------------------------------------------------------------------------------------
// Functions table
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum FnCol {
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
}

/// (column, title, width, priority): display order; priority decides what narrow terminals drop.
const FN_COLS: [(FnCol, &str, u16, u8, SortKey); 11] = [
    (FnCol::Calls, "Calls", 7, 11, SortKey::Calls),
    (FnCol::Rate, "Calls/s", 9, 3, SortKey::Rate),
    (FnCol::P50, "p50", 7, 2, SortKey::P50),
    (FnCol::P90, "p90", 7, 10, SortKey::P90),
    (FnCol::P99, "p99", 7, 1, SortKey::P99),
    (FnCol::P999, "p99.9", 7, 4, SortKey::P999),
    (FnCol::Max, "Max", 7, 5, SortKey::Max),
    (FnCol::Own, "Own", 5, 6, SortKey::OwnCpu),
    (FnCol::Callees, "Callee", 6, 9, SortKey::Callees),
    (FnCol::Sys, "Sys", 5, 8, SortKey::Syscalls),
    (FnCol::Off, "Off", 5, 7, SortKey::OffCpu),
];

/// Narrowest name column before numbers are dropped.
const MIN_NAME: u16 = 20;

fn fn_cell(col: FnCol, r: &FunctionRow) -> String {
    let l = &r.latency;
    let n = r.calls;
    // Nothing split (no calls, or `--latency-only`): a dash, not 0 %.
    let s = &r.shares;
    let split = s.self_oncpu + s.callees + s.syscalls + s.offcpu > 0.0;
    let share = |v: f64| if n == 0 || !split { "-".to_string() } else { pct(v) };
    match col {
        FnCol::Calls => fit_count(n),
        FnCol::Rate => fit_rate(r.calls_per_s),
        FnCol::P50 => lat(l.p50_ns, n),
        FnCol::P90 => lat(l.p90_ns, n),
        FnCol::P99 => lat(l.p99_ns, n),
        FnCol::P999 => lat(l.p999_ns, n),
        FnCol::Max => lat(l.max_ns, n),
        FnCol::Own => share(r.shares.self_oncpu),
        FnCol::Callees => share(r.shares.callees),
        FnCol::Sys => share(r.shares.syscalls),
        FnCol::Off => share(r.shares.offcpu),
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
        header.extend(cols.iter().map(|c| right(title(c.1, c.4))));
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
                cells.extend(cols.iter().map(|c| right(fn_cell(c.0, r))));
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
            } else {
                "no function matches the filter (Esc clears it)"
            };
            let inner = Rect { y: area.y + 2, height: area.height.saturating_sub(3), ..area }.inner(Margin::new(1, 0));
            Paragraph::new(msg).dim().render(inner, buf);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Detail pane of the selected function
// ---------------------------------------------------------------------------------------------

pub struct Detail<'a>(pub &'a App);

impl Widget for &Detail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(row) = app.selected_function() else {
            Block::bordered().title(" Detail ").render(area, buf);
            return;
        };
        let window = app.derived.window.label();
        let block = Block::bordered()
            .title(Line::from(vec![
                Span::raw(" "),
                Span::styled(
                    ellipsize_left(app.symbol(row.id), usize::from(area.width.saturating_sub(50))),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" · window {window} ")),
                Span::styled(
                    app.probe_note(row.id).map(|n| format!("· {n} ")).unwrap_or_default(),
                    Style::default().fg(Color::Yellow),
                ),
            ]))
            .title(
                Line::from(format!(" {} calls · mean {} ", fit_count(row.calls), lat(row.latency.mean_ns, row.calls)))
                    .right_aligned(),
            );
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.height < 4 || inner.width < 20 {
            return;
        }
        let hist = row.sample.and_then(|i| app.derived.sample.functions.get(i)).map(|f| &f.total_hist);
        let empty = BucketHist::default();
        let histogram = LatencyHistogram {
            hist: hist.unwrap_or(&empty),
            markers: [("p50", row.latency.p50_ns), ("p99", row.latency.p99_ns), ("p99.9", row.latency.p999_ns)],
        };
        if inner.width >= 90 {
            let [left, _, right] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Length(2), Constraint::Fill(1)])
                    .areas(inner);
            render_histogram(&histogram, row, left, buf);
            render_sections(app, row, right, buf, true);
        } else {
            // Narrow: the split and the sparkline first, the histogram below.
            let [top, hist_area] = Layout::vertical([Constraint::Length(6), Constraint::Fill(1)]).areas(inner);
            render_sections(app, row, top, buf, false);
            render_histogram(&histogram, row, hist_area, buf);
        }
    }
}

fn render_histogram(h: &LatencyHistogram, row: &FunctionRow, area: Rect, buf: &mut Buffer) {
    if area.height < 2 {
        return;
    }
    let title = Line::from(vec![
        Span::styled("Latency", Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  p50 {}  p99 {}  p99.9 {}  max {}",
            lat(row.latency.p50_ns, row.calls),
            lat(row.latency.p99_ns, row.calls),
            lat(row.latency.p999_ns, row.calls),
            lat(row.latency.max_ns, row.calls)
        )),
    ]);
    buf.set_line(area.x, area.y, &title, area.width);
    h.render(Rect { y: area.y + 1, height: area.height - 1, ..area }, buf);
}

/// Where the time goes, p99 over time, top syscalls and slowest exemplars, top to bottom while
/// they fit (`full`: all four; otherwise the first two).
fn render_sections(app: &App, row: &FunctionRow, area: Rect, buf: &mut Buffer, full: bool) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let w = area.width;
    let mut y = area.y;
    let bottom = area.bottom();
    let line = |buf: &mut Buffer, y: &mut u16, l: &Line| {
        if *y < bottom {
            buf.set_line(area.x, *y, l, w);
            *y += 1;
        }
    };

    line(buf, &mut y, &Line::styled("Where the time goes", bold));
    if app.info.probes == "latency" {
        line(buf, &mut y, &Line::from("not split: --latency-only times calls but keeps no attribution").dim());
        line(buf, &mut y, &Line::default());
    } else {
        if y < bottom {
            (&AttributionBar { shares: row.shares }).render(Rect { x: area.x, y, width: w, height: 1 }, buf);
            y += 1;
        }
        line(buf, &mut y, &legend(&row.shares));
    }

    let history = app.p99_history(row.id);
    let (now, peak) =
        history.map_or((0, 0), |h| (h.back().copied().unwrap_or(0), h.iter().copied().max().unwrap_or(0)));
    line(
        buf,
        &mut y,
        &Line::from(vec![
            Span::styled("p99 over time", bold),
            Span::raw(format!(" (1 s windows)  now {}  peak {}", fit_ns(now), fit_ns(peak))),
        ]),
    );
    if y + 1 < bottom {
        let points = usize::from(w);
        let data: Vec<u64> =
            history.map_or_else(Vec::new, |h| h.iter().skip(h.len().saturating_sub(points)).copied().collect());
        Sparkline::default()
            .data(&data)
            .style(Style::default().fg(Color::Magenta))
            .render(Rect { x: area.x, y, width: w, height: 2 }, buf);
        y += 2;
    }
    if !full || y + 1 >= bottom {
        return;
    }

    // Syscalls made while this function was innermost, by wall time.
    let mut sys: Vec<_> =
        app.derived.sample.func_syscalls.iter().filter(|s| s.fn_id == row.id && s.count > 0).collect();
    sys.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.nr.cmp(&b.nr)));
    y += 1;
    line(buf, &mut y, &Line::styled("Top syscalls inside", bold));
    if sys.is_empty() {
        line(buf, &mut y, &Line::from("  none").dim());
    }
    for s in sys.iter().take(3) {
        let name = crate::syscalls::display(s.nr);
        line(
            buf,
            &mut y,
            &Line::from(format!("  {name:<18} {:>7} calls {:>8}", fit_count(s.count), fit_ns(s.total_ns))),
        );
    }
    if y + 1 >= bottom {
        return;
    }

    y += 1;
    let mut slow: Vec<&Exemplar> = app.exemplars().iter().filter(|e| e.fn_id == row.id).collect();
    slow.sort_by_key(|e| std::cmp::Reverse(e.duration_ns));
    line(
        buf,
        &mut y,
        &Line::from(vec![Span::styled("Slowest exemplars", bold), Span::raw(format!(" ({} kept)", slow.len()))]),
    );
    if slow.is_empty() {
        line(buf, &mut y, &Line::from("  none (see --slow)").dim());
    }
    for e in slow.iter().take(usize::from(bottom.saturating_sub(y))) {
        let (part, share) = dominant(&e.attribution);
        let mut text = format!("  {:>7}  {}  {part} {}", fit_ns(e.duration_ns), thread(e), pct(share));
        if let Some(s) = e.syscalls.first() {
            let _ = write!(text, " · {}", s.name);
        }
        line(buf, &mut y, &Line::from(text));
    }
}

fn thread(e: &Exemplar) -> String {
    if e.thread.is_empty() { format!("tid {}", e.tid) } else { format!("{} {}", e.tid, e.thread) }
}

/// Two lines under the table when there is no room for the detail pane.
pub struct MiniDetail<'a>(pub &'a App);

impl Widget for &MiniDetail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let Some(row) = self.0.selected_function() else { return };
        if area.height == 0 {
            return;
        }
        let mut l = legend(&row.shares);
        l.spans.insert(0, Span::raw(format!("{}: ", ellipsize_left(self.0.symbol(row.id), 24))));
        buf.set_line(area.x, area.y, &l, area.width);
        if area.height > 1 {
            (&AttributionBar { shares: row.shares }).render(Rect { y: area.y + 1, height: 1, ..area }, buf);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Syscalls and exemplars views
// ---------------------------------------------------------------------------------------------

pub struct SyscallTable<'a>(pub &'a App);

const SYS_COLS: [(&str, u16, u8); 7] =
    [("Calls", 7, 1), ("Errors", 7, 4), ("p50", 7, 3), ("p99", 7, 2), ("Max", 7, 5), ("Total", 8, 0), ("Time%", 6, 6)];

impl Widget for &SyscallTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let ui = &app.ui;
        let inner_w = area.width.saturating_sub(4);
        let keep = fit_columns(&SYS_COLS.map(|c| (c.1, c.2)), inner_w, 16);
        let fixed: u16 = SYS_COLS.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c.1 + 1).sum();
        let name_w = inner_w.saturating_sub(fixed);
        let mut header = vec![Cell::from("Syscall (while any traced code ran)")];
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
                    fit_ns(s.total_ns),
                    pct(if all_ns == 0 { 0.0 } else { s.total_ns as f64 / all_ns as f64 }),
                ];
                let mut cells = vec![Cell::from(ellipsize_left(&s.name, usize::from(name_w)))];
                cells.extend(values.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| right(v)));
                let row = Row::new(cells);
                if s.errors > 0 { row.style(Style::default().fg(Color::Yellow)) } else { row }
            })
            .collect();
        let block = table_block(app, Line::from(" by total time ")).title_bottom(position_note(offset, shown, len));
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
const EX_COLS: [(&str, u16, u8); 7] = [
    ("Duration", 8, 0),
    ("Thread", 16, 2),
    ("Own", 5, 4),
    ("Callee", 6, 6),
    ("Sys", 5, 5),
    ("Off", 5, 3),
    ("Split", 10, 1),
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
        let sys_w = flex - fn_w;
        let mut header = vec![Cell::from("Function (newest first)")];
        let mut widths = vec![Constraint::Length(fn_w)];
        for (c, _) in EX_COLS.iter().zip(&keep).filter(|(_, k)| **k) {
            header.push(if c.0 == "Split" || c.0 == "Thread" { Cell::from(c.0) } else { right(c.0.to_string()) });
            widths.push(Constraint::Length(c.1));
        }
        header.push(Cell::from("Top syscalls"));
        widths.push(Constraint::Length(sys_w));

        let height = usize::from(area.height.saturating_sub(3));
        let len = ui.visible_exemplars.len();
        let offset = scroll(len, ui.selected[2], height);
        let shown = len.saturating_sub(offset).min(height);
        let mut split_buf = Buffer::empty(Rect::new(0, 0, 10, 1));
        let rows: Vec<Row> = ui.visible_exemplars[offset..offset + shown]
            .iter()
            .filter_map(|&i| exemplars.get(i))
            .map(|e| {
                let s = e.attribution.shares();
                split_buf.reset();
                (&AttributionBar { shares: s }).render(split_buf.area, &mut split_buf);
                let split: String = split_buf.content().iter().map(|c| c.symbol()).collect();
                let values = [
                    fit_ns(e.duration_ns),
                    ellipsize_left(&thread(e), 16),
                    pct(s.self_oncpu),
                    pct(s.callees),
                    pct(s.syscalls),
                    pct(s.offcpu),
                    split,
                ];
                let mut cells = vec![Cell::from(ellipsize_left(&e.symbol, usize::from(fn_w)))];
                for ((v, _), c) in values.into_iter().zip(&keep).zip(&EX_COLS).filter(|((_, k), _)| **k) {
                    cells.push(if c.0 == "Split" || c.0 == "Thread" { Cell::from(v) } else { right(v) });
                }
                let mut sys = String::new();
                for u in &e.syscalls {
                    if !sys.is_empty() {
                        sys.push_str(", ");
                    }
                    let _ = write!(sys, "{}×{} {}", u.name, u.count, fit_ns(u.total_ns));
                }
                cells.push(Cell::from(sys));
                Row::new(cells)
            })
            .collect();
        let evicted = app.derived.lost.exemplars_evicted;
        let note = if evicted > 0 {
            format!("{} {} older evicted ", filter_note(app), fit_count(evicted))
        } else {
            filter_note(app)
        };
        let block = table_block(app, Line::from(note)).title_bottom(position_note(offset, shown, len));
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

// ---------------------------------------------------------------------------------------------
// Header, footer, help
// ---------------------------------------------------------------------------------------------

pub struct Header<'a>(pub &'a App);

impl Widget for &Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let d = &app.derived;
        let t = &app.info.target;
        let sep = || Span::raw(" │ ").dim();
        let mut first = vec![
            Span::styled(" perf-user ", Style::default().add_modifier(Modifier::BOLD).fg(Color::Black).bg(Color::Cyan)),
            Span::raw(" pid "),
            Span::styled(t.pid.to_string(), Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(" "),
            Span::styled(
                if t.comm.is_empty() { "?".to_string() } else { t.comm.clone() },
                Style::default().add_modifier(Modifier::BOLD),
            ),
            sep(),
            Span::raw(format!("up {}", fmt_uptime(d.elapsed_ns))),
            sep(),
            Span::raw("window "),
            Span::styled(d.window.label(), Style::default().add_modifier(Modifier::BOLD).fg(Color::Cyan)),
        ];
        // What the numbers are: attribution off, or a sample of the calls.
        let mode = match (app.info.probes.as_str(), app.info.sample_every) {
            ("latency", n) if n > 1 => format!("latency only, 1 in {n} timed"),
            ("latency", _) => "latency only".to_string(),
            ("entry_only", _) => "counts only".to_string(),
            (_, n) if n > 1 => format!("1 in {n} timed"),
            _ => String::new(),
        };
        if !mode.is_empty() {
            first.push(sep());
            first.push(Span::styled(mode, Style::default().fg(Color::Yellow)));
        }
        if app.paused {
            first.push(sep());
            first.push(Span::styled(
                " PAUSED ",
                Style::default().add_modifier(Modifier::BOLD).fg(Color::Black).bg(Color::Yellow),
            ));
        }
        if !t.exe.is_empty() {
            first.push(sep());
            first.push(Span::raw(t.exe.clone()).dim());
        }

        let cpu = app.overhead_cpus() * 100.0;
        let lost = &d.lost;
        let count = |label: &'static str, n: u64| {
            let style =
                if n > 0 { Style::default().fg(Color::Red).add_modifier(Modifier::BOLD) } else { Style::default() };
            [Span::raw(label), Span::styled(fit_count(n), style)]
        };
        let mut second = vec![
            Span::raw(" probes "),
            Span::styled(
                format!("{} hits/s", fit_rate(d.hits_per_s).trim_end_matches("/s")),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(" ≈ "),
            Span::styled(
                format!("{cpu:.1}% of 1 CPU"),
                if cpu >= 5.0 {
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                },
            ),
            Span::raw(format!(" ({}/hit)", fit_ns(app.cost_per_hit_ns.max(0.0) as u64))).dim(),
            sep(),
            Span::raw("lost: "),
        ];
        second.extend(count("ringbuf ", lost.ringbuf_full));
        second.extend(count(" · maps ", lost.thread_map_full + lost.attr_map_full));
        second.extend(count(" · stack depth ", lost.depth_overflow));
        second.extend(count(" · orphans ", lost.orphan_entry + lost.orphan_return));
        let lines = [Line::from(first), Line::from(second)];
        for (i, l) in lines.iter().enumerate() {
            if (i as u16) < area.height {
                buf.set_line(area.x, area.y + i as u16, l, area.width);
            }
        }
        if app.target_exited && area.height > 2 {
            let banner = Rect { y: area.y + 2, height: 1, ..area };
            buf.set_style(banner, Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD));
            let text = format!(
                " ■ TARGET EXITED: pid {} is gone; these are its last numbers. q writes the report and quits.",
                t.pid
            );
            buf.set_stringn(banner.x, banner.y, text, usize::from(banner.width), Style::default());
        }
    }
}

const HINTS: &[(&str, &str)] = &[
    ("q", "quit"),
    ("p", "pause"),
    ("r", "reset"),
    ("e", "export"),
    ("w", "window"),
    ("s/S", "sort"),
    ("/", "filter"),
    ("Tab", "view"),
    ("?", "help"),
];

pub struct Footer<'a>(pub &'a App);

impl Widget for &Footer<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let key = Style::default().add_modifier(Modifier::BOLD).fg(Color::Cyan);
        let mut spans = Vec::with_capacity(24);
        if app.ui.filter_editing {
            spans.push(Span::styled(" filter: ", key));
            spans.push(Span::raw(format!("{}▏", app.ui.filter)));
            spans.push(Span::raw("  Enter keep · Esc clear · ↑↓ select").dim());
        } else {
            if !app.status.is_empty() {
                spans.push(Span::styled(
                    format!(" {} ", app.status),
                    Style::default().add_modifier(Modifier::BOLD).fg(Color::Yellow),
                ));
                spans.push(Span::raw("│").dim());
            }
            for (k, what) in HINTS {
                spans.push(Span::styled(format!(" {k}"), key));
                spans.push(Span::raw(format!(" {what}")));
            }
        }
        buf.set_line(area.x, area.y, &Line::from(spans), area.width);
    }
}

/// Every key, in a box over the middle of the screen.
pub struct Help;

const HELP: &[(&str, &str)] = &[
    ("q / Ctrl-C", "quit: detach, write --export, print the report"),
    ("p", "pause the display (collection goes on) / resume"),
    ("r", "reset: numbers restart from now"),
    ("e", "export a snapshot now (JSON)"),
    ("w", "time window: all → last 1 s → last 10 s"),
    ("s / S", "sort by the next column / flip the direction"),
    ("/", "filter functions by name: Enter keeps, Esc clears"),
    ("Esc", "clear the filter"),
    ("Tab / Shift-Tab", "functions → syscalls → exemplars"),
    ("↑ ↓ PgUp PgDn Home End", "move the selection"),
    ("?", "this help (any key closes it)"),
];

impl Widget for &Help {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let width = area.width.min(82);
        let height = area.height.min(HELP.len() as u16 + 6);
        let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(area);
        let [popup] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(popup);
        Clear.render(popup, buf);
        let mut lines: Vec<Line> = HELP
            .iter()
            .map(|(k, what)| {
                Line::from(vec![
                    Span::styled(format!("{k:>22}  "), Style::default().add_modifier(Modifier::BOLD).fg(Color::Cyan)),
                    Span::raw(*what),
                ])
            })
            .collect();
        lines.push(Line::default());
        lines.push(Line::from("Own = own CPU, Callee = traced callees, Sys = syscalls, Off = off-CPU:").dim());
        lines.push(Line::from("as shares of the wall time (docs: ATTRIBUTION.md).").dim());
        Paragraph::new(lines)
            .block(Block::bordered().title(" Keys ").title_alignment(Alignment::Center))
            .render(popup, buf);
    }
}

// ---------------------------------------------------------------------------------------------
// The whole screen
// ---------------------------------------------------------------------------------------------

/// Main-area height below which the detail pane gives way to two summary lines.
const DETAIL_MIN_MAIN_HEIGHT: u16 = 28;

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
        }
        (&Footer(self)).render(footer, buf);
        if self.ui.help {
            (&Help).render(area, buf);
        }
    }
}

fn functions_view(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height >= DETAIL_MIN_MAIN_HEIGHT && area.width >= 60 {
        // The table takes what its rows need, the detail pane between 16 rows and 60 % of the rest.
        let wanted = app.ui.visible.len() as u16 + 3;
        let detail = area.height.saturating_sub(wanted).min(area.height * 6 / 10).max(16);
        let [table, detail_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(detail)]).areas(area);
        (&FunctionTable(app)).render(table, buf);
        (&Detail(app)).render(detail_area, buf);
    } else if area.height >= 10 {
        let [table, mini] = Layout::vertical([Constraint::Fill(1), Constraint::Length(2)]).areas(area);
        (&FunctionTable(app)).render(table, buf);
        (&MiniDetail(app)).render(mini, buf);
    } else {
        (&FunctionTable(app)).render(area, buf);
    }
}
