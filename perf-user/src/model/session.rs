//! The session: the history of samples and everything derived from it (rates, windows, costs),
//! which the app, the TUI and the report read.

use super::*;
use std::collections::VecDeque;

/// A traced function's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FuncInfo {
    pub id: u32,
    /// Demangled name.
    pub symbol: String,
    pub raw_symbol: String,
    pub address: u64,
    /// First instruction at the probe site, and whether the kernel must single-step it (slow).
    pub entry_insn: String,
    pub single_step: bool,
    /// Its kind of probe site, whose cost was measured at start-up (`probe_costs` in the export).
    pub site_class: SiteClass,
    /// Its probes were removed by the overhead guard; its numbers stop there.
    pub detached: bool,
    /// Probe cost subtracted from each of its calls (depends on the kind of probe site).
    pub calibration_ns: u64,
    /// Corrected latencies below this are not credible: within the calibration's own spread
    /// (`WindowCost::floor_ns`); shown as `<floor`. 0: raw numbers, nothing subtracted.
    pub floor_ns: u64,
    /// What one probe hit costs the target, measured at start-up for its kind of probe site
    /// (emulated, 5-byte nop, single-stepped); 0 when not measured.
    pub hit_cost_ns: u64,
    /// The ELF object it is in, as the target names it: its executable or a shared library.
    pub object: String,
    /// For a function of a library the target loaded after attach (`dlopen`): when its probes
    /// went in, ns after attach. Its numbers start there.
    pub added_ns: Option<u64>,
}

/// The kinds of probe site whose cost differs: an entry the kernel emulates (`push rbp`, a
/// relative jump), a 5-byte nop (recent kernels turn the trap into a call) and an instruction it
/// single-steps out of line on every hit (the expensive one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SiteClass {
    #[default]
    Emulated,
    Nop5,
    SingleStep,
}

/// The first bytes of a function whose probe site is a 5-byte nop (`nopl 0x0(%rax,%rax,1)`).
pub const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

impl SiteClass {
    pub const ALL: [SiteClass; 3] = [SiteClass::Emulated, SiteClass::Nop5, SiteClass::SingleStep];

    /// The class of a function starting with `entry` bytes, whose first instruction the kernel
    /// single-steps when `single_step` (as `bpf::probe_site` judged it).
    pub fn of(entry: &[u8], single_step: bool) -> SiteClass {
        if single_step {
            SiteClass::SingleStep
        } else if entry.starts_with(&NOP5) {
            SiteClass::Nop5
        } else {
            SiteClass::Emulated
        }
    }

    /// Its name in the export (`probe.site_class`, `probe_costs[].class`).
    pub fn label(self) -> &'static str {
        match self {
            SiteClass::Emulated => "emulated",
            SiteClass::Nop5 => "nop5",
            SiteClass::SingleStep => "single_step",
        }
    }
}

/// What a probe pair adds inside a measured call, from timing an empty function at start-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowCost {
    /// The median: subtracted from every call.
    pub median_ns: u64,
    /// The fastest: how low a call's probe cost can be (bounds the subtraction, see
    /// `FuncSample::probe_cost`).
    pub min_ns: u64,
}

impl WindowCost {
    /// How far the probe cost itself varies below its median: a corrected call shorter than this
    /// may be nothing but probe cost, so no smaller value is credible (at least 1 ns once
    /// anything is subtracted; 0 when nothing is).
    pub fn floor_ns(&self) -> u64 {
        if self.median_ns == 0 { 0 } else { self.median_ns.saturating_sub(self.min_ns).max(1) }
    }
}

/// A single-stepped probe hit costs about this many times an emulated one (measured here: ~10 µs
/// against ~1 µs).
pub const SINGLE_STEP_FACTOR: f64 = 10.0;

/// Estimated share of one CPU (in %) each attached function's probes cost the target, from a
/// window: calls/s × probe hits per call × cost per hit (× `SINGLE_STEP_FACTOR` when stepped).
pub fn probe_overhead_pct(window: &Sample, functions: &[FuncInfo], cost_per_hit_ns: f64) -> Vec<(u32, f64)> {
    if window.at_ns == 0 {
        return Vec::new();
    }
    window
        .functions
        .iter()
        .filter_map(|f| {
            let info = functions.get(f.id as usize).filter(|i| !i.detached)?;
            // Its class's measured cost; without a measurement, the run's with a rule of thumb.
            let hit_ns = if info.hit_cost_ns > 0 {
                info.hit_cost_ns as f64
            } else if info.single_step {
                cost_per_hit_ns * SINGLE_STEP_FACTOR
            } else {
                cost_per_hit_ns
            };
            // An entry hit for every call, a return hit for every timed one (none in entry-only
            // mode, one in N with --sample N).
            let hits_per_s = rate_per_s(f.calls() + f.count, window.at_ns);
            Some((f.id, hits_per_s * hit_ns / 1e9 * 100.0))
        })
        .collect()
}

/// Time windows the UI and export can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Window {
    #[default]
    AllTime,
    Last1s,
    Last10s,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::AllTime, Window::Last1s, Window::Last10s];

    pub fn span_ns(self) -> Option<u64> {
        match self {
            Window::AllTime => None,
            Window::Last1s => Some(1_000_000_000),
            Window::Last10s => Some(10_000_000_000),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::AllTime => "all",
            Window::Last1s => "1s",
            Window::Last10s => "10s",
        }
    }

    pub fn next(self) -> Window {
        match self {
            Window::AllTime => Window::Last1s,
            Window::Last1s => Window::Last10s,
            Window::Last10s => Window::AllTime,
        }
    }
}

/// Everything a session accumulates: owned by the app, fed one `Sample` per tick.
#[derive(Debug, Default)]
pub struct Session {
    pub functions: Vec<FuncInfo>,
    /// `--span`s, by id (their numbers are `Sample::spans`).
    pub spans: Vec<SpanInfo>,
    /// Cumulative samples (oldest first) for windows and rates: every one of the last
    /// `DENSE_SPAN_NS`, then one a second back to `HISTORY_SPAN_NS`. Each holds every function's
    /// cumulative histograms, which only gain buckets: keeping a minute of them at 4 a second grew
    /// perf-user by 18 MiB in a 10-minute soak.
    pub(super) history: VecDeque<Sample>,
    /// Subtracted from everything after a reset.
    baseline: Option<Sample>,
    /// p99 (ns) per function over time, one point per tick, for sparklines.
    pub p99_history: Vec<VecDeque<u64>>,
    /// Calls per tick by power-of-two latency, per function, for the heatmap.
    pub heat: Vec<VecDeque<HeatColumn>>,
    /// When each heat column was read (time since attach), oldest first.
    pub heat_at: VecDeque<u64>,
    pub exemplars: VecDeque<Exemplar>,
    pub exemplar_capacity: usize,
    pub exemplars_evicted: u64,
    /// The last exemplar's `seq`.
    exemplar_seq: u64,
    /// The last-second window, computed once per sample: the sparkline, the rates, the UI and the
    /// overhead guard all read it every tick.
    last_second: Option<Sample>,
}

/// The longest window (10 s) and a second to find its start in.
const HISTORY_SPAN_NS: u64 = 11_000_000_000;
const DENSE_SPAN_NS: u64 = 2_000_000_000;
const SPARSE_STEP_NS: u64 = 1_000_000_000;
const SPARK_POINTS: usize = 120;

impl Session {
    pub fn new(functions: Vec<FuncInfo>, exemplar_capacity: usize) -> Self {
        let n = functions.len();
        Session {
            functions,
            p99_history: vec![VecDeque::new(); n],
            heat: vec![VecDeque::new(); n],
            exemplar_capacity,
            ..Session::default()
        }
    }

    /// Functions traced from now on (a library loaded after attach); their ids continue the list.
    pub fn add_functions(&mut self, functions: Vec<FuncInfo>) {
        self.p99_history.extend(functions.iter().map(|_| VecDeque::new()));
        self.functions.extend(functions);
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.history.back()
    }

    pub fn push(&mut self, sample: Sample) {
        // The export and `--slow auto` say what is subtracted now (it can drop as calls arrive).
        for f in &sample.functions {
            if let Some(info) = self.functions.get_mut(f.id as usize) {
                info.calibration_ns = f.probe_cost_ns;
            }
        }
        let now = sample.at_ns;
        super::heat::push_columns(
            &mut self.heat,
            &sample.functions,
            self.history.back().map(|p| p.functions.as_slice()),
        );
        self.heat_at.push_back(now);
        if self.heat_at.len() > HEAT_COLUMNS {
            self.heat_at.pop_front();
        }
        self.history.push_back(sample);
        while self.history.len() > 2
            && self.history.front().is_some_and(|s| now.saturating_sub(s.at_ns) > HISTORY_SPAN_NS)
        {
            self.history.pop_front();
        }
        // Older than the dense span: keep one sample a second.
        let mut last_kept: Option<u64> = None;
        self.history.retain(|s| {
            if now.saturating_sub(s.at_ns) <= DENSE_SPAN_NS {
                return true;
            }
            match last_kept {
                Some(t) if s.at_ns.saturating_sub(t) < SPARSE_STEP_NS => false,
                _ => {
                    last_kept = Some(s.at_ns);
                    true
                }
            }
        });
        self.last_second = self.compute_window(Window::Last1s);
        // Sparkline: p99 of the last second, per function.
        for (i, hist) in self.p99_history.iter_mut().enumerate() {
            let p99 = self
                .last_second
                .as_ref()
                .and_then(|w| w.functions.iter().find(|f| f.id as usize == i))
                .map_or(0, |f| f.total_hist.summary(None).p99_ns);
            hist.push_back(p99);
            if hist.len() > SPARK_POINTS {
                hist.pop_front();
            }
        }
    }

    pub fn add_exemplars(&mut self, new: impl IntoIterator<Item = Exemplar>) {
        for mut e in new {
            self.exemplar_seq += 1;
            e.seq = self.exemplar_seq;
            self.exemplars.push_back(e);
        }
        self.exemplars_evicted += evict_fairly(&mut self.exemplars, self.exemplar_capacity);
    }

    /// Forget everything so far: numbers restart from the latest sample.
    pub fn reset(&mut self) {
        self.baseline = self.history.back().cloned();
        self.last_second = self.compute_window(Window::Last1s);
        self.exemplars.clear();
        for h in &mut self.p99_history {
            h.clear();
        }
        for h in &mut self.heat {
            h.clear();
        }
        self.heat_at.clear();
    }

    /// The sample for a window: everything since attach (or reset), or the difference between the
    /// latest sample and the newest one at least `span` older.
    pub fn window(&self, w: Window) -> Option<Sample> {
        match w {
            Window::Last1s => self.last_second.clone(),
            _ => self.compute_window(w),
        }
    }

    /// The last second, borrowed (see `last_second`).
    pub fn last_second(&self) -> Option<&Sample> {
        self.last_second.as_ref()
    }

    fn compute_window(&self, w: Window) -> Option<Sample> {
        let latest = self.history.back()?;
        let base = match w.span_ns() {
            None => self.baseline.as_ref(),
            Some(span) => {
                // The sample nearest to `span` before the latest, not the newest one at least that
                // old: ticks arrive a little late, and "at least" then turns a 1 s window at 250 ms
                // ticks into 1.25 s. Nearest keeps it within half a tick of its name.
                let cutoff = latest.at_ns.saturating_sub(span);
                let older = self
                    .history
                    .iter()
                    .rev()
                    .filter(|s| !std::ptr::eq(*s, latest))
                    .min_by_key(|s| s.at_ns.abs_diff(cutoff))
                    .or(self.history.front());
                match (older, &self.baseline) {
                    (Some(o), Some(b)) if b.at_ns > o.at_ns => Some(b),
                    (o, _) => o,
                }
            }
        };
        Some(match base {
            Some(b) if !std::ptr::eq(b, latest) => {
                let mut s = latest.since(b);
                s.counters.lost = latest.counters.lost;
                s
            }
            Some(_) => latest.since(latest),
            None => {
                let mut s = latest.clone();
                s.at_ns = latest.at_ns;
                s
            }
        })
    }

    /// Probe hits per second over the last second.
    pub fn hits_per_s(&self) -> f64 {
        self.last_second().filter(|w| w.at_ns > 0).map_or(0.0, |w| w.counters.probe_hits as f64 * 1e9 / w.at_ns as f64)
    }

    pub fn elapsed_ns(&self) -> u64 {
        self.history.back().map_or(0, |s| s.at_ns)
    }
}

/// Calls per second of a window sample.
pub fn rate_per_s(count: u64, span_ns: u64) -> f64 {
    if span_ns == 0 { 0.0 } else { count as f64 * 1e9 / span_ns as f64 }
}
