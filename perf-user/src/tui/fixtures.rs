//! Synthetic sessions for the UI's tests and render benchmark: deterministic `Sample`s shaped like
//! target-app's pipeline (no kernel), fed through `App::handle` like the main loop does.

use perf_ebpf_common::{hist_bucket, hist_bucket_bounds};

use crate::{
    app::{App, Event},
    model::{
        Attribution, Bucket, BucketHist, CallPath, CalleeUse, Counters, Exemplar, FuncInfo, FuncSample, FuncSyscall,
        NestedCall, PathTotals, Sample, Session, SyscallSample, SyscallUse, ThreadFuncSample,
    },
    output::report::{RunInfo, Target},
};

/// target-app's stage names, then generated ones.
pub fn names(n: usize) -> Vec<FuncInfo> {
    const STAGES: [&str; 8] = [
        "target_app::feed::decode",
        "target_app::book::OrderBook::apply",
        "target_app::signal::Signal::update",
        "target_app::risk::RiskEngine::check",
        "target_app::matching::MatchingEngine::submit",
        "target_app::engine::Engine::on_message",
        "target_app::gateway::Gateway::send",
        "target_app::journal::Journal::append",
    ];
    (0..n)
        .map(|i| FuncInfo {
            id: i as u32,
            symbol: STAGES
                .get(i)
                .map_or_else(|| format!("target_app::strategy::Handler{i:02}::on_tick"), |s| s.to_string()),
            ..FuncInfo::default()
        })
        .collect()
}

pub fn run_info() -> RunInfo {
    RunInfo {
        target: Target { pid: 4242, exe: "/opt/demo/bin/target-app".into(), comm: "target-app".into() },
        thread_names: vec![(4243, "engine".into()), (4244, "gateway".into())],
        ..RunInfo::default()
    }
}

/// A histogram in the kernel's log-linear buckets from (value, count) pairs (test-only use of the
/// common crate: the bucket layout must be exactly the kernel's).
pub fn hist(points: &[(u64, u64)]) -> BucketHist {
    let mut h = BucketHist::default();
    for &(v, count) in points {
        let (low_ns, high_ns) = hist_bucket_bounds(hist_bucket(v));
        h.merge(&BucketHist { buckets: vec![Bucket { low_ns, high_ns, count }] });
    }
    h
}

/// The app before any sample.
pub fn empty_app(n: usize) -> App {
    App::new(Session::new(names(n), 200), run_info())
}

/// `n` functions after `ticks` one-second ticks: function i makes `(i % 6 + 1) * 500` calls/s of
/// about `base_i` ns with a tail that grows and shrinks over time (the sparkline moves), and
/// splits its time differently between own CPU, callees, syscalls and off-CPU.
pub fn app(n: usize, ticks: u64) -> App {
    ticked(empty_app(n), ticks)
}

/// `app`'s `ticks` one-second ticks given to an app of `n` functions built by the caller.
pub fn ticked(mut app: App, ticks: u64) -> App {
    let n = app.session.functions.len();
    let mut cumulative: Vec<FuncSample> =
        (0..n).map(|i| FuncSample { id: i as u32, ..FuncSample::default() }).collect();
    let mut func_syscalls: Vec<FuncSyscall> = Vec::new();
    let mut syscalls: Vec<SyscallSample> = Vec::new();
    let mut hits = 0u64;
    for t in 1..=ticks {
        let mut exemplars = Vec::new();
        for (i, f) in cumulative.iter_mut().enumerate() {
            let tick = FnTick::new(i, t);
            tick.add_to(f);
            hits += 2 * tick.calls;
            if tick.parts[2] > 0 || tick.parts[3] > 0 {
                tick.add_syscalls(i, &mut func_syscalls);
            }
            if i % 3 == 0 {
                exemplars.push(tick.slow_call(&app, i, t, n));
            }
        }
        syscall_tick(&mut syscalls);
        let mut sample = Sample {
            at_ns: t * 1_000_000_000,
            functions: cumulative.clone(),
            syscalls: syscalls.clone(),
            func_syscalls: func_syscalls.clone(),
            counters: Counters { probe_hits: hits, ..Counters::default() },
            ..Sample::default()
        };
        sample.threads = thread_rows(&cumulative);
        sample.call_paths = call_paths(n, t);
        app.handle(Event::Tick { sample, exemplars });
    }
    app
}

/// Function `i`'s calls in second `t`: `calls` of about `base` ns with a tail of `tail` times
/// that, split between own CPU, callees, syscalls and off-CPU in the proportions `parts`.
struct FnTick {
    calls: u64,
    base: u64,
    tail: u64,
    parts: [u64; 4],
    hist: BucketHist,
    wall: u64,
    attribution: Attribution,
}

impl FnTick {
    fn new(i: usize, t: u64) -> FnTick {
        let calls = (i as u64 % 6 + 1) * 500;
        let base = 800 * (1 + i as u64 % 7) * [2, 3, 5, 7, 11][i % 5] / 2;
        let tail = 3 + (t + i as u64) % 5;
        let points = [
            (base, calls * 60 / 100),
            (base * 6 / 5, calls * 30 / 100),
            (base * tail, calls * 9 / 100),
            (base * tail * 4, calls / 100),
        ];
        let wall: u64 = points.iter().map(|(v, c)| v * c).sum();
        let parts = [(i % 4) as u64 + 2, (i % 3) as u64, (i % 5 == 1) as u64 * 3, (i % 2) as u64 * 2];
        let sum: u64 = parts.iter().sum();
        let share = |k: usize| wall * parts[k] / sum;
        let attribution = Attribution {
            self_oncpu_ns: wall - share(1) - share(2) - share(3),
            callees_ns: share(1),
            syscalls_ns: share(2),
            offcpu_blocked_ns: share(3) * 3 / 4,
            offcpu_runqueue_ns: share(3) - share(3) * 3 / 4,
            ..Attribution::default()
        };
        FnTick { calls, base, tail, parts, hist: hist(&points), wall, attribution }
    }

    /// Adds this second to the function's cumulative sample.
    fn add_to(&self, f: &mut FuncSample) {
        f.count += self.calls;
        f.total_ns += self.wall;
        f.min_ns = self.base;
        f.max_ns = f.max_ns.max(self.base * self.tail * 4 + 17);
        f.total_hist.merge(&self.hist);
        f.self_hist.merge(&self.hist);
        f.attribution = add(&f.attribution, &self.attribution);
    }

    /// Adds its syscalls (clock_nanosleep, futex, write) inside function `i`.
    fn add_syscalls(&self, i: usize, func_syscalls: &mut Vec<FuncSyscall>) {
        for (nr, per_call) in [(230u32, 1u64), (202, 2), (1, 1)] {
            let count = self.calls * per_call;
            match func_syscalls.iter_mut().find(|s| s.fn_id == i as u32 && s.nr == nr) {
                Some(s) => {
                    s.count += count;
                    s.total_ns += count * 2_000 * u64::from(nr % 7 + 1);
                }
                None => func_syscalls.push(FuncSyscall {
                    fn_id: i as u32,
                    nr,
                    count,
                    total_ns: count * 2_000 * u64::from(nr % 7 + 1),
                }),
            }
        }
    }

    /// The slow call of function `i` in second `t` (function 0's names its two heaviest callees).
    fn slow_call(&self, app: &App, i: usize, t: u64, n: usize) -> Exemplar {
        let (base, tail, attribution, wall) = (self.base, self.tail, &self.attribution, self.wall);
        Exemplar {
            fn_id: i as u32,
            symbol: app.symbol(i as u32).to_string(),
            tid: 4243 + (i as u32 % 3),
            thread: ["engine", "gateway", ""][i % 3].to_string(),
            start_ns: t * 1_000_000_000 + i as u64,
            duration_ns: base * tail * 4 + t * 1000,
            attribution: with_callees(i, scale(attribution, base * tail * 4 + t * 1000, wall)),
            syscall_count: 3,
            syscalls: if self.parts[2] > 0 || self.parts[3] > 0 {
                vec![
                    SyscallUse { name: "clock_nanosleep".into(), count: 1, total_ns: base * tail * 2 },
                    SyscallUse { name: "write".into(), count: 2, total_ns: 4_000 },
                ]
            } else {
                vec![]
            },
            at_ns: t * 1_000_000_000 + i as u64 * 1_000_000,
            nested: nested_calls(app, i, t * 1_000_000_000 + i as u64 * 1_000_000, base * tail * 4),
            callees: if i == 0 && n > 2 {
                let callees = with_callees(i, scale(attribution, base * tail * 4 + t * 1000, wall)).callees_ns;
                vec![
                    CalleeUse { fn_id: 2, symbol: app.symbol(2).to_string(), count: 1, total_ns: callees * 9 / 10 },
                    CalleeUse { fn_id: 1, symbol: app.symbol(1).to_string(), count: 2, total_ns: callees / 20 },
                ]
            } else {
                Vec::new()
            },
            ..Exemplar::default()
        }
    }
}

/// One second of the syscall table: clock_nanosleep, futex (with errors) and write.
fn syscall_tick(syscalls: &mut Vec<SyscallSample>) {
    for (nr, count, errors, v) in [(230u32, 900u64, 0u64, 60_000u64), (202, 2400, 40, 3_000), (1, 700, 0, 9_000)] {
        let tick = SyscallSample {
            nr,
            count,
            errors,
            total_ns: count * v,
            max_ns: v * 20,
            hist: hist(&[(v, count * 95 / 100), (v * 20, count - count * 95 / 100)]),
            ..SyscallSample::default()
        };
        match syscalls.iter_mut().find(|s| s.nr == nr) {
            Some(s) => {
                s.count += tick.count;
                s.errors += tick.errors;
                s.total_ns += tick.total_ns;
                s.max_ns = tick.max_ns;
                s.hist.merge(&tick.hist);
            }
            None => syscalls.push(tick),
        }
    }
}

/// Two traced callees inside an exemplar of function `i` (the next two functions), the second
/// with a call of its own nested in it.
fn nested_calls(app: &App, i: usize, at_ns: u64, duration_ns: u64) -> Vec<NestedCall> {
    let n = app.session.functions.len();
    let call = |k: usize, depth: u32, from: u64, len: u64| NestedCall {
        fn_id: ((i + k) % n) as u32,
        symbol: app.symbol(((i + k) % n) as u32).to_string(),
        depth,
        at_ns: at_ns + from,
        duration_ns: len,
    };
    vec![
        call(1, 1, duration_ns / 10, duration_ns / 5),
        call(2, 2, duration_ns / 2, duration_ns / 8),
        call(2, 1, duration_ns / 2 - 100, duration_ns / 3),
    ]
}

/// `--per-thread` rows: each function on the engine thread, every other one also on the gateway's,
/// which waits for a CPU more often.
fn thread_rows(functions: &[FuncSample]) -> Vec<ThreadFuncSample> {
    let mut out = Vec::new();
    for f in functions {
        let split = |share: u64, runq: u64| {
            let mut a = f.attribution;
            a.offcpu_runqueue_ns = (a.offcpu_blocked_ns + a.offcpu_runqueue_ns) * runq / 4;
            ThreadFuncSample {
                tid: 0,
                fn_id: f.id,
                count: f.count * share / 4,
                total_ns: f.total_ns * share / 4,
                min_ns: f.min_ns,
                max_ns: f.max_ns,
                attribution: a,
            }
        };
        out.push(ThreadFuncSample { tid: 4243, ..split(if f.id % 2 == 0 { 3 } else { 4 }, 1) });
        if f.id % 2 == 0 {
            out.push(ThreadFuncSample { tid: 4244, ..split(1, 3) });
        }
    }
    out
}

fn add(a: &Attribution, b: &Attribution) -> Attribution {
    Attribution {
        self_oncpu_ns: a.self_oncpu_ns + b.self_oncpu_ns,
        callees_ns: a.callees_ns + b.callees_ns,
        syscalls_ns: a.syscalls_ns + b.syscalls_ns,
        offcpu_blocked_ns: a.offcpu_blocked_ns + b.offcpu_blocked_ns,
        offcpu_runqueue_ns: a.offcpu_runqueue_ns + b.offcpu_runqueue_ns,
        ..Attribution::default()
    }
}

/// `a` rescaled to sum to `to` (from `from`).
fn scale(a: &Attribution, to: u64, from: u64) -> Attribution {
    let s = |v: u64| (u128::from(v) * u128::from(to) / u128::from(from.max(1))) as u64;
    Attribution {
        self_oncpu_ns: s(a.self_oncpu_ns),
        callees_ns: s(a.callees_ns),
        syscalls_ns: s(a.syscalls_ns),
        offcpu_blocked_ns: s(a.offcpu_blocked_ns),
        offcpu_runqueue_ns: s(a.offcpu_runqueue_ns),
        ..Attribution::default()
    }
}

/// Extremes: calls in the last (unbounded) bucket, counts near the top of u64, values under 32 ns,
/// everything lost that can be.
pub fn saturated_app() -> App {
    let mut app = empty_app(3);
    let top = hist_bucket_bounds(hist_bucket(u64::MAX)).0;
    let huge = u64::MAX / 16;
    let quarter = u64::MAX / 8;
    let functions = vec![
        FuncSample {
            id: 0,
            count: huge,
            total_ns: u64::MAX / 2,
            min_ns: top,
            max_ns: u64::MAX / 2,
            attribution: Attribution {
                self_oncpu_ns: quarter,
                callees_ns: quarter,
                syscalls_ns: quarter,
                offcpu_blocked_ns: quarter,
                offcpu_runqueue_ns: 0,
                ..Attribution::default()
            },
            total_hist: hist(&[(u64::MAX, huge)]),
            ..FuncSample::default()
        },
        FuncSample {
            id: 1,
            count: 2_000_000_000_000,
            total_ns: u64::MAX / 4,
            min_ns: 900,
            max_ns: u64::MAX / 4,
            attribution: Attribution { offcpu_blocked_ns: quarter, ..Attribution::default() },
            total_hist: hist(&[(1_000, 1_999_000_000_000), (u64::MAX, 1_000_000_000)]),
            ..FuncSample::default()
        },
        FuncSample {
            id: 2,
            count: 40,
            total_ns: 200,
            min_ns: 3,
            max_ns: 7,
            attribution: Attribution { self_oncpu_ns: 200, ..Attribution::default() },
            total_hist: hist(&[(3, 10), (5, 20), (7, 10)]),
            ..FuncSample::default()
        },
    ];
    let lost = crate::model::Lost {
        ringbuf_full: u64::MAX / 1000,
        thread_map_full: 12,
        depth_overflow: 3_456_789,
        orphan_return: 5,
        orphan_entry: 6,
        attr_map_full: 7,
        exemplars_evicted: 0,
        span_unmatched: 0,
        switch_in_unseen: 0,
    };
    // Every call in the last second, as the probe hits are.
    for t in 1..=2u64 {
        let sample = Sample {
            at_ns: t * 1_000_000_000,
            functions: if t == 1 { Vec::new() } else { functions.clone() },
            counters: Counters { probe_hits: t * 4_000_000_000, lost, ..Counters::default() },
            ..Sample::default()
        };
        app.handle(Event::Tick { sample, exemplars: vec![] });
    }
    app
}

/// Three of target-app's functions in its executable, and function 1's symbol again in the library
/// at `lib_object`, loaded after attach as function 3; returns the app and that symbol.
pub fn one_symbol_in_two_objects(lib_object: &str) -> (App, String) {
    let info = run_info();
    let mut funcs = names(3);
    for f in &mut funcs {
        f.object = info.target.exe.clone();
    }
    let symbol = funcs[1].symbol.clone();
    let mut app = App::new(Session::new(funcs, 200), info);
    let lib = FuncInfo { id: 3, symbol: symbol.clone(), object: lib_object.into(), ..FuncInfo::default() };
    app.handle(Event::FunctionsAdded { functions: vec![lib], note: "library loaded".into() });
    (app, symbol)
}

/// target-app's pipeline with two `--span`s after ten one-second ticks: `tick_to_trade` matches
/// almost every start (a slow tail of 40–900 µs, three slow spans kept), `lonely` loses starts
/// and sees ends without a start.
pub fn span_app() -> App {
    use crate::model::{SpanEnds, SpanInfo, SpanSample};
    let mut app = app(3, 1);
    let functions = app.session.latest().map(|s| s.functions.clone()).unwrap_or_default();
    app.session.spans = vec![
        SpanInfo {
            id: 0,
            name: "tick_to_trade".into(),
            from: "target_app::feed::decode(arg1+8)".into(),
            to: "target_app::gateway::Gateway::send(arg1+16)".into(),
        },
        SpanInfo { id: 1, name: "lonely".into(), from: "a(arg0)".into(), to: "b(ret)".into() },
    ];
    for t in 2..=10u64 {
        let spans = vec![
            SpanSample {
                row: FuncSample {
                    id: 0,
                    calls: 1000 * t,
                    count: 998 * t,
                    total_ns: 998 * t * 45_000,
                    max_ns: 900_000,
                    total_hist: hist(&[(40_000, 950 * t), (90_000, 47 * t), (900_000, t)]),
                    ..FuncSample::default()
                },
                starts: 1000 * t,
                pending: 2,
                ..SpanSample::default()
            },
            SpanSample {
                row: FuncSample {
                    id: 1,
                    calls: 50 * t,
                    count: 10 * t,
                    total_ns: 10 * t * 2_000,
                    max_ns: 3_000,
                    total_hist: hist(&[(2_000, 10 * t)]),
                    ..FuncSample::default()
                },
                starts: 50 * t,
                starts_replaced: 15 * t,
                ends_without_start: 3 * t,
                ..SpanSample::default()
            },
        ];
        let slow = |i: u64| Exemplar {
            symbol: "tick_to_trade".into(),
            tid: 4244,
            thread: "gateway".into(),
            duration_ns: 300_000 * i,
            at_ns: t * 1_000_000_000 - 500_000_000,
            span: Some(SpanEnds { key: 7000 + t * 10 + i, start_tid: 4243, start_thread: "engine".into() }),
            ..Exemplar::default()
        };
        let exemplars = if t % 3 == 0 { vec![slow(t / 3)] } else { Vec::new() };
        let sample = Sample { at_ns: t * 1_000_000_000, functions: functions.clone(), spans, ..Sample::default() };
        app.handle(Event::Tick { sample, exemplars });
    }
    app
}

/// Cumulative call paths after `t` ticks, for `n` ≥ 5 functions: 0 calls 1 and 2, 2 calls 3,
/// 4 (a second root) calls 3 too: one function on two paths.
pub fn call_paths(n: usize, t: u64) -> Vec<CallPath> {
    if n < 5 {
        return Vec::new();
    }
    // (id, parent, fn, depth, calls a tick, ns a call, own share of 10)
    let shape: [(u64, u64, u32, u32, u64, u64, u64); 5] = [
        (10, 0, 0, 0, 500, 40_000, 2),
        (11, 10, 1, 1, 500, 6_000, 10),
        (12, 10, 2, 1, 500, 25_000, 4),
        (13, 12, 3, 2, 1000, 7_000, 10),
        (14, 0, 4, 0, 200, 9_000, 3),
    ];
    shape
        .iter()
        .map(|&(id, parent, fn_id, depth, calls, ns, own)| {
            let count = calls * t;
            let total_ns = count * ns;
            let self_oncpu_ns = total_ns * own / 10;
            CallPath {
                id,
                parent,
                fn_id,
                parent_fn_id: 0,
                depth,
                totals: PathTotals {
                    calls: count,
                    total_ns,
                    self_oncpu_ns,
                    callees_ns: total_ns - self_oncpu_ns,
                    ..PathTotals::default()
                },
            }
        })
        .chain(std::iter::once(CallPath {
            id: 15,
            parent: 14,
            fn_id: 3,
            depth: 1,
            totals: PathTotals {
                calls: 200 * t,
                total_ns: 200 * t * 6_300,
                self_oncpu_ns: 200 * t * 6_300,
                ..PathTotals::default()
            },
            ..CallPath::default()
        }))
        .collect()
}

/// Function 0's slow calls spend most of their own time in traced callees (the exemplars' callee
/// columns and "Heaviest callees" have something to show).
fn with_callees(i: usize, mut a: Attribution) -> Attribution {
    if i == 0 {
        let moved = a.self_oncpu_ns * 9 / 10;
        a.self_oncpu_ns -= moved;
        a.callees_ns += moved;
    }
    a
}
