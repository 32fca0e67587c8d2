//! Thread and process names for the report, read from /proc while the target still exists (a
//! report written after it exited can no longer ask), and the wall clock the report starts at.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{app::App, target::proc};

pub(super) fn thread_names(pid: u32) -> Vec<(u32, String)> {
    proc::thread_names(pid)
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
        let name = proc::thread_comm(pid, tid);
        if !name.is_empty() {
            app.info.thread_names.push((tid, name));
        }
    }
}

pub(super) fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}
