//! The JSON-lines writer: appends each job's new items to `<data_dir>/<job_id>.jsonl`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::error::{ArchiverError, Result};

/// Appends lines to one file per job under a folder.
#[derive(Debug)]
pub(crate) struct JsonLinesWriter {
    dir: PathBuf,
    /// Serializes appends, so that the lines of two batches never interleave.
    append_lock: Mutex<()>,
}

/// The file name of a job's lines: the job id with every byte outside `[A-Za-z0-9_.-]` (and a
/// leading dot) percent-encoded, so any job id is one safe file name, plus `.jsonl`.
pub(crate) fn job_file_name(job_id: &str) -> String {
    let mut name = String::with_capacity(job_id.len() + 6);
    for (index, byte) in job_id.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.');
        if plain && !(index == 0 && byte == b'.') {
            name.push(char::from(byte));
        } else {
            let _ = write!(name, "%{byte:02X}");
        }
    }
    name.push_str(".jsonl");
    name
}

impl JsonLinesWriter {
    /// A writer into `dir`, which is created on the first append if missing.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            append_lock: Mutex::new(()),
        }
    }

    /// The file that holds `job_id`'s lines.
    pub(crate) fn path_for(&self, job_id: &str) -> PathBuf {
        self.dir.join(job_file_name(job_id))
    }

    /// Appends `lines` (whole lines, each ending in `\n`) to the job's file in one write.
    pub(crate) async fn append(&self, job_id: &str, lines: &[u8]) -> Result<()> {
        let path = self.path_for(job_id);
        let _guard = self.append_lock.lock().await;
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ArchiverError::Io { path, source }
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io_error(&self.dir))?;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(io_error(&path))?;
        file.write_all(lines).await.map_err(io_error(&path))?;
        file.flush().await.map_err(io_error(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::job_file_name;

    #[test]
    fn job_ids_become_safe_file_names() {
        assert_eq!(job_file_name("news-2024_v1.2"), "news-2024_v1.2.jsonl");
        assert_eq!(job_file_name("../etc/passwd"), "%2E.%2Fetc%2Fpasswd.jsonl");
        assert_eq!(job_file_name("a b"), "a%20b.jsonl");
    }
}
