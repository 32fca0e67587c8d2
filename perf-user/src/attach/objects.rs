//! `--func 'OBJECT:FUNC'`: functions of the shared libraries mapped into the target, found in
//! `/proc/PID/maps` and read through `/proc/PID/map_files/START-END` (the inode the process maps:
//! right in another mount namespace, and after the file was replaced or deleted on disk). Used at
//! attach (plan) and for libraries loaded later (refresh).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::target::{
    needed, proc,
    symbols::{
        Function, SymbolError, SymbolTable, close_matches,
        objects::{self, MappedObject},
    },
};

/// One `OBJECT:FUNC` pattern, split.
#[derive(Clone, Debug)]
pub(super) struct ObjectPattern {
    pub whole: String,
    pub object: String,
    pub function: String,
}

/// The `--func` patterns for the executable, and those naming an object.
pub(super) fn split(funcs: &[String]) -> (Vec<String>, Vec<ObjectPattern>) {
    let mut main = Vec::new();
    let mut libs = Vec::new();
    for f in funcs {
        match objects::split_object_pattern(f) {
            (Some(object), function) => {
                libs.push(ObjectPattern { whole: f.clone(), object: object.into(), function: function.into() })
            }
            (None, _) => main.push(f.clone()),
        }
    }
    (main, libs)
}

/// The executable objects the target maps now.
pub(super) fn mapped(pid: u32) -> Vec<MappedObject> {
    proc::maps_text(pid).map(|t| objects::executable_objects(pid, &t)).unwrap_or_default()
}

/// `run`: the objects CMD will map when it starts, before it runs: its executable, its
/// interpreter and the libraries the dynamic loader will find for it (`target::needed`). Probes go
/// on their files; the kernel inserts them when the loader maps them, before CMD's first call.
pub(super) fn predicted(exe: &Path) -> Vec<MappedObject> {
    let libs = needed::libraries(exe, &needed::Search::for_child());
    std::iter::once(exe.to_path_buf())
        .chain(libs)
        .filter_map(|path| {
            let path = std::fs::canonicalize(&path).ok()?;
            let id = file_id(&path)?;
            let id = (format!("{:02x}:{:02x}", libc::major(id.0), libc::minor(id.0)), id.1);
            Some(MappedObject { path: path.display().to_string(), attach: path, id })
        })
        .collect()
}

/// A file's (device, inode) as `stat` gives them (through a `map_files` link: the mapped file's).
pub(super) fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// What the object patterns chose among some objects.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub functions: Vec<Function>,
    /// `(attach path, path as the target names it)` of each object functions came from.
    pub names: Vec<(PathBuf, String)>,
    /// Why an object of theirs may unwind through a return probe, naming it.
    pub unwind_risks: Vec<String>,
    /// For the user: patterns whose object is not mapped (yet), fragments left out.
    pub notes: Vec<String>,
}

/// The functions `patterns` choose in `objects`. The executable (`exe`, as the target names it)
/// is read through `exe_link`. At attach (`late` false) a function glob that matches nothing in
/// the objects its object glob matched is an error; an object glob that matches no object is a
/// note (the library may be loaded later). For libraries loaded later (`late`) nothing is an error.
pub(super) fn resolve(
    patterns: &[ObjectPattern],
    objects: &[MappedObject],
    (pid, exe_link, exe): (u32, &Path, &Path),
    late: bool,
) -> Result<Found> {
    let mut found = Found::default();
    for pat in patterns {
        let matched = objects::matching(objects, &pat.object);
        if matched.is_empty() {
            if !late {
                let close = close_matches(objects.iter().map(MappedObject::file_name), &pat.object, 5);
                found.notes.push(format!(
                    "--func '{}': no object mapped into pid {pid} matches '{}' yet; its functions are traced once it is loaded{}",
                    pat.whole,
                    pat.object,
                    if close.is_empty() { String::new() } else { format!(" (mapped now: {})", close.join(", ")) }
                ));
            }
            continue;
        }
        let mut hits = 0;
        let mut first_miss = None;
        for obj in matched {
            let is_exe = Path::new(&obj.path) == exe;
            let attach = if is_exe { exe_link.to_path_buf() } else { obj.attach.clone() };
            let mut table = match SymbolTable::read(&attach) {
                Ok(t) => t,
                Err(e) if late => {
                    found.notes.push(format!("--func '{}': {} not traced: {e}", pat.whole, obj.path));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            table.binary = PathBuf::from(&obj.path);
            match table.resolve(std::slice::from_ref(&pat.function)) {
                Ok(sel) => {
                    hits += sel.functions.len();
                    found.notes.extend(sel.notes.into_iter().map(|n| format!("{}: {n}", obj.file_name())));
                    if let Some(risk) = &table.unwind_risk {
                        found.unwind_risks.push(format!("{}: {risk}", obj.file_name()));
                    }
                    if !found.names.iter().any(|(a, _)| *a == attach) {
                        found.names.push((attach.clone(), obj.path.clone()));
                    }
                    for f in sel.functions {
                        if !found.functions.iter().any(|c| c.address == f.address && c.object == f.object) {
                            found.functions.push(f);
                        }
                    }
                }
                Err(
                    e @ (SymbolError::NoMatch { .. }
                    | SymbolError::Stripped { .. }
                    | SymbolError::NotEntry { .. }
                    | SymbolError::Inlined { .. }),
                ) => {
                    first_miss.get_or_insert(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if hits == 0
            && !late
            && let Some(e) = first_miss
        {
            return Err(e.into());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_patterns_go_apart_from_the_executables() {
        let funcs: Vec<String> =
            ["target_app::book::*", "libc.so.6:malloc", "libengine*.so:book::*", "0x1234"].map(String::from).into();
        let (main, libs) = split(&funcs);
        assert_eq!(main, ["target_app::book::*", "0x1234"]);
        let libs: Vec<(&str, &str, &str)> =
            libs.iter().map(|p| (p.whole.as_str(), p.object.as_str(), p.function.as_str())).collect();
        assert_eq!(
            libs,
            [("libc.so.6:malloc", "libc.so.6", "malloc"), ("libengine*.so:book::*", "libengine*.so", "book::*")]
        );
    }

    /// This process's own libc, read through its map_files link: `malloc` is found there, a glob
    /// that matches no object is a note at attach (it may be loaded later), and a function glob
    /// that matches nothing in a mapped object is an error at attach but not later.
    #[test]
    fn patterns_resolve_against_the_mapped_objects() {
        let pid = std::process::id();
        let objects = mapped(pid);
        if !objects.iter().any(|o| o.file_name() == "libc.so.6") || std::fs::File::open(&objects[0].attach).is_err() {
            eprintln!("skipping: no libc.so.6 mapped or map_files not readable (needs root)");
            return;
        }
        let exe = proc::exe(pid).unwrap();
        let target = (pid, Path::new("/proc/self/exe"), exe.as_path());
        let (_, pats) = split(&["libc.so.6:malloc".into(), "libnothere*.so:f".into()]);
        let found = resolve(&pats, &objects, target, false).unwrap();
        assert_eq!(found.functions.len(), 1, "{:?}", found.functions);
        assert_eq!(found.functions[0].name, "malloc");
        let (attach, name) = &found.names[0];
        assert_eq!(found.functions[0].object, *attach);
        assert!(name.ends_with("/libc.so.6"), "{name}");
        assert!(found.notes.iter().any(|n| n.contains("libnothere*.so") && n.contains("once it is loaded")));
        let (_, bad) = split(&["libc.so.6:no_such_function_here".into()]);
        assert!(resolve(&bad, &objects, target, false).is_err());
        assert!(resolve(&bad, &objects, target, true).unwrap().functions.is_empty());
    }
}
