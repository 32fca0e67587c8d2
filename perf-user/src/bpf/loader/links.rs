//! The function probes' links: perf-event uprobes one per function and program, or `uprobe_multi`
//! links over many functions, one set per ELF object (the executable, each shared library). A
//! function whose entry the kernel refuses to probe is skipped.
//!
//! Every object is opened once and probed through `/proc/self/fd/N`: the probes land on the inode
//! that was opened, even when the target unmaps it later (`dlclose`) and maps something else at the
//! same address, which would make its `/proc/PID/map_files/START-END` name another file.

use std::{
    fs::File,
    num::NonZeroU32,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use aya::{
    Ebpf,
    programs::{
        UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
    },
};
use perf_ebpf_common::names;

use super::{LoadError, LoadSpec, Probe, ProbeMode, attach_error, or_not_permitted, program};
use crate::bpf::uprobe_multi;

/// The kernel's ENOTSUPP (not the libc ENOTSUP): uprobes refuse some instructions with it, e.g. a
/// `lock`-prefixed one at a function's entry.
const ENOTSUPP: i32 = 524;

/// A function the kernel would not probe, and what it said; the run goes on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub fn_id: u32,
    pub symbol: String,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped {}: {}", self.symbol, self.reason)
    }
}

/// Whether the kernel refused a probe because of the probed instruction (so only that function
/// fails, never the whole run), and what to tell the user it refused.
fn refusal(errno: Option<i32>) -> Option<&'static str> {
    match errno {
        Some(ENOTSUPP) => Some("the kernel cannot probe the instruction at its entry (ENOTSUPP; e.g. a lock prefix)"),
        Some(libc::ENOEXEC) => Some("the kernel could not decode the instruction at its entry (ENOEXEC)"),
        _ => None,
    }
}

/// The function probes, by how they were attached.
pub(super) enum Links {
    /// Every uprobe link by function, so one function's probes can be removed (overhead guard);
    /// `progs` are the programs each function gets (functions found later get the same).
    Single { progs: &'static [(&'static str, Hook)], links: Vec<(u32, &'static str, UProbeLinkId)> },
    /// Links per program and object, one per function normally ([`group_size`]), so removing a
    /// function closes only its own links.
    Multi { progs: Vec<MultiProgram>, groups: Vec<Group>, pid: u32 },
}

impl Links {
    /// The most functions any link shares, when descriptors ran short (`None`: each its own).
    pub(super) fn sharing(&self) -> Option<Sharing> {
        let Links::Multi { groups, .. } = self else { return None };
        groups.iter().map(|g| g.sharing).filter(|s| s.per_link > 1).max_by_key(|s| s.per_link)
    }

    /// Probes attached: one per function and program.
    pub(super) fn count(&self) -> usize {
        match self {
            Links::Single { links, .. } => links.len(),
            Links::Multi { progs, groups, .. } => progs.len() * groups.iter().map(|g| g.probes.len()).sum::<usize>(),
        }
    }
}

pub(super) struct MultiProgram {
    name: &'static str,
    prog: OwnedFd,
    pub(super) hook: Hook,
}

/// The traced functions of one object and their links: `links[i]` are program `i`'s (one link
/// normally; more when refused functions had to be split out of the set).
pub(super) struct Group {
    path: PathBuf,
    pub(super) probes: Vec<Probe>,
    /// Per program (in `progs` order), its links to these functions.
    links: Vec<Vec<Linked>>,
    /// More than one when the descriptor limit made functions share links ([`group_size`]).
    pub(super) sharing: Sharing,
}

/// How many functions share a link, and why: descriptors ran short.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sharing {
    /// Functions per link (1: each its own).
    pub per_link: usize,
    /// The descriptor soft limit in force, and what one link per function would have needed.
    pub fd_limit: u64,
    pub fd_needed: u64,
}

/// One `uprobe_multi` link: closing `fd` detaches it from all of `fn_ids`.
pub(super) struct Linked {
    fn_ids: Vec<u32>,
    #[expect(dead_code, reason = "held for its drop, which closes the link")]
    fd: OwnedFd,
}

impl Drop for Links {
    /// Closes the `uprobe_multi` links entries first (so no new frame waits for a return that is
    /// no longer probed), each program's in parallel: the kernel waits for a grace period on
    /// every link it releases (tens of ms), and waits that run side by side share it.
    fn drop(&mut self) {
        if let Links::Multi { progs, groups, .. } = self {
            for i in (0..progs.len()).rev() {
                let links = groups.iter_mut().flat_map(|g| g.links.get_mut(i).map(std::mem::take).unwrap_or_default());
                close_in_parallel(links.collect());
            }
        }
    }
}

/// Threads that close links at once: thousands of links then close in a few grace periods.
const CLOSERS: usize = 256;

fn close_in_parallel(links: Vec<Linked>) {
    let per_thread = links.len().div_ceil(CLOSERS).max(1);
    let mut links = links;
    std::thread::scope(|s| {
        while links.len() > per_thread {
            let batch = links.split_off(links.len() - per_thread);
            // A thread that cannot be started drops its batch right here: closed, only slower.
            let _ = std::thread::Builder::new().spawn_scoped(s, move || drop(batch));
        }
        drop(links);
    });
}

/// Descriptors left for everything else perf-user opens (endpoint connections, files, maps).
const FD_RESERVE: u64 = 1024;

/// How many functions share one link. One, so that removing a function (the overhead guard)
/// closes its own links and touches no other function's probe: a link's function set is fixed,
/// and re-linking the others would leave them unprobed meanwhile (their calls lost) or probed
/// twice. One link per function and program needs that many descriptors: the soft limit is
/// raised as far as the hard one allows; only beyond that do functions share links. `links` are
/// the links about to be made; every call adds to the run's total.
fn group_size(links: usize) -> Sharing {
    static TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let total = TOTAL.fetch_add(links as u64, Ordering::Relaxed) + links as u64;
    let soft = raise_fd_limit(total + FD_RESERVE);
    let budget = soft.saturating_sub(FD_RESERVE).max(1);
    let per_link = usize::try_from(total.div_ceil(budget)).unwrap_or(usize::MAX).max(1);
    Sharing { per_link, fd_limit: soft, fd_needed: total + FD_RESERVE }
}

/// Raises this process's descriptor soft limit to `needed` (and the hard one, which only root
/// may), as far as allowed; returns the soft limit now in force.
fn raise_fd_limit(needed: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return FD_RESERVE;
    }
    if lim.rlim_cur >= needed {
        return lim.rlim_cur;
    }
    let want = libc::rlimit { rlim_cur: needed, rlim_max: lim.rlim_max.max(needed) };
    // SAFETY: `want` is a valid rlimit; a refusal changes nothing.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
        return needed;
    }
    let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
    // SAFETY: as above; the soft limit may always rise to the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 { lim.rlim_max } else { lim.rlim_cur }
}

/// The objects probed, each opened once (see the module's doc).
#[derive(Default)]
pub(super) struct Objects(Vec<(PathBuf, File)>);

impl Objects {
    /// The path to probe `object` through: `/proc/self/fd/N` of the file opened the first time.
    pub(super) fn attach_path(&mut self, object: &Path) -> Result<PathBuf, LoadError> {
        let file = match self.0.iter().find(|(p, _)| p == object) {
            Some((_, f)) => f,
            None => {
                let f = File::open(object)
                    .map_err(|source| LoadError::OpenObject { path: object.to_path_buf(), source })?;
                self.0.push((object.to_path_buf(), f));
                &self.0[self.0.len() - 1].1
            }
        };
        Ok(PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())))
    }
}

/// `probes` by object (a probe without one is in `exe`), in first-seen order.
fn by_object<'a>(probes: &'a [Probe], exe: &'a Path) -> Vec<(&'a Path, Vec<Probe>)> {
    let mut out: Vec<(&Path, Vec<Probe>)> = Vec::new();
    for p in probes {
        let object = p.object.as_deref().unwrap_or(exe);
        match out.iter_mut().find(|(o, _)| *o == object) {
            Some((_, v)) => v.push(p.clone()),
            None => out.push((object, vec![p.clone()])),
        }
    }
    out
}

/// Where a function program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hook {
    Entry,
    Return,
    /// At entry, and at return unless the entry returned non-zero.
    Session,
}

/// The programs to attach, returns first: a call that starts between the two attaches then has a
/// return without an entry (counted as orphaned) rather than an entry that never returns.
pub(super) fn programs(mode: ProbeMode, session: bool) -> &'static [(&'static str, Hook)] {
    match (mode, session) {
        (ProbeMode::Full, false) => &[(names::PROG_FUNC_EXIT, Hook::Return), (names::PROG_FUNC_ENTRY, Hook::Entry)],
        (ProbeMode::Full, true) => &[(names::PROG_FUNC_SESSION, Hook::Session)],
        (ProbeMode::EntryOnly, _) => &[(names::PROG_FUNC_COUNT, Hook::Entry)],
        (ProbeMode::Empty, false) => {
            &[(names::PROG_FUNC_EXIT_EMPTY, Hook::Return), (names::PROG_FUNC_ENTRY_EMPTY, Hook::Entry)]
        }
        (ProbeMode::Empty, true) => &[(names::PROG_FUNC_SESSION_EMPTY, Hook::Session)],
        (ProbeMode::Latency, _) => &[(names::PROG_FUNC_LATENCY, Hook::Session)],
        (ProbeMode::Clock, _) => &[(names::PROG_FUNC_SESSION_CLOCK, Hook::Session)],
    }
}

fn check(cancel: &AtomicBool) -> Result<(), LoadError> {
    if cancel.load(Ordering::Relaxed) { Err(LoadError::Interrupted) } else { Ok(()) }
}

/// Perf-event uprobes need the kernel's uprobe PMU. `PERF_USER_SYSFS` points at another sysfs
/// root (tests simulate a kernel without uprobes with it).
fn uprobe_pmu() -> Result<(), LoadError> {
    let sysfs = std::env::var_os("PERF_USER_SYSFS").map_or_else(|| PathBuf::from("/sys"), PathBuf::from);
    if sysfs.join("bus/event_source/devices/uprobe").exists() {
        Ok(())
    } else {
        Err(LoadError::NoUprobes(sysfs.display().to_string()))
    }
}

/// One perf-event uprobe per function and program. A function the kernel refuses loses the
/// probes it already got and is skipped.
pub(super) fn attach_single(
    ebpf: &mut Ebpf,
    objects: &mut Objects,
    spec: &LoadSpec,
    progs: &'static [(&'static str, Hook)],
    cancel: &AtomicBool,
    skipped: &mut Vec<Skipped>,
) -> Result<Links, LoadError> {
    uprobe_pmu()?;
    for &(name, _) in progs {
        let prog: &mut UProbe = program(ebpf, name)?;
        prog.load().map_err(|e| attach_error(name, e))?;
    }
    let mut links = Vec::with_capacity(progs.len() * spec.probes.len());
    single_probes(ebpf, objects, (spec.pid, &spec.exe), progs, &spec.probes, cancel, skipped, &mut links)?;
    if links.is_empty() && !spec.probes.is_empty() {
        return Err(all_refused(skipped));
    }
    Ok(Links::Single { progs, links })
}

/// Attaches every program in `progs` (loaded) to each of `probes` of process `target.0`, whose
/// executable is `target.1`, appending to `links`.
#[allow(clippy::too_many_arguments, reason = "the attach state, borrowed apart")]
pub(super) fn single_probes(
    ebpf: &mut Ebpf,
    objects: &mut Objects,
    target: (u32, &Path),
    progs: &[(&'static str, Hook)],
    probes: &[Probe],
    cancel: &AtomicBool,
    skipped: &mut Vec<Skipped>,
    links: &mut Vec<(u32, &'static str, UProbeLinkId)>,
) -> Result<(), LoadError> {
    let pid = NonZeroU32::new(target.0)
        .ok_or(LoadError::Unsupported { what: "tracing", needs: "a pid other than 0".into() })?;
    for p in probes {
        check(cancel)?;
        let path = objects.attach_path(p.object.as_deref().unwrap_or(target.1))?;
        let point = || UProbeAttachPoint {
            location: UProbeAttachLocation::AbsoluteOffset(p.file_offset),
            cookie: Some(u64::from(p.fn_id)),
        };
        let mut mine = Vec::with_capacity(progs.len());
        for &(name, _) in progs {
            let prog: &mut UProbe = program(ebpf, name)?;
            match prog.attach(point(), &path, UProbeScope::OneProcess(pid)) {
                Ok(link) => mine.push((p.fn_id, name, link)),
                Err(e) => {
                    let err = attach_error(format!("{name} to {}", p.symbol), e);
                    let Some(why) = refusal(err.os_error()) else { return Err(err) };
                    for (_, n, link) in mine.drain(..) {
                        let prog: &mut UProbe = program(ebpf, n)?;
                        prog.detach(link).map_err(|e| attach_error(format!("detaching {n}"), e))?;
                    }
                    skipped.push(Skipped { fn_id: p.fn_id, symbol: p.symbol.clone(), reason: why.to_owned() });
                    break;
                }
            }
        }
        links.append(&mut mine);
    }
    Ok(())
}

fn all_refused(skipped: &[Skipped]) -> LoadError {
    LoadError::AllRefused { count: skipped.len(), first: skipped.first().map(ToString::to_string).unwrap_or_default() }
}

/// Loads each program again with the `uprobe_multi` attach type and links it to every function
/// the kernel accepts, one set of links per object. All or nothing otherwise: on error, whatever
/// was linked is closed again.
pub(super) fn attach_multi(
    raw: &Result<uprobe_multi::RawObject, String>,
    objects: &mut Objects,
    spec: &LoadSpec,
    progs: &[(&'static str, Hook)],
    cancel: &AtomicBool,
    skipped: &mut Vec<Skipped>,
) -> Result<Links, LoadError> {
    let raw = raw.as_ref().map_err(|e| LoadError::UprobeMultiSetup(e.clone()))?;
    let mut loaded = Vec::with_capacity(progs.len());
    for &(name, hook) in progs {
        let attach_type = if hook == Hook::Session {
            uprobe_multi::BPF_TRACE_UPROBE_SESSION
        } else {
            uprobe_multi::BPF_TRACE_UPROBE_MULTI
        };
        let prog = raw.load(name, attach_type).map_err(LoadError::UprobeMulti)?;
        loaded.push(MultiProgram { name, prog, hook });
    }
    let groups = multi_groups(&loaded, objects, (spec.pid, &spec.exe), &spec.probes, cancel, skipped)?;
    if groups.iter().all(|g| g.probes.is_empty()) && !spec.probes.is_empty() {
        return Err(all_refused(skipped));
    }
    Ok(Links::Multi { progs: loaded, groups, pid: spec.pid })
}

/// Links every program to `probes` of process `target.0` (executable `target.1`), one group of
/// links per object.
pub(super) fn multi_groups(
    progs: &[MultiProgram],
    objects: &mut Objects,
    target: (u32, &Path),
    probes: &[Probe],
    cancel: &AtomicBool,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<Group>, LoadError> {
    let mut groups = Vec::new();
    for (object, probes) in by_object(probes, target.1) {
        let path = objects.attach_path(object)?;
        groups.push(link_group(progs, path, probes, target.0, cancel, skipped)?);
    }
    Ok(groups)
}

/// Links every program to the functions of one object. A function refused by one program gets no
/// probe from the others either.
fn link_group(
    progs: &[MultiProgram],
    path: PathBuf,
    probes: Vec<Probe>,
    pid: u32,
    cancel: &AtomicBool,
    skipped: &mut Vec<Skipped>,
) -> Result<Group, LoadError> {
    let sharing = group_size(progs.len() * probes.len());
    let sharing = Sharing { per_link: sharing.per_link.min(probes.len()).max(1), ..sharing };
    let size = sharing.per_link;
    let mut group = Group { path, probes, links: Vec::with_capacity(progs.len()), sharing };
    let mut refused = Vec::new();
    for p in progs {
        let mut links = Vec::new();
        for chunk in group.probes.chunks(size) {
            links.extend(link_splitting(p, chunk, &group.path, pid, cancel, &mut refused)?);
        }
        group.links.push(links);
        group.probes.retain(|pr| !refused.iter().any(|s: &Skipped| s.fn_id == pr.fn_id));
    }
    // A function a later program refused loses what the earlier ones linked: every program must
    // cover the same functions for entries and returns to pair up.
    let refused_ids: Vec<u32> = refused.iter().map(|s| s.fn_id).collect();
    if !refused_ids.is_empty() {
        unlink_functions(progs, std::slice::from_mut(&mut group), &refused_ids, pid)?;
    }
    skipped.extend(refused);
    Ok(group)
}

/// Removes `fn_ids` from every program's links, entries first (so no new frame waits for a
/// return that is no longer probed). Their own links are closed, all of a program's at once in
/// parallel: the kernel waits a grace period (tens of ms) for each link it releases, and waits
/// side by side share it, so the overhead guard giving up hundreds of functions takes a few grace
/// periods, not hundreds. No other function's probe is touched, except those sharing a link with
/// one of them when descriptors ran short ([`group_size`]): they are linked again after the close,
/// and lose their calls meanwhile. Returns how many functions were found and removed.
pub(super) fn unlink_functions(
    progs: &[MultiProgram],
    groups: &mut [Group],
    fn_ids: &[u32],
    pid: u32,
) -> Result<usize, LoadError> {
    let gone = |id: &u32| fn_ids.contains(id);
    for (i, p) in progs.iter().enumerate().rev() {
        let mut closing = Vec::new();
        // Per group, the functions that shared a closing link and stay: linked again below.
        let mut mates: Vec<Vec<Probe>> = Vec::with_capacity(groups.len());
        for group in groups.iter_mut() {
            let Some(links) = group.links.get_mut(i) else {
                mates.push(Vec::new());
                continue;
            };
            let (close, keep): (Vec<Linked>, Vec<Linked>) =
                std::mem::take(links).into_iter().partition(|l| l.fn_ids.iter().any(gone));
            *links = keep;
            let stay = |pr: &&Probe| !gone(&pr.fn_id) && close.iter().any(|l| l.fn_ids.contains(&pr.fn_id));
            mates.push(group.probes.iter().filter(stay).cloned().collect());
            closing.extend(close);
        }
        close_in_parallel(closing);
        for (group, mates) in groups.iter_mut().zip(mates) {
            if mates.is_empty() {
                continue;
            }
            let mut refused = Vec::new();
            let again = link_splitting(p, &mates, &group.path, pid, &AtomicBool::new(false), &mut refused)?;
            if let Some(s) = refused.first() {
                // Accepted once, refused now: the kernel changed its mind, which is an error.
                return Err(LoadError::AllRefused { count: refused.len(), first: s.to_string() });
            }
            if let Some(links) = group.links.get_mut(i) {
                links.extend(again);
            }
        }
    }
    let mut removed = 0;
    for group in groups.iter_mut() {
        let before = group.probes.len();
        group.probes.retain(|pr| !gone(&pr.fn_id));
        removed += before - group.probes.len();
    }
    Ok(removed)
}

/// Links `p` to `probes`. When the kernel refuses the set because of one function's instruction,
/// the set is split in halves until each refused function is alone; those are skipped, the rest
/// keep their links (a few links instead of one, no teardown of what worked).
fn link_splitting(
    p: &MultiProgram,
    probes: &[Probe],
    exe: &Path,
    pid: u32,
    cancel: &AtomicBool,
    refused: &mut Vec<Skipped>,
) -> Result<Vec<Linked>, LoadError> {
    check(cancel)?;
    let err = match link_multi(p, probes, exe, pid) {
        Ok(fd) => return Ok(vec![Linked { fn_ids: probes.iter().map(|p| p.fn_id).collect(), fd }]),
        Err(e) => e,
    };
    let Some(why) = refusal(err.os_error()) else { return Err(err) };
    if let [one] = probes {
        refused.push(Skipped { fn_id: one.fn_id, symbol: one.symbol.clone(), reason: why.to_owned() });
        return Ok(Vec::new());
    }
    let (a, b) = probes.split_at(probes.len() / 2);
    let mut links = link_splitting(p, a, exe, pid, cancel, refused)?;
    links.extend(link_splitting(p, b, exe, pid, cancel, refused)?);
    Ok(links)
}

fn link_multi(p: &MultiProgram, probes: &[Probe], exe: &Path, pid: u32) -> Result<OwnedFd, LoadError> {
    let offsets: Vec<u64> = probes.iter().map(|p| p.file_offset).collect();
    let cookies: Vec<u64> = probes.iter().map(|p| u64::from(p.fn_id)).collect();
    let how = match p.hook {
        Hook::Entry => uprobe_multi::Link::Entry,
        Hook::Return => uprobe_multi::Link::Return,
        Hook::Session => uprobe_multi::Link::Session,
    };
    let what = match probes {
        [one] => format!("{} to {}", p.name, one.symbol),
        _ => format!("{} to {} functions", p.name, probes.len()),
    };
    uprobe_multi::attach(p.prog.as_fd(), exe, &offsets, &cookies, pid, how)
        .map_err(|source| or_not_permitted(LoadError::AttachLink { what, source }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_instruction_refusals_skip_a_function() {
        assert!(refusal(Some(ENOTSUPP)).is_some_and(|r| r.contains("ENOTSUPP")));
        assert!(refusal(Some(libc::ENOEXEC)).is_some());
        // Missing privileges, a gone target or an unknown attach type fail the run as before.
        for errno in [libc::EPERM, libc::ESRCH, libc::EINVAL, libc::EOPNOTSUPP] {
            assert_eq!(refusal(Some(errno)), None, "errno {errno}");
        }
        assert_eq!(refusal(None), None);
    }
}
