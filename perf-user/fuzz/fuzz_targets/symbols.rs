//! Arbitrary bytes as the target's binary: parsing, selecting, demangling and reading its DWARF
//! for inlined functions must never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use perf_user::{bpf::probe_site, target::symbols::SymbolTable};

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = SymbolTable::parse(Path::new("fuzz.elf"), data) {
        let _ = table.resolve(&["*".to_string(), "0x1000".to_string(), "*.cold".to_string()]);
        let _ = table.close_matches("abc::*::apply", 5);
        for f in table.functions.iter().take(64) {
            let _ = probe_site::classify(&f.entry_bytes, f.address);
        }
    }
    // Hostile DWARF where a pattern matched no symbol: an answer or none, never a panic.
    let _ = perf_user::target::symbols::inlined::lookup(data, "*");
    if let Ok(name) = std::str::from_utf8(data) {
        let _ = perf_user::target::symbols::Names::of(name);
        let _ = perf_user::target::symbols::glob_match(name, "target_app::book::OrderBook::apply");
    }
});
