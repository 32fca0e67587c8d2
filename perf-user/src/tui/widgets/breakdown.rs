//! The whole breakdown of one slow call (Enter in the exemplars view): thread and start, the parts
//! with off-CPU split into blocked and run queue, its syscalls, and the traced calls inside it. A
//! slow span has no parts (its time runs across threads): its key, both threads and its ends.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Flex, Layout, Rect},
    style::{Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Widget},
};

use crate::{app::App, model::Exemplar};

pub struct Breakdown<'a>(pub &'a App);

impl Widget for &Breakdown<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let Some(e) = self.0.selected_exemplar() else { return };
        let width = area.width.saturating_sub(4).min(110);
        let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(area);
        let [popup] =
            Layout::vertical([Constraint::Length(area.height.saturating_sub(2))]).flex(Flex::Center).areas(popup);
        Clear.render(popup, buf);
        let kind = if e.span.is_some() { " Slow span: " } else { " Slow call: " };
        let block = Block::bordered()
            .title(Line::from(vec![
                Span::raw(kind),
                Span::styled(ellipsize_left(self.0.exemplar_name(e), usize::from(width.saturating_sub(30))), bold()),
                Span::raw(" "),
            ]))
            .title_bottom(Line::from(" any key closes ").right_aligned());
        let inner = block.inner(popup);
        block.render(popup, buf);
        if inner.height < 3 || inner.width < 20 {
            return;
        }
        if let Some(ends) = &e.span {
            Paragraph::new(span_lines(self.0, e, ends)).render(inner, buf);
            return;
        }
        let mut lines = header_lines(e);
        lines.push(Line::default());
        let bar_y = inner.y + lines.len() as u16;
        lines.push(Line::default()); // the split bar is drawn over this line
        lines.extend(part_lines(e));
        lines.push(Line::default());
        lines.extend(syscall_lines(e));
        lines.push(Line::default());
        lines.extend(callee_lines(self.0, e, usize::from(inner.width)));
        Paragraph::new(lines).render(inner, buf);
        if bar_y < inner.bottom() {
            (&AttributionBar { shares: e.attribution.shares() }).render(Rect { y: bar_y, height: 1, ..inner }, buf);
        }
    }
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn header_lines(e: &Exemplar) -> Vec<Line<'static>> {
    vec![
        Line::from(vec![Span::styled("Duration ", bold()), Span::raw(fit_ns(e.duration_ns))]),
        Line::from(vec![
            Span::styled("Thread   ", bold()),
            Span::raw(thread(e)),
            Span::styled("   Started ", bold()),
            Span::raw(format!("+{} after attach", fmt_uptime(e.at_ns))),
        ]),
    ]
}

/// A slow span: how long, under which key, from which thread to which, and its two ends.
fn span_lines(app: &App, e: &Exemplar, ends: &crate::model::SpanEnds) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(vec![Span::styled("Duration ", bold()), Span::raw(fit_ns(e.duration_ns))]),
        Line::from(vec![Span::styled("Key      ", bold()), Span::raw(ends.key.to_string())]),
        Line::from(vec![
            Span::styled("Started  ", bold()),
            Span::raw(format!("on {}, +{} after attach", start_thread(ends), fmt_uptime(e.at_ns))),
        ]),
        Line::from(vec![Span::styled("Ended    ", bold()), Span::raw(format!("on {}", thread(e)))]),
    ];
    if let Some(info) = app.session.spans.iter().find(|s| s.name == e.symbol) {
        lines.push(Line::default());
        lines.push(Line::from(vec![Span::styled("From ", bold()), Span::raw(info.from.clone())]));
        lines.push(Line::from(vec![Span::styled("To   ", bold()), Span::raw(info.to.clone())]));
    }
    lines.push(Line::default());
    lines.push(
        Line::from("A span's time runs across threads: it is not split into own CPU, syscalls and off-CPU.").dim(),
    );
    lines
}

/// Each part in ns and as a share, off-CPU as its two causes; interference when measured.
fn part_lines(e: &Exemplar) -> Vec<Line<'static>> {
    let a = &e.attribution;
    let total = a.total_ns().max(1) as f64;
    let mut rows = vec![
        ("own CPU", a.self_oncpu_ns, "running its own code"),
        ("callees", a.callees_ns, "inside traced functions it called"),
        ("syscalls", a.syscalls_ns, "on-CPU in the kernel for its syscalls"),
        ("blocked", a.offcpu_blocked_ns, "off-CPU, waiting (sleep, lock, I/O)"),
        ("run queue", a.offcpu_runqueue_ns, "off-CPU, runnable but not running (CPU contention)"),
    ];
    for (name, ns, why) in [
        ("irq", a.irq_ns, "taken by hard interrupts"),
        ("softirq", a.softirq_ns, "taken by softirqs"),
        ("steal", a.steal_ns, "the hypervisor ran someone else"),
    ] {
        if ns > 0 {
            rows.push((name, ns, why));
        }
    }
    rows.into_iter()
        .map(|(name, ns, why)| {
            Line::from(vec![
                Span::raw(format!("  {name:<10}{:>8} {:>5}  ", fit_ns(ns), pct(ns as f64 / total))),
                Span::raw(why).dim(),
            ])
        })
        .collect()
}

fn syscall_lines(e: &Exemplar) -> Vec<Line<'static>> {
    let mut out = vec![Line::styled(format!("Syscalls ({} made)", fit_count(e.syscall_count)), bold())];
    if e.syscalls.is_empty() {
        out.push(Line::from("  none").dim());
    }
    for s in &e.syscalls {
        out.push(Line::from(format!("  {:<18}{:>6} ×  {:>8}", s.name, fit_count(s.count), fit_ns(s.total_ns))));
    }
    out
}

/// The traced calls that ran inside (the kernel keeps the last few per thread), indented by depth.
fn callee_lines(app: &App, e: &Exemplar, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let heaviest = e.callees_text_named(|c| app.callee_name(c));
    if !heaviest.is_empty() {
        out.push(Line::styled("Heaviest callees", bold()));
        out.push(Line::from(format!("  {}", ellipsize_left(&heaviest, width.saturating_sub(2)))));
    }
    out.push(Line::styled(format!("Traced calls inside (last {} kept)", e.nested.len()), bold()));
    if e.nested.is_empty() {
        out.push(Line::from("  none seen (no traced callee, or it ran before the last few)").dim());
    }
    let top = e.nested.iter().map(|n| n.depth).min().unwrap_or(0);
    // The kernel's ring holds them by return (a callee before its caller): show them by start.
    let mut calls: Vec<_> = e.nested.iter().collect();
    calls.sort_by_key(|n| (n.at_ns, n.depth));
    for n in calls {
        let indent = "  ".repeat((n.depth - top) as usize);
        let at = n.at_ns.saturating_sub(e.at_ns);
        let head = format!("  +{:>7}  {:>7}  {indent}", fit_ns(at), fit_ns(n.duration_ns));
        let name = ellipsize_left(app.symbol(n.fn_id), width.saturating_sub(head.chars().count()));
        out.push(Line::from(format!("{head}{name}")));
    }
    out
}
