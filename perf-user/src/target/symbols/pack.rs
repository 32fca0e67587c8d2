//! C++ pack expansions with a pattern (`Args&&... args`, mangled `DpOT_`), anywhere in a name
//! (ending the parameters, before another one, inside template arguments or a function type),
//! printed as `c++filt` prints them: cpp_demangle 0.5 applies the pattern once to the whole pack
//! and collapses it into a reference element, so `int&&, long&` comes out `int, long&`.
//!
//! Each pattern's codes are swapped for vendor qualifiers of the same shape (`U4pu_O`): one
//! substitution candidate each, as the reference, pointer or cv-qualifier group they replace, so
//! every later back-reference still means what it meant. cpp_demangle then prints each pack's
//! elements plainly, followed by the markers; the pattern is applied to each element as
//! libiberty does. A marker left anywhere else means the rewrite did not fit: the caller keeps
//! cpp_demangle's own output.

use cpp_demangle::{DemangleNodeType, DemangleOptions, DemangleWrite, Symbol};

/// A marker's printed form: ` pu_` then the pattern's codes it stands for.
const MARK: &str = " pu_";

/// The demangled name of `mangled` (no compiler suffix) when it holds a pack expansion with a
/// pattern over a template parameter; None otherwise, or when a piece is not of a form this
/// knows how to print.
pub(super) fn demangle_packs(mangled: &str) -> Option<String> {
    let rewritten = rewrite(mangled)?;
    let mut out = Spans::default();
    Symbol::new(rewritten.as_bytes()).ok()?.structured_demangle(&mut out, &DemangleOptions::default()).ok()?;
    let text = &out.text;
    let mut result = String::with_capacity(text.len());
    let mut at = 0;
    for &(start, end) in &out.params {
        if start < at || !text[end..].starts_with(MARK) {
            continue;
        }
        // The markers, innermost code first: ` pu_K pu_R` is the pattern `RK`.
        let mut codes = Vec::new();
        let mut after = end;
        while let Some(rest) = text[after..].strip_prefix(MARK) {
            let len = rest.bytes().take_while(|b| b"ORPKVr".contains(b)).count();
            codes.push(&rest[..len]);
            after += MARK.len() + len;
        }
        let pattern: String = codes.iter().rev().copied().collect();
        let elements = split_top_level(&text[start..end])?;
        let expanded = elements.iter().map(|e| apply(&pattern, e)).collect::<Option<Vec<_>>>()?;
        result.push_str(&text[at..start]);
        result.push_str(&expanded.join(", "));
        at = after;
    }
    result.push_str(&text[at..]);
    (!result.contains(MARK.trim_start())).then_some(result)
}

/// `mangled` with the codes of every pack expansion's pattern (`Dp` then references, pointers
/// and cv-qualifiers, then a template parameter `T_`/`T<n>_`) made vendor qualifiers; None when
/// it holds none.
fn rewrite(mangled: &str) -> Option<String> {
    let b = mangled.as_bytes();
    let mut out = String::with_capacity(mangled.len() + 16);
    let (mut i, mut from, mut any) = (0, 0, false);
    while i + 2 < b.len() {
        if &b[i..i + 2] != b"Dp" {
            i += 1;
            continue;
        }
        let start = i + 2;
        let len = b[start..].iter().take_while(|c| b"ORPKVr".contains(c)).count();
        let param = &b[start + len..];
        let is_param = param.first() == Some(&b'T')
            && param[1..]
                .iter()
                .position(|&c| c == b'_')
                .is_some_and(|n| param[1..1 + n].iter().all(u8::is_ascii_digit));
        if len == 0 || !is_param {
            i += 2;
            continue;
        }
        out.push_str(&mangled[from..start]);
        for group in code_groups(&mangled[start..start + len]) {
            out.push_str(&format!("U{}pu_{group}", 3 + group.len()));
        }
        any = true;
        from = start + len;
        i = from;
    }
    out.push_str(&mangled[from..]);
    any.then_some(out)
}

/// The pattern's codes as substitution candidates: each reference or pointer alone, each run of
/// cv-qualifiers (`rVK`) together.
fn code_groups(codes: &str) -> Vec<&str> {
    let mut groups = Vec::new();
    let mut from = 0;
    let b = codes.as_bytes();
    for i in 0..b.len() {
        let cv = b"rVK".contains(&b[i]);
        let next_cv = b.get(i + 1).is_some_and(|c| b"rVK".contains(c));
        if !(cv && next_cv) {
            groups.push(&codes[from..=i]);
            from = i + 1;
        }
    }
    groups
}

/// libiberty's printing of one element under the pattern: a single reference directly over the
/// element collapses with a reference element (`T&` + `&&` is `T&`); anything else is the
/// element followed by the pattern's codes, innermost first (`int& const&`).
fn apply(pattern: &str, element: &str) -> Option<String> {
    // Function and array types take the pattern inside (`void (*&&)(int)`): not handled here.
    if element.is_empty() || element.ends_with(')') || element.ends_with(']') {
        return None;
    }
    let is_ref = element.ends_with('&');
    match pattern {
        "O" if is_ref => return Some(element.to_string()),
        "R" if is_ref => return Some(format!("{}&", element.trim_end_matches('&'))),
        _ => {}
    }
    let mut out = element.to_string();
    for code in pattern.chars().rev() {
        out.push_str(match code {
            'O' => "&&",
            'R' => "&",
            'P' => "*",
            'K' => " const",
            'V' => " volatile",
            _ => " restrict",
        });
    }
    Some(out)
}

/// The pack's elements: the text split at `, ` outside any brackets. None when the brackets do
/// not balance (an `operator<` in a name, say).
fn split_top_level(text: &str) -> Option<Vec<&str>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[from..i]);
                from = i + if text[i + 1..].starts_with(' ') { 2 } else { 1 };
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
    }
    parts.push(text.get(from..)?);
    (depth == 0).then_some(parts)
}

/// The demangled text, and where each outermost template-parameter node printed, in order.
#[derive(Default)]
struct Spans {
    text: String,
    /// Open nodes: whether each is a template parameter, and where it started.
    open: Vec<(bool, usize)>,
    params: Vec<(usize, usize)>,
}

impl DemangleWrite for Spans {
    fn push_demangle_node(&mut self, node: DemangleNodeType) {
        self.open.push((node == DemangleNodeType::TemplateParam, self.text.len()));
    }

    fn write_string(&mut self, s: &str) -> std::fmt::Result {
        self.text.push_str(s);
        Ok(())
    }

    fn pop_demangle_node(&mut self) {
        if let Some((true, start)) = self.open.pop()
            && !self.open.iter().any(|&(param, _)| param)
        {
            self.params.push((start, self.text.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `c++filt` prints for each (binutils 2.44).
    #[test]
    fn pack_expansions_print_as_cxxfilt_prints_them() {
        for (mangled, cxxfilt) in [
            ("_Z1fIJiRiOiEEvDpOT_", "void f<int, int&, int&&>(int&&, int&, int&&)"),
            ("_Z1fIJiRiOiEEvDpRT_", "void f<int, int&, int&&>(int&, int&, int&)"),
            ("_Z1fIJiRiOiEEvDpRKT_", "void f<int, int&, int&&>(int const&, int& const&, int&& const&)"),
            ("_Z1fIJiRiOiEEvDpPT_", "void f<int, int&, int&&>(int*, int&*, int&&*)"),
            ("_Z1fIJiRiEEvDpVKT_", "void f<int, int&>(int const volatile, int& const volatile)"),
            ("_Z1fIJEEvDpOT_", "void f<>()"),
            // Not at the end: before another parameter, in template arguments, in a function
            // type (then repeated by a back-reference), and two in one name.
            (
                "_ZN5packs7leadingIJiRlOlEEElDpOT_i",
                "long packs::leading<int, long&, long&&>(int&&, long&, long&&, int)",
            ),
            (
                "_ZN5packs7in_argsIJiRlEEElSt5tupleIJDpOT_EE",
                "long packs::in_args<int, long&>(std::tuple<int&&, long&>)",
            ),
            (
                "_ZN5packs10in_fn_typeIJiRlEEElPFlDpOT_ES4_",
                "long packs::in_fn_type<int, long&>(long (*)(int&&, long&), int&&, long&)",
            ),
            ("_Z1gIJilEEvDpVKPT_i", "void g<int, long>(int* const volatile, long* const volatile, int)"),
            ("_Z1hIJiEJlRiEEvSt5tupleIJDpOT_EEDpPT0_", "void h<int, long, int&>(std::tuple<int&&>, long*, int&*)"),
        ] {
            assert_eq!(demangle_packs(mangled).as_deref(), Some(cxxfilt), "{mangled}");
        }
        // A function pointer element takes the pattern inside its parentheses: left alone.
        assert_eq!(demangle_packs("_Z1fIJiPFviEEEvDpOT_"), None);
        // No pattern, or no pack at the end: nothing to fix.
        assert_eq!(demangle_packs("_Z1fIJiRiOiEEvDpT_"), None);
        assert_eq!(demangle_packs("_Z3fooi"), None);
        // `DpOT_` inside an identifier is no expansion: the rewrite does not fit, nothing is returned.
        assert_eq!(demangle_packs("_Z6xDpOT_v"), None);
        for odd in ["", "T_", "DpOT_", "_ZDpOT_", "_Z1fDpOT5_", "_Z1fIJiEEvDpOTx_"] {
            let _ = demangle_packs(odd);
        }
    }
}
