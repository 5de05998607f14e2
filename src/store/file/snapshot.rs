//! Snapshots: the whole state in one file, for compaction and backups.
//!
//! Compaction starts the next journal generation under the queue's lock and writes the
//! state as of that moment to `snapshot-<generation>.snap` (to `.tmp`, synced, renamed,
//! directory synced); then the older journals and snapshots are removed: the directory holds
//! one snapshot and the journal after it. A backup is a compaction whose snapshot is also
//! linked into `backups/<time>/`: a directory that is itself a data directory (start
//! switchyard on it, or copy it elsewhere).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::journal::{encode, journal_name, sync_dir};
use crate::store::memory::changes::Frame;
use crate::store::StoreError;

/// The first bytes of a snapshot file (the last four: the format's version).
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"SWYS\x01\0\0\0";

/// The name of generation `generation`'s snapshot file.
pub fn snapshot_name(generation: u64) -> String {
    format!("snapshot-{generation:016}.snap")
}

fn unavailable(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("file store: {what} {}: {e}", path.display()))
}

/// Writes `frames` as generation `generation`'s snapshot in `dir`; returns its path and size.
pub fn write(dir: &Path, generation: u64, frames: &[Frame]) -> Result<(PathBuf, u64), StoreError> {
    let path = dir.join(snapshot_name(generation));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(generation)));
    let written = (|| -> std::io::Result<u64> {
        let file = File::create(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&SNAPSHOT_MAGIC)?;
        let mut size = SNAPSHOT_MAGIC.len() as u64;
        for frame in frames {
            let bytes = encode(frame).map_err(std::io::Error::other)?;
            out.write_all(&bytes)?;
            size += bytes.len() as u64;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(size)
    })();
    let size = match written {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(unavailable("cannot write", &tmp, e));
        }
    };
    std::fs::rename(&tmp, &path).map_err(|e| unavailable("cannot rename", &tmp, e))?;
    sync_dir(dir).map_err(|e| unavailable("cannot sync", dir, e))?;
    Ok((path, size))
}

/// Removes the journals and snapshots older than `generation` (its snapshot holds them).
pub fn remove_older(dir: &Path, generation: u64) {
    for g in (0..generation).rev() {
        let journal = dir.join(journal_name(g));
        let snapshot = dir.join(snapshot_name(g));
        let (a, b) = (journal.exists(), snapshot.exists());
        if !a && !b {
            break;
        }
        for path in [journal, snapshot] {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove a compacted file");
                }
            }
        }
    }
}

/// Links (or copies) the snapshot at `snapshot` into `dir/backups/<time>/`; returns that
/// directory.
pub fn keep_as_backup(dir: &Path, snapshot: &Path) -> Result<PathBuf, StoreError> {
    let name = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let target = dir.join("backups").join(name);
    std::fs::create_dir_all(&target).map_err(|e| unavailable("cannot make", &target, e))?;
    let file_name = snapshot.file_name().unwrap_or_default();
    let copy = target.join(file_name);
    if std::fs::hard_link(snapshot, &copy).is_err() {
        std::fs::copy(snapshot, &copy).map_err(|e| unavailable("cannot copy to", &copy, e))?;
    }
    sync_dir(&target).map_err(|e| unavailable("cannot sync", &target, e))?;
    Ok(target)
}
