//! The keyboard: what each key does to the session and the view, the filter being typed, and
//! moving the cursor. Part of `App::handle`; draws nothing and touches no kernel state.

use super::{Action, App, EndReason, Key, View};

/// Rows moved by PageUp/PageDown.
const PAGE_ROWS: usize = 10;

impl App {
    pub(super) fn key(&mut self, key: Key) -> Action {
        let quit = Action::Exit(if self.target_exited { EndReason::TargetExited } else { EndReason::Quit });
        if key == Key::CtrlC {
            return quit;
        }
        if self.ui.filter_editing {
            self.filter_key(key);
            return Action::Continue;
        }
        if self.ui.help {
            // Any key closes the help, as it says, `q` included (Ctrl-C still quits).
            self.ui.help = false;
            return Action::Continue;
        }
        if self.explore_key(key).is_some() || self.tree_key(key).is_some() {
            return Action::Continue;
        }
        match key {
            Key::Char('q') => return quit,
            Key::Char('p') => {
                self.paused = !self.paused;
                self.set_status(if self.paused { "paused: numbers frozen, collection goes on" } else { "" });
                // Freeze (or unfreeze) exactly what is on screen now.
                self.rebuild();
            }
            Key::Char('r') => {
                self.session.reset();
                self.set_status("reset");
                self.rebuild();
            }
            Key::Char('e') => return Action::ExportSnapshot,
            // Sorting is the functions table's: elsewhere it would change a table not on screen.
            Key::Char('s' | 'S') if self.ui.view != View::Functions => {
                self.set_status("s/S sort the Functions tab (Tab back to it)");
            }
            Key::Char('s') => {
                self.ui.sort = self.ui.sort.next();
                self.ui.descending = self.ui.sort.descending_by_default();
                self.refresh();
            }
            Key::Char('S') => {
                self.ui.descending = !self.ui.descending;
                self.refresh();
            }
            Key::Char('z') => {
                self.ui.show_uncalled = !self.ui.show_uncalled;
                self.set_status(if self.ui.show_uncalled {
                    "showing functions without calls in this window"
                } else {
                    "hiding functions without calls in this window (z shows them)"
                });
                self.refresh();
            }
            Key::Char('/') => self.ui.filter_editing = true,
            Key::Char('?') => self.ui.help = true,
            Key::Char('w') => {
                self.ui.window = self.ui.window.next();
                self.rebuild();
            }
            Key::Tab => self.ui.view = self.next_view(View::next),
            Key::BackTab => self.ui.view = self.next_view(View::prev),
            Key::Esc if !self.ui.filter.is_empty() => {
                self.ui.filter.clear();
                self.refresh();
            }
            Key::Up | Key::Down | Key::PageUp | Key::PageDown | Key::Home | Key::End => self.navigate(key),
            _ => {}
        }
        Action::Continue
    }

    /// Keys while typing a filter: text goes into the filter, Enter keeps it, Esc drops it.
    fn filter_key(&mut self, key: Key) {
        match key {
            Key::Char(c) => self.ui.filter.push(c),
            Key::Backspace => {
                self.ui.filter.pop();
            }
            Key::Enter => self.ui.filter_editing = false,
            Key::Esc => {
                self.ui.filter_editing = false;
                self.ui.filter.clear();
            }
            Key::Up | Key::Down | Key::PageUp | Key::PageDown | Key::Home | Key::End => self.navigate(key),
            _ => return,
        }
        self.refresh();
    }

    fn navigate(&mut self, key: Key) {
        let len = match self.ui.view {
            View::Functions => self.ui.visible.len(),
            View::Syscalls => self.ui.visible_syscalls.len(),
            View::Exemplars => self.ui.visible_exemplars.len(),
            View::Tree => self.ui.visible_tree.len(),
            View::Spans => self.session.spans.len(),
        };
        let sel = &mut self.ui.selected[self.ui.view as usize];
        let last = len.saturating_sub(1);
        *sel = match key {
            Key::Up => sel.saturating_sub(1),
            Key::Down => (*sel + 1).min(last),
            Key::PageUp => sel.saturating_sub(PAGE_ROWS),
            Key::PageDown => (*sel + PAGE_ROWS).min(last),
            Key::Home => 0,
            Key::End => last,
            _ => *sel,
        };
        if self.ui.view == View::Functions {
            self.ui.selected_id = self.ui.visible.get(self.ui.selected[0]).map(|&i| self.derived.functions[i].id);
        }
        if self.ui.view == View::Exemplars {
            self.follow_exemplar();
        }
        if self.ui.view == View::Tree {
            self.follow_path();
        }
    }
}
