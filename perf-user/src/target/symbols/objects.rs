//! Shared libraries: `--func 'OBJECT:FUNC'` names functions of any ELF object mapped into the
//! target (`libc.so.6:malloc`), a glob on the object's file name, a colon, a glob on the function.
//!
//! Pure: the caller hands in `/proc/PID/maps` text (read by the one `/proc` reader); probes go
//! through `/proc/PID/map_files/START-END`, the inode the process maps, wherever it lives.

use std::path::PathBuf;

use super::glob::glob_match;

/// Splits `libengine*.so:book::*` into (`Some("libengine*.so")`, `"book::*"`). A `::` is a path
/// separator of the function's name, never the object separator; no single colon means the
/// main executable.
pub fn split_object_pattern(pattern: &str) -> (Option<&str>, &str) {
    let bytes = pattern.as_bytes();
    let colon = (0..bytes.len())
        .find(|&i| bytes[i] == b':' && bytes.get(i + 1) != Some(&b':') && (i == 0 || bytes[i - 1] != b':'));
    match colon {
        Some(i) if i > 0 => (Some(&pattern[..i]), &pattern[i + 1..]),
        _ => (None, pattern),
    }
}

/// One file-backed executable mapping of the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedObject {
    /// The path as the target sees it (`/usr/lib/x86_64-linux-gnu/libc.so.6`).
    pub path: String,
    /// What probes attach through: `/proc/PID/map_files/START-END` of its executable mapping.
    pub attach: PathBuf,
    /// The file's device (`fd:01`) and inode: what it is, whatever its path (a library loaded
    /// again after `dlclose` is the same file; one replaced on disk is another).
    pub id: (String, u64),
}

impl MappedObject {
    /// The file name an `OBJECT:` glob matches.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// The distinct executable, file-backed objects in `/proc/PID/maps` text, in map order.
pub fn executable_objects(pid: u32, maps: &str) -> Vec<MappedObject> {
    let mut out: Vec<MappedObject> = Vec::new();
    for line in maps.lines() {
        let mut fields = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(_offset), Some(dev), Some(inode)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = fields.next().map(str::trim_start).unwrap_or("");
        // A replaced or deleted file is still probed through the mapping the process holds.
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        if !perms.contains('x') || !path.starts_with('/') {
            continue;
        }
        if out.iter().any(|o| o.path == path) {
            continue;
        }
        out.push(MappedObject {
            path: path.to_string(),
            attach: PathBuf::from(format!("/proc/{pid}/map_files/{range}")),
            id: (dev.to_string(), inode.parse().unwrap_or(0)),
        });
    }
    out
}

/// The objects whose file name matches `glob`.
pub fn matching<'a>(objects: &'a [MappedObject], glob: &str) -> Vec<&'a MappedObject> {
    objects.iter().filter(|o| glob_match(glob, o.file_name())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_patterns_split_on_a_single_colon_only() {
        assert_eq!(split_object_pattern("libc.so.6:malloc"), (Some("libc.so.6"), "malloc"));
        assert_eq!(split_object_pattern("libengine*.so:book::*"), (Some("libengine*.so"), "book::*"));
        assert_eq!(split_object_pattern("target_app::book::*"), (None, "target_app::book::*"));
        assert_eq!(
            split_object_pattern("std::vector<int>::push_back(int const&)"),
            (None, "std::vector<int>::push_back(int const&)")
        );
        assert_eq!(split_object_pattern(":x"), (None, ":x"));
        assert_eq!(split_object_pattern("0x1234"), (None, "0x1234"));
    }

    #[test]
    fn executable_file_mappings_become_objects() {
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 fd:01 123  /usr/bin/app
55d0c0001000-55d0c0002000 r-xp 00001000 fd:01 123  /usr/bin/app
7f0000000000-7f0000100000 r-xp 00028000 fd:01 456  /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000200000-7f0000201000 r-xp 00000000 fd:01 789  /tmp/libengine2.so (deleted)
7f0000300000-7f0000301000 rw-p 00000000 00:00 0    [heap]
7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0    [vdso]
";
        let objs = executable_objects(42, maps);
        let names: Vec<&str> = objs.iter().map(MappedObject::file_name).collect();
        assert_eq!(names, ["app", "libc.so.6", "libengine2.so"]);
        assert_eq!(objs[1].attach, PathBuf::from("/proc/42/map_files/7f0000000000-7f0000100000"));
        assert_eq!(objs[1].id, ("fd:01".to_string(), 456));
        assert_eq!(matching(&objs, "libc*").len(), 1);
    }
}
