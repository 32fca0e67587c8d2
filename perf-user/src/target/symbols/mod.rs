//! ELF function symbols of the target: read with `object`, demangled once (Rust legacy and v0,
//! C++), matched against the user's globs, and located as file offsets for uprobes.
//!
//! Only function entries are offered for probing: compiler-split fragments that are jumped
//! into (`.cold`, `.part` reached by `jmp`) and local labels are kept apart and named, never probed.

mod demangle;
mod entry;
mod glob;
pub mod inlined;
pub mod objects;
mod pack;

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

pub use demangle::{Names, demangle, split_suffix};
pub use glob::{close_matches, glob_match};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};

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
    #[error("--func '{pattern}' matches no function in {binary}{}{debug_note}", suggest(.suggestions))]
    NoMatch { pattern: String, binary: PathBuf, suggestions: Vec<String>, debug_note: String },
    #[error("--func '{pattern}' matches no function symbol in {binary}, only inlined code: {detail}")]
    Inlined { pattern: String, binary: PathBuf, detail: String },
    #[error("--func '{pattern}' names no function entry in {binary}, only {}: refusing to probe them", entry::list(.places))]
    NotEntry { pattern: String, binary: PathBuf, places: Vec<NotEntry> },
    #[error("--symbols {symbols} does not belong to {binary} (their build ids differ)")]
    Mismatch { symbols: PathBuf, binary: PathBuf },
    #[error("--func {address:#x} is not the start of a function in {binary}")]
    BadAddress { address: u64, binary: PathBuf },
    #[error("--func '{pattern}': no object mapped into pid {pid} has a file name matching '{object}'{}", suggest(.mapped))]
    NoObject { pattern: String, object: String, pid: u32, mapped: Vec<String> },
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() { String::new() } else { format!("; close matches: {}", suggestions.join(", ")) }
}

/// One function of the binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// The name as stored in the binary (mangled); what aya and the kernel know.
    pub raw: String,
    /// Demangled as `rustfilt`/`c++filt` print it, clone suffix included
    /// (`target_app::book::OrderBook::apply`, `checked(long) [clone .isra.0]`); what users read.
    pub name: String,
    /// The source function's demangled name without the compiler's clone suffix: a clone
    /// (`.isra.0`, `.constprop.0`, `.part.0`, `.llvm.N`) is matched under it too.
    pub base: String,
    /// ELF virtual address.
    pub address: u64,
    pub size: u64,
    /// The ELF object the function is in, as the probe must be attached to it (`/proc/PID/exe`,
    /// `/proc/PID/map_files/…` or the path read).
    pub object: PathBuf,
    /// Offset of the first instruction in `object`: where the uprobe goes.
    pub file_offset: u64,
    /// The first bytes of the function (up to 16), to see what the kernel will do at the probe.
    pub entry_bytes: Vec<u8>,
    /// Other names of the same code (identical code folding, aliases), raw; a glob may match any.
    pub aliases: Vec<String>,
    /// `aliases`, demangled (same order).
    pub alias_names: Vec<String>,
}

impl Function {
    fn matches(&self, pattern: &str) -> bool {
        glob_match(pattern, &self.name)
            || (self.base.len() != self.name.len() && glob_match(pattern, &self.base))
            || glob_match(pattern, &self.raw)
            || self.aliases.iter().chain(&self.alias_names).any(|a| glob_match(pattern, a))
    }

    /// This function under the name `pattern` found it by: a glob that matches only one of its
    /// aliases (`free` for glibc's `__libc_free`) shows that alias, the first name becoming one.
    fn named_as(&self, pattern: &str) -> Function {
        let primary =
            glob_match(pattern, &self.name) || glob_match(pattern, &self.base) || glob_match(pattern, &self.raw);
        let alias = (0..self.aliases.len())
            .find(|&i| glob_match(pattern, &self.aliases[i]) || glob_match(pattern, &self.alias_names[i]));
        let mut f = self.clone();
        if let (false, Some(i)) = (primary, alias) {
            let raw = f.aliases.remove(i);
            let name = f.alias_names.remove(i);
            f.aliases.insert(0, std::mem::replace(&mut f.raw, raw));
            f.alias_names.insert(0, std::mem::replace(&mut f.name, name));
            f.base = Names::of(&f.raw).base;
        }
        f
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {:#x}", self.name, self.address)
    }
}

/// Code that has a symbol but is no function entry: probing it would harm the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotEntry {
    pub raw: String,
    pub names: Names,
    pub address: u64,
    /// Why it is no entry, e.g. "a .cold fragment, jumped into".
    pub why: String,
}

impl NotEntry {
    fn matches(&self, pattern: &str) -> bool {
        glob_match(pattern, &self.names.name) || glob_match(pattern, &self.names.base) || glob_match(pattern, &self.raw)
    }
}

/// What `--func` patterns chose, and what they matched but must not be probed.
#[derive(Debug, Default)]
pub struct Selection {
    pub functions: Vec<Function>,
    /// One line per pattern that matched non-entries too, naming them; for the user and the export.
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub struct SymbolTable {
    /// The binary as named in messages (the caller may set a friendlier path than the one read).
    pub binary: PathBuf,
    /// Sorted by address, one entry per address (aliases keep the first name).
    pub functions: Vec<Function>,
    /// Symbols that are no function entry (`.cold`, `.part` entered by a jump, labels), by address.
    pub not_entries: Vec<NotEntry>,
    /// Why an unwind (Rust panic=unwind, C++ exception) may cross a probed frame, if it may:
    /// a uretprobe on such a frame aborts the process.
    pub unwind_risk: Option<String>,
    /// GNU build id, to check that a `--symbols` file matches the running binary.
    pub build_id: Option<Vec<u8>>,
    /// Executable segments of the running binary: (address, size, file offset).
    exec_segments: Vec<(u64, u64, u64)>,
    /// The file the symbols were read from, whose DWARF says where inlined functions went.
    source: PathBuf,
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
        let mut table = Self::parse_with_layout(symbol_file, &sym_data, binary, &bin, &bin_data)?;
        let bin_id = bin.build_id().ok().flatten();
        if let (Some(a), Some(b)) = (bin_id, table.build_id.as_deref())
            && a != b
        {
            return Err(SymbolError::Mismatch { symbols: symbol_file.into(), binary: binary.into() });
        }
        table.unwind_risk = table.unwind_risk.or_else(|| unwind_risk(&bin));
        Ok(table)
    }

    /// Parses an ELF image already in memory (`path` is for messages and the probes' object).
    pub fn parse(path: &Path, data: &[u8]) -> Result<Self, SymbolError> {
        let file = parse_elf(path, data)?;
        Self::parse_with_layout(path, data, path, &file, data)
    }

    /// The symbols of `data` (read from `path`) placed in the running binary `layout` (the same
    /// file, or the stripped one `read_split` pairs it with), whose object probes attach to.
    fn parse_with_layout(
        path: &Path,
        data: &[u8],
        object_path: &Path,
        layout: &object::File<'_>,
        layout_data: &[u8],
    ) -> Result<Self, SymbolError> {
        let file = parse_elf(path, data)?;
        let places = Layout::of(layout, layout_data, object_path);
        let (by_addr, labels) = places.collect(&file);
        let (functions, not_entries) = entry::separate(by_addr, labels, layout_data);
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        Ok(Self {
            binary: path.into(),
            functions,
            not_entries,
            unwind_risk: unwind_risk(&file),
            build_id,
            exec_segments: places.exec_segments,
            source: path.into(),
        })
    }

    /// The functions matching any of `patterns` (globs on the demangled, source or raw name, or
    /// a `0x…` start address), in pattern order without duplicates. Every pattern must match.
    /// Non-entries a pattern also matches are left out silently: use [`Self::resolve`] to hear.
    pub fn select(&self, patterns: &[String]) -> Result<Vec<Function>, SymbolError> {
        Ok(self.resolve(patterns)?.functions)
    }

    /// As [`Self::select`], with one note per pattern that matched code which is not a function
    /// entry; a pattern that matches only such code is refused.
    pub fn resolve(&self, patterns: &[String]) -> Result<Selection, SymbolError> {
        let mut chosen = Selection::default();
        for pattern in patterns {
            let (functions, note) = self.resolve_one(pattern)?;
            for f in functions {
                if !chosen.functions.iter().any(|c| c.address == f.address && c.object == f.object) {
                    chosen.functions.push(f);
                }
            }
            chosen.notes.extend(note);
        }
        Ok(chosen)
    }

    fn resolve_one(&self, pattern: &str) -> Result<(Vec<Function>, Option<String>), SymbolError> {
        if let Some(address) = parse_address(pattern) {
            return Ok((vec![self.at_address(pattern, address)?], None));
        }
        if self.functions.is_empty() {
            return Err(SymbolError::Stripped { binary: self.binary.clone() });
        }
        let found: Vec<Function> =
            self.functions.iter().filter(|f| f.matches(pattern)).map(|f| f.named_as(pattern)).collect();
        let skipped: Vec<NotEntry> = self.not_entries.iter().filter(|n| n.matches(pattern)).cloned().collect();
        if found.is_empty() && !skipped.is_empty() {
            return Err(SymbolError::NotEntry {
                pattern: pattern.into(),
                binary: self.binary.clone(),
                places: skipped,
            });
        }
        if found.is_empty() {
            return Err(self.no_match(pattern));
        }
        let note = (!skipped.is_empty()).then(|| {
            format!("--func '{pattern}': left out {}: not function entries, never probed", entry::list(&skipped))
        });
        Ok((found, note))
    }

    /// Why `pattern` matched no symbol: functions that exist only inlined (DWARF), or nothing.
    fn no_match(&self, pattern: &str) -> SymbolError {
        let data = std::fs::read(&self.source).ok();
        let lookup = data.as_deref().map(|d| inlined::lookup(d, pattern));
        let inlined_error =
            |detail: String| SymbolError::Inlined { pattern: pattern.into(), binary: self.binary.clone(), detail };
        if let Some(inlined::Lookup::Found(found)) = &lookup
            && !found.is_empty()
        {
            return inlined_error(inlined::explain(found));
        }
        // DWARF with line tables only (Rust's `debug = "line-tables-only"`) names functions by
        // their last path segment: `a::b::f` is looked for as `f`, and the message says so.
        if let (Some(inlined::Lookup::Found(_)), Some(d), Some((_, last))) = (&lookup, &data, pattern.rsplit_once("::"))
            && let inlined::Lookup::Found(found) = inlined::lookup(d, last)
            && !found.is_empty()
        {
            return inlined_error(format!(
                "its debug info names functions without their path, looked for as '{last}': {}",
                inlined::explain(&found)
            ));
        }
        let debug_note = if lookup == Some(inlined::Lookup::NoDebugInfo) {
            " (it has no DWARF debug info, so functions inlined everywhere could not be looked for)".into()
        } else {
            String::new()
        };
        SymbolError::NoMatch {
            pattern: pattern.into(),
            binary: self.binary.clone(),
            suggestions: self.close_matches(pattern, 5),
            debug_note,
        }
    }

    /// The function starting at `address`: a known symbol, or (stripped binaries) any address
    /// inside a loadable segment, named by its address.
    fn at_address(&self, pattern: &str, address: u64) -> Result<Function, SymbolError> {
        if let Some(f) = self.functions.iter().find(|f| f.address == address) {
            return Ok(f.clone());
        }
        if let Some(n) = self.not_entries.iter().find(|n| n.address == address) {
            return Err(SymbolError::NotEntry {
                pattern: pattern.into(),
                binary: self.binary.clone(),
                places: vec![n.clone()],
            });
        }
        let bad = || SymbolError::BadAddress { address, binary: self.binary.clone() };
        if self.functions.iter().any(|f| address > f.address && address < f.address.saturating_add(f.size)) {
            return Err(bad());
        }
        let &(seg_addr, _, seg_off) = self
            .exec_segments
            .iter()
            .find(|&&(a, size, _)| address >= a && address < a.saturating_add(size))
            .ok_or_else(bad)?;
        Ok(Function {
            raw: format!("{address:#x}"),
            name: format!("{address:#x}"),
            base: format!("{address:#x}"),
            address,
            size: 0,
            object: self.functions.first().map_or_else(|| self.binary.clone(), |f| f.object.clone()),
            file_offset: address - seg_addr + seg_off,
            entry_bytes: Vec::new(),
            aliases: Vec::new(),
            alias_names: Vec::new(),
        })
    }

    /// Names resembling `pattern`: those containing its longest literal piece, else those whose
    /// last path segment is nearest by edit distance.
    pub fn close_matches(&self, pattern: &str, limit: usize) -> Vec<String> {
        // Every name a function is known by, aliases included.
        let names = self
            .functions
            .iter()
            .flat_map(|f| std::iter::once(f.name.as_str()).chain(f.alias_names.iter().map(String::as_str)));
        glob::close_matches(names, pattern, limit)
    }
}

/// Where the running binary's code is: its loadable segments mapping virtual addresses to file
/// offsets, and its bytes, for the functions a symbol table names.
struct Layout<'a> {
    /// Loadable segments: (address, size, file offset).
    segments: Vec<(u64, u64, u64)>,
    /// The executable ones (`PF_X`): code can only start there.
    exec_segments: Vec<(u64, u64, u64)>,
    data: &'a [u8],
    object: &'a Path,
}

impl<'a> Layout<'a> {
    fn of(layout: &object::File<'_>, data: &'a [u8], object: &'a Path) -> Self {
        let place = |s: &object::Segment<'_, '_>| (s.address(), s.size(), s.file_range().0);
        let segments = layout.segments().map(|s| place(&s)).filter(|&(_, size, _)| size > 0).collect();
        let exec_segments = layout
            .segments()
            .filter(|s| matches!(s.flags(), object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0))
            .map(|s| place(&s))
            .filter(|&(_, size, _)| size > 0)
            .collect();
        Layout { segments, exec_segments, data, object }
    }

    fn in_exec(&self, a: u64) -> bool {
        self.exec_segments.iter().any(|&(s, size, _)| a >= s && a < s.saturating_add(size))
    }

    /// Every function symbol of `file` by address (the linker's aliases and folded copies under
    /// the first name), and the assembler labels in code.
    fn collect(&self, file: &object::File<'_>) -> (BTreeMap<u64, Function>, Vec<(u64, String)>) {
        let mut by_addr: BTreeMap<u64, Function> = BTreeMap::new();
        let mut labels: Vec<(u64, String)> = Vec::new();
        for sym in file.symbols().chain(file.dynamic_symbols()) {
            if sym.is_undefined() || sym.address() == 0 {
                continue;
            }
            let Ok(raw) = sym.name() else { continue };
            if raw.is_empty() {
                continue;
            }
            let address = sym.address();
            // Assembler labels (`STT_NOTYPE`) in code: no entries, but named when matched.
            if matches!(sym.kind(), SymbolKind::Label | SymbolKind::Unknown) {
                if self.is_code_label(file, &sym) {
                    labels.push((address, raw.to_string()));
                }
                continue;
            }
            if sym.kind() != SymbolKind::Text {
                continue;
            }
            if let Some(f) = by_addr.get_mut(&address) {
                // The linker folded identical functions (or this is an alias): one probe site,
                // reported under the first name, found by any.
                if f.raw != raw && !f.aliases.iter().any(|a| a == raw) {
                    f.aliases.push(raw.to_string());
                    f.alias_names.push(demangle(raw));
                }
                continue;
            }
            if let Some(f) = self.function(raw, address, sym.size()) {
                by_addr.insert(address, f);
            }
        }
        (by_addr, labels)
    }

    /// A label in a text section, inside an executable segment.
    fn is_code_label(&self, file: &object::File<'_>, sym: &object::Symbol<'_, '_>) -> bool {
        let in_code = sym
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
            .is_some_and(|s| s.kind() == object::SectionKind::Text);
        in_code && self.in_exec(sym.address())
    }

    /// The function `raw` at `address`, placed in the file; `None` outside every loadable segment.
    fn function(&self, raw: &str, address: u64, size: u64) -> Option<Function> {
        let &(seg_addr, _, seg_off) =
            self.segments.iter().find(|&&(a, size, _)| address >= a && address < a.saturating_add(size))?;
        let Names { name, base, .. } = Names::of(raw);
        let file_offset = address - seg_addr + seg_off;
        let off = usize::try_from(file_offset).unwrap_or(usize::MAX);
        Some(Function {
            raw: raw.to_string(),
            name,
            base,
            address,
            size,
            object: self.object.to_path_buf(),
            file_offset,
            aliases: Vec::new(),
            alias_names: Vec::new(),
            entry_bytes: self.data.get(off..off.saturating_add(16).min(self.data.len())).unwrap_or(&[]).to_vec(),
        })
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

#[cfg(test)]
mod tests;
