//! Functions the compiler inlined: their `DW_TAG_inlined_subroutine` instances in the target's
//! DWARF, read with `gimli`, so that a `--func` glob which matches no symbol but an inlined-only
//! function says where its code went (the functions it was inlined into: trace those) instead of
//! "matches nothing".
//!
//! Read only when a pattern matched no symbol. No DWARF (a stripped binary, a separate debug file
//! not found) or DWARF this reader cannot parse gives no answer, never an error: the caller says
//! "matches no function" as before, with a note that no debug info was there to look in.

use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap},
};

use gimli::{AttributeValue, DebugInfoOffset, EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};

use super::{demangle, glob_match};

/// An inlined-only function a pattern matched, and where its instances are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inlined {
    pub name: String,
    /// Its inlined instances.
    pub sites: usize,
    /// The out-of-line functions its instances are in, by name, sorted.
    pub callers: Vec<String>,
}

/// What the DWARF of a binary says about a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The binary has no DWARF (`.debug_info`) to look in.
    NoDebugInfo,
    /// Functions matching the pattern that exist only inlined (none: nothing inlined matches).
    Found(Vec<Inlined>),
}

/// A DIE's names: `DW_AT_linkage_name` demangled, or `DW_AT_name`; and where its name comes from
/// otherwise (`DW_AT_abstract_origin`, `DW_AT_specification`).
#[derive(Default)]
struct Die {
    name: Option<String>,
    origin: Option<DebugInfoOffset>,
}

/// The inlined instances in the ELF image `data` of functions matching `pattern`.
pub fn lookup(data: &[u8], pattern: &str) -> Lookup {
    let Ok(file) = object::File::parse(data) else { return Lookup::NoDebugInfo };
    if file.section_by_name(".debug_info").is_none() {
        return Lookup::NoDebugInfo;
    }
    let endian = if file.is_little_endian() { RunTimeEndian::Little } else { RunTimeEndian::Big };
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(file.section_by_name(id.name()).and_then(|s| s.uncompressed_data().ok()).unwrap_or(Cow::Borrowed(&[])))
    };
    let Ok(sections) = gimli::DwarfSections::load(load) else { return Lookup::NoDebugInfo };
    let dwarf = sections.borrow(|s| EndianSlice::new(s, endian));
    let (dies, sites) = walk(&dwarf);
    let name_of = |mut at: DebugInfoOffset| {
        // Concrete instances name their abstract one; a few hops at most (a cycle ends here).
        for _ in 0..8 {
            let d = dies.get(&at)?;
            match (&d.name, d.origin) {
                (Some(n), _) => return Some(n.clone()),
                (None, Some(o)) => at = o,
                (None, None) => return None,
            }
        }
        None
    };
    // Per name: its sites and its callers (a set: hostile DWARF may hold millions of sites).
    let mut found: HashMap<String, (usize, BTreeSet<String>)> = HashMap::new();
    for (origin, caller) in sites {
        let Some(name) = name_of(origin).filter(|n| glob_match(pattern, n)) else { continue };
        let caller = caller.and_then(name_of).unwrap_or_else(|| "?".into());
        let e = found.entry(name).or_default();
        e.0 += 1;
        e.1.insert(caller);
    }
    let mut out: Vec<Inlined> = found
        .into_iter()
        .map(|(name, (sites, callers))| Inlined { name, sites, callers: callers.into_iter().collect() })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Lookup::Found(out)
}

type Sites = Vec<(DebugInfoOffset, Option<DebugInfoOffset>)>;

/// Every named subprogram DIE, and every inlined instance as (its abstract origin, the
/// out-of-line subprogram it is in). Units or entries that do not parse are passed over.
fn walk(dwarf: &gimli::Dwarf<EndianSlice<'_, RunTimeEndian>>) -> (HashMap<DebugInfoOffset, Die>, Sites) {
    let mut dies = HashMap::new();
    let mut sites = Vec::new();
    let mut headers = dwarf.units();
    while let Ok(Some(header)) = headers.next() {
        let Ok(unit) = dwarf.unit(header) else { continue };
        let global = |o: gimli::UnitOffset| o.to_debug_info_offset(&unit.header);
        let mut entries = unit.entries();
        // The enclosing out-of-line subprograms, by depth.
        let mut stack: Vec<(isize, DebugInfoOffset)> = Vec::new();
        let mut depth = 0isize;
        while let Ok(Some((delta, entry))) = entries.next_dfs() {
            depth += delta;
            while stack.last().is_some_and(|&(d, _)| d >= depth) {
                stack.pop();
            }
            let tag = entry.tag();
            if tag != gimli::DW_TAG_subprogram && tag != gimli::DW_TAG_inlined_subroutine {
                continue;
            }
            let Some(at) = global(entry.offset()) else { continue };
            let origin =
                [gimli::DW_AT_abstract_origin, gimli::DW_AT_specification].into_iter().find_map(|a| {
                    match entry.attr_value(a).ok()?? {
                        AttributeValue::UnitRef(o) => global(o),
                        AttributeValue::DebugInfoRef(o) => Some(o),
                        _ => None,
                    }
                });
            if tag == gimli::DW_TAG_inlined_subroutine {
                if let Some(o) = origin {
                    sites.push((o, stack.last().map(|&(_, s)| s)));
                }
                continue;
            }
            dies.insert(at, Die { name: die_name(dwarf, &unit, entry), origin });
            stack.push((depth, at));
        }
    }
    (dies, sites)
}

/// The name users read: the linkage name demangled (Rust and C++ paths), else `DW_AT_name`.
fn die_name(
    dwarf: &gimli::Dwarf<EndianSlice<'_, RunTimeEndian>>,
    unit: &gimli::Unit<EndianSlice<'_, RunTimeEndian>>,
    entry: &gimli::DebuggingInformationEntry<'_, '_, EndianSlice<'_, RunTimeEndian>>,
) -> Option<String> {
    let text = |a| {
        let v = entry.attr_value(a).ok()??;
        let s = dwarf.attr_string(unit, v).ok()?;
        Some(String::from_utf8_lossy(s.slice()).into_owned())
    };
    text(gimli::DW_AT_linkage_name)
        .or_else(|| text(gimli::DW_AT_MIPS_linkage_name))
        .map(|raw| demangle(&raw))
        .or_else(|| text(gimli::DW_AT_name))
}

/// The message for a pattern that matched only inlined functions: where they went.
pub fn explain(found: &[Inlined]) -> String {
    const SHOWN: usize = 5;
    let one = |i: &Inlined| {
        let more = i.callers.len().saturating_sub(SHOWN);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let plural = if i.sites == 1 { "" } else { "s" };
        format!(
            "{} is inlined at {} site{plural} in {}{more}",
            i.name,
            i.sites,
            i.callers.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ")
        )
    };
    let shown: Vec<String> = found.iter().take(SHOWN).map(one).collect();
    let more = found.len().saturating_sub(SHOWN);
    let more = if more > 0 { format!(" (and {more} more inlined functions)") } else { String::new() };
    format!("{}{more}; it has no out-of-line copy to probe: trace its callers instead", shown.join("; "))
}
