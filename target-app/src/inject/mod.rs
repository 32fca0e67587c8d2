//! Fault injection: parses `--inject STAGE=SPEC` once at start-up and gives
//! each stage an `Injector` whose per-call check is a counter, not string work.

mod work;

use std::time::Duration;
#[cfg(test)]
use std::time::Instant;

pub use work::INJECTED_PANIC;

use crate::stage::Stage;

/// What to do inside a stage function on the calls that are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Every `every`-th call sleeps (off-CPU, clock_nanosleep).
    Sleep { dur: Duration, every: u64 },
    /// Every `every`-th call busy-waits on the monotonic clock (on-CPU).
    Spin { dur: Duration, every: u64 },
    /// Every call makes exactly `count` getppid(2) syscalls.
    Syscalls { count: u32 },
    /// Every `every`-th call fsyncs the journal file (journal stage only).
    Fsync { every: u64 },
    /// Every `every`-th call panics; the engine catches it above `on_message` and goes on. Only
    /// meaningful in a `panic = "unwind"` build (profile `release-unwind`): it exists to show that
    /// an unwind through a traced function is survived under perf-user's default behaviour.
    Panic { every: u64 },
    /// Every `every`-th call maps `pages` fresh anonymous pages and writes to each: `pages` minor
    /// faults, counted by the thread's own rusage.
    PageFault { pages: u32, every: u64 },
    /// Every `every`-th call drops a file's `pages` pages from the page cache and reads each
    /// through a mapping: `pages` major faults, counted by the thread's own rusage.
    MajorFault { pages: u32, every: u64 },
    /// Every `every`-th call moves its thread to the other of two CPUs (sched_setaffinity): one
    /// migration, and none in between (the thread stays pinned where it was put).
    Migrate { every: u64 },
}

/// Pages touched by `pagefault:every:N` when no count is given.
pub const DEFAULT_FAULT_PAGES: u32 = 16;

/// One parsed `--inject STAGE=SPEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectSpec {
    pub stage: Stage,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("expected STAGE=SPEC, got '{0}'")]
    MissingEquals(String),
    #[error("unknown stage '{stage}' (expected one of: {expected})")]
    UnknownStage { stage: String, expected: String },
    #[error(
        "unknown action '{0}' (expected sleep:DUR:every:N, spin:DUR:every:N, syscalls:K, fsync:every:N, panic:every:N, pagefault:[PAGES:]every:N, majorfault:[PAGES:]every:N or migrate:every:N)"
    )]
    UnknownAction(String),
    #[error("'{spec}' is malformed: expected {expected}")]
    Shape { spec: String, expected: &'static str },
    #[error("bad duration '{text}': {reason}")]
    Duration { text: String, reason: DurationError },
    #[error("bad count '{text}' in '{spec}': expected an integer >= 1")]
    Count { text: String, spec: String },
    #[error("fsync is only supported for the journal stage, not '{0}'")]
    FsyncStage(Stage),
    #[error("stage '{0}' is injected more than once")]
    Duplicate(Stage),
    #[error("migrate needs a thread allowed on two CPUs; this one may run on one only")]
    OneCpu,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("missing unit (use ns, us, µs, ms or s)")]
    MissingUnit,
    #[error("unknown unit '{0}' (use ns, us, µs, ms or s)")]
    UnknownUnit(String),
    #[error("'{0}' is not a number")]
    NotANumber(String),
    #[error("must be greater than zero")]
    Zero,
    #[error("too large")]
    TooLarge,
}

/// Parses `500ns`, `50us`, `50µs`, `1.5ms`, `2s`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or(DurationError::MissingUnit)?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(DurationError::NotANumber(text.to_owned()));
    }
    let ns_per_unit: f64 = match unit {
        "ns" => 1.0,
        // Accept both the micro sign (U+00B5) and the Greek mu (U+03BC).
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        other => return Err(DurationError::UnknownUnit(other.to_owned())),
    };
    let value: f64 = number.parse().map_err(|_| DurationError::NotANumber(number.to_owned()))?;
    let ns = (value * ns_per_unit).round();
    if !ns.is_finite() || ns > 3_600e9 {
        return Err(DurationError::TooLarge);
    }
    if ns < 1.0 {
        return Err(DurationError::Zero);
    }
    // ns is finite and within [1, 3.6e12], so the cast is exact.
    Ok(Duration::from_nanos(ns as u64))
}

fn parse_count(text: &str, spec: &str) -> Result<u64, SpecError> {
    match text.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(SpecError::Count { text: text.to_owned(), spec: spec.to_owned() }),
    }
}

fn parse_dur_in(text: &str) -> Result<Duration, SpecError> {
    parse_duration(text).map_err(|reason| SpecError::Duration { text: text.to_owned(), reason })
}

impl std::str::FromStr for InjectSpec {
    type Err = SpecError;

    fn from_str(arg: &str) -> Result<Self, SpecError> {
        let (stage_name, spec) = arg.split_once('=').ok_or_else(|| SpecError::MissingEquals(arg.to_owned()))?;
        let stage = Stage::from_short_name(stage_name)
            .ok_or_else(|| SpecError::UnknownStage { stage: stage_name.to_owned(), expected: Stage::short_names() })?;
        let parts: Vec<&str> = spec.split(':').collect();
        let shape = |expected| SpecError::Shape { spec: spec.to_owned(), expected };
        let action = match parts.first().copied().unwrap_or_default() {
            "sleep" | "spin" => {
                let [kind, dur, "every", n] = parts.as_slice() else {
                    return Err(shape("sleep:DUR:every:N or spin:DUR:every:N"));
                };
                let dur = parse_dur_in(dur)?;
                let every = parse_count(n, spec)?;
                if *kind == "sleep" { Action::Sleep { dur, every } } else { Action::Spin { dur, every } }
            }
            "syscalls" => {
                let ["syscalls", k] = parts.as_slice() else {
                    return Err(shape("syscalls:K"));
                };
                let count = parse_count(k, spec)?;
                let count = u32::try_from(count)
                    .map_err(|_| SpecError::Count { text: (*k).to_owned(), spec: spec.to_owned() })?;
                Action::Syscalls { count }
            }
            "fsync" => {
                let ["fsync", "every", n] = parts.as_slice() else {
                    return Err(shape("fsync:every:N"));
                };
                if stage != Stage::Journal {
                    return Err(SpecError::FsyncStage(stage));
                }
                Action::Fsync { every: parse_count(n, spec)? }
            }
            "panic" => {
                let ["panic", "every", n] = parts.as_slice() else {
                    return Err(shape("panic:every:N"));
                };
                Action::Panic { every: parse_count(n, spec)? }
            }
            kind @ ("pagefault" | "majorfault") => {
                let (pages, n) = match parts.as_slice() {
                    [_, "every", n] => (DEFAULT_FAULT_PAGES, n),
                    [_, pages, "every", n] => {
                        let pages = u32::try_from(parse_count(pages, spec)?)
                            .ok()
                            .filter(|&p| p <= 1 << 16)
                            .ok_or_else(|| SpecError::Count { text: (*pages).to_owned(), spec: spec.to_owned() })?;
                        (pages, n)
                    }
                    _ if kind == "pagefault" => return Err(shape("pagefault:every:N or pagefault:PAGES:every:N")),
                    _ => return Err(shape("majorfault:every:N or majorfault:PAGES:every:N")),
                };
                let every = parse_count(n, spec)?;
                if kind == "pagefault" {
                    Action::PageFault { pages, every }
                } else {
                    Action::MajorFault { pages, every }
                }
            }
            "migrate" => {
                let ["migrate", "every", n] = parts.as_slice() else {
                    return Err(shape("migrate:every:N"));
                };
                if !work::may_migrate() {
                    return Err(SpecError::OneCpu);
                }
                Action::Migrate { every: parse_count(n, spec)? }
            }
            other => return Err(SpecError::UnknownAction(other.to_owned())),
        };
        Ok(InjectSpec { stage, action })
    }
}

/// All injections of one run, at most one per stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InjectPlan {
    by_stage: [Option<Action>; Stage::COUNT],
}

impl InjectPlan {
    pub fn new(specs: &[InjectSpec]) -> Result<Self, SpecError> {
        let mut plan = InjectPlan::default();
        for spec in specs {
            let slot = &mut plan.by_stage[spec.stage.index()];
            if slot.is_some() {
                return Err(SpecError::Duplicate(spec.stage));
            }
            *slot = Some(spec.action);
        }
        Ok(plan)
    }

    pub fn action(&self, stage: Stage) -> Option<Action> {
        self.by_stage[stage.index()]
    }

    pub fn injector(&self, stage: Stage) -> Injector {
        Injector::new(self.action(stage))
    }
}

/// What `Injector::fire` did on this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    No,
    Yes,
    /// The caller owns the file, so it does the fsync itself.
    FsyncDue,
}

/// What one stage's injections did, by the app's own count: the truth file's `injected_*`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectCounts {
    /// Calls on which an injection fired.
    pub calls: u64,
    /// Page faults the thread took inside `pagefault` and `majorfault` injections
    /// (getrusage(RUSAGE_THREAD), minor + major).
    pub page_faults: u64,
    /// The major ones among them.
    pub major_faults: u64,
    /// `migrate` injections after which the thread ran on another CPU than before.
    pub migrations: u64,
    /// `sleep` injections during which the thread left the CPU voluntarily (blocked), by its
    /// own rusage; the others' timers expired before the thread could sleep.
    pub sleeps_blocked: u64,
}

/// Per-stage injection state, owned by the stage's struct so the check in
/// the stage body touches only its own cache line.
#[derive(Debug, Clone)]
pub struct Injector {
    action: Option<Action>,
    /// Calls left until the next due one; a countdown avoids a division per call.
    countdown: u64,
    injected: u64,
    page_faults: u64,
    major_faults: u64,
    migrations: u64,
    sleeps_blocked: u64,
    /// `majorfault`: the descriptor of the file whose pages are dropped and read (-1: none).
    cold_fd: i32,
    /// `migrate`: the two CPUs it flips between, once the thread is pinned to one of them.
    pinned_pair: Option<[usize; 2]>,
}

impl Injector {
    pub fn new(action: Option<Action>) -> Self {
        let countdown = match action {
            Some(
                Action::Sleep { every, .. }
                | Action::Spin { every, .. }
                | Action::Fsync { every }
                | Action::Panic { every }
                | Action::PageFault { every, .. }
                | Action::MajorFault { every, .. }
                | Action::Migrate { every },
            ) => every,
            Some(Action::Syscalls { .. }) | None => 1,
        };
        if let Some(Action::PageFault { .. }) = action {
            // Once before any traced call, uncounted: the first run faults in the helper's code
            // and stack, which are not the injected pages.
            work::touch_fresh_pages(1);
        }
        let cold_fd = match action {
            Some(Action::MajorFault { pages, .. }) => work::cold_file(pages).inspect(|&fd| {
                // Once before any traced call, uncounted, as for `pagefault`.
                work::touch_cold_file(fd, 1);
            }),
            _ => None,
        };
        Injector {
            action,
            countdown,
            injected: 0,
            page_faults: 0,
            major_faults: 0,
            migrations: 0,
            sleeps_blocked: 0,
            cold_fd: cold_fd.unwrap_or(-1),
            pinned_pair: None,
        }
    }

    pub fn none() -> Self {
        Injector::new(None)
    }

    /// Calls on which an injection fired so far.
    pub fn injected_count(&self) -> u64 {
        self.injected
    }

    /// Everything the injections did so far.
    pub fn counts(&self) -> InjectCounts {
        InjectCounts {
            calls: self.injected,
            page_faults: self.page_faults,
            major_faults: self.major_faults,
            migrations: self.migrations,
            sleeps_blocked: self.sleeps_blocked,
        }
    }

    /// Called first thing in a stage body. Inlined so the injected work runs
    /// inside the probed function's frame; the slow parts are cold helpers.
    #[inline(always)]
    pub fn fire(&mut self) -> Fired {
        let Some(action) = self.action else {
            return Fired::No;
        };
        match action {
            Action::Syscalls { count } => {
                self.injected += 1;
                work::extra_syscalls(count);
                Fired::Yes
            }
            Action::Sleep { dur, every } => {
                if self.due(every) {
                    if work::sleep_for(dur) {
                        self.sleeps_blocked += 1;
                    }
                    Fired::Yes
                } else {
                    Fired::No
                }
            }
            Action::Spin { dur, every } => {
                if self.due(every) {
                    work::spin_for(dur);
                    Fired::Yes
                } else {
                    Fired::No
                }
            }
            Action::Fsync { every } => {
                if self.due(every) {
                    Fired::FsyncDue
                } else {
                    Fired::No
                }
            }
            Action::Panic { every } => {
                if self.due(every) {
                    work::injected_panic();
                }
                Fired::No
            }
            Action::PageFault { pages, every } => {
                if self.due(every) {
                    self.page_faults += work::touch_fresh_pages(pages);
                    Fired::Yes
                } else {
                    Fired::No
                }
            }
            Action::MajorFault { pages, every } => {
                if self.due(every) {
                    if self.cold_fd >= 0 {
                        let (all, major) = work::touch_cold_file(self.cold_fd, pages);
                        self.page_faults += all;
                        self.major_faults += major;
                    }
                    Fired::Yes
                } else {
                    Fired::No
                }
            }
            Action::Migrate { every } => self.migrate(every),
        }
    }

    /// `migrate`: the first call pins the thread where it runs (so it cannot wander on its own),
    /// each due call moves it to the other CPU.
    #[inline(always)]
    fn migrate(&mut self, every: u64) -> Fired {
        if self.pinned_pair.is_none() {
            self.pinned_pair = work::pin_here();
        }
        if !self.due(every) {
            return Fired::No;
        }
        if let Some(pair) = self.pinned_pair
            && work::flip_cpu(pair)
        {
            self.migrations += 1;
        }
        Fired::Yes
    }

    #[inline(always)]
    fn due(&mut self, every: u64) -> bool {
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = every;
            self.injected += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> Result<InjectSpec, SpecError> {
        s.parse()
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ns"), Ok(Duration::from_nanos(500)));
        assert_eq!(parse_duration("200us"), Ok(Duration::from_micros(200)));
        assert_eq!(parse_duration("50µs"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_duration("50μs"), Ok(Duration::from_micros(50)));
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(parse_duration("200"), Err(DurationError::MissingUnit));
        assert_eq!(parse_duration("200m"), Err(DurationError::UnknownUnit("m".into())));
        assert_eq!(parse_duration("ms"), Err(DurationError::NotANumber("ms".into())));
        assert_eq!(parse_duration("1.2.3ms"), Err(DurationError::NotANumber("1.2.3".into())));
        assert_eq!(parse_duration("0ms"), Err(DurationError::Zero));
        assert_eq!(parse_duration("-1ms"), Err(DurationError::NotANumber("-1ms".into())));
        assert_eq!(parse_duration("99999999s"), Err(DurationError::TooLarge));
    }

    #[test]
    fn good_specs() {
        assert_eq!(
            spec("risk_check=sleep:200us:every:100"),
            Ok(InjectSpec {
                stage: Stage::RiskCheck,
                action: Action::Sleep { dur: Duration::from_micros(200), every: 100 }
            })
        );
        assert_eq!(
            spec("signal=spin:50µs:every:1000").map(|s| s.action),
            Ok(Action::Spin { dur: Duration::from_micros(50), every: 1000 })
        );
        assert_eq!(spec("gateway=syscalls:5").map(|s| s.action), Ok(Action::Syscalls { count: 5 }));
        assert_eq!(spec("journal=fsync:every:10").map(|s| s.action), Ok(Action::Fsync { every: 10 }));
        assert_eq!(
            spec("signal=pagefault:every:3").map(|s| s.action),
            Ok(Action::PageFault { pages: DEFAULT_FAULT_PAGES, every: 3 })
        );
        assert_eq!(
            spec("signal=pagefault:64:every:2").map(|s| s.action),
            Ok(Action::PageFault { pages: 64, every: 2 })
        );
        assert_eq!(
            spec("signal=majorfault:8:every:5").map(|s| s.action),
            Ok(Action::MajorFault { pages: 8, every: 5 })
        );
    }

    #[test]
    fn majorfault_reads_each_page_of_its_cold_file_with_a_major_fault() {
        let mut inj = Injector::new(Some(Action::MajorFault { pages: 8, every: 1 }));
        assert_eq!(inj.fire(), Fired::Yes);
        let c = inj.counts();
        // The page cache may keep a page the kernel could not drop at once (another CPU's LRU
        // batch); each read page is a fault, and the dropped ones major.
        assert!(c.page_faults >= 8, "{c:?}");
        assert!(c.major_faults >= 1 && c.major_faults <= c.page_faults, "{c:?}");
    }

    #[test]
    fn pagefault_and_migrate_specs_name_the_bad_part() {
        let err = |s: &str| spec(s).map(|_| ()).unwrap_err_string();
        assert!(err("signal=pagefault:0:every:2").contains("bad count '0'"));
        assert!(err("signal=pagefault:99999999:every:2").contains("bad count '99999999'"));
        assert!(err("signal=pagefault:every").contains("pagefault:PAGES:every:N"));
        assert!(err("signal=migrate:2").contains("migrate:every:N"));
    }

    #[test]
    fn pagefault_counts_the_threads_own_faults() {
        let mut inj = Injector::new(Some(Action::PageFault { pages: 32, every: 2 }));
        assert_eq!([inj.fire(), inj.fire(), inj.fire(), inj.fire()], [Fired::No, Fired::Yes, Fired::No, Fired::Yes]);
        let c = inj.counts();
        assert_eq!(c.calls, 2);
        // One minor fault per fresh page written; a stray fault elsewhere in the thread may add.
        assert!((64..64 + 8).contains(&c.page_faults), "{c:?}");
    }

    #[test]
    fn migrate_moves_the_thread_once_per_due_call() {
        if !work::may_migrate() {
            eprintln!("one CPU only: migrate not tested");
            return;
        }
        // A thread of its own: the injector pins the thread it runs on.
        let counts = std::thread::spawn(|| {
            let mut inj = Injector::new(Some(Action::Migrate { every: 1 }));
            for _ in 0..6 {
                assert_eq!(inj.fire(), Fired::Yes);
            }
            inj.counts()
        })
        .join()
        .expect("the migrating thread");
        assert_eq!(counts, InjectCounts { calls: 6, migrations: 6, ..InjectCounts::default() });
    }

    #[test]
    fn bad_specs_name_the_bad_part() {
        let err = |s: &str| spec(s).map(|_| ()).unwrap_err_string();
        assert!(err("risk=sleep:1ms:every:1").contains("unknown stage 'risk'"));
        assert!(err("book").contains("STAGE=SPEC"));
        assert!(err("book=nap:1ms:every:1").contains("unknown action 'nap'"));
        assert!(err("book=sleep:1xs:every:1").contains("bad duration '1xs'"));
        assert!(err("book=sleep:1ms:every:0").contains("bad count '0'"));
        assert!(err("book=sleep:1ms:each:3").contains("sleep:DUR:every:N"));
        assert!(err("book=sleep:1ms").contains("sleep:DUR:every:N"));
        assert!(err("book=syscalls:x").contains("bad count 'x'"));
        assert!(err("book=syscalls:1:2").contains("syscalls:K"));
        assert!(err("book=fsync:every:3").contains("only supported for the journal"));
        for s in ["book", "book=sleep:1xs:every:1", "=spin:1ms:every:2"] {
            assert!(!err(s).contains('\n'), "multi-line error for {s}");
        }
    }

    #[test]
    fn duplicate_stage_rejected() {
        let a = spec("book=syscalls:1").expect("valid");
        let b = spec("book=spin:1us:every:2").expect("valid");
        assert_eq!(InjectPlan::new(&[a, b]), Err(SpecError::Duplicate(Stage::Book)));
        let plan = InjectPlan::new(&[a]).expect("one per stage");
        assert_eq!(plan.action(Stage::Book), Some(Action::Syscalls { count: 1 }));
        assert_eq!(plan.action(Stage::Journal), None);
    }

    #[test]
    fn every_nth_call_fires() {
        let mut inj = Injector::new(Some(Action::Spin { dur: Duration::from_nanos(1), every: 3 }));
        let fired: Vec<Fired> = (0..7).map(|_| inj.fire()).collect();
        use Fired::{No, Yes};
        assert_eq!(fired, [No, No, Yes, No, No, Yes, No]);
        assert_eq!(inj.injected_count(), 2);

        let mut fsync = Injector::new(Some(Action::Fsync { every: 2 }));
        assert_eq!([fsync.fire(), fsync.fire()], [Fired::No, Fired::FsyncDue]);

        let mut sys = Injector::new(Some(Action::Syscalls { count: 2 }));
        for _ in 0..4 {
            assert_eq!(sys.fire(), Fired::Yes);
        }
        assert_eq!(sys.injected_count(), 4);

        let mut none = Injector::none();
        assert_eq!(none.fire(), Fired::No);
        assert_eq!(none.injected_count(), 0);
    }

    #[test]
    fn sleep_and_spin_take_at_least_the_duration() {
        for action in [
            Action::Sleep { dur: Duration::from_micros(300), every: 1 },
            Action::Spin { dur: Duration::from_micros(300), every: 1 },
        ] {
            let mut inj = Injector::new(Some(action));
            let t0 = Instant::now();
            assert_eq!(inj.fire(), Fired::Yes);
            assert!(t0.elapsed() >= Duration::from_micros(300));
        }
    }

    trait ErrString {
        fn unwrap_err_string(self) -> String;
    }

    impl ErrString for Result<(), SpecError> {
        fn unwrap_err_string(self) -> String {
            match self {
                Ok(()) => panic!("expected an error"),
                Err(e) => e.to_string(),
            }
        }
    }
}
