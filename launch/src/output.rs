//! What the commands print on stdout, and how a closed stdout ends them.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`owlmesh job list | head -1`).
//! The commands print through [`outln!`] instead, which returns the write's error, and `main`
//! ends quietly with success when that error is a broken pipe: the reader has what it wanted.

use std::fmt;
use std::io::{self, Write as _};

/// Writes one line to stdout, like `println!`, and returns the write's error instead of
/// panicking on it.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes `text` and a newline to stdout and flushes it.
pub(crate) fn write_line(text: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_fmt(text)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

/// Whether an error comes from writing to a pipe whose reader has gone.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    let broken = |error: &io::Error| error.kind() == io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        // The CSV writer wraps the I/O error without naming it as its source.
        let csv_io = cause
            .downcast_ref::<csv::Error>()
            .and_then(|error| match error.kind() {
                csv::ErrorKind::Io(error) => Some(error),
                _ => None,
            });
        cause
            .downcast_ref::<io::Error>()
            .or(csv_io)
            .is_some_and(broken)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_stdout_is_recognised_through_the_csv_writer_and_context() {
        let closed = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::from(closed())));
        assert!(is_broken_pipe(&anyhow::Error::from(csv::Error::from(
            closed()
        ))));
        assert!(is_broken_pipe(
            &anyhow::Error::from(closed()).context("writing the export")
        ));
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&anyhow::Error::from(other)));
        assert!(!is_broken_pipe(&anyhow::anyhow!(
            "Broken pipe (os error 32)"
        )));
    }
}
