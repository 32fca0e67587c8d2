//! `attach --prometheus` against a real Prometheus server: it scrapes perf-user every second while
//! target-app runs, and its `histogram_quantile` of our histogram must agree with perf-user's own
//! p99 (from an `--export-interval` snapshot of the same moment) to within the `le` ladder.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use perf_user::output::prometheus::LADDER_NS;
use serde_json::Value;

const FUNCTION: &str = "target_app::book::OrderBook::apply";

/// A child killed and reaped on drop, whatever happens to the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> Option<PathBuf> {
    let fixed = Path::new("/usr/bin/prometheus");
    if fixed.exists() {
        return Some(fixed.into());
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("prometheus")).find(|p| p.exists())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 GET on loopback: (status, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// An instant query (at `time`, unix seconds, if given): the first sample's value, if any.
fn query(port: u16, promql: &str, time: Option<f64>) -> Option<f64> {
    let at = time.map(|t| format!("&time={t:.3}")).unwrap_or_default();
    let (status, body) = http_get(port, &format!("/api/v1/query?query={}{at}", url_encode(promql)))?;
    assert_eq!(status, 200, "query {promql}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array()?.first()?["value"][1].as_str()?.parse().ok()
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Index of the `le` bucket holding `ns` (28: +Inf).
fn ladder_bucket(ns: f64) -> usize {
    LADDER_NS.iter().position(|&b| ns <= b as f64).unwrap_or(LADDER_NS.len())
}

/// The prometheus binary; without it, outside CI the test is skipped with a printed reason, in CI
/// that is a failure.
fn prometheus_or_skip(test: &str) -> Option<PathBuf> {
    let found = prometheus_binary();
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must have prometheus installed (apt-get install prometheus)");
        eprintln!("SKIPPED {test}: no prometheus binary (apt-get install prometheus)");
    }
    found
}

/// The snapshot in `export`'s ndjson taken nearest to `traced_s` of tracing (at most 0.35 s off).
fn nearest_snapshot(export: &Path, traced_s: f64) -> Value {
    let ndjson = std::fs::read_to_string(export.with_extension("ndjson")).unwrap();
    let snapshots: Vec<Value> = ndjson.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(snapshots.len() >= 5, "{} snapshots", snapshots.len());
    let snap =
        snapshots.into_iter().min_by_key(|s| (u(&s["duration_ns"]) as f64 - traced_s * 1e9).abs() as u64).unwrap();
    let gap_s = (u(&snap["duration_ns"]) as f64 / 1e9 - traced_s).abs();
    assert!(gap_s <= 0.35, "nearest snapshot is {gap_s:.2}s from the scraped report");
    snap
}

/// perf-user attached to `pid` with `--prometheus` on a port it picks (0) and says which (no race
/// for a free one), snapshots in `export`. Returns it, its stdout and its metrics port.
fn start_perf_user(pid: u32, export: &Path) -> (Guard, Lines, u16) {
    let mut pu = Command::new(PERF_USER)
        .args(["attach", "--no-tui", "--syscalls", "--pid", &pid.to_string(), "--prometheus", "127.0.0.1:0"])
        .args(["--interval", "100ms", "--duration", "90s", "--export-interval", "200ms"])
        .arg("--export")
        .arg(export)
        .args(STAGES.iter().flat_map(|s| ["--func", s]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = Lines::new(pu.stdout.take().unwrap());
    let pu = Guard(pu);
    let serving = lines.wait_for("serving Prometheus metrics on http://", Duration::from_secs(30));
    let metrics_port: u16 = serving
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.trim_end_matches("/metrics").parse().ok())
        .unwrap_or_else(|| panic!("no port in {serving:?}"));
    (pu, lines, metrics_port)
}

/// A Prometheus server in `dir` scraping `metrics_port` every second. Returns it and its web port.
fn start_prometheus(dir: &TempDir, prometheus: &Path, metrics_port: u16) -> (Guard, u16) {
    let web_port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: perf-user\n    \
             scrape_interval: 1s\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let prom = Guard(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    (prom, web_port)
}

#[test]
fn prometheus_scrapes_histograms_that_agree_with_our_p99() {
    if !bpf_available("prometheus_scrapes_histograms_that_agree_with_our_p99") {
        return;
    }
    let Some(prometheus) = prometheus_or_skip("prometheus_scrapes_histograms_that_agree_with_our_p99") else {
        return;
    };
    let dir = TempDir::new("prometheus");
    let mut app = TargetApp::start(&dir, &["--hold", "--rate", "20000"]);

    let export = dir.join("final.json");
    let (pu, lines, metrics_port) = start_perf_user(app.pid, &export);
    lines.wait_for("attached ", Duration::from_secs(30));
    app.signal(libc::SIGUSR2);

    let (prom, web_port) = start_prometheus(&dir, &prometheus, metrics_port);
    let show_log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    wait_until("prometheus ready", Duration::from_secs(60), || {
        http_get(web_port, "/-/ready").filter(|(s, _)| *s == 200)
    });

    // A few scrapes with calls in them.
    let selector = format!("{{function=\"{FUNCTION}\"}}");
    wait_until("6 scrapes with calls", Duration::from_secs(60), || {
        let n =
            query(web_port, &format!("count_over_time(perf_ebpf_function_latency_seconds_count{selector}[1m])"), None)?;
        let calls = query(web_port, &format!("perf_ebpf_function_latency_seconds_count{selector}"), None)?;
        (n >= 6.0 && calls > 1000.0).then_some(())
    });
    assert_eq!(query(web_port, "up{job=\"perf-user\"}", None), Some(1.0), "{}", show_log());

    // Pin one scrape: its time, and the report it came from (traced seconds identify it).
    let t = query(web_port, &format!("timestamp(perf_ebpf_function_latency_seconds_count{selector})"), None).unwrap();
    let prom_p99_s = query(
        web_port,
        &format!("histogram_quantile(0.99, sum by (le) (perf_ebpf_function_latency_seconds_bucket{selector}))"),
        Some(t),
    )
    .unwrap_or_else(|| panic!("no histogram_quantile result\n{}", show_log()));
    let prom_count = query(web_port, &format!("perf_ebpf_function_latency_seconds_count{selector}"), Some(t)).unwrap();
    let traced_s = query(web_port, "perf_ebpf_traced_seconds", Some(t)).unwrap();
    // Own CPU time over every traced stage: OrderBook::apply alone does ~100 ns of its own per call,
    // which a calibration ~100 ns high on a busy host takes to 0 (1 run in 5 under stress-ng);
    // Engine::on_message's ~3 µs cannot vanish that way.
    let self_s =
        query(web_port, "sum(perf_ebpf_function_attribution_seconds_total{part=\"self_oncpu\"})", Some(t)).unwrap();
    let hits = query(web_port, "perf_ebpf_probe_hits_total", Some(t)).unwrap();
    let syscalls = query(web_port, "sum(perf_ebpf_syscall_latency_seconds_count)", Some(t)).unwrap();
    let bpf_runs = query(web_port, "sum(perf_ebpf_bpf_program_runs_total)", Some(t));

    // Stop tracing; perf-user ends cleanly and the snapshots are complete.
    drop(prom);
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pu.0.id() as i32, libc::SIGINT) }, 0);
    let mut pu = pu;
    let status = wait_until("perf-user to exit", Duration::from_secs(30), || pu.0.try_wait().unwrap());
    assert!(status.success(), "perf-user exited with {status}");
    app.signal(libc::SIGTERM);

    // perf-user's own p99 from the snapshot nearest to the scraped report.
    let snap = &nearest_snapshot(&export, traced_s);
    let ours = function(snap, FUNCTION);
    let our_p99 = u(&ours["p99_ns"]) as f64;
    let our_count: u64 = ours["buckets"].as_array().unwrap().iter().map(|b| u(&b["count"])).sum();
    let prom_p99 = prom_p99_s * 1e9;
    eprintln!(
        "scrape at traced {traced_s:.2}s: prometheus p99 {prom_p99:.0} ns over {prom_count} calls; \
         snapshot at {:.2}s: ours {our_p99} ns over {our_count} calls",
        u(&snap["duration_ns"]) as f64 / 1e9
    );

    // Counts: the same calls, give or take the ≤ 0.35 s between the two readings (20k msgs/s).
    assert!(prom_count > 1000.0);
    assert!(
        (prom_count - our_count as f64).abs() <= 0.35 * 25_000.0 + 0.05 * our_count as f64,
        "{prom_count} vs {our_count}"
    );
    // histogram_quantile interpolates inside the `le` bucket holding the 99th percentile rank; our
    // p99 (1/32-wide buckets) lies in that same ladder bucket, or the next one over when it sits
    // within 1/32 of a bound or the readings moved it across: one 1-2-5 step, at most 2.5x.
    let (pb, ob) = (ladder_bucket(prom_p99), ladder_bucket(our_p99));
    assert!(
        pb.abs_diff(ob) <= 1,
        "prometheus p99 {prom_p99:.0} ns (le bucket {pb}) vs ours {our_p99} ns (bucket {ob})"
    );
    let ratio = prom_p99 / our_p99;
    assert!((1.0 / 2.5..=2.5).contains(&ratio), "prometheus p99 {prom_p99:.0} ns vs ours {our_p99} ns");

    // The other families are there and move.
    assert!(self_s > 0.0, "self_oncpu seconds {self_s}");
    assert!(hits >= 2.0 * prom_count, "probe hits {hits} for {prom_count} calls");
    assert!(syscalls > 0.0, "syscall histograms");
    if std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|s| s.trim() == "1") {
        assert!(bpf_runs.unwrap_or(0.0) > 0.0, "BPF program runs with bpf_stats_enabled=1");
    }
    app.wait_truth(Duration::from_secs(60));
}
