//! Investigating slow calls: the exemplars' sort and a selection that follows one call as new ones
//! arrive, the breakdown of one call (Enter), and the functions view's lower pane (detail,
//! latency heatmap, per-thread rows).

use super::{App, Key, View, ViewState, matches_filter};
use crate::model::Exemplar;

/// How the exemplars table is ordered (`s` in that view; `S` reverses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExemplarSort {
    /// By start time.
    #[default]
    Time,
    Duration,
}

impl ExemplarSort {
    pub fn label(self) -> &'static str {
        match self {
            ExemplarSort::Time => "time",
            ExemplarSort::Duration => "dur",
        }
    }
}

/// What the functions view shows under its table for the selected function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pane {
    /// Histogram, split, p99 trend, syscalls, slowest calls.
    #[default]
    Detail,
    /// Latency over time: one column per tick, log-latency rows, counts as shades (`h`).
    Heatmap,
    /// One row per thread that ran it, off-CPU split into blocked and run queue (`t`).
    Threads,
}

/// The exemplar state `ViewState` carries.
#[derive(Clone, Copy, Debug)]
pub struct ExemplarView {
    pub sort: ExemplarSort,
    /// Biggest (longest, newest) first.
    pub descending: bool,
    /// The call the user moved to (`Exemplar::seq`): the cursor follows it while rows arrive.
    pub seq: Option<u64>,
    /// The breakdown of the selected call is open (Enter; any key closes it).
    pub open: bool,
}

impl Default for ExemplarView {
    fn default() -> Self {
        ExemplarView { sort: ExemplarSort::default(), descending: true, seq: None, open: false }
    }
}

impl App {
    /// Keys of the slow-call views and the lower pane; `None` for keys they leave to the rest.
    pub(super) fn explore_key(&mut self, key: Key) -> Option<()> {
        let ui = &mut self.ui;
        if ui.exemplar.open {
            ui.exemplar.open = false;
            return Some(());
        }
        match (ui.view, key) {
            (View::Exemplars, Key::Char('s')) => {
                ui.exemplar.sort = match ui.exemplar.sort {
                    ExemplarSort::Time => ExemplarSort::Duration,
                    ExemplarSort::Duration => ExemplarSort::Time,
                };
                ui.exemplar.descending = true;
            }
            (View::Exemplars, Key::Char('S')) => ui.exemplar.descending = !ui.exemplar.descending,
            (View::Exemplars, Key::Enter) => {
                let open = self.selected_exemplar().is_some();
                self.ui.exemplar.open = open;
                return Some(());
            }
            (View::Functions, Key::Char('h')) => ui.pane = toggle(ui.pane, Pane::Heatmap),
            (View::Functions, Key::Char('t')) => ui.pane = toggle(ui.pane, Pane::Threads),
            _ => return None,
        }
        self.refresh();
        Some(())
    }

    /// The exemplar under the cursor in the exemplars view.
    pub fn selected_exemplar(&self) -> Option<&Exemplar> {
        self.ui.visible_exemplars.get(self.ui.selected[2]).and_then(|&i| self.exemplars().get(i))
    }

    /// After the cursor moved in the exemplars view: remember which call it is on.
    pub(super) fn follow_exemplar(&mut self) {
        self.ui.exemplar.seq = self.selected_exemplar().map(|e| e.seq);
    }
}

fn toggle(now: Pane, to: Pane) -> Pane {
    if now == to { Pane::Detail } else { to }
}

/// Filters and sorts the exemplars into `ui.visible_exemplars` and puts the cursor back on the
/// call it was on (if that call is still kept and shown; else it keeps its row).
pub(super) fn refresh_exemplars(ui: &mut ViewState, exemplars: &std::collections::VecDeque<Exemplar>) {
    let v = &mut ui.visible_exemplars;
    v.clear();
    v.extend((0..exemplars.len()).filter(|&i| matches_filter(&exemplars[i].symbol, &ui.filter)));
    let ex = ui.exemplar;
    v.sort_by(|&a, &b| {
        let (a, b) = (&exemplars[a], &exemplars[b]);
        let ord = match ex.sort {
            ExemplarSort::Time => a.at_ns.cmp(&b.at_ns),
            ExemplarSort::Duration => a.duration_ns.cmp(&b.duration_ns),
        }
        .then(a.seq.cmp(&b.seq));
        if ex.descending { ord.reverse() } else { ord }
    });
    let pos = ex.seq.and_then(|seq| v.iter().position(|&i| exemplars[i].seq == seq));
    ui.selected[2] = pos.unwrap_or(ui.selected[2]).min(v.len().saturating_sub(1));
}
