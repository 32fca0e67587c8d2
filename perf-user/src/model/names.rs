//! Names of functions as the user reads them: the symbol alone, or `object:symbol` when another
//! traced function has the same symbol in another object (`malloc` in the executable and in
//! libc), so two functions never share a row's name in a table, a diff or a flame graph.

/// The object's file name, or its whole path when another function of the same symbol is in a
/// different object of the same file name.
fn qualifier<'a>(object: &'a str, symbol: &str, all: &[(&str, &'a str)]) -> &'a str {
    let file = object.rsplit('/').next().unwrap_or(object);
    let clash = all.iter().any(|&(s, o)| s == symbol && o != object && o.rsplit('/').next().unwrap_or(o) == file);
    if clash { object } else { file }
}

/// The shown name of `symbol` in `object` among `all` (every traced `(symbol, object)`): the
/// symbol, qualified by its object where ambiguous. A function without an object (reports from
/// before objects were named) is never qualified.
pub fn shown_name(symbol: &str, object: &str, all: &[(&str, &str)]) -> String {
    let ambiguous = !object.is_empty() && all.iter().any(|&(s, o)| s == symbol && o != object);
    if ambiguous { format!("{}:{symbol}", qualifier(object, symbol, all)) } else { symbol.to_owned() }
}

/// [`shown_name`] of each of `all`, in order.
pub fn shown_names(all: &[(&str, &str)]) -> Vec<String> {
    all.iter().map(|&(symbol, object)| shown_name(symbol, object, all)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_qualified_only_where_two_objects_share_it() {
        let all = [
            ("malloc", "/usr/bin/app"),
            ("malloc", "/usr/lib/libc.so.6"),
            ("work", "/usr/bin/app"),
            ("f", "/opt/a/libx.so"),
            ("f", "/opt/b/libx.so"),
            ("old", ""),
        ];
        assert_eq!(
            shown_names(&all),
            ["app:malloc", "libc.so.6:malloc", "work", "/opt/a/libx.so:f", "/opt/b/libx.so:f", "old"]
        );
    }
}
