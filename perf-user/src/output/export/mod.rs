//! Turns a `Report` into bytes (JSON, text tables, CSV, Markdown) and puts bytes in files
//! atomically (through `files`). Serialisers are pure; names in text are escaped (`escape`).

use std::{
    fmt::Write as _,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use crate::{
    model::Attribution,
    output::{
        escape::{self, control},
        files::{self, FileError},
        report::{FunctionReport, Report, SCHEMA},
    },
    units::{fmt_count, fmt_ns},
};

/// What a cell shows when nothing was measured (an untimed function: entry-only, sampled out,
/// or no calls), so that it never reads as a measured `0ns`.
pub const UNTIMED: &str = "—";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    // `cause`, not `source`: the message already says it, and `{:#}` would print it twice.
    #[error("cannot write {path}: {cause}")]
    Write { path: PathBuf, cause: std::io::Error },
    #[error(transparent)]
    File(#[from] FileError),
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

/// Writes `bytes` to `path` (stdout for `-`) all or nothing, a regular file only: see
/// `files::write_file`. Every file perf-user writes whole goes through here.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    Ok(files::write_file(path, bytes)?)
}

/// Reads a report back, checking its schema. Accepts a `perf-ebpf/v1` JSON file, an
/// `--export-interval` NDJSON file (its last complete snapshot), or bpftrace `-f json` output
/// with histograms (see docs/EXPORT.md). Input is bounded (`files::MAX_INPUT_BYTES`).
pub fn read_report(path: &Path) -> Result<Report, ExportError> {
    let data = files::read_bounded(path)?;
    let (report, truncated) = parse(path, &data)?;
    if let Some(note) = truncated {
        eprintln!("perf-user: warning: {}", control(&note));
    }
    Ok(report)
}

/// `read_report` on bytes already read (`path` names them in errors); fuzzed by perf-user/fuzz.
pub fn parse_report(path: &Path, data: &[u8]) -> Result<Report, ExportError> {
    parse(path, data).map(|(r, _)| r)
}

/// The report, and the note on a truncated NDJSON tail (also in the report's `warnings`).
fn parse(path: &Path, data: &[u8]) -> Result<(Report, Option<String>), ExportError> {
    let mut truncated = None;
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
                        .map(|r| (r, None))
                        .map_err(parse_err);
                }
                Some(v) if v.get("schema").is_some() => {
                    let mut from_end = text.lines().rev().filter(|l| !l.trim().is_empty());
                    let last = from_end.next().unwrap_or("");
                    match serde_json::from_str(last) {
                        Ok(v) => v,
                        // No final newline: the writer was cut off mid-snapshot (a crash, a full
                        // disk, a copy taken while it ran). The snapshot before it is whole.
                        Err(e) if !text.ends_with('\n') => {
                            let before = from_end.next().unwrap_or("");
                            let v = serde_json::from_str(before)
                                .map_err(|e| parse_err(format!("line before the truncated last line: {e}")))?;
                            truncated = Some(format!(
                                "{}: the last line is truncated ({} bytes, {e}); using the snapshot before it",
                                path.display(),
                                last.len()
                            ));
                            v
                        }
                        Err(e) => return Err(parse_err(format!("last line: {e}"))),
                    }
                }
                _ => return Err(parse_err(e.to_string())),
            }
        }
    };
    if value.get("schema").is_none() && value.get("type").is_some() {
        return crate::output::bpftrace_import::import(&String::from_utf8_lossy(data), &path.display().to_string())
            .map(|r| (r, None))
            .map_err(parse_err);
    }
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("(none)");
    if schema != SCHEMA {
        return Err(ExportError::Schema { path: path.into(), found: schema.to_string() });
    }
    let mut report: Report = serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))?;
    if let Some(note) = &truncated {
        report.warnings.push(note.clone());
    }
    Ok((report, truncated))
}

/// Where the `e` key's snapshots go: next to `--export FILE.json` as `FILE.snapshot-N.json`, or
/// without it as `perf-user-PID.snapshot-N.json` in the working directory; never over the export
/// (written at exit) nor over an earlier snapshot.
pub fn numbered_snapshot_stem(export: Option<&Path>, pid: u32) -> PathBuf {
    match export {
        Some(p) => p.with_extension(""),
        None => PathBuf::from(format!("perf-user-{pid}")),
    }
}

/// Writes `report` to the first free `STEM.snapshot-N.json` (N from 1) and returns its path.
pub fn write_numbered_snapshot(stem: &Path, report: &Report) -> Result<PathBuf, ExportError> {
    let bytes = json(report);
    for n in 1..=10_000u32 {
        let mut name = stem.as_os_str().to_os_string();
        name.push(format!(".snapshot-{n}.json"));
        let path = PathBuf::from(name);
        if files::write_new(&path, &bytes)? {
            return Ok(path);
        }
    }
    let cause = std::io::Error::other("10000 snapshots there already");
    Err(ExportError::Write { path: stem.into(), cause })
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
    /// Creates (empties) the file now, so an unwritable path fails before attaching; never
    /// through a symlink, never anything but a regular file (`files::create_appendable`).
    pub fn create(path: &Path, every: std::time::Duration) -> Result<Snapshots, ExportError> {
        let file = files::create_appendable(path)?;
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
    Ok(files::check_writable(path)?)
}

fn pct(part: u64, total: u64) -> String {
    if total == 0 { UNTIMED.into() } else { format!("{:.0}%", part as f64 * 100.0 / total as f64) }
}

/// A latency cell of a function row: `—` when the function was not timed, `<floor` below what
/// the probe-cost correction can tell from zero (`probe.floor_ns`).
fn lat(f: &FunctionReport, ns: u64) -> String {
    let floor = f.probe.floor_ns;
    if f.latency.count == 0 {
        UNTIMED.into()
    } else if ns < floor {
        format!("<{}", fmt_ns(floor))
    } else {
        fmt_ns(ns)
    }
}

/// A row's latency cells as `lat` writes them: MIN (when `with_min`), then p50 to max.
fn latency_cells(f: &FunctionReport, with_min: bool) -> Vec<String> {
    let l = &f.latency;
    let min = with_min.then_some(l.min_ns);
    min.into_iter().chain([l.p50_ns, l.p90_ns, l.p99_ns, l.p999_ns, l.max_ns]).map(|ns| lat(f, ns)).collect()
}

/// Cells right-aligned in 8 columns, a space apart: the text tables' latency columns.
fn text_cells(cells: &[String]) -> String {
    cells.iter().map(|c| format!("{c:>8}")).collect::<Vec<_>>().join(" ")
}

/// A row's shares of its wall time: own CPU, callees, syscalls, off-CPU.
fn share_cells(a: &Attribution) -> [String; 4] {
    let t = a.total_ns();
    [a.self_oncpu_ns, a.callees_ns, a.syscalls_ns, a.offcpu_ns()].map(|ns| pct(ns, t))
}

/// The function rows of the human tables, as the terminal UI shows them by default: slowest p99
/// first (ties in selection order), functions never called left out (the JSON keeps them).
/// Returns the rows and how many were left out.
fn table_rows(r: &Report) -> (Vec<&FunctionReport>, usize) {
    let mut rows: Vec<&FunctionReport> = r.functions.iter().filter(|f| f.calls() > 0).collect();
    rows.sort_by_key(|f| std::cmp::Reverse(f.latency.p99_ns));
    let hidden = r.functions.len() - rows.len();
    (rows, hidden)
}

/// The same marks as the terminal UI: `x ` probes detached by the overhead guard (its numbers
/// stop there), `! ` a single-stepped probe site (expensive, numbers inflated).
fn mark(f: &FunctionReport) -> &'static str {
    if f.probe.detached {
        "x "
    } else if f.probe.single_step {
        "! "
    } else {
        ""
    }
}

const MARK_LEGEND: &str =
    "x: probes detached by the overhead guard during the run (numbers stop there); !: single-stepped probe site";

/// `--interference`: what took each function's CPU away, and the steal source's cross-check.
fn interference_lines(o: &mut String, r: &Report) {
    let source = if r.steal_source == "kvm_steal_time" { "kvm_steal_time" } else { "not a VM / not available" };
    let nmis = match r.nmi_count {
        Some(n) => format!("NMIs: not split out, {n} during the run"),
        None => "NMIs: not split out".to_owned(),
    };
    let _ = writeln!(o, "\ninterference while innermost (steal: {source}; {nmis}):");
    for f in &r.functions {
        let t = f.attribution.parts.interference_text(fmt_ns);
        if !t.is_empty() {
            let _ = writeln!(o, "  {}: {t}", control(&r.shown_name(f)));
        }
    }
    for c in &r.cpu_steal {
        let _ = writeln!(
            o,
            "  cpu{}: steal over the run {} by the steal clock, {} by /proc/stat",
            c.cpu,
            fmt_ns(c.steal_ns),
            fmt_ns(c.proc_stat_steal_ns)
        );
    }
}

/// The human tables: functions with percentiles and attribution, then syscalls, exemplars and losses.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    text_header(&mut o, r);
    text_functions(&mut o, r);
    if r.interference {
        interference_lines(&mut o, r);
    }
    spans::text(r, &mut o);
    text_syscalls(&mut o, r);
    text_syscalls_innermost(&mut o, r);
    text_exemplars(&mut o, r);
    text_lost_and_warnings(&mut o, r);
    // Names went through `control` above; this catches whatever else came from the input
    // (syscall names from bpftrace, symbols in warnings) and keeps the line breaks.
    escape::lines(&o).into_owned()
}

/// The target and what was traced, and the measured probe costs.
fn text_header(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "pid {} {} — {} traced, {} probe hits",
        r.target.pid,
        control(&r.target.exe),
        fmt_ns(r.duration_ns),
        fmt_count(r.probe_hits)
    );
    if let Some(line) = probe_costs_line(r) {
        let _ = writeln!(o, "{line}");
    }
}

/// The functions table (the terminal UI's columns), the uncalled ones named or counted.
fn text_functions(o: &mut String, r: &Report) {
    let (rows, hidden) = table_rows(r);
    let names: Vec<String> = rows.iter().map(|f| format!("{}{}", mark(f), control(&r.shown_name(f)))).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(8).clamp(8, 60);
    // The terminal UI's column names (Own, Callee, Sys, Off: shares of the wall time).
    let _ = (!rows.is_empty()).then(|| {
        writeln!(
            o,
            "{:<width$} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>5} {:>6} {:>5} {:>5}",
            "FUNCTION", "CALLS", "MIN", "P50", "P90", "P99", "P99.9", "MAX", "OWN", "CALLEE", "SYS", "OFF"
        )
    });
    for (f, name) in rows.iter().zip(&names) {
        let [own, callee, sys, off] = share_cells(&f.attribution.parts);
        let _ = writeln!(
            o,
            "{:<width$} {:>9} {}  {own:>5} {callee:>6} {sys:>5} {off:>5}",
            truncate(name, width),
            f.calls(),
            text_cells(&latency_cells(f, true)),
        );
    }
    // A few are named on one line (a run tracing one idle function still says which).
    let uncalled: Vec<String> =
        r.functions.iter().filter(|f| f.calls() == 0).map(|f| control(&r.shown_name(f)).into_owned()).collect();
    if (1..=3).contains(&hidden) {
        let _ = writeln!(o, "not called: {}", uncalled.join(", "));
    } else if hidden > 0 {
        let _ = writeln!(o, "({hidden} traced functions not called: not shown; the JSON export lists them)");
    }
    if rows.iter().any(|f| !mark(f).is_empty()) {
        let _ = writeln!(o, "{MARK_LEGEND}");
    }
}

/// The syscalls table, those made inside traced functions first.
fn text_syscalls(o: &mut String, r: &Report) {
    if !r.syscalls.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<20} {:>9} {:>7} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "SYSCALL", "COUNT", "ERRORS", "P50", "P99", "MAX", "INSIDE", "TOTAL"
        );
        for (s, inside_ns) in syscalls_inside_first(r) {
            let [name, count, errors, p50, p99, max, total] = syscall_cells(s);
            let inside = fmt_ns(inside_ns);
            let _ =
                writeln!(o, "{name:<20} {count:>9} {errors:>7} {p50:>8} {p99:>8} {max:>8} {inside:>10} {total:>10}");
        }
    }
}

/// Per function, the syscalls made while it was the innermost traced frame.
fn text_syscalls_innermost(o: &mut String, r: &Report) {
    let with_sys: Vec<_> = r.functions.iter().filter(|f| !f.attribution.syscalls.is_empty()).collect();
    if !with_sys.is_empty() {
        let _ = writeln!(o, "\nsyscalls while innermost (count, wall time):");
        for f in with_sys {
            let list: Vec<String> = f
                .attribution
                .syscalls
                .iter()
                .take(6)
                .map(|s| format!("{} {}× {}", control(&s.name), fmt_count(s.count), fmt_ns(s.total_ns)))
                .collect();
            let more = f.attribution.syscalls.len().saturating_sub(6);
            let more = if more > 0 { format!(", +{more} more") } else { String::new() };
            let _ = writeln!(o, "  {}: {}{more}", control(&r.shown_name(f)), list.join(", "));
        }
    }
}

/// The five slowest calls kept, each with its breakdown.
fn text_exemplars(o: &mut String, r: &Report) {
    if !r.exemplars.is_empty() {
        let _ = writeln!(o, "\nslowest calls ({} kept):", r.exemplars.len());
        let mut ex: Vec<_> = r.exemplars.iter().collect();
        ex.sort_by_key(|e| std::cmp::Reverse(e.duration_ns));
        for e in ex.iter().take(5) {
            if let Some(line) = spans::exemplar_line(e) {
                let _ = writeln!(o, "{line}");
                continue;
            }
            let a = &e.attribution;
            let mut top = e.syscalls.first().map(|s| format!(", mostly {}", control(&s.name))).unwrap_or_default();
            let callees = e.callees_text();
            if !callees.is_empty() {
                top = format!("{top}; {}", control(&callees));
            }
            // `--interference`: what took the CPU away, e.g. "312 µs: steal 296 µs".
            let interf = a.interference_text(fmt_ns);
            let interf = if interf.is_empty() { interf } else { format!("; {}: {interf}", fmt_ns(e.duration_ns)) };
            let _ = writeln!(
                o,
                "  {} {} tid {} ({}): self {} callees {} sys {} off-cpu {}{}{interf}",
                fmt_ns(e.duration_ns),
                control(&e.symbol),
                e.tid,
                control(&e.thread),
                fmt_ns(a.self_oncpu_ns),
                fmt_ns(a.callees_ns),
                fmt_ns(a.syscalls_ns),
                fmt_ns(a.offcpu_ns()),
                top
            );
        }
    }
}

/// Loss counters (when any is non-zero) and warnings.
fn text_lost_and_warnings(o: &mut String, r: &Report) {
    if r.lost.total() > 0 || r.lost.exemplars_evicted > 0 || r.lost.span_unmatched > 0 {
        let l = &r.lost;
        let _ = writeln!(
            o,
            "\nlost: ringbuf_full {} thread_map_full {} depth_overflow {} orphan_return {} orphan_entry {} attr_map_full {} exemplars_evicted {} span_unmatched {}",
            l.ringbuf_full,
            l.thread_map_full,
            l.depth_overflow,
            l.orphan_return,
            l.orphan_entry,
            l.attr_map_full,
            l.exemplars_evicted,
            l.span_unmatched
        );
    }
    for w in &r.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
}

/// What a probed call cost on each kind of probe site the run traced, as measured at start-up:
/// `probe cost per call (measured): emulated 1.2µs ×40, single-stepped 24.0µs ×3`.
fn probe_costs_line(r: &Report) -> Option<String> {
    let used: Vec<String> = r
        .probe_costs
        .iter()
        .filter(|c| c.functions > 0)
        .map(|c| {
            let name = match c.class.as_str() {
                "single_step" => "single-stepped",
                "nop5" => "5-byte nop",
                other => other,
            };
            format!("{} {} ×{}", control(name), fmt_ns(c.per_call_ns), c.functions)
        })
        .collect();
    (!used.is_empty()).then(|| format!("probe cost per call (measured at start-up, ×functions): {}", used.join(", ")))
}

/// Syscalls as the UI ranks them: by their wall time inside traced functions (`INSIDE`, from the
/// functions' `attribution.syscalls`), then by total time; idle waits of untraced code last.
fn syscalls_inside_first(r: &Report) -> Vec<(&crate::output::report::SyscallReport, u64)> {
    let inside = |name: &str| -> u64 {
        r.functions.iter().flat_map(|f| &f.attribution.syscalls).filter(|u| u.name == name).map(|u| u.total_ns).sum()
    };
    let mut rows: Vec<_> = r.syscalls.iter().map(|s| (s, inside(&s.name))).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.total_ns.cmp(&a.0.total_ns)));
    rows
}

/// One syscall row's cells, the same in the text and Markdown tables.
fn syscall_cells(s: &crate::output::report::SyscallReport) -> [String; 7] {
    [
        control(&s.name).into_owned(),
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

const CSV_HEADER: &str = "kind,name,count,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,self_oncpu_ns,callees_ns,syscalls_ns,offcpu_blocked_ns,offcpu_runqueue_ns,errors,detached";

/// A CSV cell; control characters are escaped first (a CSV is printed as often as it is loaded).
fn csv_field(s: &str) -> String {
    let s = control(s);
    if s.contains([',', '"']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.into_owned() }
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
            "function,{},{},{},{},{},{},{},,{}",
            csv_field(&r.shown_name(f)),
            csv_latency(&f.latency),
            a.self_oncpu_ns,
            a.callees_ns,
            a.syscalls_ns,
            a.offcpu_blocked_ns,
            a.offcpu_runqueue_ns,
            f.probe.detached
        );
    }
    spans::csv(r, &mut o);
    for s in &r.syscalls {
        let _ = writeln!(o, "syscall,{},{},,,,,,{},", csv_field(&s.name), csv_latency(&s.latency), s.errors);
    }
    o
}

pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "### pid {} `{}` ({} traced)\n", r.target.pid, control(&r.target.exe), fmt_ns(r.duration_ns));
    let _ = writeln!(o, "| function | calls | p50 | p90 | p99 | p99.9 | max | own | callee | sys | off |");
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (rows, hidden) = table_rows(r);
    for f in rows {
        let _ = writeln!(
            o,
            "| `{}`{} | {} | {} | {} |",
            control(&r.shown_name(f)).replace('|', "\\|").replace('`', "'"),
            if f.probe.detached { " (detached by the overhead guard)" } else { "" },
            f.calls(),
            latency_cells(f, false).join(" | "),
            share_cells(&f.attribution.parts).join(" | "),
        );
    }
    if hidden > 0 {
        let _ = writeln!(o, "\n{hidden} traced functions not called (not shown).");
    }
    spans::markdown(r, &mut o);
    if !r.syscalls.is_empty() {
        let _ = writeln!(o, "\n| syscall | count | errors | p50 | p99 | max | total |");
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|");
        for s in &r.syscalls {
            let _ = writeln!(o, "| {} |", syscall_cells(s).join(" | "));
        }
    }
    escape::lines(&o).into_owned()
}

mod spans;
#[cfg(test)]
mod tests;
