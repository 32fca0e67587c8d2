//! The `--func` glob (`*` spans `::`, `?` is one character) and the "close matches" a glob that
//! matches nothing suggests. Runs once per pattern and name: no allocation per comparison.

/// Shell-style glob: `*` matches any run of characters (`::` included), `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and the text position it is currently made to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            ti += char_len(t, ti);
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            let next = st + char_len(t, st);
            pi = sp + 1;
            ti = next;
            star = Some((sp, next));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 character starting at `t[i]` (1 for a stray continuation byte).
fn char_len(t: &[u8], i: usize) -> usize {
    match t[i] {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
    .min(t.len() - i)
}

/// Names resembling `pattern`: those containing its longest literal piece, else those whose
/// last path segment is nearest by edit distance.
pub fn close_matches<'a>(names: impl Iterator<Item = &'a str> + Clone, pattern: &str, limit: usize) -> Vec<String> {
    let piece =
        pattern.split(['*', '?']).flat_map(|p| p.split("::")).max_by_key(|p| p.len()).unwrap_or("").to_lowercase();
    let mut out: Vec<String> = Vec::new();
    if piece.len() >= 3 {
        for n in names.clone() {
            if n.to_lowercase().contains(&piece) && !out.iter().any(|o| o == n) {
                out.push(n.to_string());
                if out.len() == limit {
                    return out;
                }
            }
        }
    }
    if !out.is_empty() {
        return out;
    }
    // Each literal path segment of the pattern against the name segment nearest to it, spelled
    // loosely (case and `_` ignored): `risk::Risk_Engine*` finds `risk::RiskEngine::check`, where
    // the last segment alone, as typed, was nearer to `run_engine`.
    let wanted: Vec<String> = pattern.split("::").map(loose).filter(|s| !s.is_empty()).collect();
    let budget = wanted.iter().map(|w| w.len().max(3) / 2).sum::<usize>();
    let mut scored: Vec<(usize, &str)> = names
        .map(|n| {
            let segments: Vec<String> = n.split("::").map(loose).collect();
            let d = wanted
                .iter()
                .map(|w| segments.iter().map(|s| edit_distance(w, s)).min().unwrap_or(w.len()))
                .sum::<usize>();
            (d, n)
        })
        .filter(|&(d, _)| d <= budget)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(limit).map(|(_, n)| n.to_string()).collect()
}

/// A path segment spelled loosely: wildcards, `_` and case dropped.
fn loose(segment: &str) -> String {
    segment.chars().filter(|c| !matches!(c, '*' | '?' | '_')).flat_map(char::to_lowercase).collect()
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
        // `?` is one character, not one byte; `*` backtracks over multi-byte characters.
        assert!(glob_match("a?c", "aéc"));
        assert!(glob_match("*é*x", "aébéx"));
        assert!(!glob_match("a?c", "aééc"));
        assert!(glob_match("*a*", "\u{80}\u{fff}a"));
    }

    #[test]
    fn close_matches_compare_path_segments_loosely() {
        // Regression: `risk::Risk_Engine*` suggested `run_engine` (nearer to `Risk_Engine` as
        // typed) before `RiskEngine::check`.
        let names = [
            "target_app::pipeline::run_engine",
            "target_app::risk::RiskEngine::check",
            "target_app::engine::Engine::on_message",
            "target_app::book::OrderBook::apply",
        ];
        let found = close_matches(names.iter().copied(), "target_app::risk::Risk_Engine*", 5);
        assert_eq!(found.first().map(String::as_str), Some("target_app::risk::RiskEngine::check"), "{found:?}");
        let typo = close_matches(names.iter().copied(), "*::OrderBok::aply", 5);
        assert_eq!(typo, ["target_app::book::OrderBook::apply"]);
        assert!(close_matches(names.iter().copied(), "zzz::qqqqqq", 5).is_empty());
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("apply", "apply"), 0);
        assert_eq!(edit_distance("aply", "apply"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
