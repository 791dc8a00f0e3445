//! What `owlmesh up` tells the person at the terminal: whole lines, and one progress line
//! that redraws in place on a terminal (one line per update when piped, for logs and CI).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Standard output, shared by the supervisor and the demo.
#[derive(Debug, Clone)]
pub(super) struct Console {
    terminal: bool,
    /// Whether a progress line is drawn and not yet ended.
    mid_line: Arc<AtomicBool>,
}

impl Console {
    /// Output to this process's stdout.
    pub(super) fn new() -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            mid_line: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Prints a whole line, below the progress line if one is drawn.
    pub(super) fn line(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        if self.mid_line.swap(false, Ordering::Relaxed) {
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "{}", text.as_ref());
        let _ = out.flush();
    }

    /// Draws the progress line: in place on a terminal, as a new line otherwise.
    pub(super) fn progress(&self, text: &str) {
        if !self.terminal {
            self.line(text);
            return;
        }
        let mut out = std::io::stdout().lock();
        // Carriage return, the text, then clear what a longer previous line left behind.
        let _ = write!(out, "\r{text}\x1b[K");
        let _ = out.flush();
        self.mid_line.store(true, Ordering::Relaxed);
    }

    /// Ends the progress line, if one is drawn, so what follows starts on a line of its own.
    pub(super) fn end_progress(&self) {
        if self.mid_line.swap(false, Ordering::Relaxed) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out);
            let _ = out.flush();
        }
    }
}
