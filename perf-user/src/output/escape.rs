//! Makes names from the target (symbols, thread names, paths) safe to print: a thread can name
//! itself `\e]0;…\a` and root's terminal must show those bytes, not obey them.

use std::borrow::Cow;

/// Characters a terminal may act on instead of showing: C0 and C1 controls, DEL, and the
/// bidirectional overrides that make text display in another order than it reads.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `control` for a whole text: every unsafe character but the line breaks.
pub fn lines(s: &str) -> Cow<'_, str> {
    escape_if(s, |c| c != '\n' && is_unsafe(c))
}

/// `s` with every unsafe character written as `\xNN` or `\u{NNNN}` (borrowed when none).
/// A backslash stays as it is: the point is a harmless terminal, not a reversible encoding.
pub fn control(s: &str) -> Cow<'_, str> {
    escape_if(s, is_unsafe)
}

fn escape_if(s: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        assert_eq!(control("app::f"), "app::f");
        assert!(matches!(control("app::f"), Cow::Borrowed(_)));
        assert_eq!(control("t\x1b]0;pwned\x07"), "t\\x1b]0;pwned\\x07");
        assert_eq!(control("a\nb\tc\u{9b}2J"), "a\\x0ab\\x09c\\x9b2J");
        assert_eq!(control("x\u{202E}y"), "x\\u{202e}y");
        assert_eq!(control("µs→ok"), "µs→ok");
        assert_eq!(lines("a\x1b[2J\nb\r"), "a\\x1b[2J\nb\\x0d");
    }
}
