//! The slow-call views at the three terminal sizes (insta snapshots): the exemplars sorted by
//! duration, one call's breakdown, the latency heatmap and the per-thread pane; and their keys.

use super::{
    fixtures,
    tests::{keys, screen},
};
use crate::app::{App, Event, ExemplarSort, Key, Pane, View};

const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 50)];

fn each_size(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app, w, h));
    }
}

#[test]
fn exemplars_sorted_by_duration_with_their_start() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::BackTab, Key::BackTab, Key::Char('s')]);
    assert_eq!((app.ui.view, app.ui.exemplar.sort), (View::Exemplars, ExemplarSort::Duration));
    let d: Vec<u64> = app.ui.visible_exemplars.iter().map(|&i| app.exemplars()[i].duration_ns).collect();
    assert!(d.windows(2).all(|w| w[0] >= w[1]), "longest first: {d:?}");
    each_size("exemplars_by_duration", &app);
}

#[test]
fn exemplar_breakdown() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::BackTab, Key::BackTab, Key::Down, Key::Down, Key::Enter]);
    assert!(app.ui.exemplar.open);
    let e = app.selected_exemplar().unwrap_or_else(|| panic!("a call is selected"));
    assert!(e.callees_text().starts_with("callees 9"), "{}", e.callees_text());
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
    keys(&mut app, &[Key::BackTab, Key::BackTab, Key::Down, Key::Down]);
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

/// The call tree at three sizes, unfolded: 0 → {2 → 3, 1}, 4 → 3 (function 3 on two paths).
#[test]
fn call_tree_view() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::BackTab]);
    assert_eq!(app.ui.view, View::Tree);
    let tree = &app.derived.tree;
    let rows: Vec<u32> = app.ui.visible_tree.iter().map(|&n| tree.nodes[n].fn_id).collect();
    assert_eq!(rows, vec![0, 2, 3, 1, 4, 3], "depth first, heaviest callee first");
    each_size("call_tree", &app);
}

/// uftrace's moves: `l` goes down the heaviest callees, `u` back up; Enter and ← fold, → unfolds
/// and then steps onto the heaviest callee; the cursor stays on its path as ticks arrive.
#[test]
fn call_tree_keys_fold_and_follow_the_heaviest_path() {
    let mut app = fixtures::app(8, 5);
    keys(&mut app, &[Key::BackTab]);
    let fn_at = |app: &App| app.selected_node().map(|n| app.derived.tree.nodes[n].fn_id);
    assert_eq!(fn_at(&app), Some(0));
    keys(&mut app, &[Key::Char('l'), Key::Char('l')]);
    assert_eq!(fn_at(&app), Some(3), "0 → 2 → 3");
    keys(&mut app, &[Key::Char('l')]);
    assert_eq!(fn_at(&app), Some(3), "a leaf has no callee to go to");
    keys(&mut app, &[Key::Char('u')]);
    assert_eq!(fn_at(&app), Some(2));
    keys(&mut app, &[Key::Enter]);
    assert_eq!(app.ui.visible_tree.len(), 5, "2 folded: its callee 3 hidden");
    keys(&mut app, &[Key::Char(' ')]);
    assert_eq!(app.ui.visible_tree.len(), 6, "space unfolds");
    keys(&mut app, &[Key::Left]);
    assert_eq!((fn_at(&app), app.ui.visible_tree.len()), (Some(2), 5), "← folds an open node");
    keys(&mut app, &[Key::Left]);
    assert_eq!(fn_at(&app), Some(0), "← on a folded node goes to the caller");
    keys(&mut app, &[Key::Right]);
    assert_eq!(fn_at(&app), Some(2), "→ on an open node steps onto its heaviest callee");
    keys(&mut app, &[Key::Right]);
    assert_eq!((fn_at(&app), app.ui.visible_tree.len()), (Some(2), 6), "→ unfolds a folded node");
    keys(&mut app, &[Key::Down, Key::Down]);
    assert_eq!(fn_at(&app), Some(1));
    let path = app.ui.tree.path;
    app.handle(Event::Tick { sample: next_tick(&app, 6), exemplars: Vec::new() });
    assert_eq!((app.ui.tree.path, fn_at(&app)), (path, Some(1)), "the cursor stays on its path");
    // Elsewhere these keys are not the tree's.
    keys(&mut app, &[Key::Tab, Key::Char('l')]);
    assert_eq!(app.ui.view, View::Functions);
}

/// Pausing freezes the tree with the rest: new ticks do not change its numbers.
#[test]
fn call_tree_freezes_while_paused() {
    let mut app = fixtures::app(8, 5);
    keys(&mut app, &[Key::BackTab, Key::Char('p')]);
    let before = app.derived.tree.clone();
    app.handle(Event::Tick { sample: next_tick(&app, 6), exemplars: Vec::new() });
    assert_eq!(app.derived.tree, before);
    keys(&mut app, &[Key::Char('p')]);
    assert_ne!(app.derived.tree, before, "unpaused: the new tick shows");
}

/// The session's latest sample one tick later, with the fixture's call paths grown.
fn next_tick(app: &App, t: u64) -> crate::model::Sample {
    let mut s = app.session.latest().cloned().unwrap_or_default();
    s.at_ns = t * 1_000_000_000;
    s.call_paths = fixtures::call_paths(8, t);
    s
}

/// Regression: the heatmap kept scrolling while paused; it freezes with the rest of the screen.
#[test]
fn heatmap_freezes_while_paused() {
    let mut app = fixtures::app(8, 30);
    keys(&mut app, &[Key::Down, Key::Down, Key::Char('h'), Key::Char('p')]);
    let before = screen(&app, 120, 40);
    for t in 31..34 {
        app.handle(Event::Tick { sample: next_tick(&app, t), exemplars: Vec::new() });
    }
    assert_eq!(screen(&app, 120, 40), before, "paused: nothing moves");
    keys(&mut app, &[Key::Char('p')]);
    assert_ne!(screen(&app, 120, 40), before, "unpaused: the new columns show");
}

/// Regression: at 120 columns the detail pane's "p99 over time … peak" line was cut, losing the
/// peak's number; now the note and spaces go first and the numbers always fit.
#[test]
fn p99_trend_title_never_cuts_its_numbers() {
    let text = |l: ratatui::text::Line| l.spans.iter().map(|s| s.content.to_string()).collect::<String>();
    for width in 30..=80 {
        let t = text(super::widgets::trend_title(1_540_000, 12_300_000, width));
        assert!(t.chars().count() <= width, "{width}: {t:?}");
        assert!(t.contains("now 1.54ms") && t.ends_with("peak 12.3ms"), "{width}: {t:?}");
    }
    assert_eq!(
        text(super::widgets::trend_title(154_000, 154_000, 60)),
        "p99 over time (1 s windows)  now 154µs  peak 154µs"
    );
}

/// The remaining views at the three sizes: the syscalls table, the spans view and the help.
#[test]
fn syscalls_view_at_each_size() {
    let mut app = fixtures::app(8, 20);
    keys(&mut app, &[Key::Tab, Key::Down]);
    assert_eq!(app.ui.view, View::Syscalls);
    each_size("syscalls_view", &app);
    // Regression: at 80 columns the name column's label was cut to "Syscall (while any".
    for (w, h) in SIZES {
        let text = screen(&app, w, h);
        assert!(
            text.contains("Syscall (while any traced code ran)") || !text.contains("Syscall ("),
            "{w}x{h}:\n{text}"
        );
    }
}

#[test]
fn spans_view_at_each_size() {
    let mut app = fixtures::span_app();
    keys(&mut app, &[Key::BackTab, Key::Down]);
    assert_eq!(app.ui.view, View::Spans);
    each_size("spans_view", &app);
}

#[test]
fn help_at_each_size() {
    let mut app = fixtures::app(8, 5);
    keys(&mut app, &[Key::Char('?')]);
    each_size("help", &app);
    // Regression: the box was 82 columns at most, and three descriptions were cut ("(again: d",
    // "sort by time/durat", "u back to the ca") at every size; now they wrap.
    for (w, h) in SIZES {
        let text = screen(&app, w, h);
        for (key, what) in crate::tui::widgets::HELP {
            for word in what.split(' ') {
                assert!(text.contains(word), "{w}x{h}: \"{word}\" of {key}'s help is not on screen:\n{text}");
            }
        }
    }
}
