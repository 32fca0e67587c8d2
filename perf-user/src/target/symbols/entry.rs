//! Which symbols are function entries. A compiler-split `.cold` fragment, a `.part` split-off that
//! its function enters by `jmp`, and a label inside code are reached by a jump, not a call: a
//! return probe there overwrites the caller's saved state and corrupts the target.

use std::collections::BTreeMap;

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};

use super::{
    Function, NotEntry,
    demangle::{self, Names},
};

/// Splits the symbols read into probeable functions and the places that are no entry.
pub(super) fn separate(
    by_addr: BTreeMap<u64, Function>,
    labels: Vec<(u64, String)>,
    code: &[u8],
) -> (Vec<Function>, Vec<NotEntry>) {
    let all: Vec<Function> = by_addr.into_values().collect();
    let mut not_entries = Vec::new();
    let mut functions = Vec::with_capacity(all.len());
    for f in &all {
        let (_, suffix) = demangle::split_suffix(&f.raw);
        let why = if demangle::is_cold_part(suffix) {
            Some(format!("a .cold fragment of {}, jumped into", f.base))
        } else if demangle::is_split_part(suffix) {
            jumped_into_by(f, &all, code).map(|parent| format!("a .part split-off that {parent} jumps into"))
        } else {
            None
        };
        match why {
            Some(why) => {
                not_entries.push(NotEntry { raw: f.raw.clone(), names: Names::of(&f.raw), address: f.address, why })
            }
            None => functions.push(f.clone()),
        }
    }
    let mut labels = labels;
    labels.sort();
    labels.dedup();
    for (address, raw) in labels {
        // `all` is sorted by address: the function that starts at or before the label.
        let at_or_before = all.partition_point(|f| f.address <= address).checked_sub(1).map(|i| &all[i]);
        if at_or_before.is_some_and(|f| f.address == address) {
            continue;
        }
        let inside = at_or_before.filter(|f| address < f.address.saturating_add(f.size));
        let why = match inside {
            Some(f) => format!("a label inside {}", f.name),
            None => "a label, not a function".to_string(),
        };
        not_entries.push(NotEntry { names: Names::of(&raw), raw, address, why });
    }
    not_entries.sort_by_key(|n| n.address);
    (functions, not_entries)
}

/// The function of the same source name that jumps (rather than calls) to `part`, if any.
fn jumped_into_by(part: &Function, all: &[Function], code: &[u8]) -> Option<String> {
    all.iter()
        .filter(|p| p.base == part.base && p.address != part.address && p.size > 0)
        .find(|p| jumps_to(p, part.address, code))
        .map(|p| p.name.clone())
}

/// True when `f`'s body holds a direct jump (conditional or not) to `target`.
fn jumps_to(f: &Function, target: u64, code: &[u8]) -> bool {
    let (Ok(start), Ok(size)) = (usize::try_from(f.file_offset), usize::try_from(f.size)) else {
        return false;
    };
    let Some(body) = code.get(start..start.saturating_add(size).min(code.len())) else {
        return false;
    };
    let mut decoder = Decoder::with_ip(64, body, f.address, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        if insn.op0_kind() == OpKind::NearBranch64
            && insn.mnemonic() != Mnemonic::Call
            && insn.near_branch_target() == target
        {
            return true;
        }
    }
    false
}

/// "a (why), b (why)" for messages, the first few only.
pub(super) fn list(places: &[NotEntry]) -> String {
    const SHOWN: usize = 6;
    let mut out: Vec<String> = places.iter().take(SHOWN).map(|n| format!("{} ({})", n.names.name, n.why)).collect();
    if places.len() > SHOWN {
        out.push(format!("and {} more", places.len() - SHOWN));
    }
    out.join(", ")
}
