//! Functions inlined everywhere (`static inline` in C at -O2): `--func` on one has no symbol to
//! probe, and perf-user says where the code went (its callers, from DWARF
//! `DW_TAG_inlined_subroutine`) in one line, instead of "matches nothing". Without DWARF (a
//! stripped copy) it says it could not look. Reading only: no BPF needed.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::process::Command;

use common::*;
use perf_user::target::symbols::{SymbolError, SymbolTable, inlined};

fn build(dir: &TempDir, args: &[&str], out: &str) -> std::path::PathBuf {
    compile(dir, "cc", args, "inlined.c", out)
}

#[test]
fn an_inlined_only_function_names_its_callers() {
    if !tool_available("an_inlined_only_function_names_its_callers", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("inlined");
    let exe = build(&dir, &["-O2", "-g"], "inlined");
    let table = SymbolTable::read(&exe).unwrap();
    assert!(table.functions.iter().all(|f| f.name != "scale"), "scale has an out-of-line copy: the fixture is wrong");
    let data = std::fs::read(&exe).unwrap();
    let inlined::Lookup::Found(found) = inlined::lookup(&data, "scale") else { panic!("no DWARF read") };
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].sites, 3, "one site in price, two in quantity: {found:?}");
    assert_eq!(found[0].callers, ["price", "quantity"]);
    let err = table.select(&["scal*".into()]).unwrap_err();
    assert!(matches!(err, SymbolError::Inlined { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("scale is inlined at 3 sites in price, quantity"), "{text}");
    assert!(text.contains("trace its callers"), "{text}");
    // A pattern that matches neither a symbol nor inlined code is the plain "matches no function".
    let err = table.select(&["nothing_here".into()]).unwrap_err();
    assert!(matches!(err, SymbolError::NoMatch { .. }), "{err}");
    assert!(!err.to_string().contains("DWARF"), "{err}");
}

#[test]
fn without_debug_info_the_miss_says_it_could_not_look() {
    if !tool_available("without_debug_info_the_miss_says_it_could_not_look", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("inlined-nodebug");
    let exe = build(&dir, &["-O2"], "inlined");
    let data = std::fs::read(&exe).unwrap();
    assert_eq!(inlined::lookup(&data, "scale"), inlined::Lookup::NoDebugInfo);
    let err = SymbolTable::read(&exe).unwrap().select(&["scale".into()]).unwrap_err();
    assert!(matches!(err, SymbolError::NoMatch { .. }), "{err}");
    assert!(err.to_string().contains("no DWARF debug info"), "{err}");
    // Garbage where DWARF should be: no answer, no panic.
    assert_eq!(inlined::lookup(b"\x7fELF garbage", "scale"), inlined::Lookup::NoDebugInfo);
}

/// The whole path: `perf-user run --func scale` refuses in one line, naming the callers, with a
/// non-zero exit and CMD never started.
#[test]
fn run_refuses_an_inlined_only_function_in_one_line() {
    if !tool_available("run_refuses_an_inlined_only_function_in_one_line", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("inlined-run");
    let exe = build(&dir, &["-O2", "-g"], "inlined");
    let out = Command::new(PERF_USER).args(["run", "--no-tui", "--func", "scale", "--"]).arg(&exe).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("scale is inlined at 3 sites in price, quantity"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"), "CMD started");
}

/// target-app (Rust, release, `debug = "line-tables-only"`): `StageStats::record` is inlined into
/// the pipeline everywhere. Its DWARF names functions without their path, so the full path is
/// looked for by its last segment and the message says so.
#[test]
fn a_rust_function_inlined_everywhere_is_found_by_its_last_segment() {
    let table = SymbolTable::read(&target_app_bin()).unwrap();
    let pattern = "target_app::stage::StageStats::record";
    if table.select(&[pattern.into()]).is_ok() {
        // This build kept an out-of-line copy: nothing inlined-only to check.
        eprintln!("skipping: {pattern} has a symbol in this build");
        return;
    }
    let err = table.select(&[pattern.into()]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SymbolError::Inlined { .. }), "{text}");
    assert!(text.contains("looked for as 'record'") && text.contains("record is inlined at"), "{text}");
}
