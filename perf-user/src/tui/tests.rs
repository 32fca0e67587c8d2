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

pub(super) fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| f.render_widget(app, f.area())).unwrap();
    terminal.backend().to_string()
}

pub(super) fn keys(app: &mut App, keys: &[Key]) {
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
    let text = |s: &Shares| legend(s, 200).spans.iter().map(|s| s.content.to_string()).collect::<String>();
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

/// Without `--syscalls` the kernel follows only syscalls inside traced calls: the view says so.
#[test]
fn syscalls_view_says_when_it_lists_only_syscalls_inside_traced_calls() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::Tab]);
    assert!(screen(&app, 120, 20).contains("by Inside, Total"));
    app.info.syscalls_inside_only = true;
    let text = screen(&app, 120, 20);
    assert!(text.contains("inside traced calls only (all: --syscalls)"), "{text}");
}

#[test]
fn screen_exemplars_view() {
    let mut app = fixtures::app(8, 3);
    keys(&mut app, &[Key::BackTab, Key::BackTab]);
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
// Regressions seen at 80, 120 and 200 columns
// ---------------------------------------------------------------------------------------------

/// The line holding the split legend (from its first label on).
fn legend_line(screen: &str) -> String {
    let line = screen.lines().find(|l| l.contains("▒ sys")).unwrap_or_default();
    line[line.find("█ own").unwrap_or(0)..].to_string()
}

#[test]
fn the_split_legend_keeps_every_number_at_80_and_120_columns() {
    // Regression: at 80 columns the legend under the table read `off-CPU 9` for 90 %, at 120 the
    // detail pane's legend lost its last label.
    let mut app = fixtures::app(8, 20);
    for _ in 0..8 {
        for (w, h) in [(80, 24), (120, 40), (200, 50)] {
            let text = screen(&app, w, h);
            let legend = legend_line(&text);
            assert_eq!(legend.matches('%').count(), 4, "{w}x{h}: {legend:?}\n{text}");
        }
        keys(&mut app, &[Key::Down]);
    }
    // The widest shares (three digits) in narrow widths: labels shrink, numbers stay.
    let shares = Shares { self_oncpu: 0.0, callees: 0.0, syscalls: 0.1, offcpu: 0.9, interference: 0.0 };
    let full = legend(&shares, 200);
    assert!(full.to_string().contains("off-CPU 90%"), "{full}");
    for width in 20..=80u16 {
        let l = legend(&shares, width);
        assert!(l.width() <= usize::from(width) || width < 24, "{width}: {l}");
        assert!(l.to_string().contains("90%") && l.to_string().contains("10%"), "{width}: {l}");
    }
}

#[test]
fn every_sortable_column_holds_its_title_and_the_arrow() {
    // Regression: sorted by callees, the header read `allee▼`.
    for (_, title, width, ..) in FN_COLS {
        assert!(usize::from(width) > title.chars().count(), "{title} in {width} cells");
    }
    let mut app = fixtures::app(8, 5);
    while app.ui.sort != crate::app::SortKey::Callees {
        keys(&mut app, &[Key::Char('s')]);
    }
    let text = screen(&app, 200, 50);
    assert!(text.contains("Callee▼"), "{text}");
}

#[test]
fn the_footer_keeps_help_in_view_whatever_the_status() {
    // Regression: a long status pushed `? help` off the screen.
    let mut app = fixtures::app(8, 5);
    app.set_status(
        "overhead guard: detached target_app::engine::Engine::on_message (probes cost ~25.0% of a CPU > --max-overhead 25%)",
    );
    for (w, h) in [(80, 24), (120, 40), (200, 50)] {
        let text = screen(&app, w, h);
        let footer = text.lines().last().unwrap_or_default();
        assert!(footer.contains("? help"), "{w}: {footer}");
        assert!(footer.contains("overhead guard: detached"), "{w}: {footer}");
    }
    app.status.clear();
    let footer = screen(&app, 80, 24).lines().last().unwrap_or_default().to_string();
    assert!(footer.contains("q quit") && footer.contains("? help"), "{footer}");
}

#[test]
fn the_overhead_estimate_is_red_only_above_the_guard() {
    // Regression: red from 5 %, while the guard (25 % by default) let it be.
    let app = |max_overhead_pct| {
        let mut a = fixtures::empty_app(8);
        a.info.probe_cost_per_hit_ns = 5_000;
        let mut a = fixtures::ticked(a, 5);
        a.max_overhead_pct = max_overhead_pct;
        a
    };
    let colour = |a: &App| {
        let mut buf = Buffer::empty(Rect::new(0, 0, 160, 2));
        (&Header(a)).render(buf.area, &mut buf);
        let row: String = (0..160).map(|x| buf[(x, 1)].symbol().to_string()).collect();
        let at = row.find("% of 1 CPU").map(|b| row[..b].chars().count()).unwrap_or(0);
        buf[(at as u16, 1)].fg
    };
    let a = app(25.0);
    assert!(a.derived.overhead_pct > 5.0 && a.derived.overhead_pct < 25.0, "{}", a.derived.overhead_pct);
    assert_ne!(colour(&a), Color::Red, "under the guard");
    assert_eq!(colour(&app(1.0)), Color::Red, "above it");
}

#[test]
fn tail_cells_are_coloured_against_the_baseline_and_the_threshold() {
    use crate::{
        app::TailColours,
        model::LatencySummary,
        output::report::{FunctionReport, Report},
    };
    let mut app = fixtures::app(3, 5);
    let row = |app: &App, id: u32| app.derived.functions.iter().find(|r| r.id == id).cloned().unwrap_or_default();
    let (r0, r1) = (row(&app, 0), row(&app, 1));
    // Function 0 got twice as slow since the baseline, function 1 twice as fast.
    let base = |id: u32, r: &crate::app::FunctionRow, factor: f64| FunctionReport {
        symbol: app.symbol(id).to_string(),
        latency: LatencySummary {
            count: 10,
            p99_ns: (r.latency.p99_ns as f64 * factor) as u64,
            p999_ns: (r.latency.p999_ns as f64 * factor) as u64,
            ..LatencySummary::default()
        },
        ..FunctionReport::default()
    };
    let baseline = Report { functions: vec![base(0, &r0, 0.5), base(1, &r1, 2.0)], ..Report::default() };
    app.tails = TailColours::new(None, Some(&baseline));
    for col in [FnCol::P99, FnCol::P999] {
        assert_eq!(tail_style(&app, col, &r0).fg, Some(Color::Red));
        assert_eq!(tail_style(&app, col, &r1).fg, Some(Color::Green));
        assert_eq!(tail_style(&app, col, &row(&app, 2)).fg, None, "not in the baseline");
    }
    assert_eq!(tail_style(&app, FnCol::P50, &r0).fg, None, "only the tails");
    // A threshold: every tail at or above it is red.
    app.tails = TailColours::new(Some(1), None);
    assert_eq!(tail_style(&app, FnCol::P99, &row(&app, 2)).fg, Some(Color::Red));
    // And on screen.
    let mut terminal = Terminal::new(TestBackend::new(160, 45)).unwrap();
    terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
    let buf = terminal.backend().buffer();
    assert!(
        buf.content()
            .iter()
            .any(|c| c.fg == Color::Red && c.symbol().chars().all(|ch| ch.is_ascii_digit() || ch == '.'))
    );
}

#[test]
fn latencies_under_the_calibration_floor_read_as_less_than_it() {
    // Regression: MIN 0 ns and p50 of 0–4 ns after calibration.
    let mut row = crate::app::FunctionRow::default();
    row.latency.count = 10;
    row.latency.p50_ns = 4;
    row.latency.p99_ns = 900;
    row.floor_ns = 47;
    assert_eq!(fn_cell(FnCol::P50, &row), "<47ns");
    assert_eq!(fn_cell(FnCol::P99, &row), "900ns");
    row.floor_ns = 0;
    assert_eq!(fn_cell(FnCol::P50, &row), "4ns", "raw numbers (--no-calibrate) as measured");
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

/// One symbol in the executable and in a library loaded after attach: two rows, each named
/// `object:symbol` as the tables name them, and each judged against its own baseline entry.
#[test]
fn one_symbol_in_two_objects_is_two_rows_with_their_own_baseline() {
    use crate::{
        app::{Tail, TailColours, Verdict},
        model::LatencySummary,
        output::report::{FunctionReport, Report},
    };
    let info = fixtures::run_info();
    let (mut app, symbol) = fixtures::one_symbol_in_two_objects("/usr/lib/libbook.so");
    assert_eq!(app.symbol(1), format!("target-app:{symbol}"));
    assert_eq!(app.symbol(3), format!("libbook.so:{symbol}"));
    assert_eq!(app.symbol(0), "target_app::feed::decode", "unambiguous names stay bare");
    keys(&mut app, &[Key::Char('z')]);
    let text = screen(&app, 160, 30);
    for name in [format!("target-app:{symbol}"), format!("libbook.so:{symbol}")] {
        assert_eq!(text.matches(name.as_str()).count(), 1, "one row named {name}:\n{text}");
    }
    // The baseline has the executable's function fast and the library's slow: each is judged
    // against its own (a report elsewhere may keep the library at another path).
    let base = |object: &str, p99_ns| FunctionReport {
        symbol: symbol.clone(),
        object: object.into(),
        latency: LatencySummary { count: 10, p99_ns, p999_ns: p99_ns, ..LatencySummary::default() },
        ..FunctionReport::default()
    };
    let baseline = Report {
        target: info.target.clone(),
        functions: vec![base(&info.target.exe, 100), base("/opt/other/libbook.so", 100_000)],
        ..Report::default()
    };
    app.tails = TailColours::new(None, Some(&baseline));
    assert_eq!(app.tails.judge(app.function_key(1), Tail::P99, 1_000, 5), Verdict::Worse);
    assert_eq!(app.tails.judge(app.function_key(3), Tail::P99, 1_000, 5), Verdict::Better);
}

/// The same symbol in the executable and in a library: its slow calls, their breakdown and the
/// traced calls inside them name the object as the functions table does.
#[test]
fn slow_calls_of_one_symbol_in_two_objects_name_their_object() {
    use crate::model::{CalleeUse, Exemplar, NestedCall, Sample};
    let (mut app, symbol) = fixtures::one_symbol_in_two_objects("/usr/lib/libbook.so");
    let slow = |fn_id: u32, duration_ns: u64, nested: Vec<NestedCall>| Exemplar {
        fn_id,
        symbol: symbol.clone(),
        tid: 7,
        thread: "engine".into(),
        duration_ns,
        callees: nested
            .iter()
            .map(|n| CalleeUse { fn_id: n.fn_id, symbol: n.symbol.clone(), count: 1, total_ns: n.duration_ns })
            .collect(),
        nested,
        ..Exemplar::default()
    };
    let inside = NestedCall { fn_id: 3, symbol: symbol.clone(), depth: 1, at_ns: 10, duration_ns: 500 };
    app.handle(Event::Tick {
        sample: Sample::default(),
        exemplars: vec![slow(1, 2_000_000, vec![inside]), slow(3, 1_000_000, Vec::new())],
    });
    keys(&mut app, &[Key::BackTab, Key::BackTab, Key::Char('s')]);
    let table = screen(&app, 240, 30);
    for name in [format!("target-app:{symbol}"), format!("libbook.so:{symbol}")] {
        assert_eq!(table.matches(name.as_str()).count(), 1, "one slow call named {name}:\n{table}");
    }
    let short = crate::model::short_symbol(&symbol);
    assert!(table.contains(&format!("→libbook.so:{short}")), "the callee arrow names the library:\n{table}");
    keys(&mut app, &[Key::Enter]);
    let detail = screen(&app, 200, 40);
    assert!(detail.contains(&format!("libbook.so:{short} ")), "the heaviest callees name the library:\n{detail}");
    let slowest = detail.lines().find(|l| l.contains("Slow call:")).unwrap_or_default();
    assert!(slowest.contains(&format!("target-app:{symbol}")), "the breakdown's title:\n{detail}");
    let nested = detail.lines().skip_while(|l| !l.contains("Traced calls inside")).nth(1).unwrap_or_default();
    assert!(nested.contains(&format!("libbook.so:{symbol}")), "the traced call inside:\n{detail}");
}

/// A library whose path a hostile target chose (escape sequences, a bell) names its slow calls,
/// their callee arrow and their breakdown: the screen shows no control character.
#[test]
fn hostile_object_names_in_slow_calls_never_reach_the_terminal() {
    use crate::model::{CalleeUse, Exemplar, Sample};
    let (mut app, symbol) = fixtures::one_symbol_in_two_objects("/tmp/\x1b]0;pwned\x07\x1b[2J\u{9b}31mlib.so");
    let callee = CalleeUse { fn_id: 3, symbol: symbol.clone(), count: 1, total_ns: 900_000 };
    let slow = |fn_id: u32, callees: Vec<CalleeUse>| Exemplar {
        fn_id,
        symbol: symbol.clone(),
        tid: 7,
        duration_ns: 1_000_000,
        callees,
        ..Exemplar::default()
    };
    app.handle(Event::Tick { sample: Sample::default(), exemplars: vec![slow(1, vec![callee]), slow(3, Vec::new())] });
    keys(&mut app, &[Key::BackTab, Key::BackTab, Key::Char('s')]);
    let table = screen(&app, 240, 30);
    assert!(table.contains("lib.so:"), "the library's slow call is shown:\n{table}");
    keys(&mut app, &[Key::Enter]);
    let detail = screen(&app, 200, 40);
    for shown in [&table, &detail] {
        assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "a control character on screen:\n{shown:?}");
    }
}
