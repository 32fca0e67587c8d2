//! The detail pane of the selected function: histogram, split bar, syscalls and slow calls.

use super::*;
use std::fmt::Write as _;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Sparkline, Widget},
};

use crate::{
    app::{App, FunctionRow},
    model::{BucketHist, Exemplar, LatencySummary, SpanEnds},
};

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
                Line::from(format!(
                    " {} calls · mean {} ",
                    fit_count(row.calls),
                    lat(row.latency.mean_ns, row.latency.count)
                ))
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
            render_histogram(&histogram, &row.latency, row.floor_ns, left, buf);
            render_sections(app, row, right, buf, true);
        } else {
            // Narrow: the split and the sparkline first, the histogram below.
            let [top, hist_area] = Layout::vertical([Constraint::Length(6), Constraint::Fill(1)]).areas(inner);
            render_sections(app, row, top, buf, false);
            render_histogram(&histogram, &row.latency, row.floor_ns, hist_area, buf);
        }
    }
}

/// The histogram under a title with its percentiles (`<floor` below `floor_ns`; 0: none).
pub(crate) fn render_histogram(h: &LatencyHistogram, l: &LatencySummary, floor_ns: u64, area: Rect, buf: &mut Buffer) {
    if area.height < 2 {
        return;
    }
    let title = Line::from(vec![
        Span::styled("Latency", Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  p50 {}  p99 {}  p99.9 {}  max {}",
            lat_floor(l.p50_ns, l.count, floor_ns),
            lat_floor(l.p99_ns, l.count, floor_ns),
            lat_floor(l.p999_ns, l.count, floor_ns),
            lat_floor(l.max_ns, l.count, floor_ns)
        )),
    ]);
    buf.set_line(area.x, area.y, &title, area.width);
    h.render(Rect { y: area.y + 1, height: area.height - 1, ..area }, buf);
}

/// "p99 over time (1 s windows)  now X  peak Y", shortened to fit `width` so that the numbers,
/// which matter most, are never cut: the window note goes first, then the double spaces.
pub(crate) fn trend_title(now: u64, peak: u64, width: usize) -> Line<'static> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let (now, peak) = (fit_ns(now), fit_ns(peak));
    let tails = [
        format!(" (1 s windows)  now {now}  peak {peak}"),
        format!("  now {now}  peak {peak}"),
        format!(" now {now} peak {peak}"),
    ];
    let title = "p99 over time";
    let tail = tails.iter().find(|t| title.chars().count() + t.chars().count() <= width);
    match tail {
        Some(t) => Line::from(vec![Span::styled(title, bold), Span::raw(t.clone())]),
        None => Line::from(vec![Span::styled("p99", bold), Span::raw(format!(" now {now} peak {peak}"))]),
    }
}

/// Where the time goes, p99 over time, top syscalls and slowest exemplars, top to bottom while
/// they fit (`full`: all four; otherwise the first two).
pub(crate) fn render_sections(app: &App, row: &FunctionRow, area: Rect, buf: &mut Buffer, full: bool) {
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
        line(buf, &mut y, &legend(&row.shares, w));
        if let Some(l) = offcpu_line(app, row) {
            line(buf, &mut y, &l);
        }
        // `--interference`: what the irq/steal part is made of, and the counts.
        let parts = row.sample.and_then(|i| app.derived.sample.functions.get(i)).map(|f| &f.attribution);
        let what = parts.map(|a| a.interference_text(fit_ns)).unwrap_or_default();
        if !what.is_empty() {
            line(buf, &mut y, &Line::from(format!("  {what}")).fg(PARTS[4].1));
        }
    }

    let history = app.p99_history(row.id);
    let (now, peak) =
        history.map_or((0, 0), |h| (h.back().copied().unwrap_or(0), h.iter().copied().max().unwrap_or(0)));
    line(buf, &mut y, &trend_title(now, peak, usize::from(w)));
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

    y += 1;
    for l in syscall_lines(app, row) {
        line(buf, &mut y, &l);
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

/// Off-CPU as its two causes: waiting for something (blocked) or for a CPU (run queue); `None`
/// when the function was never off-CPU.
fn offcpu_line(app: &App, row: &FunctionRow) -> Option<Line<'static>> {
    let a = &app.derived.sample.functions.get(row.sample?)?.attribution;
    let total = a.total_ns().max(1) as f64;
    (row.shares.offcpu > 0.0).then(|| {
        Line::from(format!(
            "  off-CPU: blocked {} · run queue {}",
            pct(a.offcpu_blocked_ns as f64 / total),
            pct(a.offcpu_runqueue_ns as f64 / total)
        ))
        .style(Style::default().fg(Color::Red))
    })
}

/// Syscalls made while this function was innermost, by wall time: a title and the top three.
fn syscall_lines(app: &App, row: &FunctionRow) -> Vec<Line<'static>> {
    let mut sys: Vec<_> =
        app.derived.sample.func_syscalls.iter().filter(|s| s.fn_id == row.id && s.count > 0).collect();
    sys.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.nr.cmp(&b.nr)));
    let mut out = vec![Line::styled("Top syscalls inside", Style::default().add_modifier(Modifier::BOLD))];
    if sys.is_empty() {
        out.push(Line::from("  none").dim());
    }
    for s in sys.iter().take(3) {
        let name = crate::target::syscalls::display(s.nr);
        out.push(Line::from(format!("  {name:<18} {:>7} calls {:>8}", fit_count(s.count), fit_ns(s.total_ns))));
    }
    out
}

pub(crate) fn thread(e: &Exemplar) -> String {
    named_tid(e.tid, &e.thread)
}

/// The thread a slow span started on, as `thread` names the one it ended on.
pub(crate) fn start_thread(ends: &SpanEnds) -> String {
    named_tid(ends.start_tid, &ends.start_thread)
}

fn named_tid(tid: u32, name: &str) -> String {
    if name.is_empty() { format!("tid {tid}") } else { format!("{tid} {name}") }
}

/// Two lines under the table when there is no room for the detail pane.
pub struct MiniDetail<'a>(pub &'a App);

impl Widget for &MiniDetail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let Some(row) = self.0.selected_function() else { return };
        if area.height == 0 {
            return;
        }
        // The legend's numbers first; the name gets what is left (at most 24 cells).
        let name = self.0.symbol(row.id);
        let name_w = name.chars().count().min(24) as u16 + 2;
        let mut l = legend(&row.shares, area.width.saturating_sub(name_w));
        let room = usize::from(area.width).saturating_sub(l.width() + 2).min(24);
        if room > 0 {
            l.spans.insert(0, Span::raw(format!("{}: ", ellipsize_left(name, room))));
        }
        buf.set_line(area.x, area.y, &l, area.width);
        if area.height > 1 {
            (&AttributionBar { shares: row.shares }).render(Rect { y: area.y + 1, height: 1, ..area }, buf);
        }
    }
}
