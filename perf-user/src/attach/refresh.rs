//! Libraries the target loads after attach (`dlopen`): once a second the executable objects it maps
//! (`/proc/PID/maps`, a few KiB) are compared with those seen so far, by device and inode; a new one
//! an `OBJECT:FUNC` pattern names gets its functions probed, the same way as the others, and the run
//! says so (status line or stdout, and the export's warnings and `added_after_ns`).

use std::{
    collections::HashSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use super::{
    objects::{self, ObjectPattern},
    plan,
    preflight::Target,
};
use crate::{
    bpf::loader::{LoadSpec, Probe, ProbeMode},
    cli::AttachConfig,
    model::FuncInfo,
    target::symbols::objects::MappedObject,
};

/// How often the maps are compared.
const EVERY: Duration = Duration::from_secs(1);

pub(super) struct Refresh {
    pid: u32,
    exe_link: PathBuf,
    exe: PathBuf,
    patterns: Vec<ObjectPattern>,
    /// Every executable object seen so far, by (device, inode).
    known: HashSet<(String, u64)>,
    /// `run`: the files probed before CMD started, by `stat`'s (device, inode); the maps' device
    /// numbers may differ from `stat`'s (btrfs), so a newly mapped object is checked against these.
    probed_files: HashSet<(u64, u64)>,
    last: Instant,
    /// Function ids the kernel's maps hold.
    capacity: usize,
    /// Return probes go on the functions and the user did not accept the unwind risk: a library
    /// that may unwind is left out.
    avoid_unwind: bool,
}

/// Functions of libraries loaded since the last look, ready to probe.
pub(super) struct Late {
    pub probes: Vec<Probe>,
    pub infos: Vec<FuncInfo>,
    /// One line per library: what was traced or why not.
    pub notes: Vec<String>,
}

impl Refresh {
    pub fn new(
        cfg: &AttachConfig,
        t: &Target,
        patterns: Vec<ObjectPattern>,
        mapped: &[MappedObject],
        spec: &LoadSpec,
    ) -> Self {
        Refresh {
            pid: t.pid,
            exe_link: t.exe_link.clone(),
            exe: t.exe.clone(),
            patterns,
            known: mapped.iter().map(|o| o.id.clone()).collect(),
            probed_files: if t.launched.is_some() {
                mapped.iter().filter_map(|o| objects::file_id(&o.attach)).collect()
            } else {
                HashSet::new()
            },
            last: Instant::now(),
            capacity: spec.capacity,
            avoid_unwind: matches!(spec.mode, ProbeMode::Full | ProbeMode::Latency) && !cfg.allow_unwind_risk,
        }
    }

    /// When a second has passed: the functions of objects mapped since, numbered from `next_id`.
    /// `None` when nothing new is mapped.
    pub fn poll(&mut self, next_id: u32) -> Option<Late> {
        if self.last.elapsed() < EVERY {
            return None;
        }
        self.last = Instant::now();
        let new: Vec<MappedObject> = objects::mapped(self.pid)
            .into_iter()
            .filter(|o| self.known.insert(o.id.clone()))
            .filter(|o| {
                self.probed_files.is_empty()
                    || objects::file_id(&o.attach).is_none_or(|id| !self.probed_files.contains(&id))
            })
            .collect();
        let mut late = Late { probes: Vec::new(), infos: Vec::new(), notes: Vec::new() };
        let mut next = next_id;
        for obj in new {
            let Some(found) = self.resolve(&obj, &mut late.notes) else { continue };
            let room = self.capacity.saturating_sub(next as usize);
            let mut functions = found.functions;
            if functions.len() > room {
                late.notes.push(format!(
                    "{} loaded after attach: {} of its {} matching functions not traced (room for {} more \
                     functions; see --max-funcs)",
                    obj.path,
                    functions.len() - room,
                    functions.len(),
                    room
                ));
                functions.truncate(room);
            }
            if functions.is_empty() {
                continue;
            }
            let infos = plan::func_infos(&functions, next, &found.names);
            late.notes.push(format!(
                "{} loaded after attach: {} traced",
                obj.path,
                list(infos.iter().map(|f| f.symbol.as_str()), infos.len())
            ));
            late.probes.extend(infos.iter().zip(&functions).map(|(i, f)| Probe {
                fn_id: i.id,
                file_offset: f.file_offset,
                symbol: f.name.clone(),
                object: Some(f.object.clone()),
            }));
            next += infos.len() as u32;
            late.infos.extend(infos);
        }
        (!late.notes.is_empty()).then_some(late)
    }

    /// What the patterns choose in one new object; `None` (with a note when it matters) when nothing.
    fn resolve(&self, obj: &MappedObject, notes: &mut Vec<String>) -> Option<objects::Found> {
        let target = (self.pid, self.exe_link.as_path(), self.exe.as_path());
        let found = objects::resolve(&self.patterns, std::slice::from_ref(obj), target, true).ok()?;
        notes.extend(found.notes.iter().map(|n| format!("{} loaded after attach: {n}", obj.path)));
        if found.functions.is_empty() {
            return None;
        }
        if self.avoid_unwind && !found.unwind_risks.is_empty() {
            notes.push(format!(
                "{} loaded after attach: not traced, it can unwind through traced functions ({}), which a return \
                 probe turns into an abort; pass --allow-unwind-risk or --entry-only",
                obj.path,
                found.unwind_risks.join(", ")
            ));
            return None;
        }
        Some(found)
    }
}

/// "a, b, c and 4 more functions" (or "function a").
fn list<'a>(names: impl Iterator<Item = &'a str>, count: usize) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<&str> = names.take(SHOWN).collect();
    let more = if count > SHOWN { format!(" and {} more", count - SHOWN) } else { String::new() };
    let noun = if count == 1 { "function" } else { "functions" };
    format!("{count} {noun} ({}{more})", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_a_few_functions() {
        assert_eq!(list(["f"].into_iter(), 1), "1 function (f)");
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        assert_eq!(list(names.into_iter(), 7), "7 functions (a, b, c, d, e and 2 more)");
    }
}
