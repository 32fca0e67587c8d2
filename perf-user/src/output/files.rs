//! Every file perf-user writes or reads as input goes through here, because it runs as root and
//! the paths may be chosen (or raced) by someone else. The rules are in docs/SECURITY.md.
//!
//! Writing: a regular file or nothing (`-` is stdout). Never through a symlink: temp files are
//! created `O_EXCL|O_NOFOLLOW` next to the target and swapped in with `renameat2`, and whatever
//! the swap took out of the path is checked, and put back if it was not a regular file. An
//! existing file keeps its mode and owner; a temp file never outlives an error.
//! Reading: regular files and pipes only, at most `MAX_INPUT_BYTES`.

use std::{
    ffi::{CString, OsStr},
    fs,
    io::{self, Read, Write},
    os::unix::{
        ffi::OsStrExt,
        fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

/// The path that means standard output.
pub const STDOUT: &str = "-";

/// Largest input file `report`, `diff` and `flamegraph` read: a day of 10 s snapshots of a few
/// hundred functions fits; `/dev/zero` or a runaway pipe stops here instead of eating the RAM.
pub const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Mode of a file perf-user creates: readable by all, writable by nobody else, whatever the umask.
const NEW_FILE_MODE: u32 = 0o644;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("refusing to write {path}: it is {kind}; perf-user writes only regular files (or - for stdout)")]
    NotRegularOut { path: PathBuf, kind: &'static str },
    #[error("cannot read {path}: it is {kind}, not a report file")]
    NotRegularIn { path: PathBuf, kind: &'static str },
    #[error("cannot read {path}: larger than the {} MiB input limit", MAX_INPUT_BYTES >> 20)]
    TooLarge { path: PathBuf },
    // `cause`, not `source`: the message already says it, and `{:#}` would print it twice.
    #[error("cannot {op} {path}: {cause}")]
    Io { op: &'static str, path: PathBuf, cause: io::Error },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl Fn(io::Error) -> FileError + 'a {
    move |cause| FileError::Io { op, path: path.into(), cause }
}

/// True for `-`: write to standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == STDOUT
}

/// What a non-regular file is, for the one-line refusal.
fn kind(ft: fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// What is at `path` now, without following a symlink: nothing (`None`), a regular file (its
/// metadata), or a refusal.
fn existing_target(path: &Path) -> Result<Option<fs::Metadata>, FileError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(Some(m)),
        Ok(m) => Err(FileError::NotRegularOut { path: path.into(), kind: kind(m.file_type()) }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("write", path)(e)),
    }
}

/// The directory a temp file for `path` goes in, and the file name it replaces.
fn split(path: &Path) -> Result<(&Path, &OsStr), FileError> {
    let name = path
        .file_name()
        .ok_or_else(|| io_err("write", path)(io::Error::new(io::ErrorKind::InvalidInput, "not a file name")))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((dir, name))
}

/// A temp file in the target's directory; removed on drop unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    file: fs::File,
    installed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.installed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl TempFile {
    /// Mode `mode` less the umask, `O_CREAT|O_EXCL|O_NOFOLLOW` under a name nobody can predict (pid, counter, clock): a name
    /// planted in advance, symlink or not, is never opened, only skipped.
    fn create(target: &Path, mode: u32) -> Result<TempFile, FileError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let (dir, name) = split(target)?;
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..64 {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let mut tmp_name = name.to_os_string();
            tmp_name.push(format!(
                ".{}.{}{nanos:08x}.tmp",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let path = dir.join(tmp_name);
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(file) => return Ok(TempFile { path, file, installed: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(io_err("write", target)(e)),
            }
        }
        Err(io_err("write", target)(last))
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `renameat2(2)` relative to the working directory.
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (from, to) = (cstring(from)?, cstring(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings that live across the call.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), flags) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The file system cannot do `renameat2` flags (some network and FUSE file systems).
fn no_rename_flags(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP))
}

/// Puts the temp file at `target`, replacing a regular file only. The check before is for a clear
/// message; the atomic exchange after it is what makes a symlink or device planted in between
/// harmless: whatever came out of `target` is inspected at the temp name and swapped back unless
/// it is a regular file.
fn install(tmp: &mut TempFile, target: &Path) -> Result<(), FileError> {
    for _ in 0..4 {
        let existed = existing_target(target)?.is_some();
        let flags = if existed { libc::RENAME_EXCHANGE } else { libc::RENAME_NOREPLACE };
        match renameat2(&tmp.path, target, flags) {
            Ok(()) if !existed => {
                tmp.installed = true;
                return Ok(());
            }
            Ok(()) => {
                let out = fs::symlink_metadata(&tmp.path).map_err(io_err("write", target))?;
                if out.file_type().is_file() {
                    tmp.installed = true;
                    // The old file, now at the temp name; a failure leaves a stray file, not a wrong one.
                    return fs::remove_file(&tmp.path).map_err(io_err("write", target));
                }
                // Raced: put back what was there, then our file is at the temp name again.
                renameat2(&tmp.path, target, libc::RENAME_EXCHANGE).map_err(io_err("write", target))?;
                return Err(FileError::NotRegularOut { path: target.into(), kind: kind(out.file_type()) });
            }
            // Appeared or vanished since the check: look again.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOENT)) => continue,
            Err(e) if no_rename_flags(&e) => {
                // No atomic exchange here: checked just before, rename(2) replaces a name and never
                // writes through it.
                existing_target(target)?;
                fs::rename(&tmp.path, target).map_err(io_err("write", target))?;
                tmp.installed = true;
                return Ok(());
            }
            Err(e) => return Err(io_err("write", target)(e)),
        }
    }
    Err(io_err("write", target)(io::Error::other("the path kept changing while it was replaced")))
}

/// Writes `bytes` to `path` (stdout for `-`) all or nothing: a reader never sees half a file, a
/// crash or a full disk never leaves one, and anything but a regular file is refused.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    if is_stdout(path) {
        let mut out = io::stdout().lock();
        return match out.write_all(bytes).and_then(|()| out.flush()) {
            // `| head`: the reader had enough, which is success.
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(io_err("write", path)(e)),
            _ => Ok(()),
        };
    }
    let existing = existing_target(path)?;
    let mode = existing.as_ref().map_or(NEW_FILE_MODE, |m| m.permissions().mode() & 0o777);
    let mut tmp = TempFile::create(path, mode)?;
    if let Some(m) = &existing {
        // The umask may have taken bits away from the kept mode; put them back.
        tmp.file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err("write", path))?;
        // Root replacing a user's report gives it back to the user. Best effort: without
        // CAP_CHOWN the file stays ours, with the user's mode.
        let _ = std::os::unix::fs::fchown(&tmp.file, Some(m.uid()), Some(m.gid()));
    }
    tmp.file.write_all(bytes).map_err(io_err("write", path))?;
    tmp.file.sync_all().map_err(io_err("write", path))?;
    install(&mut tmp, path)
}

/// Writes `bytes` to a new file at `path`, all or nothing: an existing file (or anything else at
/// that name) is never replaced, `Ok(false)` says the name was taken.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, FileError> {
    // Anything at that name, symlink included, makes it taken: nothing there is even looked into.
    match fs::symlink_metadata(path) {
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("write", path)(e)),
    }
    let mut tmp = TempFile::create(path, NEW_FILE_MODE)?;
    tmp.file.write_all(bytes).map_err(io_err("write", path))?;
    tmp.file.sync_all().map_err(io_err("write", path))?;
    match renameat2(&tmp.path, path, libc::RENAME_NOREPLACE) {
        Ok(()) => {
            tmp.installed = true;
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        // No rename flags here: a hard link fails on an existing name just as well.
        Err(e) if no_rename_flags(&e) => match fs::hard_link(&tmp.path, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err("write", path)(e)),
        },
        Err(e) => Err(io_err("write", path)(e)),
    }
}

/// Fails now, before any tracing, if `path` could not be written at the end: not a regular file,
/// or no temp file can be created next to it.
pub fn check_writable(path: &Path) -> Result<(), FileError> {
    if is_stdout(path) {
        return Ok(());
    }
    existing_target(path)?;
    TempFile::create(path, NEW_FILE_MODE).map(drop)
}

/// Opens `path` for appending, emptied, without following a symlink and refusing anything but a
/// regular file (a FIFO is opened non-blocking so that it cannot stall us before it is refused).
/// An existing file keeps its mode.
pub fn create_appendable(path: &Path) -> Result<fs::File, FileError> {
    if is_stdout(path) {
        return Err(FileError::NotRegularOut { path: path.into(), kind: "standard output" });
    }
    existing_target(path)?;
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(NEW_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => FileError::NotRegularOut { path: path.into(), kind: "a symbolic link" },
            Some(libc::ENXIO) => FileError::NotRegularOut { path: path.into(), kind: "a FIFO" },
            _ => io_err("write", path)(e),
        })?;
    let m = file.metadata().map_err(io_err("write", path))?;
    if !m.file_type().is_file() {
        return Err(FileError::NotRegularOut { path: path.into(), kind: kind(m.file_type()) });
    }
    // O_NONBLOCK means nothing to a regular file; truncating only now spares whatever was
    // swapped in before the open.
    file.set_len(0).map_err(io_err("write", path))?;
    Ok(file)
}

/// Reads an input file whole: a regular file or a pipe, at most `MAX_INPUT_BYTES`.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, FileError> {
    read_bounded_to(path, MAX_INPUT_BYTES)
}

fn read_bounded_to(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let refuse = |m: &fs::Metadata| -> Result<(), FileError> {
        let ft = m.file_type();
        if !(ft.is_file() || ft.is_fifo()) {
            return Err(FileError::NotRegularIn { path: path.into(), kind: kind(ft) });
        }
        if m.len() > limit {
            return Err(FileError::TooLarge { path: path.into() });
        }
        Ok(())
    };
    // Checked before opening too: opening some devices has effects.
    refuse(&fs::metadata(path).map_err(io_err("read", path))?)?;
    let file = fs::File::open(path).map_err(io_err("read", path))?;
    refuse(&file.metadata().map_err(io_err("read", path))?)?;
    let mut data = Vec::new();
    file.take(limit + 1).read_to_end(&mut data).map_err(io_err("read", path))?;
    if data.len() as u64 > limit {
        return Err(FileError::TooLarge { path: path.into() });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn a_new_file_is_0644_and_no_temp_file_stays() {
        let d = dir();
        let p = d.path().join("r.json");
        write_file(&p, b"x").unwrap_or_else(|e| panic!("{e}"));
        let m = fs::metadata(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.permissions().mode() & 0o777 & !0o644, 0);
        assert_eq!(entries(d.path()), ["r.json"]);
    }

    #[test]
    fn an_existing_file_keeps_its_mode() {
        let d = dir();
        let p = d.path().join("r.json");
        fs::write(&p, b"old").unwrap_or_else(|e| panic!("{e}"));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
        write_file(&p, b"new").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fs::read(&p).unwrap_or_default(), b"new");
        assert_eq!(fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0), 0o600);
        assert_eq!(entries(d.path()), ["r.json"]);
    }

    #[test]
    fn symlinks_directories_and_fifos_are_refused_and_left_alone() {
        let d = dir();
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap_or_else(|e| panic!("{e}"));
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap_or_else(|e| panic!("{e}"));
        let fifo = d.path().join("fifo");
        let c = cstring(&fifo).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        for (p, what) in [(&link, "symbolic link"), (&d.path().to_path_buf(), "directory"), (&fifo, "FIFO")] {
            let e = write_file(p, b"x").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(what), "{e}");
            assert!(check_writable(p).is_err());
            let e = create_appendable(p).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(what) || e.contains("directory"), "{e}");
        }
        assert_eq!(fs::read(&victim).unwrap_or_default(), b"precious");
        assert_eq!(entries(d.path()), ["fifo", "link.json", "victim"]);
    }

    #[test]
    fn a_symlink_swapped_in_during_the_write_is_put_back() {
        // The race the check cannot see: after the check, before the rename.
        let d = dir();
        let p = d.path().join("r.json");
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap_or_else(|e| panic!("{e}"));
        fs::write(&p, b"old").unwrap_or_else(|e| panic!("{e}"));
        let mut tmp = TempFile::create(&p, NEW_FILE_MODE).unwrap_or_else(|e| panic!("{e}"));
        tmp.file.write_all(b"new").unwrap_or_else(|e| panic!("{e}"));
        fs::remove_file(&p).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&victim, &p).unwrap_or_else(|e| panic!("{e}"));
        let e = install(&mut tmp, &p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("symbolic link"), "{e}");
        drop(tmp);
        assert!(fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()));
        assert_eq!(fs::read(&victim).unwrap_or_default(), b"precious");
        assert_eq!(entries(d.path()), ["r.json", "victim"]);
    }

    #[test]
    fn appendable_files_are_emptied_and_keep_their_mode() {
        let d = dir();
        let p = d.path().join("s.ndjson");
        fs::write(&p, b"old\n").unwrap_or_else(|e| panic!("{e}"));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap_or_else(|e| panic!("{e}"));
        let mut f = create_appendable(&p).unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"a\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fs::read(&p).unwrap_or_default(), b"a\n");
        assert_eq!(fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0), 0o600);
    }

    #[test]
    fn inputs_are_bounded_and_devices_refused() {
        let d = dir();
        let p = d.path().join("big");
        fs::write(&p, [b' '; 100]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(read_bounded_to(&p, 99), Err(FileError::TooLarge { .. })));
        assert_eq!(read_bounded_to(&p, 100).map(|v| v.len()).unwrap_or(0), 100);
        let e = read_bounded(Path::new("/dev/zero")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("character device"), "{e}");
        assert!(read_bounded(d.path()).is_err());
    }
}
