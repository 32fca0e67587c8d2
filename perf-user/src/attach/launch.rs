//! `perf-user run`: the command perf-user starts itself. It is found on `PATH` as `execvp` finds
//! it, forked blocked on a pipe before its `execve`, released once its probes are in, and waited for.
//!
//! The probes go on CMD's file filtered to the child's pid; the pid survives `execve`, and the
//! kernel installs them when `execve` maps the file, before the dynamic loader or `main` run.

use std::{
    ffi::{CString, OsStr, OsString},
    fs::File,
    io::{self, Read, Write},
    os::{
        fd::{FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::PermissionsExt},
    },
    path::{Path, PathBuf},
};

/// Why CMD cannot be started; each is one line, with the exit status a shell gives.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}: command not found")]
    NotFound(String),
    #[error("{path}: not an executable file")]
    NotExecutable { path: String },
    #[error("{path}: cannot run it: {source}")]
    Exec { path: String, source: io::Error },
    #[error("cannot start the command: {0}")]
    Fork(#[source] io::Error),
}

impl LaunchError {
    /// 127 for a command that is not there, 126 for one that cannot run, as shells say.
    pub fn exit_status(&self) -> i32 {
        match self {
            LaunchError::NotFound(_) => 127,
            LaunchError::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            _ => 126,
        }
    }
}

/// CMD, resolved but not started.
pub struct Command {
    /// The file `execve` runs (what the probes attach to).
    pub path: PathBuf,
    argv: Vec<OsString>,
}

impl Command {
    /// Finds `argv[0]` as `execvp` does: a name with a `/` is a path, any other is looked up in
    /// each `PATH` entry (an empty entry is the current directory), the first executable file wins.
    pub fn resolve(argv: &[OsString]) -> Result<Command, LaunchError> {
        let name = argv.first().ok_or_else(|| LaunchError::NotFound(String::new()))?;
        let shown = || name.to_string_lossy().into_owned();
        if name.as_bytes().contains(&b'/') {
            let path = PathBuf::from(name);
            return match std::fs::metadata(&path) {
                Err(_) => Err(LaunchError::NotFound(shown())),
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                    Ok(Command { path, argv: argv.to_vec() })
                }
                Ok(_) => Err(LaunchError::NotExecutable { path: shown() }),
            };
        }
        // glibc's default when PATH is unset (confstr _CS_PATH).
        let search = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
        let mut not_executable = None;
        for dir in search.as_bytes().split(|&b| b == b':') {
            let dir = if dir.is_empty() { Path::new(".") } else { Path::new(OsStr::from_bytes(dir)) };
            let candidate = dir.join(name);
            match std::fs::metadata(&candidate) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                    return Ok(Command { path: candidate, argv: argv.to_vec() });
                }
                Ok(m) if m.is_file() => not_executable = Some(candidate),
                _ => {}
            }
        }
        match not_executable {
            Some(p) => Err(LaunchError::NotExecutable { path: p.display().to_string() }),
            None => Err(LaunchError::NotFound(shown())),
        }
    }

    /// Forks the child, which waits for `Child::release` before its `execve`. Call it while
    /// perf-user has one thread: between fork and exec the child only reads, execs and exits.
    pub fn start(&self) -> Result<Child, LaunchError> {
        let c = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| LaunchError::NotFound(s.to_string_lossy().into()));
        let path = c(self.path.as_os_str())?;
        let argv = self.argv.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let (go_read, go_write) = pipe().map_err(LaunchError::Fork)?;
        let (status_read, status_write) = pipe().map_err(LaunchError::Fork)?;
        // SAFETY: fork has no memory arguments. The child below only calls async-signal-safe
        // functions (read, write, signal, execv, _exit) on memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(LaunchError::Fork(io::Error::last_os_error()));
        }
        if pid == 0 {
            drop(go_write);
            drop(status_read);
            child_wait_and_exec(&go_read, &status_write, &path, &argv_ptrs);
        }
        drop(go_read);
        drop(status_write);
        let pid = pid.cast_unsigned();
        Ok(Child { pid, path: self.path.clone(), go: Some(File::from(go_write)), status: File::from(status_read) })
    }
}

/// The child's side: block until perf-user says go (end-of-file: perf-user is gone, so exit),
/// exec, and on failure tell the errno through the close-on-exec pipe.
fn child_wait_and_exec(go: &OwnedFd, status: &OwnedFd, path: &CString, argv: &[*const libc::c_char]) -> ! {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    loop {
        // SAFETY: one byte into a local; read is async-signal-safe.
        let n = unsafe { libc::read(go.as_raw_fd(), (&raw mut byte).cast(), 1) };
        if n == 1 {
            break;
        }
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // SAFETY: _exit ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(127) };
    }
    // SAFETY: Rust ignores SIGPIPE in its programs, and an ignored signal stays ignored across
    // execve; CMD gets the default a shell would give it (as std's Command does). `path` and the
    // null-terminated `argv` point to CStrings that outlive the execv.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::execv(path.as_ptr(), argv.as_ptr());
    }
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOEXEC);
    let bytes = errno.to_ne_bytes();
    // SAFETY: writes four bytes of a local, then exits the child.
    unsafe {
        libc::write(status.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The started child. Killed and reaped on drop while still blocked; once released it is CMD,
/// and perf-user waits for it (`wait`).
pub struct Child {
    pub pid: u32,
    path: PathBuf,
    /// The release pipe; `None` once released.
    go: Option<File>,
    /// Close-on-exec in the child: end-of-file once its `execve` succeeded, else its errno.
    status: File,
}

impl Child {
    /// Lets the child exec CMD and returns once it has: the pid then runs CMD, whose address
    /// space is installed before the kernel closes the close-on-exec descriptors.
    pub fn release(&mut self) -> Result<(), LaunchError> {
        let exec_error = |source| LaunchError::Exec { path: self.path.display().to_string(), source };
        if let Some(mut go) = self.go.take() {
            go.write_all(&[1]).map_err(exec_error)?;
        }
        let mut errno = [0u8; 4];
        let mut got = 0;
        while got < errno.len() {
            match self.status.read(&mut errno[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(exec_error(e)),
            }
        }
        if got == 0 {
            return Ok(());
        }
        let _ = self.wait();
        Err(exec_error(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))))
    }

    /// CMD's exit status once the trace is over; when CMD still runs (`--duration`, `q`), says
    /// that perf-user waits for it.
    pub fn wait_after_trace(&self) -> io::Result<i32> {
        if let Some(status) = self.wait_flags(libc::WNOHANG)? {
            return Ok(status);
        }
        eprintln!("perf-user: tracing stopped; waiting for {} (pid {}) to exit", self.path.display(), self.pid);
        self.wait()
    }

    /// Waits for the child's end; its exit status, or 128 + the signal that killed it.
    pub fn wait(&self) -> io::Result<i32> {
        self.wait_flags(0)?.ok_or_else(|| io::Error::other("waitpid returned no child"))
    }

    fn wait_flags(&self, flags: i32) -> io::Result<Option<i32>> {
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child, writing its status into a local.
            let rc = unsafe { libc::waitpid(self.pid.cast_signed(), &mut status, flags) };
            if rc > 0 {
                break;
            }
            if rc == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some(128 + libc::WTERMSIG(status)));
        }
        Ok(Some(libc::WEXITSTATUS(status)))
    }
}

impl Drop for Child {
    /// A child never released (perf-user failed before its probes were in) must not outlive us.
    fn drop(&mut self) {
        if self.go.take().is_some() {
            interrupt(self.pid, libc::SIGKILL);
            let _ = self.wait();
        }
    }
}

/// Sends `sig` to CMD (a forwarded Ctrl-C, or the kill of a child never released).
pub fn interrupt(pid: u32, sig: i32) {
    // SAFETY: kill(2) takes a pid and a signal number; async-signal-safe.
    unsafe { libc::kill(pid.cast_signed(), sig) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn commands_are_found_as_execvp_finds_them() {
        let sh = Command::resolve(&argv(&["sh", "-c", "true"])).unwrap_or_else(|e| panic!("{e}"));
        assert!(sh.path.is_absolute() && sh.path.ends_with("sh"), "{}", sh.path.display());
        let e = Command::resolve(&argv(&["no-such-command-perf-user"])).err().map(|e| e.exit_status());
        assert_eq!(e, Some(127));
        let e = Command::resolve(&argv(&["/no/such/file"])).err().map(|e| e.exit_status());
        assert_eq!(e, Some(127));
        let e = Command::resolve(&argv(&["/"])).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("/: not an executable file"));
    }

    #[test]
    fn a_released_child_runs_and_its_status_is_returned() {
        let cmd = Command::resolve(&argv(&["sh", "-c", "exit 3"])).unwrap_or_else(|e| panic!("{e}"));
        let mut child = cmd.start().unwrap_or_else(|e| panic!("{e}"));
        child.release().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(child.wait().ok(), Some(3));
        let cmd = Command::resolve(&argv(&["sh", "-c", "kill -TERM $$"])).unwrap_or_else(|e| panic!("{e}"));
        let mut child = cmd.start().unwrap_or_else(|e| panic!("{e}"));
        child.release().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(child.wait().ok(), Some(128 + libc::SIGTERM));
        // Regression: CMD inherited perf-user's ignored SIGPIPE, so `CMD | head` never ended it.
        let cmd = Command::resolve(&argv(&["sh", "-c", "kill -PIPE $$"])).unwrap_or_else(|e| panic!("{e}"));
        let mut child = cmd.start().unwrap_or_else(|e| panic!("{e}"));
        child.release().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(child.wait().ok(), Some(128 + libc::SIGPIPE));
    }
}
