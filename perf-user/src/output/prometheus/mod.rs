//! `attach --prometheus ADDR:PORT`: the report as Prometheus text exposition (format 0.0.4), and
//! (`server`) a minimal HTTP/1.1 server for `GET /metrics`. The main loop renders; the server only
//! copies the latest text out of a `watch` channel, so it shares no state with the tracer.

use std::fmt::Write as _;

use crate::output::report::{BucketCount, FunctionReport, Report};

mod server;

pub use server::{MAX_CONNECTIONS, PromError, bind, spawn};

/// Fixed `le` ladder (ns) of every latency histogram: 1-2-5 steps from 100 ns to 100 s, 28 bounds
/// plus `+Inf`. Our own buckets are 1/32 of a power of two wide; each lands in the first bound at
/// or above its upper end, so a value may be counted up to 1/32 above its true ladder bucket.
pub const LADDER_NS: [u64; 28] = {
    let mut l = [0u64; 28];
    let mut decade = 100u64;
    let mut i = 0;
    while i < 27 {
        l[i] = decade;
        l[i + 1] = 2 * decade;
        l[i + 2] = 5 * decade;
        decade *= 10;
        i += 3;
    }
    l[27] = decade;
    l
};

/// Kernel statistics of one of our BPF programs, from `/proc/self/fdinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgStats {
    pub prog_id: u32,
    pub prog_type: u32,
    /// Both stay 0 unless `kernel.bpf_stats_enabled` is 1.
    pub run_time_ns: u64,
    pub run_cnt: u64,
    /// Runs the kernel skipped because the program was already running on that CPU (its
    /// recursion guard): events the books never saw (counted whatever `bpf_stats_enabled` says).
    pub recursion_misses: u64,
}

/// The tool's own health that the report does not hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    pub programs: Vec<ProgStats>,
    /// `/proc/sys/kernel/bpf_stats_enabled`, when readable.
    pub bpf_stats_enabled: Option<bool>,
}

/// Reads our BPF programs' run counts and times (what `bpftool prog show` prints) from the
/// fdinfo of this process's program fds.
pub fn health() -> Health {
    let mut programs = Vec::new();
    for text in crate::target::proc::bpf_prog_fdinfos(std::process::id()) {
        let p = parse_fdinfo(&text);
        if p.prog_id != 0 && !programs.iter().any(|q: &ProgStats| q.prog_id == p.prog_id) {
            programs.push(p);
        }
    }
    programs.sort_by_key(|p| p.prog_id);
    let bpf_stats_enabled = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").ok().map(|s| s.trim() != "0");
    Health { programs, bpf_stats_enabled }
}

fn parse_fdinfo(text: &str) -> ProgStats {
    let mut p = ProgStats::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k {
            "prog_id" => p.prog_id = v.parse().unwrap_or(0),
            "prog_type" => p.prog_type = v.parse().unwrap_or(0),
            "run_time_ns" => p.run_time_ns = v.parse().unwrap_or(0),
            "run_cnt" => p.run_cnt = v.parse().unwrap_or(0),
            "recursion_misses" => p.recursion_misses = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    p
}

fn prog_type_name(t: u32) -> String {
    match t {
        2 => "kprobe".into(),
        5 => "tracepoint".into(),
        7 => "perf_event".into(),
        17 => "raw_tracepoint".into(),
        26 => "tracing".into(),
        t => t.to_string(),
    }
}

/// Label values escape `\`, `"` and newlines (exposition format 0.0.4).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn secs(ns: u64) -> String {
    format!("{}", ns as f64 / 1e9)
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Cumulative counts at each ladder bound, then the total for `+Inf`.
pub fn ladder_counts(buckets: &[BucketCount]) -> ([u64; LADDER_NS.len()], u64) {
    let mut per = [0u64; LADDER_NS.len()];
    let mut total = 0u64;
    for b in buckets {
        total += b.count;
        if let Some(i) = LADDER_NS.iter().position(|&bound| b.le_ns <= bound) {
            per[i] += b.count;
        }
    }
    let mut cum = 0;
    for c in &mut per {
        cum += *c;
        *c = cum;
    }
    (per, total)
}

fn histogram(o: &mut String, name: &str, labels: &str, buckets: &[BucketCount], sum_ns: u64) {
    let (cum, total) = ladder_counts(buckets);
    for (bound, c) in LADDER_NS.iter().zip(cum) {
        let _ = writeln!(o, "{name}_bucket{{{labels},le=\"{}\"}} {c}", secs(*bound));
    }
    let _ = writeln!(o, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(o, "{name}_sum{{{labels}}} {}", secs(sum_ns));
    let _ = writeln!(o, "{name}_count{{{labels}}} {total}");
}

/// `--span`: per span a latency histogram, its starts and what matching lost; nothing without spans.
fn spans(o: &mut String, r: &Report, target: &str) {
    if r.spans.is_empty() {
        return;
    }
    let labels = |name: &str| format!("span=\"{}\",{target}", esc(name));
    header(o, "perf_ebpf_span_latency_seconds", "histogram", "Latency from a span's FROM to its TO, matched by key.");
    for s in &r.spans {
        histogram(o, "perf_ebpf_span_latency_seconds", &labels(&s.row.symbol), &s.row.buckets, s.row.total_ns);
    }
    header(o, "perf_ebpf_span_starts_total", "counter", "FROM hits: span starts stored.");
    for s in &r.spans {
        let _ = writeln!(o, "perf_ebpf_span_starts_total{{{}}} {}", labels(&s.row.symbol), s.row.calls);
    }
    header(o, "perf_ebpf_span_unmatched_total", "counter", "Starts evicted or replaced, plus ends without a start.");
    for s in &r.spans {
        let _ = writeln!(
            o,
            "perf_ebpf_span_unmatched_total{{{}}} {}",
            labels(&s.row.symbol),
            s.starts_lost + s.ends_without_start
        );
    }
    header(o, "perf_ebpf_span_pending", "gauge", "Starts waiting for their end (bounded by --span-keys).");
    for s in &r.spans {
        let _ = writeln!(o, "perf_ebpf_span_pending{{{}}} {}", labels(&s.row.symbol), s.pending);
    }
}

/// The whole exposition: per function a latency histogram, attribution counters and syscalls made
/// while innermost; per syscall a latency histogram and counts; then the tool's health.
/// The whole exposition: per function a latency histogram, attribution counters and syscalls made
/// while innermost; per syscall a latency histogram and counts; then the tool's health.
pub fn render(r: &Report, h: &Health) -> String {
    let mut o = String::with_capacity(4096 + r.functions.len() * 4096);
    let target = format!("pid=\"{}\",comm=\"{}\"", r.target.pid, esc(&r.target.comm));
    // `object` keeps two functions of one name in two objects two series.
    let fn_labels =
        |f: &FunctionReport| format!("function=\"{}\",object=\"{}\",{target}", esc(&f.symbol), esc(&f.object));
    info_metrics(&mut o, r, &target);
    function_metrics(&mut o, r, &fn_labels);
    function_syscall_metrics(&mut o, r, &fn_labels);
    spans(&mut o, r, &target);
    syscall_metrics(&mut o, r, &target);
    health_metrics(&mut o, r, &target);
    bpf_program_metrics(&mut o, h);
    o
}

/// The traced process and the tool, and how long it has been traced.
fn info_metrics(o: &mut String, r: &Report, target: &str) {
    header(o, "perf_ebpf_info", "gauge", "Always 1; labels describe the traced process and the tool.");
    let _ =
        writeln!(o, "perf_ebpf_info{{{target},exe=\"{}\",version=\"{}\"}} 1", esc(&r.target.exe), esc(&r.tool.version));
    header(o, "perf_ebpf_traced_seconds", "gauge", "Time since attach (or since the last reset).");
    let _ = writeln!(o, "perf_ebpf_traced_seconds{{{target}}} {}", secs(r.duration_ns));
}

/// Per function: the latency histogram and where its wall time went.
fn function_metrics(o: &mut String, r: &Report, fn_labels: &dyn Fn(&FunctionReport) -> String) {
    header(o, "perf_ebpf_function_latency_seconds", "histogram", "Wall time per call of a traced function.");
    for f in &r.functions {
        histogram(o, "perf_ebpf_function_latency_seconds", &fn_labels(f), &f.buckets, f.attribution.parts.total_ns());
    }
    header(
        o,
        "perf_ebpf_function_attribution_seconds_total",
        "counter",
        "Where the calls' wall time went; the parts sum to the wall time (docs/EXPORT.md).",
    );
    for f in &r.functions {
        let a = &f.attribution.parts;
        let l = fn_labels(f);
        let interference = [("irq", a.irq_ns), ("softirq", a.softirq_ns), ("steal", a.steal_ns)];
        let parts = [
            ("self_oncpu", a.self_oncpu_ns),
            ("callees", a.callees_ns),
            ("syscalls", a.syscalls_ns),
            ("offcpu_blocked", a.offcpu_blocked_ns),
            ("offcpu_runqueue", a.offcpu_runqueue_ns),
        ];
        // The three interference parts only when measured: absent is "not split", 0 is "none".
        let measured = if r.interference { &interference[..] } else { &[] };
        for (part, ns) in parts.iter().chain(measured) {
            let _ = writeln!(o, "perf_ebpf_function_attribution_seconds_total{{{l},part=\"{part}\"}} {}", secs(*ns));
        }
    }
    if r.interference {
        interference_counts(o, r, &fn_labels);
    }
}

/// Per function: the syscalls made while it was the innermost traced frame, counts and time.
fn function_syscall_metrics(o: &mut String, r: &Report, fn_labels: &dyn Fn(&FunctionReport) -> String) {
    header(
        o,
        "perf_ebpf_function_syscalls_total",
        "counter",
        "Syscalls made while the function was the innermost traced frame.",
    );
    for f in &r.functions {
        for s in &f.attribution.syscalls {
            let _ = writeln!(
                o,
                "perf_ebpf_function_syscalls_total{{{},syscall=\"{}\"}} {}",
                fn_labels(f),
                esc(&s.name),
                s.count
            );
        }
    }
    header(
        o,
        "perf_ebpf_function_syscall_seconds_total",
        "counter",
        "Wall time of those syscalls (off-CPU time inside them included).",
    );
    for f in &r.functions {
        for s in &f.attribution.syscalls {
            let _ = writeln!(
                o,
                "perf_ebpf_function_syscall_seconds_total{{{},syscall=\"{}\"}} {}",
                fn_labels(f),
                esc(&s.name),
                secs(s.total_ns)
            );
        }
    }
}

/// Per syscall: latency histogram, count and errors.
fn syscall_metrics(o: &mut String, r: &Report, target: &str) {
    let sys_labels = |name: &str| format!("syscall=\"{}\",{target}", esc(name));
    header(o, "perf_ebpf_syscall_latency_seconds", "histogram", "Latency of the target's completed syscalls.");
    for s in &r.syscalls {
        histogram(o, "perf_ebpf_syscall_latency_seconds", &sys_labels(&s.name), &s.buckets, s.total_ns);
    }
    header(o, "perf_ebpf_syscalls_total", "counter", "Syscalls entered by the target.");
    for s in &r.syscalls {
        let _ = writeln!(o, "perf_ebpf_syscalls_total{{{}}} {}", sys_labels(&s.name), s.latency.count);
    }
    header(o, "perf_ebpf_syscall_errors_total", "counter", "Syscalls that returned an error.");
    for s in &r.syscalls {
        let _ = writeln!(o, "perf_ebpf_syscall_errors_total{{{}}} {}", sys_labels(&s.name), s.errors);
    }
}

/// The tool's own health: probe hits, losses by kind, warnings.
fn health_metrics(o: &mut String, r: &Report, target: &str) {
    header(o, "perf_ebpf_probe_hits_total", "counter", "Probe hits (function entries and returns).");
    let _ = writeln!(o, "perf_ebpf_probe_hits_total{{{target}}} {}", r.probe_hits);
    header(o, "perf_ebpf_lost_events_total", "counter", "What could not be seen or kept, by kind.");
    let l = &r.lost;
    for (kind, n) in [
        ("ringbuf_full", l.ringbuf_full),
        ("thread_map_full", l.thread_map_full),
        ("depth_overflow", l.depth_overflow),
        ("orphan_return", l.orphan_return),
        ("orphan_entry", l.orphan_entry),
        ("attr_map_full", l.attr_map_full),
        ("exemplars_evicted", l.exemplars_evicted),
        ("span_unmatched", l.span_unmatched),
    ] {
        let _ = writeln!(o, "perf_ebpf_lost_events_total{{{target},kind=\"{kind}\"}} {n}");
    }
    header(o, "perf_ebpf_warnings", "gauge", "Warnings the report carries (see the JSON export).");
    let _ = writeln!(o, "perf_ebpf_warnings{{{target}}} {}", r.warnings.len());
}

/// The kernel's statistics of our BPF programs (runs, CPU time, recursion misses).
fn bpf_program_metrics(o: &mut String, h: &Health) {
    if let Some(on) = h.bpf_stats_enabled {
        header(
            o,
            "perf_ebpf_bpf_stats_enabled",
            "gauge",
            "kernel.bpf_stats_enabled: program run time and count below stay 0 while it is 0.",
        );
        let _ = writeln!(o, "perf_ebpf_bpf_stats_enabled {}", u8::from(on));
    }
    header(o, "perf_ebpf_bpf_program_runs_total", "counter", "Runs of each of our BPF programs (kernel stats).");
    for p in &h.programs {
        let _ = writeln!(
            o,
            "perf_ebpf_bpf_program_runs_total{{prog_id=\"{}\",prog_type=\"{}\"}} {}",
            p.prog_id,
            prog_type_name(p.prog_type),
            p.run_cnt
        );
    }
    header(
        o,
        "perf_ebpf_bpf_program_run_seconds_total",
        "counter",
        "CPU time spent in each of our BPF programs (kernel stats).",
    );
    for p in &h.programs {
        let _ = writeln!(
            o,
            "perf_ebpf_bpf_program_run_seconds_total{{prog_id=\"{}\",prog_type=\"{}\"}} {}",
            p.prog_id,
            prog_type_name(p.prog_type),
            secs(p.run_time_ns)
        );
    }
    header(
        o,
        "perf_ebpf_bpf_program_recursion_misses_total",
        "counter",
        "Runs of each of our BPF programs the kernel skipped (already running on that CPU): lost events.",
    );
    for p in &h.programs {
        let _ = writeln!(
            o,
            "perf_ebpf_bpf_program_recursion_misses_total{{prog_id=\"{}\",prog_type=\"{}\"}} {}",
            p.prog_id,
            prog_type_name(p.prog_type),
            p.recursion_misses
        );
    }
}

/// `--interference`: what took the functions' CPU away, counted (docs/EXPORT.md).
fn interference_counts(o: &mut String, r: &Report, fn_labels: &dyn Fn(&FunctionReport) -> String) {
    header(
        o,
        "perf_ebpf_function_interference_total",
        "counter",
        "Interrupts, page faults (major ones also on their own), switches and migrations while the function was innermost (--interference).",
    );
    for f in &r.functions {
        let c = &f.attribution.parts.interference;
        let l = fn_labels(f);
        for (kind, n) in [
            ("irq", c.irq_count),
            ("local_timer", c.timer_count),
            ("page_fault", c.page_faults),
            ("major_fault", c.major_faults),
            ("switch_voluntary", c.switches_voluntary),
            ("switch_involuntary", c.switches_involuntary),
            ("migration", c.migrations),
        ] {
            let _ = writeln!(o, "perf_ebpf_function_interference_total{{{l},kind=\"{kind}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{Attribution, LatencySummary, Lost, SyscallUse},
        output::report::{AttributionReport, FunctionReport, SCHEMA, SyscallReport, Target},
    };

    fn report() -> Report {
        Report {
            schema: SCHEMA.into(),
            target: Target { pid: 7, exe: "/bin/a\"b".into(), comm: "app".into() },
            duration_ns: 2_000_000_000,
            functions: vec![FunctionReport {
                symbol: "app::f".into(),
                object: "/usr/bin/app".into(),
                latency: LatencySummary { count: 6, ..LatencySummary::default() },
                // 1 call ≤ 150 ns, 2 ≤ 1007 ns (lands in 2 µs), 3 beyond the ladder.
                buckets: vec![
                    BucketCount { le_ns: 150, count: 1 },
                    BucketCount { le_ns: 1007, count: 2 },
                    BucketCount { le_ns: 200_000_000_000, count: 3 },
                ],
                attribution: AttributionReport {
                    parts: Attribution {
                        self_oncpu_ns: 1_500_000_000,
                        callees_ns: 500_000_000,
                        ..Attribution::default()
                    },
                    syscalls: vec![SyscallUse { name: "futex".into(), count: 4, total_ns: 1000 }],
                },
                ..FunctionReport::default()
            }],
            syscalls: vec![SyscallReport {
                name: "read".into(),
                latency: LatencySummary { count: 3, ..LatencySummary::default() },
                total_ns: 3000,
                buckets: vec![BucketCount { le_ns: 1000, count: 3 }],
                ..SyscallReport::default()
            }],
            lost: Lost { orphan_entry: 2, ..Lost::default() },
            probe_hits: 12,
            ..Report::default()
        }
    }

    /// The same symbol in the executable and in a library: two series, told apart by `object`.
    #[test]
    fn one_name_in_two_objects_is_two_series() {
        let mut r = report();
        let mut lib = r.functions[0].clone();
        lib.object = "/usr/lib/libc.so.6".into();
        lib.latency.count = 2;
        r.functions.push(lib);
        let text = render(&r, &Health::default());
        let count = |object: &str| {
            let l = format!("function=\"app::f\",object=\"{object}\",pid=\"7\",comm=\"app\"");
            let line = format!("perf_ebpf_function_latency_seconds_count{{{l}}} ");
            text.lines().filter(|x| x.starts_with(&line)).map(|x| x[line.len()..].to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(count("/usr/bin/app"), ["6"], "{text}");
        assert_eq!(count("/usr/lib/libc.so.6"), ["6"], "{text}");
        let series: Vec<&str> =
            text.lines().filter(|x| !x.starts_with('#')).map(|x| x.rsplit_once(' ').unwrap().0).collect();
        let unique: std::collections::HashSet<&str> = series.iter().copied().collect();
        assert_eq!(unique.len(), series.len(), "a series repeats:\n{text}");
    }

    #[test]
    fn ladder_is_1_2_5_from_100ns_to_100s() {
        assert_eq!(&LADDER_NS[..4], &[100, 200, 500, 1000]);
        assert_eq!(LADDER_NS[LADDER_NS.len() - 1], 100_000_000_000);
        assert!(LADDER_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn histograms_are_cumulative_and_consistent() {
        let text = render(&report(), &Health::default());
        let l = "function=\"app::f\",object=\"/usr/bin/app\",pid=\"7\",comm=\"app\"";
        for (le, n) in [("0.0000001", 0), ("0.0000002", 1), ("0.000001", 1), ("0.000002", 3), ("100", 3), ("+Inf", 6)] {
            let line = format!("perf_ebpf_function_latency_seconds_bucket{{{l},le=\"{le}\"}} {n}\n");
            assert!(text.contains(&line), "missing {line}in\n{text}");
        }
        assert!(text.contains(&format!("perf_ebpf_function_latency_seconds_count{{{l}}} 6\n")));
        assert!(text.contains(&format!("perf_ebpf_function_latency_seconds_sum{{{l}}} 2\n")));
        assert!(
            text.contains(&format!("perf_ebpf_function_attribution_seconds_total{{{l},part=\"self_oncpu\"}} 1.5\n"))
        );
        assert!(text.contains(&format!("perf_ebpf_function_syscalls_total{{{l},syscall=\"futex\"}} 4\n")));
        assert!(text.contains(
            "perf_ebpf_syscall_latency_seconds_bucket{syscall=\"read\",pid=\"7\",comm=\"app\",le=\"0.000001\"} 3\n"
        ));
        assert!(text.contains("perf_ebpf_lost_events_total{pid=\"7\",comm=\"app\",kind=\"orphan_entry\"} 2\n"));
        assert!(text.contains("exe=\"/bin/a\\\"b\""), "quotes are escaped");
        // Every series line is `name{labels} value` or `name value`, and each metric has one TYPE.
        let mut types = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(types.insert(rest.split(' ').next().unwrap_or("").to_string()), "duplicate TYPE {line}");
            } else if !line.starts_with('#') {
                let value = line.rsplit(' ').next().unwrap_or("");
                assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
            }
        }
        let series_per_fn = text.lines().filter(|l| l.starts_with("perf_ebpf_function_latency_seconds_bucket")).count();
        assert!(series_per_fn <= 40);
    }

    #[test]
    fn fdinfo_of_a_bpf_program_parses() {
        let p = parse_fdinfo(
            "pos:\t0\nprog_type:\t17\nprog_id:\t42\nrun_time_ns:\t1500\nrun_cnt:\t3\nrecursion_misses:\t2\n",
        );
        assert_eq!(p, ProgStats { prog_id: 42, prog_type: 17, run_time_ns: 1500, run_cnt: 3, recursion_misses: 2 });
        let text = render(&Report::default(), &Health { programs: vec![p], bpf_stats_enabled: Some(true) });
        assert!(text.contains(
            "perf_ebpf_bpf_program_run_seconds_total{prog_id=\"42\",prog_type=\"raw_tracepoint\"} 0.0000015"
        ));
        assert!(text.contains("perf_ebpf_bpf_stats_enabled 1"));
    }

    #[test]
    fn interference_parts_and_counts_only_when_measured() {
        let mut r = report();
        let text = render(&r, &Health::default());
        assert!(!text.contains("part=\"steal\"") && !text.contains("perf_ebpf_function_interference_total"), "{text}");
        r.interference = true;
        r.functions[0].attribution.parts.steal_ns = 250_000_000;
        r.functions[0].attribution.parts.interference.page_faults = 9;
        let text = render(&r, &Health::default());
        let has = |metric: &str, tail: &str| text.lines().any(|l| l.starts_with(metric) && l.ends_with(tail));
        assert!(
            has("perf_ebpf_function_attribution_seconds_total{function=\"app::f\"", "part=\"steal\"} 0.25"),
            "{text}"
        );
        assert!(has("perf_ebpf_function_interference_total{function=\"app::f\"", "kind=\"page_fault\"} 9"), "{text}");
    }
}
