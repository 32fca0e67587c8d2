//! Symbols as users meet them on real binaries: every name demangled exactly as `rustfilt` /
//! `c++filt` print it, and only function entries probed (compiler-split cold parts never).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use common::*;
use perf_user::target::symbols::SymbolTable;

/// Every raw name the table knows a probe site or a refused place by.
fn raw_names(table: &SymbolTable) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in &table.functions {
        out.push((f.raw.clone(), f.name.clone()));
        out.extend(f.aliases.iter().cloned().zip(f.alias_names.iter().cloned()));
    }
    out.extend(table.not_entries.iter().map(|n| (n.raw.clone(), n.names.name.clone())));
    out
}

/// `c++filt`'s output for each name (one process for all).
fn cxxfilt(names: &[&str]) -> Vec<String> {
    let mut child =
        Command::new("c++filt").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn c++filt");
    let mut input = names.join("\n");
    input.push('\n');
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("c++filt");
    writer.join().expect("writer").expect("write to c++filt");
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect()
}

/// What `rustfilt` prints by default (rustc-demangle's stream filter without hashes).
fn rustfilt(name: &str) -> String {
    let mut out = Vec::new();
    rustc_demangle::demangle_stream(&mut name.as_bytes(), &mut out, false).expect("demangle_stream");
    String::from_utf8(out).expect("utf-8")
}

/// Rust names are demangled as rustfilt does, everything else as c++filt does: over every
/// symbol of `binary`, not a sample. Returns how many were compared, per kind.
fn assert_demangles_like_the_tools(binary: &Path) -> (usize, usize) {
    let table = SymbolTable::read(binary).unwrap_or_else(|e| panic!("{e}"));
    let names = raw_names(&table);
    assert!(names.len() > 20, "{}: only {} symbols", binary.display(), names.len());
    let is_rust = |raw: &str| {
        raw.starts_with("_R")
            || (raw.starts_with("_ZN")
                && rustc_demangle::try_demangle(raw).is_ok_and(|d| format!("{d}") != format!("{d:#}")))
    };
    let (rust, other): (Vec<_>, Vec<_>) = names.iter().partition(|(raw, _)| is_rust(raw));
    let mut wrong = Vec::new();
    for (raw, ours) in &rust {
        let want = rustfilt(raw);
        if *ours != want {
            wrong.push(format!("{raw}\n  ours:     {ours}\n  rustfilt: {want}"));
        }
    }
    let raws: Vec<&str> = other.iter().map(|(raw, _)| raw.as_str()).collect();
    let wants = cxxfilt(&raws);
    assert_eq!(wants.len(), raws.len(), "c++filt lost lines");
    for ((raw, ours), want) in other.iter().zip(&wants) {
        if ours != want {
            wrong.push(format!("{raw}\n  ours:     {ours}\n  c++filt:  {want}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} names of {} differ:\n{}",
        wrong.len(),
        names.len(),
        binary.display(),
        wrong.join("\n")
    );
    (rust.len(), other.len())
}

#[test]
fn every_target_app_symbol_demangles_like_rustfilt_and_cxxfilt() {
    if !tool_available("every_target_app_symbol_demangles_like_rustfilt_and_cxxfilt", "c++filt", &["--version"]) {
        return;
    }
    let (rust, _) = assert_demangles_like_the_tools(&target_app_bin());
    assert!(rust > 500, "target-app has only {rust} Rust symbols");
}

/// Every symbol, pack expansions of forwarding references included (`DpOT_`, e.g.
/// `std::tuple<long const&>&&` in `_M_emplace_hint_unique`, which cpp_demangle alone drops),
/// in every position the fixture's `packs` namespace puts them: last, before another parameter,
/// in template arguments, in a function type, with `const&` and `* const volatile` patterns.
#[test]
fn every_symbol_of_a_gxx_o2_fixture_demangles_like_cxxfilt() {
    let test = "every_symbol_of_a_gxx_o2_fixture_demangles_like_cxxfilt";
    if !tool_available(test, "c++filt", &["--version"]) || !tool_available(test, "g++", &["--version"]) {
        return;
    }
    let dir = TempDir::new("gxx-names");
    let bin = compile(&dir, "g++", &["-O2", "-std=gnu++17"], "names.cpp", "names");
    let (_, cpp) = assert_demangles_like_the_tools(&bin);
    assert!(cpp > 20, "only {cpp} C++ symbols");
    // The pack shapes are in the binary (not inlined away): each is one of the names compared.
    let table = SymbolTable::read(&bin).unwrap_or_else(|e| panic!("{e}"));
    let packs: Vec<&str> = table.functions.iter().map(|f| f.raw.as_str()).filter(|r| r.contains("Dp")).collect();
    for shape in ["leading", "in_args", "in_fn_type", "trailing", "pointers", "3two"] {
        assert!(packs.iter().any(|r| r.contains(shape)), "no pack expansion in {shape}: {packs:?}");
    }
}

#[test]
fn gxx_clones_match_under_their_source_name_and_cold_parts_are_left_out() {
    let test = "gxx_clones_match_under_their_source_name_and_cold_parts_are_left_out";
    if !tool_available(test, "c++filt", &["--version"]) || !tool_available(test, "g++", &["--version"]) {
        return;
    }
    let dir = TempDir::new("gxx-clones");
    let bin = compile(&dir, "g++", &["-O2", "-std=gnu++17"], "names.cpp", "names");
    let table = SymbolTable::read(&bin).unwrap_or_else(|e| panic!("{e}"));
    let checked = table.resolve(&["checked(*)".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!checked.functions.is_empty());
    assert!(
        checked.functions.iter().all(|f| f.base.starts_with("checked(") && f.name.contains("[clone .isra.")),
        "{:?}",
        checked.functions
    );
    // Its `.cold` part is named and left out, never probed.
    assert!(checked.notes.iter().any(|n| n.contains("[clone .cold]")), "{:?}", checked.notes);
    // Every name, clones and pack expansions included, as c++filt prints it.
    let names: Vec<(String, String)> = table.functions.iter().map(|f| (f.raw.clone(), f.name.clone())).collect();
    let raws: Vec<&str> = names.iter().map(|(r, _)| r.as_str()).collect();
    for ((raw, ours), want) in names.iter().zip(cxxfilt(&raws)) {
        assert_eq!(*ours, want, "{raw}");
    }
}

#[test]
fn every_symbol_of_a_v0_mangled_rust_build_demangles_like_rustfilt() {
    let dir = TempDir::new("v0-names");
    let bin = compile(
        &dir,
        "rustc",
        &["-O", "--edition", "2024", "-C", "symbol-mangling-version=v0", "-C", "panic=abort"],
        "v0_names.rs",
        "v0_names",
    );
    let table = SymbolTable::read(&bin).unwrap_or_else(|e| panic!("{e}"));
    let own = table.select(&["v0_names::*".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    assert!(own.iter().all(|f| f.raw.starts_with("_R")), "not v0: {own:?}");
    assert!(own.iter().any(|f| f.name == "v0_names::by_level"), "{own:?}");
    let (rust, _) = assert_demangles_like_the_tools(&bin);
    assert!(rust > 100, "only {rust} Rust symbols");
}

/// "calls hot_sum=N hot_check=N hot_label=N checksum=N" → its fields.
fn fixture_result(line: &str) -> std::collections::HashMap<String, u64> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or_else(|e| panic!("{line}: {e}"))))
        .collect()
}

/// Regression (issue 16 item 3): `hot*` matched `hot.cold`, whose return probe corrupted the
/// target's result. Now only the entries are probed, the fragments and label are named in one
/// line, every call is counted, and the checksum is the untraced one.
#[test]
fn glob_over_cold_split_c_functions_probes_only_entries_and_keeps_the_result() {
    let test = "glob_over_cold_split_c_functions_probes_only_entries_and_keeps_the_result";
    if !tool_available(test, "cc", &["--version"]) || !bpf_available(test) {
        return;
    }
    let dir = TempDir::new("cold-parts");
    let bin = compile(&dir, "cc", &["-O2", "-fno-omit-frame-pointer"], "cold_parts.c", "cold_parts");
    let rounds = "20000";
    let untraced = Command::new(&bin).arg(rounds).output().expect("run fixture");
    let untraced = String::from_utf8_lossy(&untraced.stdout).lines().last().unwrap_or_default().to_string();
    let want = fixture_result(&untraced);

    let table = SymbolTable::read(&bin).unwrap_or_else(|e| panic!("{e}"));
    let cold: Vec<&str> = table.not_entries.iter().map(|n| n.names.name.as_str()).collect();
    assert!(cold.iter().any(|n| n.starts_with("hot_") && n.ends_with(".cold")), "cc -O2 made no .cold part: {cold:?}");
    assert!(cold.contains(&"hot_label_inner"), "{cold:?}");

    // The fixture does nothing but call these tiny functions: the guard must not detach them.
    let (mut target, out) = spawn_ready(Command::new(&bin).args([rounds, "--hold"]));
    let export = dir.join("r.json");
    let mut pu = Command::new(PERF_USER)
        .args([
            "attach",
            "--no-tui",
            "--pid",
            &target.id().to_string(),
            "--func",
            "hot*",
            "--max-overhead",
            "10000",
            "--export",
        ])
        .arg(&export)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn perf-user");
    let pu_out = Lines::new(pu.stdout.take().expect("stdout"));
    let attached = pu_out.wait_for("attached ", Duration::from_secs(30));
    assert!(attached.contains("attached") && attached.contains(" 3 functions"), "{attached}");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(target.id() as i32, libc::SIGUSR2) };
    let result = out.wait_for("checksum=", Duration::from_secs(60));
    assert_eq!(fixture_result(&result)["checksum"], want["checksum"], "the traced target computed a wrong result");
    // The run ends with SIGINT while the target is still alive: perf-user's final reading.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pu.id() as i32, libc::SIGINT) };
    let pu_done = pu.wait_with_output().expect("perf-user");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(target.id() as i32, libc::SIGUSR2) };
    assert!(target.wait().expect("wait").success());
    assert!(pu_done.status.success(), "perf-user: {}", String::from_utf8_lossy(&pu_done.stderr));
    let stderr = String::from_utf8_lossy(&pu_done.stderr);
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("--func 'hot*': left out")).collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    for name in &cold {
        assert!(notes[0].contains(name), "{name} not named: {}", notes[0]);
    }
    let report = read_json(&export);
    let symbols: Vec<&str> =
        report["functions"].as_array().expect("functions").iter().filter_map(|f| f["symbol"].as_str()).collect();
    assert_eq!(symbols.len(), 3, "{symbols:?}");
    for f in ["hot_sum", "hot_check", "hot_label"] {
        assert_eq!(u(&function(&report, f)["calls"]), want[f], "{f}");
    }
}

/// An explicit request for a `.cold` fragment or a label is refused in one line.
#[test]
fn explicit_cold_fragment_or_label_is_refused() {
    let test = "explicit_cold_fragment_or_label_is_refused";
    if !tool_available(test, "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("cold-refuse");
    let bin = compile(&dir, "cc", &["-O2"], "cold_parts.c", "cold_parts");
    let table = SymbolTable::read(&bin).unwrap_or_else(|e| panic!("{e}"));
    for pattern in ["hot_sum.cold", "hot_label_inner", "*.cold"] {
        let err = table.resolve(&[pattern.to_string()]).expect_err(pattern).to_string();
        assert!(err.contains("no function entry") && !err.contains('\n'), "{pattern}: {err}");
    }
    let addr = table.not_entries[0].address;
    let err = table.resolve(&[format!("{addr:#x}")]).expect_err("address of a fragment").to_string();
    assert!(err.contains("no function entry"), "{err}");
}
