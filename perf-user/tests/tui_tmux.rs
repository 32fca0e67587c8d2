//! End to end: the real binary's terminal UI inside tmux, attached to a running target-app. It
//! must draw the traced functions with their percentiles, quit on `q`, and give the terminal back.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use common::*;

/// How long perf-user may take to attach and draw its first numbers: generous, since a loaded
/// machine running other traced tests at once slows attaching.
const UI_TIMEOUT: Duration = Duration::from_secs(60);

/// A tmux server of our own (`-L`, no config): nothing of the user's tmux is touched, and
/// dropping it kills the server with everything in it, also when the test fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Tmux { socket: format!("perf-user-{name}-{}-{nanos}", std::process::id()) }
    }

    /// Starts `cmd` in a detached session `ui` of `width`×`height`; with `keep_pane` the pane
    /// stays after `cmd` exits (set in the same command list, before it possibly can), so its
    /// last screen can be read.
    fn start(name: &str, width: u16, height: u16, cmd: &str, keep_pane: bool) -> Tmux {
        let tmux = Tmux::new(name);
        let (w, h) = (width.to_string(), height.to_string());
        let mut args = vec!["new-session", "-d", "-x", &w, "-y", &h, "-s", "ui", cmd];
        if keep_pane {
            args.extend([";", "set-option", "-t", "ui", "remain-on-exit", "on"]);
        }
        tmux.ok(&args);
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux {args:?}: {e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-t", "ui"])
    }

    fn display(&self, format: &str) -> String {
        self.ok(&["display-message", "-p", "-t", "ui", format]).trim().to_string()
    }

    /// Polls until `done` holds for the value of `probe`, or panics with the last value and the screen.
    fn wait<T: std::fmt::Debug>(
        &self,
        what: &str,
        timeout: Duration,
        probe: impl Fn(&Tmux) -> T,
        done: impl Fn(&T) -> bool,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let v = probe(self);
            if done(&v) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("{what}: not within {timeout:?}; last {v:?}; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn tui_shows_functions_quits_on_q_and_restores_the_terminal() {
    if !bpf_available("tui_shows_functions_quits_on_q_and_restores_the_terminal") {
        return;
    }
    let dir = TempDir::new("tui-tmux");
    let app = TargetApp::start(&dir, &["--rate", "5000"]);
    // The shell line after perf-user shows its exit status in the pane once the UI is gone.
    let cmd = format!(
        "'{PERF_USER}' attach --pid {} --func 'target_app::book::*' --func 'target_app::risk::*'; echo \"perf-user exited with $?\"",
        app.pid
    );
    let tmux = Tmux::start("tui", 160, 45, &cmd, true);

    // The UI: header, both traced modules, and latencies in µs once the first calls are counted.
    let screen =
        tmux.wait("the UI showing book and risk functions with µs percentiles", UI_TIMEOUT, Tmux::screen, |s| {
            s.contains("pid ") && s.contains("OrderBook") && s.contains("RiskEngine") && s.contains("µs")
        });
    assert!(screen.contains("p99"), "percentile columns:\n{screen}");
    assert!(screen.contains("? help"), "key hints in the footer:\n{screen}");
    assert_eq!(tmux.display("#{alternate_on}"), "1", "the UI runs on the alternate screen");

    tmux.ok(&["send-keys", "-t", "ui", "q"]);
    tmux.wait("perf-user to exit after q", Duration::from_secs(15), |t| t.display("#{pane_dead}"), |d| d == "1");
    let after = tmux.screen();
    assert!(after.contains("perf-user exited with 0"), "exit status:\n{after}");
    assert_eq!(tmux.display("#{alternate_on}"), "0", "alternate screen left:\n{after}");
    assert!(!after.contains("? help"), "the UI is gone from the restored screen:\n{after}");
    // What is left is the text report, printed after the terminal was restored.
    assert!(after.contains("OrderBook"), "the final report:\n{after}");

    // Detached cleanly: the target keeps running.
    assert!(perf_user::target::proc::exists(app.pid), "target-app still alive");
}

#[test]
fn tui_q_closes_the_help_and_e_writes_a_numbered_snapshot_where_the_footer_says() {
    // Regressions (issue 18): `q` quit from inside the help, which says any key closes it; `e`
    // without --export wrote nothing.
    if !bpf_available("tui_q_closes_the_help_and_e_writes_a_numbered_snapshot_where_the_footer_says") {
        return;
    }
    let dir = TempDir::new("tui-keys");
    let app = TargetApp::start(&dir, &["--rate", "2000"]);
    let cmd = format!(
        "cd '{}' && '{PERF_USER}' attach --pid {} --func 'target_app::book::*'; echo \"perf-user exited with $?\"",
        dir.0.display(),
        app.pid
    );
    let tmux = Tmux::start("keys", 80, 24, &cmd, true);
    tmux.wait("the UI", UI_TIMEOUT, Tmux::screen, |s| s.contains("OrderBook") && s.contains("? help"));

    tmux.ok(&["send-keys", "-t", "ui", "?"]);
    tmux.wait("the help", Duration::from_secs(5), Tmux::screen, |s| s.contains("any key closes it"));
    tmux.ok(&["send-keys", "-t", "ui", "q"]);
    let screen =
        tmux.wait("the help closed", Duration::from_secs(5), Tmux::screen, |s| !s.contains("any key closes it"));
    assert_eq!(tmux.display("#{pane_dead}"), "0", "q closed the help and did not quit:\n{screen}");

    tmux.ok(&["send-keys", "-t", "ui", "e"]);
    let name = format!("perf-user-{}.snapshot-1.json", app.pid);
    let screen = tmux.wait("the footer naming the snapshot", Duration::from_secs(5), Tmux::screen, |s| {
        s.contains("snapshot written to") && s.contains("? help")
    });
    assert!(screen.contains(&format!("perf-user-{}.snapshot-1", app.pid)), "{screen}");
    let snapshot: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}\n{screen}")))
            .unwrap();
    assert_eq!(snapshot["end_reason"], "running");

    tmux.ok(&["send-keys", "-t", "ui", "q"]);
    tmux.wait("perf-user to exit after q", Duration::from_secs(15), |t| t.display("#{pane_dead}"), |d| d == "1");
    assert!(tmux.screen().contains("perf-user exited with 0"), "{}", tmux.screen());
}

/// Opens the breakdown (Enter) of the slowest call that slept or spent time in a traced callee,
/// walking down the slow calls sorted by duration. A call slower than every injected sleep can be real (the first call after
/// attach faults its pages in: hundreds of µs of own CPU); the test is about the breakdown of one
/// that slept.
fn slowest_sleeping_call_breakdown(tmux: &Tmux) -> String {
    for _ in 0..20 {
        tmux.ok(&["send-keys", "-t", "ui", "Enter"]);
        let detail = tmux.wait("the breakdown of a slow call", Duration::from_secs(10), Tmux::screen, |s| {
            s.contains("Slow call:") && s.contains("run queue")
        });
        let callees = detail.lines().find(|l| l.contains("  callees ")).unwrap_or_default();
        if detail.contains("clock_nanosleep") || !callees.contains(" 0%") {
            return detail;
        }
        tmux.ok(&["send-keys", "-t", "ui", "Escape"]);
        tmux.wait("the breakdown closed", Duration::from_secs(10), Tmux::screen, |s| !s.contains("Slow call:"));
        tmux.ok(&["send-keys", "-t", "ui", "Down"]);
    }
    panic!("none of the 20 slowest calls slept or called a traced function:\n{}", tmux.screen());
}

/// Investigating a spike end to end: the heatmap of the selected function (`h`), then the slow
/// calls (`Shift-Tab` twice), sorted by duration (`s`), and one call's breakdown (Enter) with
/// off-CPU split into blocked and run queue; any key closes it. Then the call tree (`Tab`): `l` to
/// the heaviest callee, `u` back up, Enter folds.
#[test]
fn tui_heatmap_and_slow_call_breakdown() {
    if !bpf_available("tui_heatmap_and_slow_call_breakdown") {
        return;
    }
    let dir = TempDir::new("tui-slow");
    let app = TargetApp::start(&dir, &["--rate", "5000", "--inject", "risk_check=sleep:200us:every:20"]);
    let cmd = format!(
        "'{PERF_USER}' attach --pid {} --func 'target_app::risk::*' --func 'target_app::engine::Engine::on_message' --slow 150us",
        app.pid
    );
    let tmux = Tmux::start("slow", 120, 40, &cmd, false);
    tmux.wait("the functions table", UI_TIMEOUT, Tmux::screen, |s| s.contains("RiskEngine") && s.contains("µs"));

    tmux.ok(&["send-keys", "-t", "ui", "h"]);
    let heat = tmux.wait("the latency heatmap with shaded cells", Duration::from_secs(10), Tmux::screen, |s| {
        s.contains("latency over time") && s.contains("now") && s.chars().any(|c| "░▒▓".contains(c))
    });
    assert!(heat.contains("µs"), "a latency axis:\n{heat}");
    tmux.ok(&["send-keys", "-t", "ui", "h"]);
    tmux.wait("the detail pane back", Duration::from_secs(10), Tmux::screen, |s| s.contains("Where the time goes"));

    tmux.ok(&["send-keys", "-t", "ui", "BTab", "BTab", "s"]);
    tmux.wait("slow calls sorted by duration", Duration::from_secs(20), Tmux::screen, |s| {
        s.contains("sort dur") && s.contains("clock_nanosleep")
    });
    let detail = slowest_sleeping_call_breakdown(&tmux);
    assert!(detail.contains("blocked") && detail.contains("Thread") && detail.contains("engine"), "{detail}");
    assert!(detail.contains("Syscalls (") && detail.contains("Traced calls inside"), "its sections:\n{detail}");
    // Such a call is the sleeping risk check, or an on_message around it that names it.
    assert!(detail.contains("RiskEngine::check"), "the call or its traced callee:\n{detail}");
    tmux.ok(&["send-keys", "-t", "ui", "Escape"]);
    tmux.wait("the breakdown closed", Duration::from_secs(10), Tmux::screen, |s| !s.contains("Slow call:"));

    // The call tree (Tab from the slow calls): on_message at the top with the risk check folded
    // out under it; `l` goes to the heaviest callee, `u` back, Enter folds.
    tmux.ok(&["send-keys", "-t", "ui", "Tab"]);
    let selected = |s: &str| s.lines().find(|l| l.contains('▶')).unwrap_or_default().to_string();
    let tree = tmux.wait("the call tree", Duration::from_secs(10), Tmux::screen, |s| {
        s.contains("▸Tree") && s.contains("Parent%") && s.contains("▾ target_app::engine::Engine::on_message")
    });
    assert!(selected(&tree).contains("Engine::on_message"), "the cursor starts on the root:\n{tree}");
    // Indented under on_message (a check running when perf-user attached has no traced caller: a
    // root of its own, two spaces less).
    let nested = "│      target_app::risk::RiskEngine::check";
    assert!(tree.contains(nested), "the check indented under it:\n{tree}");
    tmux.ok(&["send-keys", "-t", "ui", "l"]);
    tmux.wait("l: the heaviest callee", Duration::from_secs(10), Tmux::screen, |s| {
        selected(s).contains("RiskEngine::check")
    });
    tmux.ok(&["send-keys", "-t", "ui", "u", "Enter"]);
    let folded = tmux.wait("u then Enter: the root folded", Duration::from_secs(10), Tmux::screen, |s| {
        selected(s).contains("▸ target_app::engine::Engine::on_message")
    });
    assert!(!folded.contains(nested), "its callees hidden:\n{folded}");
    tmux.ok(&["send-keys", "-t", "ui", "q"]);
}

/// `--span` in the UI: Shift-Tab from the functions reaches the spans view (it is on offer only
/// with spans); the selected span's detail draws its histogram with percentiles, its matching and
/// its slowest spans with key and both threads (feed → gateway); ↓ selects the next span.
#[test]
fn tui_spans_view_selects_a_span_and_draws_its_detail() {
    use target_app::tick::{FEED_RECEIVE, NEXT_SEQ, ORDER_SENT, TICKET_SEQ_OFFSET};
    if !bpf_available("tui_spans_view_selects_a_span_and_draws_its_detail") {
        return;
    }
    let dir = TempDir::new("tui-spans");
    let app = TargetApp::start(&dir, &["--rate", "5000"]);
    let cmd = format!(
        "'{PERF_USER}' attach --pid {} --func 'target_app::risk::*' --span 'tick={FEED_RECEIVE}(arg0)..{ORDER_SENT}(arg0+{TICKET_SEQ_OFFSET})' --span 'by_ret={NEXT_SEQ}(ret)..{ORDER_SENT}(arg0+{TICKET_SEQ_OFFSET})'",
        app.pid
    );
    let tmux = Tmux::start("spans", 120, 40, &cmd, false);
    tmux.wait("the functions with the span table under them", UI_TIMEOUT, Tmux::screen, |s| {
        s.contains("RiskEngine") && s.contains("Spans (FROM..TO")
    });
    tmux.ok(&["send-keys", "-t", "ui", "BTab"]);
    let selected = |s: &str| s.lines().find(|l| l.contains('▶')).unwrap_or_default().to_string();
    let slow_span = |s: &str| s.lines().find(|l| l.contains(" key ") && l.contains(" → ")).map(str::to_string);
    let view = tmux.wait("the spans view with a slow span kept", Duration::from_secs(30), Tmux::screen, |s| {
        s.contains("▸Spans (2)") && s.contains("tick · window") && s.contains("p99.9") && slow_span(s).is_some()
    });
    assert!(selected(&view).contains("tick"), "the cursor on the first span:\n{view}");
    assert!(view.contains(&format!("From {FEED_RECEIVE}(arg0)")), "its FROM end:\n{view}");
    assert!(view.contains(" starts · ") && view.contains(" matched · "), "its matching:\n{view}");
    let slow = slow_span(&view).unwrap_or_default();
    assert!(slow.contains("feed") && slow.contains("gateway"), "a slow span's two threads:\n{view}");
    tmux.ok(&["send-keys", "-t", "ui", "Down"]);
    let next =
        tmux.wait("↓: the second span", Duration::from_secs(10), Tmux::screen, |s| s.contains("by_ret · window"));
    assert!(selected(&next).contains("by_ret"), "{next}");
    tmux.ok(&["send-keys", "-t", "ui", "q"]);
}

/// Kills a fixture on drop, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One function name in two objects, end to end: a C program and the library it loads each
/// define `shl_work`. The functions table shows two rows named by their object
/// (`twin_main:shl_work`, `libshfix.so:shl_work`); selecting the library's, the detail pane names
/// that row and says its object; the call tree names both the same way.
#[test]
fn one_name_in_two_objects_is_two_rows_named_by_their_object() {
    const MAIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/twin_main.c");
    const LIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/shlib_lib.c");
    let test = "one_name_in_two_objects_is_two_rows_named_by_their_object";
    if !bpf_available(test) || !tool_available(test, "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("tui-twins");
    let (exe, lib) = (dir.join("twin_main"), dir.join("libshfix.so"));
    for (out, src, extra) in [(&exe, MAIN, &["-ldl"][..]), (&lib, LIB, &["-shared", "-fPIC"][..])] {
        let built = Command::new("cc")
            .args(["-O2", "-fcf-protection=none", "-o"])
            .arg(out)
            .arg(src)
            .args(extra)
            .output()
            .expect("run cc");
        assert!(built.status.success(), "cc {src}: {}", String::from_utf8_lossy(&built.stderr));
    }
    let (child, _lines) = spawn_ready(Command::new(&exe).arg(&lib).arg("60"));
    let fixture = Killed(child);
    let cmd = format!("'{PERF_USER}' attach --pid {} --func shl_work --func 'libshfix.so:shl_work'", fixture.0.id());
    let tmux = Tmux::start("twins", 160, 45, &cmd, false);
    let row = |s: &str, name: &str| s.lines().any(|l| l.contains(name) && l.contains("µs"));
    let table = tmux.wait("two shl_work rows with latencies", UI_TIMEOUT, Tmux::screen, |s| {
        row(s, "libshfix.so:shl_work") && row(s, "twin_main:shl_work")
    });
    assert!(table.contains("Functions (2/2)"), "two functions:\n{table}");
    // Move the cursor to the library's row; the detail pane names it and its object.
    let selected = |s: &str| s.lines().find(|l| l.contains('▶')).unwrap_or_default().to_string();
    if !selected(&table).contains("libshfix.so:") {
        tmux.ok(&["send-keys", "-t", "ui", "Down"]);
    }
    let detail = tmux.wait("the library's row selected", Duration::from_secs(10), Tmux::screen, |s| {
        selected(s).contains("libshfix.so:shl_work")
    });
    assert!(
        detail.lines().any(|l| l.contains("libshfix.so:shl_work · window") && l.contains("in libshfix.so")),
        "the detail pane names the row and its object:\n{detail}"
    );
    tmux.ok(&["send-keys", "-t", "ui", "BTab"]);
    let tree = tmux.wait("the call tree", Duration::from_secs(10), Tmux::screen, |s| s.contains("▸Tree"));
    assert!(tree.contains("libshfix.so:shl_work"), "the tree names the library's function:\n{tree}");
    assert!(tree.contains("twin_main:shl_work"), "and the executable's by its own:\n{tree}");
    tmux.ok(&["send-keys", "-t", "ui", "q"]);
}
