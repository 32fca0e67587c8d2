//! ELF function symbols of the target: read with `object`, demangled (Rust legacy and v0, C++),
//! matched against the user's globs, and located as file offsets for uprobes.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

#[derive(Debug, thiserror::Error)]
pub enum SymbolError {
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an ELF binary perf-user can read: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error(
        "{binary} has no function symbols (stripped?); pass --symbols FILE with an unstripped copy, or --func 0xADDR"
    )]
    Stripped { binary: PathBuf },
    #[error("--func '{pattern}' matches no function in {binary}{}", suggest(.suggestions))]
    NoMatch { pattern: String, binary: PathBuf, suggestions: Vec<String> },
    #[error("--symbols {symbols} does not belong to {binary} (their build ids differ)")]
    Mismatch { symbols: PathBuf, binary: PathBuf },
    #[error("--func {address:#x} is not the start of a function in {binary}")]
    BadAddress { address: u64, binary: PathBuf },
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() { String::new() } else { format!("; close matches: {}", suggestions.join(", ")) }
}

/// One function of the binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// The name as stored in the binary (mangled); what aya and the kernel know.
    pub raw: String,
    /// Demangled without hashes (`target_app::book::OrderBook::apply`); what users match and read.
    pub name: String,
    /// ELF virtual address.
    pub address: u64,
    pub size: u64,
    /// Offset of the first instruction in the file: where the uprobe goes.
    pub file_offset: u64,
    /// The first bytes of the function (up to 16), to see what the kernel will do at the probe.
    pub entry_bytes: Vec<u8>,
    /// Other names of the same code (identical code folding, aliases), raw; a glob may match any.
    pub aliases: Vec<String>,
}

impl Function {
    fn matches(&self, pattern: &str) -> bool {
        glob_match(pattern, &self.name)
            || glob_match(pattern, &self.raw)
            || self.aliases.iter().any(|a| glob_match(pattern, a) || glob_match(pattern, &demangle(a)))
    }
}

#[derive(Debug)]
pub struct SymbolTable {
    pub binary: PathBuf,
    /// Sorted by address, one entry per address (aliases keep the first name).
    pub functions: Vec<Function>,
    /// Why an unwind (Rust panic=unwind, C++ exception) may cross a probed frame, if it may:
    /// a uretprobe on such a frame aborts the process.
    pub unwind_risk: Option<String>,
    /// GNU build id, to check that a `--symbols` file matches the running binary.
    pub build_id: Option<Vec<u8>>,
    /// Executable segments of the running binary: (address, size, file offset).
    exec_segments: Vec<(u64, u64, u64)>,
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {:#x}", self.name, self.address)
    }
}

/// Demangles Rust (legacy and v0) and C++ names; anything else is returned as is.
pub fn demangle(raw: &str) -> String {
    // Compiler-added suffixes (ThinLTO's `.llvm.123`, `.cold`, …) follow the mangled name.
    let base = raw.split_once('.').map_or(raw, |(b, _)| b);
    if (raw.starts_with("_R") || is_rust_legacy(base))
        && let Ok(d) = rustc_demangle::try_demangle(raw)
    {
        return format!("{d:#}");
    }
    if raw.starts_with("_Z")
        && let Ok(sym) = cpp_demangle::Symbol::new(raw)
        && let Ok(d) = sym.demangle()
    {
        return d;
    }
    raw.to_string()
}

/// Legacy Rust symbols are Itanium-style `_ZN…E` whose last path segment is `17h<16 hex>`.
fn is_rust_legacy(raw: &str) -> bool {
    let Some(body) = raw.strip_prefix("_ZN").and_then(|r| r.strip_suffix('E')) else {
        return false;
    };
    // "17h" + 16 hex digits = 19 bytes.
    body.len() > 19
        && body.is_char_boundary(body.len() - 19)
        && body[body.len() - 19..].starts_with("17h")
        && body[body.len() - 16..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl SymbolTable {
    pub fn read(path: &Path) -> Result<Self, SymbolError> {
        let data = read_file(path)?;
        Self::parse(path, &data)
    }

    /// Symbols from `symbol_file` (an unstripped copy or a separate debug file) for the code of
    /// `binary` (the stripped file that runs): names and addresses come from the first, file
    /// offsets and instruction bytes from the second. Their build ids must agree.
    pub fn read_split(symbol_file: &Path, binary: &Path) -> Result<Self, SymbolError> {
        let (sym_data, bin_data) = (read_file(symbol_file)?, read_file(binary)?);
        let bin = parse_elf(binary, &bin_data)?;
        let mut table = Self::parse_with_layout(symbol_file, &sym_data, &bin, &bin_data)?;
        let bin_id = bin.build_id().ok().flatten();
        if let (Some(a), Some(b)) = (bin_id, table.build_id.as_deref())
            && a != b
        {
            return Err(SymbolError::Mismatch { symbols: symbol_file.into(), binary: binary.into() });
        }
        table.unwind_risk = table.unwind_risk.or_else(|| unwind_risk(&bin));
        Ok(table)
    }

    /// Parses an ELF image already in memory (`path` is for messages).
    pub fn parse(path: &Path, data: &[u8]) -> Result<Self, SymbolError> {
        let file = parse_elf(path, data)?;
        Self::parse_with_layout(path, data, &file, data)
    }

    fn parse_with_layout(
        path: &Path,
        data: &[u8],
        layout: &object::File<'_>,
        layout_data: &[u8],
    ) -> Result<Self, SymbolError> {
        let file = parse_elf(path, data)?;
        // Loadable segments of the running binary map virtual addresses to file offsets.
        let segments: Vec<(u64, u64, u64)> = layout
            .segments()
            .map(|s| (s.address(), s.size(), s.file_range().0))
            .filter(|&(_, size, _)| size > 0)
            .collect();
        // Code can only start in executable segments (PF_X).
        let exec_segments: Vec<(u64, u64, u64)> = layout
            .segments()
            .filter(|s| matches!(s.flags(), object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0))
            .map(|s| (s.address(), s.size(), s.file_range().0))
            .filter(|&(_, size, _)| size > 0)
            .collect();
        let mut by_addr: BTreeMap<u64, Function> = BTreeMap::new();
        for sym in file.symbols().chain(file.dynamic_symbols()) {
            if sym.kind() != SymbolKind::Text || sym.is_undefined() || sym.address() == 0 {
                continue;
            }
            let Ok(raw) = sym.name() else { continue };
            if raw.is_empty() {
                continue;
            }
            if let Some(f) = by_addr.get_mut(&sym.address()) {
                // The linker folded identical functions (or this is an alias): one probe site,
                // reported under the first name, found by any.
                if f.raw != raw && !f.aliases.iter().any(|a| a == raw) {
                    f.aliases.push(raw.to_string());
                }
                continue;
            }
            let address = sym.address();
            let Some(&(seg_addr, _, seg_off)) =
                segments.iter().find(|&&(a, size, _)| address >= a && address < a.saturating_add(size))
            else {
                continue;
            };
            by_addr.insert(
                address,
                Function {
                    raw: raw.to_string(),
                    name: demangle(raw),
                    address,
                    size: sym.size(),
                    file_offset: address - seg_addr + seg_off,
                    aliases: Vec::new(),
                    entry_bytes: {
                        let off = (address - seg_addr + seg_off) as usize;
                        layout_data.get(off..(off + 16).min(layout_data.len())).unwrap_or(&[]).to_vec()
                    },
                },
            );
        }
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        Ok(Self {
            binary: path.into(),
            functions: by_addr.into_values().collect(),
            unwind_risk: unwind_risk(&file),
            build_id,
            exec_segments,
        })
    }

    /// The functions matching any of `patterns` (globs on the demangled or the raw name, or a
    /// `0x…` start address), in pattern order without duplicates. Every pattern must match.
    pub fn select(&self, patterns: &[String]) -> Result<Vec<Function>, SymbolError> {
        let mut chosen: Vec<Function> = Vec::new();
        for pattern in patterns {
            if let Some(address) = parse_address(pattern) {
                let f = self.at_address(address)?;
                if !chosen.iter().any(|c| c.address == f.address) {
                    chosen.push(f);
                }
                continue;
            }
            if self.functions.is_empty() {
                return Err(SymbolError::Stripped { binary: self.binary.clone() });
            }
            let mut matched = false;
            for f in &self.functions {
                if f.matches(pattern) {
                    matched = true;
                    if !chosen.iter().any(|c| c.address == f.address) {
                        chosen.push(f.clone());
                    }
                }
            }
            if !matched {
                return Err(SymbolError::NoMatch {
                    pattern: pattern.clone(),
                    binary: self.binary.clone(),
                    suggestions: self.close_matches(pattern, 5),
                });
            }
        }
        Ok(chosen)
    }

    /// The function starting at `address`: a known symbol, or (stripped binaries) any address
    /// inside a loadable segment, named by its address.
    fn at_address(&self, address: u64) -> Result<Function, SymbolError> {
        if let Some(f) = self.functions.iter().find(|f| f.address == address) {
            return Ok(f.clone());
        }
        let bad = || SymbolError::BadAddress { address, binary: self.binary.clone() };
        if self.functions.iter().any(|f| address > f.address && address < f.address + f.size) {
            return Err(bad());
        }
        let &(seg_addr, _, seg_off) =
            self.exec_segments.iter().find(|&&(a, size, _)| address >= a && address < a + size).ok_or_else(bad)?;
        Ok(Function {
            raw: format!("{address:#x}"),
            name: format!("{address:#x}"),
            address,
            size: 0,
            file_offset: address - seg_addr + seg_off,
            entry_bytes: Vec::new(),
            aliases: Vec::new(),
        })
    }

    /// Names resembling `pattern`: those containing its longest literal piece, else those whose
    /// last path segment is nearest by edit distance.
    pub fn close_matches(&self, pattern: &str, limit: usize) -> Vec<String> {
        // Every name a function is known by, aliases included.
        let names: Vec<String> = self
            .functions
            .iter()
            .flat_map(|f| std::iter::once(f.name.clone()).chain(f.aliases.iter().map(|a| demangle(a))))
            .collect();
        let piece =
            pattern.split(['*', '?']).flat_map(|p| p.split("::")).max_by_key(|p| p.len()).unwrap_or("").to_lowercase();
        let mut out: Vec<String> = Vec::new();
        if piece.len() >= 3 {
            for n in &names {
                if n.to_lowercase().contains(&piece) && !out.contains(n) {
                    out.push(n.clone());
                    if out.len() == limit {
                        return out;
                    }
                }
            }
        }
        if !out.is_empty() {
            return out;
        }
        let last = pattern.rsplit("::").next().unwrap_or(pattern).replace(['*', '?'], "");
        let mut scored: Vec<(usize, &str)> = names
            .iter()
            .map(|n| (edit_distance(&last, n.rsplit("::").next().unwrap_or(n)), n.as_str()))
            .filter(|&(d, _)| d <= last.len().max(3) / 2)
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(limit).map(|(_, n)| n.to_string()).collect()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, SymbolError> {
    std::fs::read(path).map_err(|source| SymbolError::Read { path: path.into(), source })
}

fn parse_elf<'d>(path: &Path, data: &'d [u8]) -> Result<object::File<'d>, SymbolError> {
    let file =
        object::File::parse(data).map_err(|e| SymbolError::Parse { path: path.into(), reason: e.to_string() })?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(SymbolError::Parse { path: path.into(), reason: "not ELF".into() });
    }
    Ok(file)
}

/// Where the separate debug file of a stripped `binary` can be, by its build id and its
/// `.gnu_debuglink` (the places gdb looks). `dir` is the directory the binary was run from.
pub fn find_debug_file(binary: &Path, dir: &Path) -> Option<PathBuf> {
    let data = std::fs::read(binary).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let mut candidates = Vec::new();
    if let Some(id) = file.build_id().ok().flatten().filter(|id| id.len() > 1) {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        candidates.push(PathBuf::from(format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..])));
    }
    if let Some((name, _crc)) = file.gnu_debuglink().ok().flatten() {
        let name = String::from_utf8_lossy(name).into_owned();
        candidates.push(dir.join(&name));
        candidates.push(dir.join(".debug").join(&name));
        let rel = dir.strip_prefix("/").unwrap_or(dir);
        candidates.push(Path::new("/usr/lib/debug").join(rel).join(&name));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// A binary can start an unwind when it links the unwinding panic runtime or raises C++
/// exceptions; either then imports `_Unwind_RaiseException` or `__cxa_throw` (or, statically
/// linked, defines the Rust `panic_unwind` runtime). panic=abort Rust binaries do neither.
fn unwind_risk(file: &object::File<'_>) -> Option<String> {
    for sym in file.dynamic_symbols().chain(file.symbols()) {
        let Ok(name) = sym.name() else { continue };
        if sym.is_undefined() && (name.starts_with("_Unwind_RaiseException") || name.starts_with("__cxa_throw")) {
            return Some(format!("it imports {}", name.split('@').next().unwrap_or(name)));
        }
        if !sym.is_undefined() && name.contains("12panic_unwind") {
            return Some("it is built with panic=unwind".into());
        }
    }
    None
}

fn parse_address(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(hex, 16).ok()
}

/// Shell-style glob: `*` matches any run of characters (`::` included), `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        assert!(glob_match("target_app::book::*", "target_app::book::OrderBook::apply"));
        assert!(glob_match("*::apply", "target_app::book::OrderBook::apply"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("target_app::risk::*", "target_app::book::OrderBook::apply"));
        assert!(glob_match("*book*apply", "target_app::book::OrderBook::apply"));
        assert!(!glob_match("book", "target_app::book"));
    }

    #[test]
    fn demangles_rust_legacy_v0_and_cpp() {
        assert_eq!(
            demangle("_ZN10target_app4book9OrderBook5apply17h0123456789abcdefE"),
            "target_app::book::OrderBook::apply"
        );
        assert_eq!(demangle("_RNvCs1234_7mycrate3foo"), "mycrate::foo");
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(demangle("main"), "main");
        // Regression: ThinLTO-suffixed Rust names went to the C++ demangler and kept their hash.
        assert_eq!(
            demangle("_ZN12bench_target4many5f000017h0123456789abcdefE.llvm.1234567"),
            "bench_target::many::f0000"
        );
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("apply", "apply"), 0);
        assert_eq!(edit_distance("aply", "apply"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

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
        let text = file
            .sections()
            .find(|s| object::ObjectSection::name(s) == Ok(".text"))
            .unwrap_or_else(|| panic!("no .text"));
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
}
