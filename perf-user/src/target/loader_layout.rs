//! How a command's dynamic loader lays out its search under each directory, asked of that loader
//! itself: its `glibc-hwcaps` subdirectories, its legacy hwcap subdirectories (`tls/`, `x86_64/`,
//! `haswell/`, and their combinations, in its order; glibc before 2.37), and what `$LIB` and
//! `$PLATFORM` expand to. These differ by glibc version, distribution and CPU (an Intel host's
//! glibc 2.36 searches `haswell/`, an AMD one's `x86_64/`), so guessing them is wrong somewhere.
//!
//! The loader prints its expanded search path when told to (`LD_DEBUG=libs`). It is run in list
//! mode (`ld.so --list CMD`, what `ldd` does: it maps the command's libraries and runs none of
//! their code), with `LD_LIBRARY_PATH` holding three marker directories that do not exist and
//! `LD_PRELOAD` a name found nowhere, so the first thing it looks up is searched there and its
//! search path printed. The loader is the one the kernel would start for CMD anyway, as the same
//! user, a moment later.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// The three marker directories: the subdirectories of the first are the layout; the last entry
/// of the others is `$LIB` and `$PLATFORM` expanded.
const MARK: &str = "/nonexistent/perf-user-loader-layout";
const MARK_LIB: &str = "/nonexistent/perf-user-loader-lib";
const MARK_PLATFORM: &str = "/nonexistent/perf-user-loader-platform";
/// A name no directory has: the loader searches for it first (it is a preload).
const NOWHERE: &str = "libperf-user-loader-layout-probe.so";
/// The loader's answer comes within its first lines; a loader that says nothing in this long is
/// not waited for (the guess is used).
const TIMEOUT: Duration = Duration::from_secs(3);
/// No more than this much of its output is read.
const MAX_OUTPUT: u64 = 1 << 20;

/// The loader's search layout under one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderLayout {
    /// `glibc-hwcaps` subdirectories it searches, best first.
    pub hwcaps: Vec<String>,
    /// Legacy hwcap subdirectories it searches after those, in its order (none from glibc 2.37).
    pub legacy: Vec<String>,
    /// What `$LIB` expands to (`lib/x86_64-linux-gnu` on Debian, `lib64` on others).
    pub lib: String,
    /// What `$PLATFORM` expands to (`x86_64`, or `haswell` on an Intel host's older glibc).
    pub platform: String,
    /// Learned from the loader (`true`) or guessed from this machine (`false`).
    pub asked: bool,
}

impl LoaderLayout {
    /// `interp`'s layout, asked of it with `exe` (a dynamically linked program it loads); this
    /// machine's guess when it cannot be asked or says nothing readable.
    pub fn of(interp: &Path, exe: &Path) -> LoaderLayout {
        ask(interp, exe).unwrap_or_else(LoaderLayout::guess)
    }

    /// Without asking: the CPU's x86-64 levels, no legacy subdirectories, multiarch `$LIB`.
    pub fn guess() -> LoaderLayout {
        let lib = if Path::new("/lib/x86_64-linux-gnu").is_dir() { "lib/x86_64-linux-gnu" } else { "lib64" };
        LoaderLayout {
            hwcaps: supported_hwcaps().into_iter().map(str::to_owned).collect(),
            legacy: Vec::new(),
            lib: lib.to_owned(),
            platform: std::env::consts::ARCH.to_owned(),
            asked: false,
        }
    }
}

fn ask(interp: &Path, exe: &Path) -> Option<LoaderLayout> {
    // A relative interpreter would be looked up on PATH here, not where the kernel finds it; and
    // only a dynamic loader (`ld-linux-x86-64.so.2`, `ld64.so.2`, …) is asked anything.
    let is_loader = interp.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"ld"));
    if !interp.is_absolute() || !is_loader {
        return None;
    }
    let mut child = Command::new(interp)
        .arg("--list")
        .arg(exe)
        .env_clear()
        .env("LD_DEBUG", "libs")
        .env("LD_PRELOAD", NOWHERE)
        .env("LD_LIBRARY_PATH", format!("{MARK}:{MARK_LIB}/$LIB:{MARK_PLATFORM}/$PLATFORM"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let stderr = child.stderr.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(stderr.take(MAX_OUTPUT))
            .split(b'\n')
            .map_while(Result::ok)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .find(|l| l.contains("search path=") && l.contains(MARK));
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(TIMEOUT).ok().flatten();
    // Its answer is in: the rest of the listing is not needed.
    let _ = child.kill();
    let _ = child.wait();
    parse(&line?)
}

/// The layout from the loader's `search path=A:B:…\t\t(LD_LIBRARY_PATH)` line.
fn parse(line: &str) -> Option<LoaderLayout> {
    let list = line.split("search path=").nth(1)?.split_whitespace().next()?;
    let entries: Vec<&str> = list.split(':').collect();
    let under = |mark: &str| -> Vec<&str> {
        let prefix = format!("{mark}/");
        entries.iter().filter_map(|e| e.strip_prefix(prefix.as_str())).collect()
    };
    let (mut hwcaps, mut legacy) = (Vec::new(), Vec::new());
    for sub in under(MARK) {
        let (to, name) = match sub.strip_prefix("glibc-hwcaps/") {
            Some(h) => (&mut hwcaps, h),
            None => (&mut legacy, sub),
        };
        if !name.is_empty() && !to.iter().any(|s: &String| s == name) && name.bytes().all(|b| b.is_ascii_graphic()) {
            to.push(name.to_owned());
        }
    }
    // Each marker's entries are its subdirectories, then itself: the last one is the expansion.
    let expanded = |mark: &str| under(mark).last().map(|s| (*s).to_owned()).filter(|s| !s.is_empty());
    Some(LoaderLayout { hwcaps, legacy, lib: expanded(MARK_LIB)?, platform: expanded(MARK_PLATFORM)?, asked: true })
}

/// The x86-64 micro-architecture levels this CPU runs, best first (glibc-hwcaps subdirectories).
fn supported_hwcaps() -> Vec<&'static str> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let v2 =
            has!("sse3") && has!("ssse3") && has!("sse4.1") && has!("sse4.2") && has!("popcnt") && has!("cmpxchg16b");
        let v3 = v2
            && has!("avx")
            && has!("avx2")
            && has!("bmi1")
            && has!("bmi2")
            && has!("f16c")
            && has!("fma")
            && has!("lzcnt")
            && has!("movbe")
            && has!("xsave");
        let v4 = v3 && has!("avx512f") && has!("avx512bw") && has!("avx512cd") && has!("avx512dq") && has!("avx512vl");
        for (ok, name) in [(v4, "x86-64-v4"), (v3, "x86-64-v3"), (v2, "x86-64-v2")] {
            if ok {
                out.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc 2.36's line on an AMD host, its `$LIB` and `$PLATFORM` markers included.
    #[test]
    fn the_loaders_search_line_gives_its_layout() {
        let m = MARK;
        let (l, p) = (format!("{MARK_LIB}/lib/x86_64-linux-gnu"), format!("{MARK_PLATFORM}/x86_64"));
        let line = format!(
            "     26241:\t search path={m}/glibc-hwcaps/x86-64-v3:{m}/glibc-hwcaps/x86-64-v2:{m}/tls/x86_64/x86_64:\
             {m}/tls/x86_64:{m}/tls/x86_64:{m}/tls:{m}/x86_64/x86_64:{m}/x86_64:{m}/x86_64:{m}:\
             {l}/glibc-hwcaps/x86-64-v3:{l}/tls:{l}:{p}/tls:{p}\t\t(LD_LIBRARY_PATH)"
        );
        let layout = parse(&line).unwrap();
        assert_eq!(layout.hwcaps, ["x86-64-v3", "x86-64-v2"]);
        assert_eq!(layout.legacy, ["tls/x86_64/x86_64", "tls/x86_64", "tls", "x86_64/x86_64", "x86_64"]);
        assert_eq!((layout.lib.as_str(), layout.platform.as_str()), ("lib/x86_64-linux-gnu", "x86_64"));
        assert!(layout.asked);
    }

    /// glibc 2.37 and later: no legacy subdirectories. A line without the markers is no answer.
    #[test]
    fn a_loader_without_legacy_subdirectories_or_without_the_markers() {
        let m = MARK;
        let line = format!(
            "search path={m}/glibc-hwcaps/x86-64-v2:{m}:{MARK_LIB}/lib64:{MARK_PLATFORM}/haswell\t\t(LD_LIBRARY_PATH)"
        );
        let layout = parse(&line).unwrap();
        assert!(layout.legacy.is_empty());
        assert_eq!((layout.lib.as_str(), layout.platform.as_str()), ("lib64", "haswell"));
        assert_eq!(parse("search path=/usr/lib:/lib\t\t(system search path)"), None);
    }

    /// This machine's own loader answers, and its answer is what it does: `$LIB` is a directory.
    #[test]
    fn this_machines_loader_is_asked() {
        let me = std::env::current_exe().unwrap();
        let interp = crate::target::needed::dynamic_info(&me).and_then(|i| i.interpreter).unwrap();
        let layout = LoaderLayout::of(Path::new(&interp), &me);
        assert!(layout.asked, "{layout:?}");
        assert!(Path::new("/").join(&layout.lib).is_dir(), "{layout:?}");
    }
}
