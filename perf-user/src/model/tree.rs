//! The call tree: per call path totals as the kernel keeps them (`CallPath`, cumulative like every
//! sample), and the tree rebuilt from them (`CallTree`): a node per path, children by wall time.

use serde::{Deserialize, Serialize};

/// What the calls through one call path added up to: how many returned and where their wall time
/// went (the parts of docs/ATTRIBUTION.md; interference stays in the function's totals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathTotals {
    pub calls: u64,
    pub total_ns: u64,
    pub self_oncpu_ns: u64,
    pub callees_ns: u64,
    pub syscalls_ns: u64,
    pub offcpu_blocked_ns: u64,
    pub offcpu_runqueue_ns: u64,
}

impl PathTotals {
    /// What was added after `base`.
    pub fn since(&self, base: &PathTotals) -> PathTotals {
        PathTotals {
            calls: self.calls.saturating_sub(base.calls),
            total_ns: self.total_ns.saturating_sub(base.total_ns),
            self_oncpu_ns: self.self_oncpu_ns.saturating_sub(base.self_oncpu_ns),
            callees_ns: self.callees_ns.saturating_sub(base.callees_ns),
            syscalls_ns: self.syscalls_ns.saturating_sub(base.syscalls_ns),
            offcpu_blocked_ns: self.offcpu_blocked_ns.saturating_sub(base.offcpu_blocked_ns),
            offcpu_runqueue_ns: self.offcpu_runqueue_ns.saturating_sub(base.offcpu_runqueue_ns),
        }
    }

    /// Takes the probes' own cost (`ns` per call) out of the wall time and own CPU time, as
    /// `FuncSample::without_probe_cost` does for the function's totals.
    pub fn without_probe_cost(mut self, ns: u64) -> PathTotals {
        let cost = ns.saturating_mul(self.calls).min(self.self_oncpu_ns);
        self.self_oncpu_ns -= cost;
        self.total_ns = self.total_ns.saturating_sub(cost);
        self
    }
}

/// The calls that returned through one call path (a traced function reached through one chain of
/// traced callers), cumulative since attach. See docs/ATTRIBUTION.md, "Call paths".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallPath {
    pub id: u64,
    /// The caller's path id; 0 for an outermost traced call.
    pub parent: u64,
    pub fn_id: u32,
    /// The caller's function (meaningful when `depth > 0`).
    pub parent_fn_id: u32,
    /// Traced frames above it (0: outermost).
    pub depth: u32,
    pub totals: PathTotals,
}

impl CallPath {
    /// The calls made after `base` was read.
    pub fn since(&self, base: &CallPath) -> CallPath {
        CallPath { totals: self.totals.since(&base.totals), ..*self }
    }

    /// Without the probes' own cost (`PathTotals::without_probe_cost`).
    pub fn without_probe_cost(self, ns: u64) -> CallPath {
        CallPath { totals: self.totals.without_probe_cost(ns), ..self }
    }
}

/// One node of the call tree: a call path and its totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallNode {
    pub path: u64,
    pub fn_id: u32,
    pub depth: u32,
    /// Index of the caller's node; `None` for a root.
    pub parent: Option<usize>,
    /// Indexes of the callees' nodes, heaviest (wall time) first.
    pub children: Vec<usize>,
    pub totals: PathTotals,
    /// No call through this path has returned yet (an event loop that runs to the end): a stand-in
    /// that holds its callees, with their totals summed and no own numbers.
    pub open: bool,
}

/// The call tree of a sample: nodes in depth-first order (heaviest child first), roots by wall time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallTree {
    pub nodes: Vec<CallNode>,
    pub roots: Vec<usize>,
}

impl CallTree {
    /// The tree of `paths`. Paths without calls in the window are left out, unless a kept path
    /// is reached through them: such a caller (still running, like an event loop, or with no
    /// call returned in the window) is kept as an `open` node under its own caller. A path whose
    /// caller has no entry at all (its path did not fit the kernel's map) hangs under a stand-in
    /// for that caller, also `open`, known only by its function.
    pub fn build(paths: &[CallPath]) -> CallTree {
        let by_id: std::collections::HashMap<u64, &CallPath> = paths.iter().map(|p| (p.id, p)).collect();
        let mut all: Vec<CallPath> = paths.iter().filter(|p| p.totals.calls > 0).copied().collect();
        let mut known: std::collections::HashSet<u64> = all.iter().map(|p| p.id).collect();
        let mut open: std::collections::HashSet<u64> = std::collections::HashSet::new();
        // Walks up from every kept path (the list grows as callers are added).
        let mut i = 0;
        while i < all.len() {
            let p = all[i];
            if let Some(c) = by_id.get(&p.parent).filter(|_| p.depth > 0 && !known.contains(&p.parent)) {
                known.insert(c.id);
                open.insert(c.id);
                all.push(CallPath {
                    id: c.id,
                    parent: c.parent,
                    fn_id: c.fn_id,
                    parent_fn_id: c.parent_fn_id,
                    depth: c.depth,
                    ..CallPath::default()
                });
            }
            i += 1;
        }
        let mut stand_ins: Vec<CallPath> = Vec::new();
        for p in &all {
            if p.depth > 0 && !known.contains(&p.parent) && !stand_ins.iter().any(|s| s.id == p.parent) {
                stand_ins.push(CallPath {
                    id: p.parent,
                    fn_id: p.parent_fn_id,
                    depth: p.depth - 1,
                    ..CallPath::default()
                });
            }
        }
        open.extend(stand_ins.iter().map(|s| s.id));
        all.extend(stand_ins);
        let index: std::collections::HashMap<u64, usize> = all.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let mut kids: Vec<Vec<usize>> = vec![Vec::new(); all.len()];
        let mut roots = Vec::new();
        for (i, p) in all.iter().enumerate() {
            match index.get(&p.parent).filter(|_| p.depth > 0 && p.parent != p.id) {
                Some(&parent) => kids[parent].push(i),
                None => roots.push(i),
            }
        }
        // Open nodes weigh what their callees do, open callees included: their totals are set
        // before any ordering reads them.
        for &r in &roots {
            weigh_open(r, &mut all, &open, &kids, 0);
        }
        let mut tree = CallTree::default();
        roots.sort_by_key(|&i| (std::cmp::Reverse(all[i].totals.total_ns), all[i].fn_id));
        let mut order = Vec::new();
        for &r in &roots {
            tree.roots.push(tree.nodes.len());
            place(r, None, &all, &open, &mut kids, &mut tree, &mut order, 0);
        }
        tree
    }

    /// The node's heaviest callee (uftrace's `l`).
    pub fn heaviest_child(&self, node: usize) -> Option<usize> {
        self.nodes.get(node)?.children.first().copied()
    }

    /// Wall time of the roots: all traced time at the outermost level.
    pub fn root_ns(&self) -> u64 {
        self.roots.iter().map(|&r| self.nodes[r].totals.total_ns).sum()
    }

    /// The node's share of its caller's wall time (of all roots' for a root), 0..=1.
    pub fn share_of_parent(&self, node: usize) -> f64 {
        let Some(n) = self.nodes.get(node) else { return 0.0 };
        let of = n.parent.map_or(self.root_ns(), |p| self.nodes[p].totals.total_ns);
        if of == 0 { 0.0 } else { n.totals.total_ns as f64 / of as f64 }
    }
}

/// Node `i`'s wall time: its own, or for an open node the sum of its callees' (set on it as its
/// total and callee time). The depth bound stops a cycle, which would need a hash collision.
fn weigh_open(
    i: usize,
    all: &mut [CallPath],
    open: &std::collections::HashSet<u64>,
    kids: &[Vec<usize>],
    level: usize,
) -> u64 {
    if level > 64 {
        return 0;
    }
    let sum: u64 = kids[i].iter().map(|&k| weigh_open(k, all, open, kids, level + 1)).sum();
    if open.contains(&all[i].id) {
        all[i].totals.total_ns = sum;
        all[i].totals.callees_ns = sum;
    }
    all[i].totals.total_ns
}

/// Appends node `i` (index into `all`) and, depth first, its callees; returns its index in `tree`.
#[expect(clippy::too_many_arguments, reason = "one recursive walk's state, private to `build`")]
fn place(
    i: usize,
    parent: Option<usize>,
    all: &[CallPath],
    open: &std::collections::HashSet<u64>,
    kids: &mut Vec<Vec<usize>>,
    tree: &mut CallTree,
    guard: &mut Vec<usize>,
    level: usize,
) -> usize {
    let p = &all[i];
    let at = tree.nodes.len();
    let is_open = open.contains(&p.id);
    tree.nodes.push(CallNode {
        path: p.id,
        fn_id: p.fn_id,
        depth: p.depth,
        parent,
        children: Vec::new(),
        totals: p.totals,
        open: is_open,
    });
    // A cycle would need a hash collision; the depth bound stops one anyway.
    if guard.contains(&i) || level > 64 {
        return at;
    }
    guard.push(i);
    let mut mine = std::mem::take(&mut kids[i]);
    mine.sort_by_key(|&k| (std::cmp::Reverse(all[k].totals.total_ns), all[k].fn_id));
    let mut children = Vec::with_capacity(mine.len());
    for k in mine {
        children.push(place(k, Some(at), all, open, kids, tree, guard, level + 1));
    }
    guard.pop();
    if is_open {
        let sum: u64 = children.iter().map(|&c| tree.nodes[c].totals.total_ns).sum();
        tree.nodes[at].totals.total_ns = sum;
        tree.nodes[at].totals.callees_ns = sum;
    }
    tree.nodes[at].children = children;
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(id: u64, parent: u64, fn_id: u32, depth: u32, count: u64, total_ns: u64) -> CallPath {
        let totals = PathTotals { calls: count, total_ns, self_oncpu_ns: total_ns, ..PathTotals::default() };
        CallPath { id, parent, fn_id, depth, totals, ..CallPath::default() }
    }

    #[test]
    fn tree_nests_paths_under_their_callers_heaviest_first() {
        let t = CallTree::build(&[
            path(1, 0, 0, 0, 10, 1000),
            path(2, 1, 1, 1, 10, 300),
            path(3, 1, 2, 1, 10, 600),
            path(4, 0, 1, 0, 5, 50),
            path(5, 3, 1, 2, 2, 10),
        ]);
        assert_eq!(t.roots.len(), 2);
        let root = &t.nodes[t.roots[0]];
        assert_eq!((root.fn_id, root.totals.total_ns), (0, 1000));
        let heavy = t.heaviest_child(t.roots[0]).unwrap();
        assert_eq!(t.nodes[heavy].fn_id, 2, "the 600 ns callee comes first");
        assert_eq!(t.nodes[t.nodes[heavy].children[0]].fn_id, 1, "a grandchild under its own caller");
        assert_eq!(t.root_ns(), 1050);
        assert!((t.share_of_parent(heavy) - 0.6).abs() < 1e-9);
        // Function 1 called from two places: two nodes, never merged.
        assert_eq!(t.nodes.iter().filter(|n| n.fn_id == 1).count(), 3);
    }

    #[test]
    fn callees_of_a_caller_still_running_hang_under_an_open_stand_in() {
        let mut a = path(2, 99, 1, 1, 3, 300);
        a.parent_fn_id = 7;
        let mut b = path(3, 99, 2, 1, 3, 100);
        b.parent_fn_id = 7;
        let t = CallTree::build(&[a, b]);
        assert_eq!(t.roots.len(), 1);
        let r = &t.nodes[t.roots[0]];
        assert!(r.open);
        assert_eq!((r.fn_id, r.totals.total_ns, r.totals.calls, r.children.len()), (7, 400, 0, 2));
    }

    /// main → serve (never returns) → handle: the kernel named serve's path when handle's was
    /// created, so serve is an open node under main, not a root stand-in.
    #[test]
    fn a_caller_still_running_stays_under_its_own_caller() {
        let main = path(1, 0, 0, 0, 0, 0);
        let serve = path(2, 1, 1, 1, 0, 0);
        let mut handle = path(3, 2, 2, 2, 5, 500);
        handle.parent_fn_id = 1;
        let other_root = path(4, 0, 3, 0, 1, 10);
        let idle_branch = path(5, 1, 4, 1, 0, 0);
        let t = CallTree::build(&[main, serve, handle, other_root, idle_branch]);
        assert_eq!(t.nodes.len(), 4, "main, serve, handle and the other root; no idle branch: {t:#?}");
        let root = &t.nodes[t.roots[0]];
        assert_eq!((root.fn_id, root.open, root.totals.total_ns, root.depth), (0, true, 500, 0), "{t:#?}");
        let serve = &t.nodes[root.children[0]];
        assert_eq!((serve.fn_id, serve.open, serve.totals.total_ns, serve.depth), (1, true, 500, 1), "{t:#?}");
        let handle = &t.nodes[serve.children[0]];
        assert_eq!((handle.fn_id, handle.open, handle.totals.calls), (2, false, 5));
    }

    #[test]
    fn paths_without_calls_in_the_window_are_left_out() {
        let t = CallTree::build(&[path(1, 0, 0, 0, 0, 0), path(2, 0, 1, 0, 1, 5)]);
        assert_eq!(t.nodes.len(), 1);
    }

    #[test]
    fn probe_cost_comes_out_of_own_time_only_as_far_as_it_goes() {
        let p = path(1, 0, 0, 0, 10, 1000).without_probe_cost(20);
        assert_eq!((p.totals.total_ns, p.totals.self_oncpu_ns), (800, 800));
        let mut q = path(1, 0, 0, 0, 10, 1000);
        q.totals.self_oncpu_ns = 50;
        let q = q.without_probe_cost(20);
        assert_eq!((q.totals.total_ns, q.totals.self_oncpu_ns), (950, 0));
    }
}
