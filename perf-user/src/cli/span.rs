//! `--span NAME=FROM..TO`: parsed into a `SpanSpec`, every mistake one line pointing at the bad
//! part. An endpoint is `FUNC(KEY)`: KEY `argN` or `argN+OFFSET` at the entry, `ret` at the return.

use std::fmt;

/// Most spans one run may define (the kernel's `MAX_SPANS`).
pub const MAX_SPANS: usize = 16;
/// Arguments a key can name: the six the System V ABI passes in registers.
const MAX_ARG: u32 = 5;

/// Where an endpoint reads its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKey {
    /// An integer argument, at the function's entry.
    Arg(u32),
    /// A u64 read at `offset` bytes through a pointer argument, at the function's entry.
    Deref { arg: u32, offset: u32 },
    /// The return value, at the function's return.
    Ret,
}

impl SpanKey {
    /// True when the endpoint is the function's return (only the return value is there).
    pub fn at_return(self) -> bool {
        self == SpanKey::Ret
    }
}

impl fmt::Display for SpanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpanKey::Arg(n) => write!(f, "arg{n}"),
            SpanKey::Deref { arg, offset } => write!(f, "arg{arg}+{offset}"),
            SpanKey::Ret => f.write_str("ret"),
        }
    }
}

/// One end of a span: a function (a `--func` style pattern that must match one function) and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub func: String,
    pub key: SpanKey,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.func, self.key)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanSpec {
    pub name: String,
    pub from: Endpoint,
    pub to: Endpoint,
}

/// Parses one `--span` value. The error names the option, the value and the bad part.
pub fn parse(text: &str) -> Result<SpanSpec, String> {
    let bad = |what: String| format!("--span '{text}': {what}");
    let Some((name, ends)) = text.split_once('=') else {
        return Err(bad("expected NAME=FROM..TO, e.g. tick_to_trade=feed_receive(arg0)..order_sent(arg0+8)".into()));
    };
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad(format!("name '{name}': use letters, digits, '_' and '-'")));
    }
    let Some((from, to)) = split_ends(ends) else {
        return Err(bad(format!("no '..' between FROM and TO in '{ends}'")));
    };
    let from = endpoint(from).map_err(|e| bad(format!("FROM {e}")))?;
    let to = endpoint(to).map_err(|e| bad(format!("TO {e}")))?;
    Ok(SpanSpec { name: name.to_string(), from, to })
}

/// FROM and TO around the `..` that follows FROM's closing parenthesis (function names may hold
/// neither, but a glob may hold dots elsewhere).
fn split_ends(ends: &str) -> Option<(&str, &str)> {
    match ends.find(")..") {
        Some(i) => Some((&ends[..=i], &ends[i + 3..])),
        None => ends.split_once(".."),
    }
}

/// `FUNC(KEY)`.
fn endpoint(text: &str) -> Result<Endpoint, String> {
    let text = text.trim();
    let Some(open) = text.find('(') else {
        return Err(format!("'{text}': expected FUNC(KEY), e.g. decode(arg0), send(arg1+16) or next_seq(ret)"));
    };
    let Some(inner) = text[open + 1..].strip_suffix(')') else {
        return Err(format!("'{text}': the key must end with ')'"));
    };
    let func = text[..open].trim();
    if func.is_empty() {
        return Err(format!("'{text}': no function before '('"));
    }
    let key = key(inner.trim()).map_err(|e| format!("'{text}': {e}"))?;
    // An explicit side must agree with the key: the return value exists only at the return, and
    // the argument registers are gone by then.
    let func = match func.rsplit_once('@') {
        Some((f, "entry")) if key.at_return() => {
            return Err(format!("'{text}': an entry has no return value; key it by argN, or use {f}@return(ret)"));
        }
        Some((_, "return")) if !key.at_return() => {
            return Err(format!("'{text}': arguments are gone at the return; key a return by ret"));
        }
        Some((f, "entry" | "return")) => f.trim(),
        Some((_, side)) => return Err(format!("'{text}': '@{side}': the side is @entry or @return")),
        None => func,
    };
    if func.is_empty() {
        return Err(format!("'{text}': no function before '@'"));
    }
    Ok(Endpoint { func: func.to_string(), key })
}

/// `argN`, `argN+OFFSET` (decimal or 0x hex), or `ret`.
fn key(text: &str) -> Result<SpanKey, String> {
    if text == "ret" {
        return Ok(SpanKey::Ret);
    }
    let Some(rest) = text.strip_prefix("arg") else {
        return Err(format!("key '{text}': expected argN (N 0..5), argN+OFFSET or ret"));
    };
    let (n, offset) = match rest.split_once('+') {
        Some((n, off)) => (n.trim(), Some(off.trim())),
        None => (rest, None),
    };
    let n: u32 = n.parse().map_err(|_| format!("key '{text}': expected argN (N 0..5), argN+OFFSET or ret"))?;
    if n > MAX_ARG {
        return Err(format!("key '{text}': arg{n} is not in a register; arguments are arg0..arg5"));
    }
    let Some(off) = offset else { return Ok(SpanKey::Arg(n)) };
    let parsed = match off.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => off.parse(),
    };
    let offset = parsed.map_err(|_| format!("key '{text}': offset '{off}' is not a byte count (e.g. 16 or 0x10)"))?;
    Ok(SpanKey::Deref { arg: n, offset })
}

/// Checks a whole set of spans: unique names, at most `MAX_SPANS`.
pub fn check_all(spans: &[SpanSpec]) -> Result<(), String> {
    if spans.len() > MAX_SPANS {
        return Err(format!("--span: {} spans, at most {MAX_SPANS}", spans.len()));
    }
    for (i, s) in spans.iter().enumerate() {
        if spans[..i].iter().any(|o| o.name == s.name) {
            return Err(format!("--span '{}': the name is used twice", s.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trading_example_parses() {
        let s = parse("tick_to_trade=target_app::tick::feed_receive(arg0)..target_app::tick::order_sent(arg0+8)")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "tick_to_trade");
        assert_eq!(s.from, Endpoint { func: "target_app::tick::feed_receive".into(), key: SpanKey::Arg(0) });
        assert_eq!(s.to.key, SpanKey::Deref { arg: 0, offset: 8 });
        let r = parse("t=*::next_seq(ret)..send(arg1+0x10)").unwrap_or_else(|e| panic!("{e}"));
        assert!(r.from.key.at_return());
        assert_eq!(r.to.key, SpanKey::Deref { arg: 1, offset: 16 });
    }

    #[test]
    fn bad_specs_say_which_part_is_wrong() {
        let err = |s: &str| parse(s).map(|_| ()).unwrap_err();
        assert!(err("t=a(arg0)").contains("no '..'"), "{}", err("t=a(arg0)"));
        assert!(err("a(arg0)..b(arg0)").contains("NAME=FROM..TO"));
        assert!(err("t=a(arg7)..b(arg0)").contains("FROM 'a(arg7)': key 'arg7': arg7 is not in a register"));
        assert!(err("t=a(arg0)..b(x)").starts_with("--span 't=a(arg0)..b(x)': TO 'b(x)': key 'x'"));
        assert!(err("t=a..b(arg0)").contains("FROM 'a': expected FUNC(KEY)"));
        assert!(err("t=a(arg0+zz)..b(arg0)").contains("offset 'zz'"));
        assert!(err("t t=a(arg0)..b(arg0)").contains("name 't t'"));
        assert!(err("t=a@entry(ret)..b(arg0)").contains("an entry has no return value"));
        assert!(err("t=a(arg0)..b@return(arg1)").contains("arguments are gone at the return"));
        assert_eq!(parse("t=a@return(ret)..b@entry(arg2)").map(|s| s.from.func), Ok("a".to_string()));
        for e in ["t=a(arg0)", "t=a(arg7)..b(arg0)", "x"] {
            assert!(!err(e).contains('\n'), "one line: {}", err(e));
        }
    }

    #[test]
    fn names_must_be_unique() {
        let a = parse("t=a(arg0)..b(arg0)").unwrap_or_else(|e| panic!("{e}"));
        assert!(check_all(&[a.clone(), a]).unwrap_err().contains("used twice"));
    }
}
