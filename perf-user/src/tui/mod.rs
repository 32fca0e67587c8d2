//! The live terminal UI: owns the terminal (raw mode, alternate screen, restored on every way out)
//! and a thread turning terminal events into `Key`s. Drawing is `impl Widget for &App` in `widgets`.

mod widgets;

use std::{
    io::{Stdout, stdout},
    sync::{
        Arc, Once,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, Result};
use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        cursor::{Hide, Show},
        event::{self, Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers},
        execute,
        terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode},
    },
};
use tokio::sync::mpsc;

use crate::app::{App, Key};

/// True while the terminal is in raw mode on the alternate screen (what `restore` undoes).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// How often the key thread looks at its stop flag while no input arrives.
const KEY_POLL: Duration = Duration::from_millis(50);

pub struct Tui {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    keys: mpsc::UnboundedReceiver<Key>,
    stop_keys: Arc<AtomicBool>,
    key_thread: Option<JoinHandle<()>>,
}

impl Tui {
    /// Takes the terminal: raw mode, alternate screen, hidden cursor; keys start flowing.
    pub fn start() -> Result<Tui> {
        install_panic_hook();
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        TERMINAL_TAKEN.store(true, Ordering::SeqCst);
        let terminal = execute!(stdout(), EnterAlternateScreen, Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(stdout())))
            .context("cannot set up the terminal");
        let terminal = match terminal {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        let (tx, keys) = mpsc::unbounded_channel();
        let stop_keys = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stop_keys);
        let key_thread = std::thread::Builder::new()
            .name("perf-user-keys".into())
            .spawn(move || read_keys(&tx, &stop))
            .inspect_err(|_| restore())
            .context("cannot start the key reader thread")?;
        Ok(Tui { terminal, keys, stop_keys, key_thread: Some(key_thread) })
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
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.stop_keys.store(true, Ordering::SeqCst);
        restore();
        // The reader notices the flag within one poll; joining keeps it from eating input after us.
        if let Some(t) = self.key_thread.take() {
            let _ = t.join();
        }
    }
}

/// The next key from the terminal; pending forever without a UI (or once the reader is gone).
pub async fn next_key(ui: &mut Option<Tui>) -> Key {
    match ui {
        Some(ui) => match ui.keys.recv().await {
            Some(k) => k,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

fn read_keys(tx: &mpsc::UnboundedSender<Key>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match event::poll(KEY_POLL) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => return,
        }
        let Ok(ev) = event::read() else { return };
        if let Some(key) = map_event(&ev)
            && tx.send(key).is_err()
        {
            return;
        }
    }
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

/// Leaves raw mode and the alternate screen, once (later calls do nothing).
fn restore() {
    if TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(stdout(), LeaveAlternateScreen, Show);
    }
}

/// A panic message printed on the alternate screen in raw mode would be lost: restore first.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

#[cfg(test)]
mod tests;
