//! Thread and process names for the report, read from /proc while the target still exists (a
//! report written after it exited can no longer ask), and the wall clock the report starts at.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::app::App;

pub(super) fn read_comm(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim_end().to_string()).unwrap_or_default()
}

pub(super) fn thread_names(pid: u32) -> Vec<(u32, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .map(|tid| (tid, read_comm(&format!("/proc/{pid}/task/{tid}/comm"))))
        .collect()
}

/// Names threads seen in per-thread statistics while they still exist.
pub(super) fn learn_thread_names(app: &mut App) {
    let Some(latest) = app.session.latest() else { return };
    let pid = app.info.target.pid;
    let unknown: Vec<u32> = latest
        .threads
        .iter()
        .map(|t| t.tid)
        .filter(|tid| !app.info.thread_names.iter().any(|(t, _)| t == tid))
        .collect();
    for tid in unknown {
        let name = read_comm(&format!("/proc/{pid}/task/{tid}/comm"));
        if !name.is_empty() {
            app.info.thread_names.push((tid, name));
        }
    }
}

pub(super) fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
