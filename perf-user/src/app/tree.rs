//! The call-tree view's state and keys: which call paths are folded, the cursor that follows one
//! path as numbers change, and uftrace's moves (`l` to the heaviest callee, `u` back to the caller).

use std::collections::HashSet;

use super::{App, Key, View, ViewState};
use crate::model::CallTree;

/// What the call-tree view remembers between ticks: paths, not rows, since rows move.
#[derive(Clone, Debug, Default)]
pub struct TreeView {
    /// Folded call paths (everything else is open: the tree starts unfolded, as uftrace's does).
    pub folded: HashSet<u64>,
    /// The path under the cursor, kept while rows re-sort and new paths arrive.
    pub path: Option<u64>,
}

impl App {
    /// Keys of the call-tree view; `None` for keys it leaves to the rest.
    pub(super) fn tree_key(&mut self, key: Key) -> Option<()> {
        if self.ui.view != View::Tree {
            return None;
        }
        let tree = &self.derived.tree;
        let node = self.selected_node();
        match key {
            Key::Enter | Key::Char(' ') => {
                let n = node?;
                let path = tree.nodes[n].path;
                if !self.ui.tree.folded.remove(&path) {
                    self.ui.tree.folded.insert(path);
                }
            }
            Key::Right => {
                let n = node?;
                let path = tree.nodes[n].path;
                if !self.ui.tree.folded.remove(&path) {
                    // Already open: step onto its first (heaviest) callee.
                    self.ui.tree.path = tree.heaviest_child(n).map(|c| tree.nodes[c].path).or(Some(path));
                }
            }
            Key::Left => {
                let n = node?;
                let path = tree.nodes[n].path;
                let open = !tree.nodes[n].children.is_empty() && !self.ui.tree.folded.contains(&path);
                if open {
                    self.ui.tree.folded.insert(path);
                } else if let Some(p) = tree.nodes[n].parent {
                    self.ui.tree.path = Some(tree.nodes[p].path);
                }
            }
            Key::Char('l') => {
                let n = node?;
                let child = tree.heaviest_child(n)?;
                self.ui.tree.folded.remove(&tree.nodes[n].path);
                self.ui.tree.path = Some(tree.nodes[child].path);
            }
            Key::Char('u') => {
                let parent = tree.nodes[node?].parent?;
                self.ui.tree.path = Some(tree.nodes[parent].path);
            }
            _ => return None,
        }
        self.refresh();
        Some(())
    }

    /// The call-tree node under the cursor.
    pub fn selected_node(&self) -> Option<usize> {
        self.ui.visible_tree.get(self.ui.selected[View::Tree as usize]).copied()
    }

    /// After the cursor moved in the tree view: remember which path it is on.
    pub(super) fn follow_path(&mut self) {
        self.ui.tree.path = self.selected_node().map(|n| self.derived.tree.nodes[n].path);
    }
}

/// The rows of the tree as shown: every root, and the callees of each node not folded, depth
/// first; the cursor goes back to its path (or, if that path is gone, stays on its row).
pub(super) fn refresh_tree(ui: &mut ViewState, tree: &CallTree) {
    let v = &mut ui.visible_tree;
    v.clear();
    let mut stack: Vec<usize> = tree.roots.iter().rev().copied().collect();
    while let Some(n) = stack.pop() {
        v.push(n);
        let node = &tree.nodes[n];
        if !ui.tree.folded.contains(&node.path) {
            stack.extend(node.children.iter().rev());
        }
    }
    let at = View::Tree as usize;
    let pos = ui.tree.path.and_then(|p| v.iter().position(|&n| tree.nodes[n].path == p));
    ui.selected[at] = pos.unwrap_or(ui.selected[at]).min(v.len().saturating_sub(1));
}
