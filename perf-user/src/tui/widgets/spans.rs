//! The spans (`--span`): a compact table under the function table, and a view of their own
//! (Tab) where a span is selected and its histogram, matching and slowest spans (key, both
//! threads) are drawn under the table.

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Modifier, Style, Stylize},
    text::{Line, Span},
    widgets::{Block, Cell, Row, StatefulWidget, Table, TableState, Widget},
};

use crate::{
    app::{App, View},
    model::{BucketHist, Exemplar, LatencySummary, SpanInfo, SpanSample},
};

/// Rows the span table needs: its spans, a header and two borders.
pub(crate) fn span_table_height(app: &App) -> u16 {
    if app.session.spans.is_empty() { 0 } else { app.session.spans.len() as u16 + 3 }
}

/// Eight cells of the histogram's shape, from its fastest to its slowest non-empty bucket.
fn shape(h: &BucketHist) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let n = h.buckets.len();
    if n == 0 {
        return String::new();
    }
    let cells: Vec<u64> = (0..8)
        .map(|c| h.buckets[c * n / 8..((c + 1) * n / 8).max(c * n / 8 + 1).min(n)].iter().map(|b| b.count).sum())
        .collect();
    let top = cells.iter().copied().max().unwrap_or(1).max(1);
    cells.iter().map(|&c| if c == 0 { ' ' } else { BARS[((c * 7) / top) as usize] }).collect()
}

/// A span's latency in the window: from its buckets, clamped into the kernel's exact extremes
/// when the window has them (all time), as function rows are.
fn span_latency(s: &SpanSample) -> LatencySummary {
    let exact = (s.row.count > 0 && s.row.max_ns > 0).then(|| s.row.exact());
    let mut latency = s.row.total_hist.summary(exact);
    latency.count = s.row.count;
    latency.mean_ns = s.row.total_ns.checked_div(s.row.count).unwrap_or(0);
    latency
}

/// Span `info`'s kept exemplars (its slow spans).
fn slow_spans<'a>(app: &'a App, info: &'a SpanInfo) -> impl Iterator<Item = &'a Exemplar> {
    app.exemplars().iter().filter(|e| e.span.is_some() && e.symbol == info.name)
}

/// "41.0µs key 17 tid 101→103": a slow span's duration, key and the threads it started and
/// ended on.
fn span_call(e: &Exemplar) -> String {
    e.span
        .as_ref()
        .map(|sp| format!("{} key {} tid {}→{}", fit_ns(e.duration_ns), sp.key, sp.start_tid, e.tid))
        .unwrap_or_default()
}

/// The span table: under the function table (`selectable: false`) or as the spans view, where
/// the cursor's row is highlighted.
pub struct SpanTable<'a> {
    pub app: &'a App,
    pub selectable: bool,
}

/// (title, width, priority) of the span table's number columns; the name and the slowest span
/// share what is left.
const SPAN_COLS: [(&str, u16, u8); 8] = [
    ("Starts", 8, 5),
    ("Count", 8, 0),
    ("P50", 8, 2),
    ("P99", 8, 1),
    ("Max", 8, 3),
    ("Unmatched", 9, 4),
    ("Histogram", 9, 6),
    ("Slowest", 26, 7),
];

impl Widget for &SpanTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        // The name keeps at least 14 cells; columns go by priority as the width shrinks.
        let inner_w = area.width.saturating_sub(if self.selectable { 4 } else { 2 });
        let keep = fit_columns(&SPAN_COLS.map(|c| (c.1, c.2)), inner_w, 14);
        let mut header = vec![Cell::from("Span")];
        let mut widths = vec![Constraint::Min(14)];
        for ((title, w, _), _) in SPAN_COLS.iter().zip(&keep).filter(|(_, k)| **k) {
            header.push(if *title == "Histogram" || *title == "Slowest" {
                Cell::from(*title)
            } else {
                right((*title).to_string())
            });
            widths.push(if *title == "Slowest" { Constraint::Fill(2) } else { Constraint::Length(*w) });
        }
        let empty = SpanSample::default();
        let rows: Vec<Row> = app
            .session
            .spans
            .iter()
            .map(|si| {
                let s = app.span_sample(si.id).unwrap_or(&empty);
                let l = span_latency(s);
                let n = s.row.count;
                let values = [
                    right(fit_count(s.row.calls)),
                    right(fit_count(n)),
                    right(lat(l.p50_ns, n)),
                    right(lat(l.p99_ns, n)),
                    right(lat(l.max_ns, n)),
                    right(fit_count(s.unmatched())),
                    Cell::from(shape(&s.row.total_hist)),
                    Cell::from(slow_spans(app, si).max_by_key(|e| e.duration_ns).map(span_call).unwrap_or_default()),
                ];
                let mut cells = vec![Cell::from(si.name.clone())];
                cells.extend(values.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| v));
                let row = Row::new(cells);
                if n == 0 { row.style(Style::default().dim()) } else { row }
            })
            .collect();
        let head = Row::new(header);
        if self.selectable {
            let table = selectable_table(rows, widths, head, table_block(app, Line::default()));
            let at = app.ui.selected[View::Spans as usize];
            let height = usize::from(area.height.saturating_sub(3));
            let offset = scroll(app.session.spans.len(), at, height);
            let mut state = TableState::default().with_offset(offset).with_selected(Some(at));
            StatefulWidget::render(table, area, buf, &mut state);
        } else {
            let block = Block::bordered().title(Line::from(" Spans (FROM..TO, matched by key; Tab: Spans view) "));
            Widget::render(Table::new(rows, widths).header(head.bold()).block(block).column_spacing(1), area, buf);
        }
    }
}

/// The spans view: the span table with a cursor, the selected span's detail under it.
pub(crate) fn spans_view(app: &App, area: Rect, buf: &mut Buffer) {
    let table_h = span_table_height(app).max(4).min(area.height / 2);
    let [table, detail] = Layout::vertical([Constraint::Length(table_h), Constraint::Fill(1)]).areas(area);
    (&SpanTable { app, selectable: true }).render(table, buf);
    (&SpanDetail(app)).render(detail, buf);
}

/// The selected span: its histogram, what matching kept and lost, its slowest spans.
pub struct SpanDetail<'a>(pub &'a App);

impl Widget for &SpanDetail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some((info, s)) = app.selected_span() else {
            Block::bordered().title(" Span ").render(area, buf);
            return;
        };
        let empty = SpanSample::default();
        let s = s.unwrap_or(&empty);
        let latency = span_latency(s);
        let block = Block::bordered()
            .title(Line::from(vec![
                Span::raw(" "),
                Span::styled(
                    ellipsize_left(&info.name, usize::from(area.width.saturating_sub(50))),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" · window {} ", app.derived.window.label())),
            ]))
            .title(
                Line::from(format!(
                    " {} spans · mean {} ",
                    fit_count(s.row.count),
                    lat(latency.mean_ns, latency.count)
                ))
                .right_aligned(),
            );
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.height < 4 || inner.width < 20 {
            return;
        }
        let histogram = LatencyHistogram {
            hist: &s.row.total_hist,
            markers: [("p50", latency.p50_ns), ("p99", latency.p99_ns), ("p99.9", latency.p999_ns)],
        };
        if inner.width >= 90 {
            // Half each: a slow span's line (key, both threads) needs more room than a call's.
            let [left, _, right] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Length(2), Constraint::Fill(1)])
                    .areas(inner);
            render_histogram(&histogram, &latency, 0, left, buf);
            span_sections(app, info, s, right, buf);
        } else {
            let [top, hist_area] = Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(inner);
            span_sections(app, info, s, top, buf);
            render_histogram(&histogram, &latency, 0, hist_area, buf);
        }
    }
}

/// The span's ends, what matching kept and lost, and its slowest spans, top to bottom while
/// they fit.
fn span_sections(app: &App, info: &SpanInfo, s: &SpanSample, area: Rect, buf: &mut Buffer) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::from(vec![Span::styled("From ", bold), Span::raw(info.from.clone())]),
        Line::from(vec![Span::styled("To   ", bold), Span::raw(info.to.clone())]),
        Line::default(),
        Line::styled("Matching", bold),
        Line::from(format!(
            "  {} starts · {} matched · {} waiting",
            fit_count(s.starts),
            fit_count(s.row.count),
            fit_count(s.pending)
        )),
    ];
    let lost = s.starts_lost();
    let evicted = lost.saturating_sub(s.starts_replaced);
    let losses = [
        format!(
            "  lost starts {} (replaced {}, evicted {})",
            fit_count(lost),
            fit_count(s.starts_replaced),
            fit_count(evicted)
        ),
        format!("  ends without start {} · key faults {}", fit_count(s.ends_without_start), fit_count(s.key_faults)),
    ];
    let troubled = lost + s.ends_without_start + s.key_faults > 0;
    for l in losses {
        lines.push(if troubled { Line::from(l).fg(ratatui::style::Color::Yellow) } else { Line::from(l).dim() });
    }
    lines.push(Line::default());
    let mut slow: Vec<&Exemplar> = slow_spans(app, info).collect();
    slow.sort_by_key(|e| std::cmp::Reverse(e.duration_ns));
    lines.push(Line::from(vec![Span::styled("Slowest spans", bold), Span::raw(format!(" ({} kept)", slow.len()))]));
    if slow.is_empty() {
        lines.push(Line::from("  none yet (see --slow)").dim());
    }
    for e in &slow {
        let Some(sp) = &e.span else { continue };
        lines.push(Line::from(format!(
            "  {:>7}  +{} key {} {} → {}",
            fit_ns(e.duration_ns),
            fmt_uptime(e.at_ns),
            sp.key,
            start_thread(sp),
            thread(e)
        )));
    }
    for (i, l) in lines.iter().take(usize::from(area.height)).enumerate() {
        buf.set_line(area.x, area.y + i as u16, l, area.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        app::Event,
        model::{Bucket, FuncSample, Sample, SpanInfo, SpanSample},
        tui::fixtures,
    };

    #[test]
    fn a_span_row_shows_its_counts_latency_and_losses() {
        let mut app = fixtures::empty_app(1);
        app.session.spans =
            vec![SpanInfo { id: 0, name: "tick_to_trade".into(), from: "a(arg0)".into(), to: "b(ret)".into() }];
        let hist = BucketHist { buckets: vec![Bucket { low_ns: 40_000, high_ns: 41_000, count: 90 }] };
        let span = SpanSample {
            row: FuncSample {
                id: 0,
                calls: 1000,
                count: 90,
                max_ns: 41_000,
                total_hist: hist,
                ..FuncSample::default()
            },
            starts: 1000,
            pending: 10,
            ..SpanSample::default()
        };
        app.handle(Event::Tick {
            sample: Sample { at_ns: 1_000_000_000, spans: vec![span], ..Sample::default() },
            exemplars: vec![],
        });
        assert_eq!(span_table_height(&app), 4);
        let area = Rect::new(0, 0, 110, 4);
        let mut buf = Buffer::empty(area);
        (&SpanTable { app: &app, selectable: false }).render(area, &mut buf);
        let text: String = (0..4).map(|y| (0..110).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n").collect();
        assert!(text.contains("tick_to_trade"), "{text}");
        assert!(text.contains("1000") && text.contains("90"), "{text}");
        // 1000 starts, 90 ended, 10 waiting: 900 never matched.
        assert!(text.contains("900"), "{text}");
        assert!(text.contains("40.") || text.contains("41"), "{text}");
        assert_eq!(span_table_height(&fixtures::empty_app(1)), 0);
    }
}
