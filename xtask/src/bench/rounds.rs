//! Interleaved rounds: every configuration of a measurement (a label, bench-target's arguments, a
//! tracer) run once per round, A B C, A B C, …, so that drift in the machine's load spreads evenly.

use std::{path::PathBuf, time::Duration};

use super::{
    plan::Plan,
    run::{Bins, Outcome, run_once},
    text::thousands,
    tracer::Tracer,
};

/// What every measurement needs: the binaries, where runs leave their files, how long runs are,
/// and the notes the report ends with.
pub struct Ctx {
    pub bins: Bins,
    pub scratch: PathBuf,
    pub plan: Plan,
    pub notes: Vec<String>,
    /// perf-user's warnings noted so far, by kind: each kind is one note, which says how many
    /// others of that kind followed (a guard detaching 100 functions in 6 runs is one line, not 600).
    pub warned: Vec<Warned>,
}

/// One kind of perf-user warning in the notes.
pub struct Warned {
    kind: String,
    /// Its note's index in `Ctx::notes`.
    note: usize,
    first: String,
    /// Warnings of the same kind after the first, repeats included (only the first's are not).
    more: usize,
}

/// One configuration of an interleaved measurement: a label, bench-target's arguments, and the
/// tracer (or why it is skipped).
pub struct Config {
    pub label: String,
    pub target: Vec<String>,
    pub tracer: Result<Tracer, String>,
    pub go: bool,
    pub detach_cap: Option<Duration>,
    /// Rejects a run whose probes did not see what the target did (it then counts as failed).
    pub check: Option<Check>,
}

pub type Check = Box<dyn Fn(&Outcome) -> Result<(), String>>;

/// Each configuration's outcomes, one per round.
pub type Outcomes = Vec<Vec<Result<Outcome, String>>>;

impl Config {
    pub fn new(label: impl Into<String>, target: Vec<String>, tracer: Result<Tracer, String>) -> Config {
        Config { label: label.into(), target, tracer, go: true, detach_cap: None, check: None }
    }

    pub fn checked(mut self, check: Check) -> Config {
        self.check = Some(check);
        self
    }
}

/// Runs every configuration `ctx.plan.reps` times, interleaved.
pub fn interleaved(ctx: &mut Ctx, configs: &[Config]) -> Outcomes {
    repeated(ctx, configs, ctx.plan.reps)
}

/// Runs every configuration `reps` times, interleaved; returns each configuration's outcomes.
pub fn repeated(ctx: &mut Ctx, configs: &[Config], reps: usize) -> Outcomes {
    let mut all: Outcomes = configs.iter().map(|_| Vec::new()).collect();
    for rep in 0..reps {
        for (i, c) in configs.iter().enumerate() {
            let outcome = match &c.tracer {
                Err(why) => Err(why.clone()),
                Ok(tracer) => run_config(ctx, c, tracer, rep, reps),
            };
            all[i].push(outcome);
        }
    }
    all
}

/// One repetition of one configuration, checked, with its progress line; a failure is noted.
fn run_config(ctx: &mut Ctx, c: &Config, tracer: &Tracer, rep: usize, reps: usize) -> Result<Outcome, String> {
    let label = format!("{}-{rep}", file_label(&c.label));
    let r =
        run_once(&ctx.bins, &c.target, tracer, c.go, c.detach_cap, &ctx.scratch, &label).and_then(|o| match &c.check {
            Some(check) => check(&o).map(|()| o).map_err(anyhow::Error::msg),
            None => Ok(o),
        });
    if let Ok(o) = &r {
        note_warnings(ctx, o.export.as_ref());
    }
    match &r {
        Ok(o) => eprintln!("bench: [{}/{reps}] {:<32} {}", rep + 1, c.label, summary(o)),
        Err(e) => {
            eprintln!("bench: [{}/{reps}] {} FAILED: {e:#}", rep + 1, c.label);
            ctx.notes.push(format!("{} (repetition {}) failed: {e:#}", c.label, rep + 1));
        }
    }
    r.map_err(|e| format!("failed: {}", first_line(&format!("{e:#}"))))
}

/// A label as a file name in the scratch directory.
pub fn file_label(label: &str) -> String {
    label.replace([' ', '/', '(', ')'], "_")
}

/// perf-user's report warnings (single-stepped probes, the overhead guard, …): the first of each
/// kind ([`warning_kind`]), and how many others of that kind followed.
pub fn note_warnings(ctx: &mut Ctx, export: Option<&serde_json::Value>) {
    let warnings = export.and_then(|e| e.get("warnings")).and_then(|w| w.as_array());
    for w in warnings.into_iter().flatten().filter_map(|w| w.as_str()) {
        add_warning(&mut ctx.notes, &mut ctx.warned, w);
    }
}

fn add_warning(notes: &mut Vec<String>, warned: &mut Vec<Warned>, w: &str) {
    let kind = warning_kind(w);
    match warned.iter_mut().find(|k| k.kind == kind) {
        Some(k) if k.first == w => {}
        Some(k) => {
            k.more += 1;
            let s = if k.more == 1 { "" } else { "s" };
            notes[k.note] = format!("perf-user warned: {} (and {} other warning{s} of this kind)", k.first, k.more);
        }
        None => {
            warned.push(Warned { kind, note: notes.len(), first: w.to_owned(), more: 0 });
            notes.push(format!("perf-user warned: {w}"));
        }
    }
}

/// A warning's kind: its first three words with digits blanked ("overhead guard: detached",
/// "# of # probes"), which leave out the function and the figures that differ run to run.
fn warning_kind(w: &str) -> String {
    let words: Vec<&str> = w.split_whitespace().take(3).collect();
    words.join(" ").chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
}

pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(160).collect()
}

/// The progress line's figures of one run.
fn summary(o: &Outcome) -> String {
    let mut s = String::new();
    if let Some(t) = o.target {
        s.push_str(&format!("{:.1} ns/call ({}/s)", t.ns_per_call, thousands(t.calls_per_sec)));
    }
    if let Some(a) = o.attach_s {
        s.push_str(&format!(" attach {a:.3} s"));
    }
    if let Some(c) = o.tracer_cpu_pct {
        s.push_str(&format!(" tracer cpu {c:.1} %"));
    }
    if let Some(d) = o.detach_s {
        s.push_str(&format!(" detach {d:.3} s"));
    }
    s
}

/// Owned strings of a command line.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_of_one_kind_are_one_note_with_a_count() {
        let (mut notes, mut warned) = (vec!["a failed run".to_string()], Vec::new());
        for w in [
            "overhead guard: detached f::s001 (probes 30 % of a CPU)",
            "overhead guard: detached f::s002 (probes 31 % of a CPU)",
            "overhead guard: detached f::s001 (probes 30 % of a CPU)",
            "1 of 62 probes start on an instruction the kernel single-steps (21.0 µs)",
            "overhead guard: detached f::s003 (probes 29 % of a CPU)",
            "2 of 62 probes start on an instruction the kernel single-steps (35.0 µs)",
            "sampled: one outermost call in 10 was timed",
            "sampled: each call was timed with chance 1 in 10",
        ] {
            add_warning(&mut notes, &mut warned, w);
        }
        assert_eq!(
            notes,
            [
                "a failed run",
                "perf-user warned: overhead guard: detached f::s001 (probes 30 % of a CPU) (and 2 other warnings of this kind)",
                "perf-user warned: 1 of 62 probes start on an instruction the kernel single-steps (21.0 µs) (and 1 other warning of this kind)",
                "perf-user warned: sampled: one outermost call in 10 was timed",
                "perf-user warned: sampled: each call was timed with chance 1 in 10",
            ]
        );
    }
}
