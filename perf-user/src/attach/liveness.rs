//! Whether the traced process still runs the program we attached to: its exit through a pidfd
//! (`pidfd_open`, readable once the process has exited, zombies included) and its `execve`.

use std::{
    fs::File,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::fs::{FileExt, MetadataExt},
    },
};

use tokio::io::unix::AsyncFd;

/// What became of the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    Running,
    /// Exited; a zombie counts (it runs nothing any more).
    Exited,
    /// Replaced its program with `execve`: same pid, another address space.
    Execed,
}

/// The target's pidfd and what tells an `execve`.
pub struct Liveness {
    pid: u32,
    pidfd: OwnedFd,
    /// `/proc/PID/mem` opened now: it stays bound to this address space, so reading it returns
    /// end-of-file once the process has dropped it (`execve` or exit), and EIO at the unmapped
    /// address 0 while it is still in use.
    mem: Option<File>,
    /// Fallback when `mem` cannot be opened: the (device, inode) of the program at the start.
    exe_id: Option<(u64, u64)>,
}

impl Liveness {
    pub fn open(pid: u32) -> io::Result<Liveness> {
        let mut liveness = Liveness::open_launched(pid)?;
        liveness.watch_exec();
        Ok(liveness)
    }

    /// A child perf-user started (`perf-user run`) is watched for exit from its fork, and for
    /// `execve` only once it runs CMD (`watch_exec`): the `execve` that starts CMD is no exec away.
    pub fn open_launched(pid: u32) -> io::Result<Liveness> {
        let pid_t = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
        // is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
        // SAFETY: `fd` was just returned by pidfd_open and nothing else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Liveness { pid, pidfd, mem: None, exe_id: None })
    }

    /// Binds the exec check to the program the process runs now.
    pub fn watch_exec(&mut self) {
        self.mem = File::open(format!("/proc/{}/mem", self.pid)).ok();
        self.exe_id = exe_id(self.pid);
    }

    /// Exited (now, without waiting) or execed or running.
    pub fn state(&self) -> TargetState {
        if self.exited() {
            return TargetState::Exited;
        }
        if self.execed() { TargetState::Execed } else { TargetState::Running }
    }

    fn exited(&self) -> bool {
        let mut pfd = libc::pollfd { fd: self.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP) != 0
    }

    fn execed(&self) -> bool {
        execed(self.pid, self.mem.as_ref(), self.exe_id)
    }

    /// Hands the pidfd to the runtime, for `wait_exit` in the select loop.
    pub fn into_async(self) -> io::Result<AsyncLiveness> {
        let Liveness { pid, pidfd, mem, exe_id } = self;
        // SAFETY: the OwnedFd is moved into the AsyncFd, so the descriptor stays open and the same
        // for the AsyncFd's whole life.
        let pidfd = unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }?;
        Ok(AsyncLiveness { pidfd, rest: Probe { pid, mem, exe_id } })
    }
}

fn exe_id(pid: u32) -> Option<(u64, u64)> {
    std::fs::metadata(format!("/proc/{pid}/exe")).ok().map(|m| (m.dev(), m.ino()))
}

/// `execve` checks without the pidfd (which the runtime owns).
struct Probe {
    pid: u32,
    mem: Option<File>,
    exe_id: Option<(u64, u64)>,
}

/// `Liveness` inside the runtime: exit is awaited, `execve` is checked on each tick.
pub struct AsyncLiveness {
    pidfd: AsyncFd<OwnedFd>,
    rest: Probe,
}

impl AsyncLiveness {
    /// Resolves once the target has exited (at once if it already has).
    pub async fn wait_exit(&self) -> io::Result<()> {
        // A pidfd stays readable after the exit: the readiness is never cleared.
        let _guard = self.pidfd.readable().await?;
        Ok(())
    }

    pub fn execed(&self) -> bool {
        let p = &self.rest;
        execed(p.pid, p.mem.as_ref(), p.exe_id)
    }
}

/// Whether `pid` runs another program than when `mem` (or `start_id`) was taken.
fn execed(pid: u32, mem: Option<&File>, start_id: Option<(u64, u64)>) -> bool {
    match mem {
        Some(mem) => {
            let mut byte = [0u8; 1];
            // Ok(0): the address space we opened is gone. After an exit /proc/PID/exe goes with
            // it; after an execve it names the new program.
            matches!(mem.read_at(&mut byte, 0), Ok(0)) && std::fs::read_link(format!("/proc/{pid}/exe")).is_ok()
        }
        None => start_id.is_some() && exe_id(pid).is_some_and(|id| Some(id) != start_id),
    }
}
