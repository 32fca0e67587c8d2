//! The single owner of a tracing session's state. The main loop turns everything that happens
//! (ticks, keys, signals, the target exiting) into `Event`s; `App::handle` decides, I/O happens outside.

use crate::{
    model::{Exemplar, Sample, Session},
    report::{Report, RunInfo},
};

/// Why a run ended; exported as `end_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Duration,
    Signal,
    Quit,
    TargetExited,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Duration => "duration",
            EndReason::Signal => "signal",
            EndReason::Quit => "quit",
            EndReason::TargetExited => "target-exited",
        }
    }
}

#[derive(Debug)]
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
}

/// Keys the app understands, decoupled from the terminal library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Up,
    Down,
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
    /// One-line message shown in the footer (export written, reset done, …).
    pub status: String,
}

impl App {
    pub fn new(session: Session, info: RunInfo) -> Self {
        App { session, info, paused: false, target_exited: false, status: String::new() }
    }

    pub fn handle(&mut self, event: Event) -> Action {
        match event {
            Event::Tick { sample, exemplars } => {
                if !self.target_exited {
                    self.session.push(sample);
                    self.session.add_exemplars(exemplars);
                }
                Action::Continue
            }
            Event::Signal => Action::Exit(EndReason::Signal),
            Event::DurationElapsed => Action::Exit(EndReason::Duration),
            Event::TargetExited => {
                self.target_exited = true;
                self.status = "target exited: numbers frozen; q to quit".into();
                Action::Continue
            }
            Event::Key(key) => self.key(key),
        }
    }

    fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Char('q') | Key::CtrlC => {
                Action::Exit(if self.target_exited { EndReason::TargetExited } else { EndReason::Quit })
            }
            Key::Char('p') => {
                self.paused = !self.paused;
                self.status = if self.paused { "paused".into() } else { String::new() };
                Action::Continue
            }
            Key::Char('r') => {
                self.session.reset();
                self.status = "reset".into();
                Action::Continue
            }
            Key::Char('e') => Action::ExportSnapshot,
            _ => Action::Continue,
        }
    }

    /// The report of everything so far, as it would be exported now.
    pub fn report(&self, end: Option<EndReason>) -> Report {
        let mut info = self.info.clone();
        info.end_reason = end.map_or("running", EndReason::as_str).to_string();
        Report::build(&self.session, &info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FuncInfo, FuncSample};

    fn app() -> App {
        App::new(Session::new(vec![FuncInfo::default()], 10), RunInfo::default())
    }

    fn tick(count: u64) -> Event {
        Event::Tick {
            sample: Sample { functions: vec![FuncSample { count, ..FuncSample::default() }], ..Sample::default() },
            exemplars: vec![],
        }
    }

    #[test]
    fn quit_signal_and_duration_end_the_run_with_their_reason() {
        assert_eq!(app().handle(Event::Key(Key::Char('q'))), Action::Exit(EndReason::Quit));
        assert_eq!(app().handle(Event::Signal), Action::Exit(EndReason::Signal));
        assert_eq!(app().handle(Event::DurationElapsed), Action::Exit(EndReason::Duration));
    }

    #[test]
    fn target_exit_freezes_numbers_and_keeps_running() {
        let mut a = app();
        a.handle(tick(5));
        assert_eq!(a.handle(Event::TargetExited), Action::Continue);
        a.handle(tick(9));
        assert_eq!(a.session.latest().map(|s| s.functions[0].count), Some(5));
        assert_eq!(a.handle(Event::Key(Key::Char('q'))), Action::Exit(EndReason::TargetExited));
    }

    #[test]
    fn pause_reset_export_keys() {
        let mut a = app();
        a.handle(Event::Key(Key::Char('p')));
        assert!(a.paused);
        a.handle(Event::Key(Key::Char('p')));
        assert!(!a.paused);
        assert_eq!(a.handle(Event::Key(Key::Char('e'))), Action::ExportSnapshot);
        a.handle(tick(5));
        a.handle(Event::Key(Key::Char('r')));
        a.handle(tick(7));
        assert_eq!(a.report(None).functions[0].latency.count, 2);
    }
}
