//! The spans (`--span`) under the function table: per span its latency in the active window,
//! what matching lost, its histogram's shape and its slowest kept exemplar (key, both threads).

use super::*;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Rect},
    style::{Style, Stylize},
    text::Line,
    widgets::{Block, Cell, Row, Table, Widget},
};

use crate::{app::App, model::BucketHist};

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

pub struct SpanTable<'a>(pub &'a App);

impl Widget for &SpanTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let header = ["Span", "Starts", "Count", "P50", "P99", "Max", "Unmatched", "Histogram", "Slowest"];
        let rows: Vec<Row> = app
            .session
            .spans
            .iter()
            .map(|si| {
                let s = app.derived.sample.spans.iter().find(|s| s.row.id == si.id).cloned().unwrap_or_default();
                let l = s.row.total_hist.summary(None);
                let n = s.row.count;
                let slowest = app
                    .exemplars()
                    .iter()
                    .filter(|e| e.span.is_some() && e.symbol == si.name)
                    .max_by_key(|e| e.duration_ns)
                    .and_then(|e| {
                        e.span.as_ref().map(|sp| {
                            format!("{} key {} tid {}→{}", fit_ns(e.duration_ns), sp.key, sp.start_tid, e.tid)
                        })
                    })
                    .unwrap_or_default();
                let row = Row::new(vec![
                    Cell::from(si.name.clone()),
                    right(fit_count(s.row.calls)),
                    right(fit_count(n)),
                    right(lat(l.p50_ns, n)),
                    right(lat(l.p99_ns, n)),
                    right(lat(s.row.max_ns.max(l.max_ns), n)),
                    right(fit_count(s.unmatched())),
                    Cell::from(shape(&s.row.total_hist)),
                    Cell::from(slowest),
                ]);
                if n == 0 { row.style(Style::default().dim()) } else { row }
            })
            .collect();
        let widths = [
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Fill(2),
        ];
        let head = Row::new(
            header.iter().enumerate().map(
                |(i, h)| {
                    if (1..=6).contains(&i) { right((*h).to_string()) } else { Cell::from(*h) }
                },
            ),
        )
        .bold();
        let block = Block::bordered().title(Line::from(" Spans (FROM..TO, matched by key) "));
        Table::new(rows, widths).header(head).block(block).column_spacing(1).render(area, buf);
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
        (&SpanTable(&app)).render(area, &mut buf);
        let text: String = (0..4).map(|y| (0..110).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n").collect();
        assert!(text.contains("tick_to_trade"), "{text}");
        assert!(text.contains("1000") && text.contains("90"), "{text}");
        // 1000 starts, 90 ended, 10 waiting: 900 never matched.
        assert!(text.contains("900"), "{text}");
        assert!(text.contains("40.") || text.contains("41"), "{text}");
        assert_eq!(span_table_height(&fixtures::empty_app(1)), 0);
    }
}
