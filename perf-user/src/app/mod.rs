//! The single owner of a tracing session's state. The main loop turns everything that happens
//! (ticks, keys, signals, the target exiting) into `Event`s; `App::handle` decides, I/O happens outside.

use std::collections::VecDeque;

use crate::{
    model::{self, CalleeUse, Exemplar, Sample, Session, Window, short_symbol},
    output::report::{Report, RunInfo},
    target::syscalls,
};

/// Why a run ended; exported as `end_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Duration,
    Signal,
    Quit,
    TargetExited,
    /// The target replaced its program (`execve`): the probes no longer describe it.
    Exec,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Duration => "duration",
            EndReason::Signal => "signal",
            EndReason::Quit => "quit",
            EndReason::TargetExited => "target-exited",
            EndReason::Exec => "exec",
        }
    }
}

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one Tick an interval, moved once into the session: boxing would only add an allocation"
)]
pub enum Event {
    /// A new cumulative reading of the kernel's maps and the exemplars drained with it.
    Tick {
        sample: Sample,
        exemplars: Vec<Exemplar>,
    },
    Key(Key),
    /// SIGINT or SIGTERM.
    Signal,
    DurationElapsed,
    TargetExited,
    /// The target ran `execve`: the run ends (with a final reading taken before this event).
    TargetExec,
    /// The overhead guard removed a function's probes; `note` says why, for the UI and export.
    ProbesDetached {
        fn_id: u32,
        note: String,
    },
    /// Functions of a library loaded after attach are traced from now on; `note` says which.
    FunctionsAdded {
        functions: Vec<crate::model::FuncInfo>,
        note: String,
    },
}

/// Keys the app understands, decoupled from the terminal library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    BackTab,
    Enter,
    Esc,
    Backspace,
    CtrlC,
    /// The terminal changed size: nothing changes in the state, the UI just redraws.
    Resize,
}

/// What the main loop must do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Write the export now (the run goes on).
    ExportSnapshot,
    /// Stop tracing, write the export, restore the terminal.
    Exit(EndReason),
}

pub struct App {
    pub session: Session,
    pub info: RunInfo,
    /// The UI shows this instead of the live session while paused (collection goes on).
    pub paused: bool,
    pub target_exited: bool,
    /// One-line message shown in the footer (export written, reset done, …); set it with
    /// `set_status`, it goes after a few seconds.
    pub status: String,
    /// Ticks the status has left.
    pub status_ticks: u64,
    /// The main loop's tick (`--interval`), to count the status' seconds in ticks.
    pub tick_ns: u64,
    /// `--max-overhead`: the header's overhead estimate turns red above it.
    pub max_overhead_pct: f64,
    /// What the p99 and p99.9 cells are coloured against.
    pub tails: TailColours,
    /// What the probes and tracepoints cost the target over the last second: worked out once per
    /// reading (and when functions come or go), read by the header, the progress line, the guard
    /// and the tracepoints' warning.
    pub overhead: Overhead,
    /// `tracepoints_over_budget` has said its warning (once a run).
    pub tracepoints_warned: bool,
    /// What the UI looks at: view, sort, filter, selection, window.
    pub ui: ViewState,
    /// What the UI shows, derived from `session` once per tick (not again while paused).
    pub derived: Derived,
}

impl App {
    pub fn new(session: Session, info: RunInfo) -> Self {
        let mut app = App {
            session,
            info,
            paused: false,
            target_exited: false,
            status: String::new(),
            status_ticks: 0,
            tick_ns: 250_000_000,
            max_overhead_pct: 25.0,
            tails: TailColours::default(),
            overhead: Overhead::default(),
            tracepoints_warned: false,
            ui: ViewState::default(),
            derived: Derived::default(),
        };
        app.update_overhead();
        app.rebuild();
        app
    }

    pub fn handle(&mut self, event: Event) -> Action {
        match event {
            Event::Tick { sample, exemplars } => {
                self.age_status();
                if !self.target_exited {
                    self.session.push(sample);
                    self.session.add_exemplars(exemplars);
                    // While paused too: the guard reads it.
                    self.update_overhead();
                    if !self.paused {
                        self.rebuild();
                    }
                }
                Action::Continue
            }
            Event::Signal => Action::Exit(EndReason::Signal),
            Event::DurationElapsed => Action::Exit(EndReason::Duration),
            Event::TargetExec => Action::Exit(EndReason::Exec),
            Event::TargetExited => {
                self.target_exited = true;
                self.set_status("target exited: numbers frozen; q to quit");
                Action::Continue
            }
            Event::ProbesDetached { fn_id, note } => {
                if let Some(f) = self.session.functions.get_mut(fn_id as usize) {
                    f.detached = true;
                }
                self.update_overhead();
                self.set_status(note.clone());
                self.info.warnings.push(note);
                Action::Continue
            }
            Event::FunctionsAdded { functions, note } => {
                self.session.add_functions(functions);
                self.update_overhead();
                self.set_status(note.clone());
                self.info.warnings.push(note);
                self.rebuild();
                Action::Continue
            }
            Event::Key(key) => self.key(key),
        }
    }

    /// Recomputes what the UI shows from the session: the window's sample, the per-function
    /// summaries (percentiles in one walk over each histogram's buckets), syscall rows. Once per tick, on reset and window
    /// change; never on draw.
    fn rebuild(&mut self) {
        let overhead = (self.overhead.total_pct(), self.overhead.per_hit_ns);
        let d = &mut self.derived;
        if d.names.len() != self.session.functions.len() {
            d.names = shown_names(&self.session.functions);
        }
        d.window = self.ui.window;
        d.sample = self.session.window(self.ui.window).unwrap_or_default();
        let exact_totals = self.ui.window == Window::AllTime;
        d.functions.clear();
        for (i, fi) in self.session.functions.iter().enumerate() {
            let index = d
                .sample
                .functions
                .get(i)
                .filter(|f| f.id == fi.id)
                .map(|_| i)
                .or_else(|| d.sample.functions.iter().position(|f| f.id == fi.id));
            let row = match index.map(|j| (j, &d.sample.functions[j])) {
                None => FunctionRow { id: fi.id, floor_ns: fi.floor_ns, ..FunctionRow::default() },
                Some((j, f)) => {
                    let exact = (exact_totals && f.count > 0 && f.max_ns > 0).then(|| f.exact());
                    let mut latency = f.total_hist.summary(exact);
                    latency.count = f.count;
                    latency.mean_ns = f.total_ns.checked_div(f.count).unwrap_or(0);
                    FunctionRow {
                        id: fi.id,
                        sample: Some(j),
                        calls: f.calls(),
                        calls_per_s: crate::model::rate_per_s(f.calls(), d.sample.at_ns),
                        latency,
                        shares: f.attribution.shares(),
                        floor_ns: fi.floor_ns,
                    }
                }
            };
            d.functions.push(row);
        }
        d.syscalls.clear();
        let inside = &d.sample.func_syscalls;
        d.syscalls.extend(d.sample.syscalls.iter().filter(|s| s.count > 0).map(|s| {
            let lat = s.hist.summary(None);
            // The kernel's exact maximum when it has one; bucket midpoints must not exceed it.
            let max_ns = if s.max_ns > 0 { s.max_ns } else { lat.max_ns };
            SyscallRow {
                nr: s.nr,
                name: syscalls::display(s.nr),
                count: s.count,
                errors: s.errors,
                p50_ns: lat.p50_ns.min(max_ns),
                p99_ns: lat.p99_ns.min(max_ns),
                max_ns,
                total_ns: s.total_ns,
                inside_ns: inside.iter().filter(|f| f.nr == s.nr).map(|f| f.total_ns).sum(),
            }
        }));
        // Syscalls made inside traced functions first: the idle waits of untraced threads
        // (futex, recvfrom) can take the most time and explain nothing traced.
        d.syscalls
            .sort_by(|a, b| b.inside_ns.cmp(&a.inside_ns).then(b.total_ns.cmp(&a.total_ns)).then(a.nr.cmp(&b.nr)));
        d.tree = crate::model::CallTree::build(&d.sample.call_paths);
        d.hits_per_s = self.session.hits_per_s();
        (d.overhead_pct, d.overhead_per_hit_ns) = overhead;
        d.elapsed_ns = self.session.elapsed_ns();
        d.lost = self.session.latest().map(|s| s.counters.lost).unwrap_or_default();
        d.lost.exemplars_evicted = self.session.exemplars_evicted;
        d.frozen = self.paused.then(|| Frozen {
            exemplars: self.session.exemplars.clone(),
            p99_history: self.session.p99_history.clone(),
            heat: self.session.heat.clone(),
            heat_at: self.session.heat_at.clone(),
        });
        self.refresh();
    }

    /// Re-applies filter and sort and keeps the selection on the same function. Cheap: no
    /// percentiles, no allocation beyond the index vectors' capacity.
    fn refresh(&mut self) {
        let ui = &mut self.ui;
        let d = &self.derived;
        let names = &self.session.functions;
        let symbol = |id: u32| match d.names.get(id as usize) {
            Some(name) => name.as_str(),
            None => names.get(id as usize).map_or("", |f| f.symbol.as_str()),
        };
        ui.visible.clear();
        // Uncalled functions (a module glob selects many) are hidden unless asked for (`z`).
        let shown = |r: &FunctionRow| ui.show_uncalled || r.calls > 0;
        ui.visible.extend(
            (0..d.functions.len())
                .filter(|&i| shown(&d.functions[i]) && matches_filter(symbol(d.functions[i].id), &ui.filter)),
        );
        let (key, descending) = (ui.sort, ui.descending);
        ui.visible.sort_by(|&a, &b| {
            let (a, b) = (&d.functions[a], &d.functions[b]);
            let ord = key.compare(a, b, symbol(a.id), symbol(b.id));
            let ord = if descending { ord.reverse() } else { ord };
            ord.then(a.id.cmp(&b.id))
        });
        // Once the user picked a function, the selection follows it through re-sorting (if it is
        // filtered out, the cursor keeps its position). Before that the cursor stays on the top row.
        let pos = ui.selected_id.and_then(|id| ui.visible.iter().position(|&i| d.functions[i].id == id));
        ui.selected[0] = pos.unwrap_or(ui.selected[0]).min(ui.visible.len().saturating_sub(1));

        // Syscalls are not filtered: the filter is about functions (their rows and exemplars).
        ui.visible_syscalls.clear();
        ui.visible_syscalls.extend(0..d.syscalls.len());
        ui.selected[1] = ui.selected[1].min(ui.visible_syscalls.len().saturating_sub(1));

        explore::refresh_exemplars(ui, d.frozen.as_ref().map_or(&self.session.exemplars, |f| &f.exemplars));
        tree::refresh_tree(ui, &d.tree);
    }

    /// The function row under the cursor in the functions view.
    pub fn selected_function(&self) -> Option<&FunctionRow> {
        self.ui.visible.get(self.ui.selected[0]).and_then(|&i| self.derived.functions.get(i))
    }

    /// The views Tab reaches from here in the direction `step` takes: the spans view only when
    /// the run has spans (`--span`).
    fn next_view(&self, step: fn(View) -> View) -> View {
        let next = step(self.ui.view);
        if next == View::Spans && self.session.spans.is_empty() { step(next) } else { next }
    }

    /// The views on offer: the spans view only with `--span`.
    pub fn views(&self) -> &'static [View] {
        if self.session.spans.is_empty() { &View::ALL[..4] } else { &View::ALL }
    }

    /// Span `id`'s numbers in the displayed window (`None` before its first reading).
    pub fn span_sample(&self, id: u32) -> Option<&crate::model::SpanSample> {
        self.derived.sample.spans.iter().find(|s| s.row.id == id)
    }

    /// The span under the cursor in the spans view, with its numbers in the window.
    pub fn selected_span(&self) -> Option<(&crate::model::SpanInfo, Option<&crate::model::SpanSample>)> {
        let info = self.session.spans.get(self.ui.selected[View::Spans as usize])?;
        Some((info, self.span_sample(info.id)))
    }

    /// Exemplars as displayed (the frozen copy while paused).
    pub fn exemplars(&self) -> &VecDeque<Exemplar> {
        self.derived.frozen.as_ref().map_or(&self.session.exemplars, |f| &f.exemplars)
    }

    /// p99 over time of function `id` as displayed (the frozen copy while paused).
    pub fn p99_history(&self, id: u32) -> Option<&VecDeque<u64>> {
        self.derived.frozen.as_ref().map_or(&self.session.p99_history, |f| &f.p99_history).get(id as usize)
    }

    /// The latency heatmap's columns of function `id` and when each was read, as displayed (the
    /// frozen copy while paused).
    pub fn heat(&self, id: u32) -> (Option<&VecDeque<crate::model::HeatColumn>>, &VecDeque<u64>) {
        match &self.derived.frozen {
            Some(f) => (f.heat.get(id as usize), &f.heat_at),
            None => (self.session.heat.get(id as usize), &self.session.heat_at),
        }
    }

    /// The name function `id`'s rows show: its demangled symbol, or `object:symbol` when another
    /// traced function has that symbol in another object (as tables, CSV, flame graphs and diffs
    /// name it, `model::shown_name`).
    pub fn symbol(&self, id: u32) -> &str {
        match self.derived.names.get(id as usize) {
            Some(name) => name,
            None => self.session.functions.get(id as usize).map_or("?", |f| f.symbol.as_str()),
        }
    }

    /// A slow call's name as the functions table shows it (object-qualified when two traced
    /// objects have a function of that name); a span's exemplar keeps the span's name.
    pub fn exemplar_name<'a>(&'a self, e: &'a Exemplar) -> &'a str {
        if e.span.is_some() { &e.symbol } else { self.symbol(e.fn_id) }
    }

    /// A traced callee's short name (`Gateway::send`), keeping the object the functions table
    /// names (`libbook.so:Book::apply`) when two traced objects have a function of that name.
    pub fn callee_name(&self, c: &CalleeUse) -> String {
        let full = self.symbol(c.fn_id);
        match full.strip_suffix(c.symbol.as_str()) {
            Some(object) if !c.symbol.is_empty() => format!("{object}{}", short_symbol(&c.symbol)),
            _ => short_symbol(full).to_string(),
        }
    }

    /// What pairs function `id` with a function of a baseline report (`Report::function_key`):
    /// its object's file name (empty for the executable) and its symbol.
    pub fn function_key(&self, id: u32) -> (&str, &str) {
        let Some(f) = self.session.functions.get(id as usize) else { return ("", "?") };
        let object = if f.object == self.info.target.exe { "" } else { f.object.rsplit('/').next().unwrap_or("") };
        (object, f.symbol.as_str())
    }

    /// What is special about a function's probes, for the UI: in a shared library (loaded after
    /// attach, when it was), removed by the overhead guard, or single-stepped by the kernel (about
    /// ten times the cost per hit). `None` when nothing.
    pub fn probe_note(&self, id: u32) -> Option<String> {
        let f = self.session.functions.get(id as usize)?;
        let mut notes = Vec::new();
        if !f.object.is_empty() && f.object != self.info.target.exe {
            notes.push(format!("in {}", f.object.rsplit('/').next().unwrap_or(&f.object)));
        }
        if let Some(ns) = f.added_ns {
            notes.push(format!("loaded after attach, traced from {:.1}s", ns as f64 / 1e9));
        }
        if f.detached {
            notes.push("detached by the overhead guard".into());
        } else if f.single_step {
            let cost = if f.hit_cost_ns > 0 {
                format!("{:.1} µs per hit measured", f.hit_cost_ns as f64 / 1e3)
            } else {
                "several times an emulated hit".to_owned()
            };
            notes.push(format!("probe single-stepped ({}): {cost}", f.entry_insn));
        }
        (!notes.is_empty()).then(|| notes.join(" · "))
    }

    /// Works out `overhead` from the last second's reading: each live function's probe hits
    /// times its site class's measured cost (`model::probe_overhead_pct`), and the tracepoints'
    /// fixed part.
    fn update_overhead(&mut self) {
        self.overhead = self.session.last_second().map_or_else(Overhead::default, |w| {
            Overhead::of(
                w,
                &self.session.functions,
                self.probe_cost_per_hit_ns(),
                self.info.tracepoint_cost_per_syscall_ns,
            )
        });
        if self.overhead.per_hit_ns == 0.0 {
            self.overhead.per_hit_ns = self.probe_cost_per_hit_ns();
        }
    }

    /// The run's measured price of an emulated probe hit (entry or return, ns of CPU), or a rule of
    /// thumb when start-up could not measure it.
    fn probe_cost_per_hit_ns(&self) -> f64 {
        match self.info.probe_cost_per_hit_ns {
            0 => UNMEASURED_HIT_NS,
            ns => ns as f64,
        }
    }

    /// The report of everything so far, as it would be exported now.
    pub fn report(&self, end: Option<EndReason>) -> Report {
        let mut info = self.info.clone();
        info.end_reason = end.map_or("running", EndReason::as_str).to_string();
        Report::build(&self.session, &info)
    }
}

/// The price of a probe hit when start-up could not measure it (an emulated hit here: ~1 µs).
const UNMEASURED_HIT_NS: f64 = 1000.0;

/// What the probes and the tracepoints cost the target over one second of readings, % of one CPU.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overhead {
    /// Each live traced function's probe term (detached functions have none).
    pub by_function: Vec<(u32, f64)>,
    /// Their sum: what detaching could lower.
    pub probes_pct: f64,
    /// The syscall and scheduler tracepoints' part: the target's syscalls and switch-outs (one
    /// tracepoint where a syscall has two, but the off-CPU bookkeeping) times their measured
    /// cost. No detach lowers it.
    pub fixed_pct: f64,
    /// The target's syscalls and switch-outs a second, which `fixed_pct` prices.
    pub tracepoint_events_per_s: f64,
    /// `probes_pct`'s average price of one live probe hit, ns (site classes differ: a
    /// single-stepped hit costs many emulated ones); without hits, an emulated hit's.
    pub per_hit_ns: f64,
}

impl Overhead {
    fn of(w: &model::Sample, functions: &[crate::model::FuncInfo], hit_ns: f64, tracepoint_ns: u64) -> Self {
        let by_function = model::probe_overhead_pct(w, functions, hit_ns);
        // Folded from +0.0: an empty float sum is -0.0, which would print as "-0.0%".
        let probes_pct = by_function.iter().fold(0.0, |sum, c| sum + c.1);
        let live = |id: u32| functions.get(id as usize).is_some_and(|i| !i.detached);
        let hits: u64 = w.functions.iter().filter(|f| live(f.id)).map(|f| f.calls() + f.count).sum();
        let hits_per_s = model::rate_per_s(hits, w.at_ns);
        let c = &w.counters;
        let tracepoint_events_per_s = model::rate_per_s(c.target_syscalls + c.target_switches, w.at_ns);
        Overhead {
            by_function,
            probes_pct,
            fixed_pct: tracepoint_events_per_s * tracepoint_ns as f64 / 1e9 * 100.0,
            tracepoint_events_per_s,
            per_hit_ns: if hits_per_s > 0.0 { probes_pct / 100.0 * 1e9 / hits_per_s } else { 0.0 },
        }
    }

    /// The whole estimate, % of one CPU: what the header shows and the guard holds to its budget.
    pub fn total_pct(&self) -> f64 {
        self.probes_pct + self.fixed_pct
    }
}

/// Each function's shown name (`model::shown_name`), in time linear in their number: only the
/// functions whose symbol occurs more than once are compared with each other (a module glob
/// traces thousands).
fn shown_names(functions: &[crate::model::FuncInfo]) -> Vec<String> {
    let mut by_symbol: std::collections::HashMap<&str, Vec<(&str, &str)>> = std::collections::HashMap::new();
    for f in functions {
        by_symbol.entry(f.symbol.as_str()).or_default().push((f.symbol.as_str(), f.object.as_str()));
    }
    functions
        .iter()
        .map(|f| {
            let same = by_symbol.get(f.symbol.as_str()).map_or(&[][..], Vec::as_slice);
            crate::model::shown_name(&f.symbol, &f.object, same)
        })
        .collect()
}

/// Case-insensitive substring match without allocating (filters run every tick).
fn matches_filter(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if !needle.is_ascii() {
        return hay.to_lowercase().contains(&needle.to_lowercase());
    }
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

mod colour;
mod explore;
mod keys;
mod periodic;
mod sort;
mod status;
mod tree;
mod view;

pub use colour::{Tail, TailColours, Verdict};
pub use explore::{ExemplarSort, ExemplarView, Pane};
pub use sort::SortKey;
pub use tree::TreeView;
pub use view::{Derived, Frozen, FunctionRow, SyscallRow, View, ViewState};

#[cfg(test)]
mod tests;
