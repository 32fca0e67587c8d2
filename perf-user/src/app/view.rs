//! What the UI shows, as data: the tabs, the view state keys change, and the rows, copies and
//! derived numbers `App::rebuild` computes for drawing.

use std::collections::VecDeque;

use super::{ExemplarView, Pane, SortKey, TreeView};
use crate::model::{Exemplar, LatencySummary, Lost, Sample, Shares, Window};

/// The tables, switched with Tab / BackTab (the spans view only with `--span`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Functions = 0,
    Syscalls = 1,
    Exemplars = 2,
    /// The call tree: traced calls by call path.
    Tree = 3,
    /// The spans (`--span`): each one's latency, matching and slowest spans.
    Spans = 4,
}

impl View {
    pub const ALL: [View; 5] = [View::Functions, View::Syscalls, View::Exemplars, View::Tree, View::Spans];

    pub fn next(self) -> View {
        Self::ALL[(self as usize + 1) % Self::ALL.len()]
    }

    pub fn prev(self) -> View {
        Self::ALL[(self as usize + Self::ALL.len() - 1) % Self::ALL.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            View::Functions => "Functions",
            View::Syscalls => "Syscalls",
            View::Exemplars => "Exemplars",
            View::Tree => "Tree",
            View::Spans => "Spans",
        }
    }
}

/// What the user is looking at; changed only by keys.
#[derive(Clone, Debug)]
pub struct ViewState {
    pub view: View,
    pub window: Window,
    pub sort: SortKey,
    pub descending: bool,
    pub filter: String,
    /// Typing goes into `filter` (entered with `/`, left with Enter or Esc).
    pub filter_editing: bool,
    pub help: bool,
    /// Functions without calls in the window are listed too (`z`).
    pub show_uncalled: bool,
    /// Cursor position per view, an index into that view's visible rows.
    pub selected: [usize; 5],
    /// The function the user moved the cursor to, so that it stays selected when rows re-sort.
    pub selected_id: Option<u32>,
    /// Functions shown, filtered and sorted: indices into `Derived::functions`.
    pub visible: Vec<usize>,
    /// Syscalls shown: indices into `Derived::syscalls` (sorted by total time).
    pub visible_syscalls: Vec<usize>,
    /// Exemplars shown, filtered and sorted (`exemplar.sort`): indices into `App::exemplars()`.
    pub visible_exemplars: Vec<usize>,
    /// Call-tree rows shown: indices into `Derived::tree.nodes`, depth first, folded ones' callees left out.
    pub visible_tree: Vec<usize>,
    /// The call tree's folds and cursor.
    pub tree: TreeView,
    /// The exemplars' sort, followed call and breakdown.
    pub exemplar: ExemplarView,
    /// What the functions view shows under its table.
    pub pane: Pane,
}

impl Default for ViewState {
    fn default() -> Self {
        ViewState {
            view: View::default(),
            window: Window::default(),
            sort: SortKey::default(),
            descending: true,
            filter: String::new(),
            filter_editing: false,
            help: false,
            show_uncalled: false,
            selected: [0; 5],
            selected_id: None,
            visible: Vec::new(),
            visible_syscalls: Vec::new(),
            visible_exemplars: Vec::new(),
            visible_tree: Vec::new(),
            tree: TreeView::default(),
            exemplar: ExemplarView::default(),
            pane: Pane::default(),
        }
    }
}

/// One function's numbers in the active window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionRow {
    pub id: u32,
    /// Index of its `FuncSample` in `Derived::sample.functions` (histograms for the detail pane).
    pub sample: Option<usize>,
    pub calls: u64,
    pub calls_per_s: f64,
    pub latency: LatencySummary,
    pub shares: Shares,
    /// Latencies below this read `<floor` (`FuncInfo::floor_ns`).
    pub floor_ns: u64,
}

/// One syscall's numbers in the active window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyscallRow {
    pub nr: u32,
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    pub total_ns: u64,
    /// Wall time of these syscalls made while a traced function was innermost.
    pub inside_ns: u64,
}

/// Copies of what the session keeps changing in place, taken when the UI is paused.
#[derive(Clone, Debug, Default)]
pub struct Frozen {
    pub exemplars: VecDeque<Exemplar>,
    pub p99_history: Vec<VecDeque<u64>>,
    /// The heatmap's columns and their times.
    pub heat: Vec<VecDeque<crate::model::HeatColumn>>,
    pub heat_at: VecDeque<u64>,
}

/// Everything the UI renders that costs something to compute, computed in `App::rebuild`.
#[derive(Clone, Debug, Default)]
pub struct Derived {
    /// The window these numbers cover.
    pub window: Window,
    /// The window's sample; `sample.at_ns` is its span.
    pub sample: Sample,
    /// One row per traced function, in session order.
    pub functions: Vec<FunctionRow>,
    /// Syscalls by time inside traced functions, then by total time, biggest first.
    pub syscalls: Vec<SyscallRow>,
    /// The window's call tree.
    pub tree: crate::model::CallTree,
    pub hits_per_s: f64,
    /// `App::overhead`'s whole estimate and price per hit as of this rebuild (frozen while paused).
    pub overhead_pct: f64,
    pub overhead_per_hit_ns: f64,
    /// Since attach.
    pub elapsed_ns: u64,
    /// Cumulative, from the latest sample (plus exemplars evicted from memory).
    pub lost: Lost,
    /// Set while paused.
    pub frozen: Option<Frozen>,
    /// Each traced function's shown name (`App::symbol`), by id; recomputed when functions come.
    pub names: Vec<String>,
}
