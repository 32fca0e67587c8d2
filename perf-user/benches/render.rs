//! What one frame of the terminal UI costs: a 100-function table with the detail pane drawn into a
//! 200×50 `TestBackend`, against a 100 ms frame budget. Also the per-tick rebuild (percentiles of
//! every function), which is where the real work is. The synthetic session comes from the UI's
//! fixtures (`--features fixtures`, which `cargo xtask bench` passes).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark panics with context")]

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use perf_user::{app, model, tui::fixtures};
use ratatui::{Terminal, backend::TestBackend};

const FRAME_BUDGET: Duration = Duration::from_millis(100);

fn render(c: &mut Criterion) {
    let mut app = fixtures::app(100, 30);
    // A selection in the middle: the table scrolls and the detail pane has a full histogram.
    for _ in 0..5 {
        app.handle(app::Event::Key(app::Key::PageDown));
    }
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();

    c.bench_function("draw 100 functions, 200x50", |b| {
        b.iter(|| {
            terminal.draw(|f| f.render_widget(black_box(&app), f.area())).unwrap();
        });
    });

    // The same frame twice in a row is what the diffing saves; this one forces a full repaint.
    c.bench_function("draw 100 functions, 200x50, from blank", |b| {
        b.iter(|| {
            terminal.clear().unwrap();
            terminal.draw(|f| f.render_widget(black_box(&app), f.area())).unwrap();
        });
    });

    // Once per tick (and per window change), not per frame: the window's sample plus the
    // hdrhistogram percentiles of 100 functions. Each `w` is one rebuild.
    c.bench_function("rebuild rows of 100 functions", |b| {
        b.iter(|| app.handle(app::Event::Key(app::Key::Char('w'))));
    });
    while app.ui.window != model::Window::AllTime {
        app.handle(app::Event::Key(app::Key::Char('w')));
    }

    // A plain timing against the budget, printed with the criterion numbers.
    let n = 200u32;
    let start = std::time::Instant::now();
    for _ in 0..n {
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
    }
    let per_frame = start.elapsed() / n;
    println!(
        "one frame: {per_frame:?} = {:.2} % of the {FRAME_BUDGET:?} frame budget",
        per_frame.as_secs_f64() * 100.0 / FRAME_BUDGET.as_secs_f64()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = render
}
criterion_main!(benches);
