//! wrk, the HTTP load generator: one run against a URL with N connections for S seconds, its
//! requests, rate and p99 read from its report, and the CPU it used (from wait4, as it exits).

use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::bench::sys;

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkRun {
    pub requests: u64,
    pub per_s: f64,
    pub p99_us: f64,
    /// wrk's own user + system CPU time.
    pub cpu_s: f64,
}

/// `wrk -t1 -cN -dSs --latency URL`: one thread, like the one server worker it loads.
pub fn run(wrk: &Path, url: &str, connections: u32, secs: u64) -> Result<WrkRun> {
    let mut child = Command::new(wrk)
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s"), "--latency", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", wrk.display()))?;
    // wrk prints only at the end, a few hundred bytes: the pipes cannot fill while it runs.
    let (status, cpu_s) = sys::wait_with_cpu(&mut child, Duration::from_secs(secs + 30))?;
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut out).context("reading wrk's report")?;
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut err);
    }
    if !status.success() {
        bail!("wrk failed ({status}): {}", err.trim());
    }
    parse(&out, cpu_s).map_err(|e| anyhow::anyhow!("{e}; wrk printed:\n{out}"))
}

/// Reads wrk's report: `N requests in Xs`, `Requests/sec:`, the `99%` latency line; a run with
/// non-2xx answers or socket errors beyond one request in a thousand is refused.
pub fn parse(out: &str, cpu_s: f64) -> Result<WrkRun, String> {
    let line = |prefix: &str| out.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix).map(str::trim));
    let requests: u64 = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ")?.0.trim().parse().ok())
        .ok_or("no `N requests in` line")?;
    let per_s: f64 = line("Requests/sec:").and_then(|v| v.parse().ok()).ok_or("no `Requests/sec:` line")?;
    let p99_us = line("99%").and_then(latency_us).ok_or("no `99%` latency line (--latency)")?;
    if let Some(bad) = line("Non-2xx or 3xx responses:") {
        return Err(format!("{bad} non-2xx or 3xx responses"));
    }
    let socket_errors: u64 = line("Socket errors:")
        .map(|l| l.split(',').filter_map(|kv| kv.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    if socket_errors * 1000 > requests {
        return Err(format!("{socket_errors} socket errors in {requests} requests"));
    }
    Ok(WrkRun { requests, per_s, p99_us, cpu_s })
}

/// wrk's time with its unit (`19.00us`, `0.96ms`, `1.20s`, `2.00m`) in µs.
fn latency_us(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.trim().parse().ok()?;
    let scale = match unit.trim() {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
Running 2s test @ http://127.0.0.1:18080/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    55.91us  386.12us   7.55ms   98.77%
    Req/Sec    48.51k     4.80k   66.84k    90.48%
  Latency Distribution
     50%   19.00us
     75%   19.00us
     90%   21.00us
     99%    0.96ms
  101350 requests in 2.10s, 24.65MB read
Requests/sec:  48279.26
Transfer/sec:     11.74MB
";

    #[test]
    fn reads_requests_rate_and_p99() {
        let r = parse(REPORT, 1.5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r, WrkRun { requests: 101_350, per_s: 48_279.26, p99_us: 960.0, cpu_s: 1.5 });
        assert_eq!(latency_us("1.20s"), Some(1.2e6));
        assert_eq!(latency_us("19.00us"), Some(19.0));
    }

    #[test]
    fn refuses_errors_and_reports_without_latencies() {
        let non_2xx = REPORT.replace("Requests/sec", "  Non-2xx or 3xx responses: 12\nRequests/sec");
        assert!(parse(&non_2xx, 0.0).is_err_and(|e| e.contains("12 non-2xx")));
        let errors =
            REPORT.replace("Requests/sec", "  Socket errors: connect 0, read 200, write 0, timeout 3\nRequests/sec");
        assert!(parse(&errors, 0.0).is_err_and(|e| e.contains("203 socket errors")));
        let few =
            REPORT.replace("Requests/sec", "  Socket errors: connect 0, read 1, write 0, timeout 0\nRequests/sec");
        assert!(parse(&few, 0.0).is_ok(), "one reconnect in 100k requests is not a failed run");
        assert!(parse(&REPORT.replace("99%", "98%"), 0.0).is_err());
    }
}
