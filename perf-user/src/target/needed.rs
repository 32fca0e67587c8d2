//! The shared objects a command will map when it starts, found before it runs the way glibc's
//! dynamic loader finds them: its interpreter, `LD_PRELOAD` and `/etc/ld.so.preload`, then its
//! `DT_NEEDED` libraries breadth first, each searched in the requester's `DT_RPATH` chain (when
//! it has no `DT_RUNPATH`), `LD_LIBRARY_PATH`, its `DT_RUNPATH`, `/etc/ld.so.cache`, the default
//! directories (`DF_1_NODEFLIB` skips the last two). Under each directory its `glibc-hwcaps`
//! subdirectories come first, then the legacy hwcap ones (glibc before 2.37), as CMD's own loader
//! says it lays them out, with what it expands `$LIB` and `$PLATFORM` to (`loader_layout`).
//!
//! `perf-user run` puts the probes of `OBJECT:FUNC` patterns on these files before CMD execs: a
//! uprobe belongs to an inode, and the kernel inserts it when the loader maps the file.
//!
//! A command that runs in the loader's secure mode (`AT_SECURE`: set-user-ID or set-group-ID to
//! other ids than ours, or file capabilities that raise a non-root user's) is predicted as such:
//! `LD_LIBRARY_PATH` ignored, `LD_PRELOAD` names with a slash ignored and the others taken only
//! from the default directories and only when set-user-ID themselves, `DT_RPATH`/`DT_RUNPATH`
//! entries with `$ORIGIN` kept only when they expand into a default directory.
//!
//! A library missed here (a loader that cannot be asked, a cache entry of a kind not read) is
//! still picked up by the periodic refresh, later.

use std::{
    ffi::OsStr,
    io::Read,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use object::{
    Endianness,
    elf::{FileHeader32, FileHeader64},
    read::elf::{Dyn, FileHeader, ProgramHeader},
};

use super::{ld_cache::LdCache, loader_layout::LoaderLayout};

/// Files larger than this are no library we read.
const MAX_FILE: u64 = 256 << 20;
/// Longer `DT_NEEDED`/`DT_RPATH`/`DT_RUNPATH` strings are skipped (a search list of 10,000
/// directories fits): a hostile string table costs a bounded scan per entry.
const MAX_STRING: usize = 256 << 10;
/// At most this many needed names are read per object, and this many objects predicted: more is
/// no program a loader runs in practice, and the periodic refresh still finds what is left out.
const MAX_NEEDED: usize = 1024;
const MAX_OBJECTS: usize = 1024;
/// Look-ups (a `stat` of a search directory, an open of a candidate file) the whole prediction
/// may make: a search list of 10,000 directories times a thousand names must end in bounded time
/// (a look-up of a missing path costs microseconds), not stall `run` before CMD starts.
const MAX_PROBES: u32 = 200_000;

/// What the loader reads of one ELF object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicInfo {
    pub class64: bool,
    pub machine: u16,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub rpath: Option<String>,
    pub runpath: Option<String>,
    /// `DF_1_NODEFLIB`: the cache and default directories are not searched for its needs.
    pub nodeflib: bool,
}

/// Reads the program headers and dynamic section of the ELF file at `path`.
pub fn dynamic_info(path: &Path) -> Option<DynamicInfo> {
    parse_dynamic(&read_limited(path, MAX_FILE)?)
}

/// The first `max` bytes of the regular file at `path`; `None` for anything else (a FIFO, a
/// device, a directory) or an error.
fn read_limited(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO planted where a library is searched must not block the open.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut data = Vec::new();
    file.take(max).read_to_end(&mut data).ok()?;
    Some(data)
}

/// What the loader reads of the ELF image `data`; `None` when it is no ELF file this reader
/// knows or has no dynamic string table. Malformed entries (offsets out of range, strings
/// without an end or longer than [`MAX_STRING`]) are skipped.
pub fn parse_dynamic(data: &[u8]) -> Option<DynamicInfo> {
    match data.get(4) {
        Some(&object::elf::ELFCLASS64) => parse::<FileHeader64<Endianness>>(data),
        Some(&object::elf::ELFCLASS32) => parse::<FileHeader32<Endianness>>(data),
        _ => None,
    }
}

fn parse<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Option<DynamicInfo> {
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let phdrs = header.program_headers(endian, data).ok()?;
    let mut info =
        DynamicInfo { class64: header.is_class_64(), machine: header.e_machine(endian), ..Default::default() };
    let mut dynamic: &[Elf::Dyn] = &[];
    for ph in phdrs {
        if let Ok(Some(interp)) = ph.interpreter(endian, data) {
            info.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
        if let Ok(Some(d)) = ph.dynamic(endian, data) {
            dynamic = d;
        }
    }
    let tag = |d: &Elf::Dyn| d.d_tag(endian).into();
    let val = |d: &Elf::Dyn| d.d_val(endian).into();
    // DT_STRTAB is an address: the loadable segment holding it gives its place in the file.
    let strtab_addr = dynamic.iter().find(|d| tag(d) == u64::from(object::elf::DT_STRTAB)).map(val)?;
    let strtab_off = phdrs.iter().find_map(|ph| {
        let (vaddr, filesz): (u64, u64) = (ph.p_vaddr(endian).into(), ph.p_filesz(endian).into());
        let in_it = ph.p_type(endian) == object::elf::PT_LOAD && (vaddr..vaddr + filesz).contains(&strtab_addr);
        in_it.then(|| strtab_addr - vaddr + ph.p_offset(endian).into())
    })?;
    let string = |off: u64| {
        let s = data.get(usize::try_from(strtab_off.checked_add(off)?).ok()?..)?;
        let s = &s[..s.len().min(MAX_STRING + 1)];
        let end = s.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    };
    for d in dynamic {
        let (t, v) = (tag(d), val(d));
        match u32::try_from(t).unwrap_or(u32::MAX) {
            object::elf::DT_NULL => break,
            object::elf::DT_NEEDED if info.needed.len() < MAX_NEEDED => info.needed.extend(string(v)),
            object::elf::DT_SONAME => info.soname = string(v),
            object::elf::DT_RPATH => info.rpath = string(v),
            object::elf::DT_RUNPATH => info.runpath = string(v),
            object::elf::DT_FLAGS_1 => info.nodeflib = v & u64::from(object::elf::DF_1_NODEFLIB) != 0,
            _ => {}
        }
    }
    Some(info)
}

/// What the loader's search depends on besides the files: the command's environment and
/// working directory, the cache and this CPU.
pub struct Search {
    pub ld_library_path: Option<String>,
    pub ld_preload: Option<String>,
    /// `/etc/ld.so.preload`'s text.
    pub preload_file: Option<String>,
    pub cache: LdCache,
    /// The loader's subdirectories and expansions; `None`: ask the command's own loader.
    pub layout: Option<LoaderLayout>,
    /// Who starts the command (for its secure mode).
    pub runner: Runner,
    pub cwd: PathBuf,
}

impl Search {
    /// The search a command started now by this process would get (it inherits our environment).
    pub fn for_child() -> Search {
        let var = |k: &str| std::env::var_os(k).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Search {
            ld_library_path: var("LD_LIBRARY_PATH"),
            ld_preload: var("LD_PRELOAD"),
            preload_file: std::fs::read_to_string("/etc/ld.so.preload").ok(),
            cache: read_limited(Path::new("/etc/ld.so.cache"), super::ld_cache::MAX_CACHE)
                .map(|d| LdCache::parse(&d))
                .unwrap_or_default(),
            layout: None,
            runner: Runner::current(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }
}

/// One object the loader maps: the path it opens it by, its names, who asked for it.
struct Loaded {
    path: PathBuf,
    names: Vec<String>,
    info: DynamicInfo,
    loader: Option<usize>,
}

/// One prediction's search: the loader's inputs, the executable's class and machine, and the
/// files tried so far (bounded by [`MAX_PROBES`]).
struct Finder<'a> {
    search: &'a Search,
    want: (bool, u16),
    /// The command runs in the loader's secure mode ([`secure_exec`]).
    secure: bool,
    layout: LoaderLayout,
    probes: std::cell::Cell<u32>,
}

/// The ids and capabilities of the process that starts the command, as its secure mode depends
/// on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runner {
    pub uid: u32,
    pub gid: u32,
    /// Capability sets (`CapInh`, `CapBnd` of `/proc/PID/status`).
    pub cap_inheritable: u64,
    pub cap_bounding: u64,
}

impl Runner {
    /// This process (a command started now inherits its ids and sets).
    pub fn current() -> Runner {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let set = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0)
        };
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Runner { uid, gid, cap_inheritable: set("CapInh:"), cap_bounding: set("CapBnd:") }
    }
}

/// Whether `exe`, started by `runner`, gets the loader's secure mode (the kernel passes
/// `AT_SECURE`): it is set-user-ID to another user or set-group-ID to another group than the
/// runner's, or the runner is not root and the file's capabilities give it some (Linux's
/// `cap_bprm_creds_from_file`: the effective bit, or a non-empty new permitted set).
pub fn secure_exec(exe: &Path, runner: &Runner) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(exe) else { return false };
    let setid = (m.mode() & libc::S_ISUID != 0 && m.uid() != runner.uid)
        || (m.mode() & libc::S_ISGID != 0 && m.gid() != runner.gid);
    setid || (runner.uid != 0 && file_caps(exe).is_some_and(|c| c.raise(runner)))
}

/// A file's capabilities (`security.capability`, `struct vfs_cap_data`).
struct FileCaps {
    effective: bool,
    permitted: u64,
    inheritable: u64,
}

impl FileCaps {
    /// Whether exec gives `runner` any capability: the new permitted set is the file's permitted
    /// within the bounding set plus its inheritable within the runner's.
    fn raise(&self, runner: &Runner) -> bool {
        self.effective || (self.permitted & runner.cap_bounding) | (self.inheritable & runner.cap_inheritable) != 0
    }
}

fn file_caps(exe: &Path) -> Option<FileCaps> {
    const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
    const VFS_CAP_FLAGS_EFFECTIVE: u32 = 1;
    let path = std::ffi::CString::new(exe.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 24];
    // SAFETY: a NUL-terminated path and name, and a buffer of the length passed.
    let n =
        unsafe { libc::getxattr(path.as_ptr(), c"security.capability".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let data = buf.get(..usize::try_from(n).ok()?)?;
    let word = |i: usize| data.get(i * 4..i * 4 + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let magic = word(0)?;
    let (permitted, inheritable) = match magic & VFS_CAP_REVISION_MASK {
        0x0100_0000 => (u64::from(word(1)?), u64::from(word(2)?)),
        0x0200_0000 => {
            (u64::from(word(1)?) | u64::from(word(3)?) << 32, u64::from(word(2)?) | u64::from(word(4)?) << 32)
        }
        // Version 3 names the user namespace's root; from the initial namespace only root 0's apply.
        0x0300_0000 if word(5)? == 0 => {
            (u64::from(word(1)?) | u64::from(word(3)?) << 32, u64::from(word(2)?) | u64::from(word(4)?) << 32)
        }
        _ => return None,
    };
    Some(FileCaps { effective: magic & VFS_CAP_FLAGS_EFFECTIVE != 0, permitted, inheritable })
}

/// The objects `exe` maps at start, as paths the loader opens (interpreter, preloads, needed
/// libraries breadth first), without `exe` itself. Names not found are left out, and so is what
/// lies beyond the bounds of a hostile file ([`MAX_OBJECTS`], [`MAX_PROBES`]): the periodic
/// refresh picks such libraries up once they are mapped.
pub fn libraries(exe: &Path, search: &Search) -> Vec<PathBuf> {
    let Some(info) = dynamic_info(exe) else { return Vec::new() };
    let Some(interp) = info.interpreter.clone() else { return Vec::new() };
    let secure = secure_exec(exe, &search.runner);
    let layout = search.layout.clone().unwrap_or_else(|| LoaderLayout::of(Path::new(&interp), exe));
    let finder = Finder { search, want: (info.class64, info.machine), secure, layout, probes: std::cell::Cell::new(0) };
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    let main_names = vec![exe.display().to_string()];
    let mut objs = vec![Loaded { path: exe, names: main_names, info, loader: None }];
    // The interpreter is mapped by the kernel; a NEEDED naming its soname is it.
    if let Some(rtld) = dynamic_info(Path::new(&interp)) {
        let mut names = vec![interp.clone()];
        names.extend(rtld.soname.clone());
        objs.push(Loaded { path: PathBuf::from(&interp), names, info: rtld, loader: None });
    }
    let words = |s: &Option<String>| {
        let list = s.as_deref().unwrap_or_default();
        list.split([' ', ':', '\t', '\n']).filter(|w| !w.is_empty()).map(str::to_owned).collect::<Vec<_>>()
    };
    for name in words(&search.ld_preload) {
        if secure {
            finder.add_secure_preload(&mut objs, &name);
        } else {
            finder.add(&mut objs, &name, 0);
        }
    }
    for name in words(&search.preload_file) {
        finder.add(&mut objs, &name, 0);
    }
    let mut next = 0;
    while next < objs.len() {
        for name in objs[next].info.needed.clone() {
            finder.add(&mut objs, &name, next);
        }
        next += 1;
    }
    objs.into_iter().skip(1).map(|o| o.path).collect()
}

impl Finder<'_> {
    /// Loads `name` as requested by `objs[by]` unless an object of that name is there already
    /// (so a cyclic `DT_NEEDED` chain ends) or the bounds are reached.
    fn add(&self, objs: &mut Vec<Loaded>, name: &str, by: usize) {
        self.add_found(objs, name, by, |objs| self.find(objs, name, by));
    }

    /// An `LD_PRELOAD` name in secure mode: never one with a slash; else only from the default
    /// directories, and only a set-user-ID file.
    fn add_secure_preload(&self, objs: &mut Vec<Loaded>, name: &str) {
        use std::os::unix::fs::PermissionsExt;
        if name.contains('/') {
            return;
        }
        self.add_found(objs, name, 0, |_| {
            let found = default_dirs(self.want).iter().find_map(|d| self.in_dir(Path::new(d), name))?;
            std::fs::metadata(&found.0).is_ok_and(|m| m.permissions().mode() & libc::S_ISUID != 0).then_some(found)
        });
    }

    /// `add`, with `find` saying where the loader finds `name`.
    fn add_found(
        &self,
        objs: &mut Vec<Loaded>,
        name: &str,
        by: usize,
        find: impl FnOnce(&[Loaded]) -> Option<(PathBuf, DynamicInfo)>,
    ) {
        if objs.len() >= MAX_OBJECTS || objs.iter().any(|o| o.names.iter().any(|n| n == name)) {
            return;
        }
        let Some((path, info)) = find(objs) else { return };
        if let Some(o) = objs.iter_mut().find(|o| same_file(&o.path, &path)) {
            o.names.push(name.to_owned());
            return;
        }
        let mut names = vec![name.to_owned(), path.display().to_string()];
        names.extend(info.soname.clone());
        objs.push(Loaded { path, names, info, loader: Some(by) });
    }

    /// Where the loader finds `name` for `objs[by]`: a path as is, else the search order.
    fn find(&self, objs: &[Loaded], name: &str, by: usize) -> Option<(PathBuf, DynamicInfo)> {
        let search = self.search;
        if name.contains('/') {
            return self.fits(&search.cwd.join(name));
        }
        let requester = &objs[by];
        let in_dirs = |list: &str, origin: &Path, allow_empty: bool| {
            list.split([':', ';'])
                .filter(|d| allow_empty || !d.is_empty())
                .filter_map(|d| {
                    let dir = expand(d, origin, &search.cwd, &self.layout);
                    // Secure mode: `$ORIGIN` only where it lands in a trusted (default) directory.
                    let trusted = || default_dirs(self.want).iter().any(|t| dir == Path::new(t));
                    (!self.secure || !d.contains("ORIGIN") || trusted()).then_some(dir)
                })
                .find_map(|dir| self.in_dir(&dir, name))
        };
        if requester.info.runpath.is_none() {
            let mut at = Some(by);
            let mut saw_main = false;
            while let Some(i) = at {
                if let Some(rpath) = &objs[i].info.rpath
                    && let Some(found) = in_dirs(rpath, &origin(&objs[i].path), false)
                {
                    return Some(found);
                }
                saw_main |= i == 0;
                at = objs[i].loader;
            }
            if !saw_main
                && let Some(rpath) = &objs[0].info.rpath
                && let Some(found) = in_dirs(rpath, &origin(&objs[0].path), false)
            {
                return Some(found);
            }
        }
        let ld_library_path = search.ld_library_path.as_deref().filter(|_| !self.secure);
        if let Some(found) = ld_library_path.and_then(|l| in_dirs(l, &origin(&objs[0].path), true)) {
            return Some(found);
        }
        if let Some(found) = requester.info.runpath.as_deref().and_then(|r| in_dirs(r, &origin(&requester.path), false))
        {
            return Some(found);
        }
        if requester.info.nodeflib {
            return None;
        }
        let hwcaps: Vec<&str> = self.layout.hwcaps.iter().map(String::as_str).collect();
        if let Some(found) =
            search.cache.lookup(name, &hwcaps, &self.layout.legacy).into_iter().find_map(|p| self.fits(Path::new(p)))
        {
            return Some(found);
        }
        default_dirs(self.want).iter().find_map(|d| self.in_dir(Path::new(d), name))
    }

    /// `name` in `dir`: its glibc-hwcaps builds first, then those in legacy hwcap subdirectories,
    /// then the plain one. A directory that is not there costs one `stat`.
    fn in_dir(&self, dir: &Path, name: &str) -> Option<(PathBuf, DynamicInfo)> {
        if !self.spend() || !dir.is_dir() {
            return None;
        }
        let layout = &self.layout;
        let hwcaps = layout.hwcaps.iter().map(|h| dir.join("glibc-hwcaps").join(h));
        let legacy = layout.legacy.iter().map(|l| dir.join(l));
        hwcaps.chain(legacy).map(|d| d.join(name)).chain(std::iter::once(dir.join(name))).find_map(|p| self.fits(&p))
    }

    /// The file at `path` when it is an ELF object of the executable's class and machine (the
    /// loader passes over others and searches on).
    fn fits(&self, path: &Path) -> Option<(PathBuf, DynamicInfo)> {
        if !self.spend() {
            return None;
        }
        let info = dynamic_info(path)?;
        ((info.class64, info.machine) == self.want).then(|| (path.to_path_buf(), info))
    }

    /// Counts one file system look-up; false once the prediction has used its budget.
    fn spend(&self) -> bool {
        let n = self.probes.get();
        self.probes.set(n.saturating_add(1));
        n < MAX_PROBES
    }
}

/// `$ORIGIN` (or `${ORIGIN}`) is the requesting object's directory; `$LIB` and `$PLATFORM` as
/// the command's loader expands them; a relative entry is relative to the working directory.
fn expand(dir: &str, origin: &Path, cwd: &Path, layout: &LoaderLayout) -> PathBuf {
    let origin = origin.display().to_string();
    let d = dir
        .replace("${ORIGIN}", &origin)
        .replace("$ORIGIN", &origin)
        .replace("${LIB}", &layout.lib)
        .replace("$LIB", &layout.lib)
        .replace("${PLATFORM}", &layout.platform)
        .replace("$PLATFORM", &layout.platform);
    cwd.join(OsStr::new(&d))
}

/// The directory of an object, as an absolute path (`$ORIGIN`).
fn origin(path: &Path) -> PathBuf {
    path.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => a == b,
    }
}

/// The loader's built-in directories, by architecture (Debian's multiarch ones and the lib64 of
/// others; directories without the object are simply passed over).
fn default_dirs(want: (bool, u16)) -> &'static [&'static str] {
    match want {
        (true, object::elf::EM_X86_64) => {
            &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
        }
        (true, object::elf::EM_AARCH64) => {
            &["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
        }
        _ => &["/lib", "/usr/lib"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the dynamic loader itself says `exe` maps (`ld.so --list`, as ldd asks it),
    /// canonical paths, the vdso left out.
    pub(crate) fn loader_says(exe: &Path, env: &[(&str, &str)]) -> Option<Vec<PathBuf>> {
        let interp = dynamic_info(exe)?.interpreter?;
        let out = std::process::Command::new(&interp).arg("--list").arg(exe).envs(env.iter().copied()).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut paths: Vec<PathBuf> = text
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let path = l.split(" => ").nth(1).unwrap_or(l);
                let path = path.rsplit_once(" (").map_or(path, |(p, _)| p);
                path.starts_with('/').then(|| std::fs::canonicalize(path).unwrap_or_else(|_| path.into()))
            })
            .collect();
        paths.sort();
        Some(paths)
    }

    pub(crate) fn ours(exe: &Path, search: &Search) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> =
            libraries(exe, search).iter().map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())).collect();
        paths.sort();
        paths
    }

    /// Every dynamically linked program here and this test binary: the same objects as the
    /// loader's own `--list`.
    #[test]
    fn system_programs_need_what_the_loader_says() {
        let search = Search::for_child();
        let me = std::env::current_exe().unwrap();
        let mut checked = 0;
        for exe in [me.as_path(), Path::new("/bin/ls"), Path::new("/usr/bin/python3"), Path::new("/usr/bin/perl")] {
            let Some(truth) = loader_says(exe, &[]) else { continue };
            assert_eq!(ours(exe, &search), truth, "{}", exe.display());
            checked += 1;
        }
        assert!(checked >= 2, "only {checked} programs checked");
    }

    #[test]
    fn a_static_or_missing_file_needs_nothing() {
        assert!(libraries(Path::new("/no/such/file"), &Search::for_child()).is_empty());
        assert!(dynamic_info(Path::new("/proc/self/status")).is_none());
    }
}
