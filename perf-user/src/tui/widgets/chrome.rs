//! Header, footer and help overlay.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Alignment, Constraint, Flex, Layout, Rect},
    style::{Color, Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Widget},
};

use crate::app::App;

pub struct Header<'a>(pub &'a App);

impl Widget for &Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let lines = [identity_line(app), probes_line(app)];
        for (i, l) in lines.iter().enumerate() {
            if (i as u16) < area.height {
                buf.set_line(area.x, area.y + i as u16, l, area.width);
            }
        }
        if app.target_exited && area.height > 2 {
            exited_banner(app, Rect { y: area.y + 2, height: 1, ..area }, buf);
        }
    }
}

fn sep() -> Span<'static> {
    Span::raw(" │ ").dim()
}

/// The first header line: pid, name, uptime, window, what the numbers are, pause, executable.
fn identity_line(app: &App) -> Line<'static> {
    let d = &app.derived;
    let t = &app.info.target;
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
    Line::from(first)
}

/// The second header line: probe hits, their CPU cost against the guard's budget, and what was lost.
fn probes_line(app: &App) -> Line<'static> {
    let d = &app.derived;
    let (cpu, per_hit_ns) = (d.overhead_pct, d.overhead_per_hit_ns);
    let lost = &d.lost;
    let count = |label: &'static str, n: u64| {
        let style = if n > 0 { Style::default().fg(Color::Red).add_modifier(Modifier::BOLD) } else { Style::default() };
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
            // Capped: a runaway estimate is said without a number wider than the line.
            if cpu < 10_000.0 { format!("{cpu:.1}% of 1 CPU") } else { ">9999% of 1 CPU".to_owned() },
            // Red only past the overhead guard's budget (`--max-overhead`), where it acts.
            if cpu > app.max_overhead_pct {
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            },
        ),
        Span::raw(format!(" ({}/hit)", fit_ns(per_hit_ns.max(0.0) as u64))).dim(),
        sep(),
        Span::raw("lost: "),
    ];
    second.extend(count("ringbuf ", lost.ringbuf_full));
    second.extend(count(" · maps ", lost.thread_map_full + lost.attr_map_full));
    second.extend(count(" · stack depth ", lost.depth_overflow));
    second.extend(count(" · orphans ", lost.orphan_entry + lost.orphan_return));
    Line::from(second)
}

/// The red line under the header once the target has exited.
fn exited_banner(app: &App, banner: Rect, buf: &mut Buffer) {
    buf.set_style(banner, Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD));
    let text = format!(
        " ■ TARGET EXITED: pid {} is gone; these are its last numbers. q writes the report and quits.",
        app.info.target.pid
    );
    buf.set_stringn(banner.x, banner.y, text, usize::from(banner.width), Style::default());
}

pub(crate) const HINTS: &[(&str, &str)] = &[
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
        if app.ui.filter_editing {
            let spans = vec![
                Span::styled(" filter: ", key),
                Span::raw(format!("{}▏", app.ui.filter)),
                Span::raw("  Enter keep · Esc clear · ↑↓ select").dim(),
            ];
            buf.set_line(area.x, area.y, &Line::from(spans), area.width);
            return;
        }
        // `? help` always shows, at the right end; a status message comes first (cut if it
        // must be), then as many of the other hints as fit.
        let help = Line::from(vec![Span::styled(" ?", key), Span::raw(" help ")]);
        let help_w = help.width() as u16;
        let left_w = usize::from(area.width.saturating_sub(help_w));
        let mut spans = Vec::with_capacity(24);
        let mut used = 0usize;
        if !app.status.is_empty() {
            let status = ellipsize_right(&format!(" {} ", app.status), left_w);
            used += status.chars().count() + 1;
            spans.push(Span::styled(status, Style::default().add_modifier(Modifier::BOLD).fg(Color::Yellow)));
            spans.push(Span::raw("│").dim());
        }
        for (k, what) in HINTS.iter().filter(|(k, _)| *k != "?") {
            let hint = [Span::styled(format!(" {k}"), key), Span::raw(format!(" {what}"))];
            let w = hint.iter().map(Span::width).sum::<usize>();
            if used + w > left_w {
                break;
            }
            used += w;
            spans.extend(hint);
        }
        buf.set_line(area.x, area.y, &Line::from(spans), left_w as u16);
        if area.width >= help_w {
            buf.set_line(area.x + left_w as u16, area.y, &help, help_w);
        }
    }
}

/// Keeps the start of a message, `…` where it is cut.
fn ellipsize_right(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        out.push('…');
    }
    out
}

/// Every key, in a box over the middle of the screen.
pub struct Help;

pub(crate) const HELP: &[(&str, &str)] = &[
    ("q / Ctrl-C", "quit: detach, write --export, print the report"),
    ("p", "pause the display (collection goes on) / resume"),
    ("r", "reset: numbers restart from now"),
    ("e", "numbered JSON snapshot now (the footer says where)"),
    ("w", "time window: all → last 1 s → last 10 s"),
    ("s / S", "sort functions by the next column / flip the direction"),
    ("z", "show / hide functions without calls in the window"),
    ("/", "filter functions by name: Enter keeps, Esc clears"),
    ("Esc", "clear the filter"),
    ("Tab / Shift-Tab", "functions → syscalls → exemplars → call tree → spans"),
    ("h / t", "functions: latency heatmap / per-thread rows (again: detail)"),
    ("Enter", "exemplars: the call's breakdown; s: sort by time/duration"),
    ("Enter ← →  l  u", "tree: fold/unfold; l heaviest callee, u back to the caller"),
    ("↑ ↓ PgUp PgDn Home End", "move the selection"),
    ("?", "this help (any key closes it)"),
];

impl Widget for &Help {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let key_w = HELP.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
        let text_w = HELP.iter().map(|(_, what)| what.chars().count()).max().unwrap_or(0);
        // As wide as the longest line needs, or the terminal; what does not fit wraps under its
        // own column (at 80 columns three descriptions take two lines), never cut.
        let width = area.width.min(u16::try_from(key_w + 2 + text_w + 2).unwrap_or(u16::MAX));
        let wrap_w = usize::from(width).saturating_sub(key_w + 4).max(12);
        let mut lines: Vec<Line> = Vec::new();
        for (k, what) in HELP {
            for (i, part) in wrap_words(what, wrap_w).into_iter().enumerate() {
                let key = if i == 0 { *k } else { "" };
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("{key:>key_w$}  "),
                        Style::default().add_modifier(Modifier::BOLD).fg(Color::Cyan),
                    ),
                    Span::raw(part),
                ]));
            }
        }
        lines.push(Line::default());
        let legend = "Own = own CPU, Callee = traced callees, Sys = syscalls, Off = off-CPU: as shares of the wall time (docs: ATTRIBUTION.md).";
        lines.extend(
            wrap_words(legend, usize::from(width.saturating_sub(2)).max(12)).into_iter().map(|l| Line::from(l).dim()),
        );
        let height = area.height.min(u16::try_from(lines.len() + 2).unwrap_or(u16::MAX));
        let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(area);
        let [popup] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(popup);
        Clear.render(popup, buf);
        Paragraph::new(lines)
            .block(Block::bordered().title(" Keys ").title_alignment(Alignment::Center))
            .render(popup, buf);
    }
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word stays whole,
/// and is cut by the frame).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}
