//! The spans view (`--span`): its screens at two sizes, the cursor's numbers, a slow span's
//! breakdown, and hostile thread names kept off the terminal.

use super::{
    fixtures,
    tests::{keys, screen},
};
use crate::app::{Key, View};

#[test]
fn screen_spans_view() {
    let mut app = fixtures::span_app();
    keys(&mut app, &[Key::BackTab]);
    assert_eq!(app.ui.view, View::Spans, "with --span, BackTab from functions reaches the spans");
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn screen_spans_view_narrow_80x24() {
    let mut app = fixtures::span_app();
    keys(&mut app, &[Key::BackTab, Key::Down]);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

/// The spans view draws the selected span: its histogram's percentiles, what matching lost, and
/// its slowest spans with their keys and both threads; moving the cursor changes the span.
#[test]
fn the_spans_view_follows_the_cursor_to_each_spans_numbers() {
    let mut app = fixtures::span_app();
    keys(&mut app, &[Key::BackTab]);
    let first = screen(&app, 140, 40);
    assert!(first.contains("tick_to_trade · window"), "the detail names the selected span:\n{first}");
    assert!(first.contains("Slowest spans (3 kept)"), "{first}");
    assert!(first.contains("key 7093") && first.contains("4243 engine → 4244 gateway"), "{first}");
    assert!(first.contains("p99.9"), "the histogram marks its percentiles:\n{first}");
    keys(&mut app, &[Key::Down]);
    let second = screen(&app, 140, 40);
    assert!(second.contains("lonely · window"), "{second}");
    // 500 starts: 100 matched, 400 lost (150 replaced, 250 evicted), 30 ends without a start.
    assert!(second.contains("lost starts 400 (replaced 150, evicted 250)"), "{second}");
    assert!(second.contains("ends without start 30"), "{second}");
    assert!(second.contains("none yet"), "lonely keeps no slow span:\n{second}");
    keys(&mut app, &[Key::Down, Key::Down]);
    assert_eq!(app.selected_span().map(|(s, _)| s.name.as_str()), Some("lonely"), "the cursor stops at the last");
}

/// Thread names come from the target (`comm`): a hostile one never puts a control character on
/// the spans view's screen.
#[test]
fn hostile_thread_names_in_slow_spans_never_reach_the_terminal() {
    let mut app = fixtures::span_app();
    let hostile = "\x1b]0;pwned\x07\x1b[2J\u{9b}31m";
    for e in &mut app.session.exemplars {
        e.thread = hostile.into();
        if let Some(sp) = &mut e.span {
            sp.start_thread = hostile.into();
        }
    }
    keys(&mut app, &[Key::BackTab]);
    let shown = screen(&app, 160, 40);
    assert!(shown.contains("pwned"), "the names are shown:\n{shown}");
    assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "a control character on screen:\n{shown:?}");
}

/// Enter on a slow span opens a span's breakdown (key, both threads, its ends), not a call's
/// parts, which a span has none of.
#[test]
fn a_slow_spans_breakdown_names_its_key_threads_and_ends() {
    let mut app = fixtures::span_app();
    keys(&mut app, &[Key::Tab, Key::Tab, Key::Char('s')]);
    assert_eq!(app.ui.view, View::Exemplars);
    // Sorted by duration, longest first: the 900 µs slow span.
    assert!(app.selected_exemplar().is_some_and(|e| e.span.is_some()), "{:?}", app.selected_exemplar());
    keys(&mut app, &[Key::Enter]);
    let shown = screen(&app, 120, 30);
    assert!(shown.contains("Slow span: tick_to_trade"), "{shown}");
    assert!(shown.contains("Key      7093"), "{shown}");
    assert!(shown.contains("Started  on 4243 engine") && shown.contains("Ended    on 4244 gateway"), "{shown}");
    assert!(shown.contains("From target_app::feed::decode(arg1+8)"), "{shown}");
    assert!(!shown.contains("running its own code"), "no call parts for a span:\n{shown}");
}

/// In the slow-calls table a slow span has no parts (dashes, "span" for its split) and says its
/// key and the thread it started on where a call lists its syscalls.
#[test]
fn slow_span_rows_show_their_key_and_start_thread_not_empty_parts() {
    let mut app = fixtures::span_app();
    keys(&mut app, &[Key::Tab, Key::Tab]);
    let shown = screen(&app, 140, 14);
    let row = shown.lines().find(|l| l.contains("+8.5s")).unwrap_or_default();
    assert!(row.contains("tick_to_trade") && row.contains(" span "), "{shown}");
    assert!(row.contains("key 7093 from 4243 engine"), "{shown}");
    assert!(!row.contains("0%") && row.matches('—').count() == 5, "no parts for a span: {row}");
    let call = shown.lines().find(|l| l.contains("feed::decode")).unwrap_or_default();
    assert!(call.contains("10%") && call.contains("90%"), "a call keeps its parts: {call}");
}
