//! `perf-user run` reads, as root and before CMD starts, files anyone may have shaped: the
//! command's ELF (`DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH`), the libraries it names and
//! `/etc/ld.so.cache`. Each hostile shape here is skipped or bounded, never a panic or a hang:
//! a truncated or garbage cache, a `DT_NEEDED` offset out of range, a `DT_RUNPATH` of 10,000
//! directories, a cyclic `DT_NEEDED` chain, a FIFO where a library is searched, and a library
//! name with terminal escape bytes (which reaches the user only escaped).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests panic with context")]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::*;
use object::{Object, ObjectSection};
use perf_user::target::{
    ld_cache::LdCache,
    loader_layout::LoaderLayout,
    needed::{self, Search},
};

/// `cc -shared` (or an executable without `-shared`) of `src` into `dir/out` with `args`.
fn cc(dir: &Path, src: &str, out: &str, args: &[&str]) -> PathBuf {
    let c = dir.join(format!("{out}.c"));
    std::fs::write(&c, src).unwrap();
    let path = dir.join(out);
    let o = Command::new("cc").arg("-o").arg(&path).arg(&c).args(args).output().expect("run cc");
    assert!(o.status.success(), "cc {out}: {}", String::from_utf8_lossy(&o.stderr));
    path
}

fn search_in(cwd: &Path) -> Search {
    let mut s = Search::for_child();
    s.ld_library_path = None;
    s.ld_preload = None;
    s.cwd = cwd.to_path_buf();
    s
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect()
}

#[test]
fn garbage_and_truncated_caches_find_nothing_and_never_panic() {
    let real = std::fs::read("/etc/ld.so.cache").unwrap_or_default();
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"glibc-ld.so.cache1.1".to_vec(),
        // Header claiming 2^32-1 entries and an extension at the end of the address space.
        [b"glibc-ld.so.cache1.1".as_slice(), &[0xff; 28]].concat(),
        (0..=255u8).cycle().take(1 << 16).collect(),
    ];
    for cut in [1, 7, 48, 100, real.len() / 2, real.len().saturating_sub(1)] {
        inputs.push(real[..cut.min(real.len())].to_vec());
    }
    for data in &inputs {
        let cache = LdCache::parse(data);
        let _ = cache.lookup("libc.so.6", &["x86-64-v3", "x86-64-v2"], &["tls".into()]);
    }
    // The whole cache with every byte after the magic's header flipped in turn, a sample of them.
    for at in (20..real.len().min(4096)).step_by(7) {
        let mut d = real.clone();
        d[at] ^= 0xff;
        let _ = LdCache::parse(&d).lookup("libc.so.6", &[], &[]);
    }
}

#[test]
fn a_needed_offset_out_of_range_is_skipped() {
    if !tool_available("a_needed_offset_out_of_range_is_skipped", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("needed-range");
    let lib = cc(&dir.0, "int f(void){return 1;}", "libgood.so", &["-shared", "-fPIC"]);
    let exe = cc(
        &dir.0,
        "int f(void); int main(void){return f();}",
        "main",
        &["-L", &dir.0.display().to_string(), "-lgood", "-Wl,-rpath,$ORIGIN"],
    );
    let info = needed::dynamic_info(&exe).expect("the fixture parses");
    assert!(info.needed.iter().any(|n| n == "libgood.so"), "{info:?}");
    assert!(names(&needed::libraries(&exe, &search_in(&dir.0))).contains(&"libgood.so".into()));
    // Every DT_NEEDED value pointed far past the string table (and the file).
    let mut data = std::fs::read(&exe).unwrap();
    patch_dynamic(&mut data, object::elf::DT_NEEDED, u64::MAX / 2);
    let bad = dir.0.join("bad");
    std::fs::write(&bad, &data).unwrap();
    let info = needed::parse_dynamic(&data).expect("the rest of the file still parses");
    assert!(info.needed.is_empty(), "{info:?}");
    assert!(!names(&needed::libraries(&bad, &search_in(&dir.0))).contains(&"libgood.so".into()));
    drop(lib);
}

/// Sets the value of every `tag` entry of the dynamic section of the ELF64 image `data`.
fn patch_dynamic(data: &mut [u8], tag: u32, value: u64) {
    let (start, size) = {
        let file = object::File::parse(&*data).unwrap();
        file.section_by_name(".dynamic").unwrap().file_range().unwrap()
    };
    let mut patched = 0;
    for at in (start as usize..(start + size) as usize).step_by(16) {
        if u64::from_le_bytes(data[at..at + 8].try_into().unwrap()) == u64::from(tag) {
            data[at + 8..at + 16].copy_from_slice(&value.to_le_bytes());
            patched += 1;
        }
    }
    assert!(patched > 0, "no dynamic tag {tag} to patch");
}

#[test]
fn a_runpath_of_ten_thousand_directories_ends() {
    if !tool_available("a_runpath_of_ten_thousand_directories_ends", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("runpath-10k");
    cc(&dir.0, "int f(void){return 1;}", "libfar.so", &["-shared", "-fPIC"]);
    let mut list: Vec<String> = (0..10_000).map(|i| format!("/n{i}")).collect();
    list.push(dir.0.display().to_string());
    let runpath = format!("-Wl,--enable-new-dtags,-rpath,{}", list.join(":"));
    let exe = cc(
        &dir.0,
        "int f(void); int main(void){return f();}",
        "main",
        &["-L", &dir.0.display().to_string(), "-lfar", &runpath],
    );
    let info = needed::dynamic_info(&exe).unwrap();
    assert_eq!(info.runpath.as_deref().map(|r| r.split(':').count()), Some(10_001));
    // Found as the loader finds it, after 10,000 directories that are not there.
    let found = names(&needed::libraries(&exe, &search_in(&dir.0)));
    assert!(found.contains(&"libfar.so".into()), "{found:?}");
    assert!(found.iter().any(|n| n.starts_with("libc.so")), "{found:?}");
}

#[test]
fn a_cyclic_needed_chain_ends_with_each_library_once() {
    if !tool_available("a_cyclic_needed_chain_ends_with_each_library_once", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("needed-cycle");
    let d = dir.0.display().to_string();
    let rpath = "-Wl,-rpath,$ORIGIN";
    // libb first without its need, liba needing it, then libb again needing liba: a cycle.
    cc(&dir.0, "int b(void){return 2;}", "libb.so", &["-shared", "-fPIC"]);
    cc(&dir.0, "int b(void); int a(void){return b();}", "liba.so", &["-shared", "-fPIC", "-L", &d, "-lb", rpath]);
    cc(&dir.0, "int a(void); int b(void){return 2;}", "libb.so", &["-shared", "-fPIC", "-L", &d, "-la", rpath]);
    let exe = cc(&dir.0, "int a(void); int main(void){return a();}", "main", &["-L", &d, "-la", rpath]);
    let found = names(&needed::libraries(&exe, &search_in(&dir.0)));
    for lib in ["liba.so", "libb.so"] {
        assert_eq!(found.iter().filter(|n| *n == lib).count(), 1, "{found:?}");
    }
}

#[test]
fn a_fifo_where_a_library_is_searched_does_not_block() {
    if !tool_available("a_fifo_where_a_library_is_searched_does_not_block", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("needed-fifo");
    let fifo_dir = dir.0.join("fifo");
    std::fs::create_dir(&fifo_dir).unwrap();
    cc(&dir.0, "int f(void){return 1;}", "libpiped.so", &["-shared", "-fPIC"]);
    let d = dir.0.display().to_string();
    let rpath = format!("-Wl,-rpath,{}:{d}", fifo_dir.display());
    let exe = cc(&dir.0, "int f(void); int main(void){return f();}", "main", &["-L", &d, "-lpiped", &rpath]);
    let fifo = std::ffi::CString::new(fifo_dir.join("libpiped.so").display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let found = needed::libraries(&exe, &search_in(&dir.0));
    assert!(found.iter().any(|p| p == &dir.0.join("libpiped.so")), "the FIFO is passed over: {found:?}");
}

#[test]
fn a_library_name_with_terminal_escapes_is_found_and_printed_escaped() {
    if !tool_available("a_library_name_with_terminal_escapes_is_found_and_printed_escaped", "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("needed-escape");
    let d = dir.0.display().to_string();
    let hostile = "lib\x1b]0;owned\x07\x1b[2J.so";
    cc(&dir.0, "int f(void){return 1;}", hostile, &["-shared", "-fPIC", &format!("-Wl,-soname,{hostile}")]);
    let exe = cc(
        &dir.0,
        "int f(void); int main(void){return f();}",
        "main",
        &[dir.0.join(hostile).to_str().unwrap(), "-Wl,-rpath,$ORIGIN", "-L", &d],
    );
    let info = needed::dynamic_info(&exe).unwrap();
    assert!(info.needed.iter().any(|n| n == hostile), "{info:?}");
    assert!(names(&needed::libraries(&exe, &search_in(&dir.0))).contains(&hostile.to_string()));
    // What perf-user prints of it (the object a pattern found no function in), escaped.
    let out = Command::new(PERF_USER)
        .args(["run", "--func", "lib*:nosuch", "--duration", "1", "--no-tui", "--"])
        .arg(&exe)
        .output()
        .unwrap();
    let all = [out.stdout, out.stderr].concat();
    assert!(String::from_utf8_lossy(&all).contains("lib\\x1b]0;owned\\x07"), "{}", String::from_utf8_lossy(&all));
    assert!(
        !all.contains(&0x1b) && !all.contains(&0x07),
        "raw escape bytes printed: {}",
        String::from_utf8_lossy(&all)
    );
}

/// The secure-mode tests' programs, built as root in a directory anyone may enter (0755: some
/// run as nobody): `lib1/libsx.so` and `lib2/libsx.so` (their `sx_which` returns 1 and 2), a
/// preload `lib1/libpre.so`, and `main` (RUNPATH `lib2`), which prints which copy it got and
/// whether the preload came. Returns the directory, the two library directories, main's source
/// and main; `None` (test skipped, loudly in CI) when not root, which set-id and capability files
/// need.
fn secure_fixture(test: &str, name: &str) -> Option<(TempDir, [PathBuf; 2], &'static str, PathBuf)> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "{test}: CI runs as root, which this test needs");
        eprintln!("SKIPPED {test}: needs root to make set-user-ID or capability files");
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(name);
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (lib1, lib2) = (dir.0.join("lib1"), dir.0.join("lib2"));
    for (d, which) in [(&lib1, 1), (&lib2, 2)] {
        std::fs::create_dir(d).unwrap();
        let src = format!("int sx_which(void){{return {which};}}");
        cc(d, &src, "libsx.so", &["-shared", "-fPIC", "-Wl,-soname,libsx.so"]);
    }
    cc(&lib1, "int sx_preloaded = 1;", "libpre.so", &["-shared", "-fPIC"]);
    let main = "#include <stdio.h>\n#include <dlfcn.h>\nint sx_which(void);\n\
                int main(void){printf(\"%d %d\\n\", sx_which(), dlsym(RTLD_DEFAULT, \"sx_preloaded\") != 0);return 0;}";
    let runpath = format!("-Wl,-rpath,{},--enable-new-dtags", lib2.display());
    let plain = cc(&dir.0, main, "main", &["-L", lib2.to_str().unwrap(), "-lsx", &runpath]);
    Some((dir, [lib1, lib2], main, plain))
}

/// A set-user-ID command runs in the loader's secure mode: `LD_LIBRARY_PATH` and an `LD_PRELOAD`
/// path are ignored. The prediction follows, and both are checked against the real loader: the
/// command says which copy of its library it got and whether the preload came.
#[test]
fn a_set_user_id_command_is_predicted_in_secure_mode() {
    let test = "a_set_user_id_command_is_predicted_in_secure_mode";
    if !tool_available(test, "cc", &["--version"]) {
        return;
    }
    let Some((dir, [lib1, lib2], main, plain)) = secure_fixture(test, "needed-secure") else { return };
    use std::os::unix::fs::PermissionsExt;
    let setuid = dir.0.join("main-setuid");
    std::fs::copy(&plain, &setuid).unwrap();
    let path = std::ffi::CString::new(setuid.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path; 65534 is nobody, not us, so the command changes ids.
    assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let me = needed::Runner::current();
    assert!(!needed::secure_exec(&plain, &me) && needed::secure_exec(&setuid, &me));

    let preload = lib1.join("libpre.so").display().to_string();
    let mut search = search_in(&dir.0);
    search.ld_library_path = Some(lib1.display().to_string());
    search.ld_preload = Some(preload.clone());
    for (exe, says, lib, preloaded) in [(&plain, "1 1", &lib1, true), (&setuid, "2 0", &lib2, false)] {
        let out = Command::new(exe).env("LD_LIBRARY_PATH", &lib1).env("LD_PRELOAD", &preload).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), says, "the loader, {}", exe.display());
        let found = needed::libraries(exe, &search);
        assert!(found.contains(&lib.join("libsx.so")), "{}: {found:?}", exe.display());
        assert_eq!(found.contains(&PathBuf::from(&preload)), preloaded, "{}: {found:?}", exe.display());
    }
    // `$ORIGIN` in secure mode: dropped unless it lands in a trusted directory, so the set-user-ID
    // copy does not start at all, and nothing is predicted for it.
    let origin = cc(&dir.0, main, "main-origin", &["-L", lib2.to_str().unwrap(), "-lsx", "-Wl,-rpath,$ORIGIN/lib2"]);
    let origin_setuid = dir.0.join("main-origin-setuid");
    std::fs::copy(&origin, &origin_setuid).unwrap();
    let path = std::ffi::CString::new(origin_setuid.display().to_string()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
    std::fs::set_permissions(&origin_setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let search = search_in(&dir.0);
    for (exe, starts) in [(&origin, true), (&origin_setuid, false)] {
        let out = Command::new(exe).output().unwrap();
        assert_eq!(out.status.success(), starts, "the loader, {}: {out:?}", exe.display());
        let found = needed::libraries(exe, &search);
        assert_eq!(found.contains(&lib2.join("libsx.so")), starts, "{}: {found:?}", exe.display());
    }
}

/// The subdirectories CMD's loader searches under each directory, and `$PLATFORM`/`$LIB` in a
/// `DT_RUNPATH`, predicted as the loader itself then loads: a build in each legacy hwcap
/// subdirectory the loader names (glibc 2.36 here: `tls/`, `x86_64/`, …; none from 2.37) is taken
/// over the plain one; one in a subdirectory it does not name is not. The program says which copy
/// it got.
#[test]
fn legacy_hwcap_subdirectories_and_expansions_are_predicted_as_the_loader_loads() {
    let test = "legacy_hwcap_subdirectories_and_expansions_are_predicted_as_the_loader_loads";
    if !tool_available(test, "cc", &["--version"]) {
        return;
    }
    let dir = TempDir::new("needed-legacy");
    let main = "#include <stdio.h>\nint hw_which(void);\nint main(void){printf(\"%d\\n\", hw_which());return 0;}";
    let lib = |d: &Path, which: u32| {
        std::fs::create_dir_all(d).unwrap();
        let src = format!("int hw_which(void){{return {which};}}");
        cc(d, &src, "libhw.so", &["-shared", "-fPIC", "-Wl,-soname,libhw.so"])
    };
    let base = dir.0.join("base");
    lib(&base, 0);
    let exe = cc(&dir.0, main, "main", &["-L", base.to_str().unwrap(), "-lhw"]);
    let interp = needed::dynamic_info(&exe).and_then(|i| i.interpreter).unwrap();
    let layout = LoaderLayout::of(Path::new(&interp), &exe);
    assert!(layout.asked, "the loader answers: {layout:?}");
    let loads = |exe: &Path, path: Option<&Path>| {
        let mut cmd = Command::new(exe);
        if let Some(p) = path {
            cmd.env("LD_LIBRARY_PATH", p);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}: {out:?}", exe.display());
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let subs: Vec<String> =
        layout.legacy.iter().cloned().chain(["notahwcap".into(), "haswell/notahwcap".into()]).collect();
    for (i, sub) in subs.iter().enumerate() {
        let d = dir.0.join(format!("d{i}"));
        lib(&d, 0);
        let built = lib(&d.join(sub), 1);
        let searched = layout.legacy.contains(sub);
        assert_eq!(loads(&exe, Some(&d)), if searched { "1" } else { "0" }, "the loader, {sub}");
        let mut search = search_in(&dir.0);
        search.ld_library_path = Some(d.display().to_string());
        let found = needed::libraries(&exe, &search);
        assert_eq!(found.contains(&built), searched, "{sub}: {found:?}");
        assert!(found.iter().any(|p| p.ends_with("libhw.so")), "{sub}: {found:?}");
    }
    // `$PLATFORM` and `$LIB` in a DT_RUNPATH, as this loader expands them.
    for (token, expanded) in [("$PLATFORM", &layout.platform), ("$LIB", &layout.lib)] {
        let d = dir.0.join(format!("t{}", token.len()));
        let built = lib(&d.join(expanded), 1);
        let runpath = format!("-Wl,-rpath,{}/{token},--enable-new-dtags", d.display());
        let exe = cc(&dir.0, main, &format!("main{}", token.len()), &["-L", base.to_str().unwrap(), "-lhw", &runpath]);
        assert_eq!(loads(&exe, None), "1", "the loader, {token}");
        let found = needed::libraries(&exe, &search_in(&dir.0));
        assert!(found.contains(&built), "{token} => {expanded}: {found:?}");
    }
}

/// File capabilities put a command started by a non-root user in the loader's secure mode (the
/// kernel's `AT_SECURE`), but not one started by root, who gains nothing. Predicted both ways, and
/// checked against the real loader run as nobody and as root: `LD_LIBRARY_PATH` and an
/// `LD_PRELOAD` path are ignored exactly when secure.
#[test]
fn file_capabilities_are_secure_mode_for_a_non_root_runner() {
    let test = "file_capabilities_are_secure_mode_for_a_non_root_runner";
    if !tool_available(test, "cc", &["--version"]) {
        return;
    }
    let Some((dir, [lib1, lib2], _, plain)) = secure_fixture(test, "needed-fcaps") else { return };
    use std::os::unix::process::CommandExt;
    let caps = dir.0.join("main-caps");
    std::fs::copy(&plain, &caps).unwrap();
    // struct vfs_cap_data, revision 2: effective, CAP_NET_BIND_SERVICE (10) permitted.
    let mut value = Vec::new();
    for w in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        value.extend_from_slice(&w.to_le_bytes());
    }
    let path = std::ffi::CString::new(caps.display().to_string()).unwrap();
    // SAFETY: a NUL-terminated path and name, and a value of the length passed.
    let rc = unsafe { libc::setxattr(path.as_ptr(), c"security.capability".as_ptr(), value.as_ptr().cast(), 20, 0) };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());

    let preload = lib1.join("libpre.so").display().to_string();
    let root = needed::Runner::current();
    let nobody = needed::Runner { uid: 65534, gid: 65534, ..root };
    for (exe, runner, says, lib) in
        [(&plain, nobody, "1 1", &lib1), (&caps, root, "1 1", &lib1), (&caps, nobody, "2 0", &lib2)]
    {
        let out = Command::new(exe)
            .env("LD_LIBRARY_PATH", &lib1)
            .env("LD_PRELOAD", &preload)
            .uid(runner.uid)
            .gid(runner.gid)
            .output()
            .unwrap();
        let what = format!("{} run by uid {}", exe.display(), runner.uid);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), says, "the loader, {what}: {out:?}");
        assert_eq!(needed::secure_exec(exe, &runner), says == "2 0", "{what}");
        let mut search = search_in(&dir.0);
        search.ld_library_path = Some(lib1.display().to_string());
        search.ld_preload = Some(preload.clone());
        search.runner = runner;
        let found = needed::libraries(exe, &search);
        assert!(found.contains(&lib.join("libsx.so")), "{what}: {found:?}");
        assert_eq!(found.contains(&PathBuf::from(&preload)), says == "1 1", "{what}: {found:?}");
    }
}
