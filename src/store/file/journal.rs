//! The journal: every change the store makes, appended to `journal-<generation>.log` as
//! frames, and made durable in groups.
//!
//! A frame is `[length u32 LE][CRC-32 of the payload u32 LE][payload]`, the payload a
//! `postcard` encoding of one call's [`Frame`]; a file starts with an 8-byte header
//! ([`JOURNAL_MAGIC`]). Appending only copies the frame into a buffer (under the lock of the
//! store that made the change, so frames are in the order the changes were made). A caller
//! that must not answer before its changes are on disk calls [`Journal::commit`]: on the
//! blocking pool it writes what is buffered and `fdatasync`s the file. One sync runs at a
//! time: calls that come while one runs wait for it, and the first of them that is not
//! covered by it then writes and syncs everything buffered meanwhile, its own frames and
//! every other waiter's (group commit). So a burst of concurrent requests shares one sync
//! per round, however many there are. Syncs that overlap cover fewer requests each, and each
//! costs CPU of its own (docs/PERFORMANCE.md, "The file store's syncs").
//!
//! A failed write (a full disk) keeps what was not written in the buffer and fails the
//! commit (503); the next commit writes it again, so once there is room the file holds every
//! change in order. A failed `fdatasync` poisons the journal: what the kernel still holds is
//! unknown after one, so every later call fails until a restart reads the files again.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::store::memory::changes::{ChangeLog, Frame};
use crate::store::StoreError;

/// The first bytes of a journal file (the last four: the format's version).
pub const JOURNAL_MAGIC: [u8; 8] = *b"SWYJ\x01\0\0\0";

/// Bytes before a frame's payload: its length and CRC-32.
pub const FRAME_HEADER: usize = 8;

/// The largest frame read back (a frame is one call's changes; a snapshot cuts its frames
/// small). A length over it is a torn or damaged frame.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 256 << 20;

/// Encodes `frame` with its header.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; FRAME_HEADER];
    out = postcard::to_extend(frame, out).map_err(|e| e.to_string())?;
    let len = out.len() - FRAME_HEADER;
    if len > DEFAULT_MAX_FRAME_BYTES {
        return Err(format!("a frame of {len} bytes is over the limit"));
    }
    let crc = crc32fast::hash(&out[FRAME_HEADER..]);
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The journal file being appended to, and what is buffered for it.
struct Inner {
    file: Option<Arc<File>>,
    generation: u64,
    /// Encoded frames not written yet.
    buf: Vec<u8>,
    /// Position (over every generation) after the last buffered byte.
    appended: u64,
    /// Position after the last byte written to a file.
    written: u64,
    /// Bytes in the current file.
    file_len: u64,
    /// The last write failed with this (the unwritten rest is in `buf`).
    write_error: Option<String>,
}

/// The journal (see the module doc).
pub struct Journal {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Position up to which every byte is on disk.
    synced: AtomicU64,
    /// Held while a sync runs: one at a time (see the module doc).
    syncing: Mutex<()>,
    /// Set by [`Journal::write_soon`] for the store's background thread
    /// ([`Journal::wait_for_writes`]).
    write_wanted: Mutex<bool>,
    wake: Condvar,
    /// Set when a sync failed or a frame could not be encoded: every call fails.
    poisoned: Mutex<Option<String>>,
}

/// The name of generation `generation`'s journal file.
pub fn journal_name(generation: u64) -> String {
    format!("journal-{generation:016}.log")
}

impl Journal {
    /// A journal in `dir`, not open yet ([`Journal::open`]).
    pub fn new(dir: &Path) -> Journal {
        Journal {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner {
                file: None,
                generation: 0,
                buf: Vec::new(),
                appended: 0,
                written: 0,
                file_len: 0,
                write_error: None,
            }),
            synced: AtomicU64::new(0),
            syncing: Mutex::new(()),
            write_wanted: Mutex::new(false),
            wake: Condvar::new(),
            poisoned: Mutex::new(None),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every change under the lock leaves the positions and the buffer in step.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poison(&self, why: String) -> StoreError {
        tracing::error!(error = %why, "the file store stopped taking changes; restart switchyard");
        let mut p = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
        p.get_or_insert(why);
        StoreError::Unavailable(format!("file store: {}", p.as_deref().unwrap_or_default()))
    }

    fn poisoned(&self) -> Option<String> {
        self.poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Appends to generation `generation`'s file (made if missing), whose first `len` bytes
    /// are whole frames (the rest, a torn write, was cut off by the caller).
    pub fn open(&self, generation: u64, len: u64) -> std::io::Result<()> {
        let path = self.dir.join(journal_name(generation));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let mut len = len;
        if len < JOURNAL_MAGIC.len() as u64 {
            file.set_len(0)?;
            file.write_all(&JOURNAL_MAGIC)?;
            file.sync_all()?;
            sync_dir(&self.dir)?;
            len = JOURNAL_MAGIC.len() as u64;
        }
        let mut g = self.inner();
        g.file = Some(Arc::new(file));
        g.generation = generation;
        g.file_len = len;
        Ok(())
    }

    /// The generation being appended to and its file's length.
    pub fn position(&self) -> (u64, u64) {
        let g = self.inner();
        (g.generation, g.file_len + g.buf.len() as u64)
    }

    /// Position after everything appended so far.
    pub fn appended(&self) -> u64 {
        self.inner().appended
    }

    /// Position up to which everything is on disk (synced).
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Fails when the journal cannot take changes now: poisoned, or the last write failed
    /// and writing the rest again fails too (a full disk).
    pub fn ready(&self) -> Result<(), StoreError> {
        if let Some(why) = self.poisoned() {
            return Err(StoreError::Unavailable(format!("file store: {why}")));
        }
        let mut g = self.inner();
        if g.write_error.is_some() {
            write_out(&mut g)?;
        }
        Ok(())
    }

    /// Whether changes wait in the buffer, not written yet.
    pub fn unwritten(&self) -> bool {
        !self.inner().buf.is_empty()
    }

    /// Whether the last write failed (and nothing was written since).
    pub fn failing(&self) -> bool {
        self.poisoned().is_some() || self.inner().write_error.is_some()
    }

    /// Returns once everything appended up to `upto` is on disk (writes and syncs on the
    /// blocking pool).
    pub async fn commit(self: &Arc<Self>, upto: u64) -> Result<(), StoreError> {
        if self.synced() >= upto {
            return Ok(());
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.sync_to(upto))
            .await
            .map_err(|e| StoreError::Unavailable(format!("file store: sync task: {e}")))?
    }

    /// Writes what is buffered without syncing it (blocking; the kernel has it then, so it
    /// survives the process being killed).
    pub fn write(&self) -> Result<(), StoreError> {
        if let Some(why) = self.poisoned() {
            return Err(StoreError::Unavailable(format!("file store: {why}")));
        }
        write_out(&mut self.inner())
    }

    /// Asks the background thread to write what is buffered, without waiting for it (a
    /// caller on the actors' threads: a settle). Survives `kill -9` once written, a few
    /// microseconds later.
    pub fn write_soon(&self) {
        *self.write_wanted.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_one();
    }

    /// The background thread's wait: returns true when a write was asked for, false after
    /// `timeout` without one.
    pub fn wait_for_writes(&self, timeout: Duration) -> bool {
        let wanted = self.write_wanted.lock().unwrap_or_else(|e| e.into_inner());
        let (mut wanted, _) = self
            .wake
            .wait_timeout_while(wanted, timeout, |w| !*w)
            .unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *wanted, false)
    }

    /// Writes and syncs everything up to `upto` (blocking).
    pub fn sync_to(&self, upto: u64) -> Result<(), StoreError> {
        if let Some(why) = self.poisoned() {
            return Err(StoreError::Unavailable(format!("file store: {why}")));
        }
        if self.synced() >= upto {
            return Ok(());
        }
        // Wait for the sync that runs (it may cover `upto`), then sync what it did not.
        let _one = self.syncing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = self.poisoned() {
            return Err(StoreError::Unavailable(format!("file store: {why}")));
        }
        if self.synced() >= upto {
            return Ok(());
        }
        let (file, end) = {
            let mut g = self.inner();
            // Everything buffered, so that this sync covers the calls waiting behind it too.
            let wrote = write_out(&mut g);
            if g.written < upto {
                wrote?;
            }
            let Some(file) = g.file.clone() else {
                return Err(StoreError::Unavailable("file store: not open".into()));
            };
            (file, g.written)
        };
        file.sync_data()
            .map_err(|e| self.poison(format!("fdatasync of the journal failed: {e}")))?;
        self.synced.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    /// Starts the next generation's file (compaction): writes and syncs the current one,
    /// then appends to a new one from here on. Called under the queue's lock, so the changes
    /// before it and after it are split exactly there. Returns the new generation.
    pub fn rotate(&self) -> Result<u64, StoreError> {
        let mut g = self.inner();
        write_out(&mut g)?;
        if let Some(file) = &g.file {
            file.sync_data()
                .map_err(|e| self.poison(format!("fdatasync of the journal failed: {e}")))?;
        }
        self.synced.fetch_max(g.written, Ordering::AcqRel);
        let generation = g.generation + 1;
        let path = self.dir.join(journal_name(generation));
        let made = (|| -> std::io::Result<File> {
            let mut file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            file.write_all(&JOURNAL_MAGIC)?;
            file.sync_all()?;
            sync_dir(&self.dir)?;
            Ok(file)
        })();
        let file = made.map_err(|e| {
            let _ = std::fs::remove_file(&path);
            StoreError::Unavailable(format!("file store: cannot start {}: {e}", path.display()))
        })?;
        g.file = Some(Arc::new(file));
        g.generation = generation;
        g.file_len = JOURNAL_MAGIC.len() as u64;
        Ok(generation)
    }
}

/// Writes the buffer to the file; on an error keeps what was not written (and says so).
fn write_out(g: &mut Inner) -> Result<(), StoreError> {
    let Some(file) = g.file.clone() else {
        return Err(StoreError::Unavailable("file store: not open".into()));
    };
    let mut done = 0;
    let result = loop {
        if done == g.buf.len() {
            break Ok(());
        }
        match (&*file).write(&g.buf[done..]) {
            Ok(0) => break Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    g.buf.drain(..done);
    g.written += done as u64;
    g.file_len += done as u64;
    match result {
        Ok(()) => {
            if g.write_error.take().is_some() {
                tracing::info!("the file store's journal is written again");
            }
            Ok(())
        }
        Err(e) => {
            if g.write_error.is_none() {
                tracing::error!(error = %e, unwritten = g.buf.len(), "the file store cannot write its journal; ingest answers 503 until it can");
            }
            let msg = format!("file store: cannot write the journal: {e}");
            g.write_error = Some(msg.clone());
            Err(StoreError::Unavailable(msg))
        }
    }
}

/// Syncs a directory (a file made or renamed in it is then found after a crash).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl ChangeLog for Journal {
    fn append(&self, frame: &Frame) {
        match encode(frame) {
            Ok(bytes) => {
                let mut g = self.inner();
                g.appended += bytes.len() as u64;
                g.buf.extend_from_slice(&bytes);
            }
            Err(e) => {
                self.poison(format!("a change could not be encoded: {e}"));
            }
        }
    }
}
