//! The injected work itself: cold, never inlined helpers a stage calls on its due calls, and the
//! thread's own counts of the interference it caused (`getrusage(RUSAGE_THREAD)`, `sched_getcpu`).

use std::time::{Duration, Instant};

/// The payload of an injected panic, so the panic hook can stay quiet about it.
pub const INJECTED_PANIC: &str = "target-app: injected panic";

const PAGE: usize = 4096;

#[cold]
#[inline(never)]
pub(super) fn injected_panic() {
    std::panic::panic_any(INJECTED_PANIC);
}

/// Sleeps `dur`; true when the thread left the CPU voluntarily meanwhile (its rusage's
/// `ru_nvcsw` grew). A sleep can end without ever blocking: when the hypervisor holds the vCPU
/// across the moment the thread would go to sleep, its timer has expired by then.
#[cold]
#[inline(never)]
pub(super) fn sleep_for(dur: Duration) -> bool {
    let before = thread_rusage().map(|ru| ru.ru_nvcsw);
    std::thread::sleep(dur);
    matches!((before, thread_rusage().map(|ru| ru.ru_nvcsw)), (Some(b), Some(a)) if a > b)
}

#[cold]
#[inline(never)]
pub(super) fn spin_for(dur: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < dur {
        std::hint::spin_loop();
    }
}

#[cold]
#[inline(never)]
pub(super) fn extra_syscalls(count: u32) {
    for _ in 0..count {
        // SAFETY: getppid(2) takes no arguments, touches no memory and cannot
        // fail; calling it through syscall(2) bypasses any libc caching, so
        // each iteration is exactly one kernel entry.
        let ppid = unsafe { libc::syscall(libc::SYS_getppid) };
        std::hint::black_box(ppid);
    }
}

/// This thread's own resource usage (`None` if the kernel would not say, which Linux never does).
fn thread_rusage() -> Option<libc::rusage> {
    // SAFETY: an all-zero rusage is a valid value; getrusage writes only into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to `ru`; RUSAGE_THREAD is this thread only.
    (unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } == 0).then_some(ru)
}

/// Page faults this thread has taken so far: (minor + major, major), by its own rusage.
fn thread_fault_counts() -> (u64, u64) {
    let Some(ru) = thread_rusage() else {
        return (0, 0);
    };
    let major = u64::try_from(ru.ru_majflt).unwrap_or(0);
    (u64::try_from(ru.ru_minflt).unwrap_or(0) + major, major)
}

/// Page faults (minor + major) this thread has taken so far.
fn thread_faults() -> u64 {
    thread_fault_counts().0
}

/// A file of `pages` pages on disk whose page cache `touch_cold_file` drops before each use, so
/// that reading it through a mapping takes a major fault a page. Unlinked at once: only the
/// descriptor (kept for the process's life) names it.
pub(super) fn cold_file(pages: u32) -> Option<i32> {
    use std::io::Write;
    let path = std::env::temp_dir().join(format!("target-app-{}-cold-{pages}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    f.write_all(&vec![0x5a; pages as usize * PAGE]).ok()?;
    // Clean pages only: POSIX_FADV_DONTNEED drops clean pages, and writes back dirty ones first.
    f.sync_all().ok()?;
    Some(std::os::fd::IntoRawFd::into_raw_fd(f))
}

/// Drops `fd`'s `pages` pages from the page cache, maps them and reads one byte of each: a major
/// fault apiece (the kernel must read the page; `MADV_RANDOM` turns off read-ahead, and
/// fault-around maps only pages already cached, of which there are none). Returns the thread's
/// (all, major) faults meanwhile by its own rusage: the truth a tracer's counts are compared to.
#[cold]
#[inline(never)]
pub(super) fn touch_cold_file(fd: i32, pages: u32) -> (u64, u64) {
    let (all0, major0) = thread_fault_counts();
    let len = pages as usize * PAGE;
    // SAFETY: plain syscalls on our own descriptor; the mapping is read only and ours alone,
    // read inside its bounds and unmapped before returning.
    unsafe {
        libc::posix_fadvise(fd, 0, len as libc::off_t, libc::POSIX_FADV_DONTNEED);
        let base = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, fd, 0);
        if base != libc::MAP_FAILED {
            libc::madvise(base, len, libc::MADV_RANDOM);
            let bytes = base.cast::<u8>();
            for p in 0..pages as usize {
                std::hint::black_box(std::ptr::read_volatile(bytes.add(p * PAGE)));
            }
            libc::munmap(base, len);
        }
    }
    let (all1, major1) = thread_fault_counts();
    (all1.saturating_sub(all0), major1.saturating_sub(major0))
}

/// Maps `pages` fresh anonymous pages, writes one byte in each (a minor fault apiece: no huge
/// page, no fault-around for anonymous memory) and unmaps them. Returns the faults the thread
/// took meanwhile, by its own rusage: the truth a tracer's count is compared against.
#[cold]
#[inline(never)]
pub(super) fn touch_fresh_pages(pages: u32) -> u64 {
    let before = thread_faults();
    let len = pages as usize * PAGE;
    // SAFETY: a private anonymous mapping at an address of the kernel's choosing aliases nothing.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return thread_faults().saturating_sub(before);
    }
    // SAFETY: `base..base+len` is the mapping just made, ours alone until munmap below.
    unsafe {
        libc::madvise(base, len, libc::MADV_NOHUGEPAGE);
        let bytes = base.cast::<u8>();
        for p in 0..pages as usize {
            std::ptr::write_volatile(bytes.add(p * PAGE), 1);
        }
        libc::munmap(base, len);
    }
    thread_faults().saturating_sub(before)
}

/// The CPU this thread runs on, or `None` if the kernel will not say.
fn current_cpu() -> Option<usize> {
    // SAFETY: no arguments, no memory effects.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

/// Allows this thread only `cpu`; the kernel moves it there before the call returns.
fn pin_to(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it; tid 0 is us.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid value; sched_getaffinity writes only into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer and size; tid 0 is this thread.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads inside `set` for any index below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Whether this thread may run on two CPUs or more.
pub(super) fn may_migrate() -> bool {
    allowed_cpus().len() >= 2
}

/// Pins the thread to the CPU it runs on now (no migration: it is already there) and returns that
/// CPU and another it may run on. From here on it moves only when told to, so the one migration
/// per injected call is the only one.
#[cold]
#[inline(never)]
pub(super) fn pin_here() -> Option<[usize; 2]> {
    let here = current_cpu()?;
    let other = allowed_cpus().into_iter().find(|&c| c != here)?;
    pin_to(here).then_some([here, other])
}

/// Moves the thread to the other CPU of `pair`; true if it now runs on another CPU than before
/// (the app's own count of the migrations it caused).
#[cold]
#[inline(never)]
pub(super) fn flip_cpu(pair: [usize; 2]) -> bool {
    let Some(before) = current_cpu() else { return false };
    let target = if before == pair[0] { pair[1] } else { pair[0] };
    pin_to(target) && current_cpu().is_some_and(|after| after != before)
}
