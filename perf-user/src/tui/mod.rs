//! The live terminal UI: owns the terminal (ratatui's raw mode and alternate screen, restored on
//! every way out, panics included) and its input as an async stream of `Key`s for the main loop.

mod widgets;

use anyhow::{Context, Result};
use crossterm::event::EventStream;
use futures_core::Stream;
use ratatui::{
    DefaultTerminal,
    crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers},
};

use crate::app::{App, Key};

pub struct Tui {
    terminal: DefaultTerminal,
    /// Terminal input, read by crossterm when the main loop polls it (no thread of ours).
    events: EventStream,
    /// Set once the input stream ended or failed: `next_key` then waits forever.
    input_closed: bool,
}

impl Tui {
    /// Takes the terminal: raw mode, alternate screen, a panic hook that gives it back first.
    pub fn start() -> Result<Tui> {
        let mut terminal = ratatui::try_init()
            // A half-done setup (raw mode without the alternate screen) is undone too.
            .inspect_err(|_| ratatui::restore())
            .context("cannot set up the terminal")?;
        if let Err(e) = terminal.hide_cursor() {
            ratatui::restore();
            return Err(e).context("cannot set up the terminal");
        }
        Ok(Tui { terminal, events: EventStream::new(), input_closed: false })
    }

    /// Draws the app; ratatui diffs against the previous frame, so only changed cells are written.
    pub fn draw(&mut self, app: &App) -> Result<()> {
        self.terminal.draw(|frame| frame.render_widget(app, frame.area())).context("cannot draw the terminal UI")?;
        Ok(())
    }

    /// Gives the terminal back (same as dropping the `Tui`).
    pub fn stop(self) {
        drop(self);
    }

    /// The next key the app cares about; `None` once the terminal's input is gone.
    async fn key(&mut self) -> Option<Key> {
        loop {
            let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut self.events).poll_next(cx)).await;
            match next {
                Some(Ok(ev)) => {
                    if let Some(key) = map_event(&ev) {
                        return Some(key);
                    }
                }
                Some(Err(_)) | None => return None,
            }
        }
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}

/// The next key from the terminal; pending forever without a UI (or once its input is gone).
pub async fn next_key(ui: &mut Option<Tui>) -> Key {
    if let Some(ui) = ui.as_mut().filter(|u| !u.input_closed) {
        match ui.key().await {
            Some(k) => return k,
            None => ui.input_closed = true,
        }
    }
    std::future::pending().await
}

/// Terminal events the app cares about, as `Key`s.
fn map_event(ev: &TermEvent) -> Option<Key> {
    match ev {
        TermEvent::Resize(..) => Some(Key::Resize),
        TermEvent::Key(k) => map_key(k),
        _ => None,
    }
}

fn map_key(k: &KeyEvent) -> Option<Key> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    Some(match k.code {
        // Raw mode turns off ISIG: Ctrl-C arrives here, not as SIGINT.
        KeyCode::Char('c') | KeyCode::Char('C') if ctrl => Key::CtrlC,
        KeyCode::Char(_) if ctrl => return None,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_explore;
#[cfg(test)]
mod tests_spans;
