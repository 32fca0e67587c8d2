//! Section 8: perf-user's userspace hot paths, the criterion benches in `perf-user/benches/`, run
//! through `cargo bench` with criterion's one-line `bencher` output and read back into rows.

use std::process::Command;

use super::results::{HotPath, HotPaths};

/// Runs every criterion bench of perf-user (`--quick`: short warm-up and measurement).
pub fn run(quick: bool) -> Result<HotPaths, String> {
    let mut cmd = Command::new(crate::cargo());
    // Named: `--benches` would also run the lib's unit tests, which reject criterion's flags.
    cmd.args(["bench", "-p", "perf-user", "--features", "fixtures", "--bench", "hot_paths", "--bench", "render"]);
    cmd.args(["--", "--output-format", "bencher"]);
    if quick {
        cmd.args(["--warm-up-time", "0.2", "--measurement-time", "0.5"]);
    }
    let out = cmd.current_dir(crate::workspace_root()).output().map_err(|e| format!("failed: cargo bench: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
        return Err(format!("failed: cargo bench exited with {}: {last}", out.status));
    }
    let rows = parse(&stdout);
    if rows.is_empty() {
        return Err("failed: cargo bench printed no bencher lines".into());
    }
    // The render bench prints one frame's time against the UI's frame budget.
    let notes = stdout.lines().filter(|l| l.starts_with("one frame:")).map(str::to_owned).collect();
    Ok(HotPaths { rows, notes })
}

/// `test NAME ... bench: MEDIAN ns/iter (+/- DEVIATION)` lines (numbers may carry commas).
pub fn parse(out: &str) -> Vec<HotPath> {
    let num = |s: &str| s.trim().replace(',', "").parse::<f64>().ok();
    out.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("test ")?.split_once(" ... bench:")?;
            let (median, rest) = rest.split_once(" ns/iter")?;
            let deviation = rest.trim().strip_prefix("(+/- ")?.strip_suffix(')')?;
            Some(HotPath { name: name.trim().to_owned(), median_ns: num(median)?, deviation_ns: num(deviation)? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencher_lines_are_read_and_everything_else_skipped() {
        let out = "\
test merge_hist: 2 CPUs x 1184 buckets -> sparse ... bench:        1,234 ns/iter (+/- 56)
one frame: 1.2ms = 1.20 % of the 100ms frame budget
test draw 100 functions, 200x50 ... bench:      987654 ns/iter (+/- 1,000)
test broken ... bench: fast
";
        let rows = parse(out);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].name, "merge_hist: 2 CPUs x 1184 buckets -> sparse");
        assert_eq!((rows[0].median_ns, rows[0].deviation_ns), (1234.0, 56.0));
        assert_eq!((rows[1].median_ns, rows[1].deviation_ns), (987_654.0, 1000.0));
    }
}
