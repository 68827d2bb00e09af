//! The local terminal of `sandboxer shell`: whether stdin is one, its size,
//! and raw mode for as long as a guard lives.

use std::io::IsTerminal;

use anyhow::Context;
use rustix::termios::{self, OptionalActions, Termios};

use sandboxer_core::domain::process::PTY_MAX_SIDE;

/// The size a terminal is given when there is none to measure.
pub(super) const DEFAULT_SIZE: (u16, u16) = (80, 24);

pub(super) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Columns and rows of the terminal on stdin, within what the service
/// takes; `DEFAULT_SIZE` when stdin is not a terminal.
pub(super) fn size() -> (u16, u16) {
    match termios::tcgetwinsize(std::io::stdin()) {
        Ok(size) if size.ws_col > 0 && size.ws_row > 0 => {
            (size.ws_col.min(PTY_MAX_SIDE), size.ws_row.min(PTY_MAX_SIDE))
        }
        _ => DEFAULT_SIZE,
    }
}

/// Raw mode on stdin's terminal while it lives: keys go to the remote
/// terminal as typed (Ctrl-C included) and its output comes back as sent.
/// Dropping it puts the saved settings back, on every way out: a return,
/// an error, a panic's unwinding.
pub(super) struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub(super) fn enter() -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).context("reading the terminal's settings")?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)
            .context("putting the terminal in raw mode")?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing to do about a terminal that is gone.
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}
