//! The file store: the memory store's state, kept durable in local files by a journal of its
//! changes and snapshots (`store: {kind: file, path: ...}`, the default). One process at a
//! time (a lock file); nothing to run beside switchyard.
//!
//! Every call works on the memory store (`store::memory`), which hands each call's changes to
//! the [`Journal`] as one frame under the lock that made them (`memory::changes`). A record
//! call returns (and its requests get their 202) once its frame is written and `fdatasync`ed,
//! with every frame before it; concurrent calls share syncs (group commit, see `journal`). A
//! settle, claim or replay is written before it returns (the kernel has it: it survives a
//! `kill -9`) and synced with the next record call or within [`DEFAULT_FILE_SYNC_EVERY`]:
//! after a power loss a delivery settled in that window is sent again (at least once, as
//! after any crash in the redis store's window).
//!
//! At start-up the newest snapshot and the journals after it are applied to an empty memory
//! store (`recover`); every lease is gone then, so each lane's head is due at its retry time
//! (attempts kept) or now. When the journal grows past [`DEFAULT_FILE_COMPACT_BYTES`] (and
//! twice the last snapshot), the state is written as a new snapshot and the older files are
//! removed (`snapshot`). Reads never touch the disk.

mod documents;
mod journal;
mod recover;
mod snapshot;
#[cfg(test)]
mod tests;
mod timers;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use journal::{Journal, DEFAULT_MAX_FRAME_BYTES};
pub use recover::OpenError;

use super::documents::MemoryDocuments;
use super::groups::MemoryGroups;
use super::leases::LeaseOffer;
use super::memory::changes::{ChangeLog, Frame, Op};
use super::memory::{MemoryStore, Restore};
use super::query::{IncidentFilter, IncidentQuery};
use super::refs::{ExternalRefs, MemoryRefs};
use super::request_ids::{IdState, MemoryRequestIds, RequestIds};
use super::timers::MemoryTimers;
use super::{
    Claim, Claimed, DeliveryQueueStore, IncidentStore, QueueStatus, Recording, Routing, StoreError,
    StoredDeliveries,
};
use crate::model::delivery::Settlement;
use crate::model::{Alert, Event, Incident};

/// How many claimed deliveries one endpoint has out at once with the file store. A result
/// that came back but is not in a settle call yet is sent again after a `kill -9`, so this
/// is bounded like the redis store's, with room for the time a record call's sync takes.
pub const DEFAULT_FILE_ENDPOINT_CONCURRENCY: usize = 64;

/// How many disjoint groups of alerts the incident actor records at once with the file
/// store. One: the requests that come while a group waits for its sync form the next group,
/// so a sync covers as many requests as it can. Groups recorded side by side split the same
/// requests into more, smaller calls and syncs, each with a cost of its own
/// (docs/PERFORMANCE.md, "The file store's syncs"). More groups wait for their turn.
pub const DEFAULT_FILE_RECORD_GROUPS: usize = 1;

/// The longest a written change (a settle, a claim's duplicate) waits for a sync when no
/// record call syncs it sooner: what a power loss (not a `kill -9`) can take back.
pub const DEFAULT_FILE_SYNC_EVERY: Duration = Duration::from_secs(1);

/// The journal size from which the store is compacted into a new snapshot (also at least
/// twice the last snapshot's size, so a large state is not rewritten over and over).
pub const DEFAULT_FILE_COMPACT_BYTES: u64 = 64 << 20;

/// Incidents, deliveries, references and request ids in memory, journaled to `dir`.
pub struct FileStore {
    mem: MemoryStore,
    refs: MemoryRefs,
    ids: MemoryRequestIds,
    groups: MemoryGroups,
    timers: MemoryTimers,
    /// Silences and held incidents (see `documents`).
    docs: MemoryDocuments,
    /// One change of groups or timers at a time (see `timers`).
    side_lock: std::sync::Mutex<()>,
    journal: Arc<Journal>,
    dir: PathBuf,
    /// Held open: the directory's lock.
    _lock: std::fs::File,
    /// A compaction is under way.
    compacting: AtomicBool,
    /// Compact once the journal holds this many bytes.
    compact_at: AtomicU64,
    me: Weak<FileStore>,
}

/// What a snapshot or backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotInfo {
    /// The directory that holds it (for a backup: a data directory of its own).
    pub dir: PathBuf,
    pub generation: u64,
    pub bytes: u64,
}

impl FileStore {
    /// Opens (or makes) the data directory `dir`: takes its lock, reads it back, and starts
    /// the background sync. Refuses a directory another process holds, or one that does not
    /// read back (see `recover`).
    pub fn open(dir: &Path) -> Result<Arc<FileStore>, OpenError> {
        let started = Instant::now();
        let lock = recover::lock(dir)?;
        let files = recover::scan(dir)?;
        let journal = Arc::new(Journal::new(dir));
        let mut restore = Restore::new(MemoryStore::with_changes(journal.clone()));
        let (refs, ids) = (MemoryRefs::default(), MemoryRequestIds::default());
        let (groups, timers) = (MemoryGroups::default(), MemoryTimers::default());
        let docs = MemoryDocuments::default();
        let (wall, now) = (Utc::now(), Instant::now());
        let mut frames = 0u64;
        let (generation, len) = recover::read_all(dir, &files, |frame| {
            frames += 1;
            for op in &frame.ops {
                match op {
                    Op::Ref {
                        endpoint,
                        incident_id,
                        reference,
                    } => refs.remember(endpoint, incident_id, reference),
                    Op::RequestId { source, id, until } => {
                        if let Ok(ahead) = (*until - wall).to_std() {
                            ids.restore(source, id, now + ahead);
                        }
                    }
                    Op::Group { .. } | Op::GroupJoin { .. } | Op::Timer { .. } => {
                        timers::apply(op, &groups, &timers)
                    }
                    Op::Document { .. } => documents::apply(op, &docs),
                    _ => {}
                }
            }
            restore.apply(&frame).map_err(|e| e.to_string())
        })?;
        journal
            .open(generation, len)
            .map_err(|source| OpenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        for stale in &files.stale {
            let _ = std::fs::remove_file(stale);
        }
        let mem = restore.finish();
        let snapshot_bytes = files
            .snapshot
            .and_then(|g| std::fs::metadata(dir.join(snapshot::snapshot_name(g))).ok())
            .map_or(0, |m| m.len());
        let store = Arc::new_cyclic(|me| FileStore {
            mem,
            refs,
            ids,
            groups,
            timers,
            docs,
            side_lock: std::sync::Mutex::new(()),
            journal,
            dir: dir.to_path_buf(),
            _lock: lock,
            compacting: AtomicBool::new(false),
            compact_at: AtomicU64::new(DEFAULT_FILE_COMPACT_BYTES.max(2 * snapshot_bytes)),
            me: me.clone(),
        });
        tracing::info!(
            path = %dir.display(),
            generation,
            frames,
            took_ms = started.elapsed().as_millis() as u64,
            "file store opened"
        );
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("file-store-sync".into())
            .spawn(move || background_sync(weak))
            .map_err(|source| OpenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes (and syncs) everything appended so far.
    async fn commit(&self) -> Result<(), StoreError> {
        let upto = self.journal.appended();
        let r = self.journal.commit(upto).await;
        self.maybe_compact();
        r
    }

    /// Writes everything appended so far without waiting for a sync (survives `kill -9`).
    async fn write(&self) -> Result<(), StoreError> {
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || journal.write())
            .await
            .map_err(|e| StoreError::Unavailable(format!("file store: write task: {e}")))?
    }

    /// Appends one frame of `ops` (references, request ids) and syncs it.
    async fn log(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.journal.append(&Frame {
            events: Vec::new(),
            ops,
        });
        self.commit().await
    }

    /// Starts a compaction in the background when the journal has grown past its mark.
    fn maybe_compact(&self) {
        let (_, len) = self.journal.position();
        if len < self.compact_at.load(Ordering::Relaxed)
            || self.compacting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            self.compacting.store(false, Ordering::Release);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("file-store-compact".into())
            .spawn(move || {
                if let Err(e) = me.snapshot() {
                    tracing::warn!(error = %e, "file store compaction failed; tried again later");
                }
            });
        if spawned.is_err() {
            self.compacting.store(false, Ordering::Release);
        }
    }

    /// Compacts now: the whole state as a new snapshot, the files it replaces removed
    /// (blocking: run it off the actors' threads).
    pub fn compact(&self) -> Result<SnapshotInfo, StoreError> {
        while self.compacting.swap(true, Ordering::AcqRel) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.snapshot()
    }

    /// [`FileStore::compact`], by whoever set `compacting` (cleared at the end).
    fn snapshot(&self) -> Result<SnapshotInfo, StoreError> {
        let started = Instant::now();
        let (generation, mut frames) = self.mem.snapshot(|| self.journal.rotate());
        let result = generation.and_then(|generation| {
            frames.push(self.side_state());
            let paused_ms = started.elapsed().as_millis() as u64;
            let (_, bytes) = snapshot::write(&self.dir, generation, &frames)?;
            drop(frames);
            snapshot::remove_older(&self.dir, generation);
            self.compact_at
                .store(DEFAULT_FILE_COMPACT_BYTES.max(2 * bytes), Ordering::Relaxed);
            tracing::info!(
                generation,
                bytes,
                paused_ms,
                took_ms = started.elapsed().as_millis() as u64,
                "file store compacted"
            );
            Ok(SnapshotInfo {
                dir: self.dir.clone(),
                generation,
                bytes,
            })
        });
        self.compacting.store(false, Ordering::Release);
        result
    }

    /// Compacts, then keeps the new snapshot as a backup in `backups/<time>/` (blocking).
    pub fn backup(&self) -> Result<SnapshotInfo, StoreError> {
        let info = self.compact()?;
        let path = self.dir.join(snapshot::snapshot_name(info.generation));
        let dir = snapshot::keep_as_backup(&self.dir, &path)?;
        tracing::info!(backup = %dir.display(), bytes = info.bytes, "file store backup written");
        Ok(SnapshotInfo { dir, ..info })
    }

    /// References, request ids, groups, timers and documents as one frame of ops.
    fn side_state(&self) -> Frame {
        let (wall, now) = (Utc::now(), Instant::now());
        let mut ops: Vec<Op> = self
            .refs
            .entries()
            .into_iter()
            .map(|(endpoint, incident_id, reference)| Op::Ref {
                endpoint,
                incident_id,
                reference,
            })
            .collect();
        ops.extend(
            self.ids
                .recorded_ids()
                .into_iter()
                .map(|(source, id, until)| Op::RequestId {
                    source,
                    id,
                    until: wall_at(wall, now, until),
                }),
        );
        ops.extend(timers::snapshot(&self.groups, &self.timers));
        ops.extend(documents::snapshot(&self.docs));
        Frame {
            events: Vec::new(),
            ops,
        }
    }
}

impl Drop for FileStore {
    /// Writes what is still buffered (a change whose write the store's thread was asked
    /// for), as a `BufWriter` does: a store opened again on the same directory reads it.
    fn drop(&mut self) {
        let _ = self.journal.write();
    }
}

/// `until` (an `Instant`) as a wall-clock time.
fn wall_at(wall: DateTime<Utc>, now: Instant, until: Instant) -> DateTime<Utc> {
    wall + chrono::Duration::from_std(until.saturating_duration_since(now))
        .unwrap_or(chrono::Duration::MAX)
}

/// Syncs what was written but not synced, every [`DEFAULT_FILE_SYNC_EVERY`], while the
/// store lives; compacts when due.
fn background_sync(store: Weak<FileStore>) {
    // Not the store: it is held only for a moment (its lock is released when it is dropped).
    let Some(journal) = store.upgrade().map(|s| s.journal.clone()) else {
        return;
    };
    let mut next_sync = Instant::now() + DEFAULT_FILE_SYNC_EVERY;
    loop {
        let left = next_sync.saturating_duration_since(Instant::now());
        if journal.wait_for_writes(left) {
            // Its error is logged (once) and kept for the next call to answer.
            let _ = journal.write();
        }
        if Instant::now() < next_sync {
            continue;
        }
        if store.strong_count() == 0 {
            return;
        }
        if let Err(e) = journal.sync_to(journal.appended()) {
            tracing::debug!(error = %e, "file store background sync");
        }
        if let Some(store) = store.upgrade() {
            store.maybe_compact();
        }
        next_sync = Instant::now() + DEFAULT_FILE_SYNC_EVERY;
    }
}

#[async_trait]
impl IncidentStore for FileStore {
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        routes: &dyn Routing,
        offer: &mut LeaseOffer,
    ) -> Result<Recording, StoreError> {
        // A journal that cannot write (a full disk) takes nothing new.
        self.journal.ready()?;
        // Applied in memory and appended to the journal's buffer; written and synced by
        // `persist` (with what the ingest does next: group joins, timers), or by a claim of
        // one of its deliveries, which writes first (a `kill -9` cannot take back an event
        // once sent).
        self.mem.record(alerts, now, routes, offer).await
    }

    async fn persist(&self) -> Result<(), StoreError> {
        // A failure (a full disk) answers 503; what was applied stays buffered and is
        // written once the disk has room, so the sender's retry is a repeat, as with a
        // lost answer.
        self.commit().await
    }

    async fn open_count(&self) -> Result<usize, StoreError> {
        self.mem.open_count().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.journal.ready()
    }

    fn concurrent_groups(&self) -> usize {
        DEFAULT_FILE_RECORD_GROUPS
    }
}

#[async_trait]
impl DeliveryQueueStore for FileStore {
    async fn claim(
        &self,
        endpoint: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        // Leases are not kept (after a restart every lane is due); a head found delivered
        // already is finished, written with the next write.
        let claim = self.mem.claim(endpoint, limit, lease).await?;
        // A head can be claimed while the record call that queued it waits for its sync:
        // its frame is written first, so a `kill -9` cannot take back an event once sent.
        if !claim.deliveries.is_empty() && self.journal.unwritten() {
            if let Err(e) = self.write().await {
                // Leased in memory already: sent, at worst once more than its record shows.
                tracing::warn!(endpoint, error = %e, "claimed deliveries whose record is not written yet");
            }
        }
        Ok(claim)
    }

    async fn settle_many(
        &self,
        endpoint: &str,
        settles: &[(Claimed, Settlement)],
    ) -> Result<QueueStatus, StoreError> {
        self.journal.ready()?;
        let status = self.mem.settle_many(endpoint, settles).await?;
        // Written by the background thread, not waited for: until then (microseconds; while
        // the disk is full, until it has room) a `kill -9` sends these deliveries again.
        self.journal.write_soon();
        Ok(status)
    }

    async fn deliveries(&self, endpoint: &str) -> Result<StoredDeliveries, StoreError> {
        self.mem.deliveries(endpoint).await
    }

    async fn replay_many(
        &self,
        endpoint: &str,
        delivery_ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.journal.ready()?;
        let ids = self.mem.replay_many(endpoint, delivery_ids).await?;
        self.commit().await?;
        Ok(ids)
    }

    async fn enqueue(
        &self,
        event: Arc<Event>,
        endpoints: &[Arc<str>],
    ) -> Result<usize, StoreError> {
        self.journal.ready()?;
        let pending = self.mem.enqueue(event, endpoints).await?;
        self.commit().await?;
        Ok(pending)
    }

    fn concurrency(&self) -> usize {
        DEFAULT_FILE_ENDPOINT_CONCURRENCY
    }

    fn is_durable(&self) -> bool {
        true
    }
}

#[async_trait]
impl IncidentQuery for FileStore {
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.mem.list_incidents(filter).await
    }

    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        self.mem.get_incident(id).await
    }
}

#[async_trait]
impl ExternalRefs for FileStore {
    async fn get(&self, endpoint: &str, incident_id: &str) -> Result<Option<String>, StoreError> {
        self.refs.get(endpoint, incident_id).await
    }

    async fn put(
        &self,
        endpoint: &str,
        incident_id: &str,
        reference: &str,
    ) -> Result<(), StoreError> {
        self.journal.ready()?;
        self.refs.remember(endpoint, incident_id, reference);
        self.log(vec![Op::Ref {
            endpoint: endpoint.to_string(),
            incident_id: incident_id.to_string(),
            reference: reference.to_string(),
        }])
        .await
    }
}

#[async_trait]
impl RequestIds for FileStore {
    async fn begin_recording(&self, source: &str, id: &str) -> Result<IdState, StoreError> {
        self.ids.begin_recording(source, id).await
    }

    async fn recorded(&self, source: &str, id: &str, window: Duration) -> Result<(), StoreError> {
        self.ids.recorded(source, id, window).await?;
        let until =
            Utc::now() + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        self.log(vec![Op::RequestId {
            source: source.to_string(),
            id: id.to_string(),
            until,
        }])
        .await
    }

    async fn forget(&self, source: &str, id: &str) -> Result<(), StoreError> {
        self.ids.forget(source, id).await
    }
}
