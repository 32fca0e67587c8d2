//! Terminal UI (placeholder until the ratatui views land): the loop falls back to text.

use anyhow::{Result, bail};

use crate::app::{App, Key};

pub struct Tui;

impl Tui {
    pub fn start() -> Result<Tui> {
        bail!("the terminal UI is not built yet")
    }

    pub fn draw(&mut self, _app: &App) -> Result<()> {
        Ok(())
    }

    pub fn stop(self) {}
}

pub async fn next_key(_ui: &mut Option<Tui>) -> Key {
    std::future::pending().await
}
