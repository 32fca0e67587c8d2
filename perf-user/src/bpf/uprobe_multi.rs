//! Programs aya 0.14 cannot load: uprobes attached through one `uprobe_multi` link per program
//! (kernel 6.6+) instead of one perf event per function.
//!
//! aya loads the object and creates the maps; this module loads a second copy of chosen programs
//! with the expected attach type the kernel wants for `BPF_LINK_CREATE` (`BPF_TRACE_UPROBE_MULTI`),
//! relocated against aya's maps so both copies share every map. One link carries all functions
//! (offsets + cookies), so attaching 1,000 functions is one syscall and detaching them one RCU
//! grace period instead of one per probe.

use std::{
    collections::{HashMap, HashSet},
    ffi::CString,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    path::Path,
};

use aya::{Ebpf, maps::Map};

/// `BPF_PROG_LOAD` and `BPF_LINK_CREATE` commands of bpf(2).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_KPROBE: u32 = 2;
/// `enum bpf_attach_type` values (uapi/linux/bpf.h).
pub const BPF_TRACE_UPROBE_MULTI: u32 = 48;
/// Kernel 6.13+: one program at entry and return (the entry returning non-zero skips the return).
pub const BPF_TRACE_UPROBE_SESSION: u32 = 57;
const BPF_F_UPROBE_MULTI_RETURN: u32 = 1;

/// What a link runs its program on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Entry,
    Return,
    /// Loaded with [`BPF_TRACE_UPROBE_SESSION`].
    Session,
}

/// The prefix of `union bpf_attr` that `BPF_PROG_LOAD` reads, up to `expected_attach_type`; the
/// kernel accepts a shorter attr and zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_LINK_CREATE` part of `union bpf_attr` for `uprobe_multi`.
#[repr(C)]
#[derive(Default)]
struct UprobeMultiLinkAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    path: u64,
    offsets: u64,
    ref_ctr_offsets: u64,
    cookies: u64,
    cnt: u32,
    multi_flags: u32,
    pid: u32,
    _pad: u32,
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a live, fully initialised #[repr(C)] prefix of `union bpf_attr` whose
    // pointer fields point at buffers that outlive the call; its size is passed alongside.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<T>()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::other("bpf(2) returned an invalid fd"))?;
    // SAFETY: the kernel just returned this new descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The eBPF object relocated against the maps aya created, ready to load programs from.
pub struct RawObject {
    obj: aya_obj::Object,
    /// Duplicates of aya's map descriptors, so the maps live as long as programs loaded here need them.
    _map_fds: Vec<OwnedFd>,
}

/// The map behind any of aya's map kinds (all of them wrap a `MapData`).
fn map_fd(map: &Map) -> BorrowedFd<'_> {
    let data = match map {
        Map::Array(d)
        | Map::ArrayOfMaps(d)
        | Map::BloomFilter(d)
        | Map::CgroupArray(d)
        | Map::CgroupStorage(d)
        | Map::CgrpStorage(d)
        | Map::CpuMap(d)
        | Map::DevMap(d)
        | Map::DevMapHash(d)
        | Map::HashMap(d)
        | Map::HashOfMaps(d)
        | Map::InodeStorage(d)
        | Map::LpmTrie(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuCgroupStorage(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::PerfEventArray(d)
        | Map::ProgramArray(d)
        | Map::Queue(d)
        | Map::ReusePortSockArray(d)
        | Map::RingBuf(d)
        | Map::SockHash(d)
        | Map::SockMap(d)
        | Map::SkStorage(d)
        | Map::Stack(d)
        | Map::StackTraceMap(d)
        | Map::Unsupported(d)
        | Map::XskMap(d) => d,
    };
    data.fd().as_fd()
}

impl RawObject {
    /// Parses `object` again and points its map references at the maps `ebpf` created from it.
    /// Call before taking any map out of `ebpf`.
    pub fn new(object: &[u8], ebpf: &Ebpf) -> Result<Self, String> {
        let mut obj = aya_obj::Object::parse(object).map_err(|e| format!("parsing the eBPF object: {e}"))?;
        let mut fds: HashMap<String, OwnedFd> = HashMap::new();
        for (name, map) in ebpf.maps() {
            let fd = map_fd(map).try_clone_to_owned().map_err(|e| format!("duplicating map {name}: {e}"))?;
            fds.insert(name.to_owned(), fd);
        }
        let text_sections: HashSet<usize> = obj.functions.keys().map(|(section, _)| *section).collect();
        let maps = std::mem::take(&mut obj.maps);
        let mut missing = Vec::new();
        let pairs: Vec<(&str, RawFd, &aya_obj::Map)> = maps
            .iter()
            .filter_map(|(name, m)| match fds.get(name) {
                Some(fd) => Some((name.as_str(), fd.as_raw_fd(), m)),
                None => {
                    missing.push(name.clone());
                    None
                }
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!("maps not created by the loader: {}", missing.join(", ")));
        }
        obj.relocate_maps(pairs.into_iter(), &text_sections).map_err(|e| format!("relocating maps: {e}"))?;
        obj.relocate_calls(&text_sections).map_err(|e| format!("relocating calls: {e}"))?;
        Ok(RawObject { obj, _map_fds: fds.into_values().collect() })
    }

    /// Loads program `name` as a kprobe-type program expecting `attach_type`. On a verifier error
    /// the message carries the end of the verifier's log.
    pub fn load(&self, name: &str, attach_type: u32) -> Result<OwnedFd, String> {
        let prog = self.obj.programs.get(name).ok_or_else(|| format!("no program {name} in the object"))?;
        let func = self.obj.functions.get(&prog.function_key()).ok_or_else(|| format!("no code for program {name}"))?;
        let license = CString::new(self.obj.license.as_bytes()).map_err(|e| e.to_string())?;
        let mut prog_name = [0u8; 16];
        for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
            *d = s;
        }
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_KPROBE,
            insn_cnt: u32::try_from(func.instructions.len()).map_err(|e| e.to_string())?,
            insns: func.instructions.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name,
            expected_attach_type: attach_type,
            ..ProgLoadAttr::default()
        };
        match sys_bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(fd),
            Err(first) => {
                // Load again with the verifier's log so the error says why.
                let mut log = vec![0u8; 1 << 20];
                attr.log_level = 1;
                attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
                attr.log_buf = log.as_mut_ptr() as u64;
                let _ = sys_bpf(BPF_PROG_LOAD, &mut attr);
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let tail: Vec<&str> = text.lines().rev().take(3).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(format!(
                    "loading {name}: {first}{}",
                    if tail.is_empty() { String::new() } else { format!(" ({})", tail.join(" / ")) }
                ))
            }
        }
    }
}

/// Attaches `prog` (loaded with [`BPF_TRACE_UPROBE_MULTI`], or [`BPF_TRACE_UPROBE_SESSION`] for
/// [`Link::Session`]) at every file offset of `binary`, each with its cookie, in process `pid`
/// only. The link detaches all of them when dropped.
pub fn attach(
    prog: BorrowedFd<'_>,
    binary: &Path,
    offsets: &[u64],
    cookies: &[u64],
    pid: u32,
    how: Link,
) -> io::Result<OwnedFd> {
    if offsets.len() != cookies.len() || offsets.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "one cookie per offset, at least one offset"));
    }
    let path = CString::new(binary.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut attr = UprobeMultiLinkAttr {
        prog_fd: u32::try_from(prog.as_raw_fd()).map_err(|_| io::Error::other("bad program fd"))?,
        attach_type: if how == Link::Session { BPF_TRACE_UPROBE_SESSION } else { BPF_TRACE_UPROBE_MULTI },
        path: path.as_ptr() as u64,
        offsets: offsets.as_ptr() as u64,
        cookies: cookies.as_ptr() as u64,
        cnt: u32::try_from(offsets.len()).map_err(|_| io::Error::other("too many offsets"))?,
        multi_flags: if how == Link::Return { BPF_F_UPROBE_MULTI_RETURN } else { 0 },
        pid,
        ..UprobeMultiLinkAttr::default()
    };
    sys_bpf(BPF_LINK_CREATE, &mut attr)
}
