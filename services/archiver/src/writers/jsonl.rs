//! The JSON-lines writer: appends each job's new items to `<data_dir>/<job_id>.jsonl`.
//!
//! A crash in the middle of an append leaves a partial last line. The first append to a file
//! in this process cuts such a line off (keeping it in `<file>.torn`) so that the file stays
//! valid JSON lines and the next records start on a line of their own. With power-loss
//! durability every append is flushed to disk before the batch is acknowledged.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::error::{ArchiverError, Result};

/// Bytes read at a time while looking back from the end of a file for its last newline.
const TAIL_CHUNK_BYTES: u64 = 64 * 1024;

/// Appends lines to one file per job under a folder.
#[derive(Debug)]
pub(crate) struct JsonLinesWriter {
    dir: PathBuf,
    /// Flush every append to disk before it counts as written.
    sync: bool,
    /// Serializes appends, so that the lines of two batches never interleave; holds the files
    /// already checked for a torn last line by this process.
    checked: Mutex<HashSet<PathBuf>>,
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
    /// A writer into `dir`, which is created on the first append if missing; `sync` flushes
    /// every append to disk before it returns.
    pub(crate) fn new(dir: PathBuf, sync: bool) -> Self {
        Self {
            dir,
            sync,
            checked: Mutex::new(HashSet::new()),
        }
    }

    /// The file that holds `job_id`'s lines.
    pub(crate) fn path_for(&self, job_id: &str) -> PathBuf {
        self.dir.join(job_file_name(job_id))
    }

    /// Appends `lines` (whole lines, each ending in `\n`) to the job's file in one write,
    /// first cutting off a torn last line left by a crash.
    pub(crate) async fn append(&self, job_id: &str, lines: &[u8]) -> Result<()> {
        let path = self.path_for(job_id);
        let mut checked = self.checked.lock().await;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io_error(&self.dir))?;
        let created =
            !checked.contains(&path) && !tokio::fs::try_exists(&path).await.unwrap_or(false);
        if !checked.contains(&path) {
            let checking = path.clone();
            let repaired = tokio::task::spawn_blocking(move || repair_torn_tail(&checking))
                .await
                .map_err(|join| std::io::Error::other(join.to_string()))
                .and_then(|repaired| repaired)
                .map_err(io_error(&path))?;
            if let Some(torn) = repaired {
                tracing::warn!(
                    file = %path.display(),
                    kept_bytes = torn.kept_bytes,
                    torn_bytes = torn.torn_bytes,
                    moved_to = %torn.moved_to.display(),
                    "json-lines file ended in a partial line: cut back to its last whole line"
                );
            }
            checked.insert(path.clone());
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(io_error(&path))?;
        file.write_all(lines).await.map_err(io_error(&path))?;
        file.flush().await.map_err(io_error(&path))?;
        if self.sync {
            file.sync_data().await.map_err(io_error(&path))?;
            if created {
                // A new file's name lives in its folder: without this a power loss may lose
                // the whole file.
                sync_folder(&self.dir).await.map_err(io_error(&self.dir))?;
            }
        }
        Ok(())
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiverError + use<> {
    let path = path.to_path_buf();
    move |source| ArchiverError::Io { path, source }
}

async fn sync_folder(dir: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

/// What [`repair_torn_tail`] cut off.
#[derive(Debug, PartialEq, Eq)]
struct TornTail {
    /// Bytes of whole lines left in the file.
    kept_bytes: u64,
    /// Bytes of the partial line cut off.
    torn_bytes: u64,
    /// Where the partial line was kept.
    moved_to: PathBuf,
}

/// Cuts a partial last line (one without its `\n`) off the file at `path`, appending it to
/// `<path>.torn` first so nothing is thrown away. A missing or empty file, or one that ends
/// in a newline, is left alone.
fn repair_torn_tail(path: &Path) -> std::io::Result<Option<TornTail>> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let length = file.metadata()?.len();
    let kept_bytes = match last_newline_end(&mut file, length)? {
        end if end == length => return Ok(None),
        end => end,
    };
    let mut fragment = Vec::new();
    file.seek(SeekFrom::Start(kept_bytes))?;
    file.read_to_end(&mut fragment)?;
    let mut moved_to = path.as_os_str().to_owned();
    moved_to.push(".torn");
    let moved_to = PathBuf::from(moved_to);
    let mut aside = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&moved_to)?;
    aside.write_all(&fragment)?;
    aside.write_all(b"\n")?;
    aside.sync_data()?;
    file.set_len(kept_bytes)?;
    file.sync_data()?;
    Ok(Some(TornTail {
        kept_bytes,
        torn_bytes: length - kept_bytes,
        moved_to,
    }))
}

/// The offset just past the last `\n` in the first `length` bytes of `file` (0 when none).
fn last_newline_end(file: &mut std::fs::File, length: u64) -> std::io::Result<u64> {
    let mut end = length;
    let mut chunk = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(TAIL_CHUNK_BYTES);
        chunk.resize(usize::try_from(end - start).unwrap_or(usize::MAX), 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        if let Some(at) = chunk.iter().rposition(|byte| *byte == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
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
