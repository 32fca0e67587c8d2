//! The journal: one text line per order or fill, buffered in memory and
//! written with write(2) in blocks, fsynced only when injected.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::engine::Outbound;
use crate::inject::{Fired, Injector};

/// Bytes buffered before a write(2); about a hundred records.
const FLUSH_THRESHOLD: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot create journal {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write journal {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot fsync journal {path}")]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    fsyncs: u64,
    inject: Injector,
}

impl Journal {
    /// Creates (or truncates) the journal at `path`.
    pub fn create(path: &Path, inject: Injector) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|source| JournalError::Open { path: path.to_owned(), source })?;
        Ok(Journal { path: path.to_owned(), file, buf: Vec::with_capacity(FLUSH_THRESHOLD * 2), fsyncs: 0, inject })
    }

    pub fn injected(&self) -> crate::inject::InjectCounts {
        self.inject.counts()
    }

    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    /// Stage `journal`: appends the record of one outbound message.
    #[inline(never)]
    pub fn append(&mut self, msg: &Outbound) -> Result<(), JournalError> {
        let fired = self.inject.fire();
        // Writing into a Vec cannot fail.
        let _ = match msg {
            Outbound::Order(o) => {
                writeln!(self.buf, "O,{},{},{},{}", o.id, char::from(o.side.to_wire()), o.price, o.qty)
            }
            Outbound::Fill(f) => writeln!(
                self.buf,
                "F,{},{},{},{},{}",
                f.taker_id,
                f.maker_id,
                char::from(f.taker_side.to_wire()),
                f.price,
                f.qty
            ),
        };
        if self.buf.len() >= FLUSH_THRESHOLD {
            self.flush()?;
        }
        if fired == Fired::FsyncDue {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes out everything buffered.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf).map_err(|source| JournalError::Write { path: self.path.clone(), source })?;
        self.buf.clear();
        Ok(())
    }

    /// Flushes, then fsyncs so the records are durable.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        self.file.sync_all().map_err(|source| JournalError::Sync { path: self.path.clone(), source })?;
        self.fsyncs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::Action;
    use crate::matching::{Order, Owner, TimeInForce};
    use crate::types::Side;

    fn order(id: u64) -> Outbound {
        Outbound::Order(Order {
            id,
            owner: Owner::Us,
            side: Side::Sell,
            price: 101,
            qty: 20,
            tif: TimeInForce::ImmediateOrCancel,
        })
    }

    #[test]
    fn records_are_buffered_then_written_and_fsynced_when_due() {
        let path = std::env::temp_dir().join(format!("target-app-journal-test-{}", std::process::id()));
        let mut journal =
            Journal::create(&path, Injector::new(Some(Action::Fsync { every: 100 }))).expect("create journal");
        for id in 0..250 {
            journal.append(&order(id)).expect("append");
        }
        assert_eq!(journal.fsyncs(), 2);
        assert_eq!(journal.injected().calls, 2);
        journal.flush().expect("flush");
        let text = std::fs::read_to_string(&path).expect("read journal");
        std::fs::remove_file(&path).expect("remove journal");
        assert_eq!(text.lines().count(), 250);
        assert_eq!(text.lines().next(), Some("O,0,S,101,20"));
    }
}
