//! Turns a `Report` into bytes (JSON, text tables, CSV, Markdown) and puts bytes in files
//! atomically. Serialisers are pure; where the bytes go is the caller's business.

use std::{
    fmt::Write as _,
    fs,
    io::Write as _,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use crate::{
    output::report::{Report, SCHEMA},
    units::{fmt_count, fmt_ns},
};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    // `cause`, not `source`: the message already says it, and `{:#}` would print it twice.
    #[error("cannot write {path}: {cause}")]
    Write { path: PathBuf, cause: std::io::Error },
    #[error("cannot read {path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("{path} is not a perf-ebpf report: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path} has schema '{found}', expected '{SCHEMA}'")]
    Schema { path: PathBuf, found: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
    Markdown,
}

pub fn serialize(report: &Report, format: Format) -> Vec<u8> {
    match format {
        Format::Json => json(report),
        Format::Text => text(report).into_bytes(),
        Format::Csv => csv(report).into_bytes(),
        Format::Markdown => markdown(report).into_bytes(),
    }
}

pub fn json(report: &Report) -> Vec<u8> {
    // Serialising plain structs of numbers and strings cannot fail.
    let mut v = serde_json::to_vec_pretty(report).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file and a crash never leaves one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let err = |cause| ExportError::Write { path: path.into(), cause };
    let tmp = tmp_path(path);
    // Never group- or world-writable, whatever the umask: reports may be read by others, not edited.
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Reads a report back, checking its schema. Accepts a `perf-ebpf/v1` JSON file, an
/// `--export-interval` NDJSON file (its last snapshot), or bpftrace `-f json` output with
/// histograms (see docs/EXPORT.md).
pub fn read_report(path: &Path) -> Result<Report, ExportError> {
    let data = fs::read(path).map_err(|cause| ExportError::Read { path: path.into(), cause })?;
    parse_report(path, &data)
}

/// `read_report` on bytes already read (`path` names them in errors); fuzzed by perf-user/fuzz.
pub fn parse_report(path: &Path, data: &[u8]) -> Result<Report, ExportError> {
    let parse_err = |reason: String| ExportError::Parse { path: path.into(), reason };
    let whole = serde_json::from_slice::<serde_json::Value>(data);
    let value = match whole {
        Ok(v) => v,
        Err(e) => {
            // Several JSON documents, one a line: NDJSON snapshots or bpftrace output.
            let text = String::from_utf8_lossy(data);
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let first: Option<serde_json::Value> = lines.next().and_then(|l| serde_json::from_str(l).ok());
            match first {
                Some(v) if v.get("type").is_some() => {
                    return crate::output::bpftrace_import::import(&text, &path.display().to_string())
                        .map_err(parse_err);
                }
                Some(v) if v.get("schema").is_some() => {
                    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    serde_json::from_str(last).map_err(|e| parse_err(format!("last line: {e}")))?
                }
                _ => return Err(parse_err(e.to_string())),
            }
        }
    };
    if value.get("schema").is_none() && value.get("type").is_some() {
        return crate::output::bpftrace_import::import(&String::from_utf8_lossy(data), &path.display().to_string())
            .map_err(parse_err);
    }
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("(none)");
    if schema != SCHEMA {
        return Err(ExportError::Schema { path: path.into(), found: schema.to_string() });
    }
    serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))
}

/// Where `--export-interval` appends its snapshots: the export path with extension `.ndjson`.
pub fn snapshot_path(export: &Path) -> PathBuf {
    export.with_extension("ndjson")
}

/// `--export-interval`: one compact JSON report a line, appended to an NDJSON file created at
/// attach. A snapshot is a single `write`, never an fsync, so a slow disk delays the loop by
/// one write at most.
pub struct Snapshots {
    pub path: PathBuf,
    file: fs::File,
    every: std::time::Duration,
    next: std::time::Instant,
}

impl Snapshots {
    /// Creates (truncates) the file now, so an unwritable path fails before attaching.
    pub fn create(path: &Path, every: std::time::Duration) -> Result<Snapshots, ExportError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o644)
            .open(path)
            .map_err(|cause| ExportError::Write { path: path.into(), cause })?;
        Ok(Snapshots { path: path.into(), file, every, next: std::time::Instant::now() + every })
    }

    /// True when the next snapshot is due.
    pub fn due(&self) -> bool {
        std::time::Instant::now() >= self.next
    }

    /// Appends `report` as one line and schedules the next snapshot.
    pub fn write(&mut self, report: &Report) -> Result<(), ExportError> {
        let now = std::time::Instant::now();
        while self.next <= now {
            self.next += self.every;
        }
        self.file.write_all(&ndjson_line(report)).map_err(|cause| ExportError::Write { path: self.path.clone(), cause })
    }
}

/// A report as one NDJSON line (compact JSON and `\n`).
pub fn ndjson_line(report: &Report) -> Vec<u8> {
    let mut v = serde_json::to_vec(report).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Fails now, before any tracing, if `path` could not be written at the end.
pub fn check_writable(path: &Path) -> Result<(), ExportError> {
    let err = |cause| ExportError::Write { path: path.into(), cause };
    if path.is_dir() {
        return Err(err(std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory")));
    }
    let tmp = tmp_path(path);
    fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(err)?;
    fs::remove_file(&tmp).map_err(err)
}

fn pct(part: u64, total: u64) -> String {
    if total == 0 { "-".into() } else { format!("{:.0}%", part as f64 * 100.0 / total as f64) }
}

/// The human tables: functions with percentiles and attribution, then syscalls, exemplars and losses.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "pid {} {} — {} traced, {} probe hits",
        r.target.pid,
        r.target.exe,
        fmt_ns(r.duration_ns),
        fmt_count(r.probe_hits)
    );
    let width = r.functions.iter().map(|f| f.symbol.len()).max().unwrap_or(8).clamp(8, 60);
    let _ = (!r.functions.is_empty()).then(|| {
        writeln!(
            o,
            "{:<width$} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>5} {:>5} {:>5} {:>5}",
            "FUNCTION", "CALLS", "MIN", "P50", "P90", "P99", "P99.9", "MAX", "SELF", "CALLS", "SYS", "OFF"
        )
    });
    for f in &r.functions {
        let l = &f.latency;
        let a = &f.attribution.parts;
        let total = a.total_ns();
        let _ = writeln!(
            o,
            "{:<width$} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>5} {:>5} {:>5} {:>5}",
            truncate(&f.symbol, width),
            f.calls(),
            fmt_ns(l.min_ns),
            fmt_ns(l.p50_ns),
            fmt_ns(l.p90_ns),
            fmt_ns(l.p99_ns),
            fmt_ns(l.p999_ns),
            fmt_ns(l.max_ns),
            pct(a.self_oncpu_ns, total),
            pct(a.callees_ns, total),
            pct(a.syscalls_ns, total),
            pct(a.offcpu_blocked_ns + a.offcpu_runqueue_ns, total),
        );
    }
    if !r.syscalls.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<20} {:>9} {:>7} {:>8} {:>8} {:>8} {:>10}",
            "SYSCALL", "COUNT", "ERRORS", "P50", "P99", "MAX", "TOTAL"
        );
        for s in &r.syscalls {
            let [name, count, errors, p50, p99, max, total] = syscall_cells(s);
            let _ = writeln!(o, "{name:<20} {count:>9} {errors:>7} {p50:>8} {p99:>8} {max:>8} {total:>10}");
        }
    }
    let with_sys: Vec<_> = r.functions.iter().filter(|f| !f.attribution.syscalls.is_empty()).collect();
    if !with_sys.is_empty() {
        let _ = writeln!(o, "\nsyscalls while innermost (count, wall time):");
        for f in with_sys {
            let list: Vec<String> = f
                .attribution
                .syscalls
                .iter()
                .take(6)
                .map(|s| format!("{} {}× {}", s.name, fmt_count(s.count), fmt_ns(s.total_ns)))
                .collect();
            let more = f.attribution.syscalls.len().saturating_sub(6);
            let more = if more > 0 { format!(", +{more} more") } else { String::new() };
            let _ = writeln!(o, "  {}: {}{more}", f.symbol, list.join(", "));
        }
    }
    if !r.exemplars.is_empty() {
        let _ = writeln!(o, "\nslowest calls ({} kept):", r.exemplars.len());
        let mut ex: Vec<_> = r.exemplars.iter().collect();
        ex.sort_by_key(|e| std::cmp::Reverse(e.duration_ns));
        for e in ex.iter().take(5) {
            let a = &e.attribution;
            let top = e.syscalls.first().map(|s| format!(", mostly {}", s.name)).unwrap_or_default();
            // `--interference`: what took the CPU away, e.g. "312 µs: steal 296 µs".
            let interf = a.interference_text(fmt_ns);
            let interf = if interf.is_empty() { interf } else { format!("; {}: {interf}", fmt_ns(e.duration_ns)) };
            let _ = writeln!(
                o,
                "  {} {} tid {} ({}): self {} callees {} sys {} off-cpu {}{}{interf}",
                fmt_ns(e.duration_ns),
                e.symbol,
                e.tid,
                e.thread,
                fmt_ns(a.self_oncpu_ns),
                fmt_ns(a.callees_ns),
                fmt_ns(a.syscalls_ns),
                fmt_ns(a.offcpu_ns()),
                top
            );
        }
    }
    if r.lost.total() > 0 || r.lost.exemplars_evicted > 0 {
        let l = &r.lost;
        let _ = writeln!(
            o,
            "\nlost: ringbuf_full {} thread_map_full {} depth_overflow {} orphan_return {} orphan_entry {} attr_map_full {} exemplars_evicted {}",
            l.ringbuf_full,
            l.thread_map_full,
            l.depth_overflow,
            l.orphan_return,
            l.orphan_entry,
            l.attr_map_full,
            l.exemplars_evicted
        );
    }
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}

/// One syscall row's cells, the same in the text and Markdown tables.
fn syscall_cells(s: &crate::output::report::SyscallReport) -> [String; 7] {
    [
        s.name.clone(),
        s.latency.count.to_string(),
        s.errors.to_string(),
        fmt_ns(s.latency.p50_ns),
        fmt_ns(s.latency.p99_ns),
        fmt_ns(s.latency.max_ns),
        fmt_ns(s.total_ns),
    ]
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let tail: String = s.chars().rev().take(width - 1).collect::<Vec<_>>().into_iter().rev().collect();
        format!("…{tail}")
    }
}

const CSV_HEADER: &str = "kind,name,count,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,self_oncpu_ns,callees_ns,syscalls_ns,offcpu_blocked_ns,offcpu_runqueue_ns,errors";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// The latency columns shared by function and syscall rows.
fn csv_latency(l: &crate::model::LatencySummary) -> String {
    format!("{},{},{},{},{},{},{},{}", l.count, l.min_ns, l.mean_ns, l.p50_ns, l.p90_ns, l.p99_ns, l.p999_ns, l.max_ns)
}

pub fn csv(r: &Report) -> String {
    let mut o = String::from(CSV_HEADER);
    o.push('\n');
    for f in &r.functions {
        let a = &f.attribution.parts;
        let _ = writeln!(
            o,
            "function,{},{},{},{},{},{},{},",
            csv_field(&f.symbol),
            csv_latency(&f.latency),
            a.self_oncpu_ns,
            a.callees_ns,
            a.syscalls_ns,
            a.offcpu_blocked_ns,
            a.offcpu_runqueue_ns
        );
    }
    for s in &r.syscalls {
        let _ = writeln!(o, "syscall,{},{},,,,,,{}", csv_field(&s.name), csv_latency(&s.latency), s.errors);
    }
    o
}

pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "### pid {} `{}` ({} traced)\n", r.target.pid, r.target.exe, fmt_ns(r.duration_ns));
    let _ = writeln!(o, "| function | calls | p50 | p90 | p99 | p99.9 | max | self | callees | syscalls | off-CPU |");
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in &r.functions {
        let l = &f.latency;
        let a = &f.attribution.parts;
        let t = a.total_ns();
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f.symbol.replace('|', "\\|"),
            f.calls(),
            fmt_ns(l.p50_ns),
            fmt_ns(l.p90_ns),
            fmt_ns(l.p99_ns),
            fmt_ns(l.p999_ns),
            fmt_ns(l.max_ns),
            pct(a.self_oncpu_ns, t),
            pct(a.callees_ns, t),
            pct(a.syscalls_ns, t),
            pct(a.offcpu_ns(), t)
        );
    }
    if !r.syscalls.is_empty() {
        let _ = writeln!(o, "\n| syscall | count | errors | p50 | p99 | max | total |");
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|");
        for s in &r.syscalls {
            let _ = writeln!(o, "| {} |", syscall_cells(s).join(" | "));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{Attribution, LatencySummary},
        output::report::{AttributionReport, FunctionReport, Target},
    };
    use std::os::unix::fs::PermissionsExt;

    fn sample_report() -> Report {
        Report {
            schema: SCHEMA.into(),
            target: Target { pid: 42, exe: "/bin/app".into(), comm: "app".into() },
            duration_ns: 5_000_000_000,
            functions: vec![FunctionReport {
                symbol: "app::f".into(),
                latency: LatencySummary {
                    count: 10,
                    min_ns: 5,
                    mean_ns: 7,
                    p50_ns: 6,
                    p90_ns: 9,
                    p99_ns: 10,
                    p999_ns: 10,
                    max_ns: 11,
                },
                attribution: AttributionReport {
                    parts: Attribution { self_oncpu_ns: 50, callees_ns: 20, ..Attribution::default() },
                    syscalls: vec![],
                },
                ..FunctionReport::default()
            }],
            ..Report::default()
        }
    }

    #[test]
    fn json_round_trips() {
        let r = sample_report();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("r.json");
        write_atomic(&p, &json(&r)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_report(&p).unwrap_or_else(|e| panic!("{e}")), r);
        let mode = fs::metadata(&p).map(|m| m.permissions().mode()).unwrap_or(0o777);
        assert_eq!(mode & 0o022, 0, "export must not be group/world-writable: {mode:o}");
        // No temp file left behind.
        assert_eq!(fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 1);
    }

    #[test]
    fn json_has_the_v1_field_names() {
        let v: serde_json::Value = serde_json::from_slice(&json(&sample_report())).unwrap_or_default();
        let f = &v["functions"][0];
        for k in ["symbol", "count", "min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "buckets"]
        {
            assert!(!f[k].is_null(), "missing functions[].{k}");
        }
        assert_eq!(f["attribution"]["self_oncpu_ns"], 50);
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["target"]["pid"], 42);
    }

    #[test]
    fn wrong_schema_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("x.json");
        fs::write(&p, b"{\"schema\":\"other\"}").unwrap_or_default();
        assert!(matches!(read_report(&p), Err(ExportError::Schema { .. })));
        fs::write(&p, b"not json").unwrap_or_default();
        assert!(matches!(read_report(&p), Err(ExportError::Parse { .. })));
    }

    #[test]
    fn unwritable_paths_are_caught_early() {
        assert!(check_writable(Path::new("/nonexistent-dir/x.json")).is_err());
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(check_writable(dir.path()).is_err());
        assert!(check_writable(&dir.path().join("ok.json")).is_ok());
        assert_eq!(fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(9), 0);
    }

    #[test]
    fn text_csv_markdown_name_the_function() {
        let r = sample_report();
        for f in [Format::Text, Format::Csv, Format::Markdown] {
            let s = String::from_utf8(serialize(&r, f)).unwrap_or_default();
            assert!(s.contains("app::f"), "{f:?}: {s}");
        }
        assert!(csv(&r).lines().nth(1).unwrap_or("").starts_with("function,app::f,10,5,7,6,9,10,10,11,50,20"));
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use crate::{
        model::{Attribution, Bucket, BucketHist, FuncInfo, FuncSample, FuncSyscall, Sample, Session, SyscallSample},
        output::report::RunInfo,
    };

    /// A report built from the model the way `attach` builds it.
    fn built() -> Report {
        let mut session = Session::new(
            vec![FuncInfo { id: 0, symbol: "app::f".into(), raw_symbol: "_ZN3app1fE".into(), ..FuncInfo::default() }],
            10,
        );
        let hist = |v: &[(u64, u64, u64)]| BucketHist {
            buckets: v.iter().map(|&(low_ns, high_ns, count)| Bucket { low_ns, high_ns, count }).collect(),
        };
        session.push(Sample {
            at_ns: 2_000_000_000,
            functions: vec![FuncSample {
                id: 0,
                count: 30,
                total_ns: 33_000,
                min_ns: 900,
                max_ns: 2_040,
                attribution: Attribution { self_oncpu_ns: 20_000, syscalls_ns: 13_000, ..Attribution::default() },
                total_hist: hist(&[(896, 903, 10), (992, 1007, 15), (2016, 2047, 5)]),
                self_hist: hist(&[(640, 647, 30)]),
                ..FuncSample::default()
            }],
            func_syscalls: vec![FuncSyscall { fn_id: 0, nr: 1, count: 30, total_ns: 13_500 }],
            syscalls: vec![SyscallSample {
                nr: 1,
                count: 31,
                completed: 30,
                total_ns: 13_500,
                max_ns: 700,
                hist: hist(&[(448, 455, 30)]),
                ..SyscallSample::default()
            }],
            ..Sample::default()
        });
        Report::build(&session, &RunInfo { end_reason: "duration".into(), ..RunInfo::default() })
    }

    #[test]
    fn a_built_report_round_trips_with_the_same_numbers() {
        let r = built();
        assert_eq!(r.functions[0].latency.count, 30);
        assert_eq!(r.functions[0].buckets.iter().map(|b| b.count).sum::<u64>(), 30);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("r.json");
        write_atomic(&p, &json(&r)).unwrap_or_else(|e| panic!("{e}"));
        let back = read_report(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, r);
        assert_eq!(json(&back), json(&r), "byte for byte");
    }

    #[test]
    fn snapshots_append_one_line_each_and_read_back_the_last() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let export = dir.path().join("run.json");
        let path = snapshot_path(&export);
        assert_eq!(path, dir.path().join("run.ndjson"));
        let mut s = Snapshots::create(&path, std::time::Duration::from_millis(10)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.due(), "the first snapshot waits one period");
        let mut r = built();
        r.end_reason = "running".into();
        s.write(&r).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.due());
        let mut last = built();
        last.duration_ns += 1;
        s.write(&last).unwrap_or_else(|e| panic!("{e}"));
        let text = fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| l.starts_with("{\"schema\":\"perf-ebpf/v1\"")), "compact, one a line");
        assert_eq!(read_report(&path).unwrap_or_else(|e| panic!("{e}")), last);
        // A new run starts a new file.
        drop(s);
        Snapshots::create(&path, std::time::Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fs::read_to_string(&path).unwrap_or_default(), "");
        assert!(Snapshots::create(&dir.path().join("no/such/dir.ndjson"), std::time::Duration::from_secs(1)).is_err());
    }

    #[test]
    fn bpftrace_output_reads_as_a_report() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("bt.json");
        let bt = "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n\
                  {\"type\": \"hist\", \"data\": {\"@ns\": [{\"min\": 1024, \"max\": 2047, \"count\": 3}]}}\n";
        fs::write(&p, bt).unwrap_or_default();
        let r = read_report(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.functions[0].symbol, "@ns");
        assert_eq!(r.tool.name, "bpftrace");
        fs::write(&p, "{\"type\": \"printf\", \"data\": \"hi\"}\n").unwrap_or_default();
        assert!(matches!(read_report(&p), Err(ExportError::Parse { .. })));
    }
}
