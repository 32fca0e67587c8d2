//! Symbol names as people read them: Rust (legacy and v0) as `rustfilt` prints them (hash
//! stripped), C++ as `c++filt` prints them, and the compiler's clone suffix split off.
//!
//! Every name is demangled once, when the symbol table is read; globs then match plain strings.

/// A symbol's readable names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// Exactly what `rustfilt` (Rust) or `c++filt` (everything else) prints for the raw name,
    /// clone suffix included (`checked(long) [clone .isra.0]`, `hot.cold`).
    pub name: String,
    /// The source function's name, without any compiler suffix: what a clone is matched under.
    pub base: String,
    /// The compiler's suffix as stored (`.isra.0`, `.constprop.0.cold`, `.llvm.123`), or "".
    pub suffix: String,
}

impl Names {
    pub fn of(raw: &str) -> Names {
        let (mangled, suffix) = split_suffix(raw);
        let name = demangle(raw);
        let base = if suffix.is_empty() { name.clone() } else { demangle(mangled) };
        Names { name, base, suffix: suffix.to_string() }
    }
}

/// Demangles Rust (legacy and v0) as `rustfilt` does by default (no hash) and C++ as `c++filt`
/// does; anything else is returned as is.
pub fn demangle(raw: &str) -> String {
    if is_rust(raw)
        && let Ok(d) = rustc_demangle::try_demangle(raw)
    {
        return format!("{d:#}");
    }
    if raw.starts_with("_Z")
        && let Some(d) = demangle_cpp(raw)
    {
        return d;
    }
    raw.to_string()
}

/// C++ through `cpp_demangle`, whose output follows libiberty's (c++filt), except for pack
/// expansions with a pattern (`pack`). A name it cannot read whole is retried without its
/// clone suffix, which is then printed as libiberty does.
fn demangle_cpp(raw: &str) -> Option<String> {
    let (mangled, suffix) = split_suffix(raw);
    if let Some(out) = super::pack::demangle_packs(mangled).and_then(|out| with_clones(out, suffix)) {
        return Some(out);
    }
    let whole = cpp_demangle::Symbol::new(raw).ok().and_then(|s| s.demangle().ok());
    if whole.is_some() {
        return whole;
    }
    if suffix.is_empty() {
        return None;
    }
    with_clones(cpp_demangle::Symbol::new(mangled).ok()?.demangle().ok()?, suffix)
}

/// `name` followed by each clone of `suffix` as libiberty prints them (` [clone .isra.0]`).
fn with_clones(mut out: String, suffix: &str) -> Option<String> {
    for part in clone_parts(suffix)? {
        out.push_str(" [clone ");
        out.push_str(part);
        out.push(']');
    }
    Some(out)
}

/// libiberty's clone suffixes: `.` + identifier, then any number of `.` + digits, repeated
/// (`.constprop.0.isra.0` is two clones). None when the suffix is not of that form.
fn clone_parts(suffix: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut rest = suffix;
    while !rest.is_empty() {
        let body = rest.strip_prefix('.')?;
        let ident_len = body.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        if ident_len == 0 {
            return None;
        }
        let mut end = 1 + ident_len;
        while let Some(digits) = rest[end..].strip_prefix('.') {
            let n = digits.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                break;
            }
            end += 1 + n;
        }
        parts.push(&rest[..end]);
        rest = &rest[end..];
    }
    Some(parts)
}

/// Rust mangling: v0 (`_R…`), or legacy (`_ZN…17h<16 hex>E`: Itanium-shaped, whose last path
/// segment is the hash rustc always emits; C++ never ends a nested name that way).
fn is_rust(raw: &str) -> bool {
    if raw.starts_with("_R") {
        return true;
    }
    let mangled = legacy_end(raw).map_or(raw, |end| &raw[..end]);
    let Some(body) = mangled.strip_prefix("_ZN").and_then(|r| r.strip_suffix('E')) else {
        return false;
    };
    // "17h" + 16 hex digits = 19 bytes.
    body.len() > 19
        && body.is_char_boundary(body.len() - 19)
        && body[body.len() - 19..].starts_with("17h")
        && body[body.len() - 16..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where an Itanium nested name `_ZN<len><ident>…E` ends, by its length prefixes (Rust legacy
/// identifiers contain `.`, so the first `.` is no boundary).
fn legacy_end(raw: &str) -> Option<usize> {
    let bytes = raw.as_bytes();
    let mut i = raw.strip_prefix("_ZN").map(|_| 3)?;
    loop {
        match bytes.get(i)? {
            b'E' => return Some(i + 1),
            b'0'..=b'9' => {
                let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                let len: usize = raw.get(i..i + digits)?.parse().ok()?;
                i = i.checked_add(digits)?.checked_add(len)?;
            }
            _ => return None,
        }
    }
}

/// Splits a raw name into the mangled (or plain C) name and the suffix a compiler appended
/// (`.cold`, `.part.0`, `.isra.0`, `.constprop.0`, `.llvm.NNN`).
pub fn split_suffix(raw: &str) -> (&str, &str) {
    let end = if raw.starts_with("_ZN") && is_rust(raw) {
        legacy_end(raw)
    } else {
        // v0 Rust, Itanium C++ and C identifiers never contain `.` themselves. A leading `.`
        // is part of the name (assembler-local names), not a suffix.
        raw.char_indices().skip(1).find(|&(_, c)| c == '.').map(|(i, _)| i)
    };
    match end {
        Some(end) if end < raw.len() && raw.is_char_boundary(end) => raw.split_at(end),
        _ => (raw, ""),
    }
}

/// The compiler made this symbol from part of a function body that is entered by a jump, not
/// called: GCC's hot/cold split (`.cold`, `.cold.N`) in any position of the suffix.
pub fn is_cold_part(suffix: &str) -> bool {
    suffix.split('.').any(|w| w == "cold")
}

/// GCC's partial inlining (`foo.part.0`): the out-of-line rest of `foo`, a real function that
/// `foo` calls or jumps to.
pub fn is_split_part(suffix: &str) -> bool {
    suffix.split('.').any(|w| w == "part")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Regression (issue 20): `..` inside a legacy name was taken for a compiler suffix, and the
    /// name came out half-decoded (`_$LT$impl$u20$…`).
    #[test]
    fn rust_legacy_names_with_dots_decode_whole() {
        let raw = "_ZN10target_app5stage1_81_$LT$impl$u20$serde_core..ser..Serialize$u20$for$u20$target_app..stage..Stage$GT$9serialize17h10cf66dfb5e6aa73E";
        let names = Names::of(raw);
        assert_eq!(
            names.name,
            "target_app::stage::_::<impl serde_core::ser::Serialize for target_app::stage::Stage>::serialize"
        );
        assert_eq!(names.base, names.name);
        assert_eq!(names.suffix, "");
    }

    #[test]
    fn clones_keep_their_suffix_and_match_under_their_source_name() {
        let n = Names::of("_ZL7checkedRKSt6vectorIlSaIlEEm.isra.0.cold");
        assert_eq!(n.suffix, ".isra.0.cold");
        assert!(n.name.ends_with("[clone .isra.0] [clone .cold]"), "{}", n.name);
        assert_eq!(n.base, "checked(std::vector<long, std::allocator<long> > const&, unsigned long)");
        let c = Names::of("hot_sum.part.0");
        assert_eq!((c.name.as_str(), c.base.as_str(), c.suffix.as_str()), ("hot_sum.part.0", "hot_sum", ".part.0"));
        assert!(is_split_part(&c.suffix) && !is_cold_part(&c.suffix));
        assert!(is_cold_part(".part.0.cold") && is_cold_part(".cold"));
        let r = Names::of("_ZN3foo3bar17h0123456789abcdefE.cold");
        assert_eq!((r.name.as_str(), r.base.as_str()), ("foo::bar.cold", "foo::bar"));
    }

    #[test]
    fn odd_names_do_not_panic() {
        for raw in ["", ".", "_ZN", "_ZN99", "_ZN3fo", ".Lfoo", "a.", "_Z.", "_ZN1aE.", "é.cold"] {
            let n = Names::of(raw);
            assert!(raw.starts_with(&n.suffix) || raw.ends_with(&n.suffix), "{raw}: {n:?}");
        }
    }
}
