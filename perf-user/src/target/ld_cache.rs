//! `/etc/ld.so.cache`, read as glibc's dynamic loader reads it: the new format
//! (`glibc-ld.so.cache1.1`), entries by library name, and the `glibc-hwcaps` extension that gives
//! one name several builds (`x86-64-v3/libfoo.so.1`) of which the loader takes the best this CPU runs.
//!
//! Pure: the caller hands in the file's bytes and the subdirectories the CPU supports.

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const HEADER: usize = 48;
const ENTRY: usize = 24;
/// `FLAG_ELF_LIBC6`: the entry is a glibc shared object (the low byte is the type).
const FLAG_ELF_LIBC6: i32 = 3;
const FLAG_TYPE_MASK: i32 = 0xff;
/// The top bits of an entry's hwcap that say "an index into the glibc-hwcaps extension".
const HWCAP_EXTENSION: u64 = 1 << 62;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_TAG_GLIBC_HWCAPS: u32 = 1;
/// A name or path longer than this is skipped: each string costs a bounded scan, so a hostile
/// cache of many entries pointing into one long unterminated run stays linear.
const MAX_STRING: usize = 4096;
/// A cache larger than this is not read (glibc's is well under a megabyte).
pub const MAX_CACHE: u64 = 64 << 20;

/// What an entry is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Build {
    /// Every CPU.
    Baseline,
    /// A `glibc-hwcaps` subdirectory's level (`x86-64-v3`).
    Hwcaps(String),
    /// Legacy hwcap bits (glibc before 2.37): its path's subdirectory says which (`tls/x86_64`).
    Legacy,
}

/// The parsed cache: `(name, path, build)` per glibc entry, in file order.
#[derive(Debug, Default)]
pub struct LdCache {
    entries: Vec<(String, String, Build)>,
}

impl LdCache {
    /// The cache in `data`; empty when it is not a cache this reader knows (then the loader's
    /// other places are searched, as glibc does with a missing cache).
    pub fn parse(data: &[u8]) -> LdCache {
        let Some(start) = find(data, MAGIC) else { return LdCache::default() };
        let new = &data[start..];
        let u32_at = |off: usize| new.get(off..off + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let (Some(nlibs), Some(ext_off)) = (u32_at(20), u32_at(32)) else { return LdCache::default() };
        let subdirs = hwcap_subdirs(new, ext_off as usize);
        let string = |off: u32| std::str::from_utf8(c_string(new, off as usize)?).ok().map(str::to_owned);
        let mut entries = Vec::new();
        for i in 0..nlibs as usize {
            let at = HEADER + i * ENTRY;
            let Some(e) = new.get(at..at + ENTRY) else { break };
            let flags = i32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            let key = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let value = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
            let hwcap = u64::from_le_bytes([e[16], e[17], e[18], e[19], e[20], e[21], e[22], e[23]]);
            if flags & FLAG_TYPE_MASK != FLAG_ELF_LIBC6 {
                continue;
            }
            let subdir = if hwcap >> 55 == HWCAP_EXTENSION >> 55 {
                match subdirs.get(hwcap as u32 as usize) {
                    Some(s) => Build::Hwcaps(s.clone()),
                    None => continue,
                }
            } else if hwcap != 0 {
                Build::Legacy
            } else {
                Build::Baseline
            };
            if let (Some(k), Some(v)) = (string(key), string(value)) {
                entries.push((k, v, subdir));
            }
        }
        LdCache { entries }
    }

    /// The paths the cache gives for `name`, best first: builds in a glibc-hwcaps subdirectory
    /// the loader searches (in `supported`'s order, best first), then those in a legacy hwcap
    /// subdirectory it searches (in `legacy`'s order, the loader's), then the baseline build(s).
    pub fn lookup(&self, name: &str, supported: &[&str], legacy: &[String]) -> Vec<&str> {
        let rank = |path: &str, build: &Build| match build {
            Build::Hwcaps(s) => supported.iter().position(|x| x == s),
            Build::Legacy => legacy_rank(path, legacy).map(|r| supported.len() + r),
            Build::Baseline => Some(supported.len() + legacy.len()),
        };
        let mut found: Vec<(usize, &str)> = self
            .entries
            .iter()
            .filter(|(k, _, _)| k == name)
            .filter_map(|(_, v, build)| rank(v, build).map(|r| (r, v.as_str())))
            .collect();
        found.sort_by_key(|&(r, _)| r);
        found.into_iter().map(|(_, v)| v).collect()
    }
}

/// Where a legacy entry's directory stands in the loader's `legacy` order: the longest of those
/// subdirectories its directory ends with (`/usr/lib/tls/x86_64/libfoo.so` is in `tls/x86_64`,
/// not `x86_64`); `None` for one the loader does not search.
fn legacy_rank(path: &str, legacy: &[String]) -> Option<usize> {
    let dir = path.rsplit_once('/')?.0;
    legacy
        .iter()
        .enumerate()
        .filter(|(_, sub)| dir.strip_suffix(sub.as_str()).is_some_and(|rest| rest.ends_with('/')))
        .max_by_key(|(_, sub)| sub.len())
        .map(|(i, _)| i)
}

/// The glibc-hwcaps subdirectory names of the cache's extension, by index.
fn hwcap_subdirs(new: &[u8], ext_off: usize) -> Vec<String> {
    let u32_at = |off: usize| new.get(off..off + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if ext_off == 0 || u32_at(ext_off) != Some(EXTENSION_MAGIC) {
        return Vec::new();
    }
    let count = u32_at(ext_off + 4).unwrap_or(0) as usize;
    for i in 0..count.min(64) {
        let sec = ext_off + 8 + i * 16;
        let (Some(tag), Some(off), Some(size)) = (u32_at(sec), u32_at(sec + 8), u32_at(sec + 12)) else { break };
        if tag != EXTENSION_TAG_GLIBC_HWCAPS {
            continue;
        }
        // The table lies inside the file: a hostile size cannot make this loop longer than it.
        let size = (size as usize / 4).min(new.len().saturating_sub(off as usize) / 4);
        return (0..size)
            .filter_map(|j| {
                Some(String::from_utf8_lossy(c_string(new, u32_at(off as usize + j * 4)? as usize)?).into_owned())
            })
            .collect();
    }
    Vec::new()
}

/// The NUL-terminated bytes at `off`, if they end within [`MAX_STRING`] bytes.
fn c_string(data: &[u8], off: usize) -> Option<&[u8]> {
    let s = data.get(off..)?;
    let s = &s[..s.len().min(MAX_STRING + 1)];
    s.iter().position(|&b| b == 0).map(|end| &s[..end])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache with `libfoo.so.1` three times (baseline, an x86-64-v3 build and a legacy `tls/x86_64`
    /// one, whose hwcap bits are TLS and x86_64's) and `libbar.so`.
    fn sample() -> Vec<u8> {
        const N: usize = 4;
        let strings = b"libfoo.so.1\0/usr/lib/libfoo.so.1\0/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1\0libbar.so\0/lib/libbar.so\0x86-64-v3\0/usr/lib/tls/x86_64/libfoo.so.1\0";
        let str_at = |s: &str| (find(strings, format!("{s}\0").as_bytes()).unwrap() + HEADER + N * ENTRY) as u32;
        let mut d = Vec::new();
        d.extend_from_slice(MAGIC);
        d.extend_from_slice(&(N as u32).to_le_bytes());
        d.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        d.extend_from_slice(&[2, 0, 0, 0]);
        let ext_at = (HEADER + N * ENTRY + strings.len() + 3) & !3;
        d.extend_from_slice(&(ext_at as u32).to_le_bytes());
        d.extend_from_slice(&[0; 12]);
        let entry = |d: &mut Vec<u8>, key: &str, value: &str, hwcap: u64| {
            d.extend_from_slice(&0x0303i32.to_le_bytes());
            d.extend_from_slice(&str_at(key).to_le_bytes());
            d.extend_from_slice(&str_at(value).to_le_bytes());
            d.extend_from_slice(&0u32.to_le_bytes());
            d.extend_from_slice(&hwcap.to_le_bytes());
        };
        entry(&mut d, "libfoo.so.1", "/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1", HWCAP_EXTENSION);
        entry(&mut d, "libfoo.so.1", "/usr/lib/tls/x86_64/libfoo.so.1", 1 << 63 | 1 << 1);
        entry(&mut d, "libfoo.so.1", "/usr/lib/libfoo.so.1", 0);
        entry(&mut d, "libbar.so", "/lib/libbar.so", 0);
        d.extend_from_slice(strings);
        d.resize(ext_at, 0);
        let table_at = (ext_at + 8 + 16) as u32;
        for w in [EXTENSION_MAGIC, 1, EXTENSION_TAG_GLIBC_HWCAPS, 0, table_at, 4, str_at("x86-64-v3")] {
            d.extend_from_slice(&w.to_le_bytes());
        }
        d
    }

    #[test]
    fn names_resolve_to_the_best_build_the_cpu_runs() {
        let cache = LdCache::parse(&sample());
        assert_eq!(cache.lookup("libbar.so", &[], &[]), ["/lib/libbar.so"]);
        assert_eq!(cache.lookup("libfoo.so.1", &[], &[]), ["/usr/lib/libfoo.so.1"]);
        assert_eq!(
            cache.lookup("libfoo.so.1", &["x86-64-v4", "x86-64-v3"], &[]),
            ["/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1", "/usr/lib/libfoo.so.1"]
        );
        assert!(cache.lookup("libnone.so", &[], &[]).is_empty());
        assert!(LdCache::parse(b"not a cache").lookup("libbar.so", &[], &[]).is_empty());
    }

    /// A legacy build is taken when the loader searches its subdirectory (glibc 2.36: `tls/x86_64`
    /// among others), after the glibc-hwcaps builds and before the baseline; never by a loader that
    /// does not (2.37 and later, or another platform's subdirectory).
    #[test]
    fn a_legacy_build_is_taken_where_the_loader_searches_its_subdirectory() {
        let cache = LdCache::parse(&sample());
        let legacy: Vec<String> = ["tls/x86_64/x86_64", "tls/x86_64", "tls", "x86_64"].map(String::from).to_vec();
        assert_eq!(
            cache.lookup("libfoo.so.1", &["x86-64-v3"], &legacy),
            ["/usr/lib/glibc-hwcaps/x86-64-v3/libfoo.so.1", "/usr/lib/tls/x86_64/libfoo.so.1", "/usr/lib/libfoo.so.1"]
        );
        assert_eq!(cache.lookup("libfoo.so.1", &[], &legacy)[0], "/usr/lib/tls/x86_64/libfoo.so.1");
        assert_eq!(cache.lookup("libfoo.so.1", &[], &["tls/haswell".into()]), ["/usr/lib/libfoo.so.1"]);
        assert_eq!(legacy_rank("/usr/lib/tls/x86_64/libfoo.so.1", &legacy), Some(1), "the longest match");
        assert_eq!(legacy_rank("/usr/lib/notls/libfoo.so.1", &legacy), None, "a whole component");
    }

    /// This machine's cache, checked against `ldconfig -p`: every libc6 name it lists is found at
    /// the path it says.
    #[test]
    fn the_system_cache_agrees_with_ldconfig() {
        let (Ok(data), Ok(out)) =
            (std::fs::read("/etc/ld.so.cache"), std::process::Command::new("ldconfig").arg("-p").output())
        else {
            eprintln!("skipping: no /etc/ld.so.cache or ldconfig");
            return;
        };
        let cache = LdCache::parse(&data);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut checked = 0;
        for line in text.lines().filter(|l| l.contains("libc6") && !l.contains("hwcap")) {
            let (Some(name), Some(path)) = (line.split_whitespace().next(), line.rsplit(" => ").next()) else {
                continue;
            };
            assert!(
                cache.lookup(name, &[], &[]).contains(&path),
                "{name} => {path}: {:?}",
                cache.lookup(name, &[], &[])
            );
            checked += 1;
        }
        assert!(checked > 10, "only {checked} entries checked: {text}");
    }
}
