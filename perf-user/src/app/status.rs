//! The footer's one-line status (export written, reset, a probe detached, …): shown for a few
//! seconds of ticks, then gone, so that it never stays over the key hints.

use super::App;

/// How long a status line stays.
pub const STATUS_NS: u64 = 5_000_000_000;

impl App {
    /// Shows `msg` in the footer for `STATUS_NS` (counted in ticks: they go on after the target
    /// exited, when its clock stopped).
    pub fn set_status(&mut self, msg: impl Into<String>) {
        self.status = msg.into();
        self.status_ticks = STATUS_NS.div_ceil(self.tick_ns.max(1)).max(1);
    }

    /// One tick older; the status goes when its time is up.
    pub(super) fn age_status(&mut self) {
        self.status_ticks = self.status_ticks.saturating_sub(1);
        if self.status_ticks == 0 {
            self.status.clear();
        }
    }
}
