//! Opening a data directory: the lock that keeps a second process out, and reading the
//! newest snapshot and the journals after it back, frame by frame.
//!
//! A directory holds `LOCK`, `snapshot-<g>.snap` (the whole state when journal `g` was
//! started; written to `.tmp`, synced, then renamed, so one that exists is whole) and
//! `journal-<g>.log` for each generation from the newest snapshot's on. Start-up reads the
//! newest snapshot, then each journal in order. A frame that is not whole (short, or its
//! CRC-32 does not match) at the end of the newest journal is a torn write: a write a crash
//! interrupted, which no caller was answered for. Its bytes are kept beside the journal
//! (`<journal>.torn-<offset>`), the journal is cut there, and start-up goes on with a
//! warning. Anything else that does not read back (a damaged snapshot, a bad frame in an
//! older journal, a missing generation, a frame that does not decode) stops start-up with
//! the file and offset.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::journal::{journal_name, DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER, JOURNAL_MAGIC};
use super::snapshot::{snapshot_name, SNAPSHOT_MAGIC};
use crate::store::memory::changes::Frame;

/// Why a data directory cannot be used.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("the file store at {path} is in use by another switchyard process{holder}; stop it first, or give this one another `store.path`")]
    InUse { path: PathBuf, holder: String },
    #[error("the file store at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the file store's {file} is damaged at byte {offset}: {reason}. It was not written by an interrupted write (those are recovered); restore the directory from a backup (README, \"Backups\")")]
    Damaged {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Takes the directory's lock (held while the returned file is open); made if missing.
pub fn lock(dir: &Path) -> Result<File, OpenError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(OpenError::InUse {
                path: dir.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
    }
    file.set_len(0).map_err(io(&path))?;
    (&file)
        .write_all_at_start(std::process::id().to_string().as_bytes())
        .map_err(io(&path))?;
    Ok(file)
}

trait WriteAtStart {
    fn write_all_at_start(self, bytes: &[u8]) -> std::io::Result<()>;
}

impl WriteAtStart for &File {
    fn write_all_at_start(mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        self.seek(std::io::SeekFrom::Start(0))?;
        self.write_all(bytes)
    }
}

/// What the directory holds, by generation.
#[derive(Debug, Default)]
pub struct Files {
    /// The newest whole snapshot's generation.
    pub snapshot: Option<u64>,
    /// Journal generations to read, in order (from the snapshot's on).
    pub journals: Vec<u64>,
    /// Files older than the snapshot (left by a compaction that stopped before removing them).
    pub stale: Vec<PathBuf>,
}

/// Lists the directory (and removes leftover `.tmp` files of an interrupted snapshot).
pub fn scan(dir: &Path) -> Result<Files, OpenError> {
    let mut snapshots = Vec::new();
    let mut journals = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let generation = |prefix: &str, suffix: &str| {
            name.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(suffix))
                .and_then(|g| g.parse::<u64>().ok())
        };
        if let Some(g) = generation("snapshot-", ".snap") {
            snapshots.push(g);
        } else if let Some(g) = generation("journal-", ".log") {
            journals.push(g);
        } else if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    snapshots.sort_unstable();
    journals.sort_unstable();
    let snapshot = snapshots.last().copied();
    let from = snapshot.unwrap_or(0);
    let mut files = Files {
        snapshot,
        ..Files::default()
    };
    for g in snapshots.iter().filter(|g| **g < from) {
        files.stale.push(dir.join(snapshot_name(*g)));
    }
    for g in journals {
        if g < from {
            files.stale.push(dir.join(journal_name(g)));
        } else {
            files.journals.push(g);
        }
    }
    // Generations follow one another: a gap means a journal is missing.
    for (expect, g) in (from..).zip(files.journals.iter()) {
        if *g != expect {
            return Err(OpenError::Damaged {
                file: dir.join(journal_name(expect)),
                offset: 0,
                reason: format!(
                    "the file is missing (the next one found is {})",
                    journal_name(*g)
                ),
            });
        }
    }
    Ok(files)
}

/// How a file's frames ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte is in a whole frame.
    Whole,
    /// The bytes from this offset on are not a whole frame.
    Torn(u64),
}

/// Reads the frames of one file (its header must be `magic`), handing each to `each`;
/// returns how the file ended and its length.
pub fn read_frames(
    path: &Path,
    magic: &[u8; 8],
    mut each: impl FnMut(Frame) -> Result<(), String>,
) -> Result<(End, u64), OpenError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(path))?;
    let len = bytes.len() as u64;
    if bytes.len() < magic.len() {
        return Ok((End::Torn(0), len));
    }
    if bytes[..magic.len()] != magic[..] {
        return Err(OpenError::Damaged {
            file: path.to_path_buf(),
            offset: 0,
            reason: "it does not start as a switchyard file store file of this version".into(),
        });
    }
    let mut at = magic.len();
    while at < bytes.len() {
        let Some(payload) = whole_frame(&bytes[at..]) else {
            // A write interrupted at the end leaves no whole frame after it; damage in the
            // middle of the file does.
            if let Some(next) = (at + 1..bytes.len()).find(|o| whole_frame(&bytes[*o..]).is_some())
            {
                return Err(OpenError::Damaged {
                    file: path.to_path_buf(),
                    offset: at as u64,
                    reason: format!("a frame does not read back, and a whole frame follows at byte {next} (not an interrupted write)"),
                });
            }
            return Ok((End::Torn(at as u64), len));
        };
        let size = payload.len();
        let frame: Frame = postcard::from_bytes(payload).map_err(|e| OpenError::Damaged {
            file: path.to_path_buf(),
            offset: at as u64,
            reason: format!("a whole frame does not decode: {e}"),
        })?;
        each(frame).map_err(|reason| OpenError::Damaged {
            file: path.to_path_buf(),
            offset: at as u64,
            reason,
        })?;
        at += FRAME_HEADER + size;
    }
    Ok((End::Whole, len))
}

/// The payload of the whole frame `bytes` starts with, if it does (a length that fits and a
/// matching CRC-32; an empty frame is never written).
fn whole_frame(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..FRAME_HEADER)?;
    let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if size == 0 || size > DEFAULT_MAX_FRAME_BYTES {
        return None;
    }
    let payload = bytes.get(FRAME_HEADER..FRAME_HEADER + size)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// Reads the snapshot and journals of `files` into `each`; returns the newest journal's
/// generation and its length once a torn write at its end is cut off (and kept aside).
pub fn read_all(
    dir: &Path,
    files: &Files,
    mut each: impl FnMut(Frame) -> Result<(), String>,
) -> Result<(u64, u64), OpenError> {
    if let Some(g) = files.snapshot {
        let path = dir.join(snapshot_name(g));
        let (end, _) = read_frames(&path, &SNAPSHOT_MAGIC, &mut each)?;
        if let End::Torn(offset) = end {
            return Err(OpenError::Damaged {
                file: path,
                offset,
                reason: "a frame is not whole (a snapshot is renamed into place only once written and synced)".into(),
            });
        }
    }
    let newest = files.journals.last().copied();
    for g in &files.journals {
        let path = dir.join(journal_name(*g));
        let (end, len) = read_frames(&path, &JOURNAL_MAGIC, &mut each)?;
        let End::Torn(offset) = end else {
            if Some(*g) == newest {
                return Ok((*g, len));
            }
            continue;
        };
        if Some(*g) != newest {
            return Err(OpenError::Damaged {
                file: path,
                offset,
                reason: "a frame is not whole, and newer journals follow (only the newest can end in an interrupted write)".into(),
            });
        }
        if offset < len {
            cut_torn_tail(&path, offset, len)?;
        }
        return Ok((*g, offset));
    }
    Ok((files.snapshot.unwrap_or(0), 0))
}

/// Keeps the bytes of a torn write beside the journal and cuts the journal before them.
fn cut_torn_tail(path: &Path, offset: u64, len: u64) -> Result<(), OpenError> {
    let kept = PathBuf::from(format!("{}.torn-{offset}", path.display()));
    let bytes = std::fs::read(path).map_err(io(path))?;
    let tail = bytes.get(offset as usize..).unwrap_or_default();
    std::fs::write(&kept, tail).map_err(io(&kept))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    file.set_len(offset).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    tracing::warn!(
        journal = %path.display(),
        offset,
        dropped_bytes = len - offset,
        kept_in = %kept.display(),
        "the journal ended in a torn write (a write interrupted by a crash or power loss; no request was answered for it): cut there, the bytes kept aside"
    );
    Ok(())
}
