//! Widgets rendered into buffers, whole screens into a `TestBackend` (insta snapshots in
//! `src/tui/snapshots/`), and the key mapping. Apps come from `fixtures`: synthetic samples.

use ratatui::{
    Terminal,
    backend::TestBackend,
    buffer::Buffer,
    crossterm::event::{KeyEvent, KeyEventState},
    layout::Rect,
    style::{Color, Style},
    widgets::Widget,
};

use super::{fixtures, widgets::*, *};
use crate::{
    app::{Event, Key, View},
    model::{BucketHist, Shares},
};

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| f.render_widget(app, f.area())).unwrap();
    terminal.backend().to_string()
}

fn keys(app: &mut App, keys: &[Key]) {
    for k in keys {
        app.handle(Event::Key(*k));
    }
}

fn lines(buf: &Buffer) -> Vec<String> {
    buf.content()
        .chunks(usize::from(buf.area.width))
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Widgets
// ---------------------------------------------------------------------------------------------

#[test]
fn attribution_bar_splits_the_width_by_largest_remainder() {
    let shares = Shares { self_oncpu: 0.5, callees: 0.2, syscalls: 0.1, offcpu: 0.2, ..Shares::default() };
    let mut buf = Buffer::empty(Rect::new(0, 0, 10, 1));
    (&AttributionBar { shares }).render(buf.area, &mut buf);
    let mut expected = Buffer::with_lines(["█████▓▓▒░░"]);
    expected.set_style(Rect::new(0, 0, 5, 1), Style::default().fg(Color::Green));
    expected.set_style(Rect::new(5, 0, 2, 1), Style::default().fg(Color::Blue));
    expected.set_style(Rect::new(7, 0, 1, 1), Style::default().fg(Color::Yellow));
    expected.set_style(Rect::new(8, 0, 2, 1), Style::default().fg(Color::Red));
    assert_eq!(buf, expected);

    // Thirds of 10 cells: the remainders go left to right, the bar is always full.
    let thirds =
        Shares { self_oncpu: 1.0 / 3.0, callees: 1.0 / 3.0, syscalls: 0.0, offcpu: 1.0 / 3.0, ..Shares::default() };
    let mut buf = Buffer::empty(Rect::new(0, 0, 10, 1));
    (&AttributionBar { shares: thirds }).render(buf.area, &mut buf);
    assert_eq!(lines(&buf), ["████▓▓▓░░░"]);

    let mut buf = Buffer::empty(Rect::new(0, 0, 20, 1));
    (&AttributionBar { shares: Shares::default() }).render(buf.area, &mut buf);
    assert_eq!(lines(&buf), ["no time measured    "]);
}

#[test]
fn interference_is_its_own_part_of_the_bar_and_legend_only_when_measured() {
    let shares = Shares { self_oncpu: 0.5, offcpu: 0.2, interference: 0.3, ..Shares::default() };
    let mut buf = Buffer::empty(Rect::new(0, 0, 10, 1));
    (&AttributionBar { shares }).render(buf.area, &mut buf);
    assert_eq!(lines(&buf), ["█████░░╳╳╳"]);
    let text = |s: &Shares| legend(s).spans.iter().map(|s| s.content.to_string()).collect::<String>();
    assert!(text(&shares).ends_with("╳ irq/steal 30%"), "{}", text(&shares));
    assert!(!text(&Shares { self_oncpu: 1.0, ..Shares::default() }).contains("irq"), "no part without --interference");
}

#[test]
fn histogram_of_one_bucket_is_one_full_bar_with_its_markers() {
    let hist = fixtures::hist(&[(1_000, 50)]);
    let w = LatencyHistogram { hist: &hist, markers: [("p50", 1_000), ("p99", 1_000), ("p99.9", 1_000)] };
    let mut buf = Buffer::empty(Rect::new(0, 0, 24, 5));
    (&w).render(buf.area, &mut buf);
    assert_eq!(
        lines(&buf),
        [
            "            █           ",
            "            █           ",
            "            █           ",
            "            ▲p50/99/99.9",
            "707ns             1.41µs",
        ]
    );
}

#[test]
fn histogram_groups_buckets_on_a_log_axis_and_marks_percentiles_in_order() {
    // 1 µs to ~1 ms: three decades over 30 columns; the tail buckets are small but visible.
    let hist = fixtures::hist(&[(1_000, 900), (1_100, 800), (10_000, 90), (1_000_000, 10)]);
    let w = LatencyHistogram { hist: &hist, markers: [("p50", 1_050), ("p99", 10_000), ("p99.9", 1_000_000)] };
    let mut buf = Buffer::empty(Rect::new(0, 0, 30, 6));
    (&w).render(buf.area, &mut buf);
    let text = lines(&buf);
    assert_eq!(text[3].chars().next(), Some('█'), "the mode is at the left edge: {text:#?}");
    assert!(text[3].contains('▁') || text[3].contains('▂'), "the tail shows up: {text:#?}");
    let markers = &text[4];
    let (p50, p99, p999) = (markers.find("p50"), markers.find("p99"), markers.find("p99.9"));
    assert!(p50 < p99 && p99 <= p999, "{markers:?}");
    assert!(text[5].starts_with("992ns"), "the axis starts at the first bucket's low end: {text:#?}");
}

#[test]
fn histogram_without_calls_says_so() {
    let hist = BucketHist::default();
    let w = LatencyHistogram { hist: &hist, markers: [("p50", 0), ("p99", 0), ("p99.9", 0)] };
    let mut buf = Buffer::empty(Rect::new(0, 0, 24, 3));
    (&w).render(buf.area, &mut buf);
    assert_eq!(lines(&buf)[0], "no calls in this window ");
}

#[test]
fn numbers_fit_their_columns_whatever_their_size() {
    assert_eq!(fit_ns(842), "842ns");
    assert_eq!(fit_ns(12_345), "12.3µs");
    assert_eq!(fit_ns(999_000_000_000), "999s");
    assert_eq!(fit_ns(2_165_000_000_000), "36min");
    assert_eq!(fit_ns(7_200_000_000_000), "2.0h");
    assert_eq!(fit_ns(180_000_000_000_000), "50h");
    assert_eq!(fit_ns(30 * 86_400_000_000_000), "30d");
    assert_eq!(fit_ns(365 * 86_400_000_000_000), "365d");
    assert_eq!(fit_ns(u64::MAX / 2), ">1e5d");
    assert_eq!(fit_ns(u64::MAX), ">1e5d");
    for ns in [0, 1, 999, 1_000, 999_999, 5_000_000_000_000, u64::MAX / 3, u64::MAX] {
        assert!(fit_ns(ns).chars().count() <= 7, "{ns}: {}", fit_ns(ns));
    }
    assert_eq!(fit_count(12_345), "12.3k");
    assert_eq!(fit_count(u64::MAX), "18.4E");
    assert_eq!(fit_count(2_000_000_000_000), "2.00T");
    for n in [0, 9_999, 10_000, 999_999_999, 1_000_000_000, u64::MAX] {
        assert!(fit_count(n).chars().count() <= 7, "{n}: {}", fit_count(n));
    }
    assert_eq!(fit_rate(4e15), "4.00P/s");
    assert!(fit_rate(99_999_999.0).chars().count() <= 9);
    assert_eq!(fmt_uptime(12_340_000_000), "12.3s");
    assert_eq!(fmt_uptime(245_000_000_000), "4m05s");
    assert_eq!(fmt_uptime(7_620_000_000_000), "2h07m");
}

#[test]
fn long_names_keep_their_tail() {
    assert_eq!(ellipsize_left("target_app::book::OrderBook::apply", 20), "…k::OrderBook::apply");
    assert_eq!(ellipsize_left("short", 20), "short");
    assert_eq!(ellipsize_left("abc", 0), "");
}

// ---------------------------------------------------------------------------------------------
// Whole screens
// ---------------------------------------------------------------------------------------------

#[test]
fn screen_no_data_yet() {
    insta::assert_snapshot!(screen(&fixtures::empty_app(8), 160, 45));
}

#[test]
fn latency_only_and_sampling_are_named_and_not_split() {
    let mut app = fixtures::app(3, 30);
    app.info.probes = "latency".into();
    app.info.sample_every = 10;
    let s = screen(&app, 160, 45);
    assert!(s.contains("latency only, 1 in 10 timed"), "{s}");
    assert!(s.contains("not split: --latency-only"), "{s}");
    assert!(!s.contains("own CPU"), "no attribution legend: {s}");
    app.info.probes = "full".into();
    let s = screen(&app, 160, 45);
    assert!(s.contains("1 in 10 timed") && !s.contains("latency only") && s.contains("own CPU"), "{s}");
}

#[test]
fn screen_one_function() {
    insta::assert_snapshot!(screen(&fixtures::app(1, 30), 160, 45));
}

#[test]
fn screen_many_functions_scrolled() {
    let mut app = fixtures::app(40, 30);
    keys(&mut app, &[Key::PageDown, Key::PageDown, Key::Down, Key::Down, Key::Down, Key::Down, Key::Down]);
    assert_eq!(app.ui.selected[0], 25);
    insta::assert_snapshot!(screen(&app, 160, 45));
}

#[test]
fn screen_saturated_buckets_and_huge_counts() {
    // The second function: most calls at 1 µs, some in the unbounded top bucket (≥ 36 min).
    let mut app = fixtures::saturated_app();
    keys(&mut app, &[Key::Down]);
    insta::assert_snapshot!(screen(&app, 160, 45));
}

#[test]
fn screen_target_exited() {
    let mut app = fixtures::app(8, 20);
    app.handle(Event::TargetExited);
    insta::assert_snapshot!(screen(&app, 160, 45));
}

#[test]
fn screen_narrow_80x24() {
    insta::assert_snapshot!(screen(&fixtures::app(8, 20), 80, 24));
}

#[test]
fn screen_narrow_but_tall_stacks_the_detail_pane() {
    insta::assert_snapshot!(screen(&fixtures::app(8, 20), 80, 40));
}

#[test]
fn screen_syscalls_view() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::Tab, Key::Down]);
    assert_eq!(app.ui.view, View::Syscalls);
    insta::assert_snapshot!(screen(&app, 120, 20));
}

#[test]
fn screen_exemplars_view() {
    let mut app = fixtures::app(8, 3);
    keys(&mut app, &[Key::BackTab]);
    assert_eq!(app.ui.view, View::Exemplars);
    insta::assert_snapshot!(screen(&app, 140, 20));
}

#[test]
fn screen_paused_filtered_sorted_by_name() {
    let mut app = fixtures::app(12, 10);
    let mut ks = vec![Key::Char('p'), Key::Char('w'), Key::Char('/')];
    ks.extend("handler1".chars().map(Key::Char));
    ks.extend([Key::Enter, Key::Char('s'), Key::Char('S'), Key::Char('/')]);
    keys(&mut app, &ks);
    assert!(app.paused && app.ui.filter_editing);
    insta::assert_snapshot!(screen(&app, 120, 36));
}

#[test]
fn screen_help_overlay() {
    let mut app = fixtures::app(8, 5);
    keys(&mut app, &[Key::Char('?')]);
    insta::assert_snapshot!(screen(&app, 100, 30));
}

#[test]
fn tiny_terminals_do_not_panic() {
    let app = fixtures::app(3, 3);
    let mut exited = fixtures::saturated_app();
    exited.handle(Event::TargetExited);
    for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (60, 12), (89, 31), (90, 31), (200, 8)] {
        for a in [&app, &exited, &fixtures::empty_app(0)] {
            let _ = screen(a, w, h);
        }
    }
}

#[test]
fn drawing_twice_changes_nothing() {
    // ratatui diffs frames: an unchanged app must produce an identical buffer (no flicker).
    let app = fixtures::app(8, 5);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
    let first = terminal.backend().buffer().clone();
    terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
    assert_eq!(&first, terminal.backend().buffer());
}

// ---------------------------------------------------------------------------------------------
// Terminal events → keys
// ---------------------------------------------------------------------------------------------

#[test]
fn terminal_events_map_to_keys() {
    use ratatui::crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
    let ev = |code, modifiers| {
        TermEvent::Key(KeyEvent { code, modifiers, kind: KeyEventKind::Press, state: KeyEventState::NONE })
    };
    assert_eq!(map_event(&ev(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Key::CtrlC));
    assert_eq!(map_event(&ev(KeyCode::Char('x'), KeyModifiers::CONTROL)), None);
    assert_eq!(map_event(&ev(KeyCode::Char('S'), KeyModifiers::SHIFT)), Some(Key::Char('S')));
    assert_eq!(map_event(&ev(KeyCode::BackTab, KeyModifiers::SHIFT)), Some(Key::BackTab));
    assert_eq!(map_event(&ev(KeyCode::PageDown, KeyModifiers::NONE)), Some(Key::PageDown));
    assert_eq!(map_event(&ev(KeyCode::F(1), KeyModifiers::NONE)), None);
    assert_eq!(map_event(&TermEvent::Resize(80, 24)), Some(Key::Resize));
    let release = TermEvent::Key(KeyEvent {
        code: KeyCode::Char('q'),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Release,
        state: KeyEventState::NONE,
    });
    assert_eq!(map_event(&release), None);
}
