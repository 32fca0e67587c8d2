//! Every symbol the truth file names must be a real, non-inlined function in
//! the binary, exactly once, under exactly that demangled name.

#![expect(clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{TempDir, read_truth, run};
use object::{Object, ObjectSymbol, SymbolKind};

/// Demangled names (`{:#}`: no hash) of the defined, sized functions.
fn function_symbols(binary: &Path) -> HashMap<String, usize> {
    let data = std::fs::read(binary).expect("read binary");
    let file = object::File::parse(&*data).expect("parse ELF");
    let mut counts = HashMap::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || sym.is_undefined() || sym.size() == 0 {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        let demangled = format!("{:#}", rustc_demangle::demangle(name));
        *counts.entry(demangled).or_insert(0) += 1;
    }
    counts
}

fn assert_truth_symbols_in(binary: &Path, symbols: &[String]) {
    let found = function_symbols(binary);
    for symbol in symbols {
        assert_eq!(
            found.get(symbol).copied().unwrap_or(0),
            1,
            "{symbol} must be exactly one function in {}",
            binary.display()
        );
    }
}

fn truth_symbols() -> Vec<String> {
    let dir = TempDir::new("symbols");
    let path = dir.join("t.json");
    let out = run(&["--rate", "100000", "--messages", "100", "--truth", path.to_str().expect("utf-8")]);
    assert!(out.status.success());
    read_truth(&path)["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .map(|f| f["symbol"].as_str().expect("symbol").to_owned())
        .collect()
}

#[test]
fn truth_symbols_are_real_functions_of_the_test_binary() {
    let symbols = truth_symbols();
    assert_eq!(symbols.len(), 8);
    assert_truth_symbols_in(Path::new(common::BIN), &symbols);
}

/// The release build is what users trace; set TARGET_APP_RELEASE_BIN to
/// check it too (`cargo build --release -p target-app` first). Skipped
/// otherwise, so plain `cargo test` never depends on a stale binary.
#[test]
fn truth_symbols_are_real_functions_of_the_release_binary() {
    let Some(binary) = std::env::var_os("TARGET_APP_RELEASE_BIN") else {
        eprintln!("TARGET_APP_RELEASE_BIN not set; skipping");
        return;
    };
    assert_truth_symbols_in(Path::new(&binary), &truth_symbols());
}
