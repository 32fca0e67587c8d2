//! Unit tests of the symbol table on real binaries: this test executable itself.

use super::*;

/// A real function of this test binary, kept by calling it through `black_box`. Regression:
/// in a clean release build the linker folds it with perf-user's identical calibration
/// target (same address), and the second name used to be dropped, so no glob found it.
#[unsafe(no_mangle)]
#[inline(never)]
extern "C" fn symbols_test_target(x: u64) -> u64 {
    std::hint::black_box(x)
}

#[test]
fn reads_this_test_binary_and_finds_own_function() {
    // The running test executable is a real ELF with Rust symbols.
    let exe = std::env::current_exe().unwrap_or_default();
    let table = SymbolTable::read(&exe).unwrap_or_else(|e| panic!("reading {exe:?}: {e}"));
    assert_eq!(std::hint::black_box(symbols_test_target)(7), 7);
    let found = table.select(&["symbols_test_t*get".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert!(f.file_offset > 0 && f.size > 0);
    // Built with frame pointers, it starts with `push rbp` (0x55), which the kernel emulates.
    assert_eq!(f.entry_bytes.first(), Some(&0x55), "{:x?}", f.entry_bytes);
    // The file offset points at the same bytes the address does.
    let data = std::fs::read(&exe).unwrap_or_default();
    let file = object::File::parse(&*data).unwrap_or_else(|e| panic!("{e}"));
    let text =
        file.sections().find(|s| object::ObjectSection::name(s) == Ok(".text")).unwrap_or_else(|| panic!("no .text"));
    let (text_off, _) = object::ObjectSection::file_range(&text).unwrap_or_default();
    let text_addr = object::ObjectSection::address(&text);
    assert_eq!(f.file_offset - text_off, f.address - text_addr);
}

#[test]
fn no_match_lists_close_names() {
    let exe = std::env::current_exe().unwrap_or_default();
    let table = SymbolTable::read(&exe).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::hint::black_box(symbols_test_target)(7), 7);
    let err = table.select(&["symbols_test_targt".to_string()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("matches no function") && msg.contains("symbols_test_target"), "{msg}");
}

#[test]
fn garbage_is_a_parse_error_not_a_panic() {
    let err = SymbolTable::parse(Path::new("junk"), b"\x7fELF garbage").unwrap_err();
    assert!(matches!(err, SymbolError::Parse { .. }), "{err}");
}

/// glibc's `free` is `__libc_free` (and `cfree`) at one address: `--func 'libc.so.6:free'` shows
/// the name asked for; a glob matching the first name keeps it.
#[test]
fn a_glob_that_matches_only_an_alias_shows_the_alias() {
    let names = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let f = Function {
        raw: "__libc_free".into(),
        name: "__libc_free".into(),
        base: "__libc_free".into(),
        address: 0x1000,
        size: 16,
        object: PathBuf::from("/proc/1/map_files/1000-2000"),
        file_offset: 0x1000,
        entry_bytes: Vec::new(),
        aliases: names(&["cfree", "free"]),
        alias_names: names(&["cfree", "free"]),
    };
    let g = f.named_as("free");
    assert_eq!((g.raw.as_str(), g.name.as_str(), g.base.as_str()), ("free", "free", "free"));
    assert_eq!(g.aliases, names(&["__libc_free", "cfree"]));
    assert_eq!(g.alias_names, g.aliases);
    assert_eq!((g.address, g.file_offset), (f.address, f.file_offset));
    assert_eq!(f.named_as("__libc_*"), f);
    assert_eq!(f.named_as("*free").name, "__libc_free");
}
