//! A C++ pack expansion that ends a function's parameters (`Args&&... args`, mangled `DpOT_`),
//! printed as `c++filt` prints it: cpp_demangle 0.5 applies the pattern once to the whole pack
//! (`int, long&&`), or lets the first reference element swallow it (`T const&, U, V`).
//!
//! Exact, because the expansion ends the mangled name: demangled again without the pattern (no
//! substitution can refer past the end), the pack's elements print plainly inside the last
//! template-parameter node, and the pattern is applied to each one as libiberty does.

use cpp_demangle::{DemangleNodeType, DemangleOptions, DemangleWrite, Symbol};

/// The demangled name of `mangled` (no compiler suffix) when it ends in a pack expansion with a
/// pattern over a template parameter; None otherwise, or when a piece is not of a form this
/// knows how to print (the caller then keeps cpp_demangle's own output).
pub(super) fn demangle_trailing_pack(mangled: &str) -> Option<String> {
    let (head, pattern, param) = split_trailing_pack(mangled)?;
    let plain = format!("{head}{param}");
    let mut out = Spans::default();
    Symbol::new(plain.as_bytes()).ok()?.structured_demangle(&mut out, &DemangleOptions::default()).ok()?;
    let (start, end) = out.last_param?;
    // The expansion is the last parameter: its elements are followed by the closing parenthesis.
    if !out.text[end..].starts_with(')') {
        return None;
    }
    let elements = split_top_level(&out.text[start..end])?;
    let expanded = elements.iter().map(|e| apply(pattern, e)).collect::<Option<Vec<_>>>()?;
    Some(format!("{}{}{}", &out.text[..start], expanded.join(", "), &out.text[end..]))
}

/// `…Dp<pattern>T<n>_` → (`…Dp`, pattern, `T<n>_`), the pattern made of reference, pointer and
/// cv-qualifier codes (outermost first).
fn split_trailing_pack(mangled: &str) -> Option<(&str, &str, &str)> {
    let param_at = mangled.rfind('T')?;
    let param = &mangled[param_at..];
    let digits = param[1..].strip_suffix('_')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let before = &mangled[..param_at];
    let pattern_len = before.bytes().rev().take_while(|b| b"ORPKVr".contains(b)).count();
    let (head, pattern) = before.split_at(before.len() - pattern_len);
    (!pattern.is_empty() && head.ends_with("Dp")).then_some((head, pattern, param))
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

/// The demangled text, and where the last outermost template-parameter node printed.
#[derive(Default)]
struct Spans {
    text: String,
    /// Open nodes: whether each is a template parameter, and where it started.
    open: Vec<(bool, usize)>,
    last_param: Option<(usize, usize)>,
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
            self.last_param = Some((start, self.text.len()));
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
        ] {
            assert_eq!(demangle_trailing_pack(mangled).as_deref(), Some(cxxfilt), "{mangled}");
        }
        // A function pointer element takes the pattern inside its parentheses: left alone.
        assert_eq!(demangle_trailing_pack("_Z1fIJiPFviEEEvDpOT_"), None);
        // No pattern, or no pack at the end: nothing to fix.
        assert_eq!(demangle_trailing_pack("_Z1fIJiRiOiEEvDpT_"), None);
        assert_eq!(demangle_trailing_pack("_Z3fooi"), None);
        for odd in ["", "T_", "DpOT_", "_ZDpOT_", "_Z1fDpOT5_", "_Z1fIJiEEvDpOTx_"] {
            let _ = demangle_trailing_pack(odd);
        }
    }
}
