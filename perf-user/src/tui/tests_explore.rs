//! The slow-call views at the three terminal sizes (insta snapshots): the exemplars sorted by
//! duration, one call's breakdown, the latency heatmap and the per-thread pane; and their keys.

use ratatui::{Terminal, backend::TestBackend};

use super::fixtures;
use crate::app::{App, Event, ExemplarSort, Key, Pane, View};

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 50)];

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap_or_else(|e| panic!("{e}"));
    terminal.draw(|f| f.render_widget(app, f.area())).unwrap_or_else(|e| panic!("{e}"));
    terminal.backend().to_string()
}

fn keys(app: &mut App, keys: &[Key]) {
    for k in keys {
        app.handle(Event::Key(*k));
    }
}

fn each_size(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app, w, h));
    }
}

#[test]
fn exemplars_sorted_by_duration_with_their_start() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::BackTab, Key::Char('s')]);
    assert_eq!((app.ui.view, app.ui.exemplar.sort), (View::Exemplars, ExemplarSort::Duration));
    let d: Vec<u64> = app.ui.visible_exemplars.iter().map(|&i| app.exemplars()[i].duration_ns).collect();
    assert!(d.windows(2).all(|w| w[0] >= w[1]), "longest first: {d:?}");
    each_size("exemplars_by_duration", &app);
}

#[test]
fn exemplar_breakdown() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::BackTab, Key::Down, Key::Enter]);
    assert!(app.ui.exemplar.open);
    each_size("exemplar_breakdown", &app);
    keys(&mut app, &[Key::Char('q')]);
    assert!(!app.ui.exemplar.open, "any key closes the breakdown, q included");
}

#[test]
fn latency_heatmap() {
    let mut app = fixtures::app(8, 30);
    keys(&mut app, &[Key::Down, Key::Down, Key::Char('h')]);
    assert_eq!(app.ui.pane, Pane::Heatmap);
    each_size("latency_heatmap", &app);
}

#[test]
fn threads_pane() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::Char('t')]);
    assert_eq!(app.ui.pane, Pane::Threads);
    each_size("threads_pane", &app);
    keys(&mut app, &[Key::Char('t')]);
    assert_eq!(app.ui.pane, Pane::Detail, "t again goes back to the detail");
}

#[test]
fn functions_table_with_trend() {
    each_size("functions_with_trend", &fixtures::app(8, 20));
}

/// The cursor stays on the call it was on while newer calls arrive above it (newest first).
#[test]
fn exemplar_selection_follows_its_call_as_new_ones_arrive() {
    let mut app = fixtures::app(8, 3);
    keys(&mut app, &[Key::BackTab, Key::Down, Key::Down]);
    let before = app.selected_exemplar().map(|e| e.seq);
    assert!(before.is_some());
    // Three more ticks bring more exemplars, each newer than the selected one.
    let more = fixtures::app(8, 6);
    let extra: Vec<_> = more.exemplars().iter().skip(app.exemplars().len()).cloned().collect();
    assert!(!extra.is_empty());
    let sample = more.session.latest().cloned().unwrap_or_default();
    app.handle(Event::Tick { sample, exemplars: extra });
    assert_eq!(app.selected_exemplar().map(|e| e.seq), before, "the cursor moved off its call");
    assert!(app.ui.selected[2] > 2, "rows arrived above it");
}
