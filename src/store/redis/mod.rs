//! The redis store: incidents, delivery dedup keys and the delivery queue in Redis, so that
//! nothing accepted is lost on a crash and several switchyard instances share one Redis.
//!
//! Every batch of alerts (the incident actor groups waiting requests into one) costs two round
//! trips: one pipelined read of the batch's incidents, and one Lua script (`record.lua`) that checks their versions and writes the transitions, the
//! event history and every routed delivery at once (compare-and-set: on a conflict with
//! another instance nothing is written and the batch is decided again). Delivery actors
//! `claim.lua` due lane heads under a lease and `settle.lua` them, many per script run. The key layout and the
//! consistency argument are in docs/ARCHITECTURE.md ("Redis store").

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig, Script};
use deadpool_redis::{Manager, Pool, Runtime};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::leases::LeaseOffer;
use super::{
    decide_once, Claim, Claimed, DeliveryDedup, DeliveryQueueStore, IncidentStore, Next,
    QueueStatus, Recorded, Recording, Routing, Settlement, StoreError, StoredDeliveries,
    StoredDelivery,
};
use crate::config::types::{StoreConfig, StoreKind};
use crate::model::delivery::{Attempt, DeliveryState};
use crate::model::transition::Outcome;
use crate::model::{Alert, Event, EventType, Incident, IncidentStatus, SourceRef};

/// Most Redis connections one instance opens. Calls share one multiplexed connection taken
/// from the pool; when it fails, the next call takes a checked one, waiting up to
/// [`DEFAULT_REDIS_WAIT_TIMEOUT`] when all are busy, then failing with 503.
pub const DEFAULT_REDIS_POOL_SIZE: usize = 16;
/// How long a request waits for a free pooled connection before it fails (503).
pub const DEFAULT_REDIS_WAIT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to Redis may take before the request fails (503).
pub const DEFAULT_REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one Redis command or script may take before the request fails (503).
pub const DEFAULT_REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a batch is decided again when another instance changed one of its incidents
/// in between; after that the request fails with 503 (the client retries).
pub const DEFAULT_RECORD_CAS_ATTEMPTS: usize = 16;
/// How many groups of alerts the incident actor records at once when no incident is in two
/// of them (each is a read and a script: two round trips during which the next group would
/// otherwise only wait). More waiting groups wait for one of these to finish.
pub const DEFAULT_RECORD_GROUPS_IN_FLIGHT: usize = 4;
/// How many events each incident's history keeps; older ones are trimmed.
pub const DEFAULT_INCIDENT_HISTORY: usize = 100;
/// How long a resolved incident (and its history) is kept; firing again before then reopens
/// nothing (a new incident is created either way), so this only bounds Redis memory.
pub const DEFAULT_RESOLVED_INCIDENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a delivery dedup key lives: an event is not delivered twice within this time.
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many finished (delivered or dead) deliveries the redis store keeps per endpoint, in
/// Redis, for the admin API. When full, the oldest finished delivery is forgotten.
pub const DEFAULT_DELIVERY_LOG_CAPACITY: usize = 10_000;

mod query;
mod request_ids;

pub use query::{SourceKinds, DEFAULT_EXTERNAL_REF_TTL};

const RECORD_LUA: &str = include_str!("record.lua");
/// The delivery-queue scripts begin with the helpers they share (`common.lua`).
const CLAIM_LUA: &str = concat!(include_str!("common.lua"), include_str!("claim.lua"));
const SETTLE_LUA: &str = concat!(include_str!("common.lua"), include_str!("settle.lua"));
const REPLAY_LUA: &str = concat!(include_str!("common.lua"), include_str!("replay.lua"));

/// The `store:` section for `kind: redis`, checked.
#[derive(Clone)]
pub struct RedisSpec {
    url: String,
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisSpec")
            .field("url", &"***")
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Why the redis store could not be built.
#[derive(Debug, Error)]
pub enum RedisBuildError {
    #[error("invalid redis URL: {0}")]
    Url(String),
    #[error("`key_prefix` must not be empty")]
    EmptyPrefix,
    #[error("redis pool: {0}")]
    Pool(String),
}

impl RedisSpec {
    /// `Some` for `kind: redis` (the URL parsed, nothing connected yet), `None` for memory.
    pub fn build(cfg: &StoreConfig) -> Result<Option<RedisSpec>, RedisBuildError> {
        if cfg.kind != StoreKind::Redis {
            return Ok(None);
        }
        let url = cfg.url.clone().unwrap_or_default();
        redis::Client::open(url.as_str()).map_err(|e| RedisBuildError::Url(e.to_string()))?;
        if cfg.key_prefix.is_empty() {
            return Err(RedisBuildError::EmptyPrefix);
        }
        Ok(Some(RedisSpec {
            url,
            key_prefix: cfg.key_prefix.clone(),
        }))
    }

    pub fn new(url: &str, key_prefix: &str) -> RedisSpec {
        RedisSpec {
            url: url.into(),
            key_prefix: key_prefix.into(),
        }
    }

    /// A pool with every timeout set (deadpool's default is none); connects lazily.
    pub fn pool(&self) -> Result<Pool, RedisBuildError> {
        let conn = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(DEFAULT_REDIS_CONNECT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_REDIS_RESPONSE_TIMEOUT));
        let manager = Manager::new_with_config(self.url.as_str(), conn)
            .map_err(|e| RedisBuildError::Url(e.to_string()))?;
        Pool::builder(manager)
            .max_size(DEFAULT_REDIS_POOL_SIZE)
            .wait_timeout(Some(DEFAULT_REDIS_WAIT_TIMEOUT))
            .create_timeout(Some(DEFAULT_REDIS_CONNECT_TIMEOUT))
            .recycle_timeout(Some(DEFAULT_REDIS_RESPONSE_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| RedisBuildError::Pool(e.to_string()))
    }
}

/// Incidents, dedup keys and delivery queues in Redis, under `key_prefix`.
pub struct RedisStore {
    pool: Pool,
    shared: std::sync::Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    /// The open count as of the last recorded batch (-1: not known yet).
    open: AtomicI64,
    /// This process's id, the base of its lease tokens.
    instance: String,
    claims: AtomicU64,
    record_script: Script,
    claim_script: Script,
    settle_script: Script,
    replay_script: Script,
    /// Source kinds by name, for incidents read back (`query`).
    source_kinds: RwLock<query::SourceKinds>,
}

/// A random wait of up to `attempt` milliseconds.
fn conflict_backoff(attempt: usize) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(random % (attempt as u64 * 1000).max(1))
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// One batch for `record.lua`, as the script's flat arguments (strings are passed to Lua as
/// they are: no JSON for the script to decode). The layout is in record.lua's header.
struct RecordBatch {
    args: Vec<String>,
    /// Every delivery written: (endpoint, delivery id, the event); a lane is its incident.
    deliveries: Vec<(Arc<str>, String, Arc<Event>)>,
}

impl RecordBatch {
    /// The script's closing lease arguments: token, e triples (endpoint, k, lease ms), e.
    fn lease_args(token: &str, offer: &LeaseOffer) -> Vec<String> {
        let mut args = vec![token.to_string()];
        let mut n = 0;
        for (endpoint, k, lease) in offer.reserved() {
            args.push(endpoint.to_string());
            args.push(k.to_string());
            args.push(lease.as_millis().to_string());
            n += 1;
        }
        args.push(n.to_string());
        args
    }

    /// Each endpoint's number of deliveries in the batch (at most one new lane each).
    fn per_endpoint(&self) -> Vec<(Arc<str>, usize)> {
        let mut want: Vec<(Arc<str>, usize)> = Vec::new();
        for (endpoint, _, _) in &self.deliveries {
            match want.iter_mut().find(|(e, _)| e == endpoint) {
                Some((_, n)) => *n += 1,
                None => want.push((endpoint.clone(), 1)),
            }
        }
        want
    }

    /// The heads the script leased (`leased`: their delivery ids), under `token`.
    fn leased(&self, token: &str, leased: &[String]) -> Vec<(Arc<str>, Claimed)> {
        if leased.is_empty() {
            return Vec::new();
        }
        let leased: HashSet<&str> = leased.iter().map(String::as_str).collect();
        self.deliveries
            .iter()
            .filter(|(_, id, _)| leased.contains(id.as_str()))
            .map(|(endpoint, id, event)| {
                (
                    endpoint.clone(),
                    Claimed {
                        delivery_id: id.clone(),
                        lane: event.incident.id.clone(),
                        event: Arc::clone(event),
                        attempts: Vec::new(),
                        lease: token.to_string(),
                    },
                )
            })
            .collect()
    }
}

impl RecordBatch {
    fn new(prefix: &str, checks: &[(String, u64, Option<Incident>)]) -> RecordBatch {
        let mut args = Vec::with_capacity(3 + 2 * checks.len() + 16 * checks.len());
        args.push(prefix.to_string());
        args.push(DEFAULT_INCIDENT_HISTORY.to_string());
        args.push(checks.len().to_string());
        for (k, v, _) in checks {
            args.push(k.clone());
            args.push(v.to_string());
        }
        RecordBatch {
            args,
            deliveries: Vec::new(),
        }
    }
}

/// An event without its incident: a delivery record keeps this (`env`) beside the incident's
/// JSON (`inc`), which is the same string `record.lua` writes to the incident, so the batch
/// carries the incident once per alert instead of twice.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: EventType,
    timestamp: DateTime<Utc>,
    source: &'a SourceRef,
    changes: Option<&'a crate::model::Changes>,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    timestamp: DateTime<Utc>,
    source: SourceRef,
    changes: Option<crate::model::Changes>,
}

/// A delivery as the scripts keep it: an entry of its lane while unfinished, of the log once
/// finished (the layout is in common.lua).
#[derive(Debug)]
struct Entry<'a> {
    id: &'a str,
    state: &'a str,
    attempts: &'a str,
    replay_of: Option<&'a str>,
    /// The incident JSON.
    incident: &'a str,
    envelope: &'a str,
}

/// Splits an entry; None for an entry cut short.
fn parse_entry(s: &str) -> Option<Entry<'_>> {
    let rest = s.strip_prefix("2\n")?;
    let mut f = rest.splitn(8, '\n');
    let id = f.next()?;
    let _lane = f.next()?;
    let _event_id = f.next()?;
    let replay_of = f.next()?;
    let state = f.next()?;
    let attempts = f.next()?;
    let incident = f.next()?;
    let envelope = f.next()?;
    Some(Entry {
        id,
        state,
        attempts,
        replay_of: (!replay_of.is_empty()).then_some(replay_of),
        incident,
        envelope,
    })
}

impl Entry<'_> {
    /// The event: the envelope with its incident.
    fn event(&self) -> Result<Event, StoreError> {
        let unreadable =
            |e: serde_json::Error| unavailable(format!("delivery {} unreadable: {e}", self.id));
        let env = serde_json::from_str::<Envelope>(self.envelope).map_err(unreadable)?;
        let mut incident = serde_json::from_str::<Incident>(self.incident).map_err(unreadable)?;
        incident.source = Some(env.source.clone());
        Ok(Event {
            id: env.id,
            kind: env.kind,
            timestamp: env.timestamp,
            source: env.source,
            incident,
            changes: env.changes,
        })
    }

    fn attempts(&self) -> Vec<Attempt> {
        serde_json::from_str(self.attempts).unwrap_or_default()
    }

    fn stored(&self) -> Result<StoredDelivery, StoreError> {
        Ok(StoredDelivery {
            id: self.id.to_string(),
            event: self.event()?,
            state: stored_state(self.state),
            attempts: self.attempts(),
            replay_of: self.replay_of.map(str::to_string),
        })
    }
}

#[derive(Serialize)]
struct HistoryEntry<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<&'a crate::model::Changes>,
}

impl RedisStore {
    /// A store on `pool`, its keys under `key_prefix`.
    pub fn new(pool: Pool, key_prefix: &str) -> RedisStore {
        RedisStore {
            pool,
            shared: std::sync::Mutex::new(None),
            prefix: key_prefix.to_string(),
            open: AtomicI64::new(-1),
            instance: uuid::Uuid::now_v7().simple().to_string(),
            claims: AtomicU64::new(0),
            record_script: Script::new(RECORD_LUA),
            claim_script: Script::new(CLAIM_LUA),
            settle_script: Script::new(SETTLE_LUA),
            replay_script: Script::new(REPLAY_LUA),
            source_kinds: RwLock::new(query::SourceKinds::new()),
        }
    }

    /// The configured sources' kinds (at start and on reload), for incidents read back.
    pub fn set_source_kinds(&self, kinds: query::SourceKinds) {
        *self.source_kinds.write().unwrap_or_else(|e| e.into_inner()) = kinds;
    }

    fn source_kind(&self, source: &str) -> Arc<str> {
        self.source_kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(source)
            .cloned()
            .unwrap_or_else(|| Arc::from("unknown"))
    }

    /// The shared connection: one multiplexed connection pipelines every concurrent call on
    /// one socket, so it is taken from the pool once (checked with a PING) and kept until a
    /// call fails, instead of a checkout (and its PING round trip) per call.
    async fn conn(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(conn) = self.shared_conn().clone() {
            return Ok(conn);
        }
        let pooled = self.pool.get().await.map_err(unavailable)?;
        let conn: MultiplexedConnection = (*pooled).clone();
        *self.shared_conn() = Some(conn.clone());
        Ok(conn)
    }

    fn shared_conn(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call failed: the next one gets a checked connection from the pool.
    fn broken(&self, e: impl std::fmt::Display) -> StoreError {
        *self.shared_conn() = None;
        unavailable(e)
    }

    fn incident_key(&self, alert: &Alert) -> String {
        format!(
            "{}:inc:{}:{}",
            self.prefix, alert.source.name, alert.dedup_key
        )
    }

    fn queue_prefix(&self, endpoint: &str) -> String {
        format!("{}:q:{endpoint}", self.prefix)
    }

    fn pending_key(&self) -> String {
        format!("{}:pending", self.prefix)
    }

    fn dedup_key(&self, endpoint: &str, event_id: &str) -> String {
        format!("{}:dedup:{endpoint}:{event_id}", self.prefix)
    }

    /// Decides a batch against the incidents as read: what each alert did and the script's
    /// input. Alerts for the same incident see each other's result, in order.
    fn plan(
        &self,
        alerts: &[Alert],
        keys: &[String],
        read: &[(String, u64, Option<Incident>)],
        now: DateTime<Utc>,
        routes: &dyn Routing,
    ) -> Result<(Vec<Recorded>, RecordBatch), StoreError> {
        // Each incident as the batch has decided it so far: as read, or the state an earlier
        // alert of the batch left (the incident inside its event, not copied out of it).
        let mut state: HashMap<&str, (u64, Current)> = read
            .iter()
            .map(|(k, v, inc)| (k.as_str(), (*v, Current::Read(inc.as_ref()))))
            .collect();
        let mut recorded = Vec::with_capacity(alerts.len());
        let mut batch = RecordBatch::new(&self.prefix, read);
        for (alert, key) in alerts.iter().zip(keys) {
            let Some((version, current)) = state.get_mut(key.as_str()) else {
                return Err(unavailable("incident read missing from the batch"));
            };
            let was_open = current.get().is_some_and(|i| i.status.is_open());
            let was_resolved = current
                .get()
                .is_some_and(|i| i.status == IncidentStatus::Resolved);
            let (mut r, decided) = decide_once(current.get(), alert, now);
            let next_state = match decided {
                Next::Unchanged => None,
                Next::Incident(i) => Some(Current::Owned(i)),
                Next::InEvent => r.event.clone().map(Current::InEvent),
            };
            if let Some(next_state) = next_state {
                let Some(next) = next_state.get() else {
                    return Err(unavailable("a decided incident is missing"));
                };
                *version += 1;
                let is_open = next.status.is_open();
                // A resolved incident expires (its keys get a TTL); one that leaves the
                // resolved state persists again; otherwise the TTLs stay as they are.
                let expiry = if next.status == IncidentStatus::Resolved {
                    DEFAULT_RESOLVED_INCIDENT_TTL.as_millis().to_string()
                } else if was_resolved {
                    "p".to_string()
                } else {
                    String::new()
                };
                let args = &mut batch.args;
                args.push(key.clone());
                args.push(version.to_string());
                // `source` is not part of the stored JSON (`#[serde(skip)]`): the key says it.
                args.push(serde_json::to_string(next).map_err(unavailable)?);
                args.push(next.id.clone());
                args.push(
                    if r.outcome == Outcome::Created {
                        "1"
                    } else {
                        "0"
                    }
                    .into(),
                );
                args.push((i64::from(is_open) - i64::from(was_open)).to_string());
                args.push(expiry);
                let mut dlv = Vec::new();
                match &r.event {
                    Some(event) => {
                        args.push(
                            serde_json::to_string(&HistoryEntry {
                                id: &event.id,
                                kind: event.kind.as_str(),
                                timestamp: event.timestamp,
                                changes: event.changes.as_ref(),
                            })
                            .map_err(unavailable)?,
                        );
                        dlv = routes
                            .endpoints_of(event)
                            .into_iter()
                            .map(|e| (e, format!("dlv_{}", uuid::Uuid::now_v7().simple())))
                            .collect();
                        if dlv.is_empty() {
                            args.push(String::new());
                            args.push(String::new());
                        } else {
                            args.push(
                                serde_json::to_string(&EnvelopeRef {
                                    id: &event.id,
                                    kind: event.kind,
                                    timestamp: event.timestamp,
                                    source: &event.source,
                                    changes: event.changes.as_ref(),
                                })
                                .map_err(unavailable)?,
                            );
                            args.push(event.id.clone());
                        }
                    }
                    None => {
                        args.push(String::new());
                        args.push(String::new());
                        args.push(String::new());
                    }
                }
                args.push(dlv.len().to_string());
                r.endpoints = dlv.iter().map(|(e, _)| e.clone()).collect();
                for (endpoint, id) in dlv {
                    args.push(endpoint.to_string());
                    args.push(id.clone());
                    if let Some(event) = &r.event {
                        batch.deliveries.push((endpoint, id, event.clone()));
                    }
                }
                *current = next_state;
            }
            recorded.push(r);
        }
        Ok((recorded, batch))
    }
}

/// One incident's state while [`RedisStore::plan`] decides a batch.
enum Current<'a> {
    /// As read from Redis (`None`: no such incident yet).
    Read(Option<&'a Incident>),
    /// Decided by an earlier alert of the batch without an event.
    Owned(Box<Incident>),
    /// Decided by an earlier alert of the batch: the incident its event carries.
    InEvent(Arc<Event>),
}

impl Current<'_> {
    fn get(&self) -> Option<&Incident> {
        match self {
            Current::Read(i) => *i,
            Current::Owned(i) => Some(i),
            Current::InEvent(e) => Some(&e.incident),
        }
    }
}

#[async_trait]
impl IncidentStore for RedisStore {
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
        routes: &dyn Routing,
        offer: &mut LeaseOffer,
    ) -> Result<Recording, StoreError> {
        if alerts.is_empty() {
            return Ok(Recording::default());
        }
        let keys: Vec<String> = alerts.iter().map(|a| self.incident_key(a)).collect();
        // Each incident read once, in first-seen order (a set: a group holds up to
        // DEFAULT_RECORD_GROUP_ALERTS alerts, and a scan of the list per alert was quadratic).
        let mut seen: HashSet<&str> = HashSet::with_capacity(keys.len());
        let unique: Vec<&String> = keys.iter().filter(|k| seen.insert(k.as_str())).collect();
        let mut conn = self.conn().await?;
        let token = format!(
            "{}:r{}",
            self.instance,
            self.claims.fetch_add(1, Ordering::Relaxed)
        );
        for attempt in 0..DEFAULT_RECORD_CAS_ATTEMPTS {
            if attempt > 0 {
                // Back off a little, at random, so racing instances stop colliding.
                tokio::time::sleep(conflict_backoff(attempt)).await;
            }
            let mut pipe = redis::pipe();
            for k in &unique {
                pipe.cmd("HMGET").arg(k.as_str()).arg("v").arg("j");
            }
            let rows: Vec<(Option<u64>, Option<String>)> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
            let mut read = Vec::with_capacity(rows.len());
            for (k, (v, j)) in unique.iter().zip(rows) {
                let inc = match j {
                    Some(j) => Some(serde_json::from_str::<Incident>(&j).map_err(|e| {
                        unavailable(format!("incident {k} in redis is unreadable: {e}"))
                    })?),
                    None => None,
                };
                read.push(((*k).clone(), v.unwrap_or(0), inc));
            }
            let (recorded, batch) = self.plan(alerts, &keys, &read, now, routes)?;
            // The batch's endpoints are known once it is decided; the room reserved then is
            // kept for the batch's later decisions (a conflict changes little of it).
            offer.reserve(&batch.per_endpoint());
            let mut invocation = self.record_script.prepare_invoke();
            for arg in batch
                .args
                .iter()
                .chain(RecordBatch::lease_args(&token, offer).iter())
            {
                invocation.arg(arg);
            }
            type Answer = (String, i64, i64, Vec<String>, Vec<String>);
            let (status, pending, open, leased, due): Answer = invocation
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
            if status == "ok" {
                self.open.store(open, Ordering::Relaxed);
                return Ok(Recording {
                    recorded,
                    leased: batch.leased(&token, &leased),
                    due: due.into_iter().map(Arc::from).collect(),
                    pending: Some(pending.max(0) as usize),
                });
            }
            tracing::debug!(
                "another instance changed an incident of this batch; deciding it again"
            );
        }
        Err(unavailable(
            "incidents of this batch kept changing under other instances; retry",
        ))
    }

    async fn open_count(&self) -> Result<usize, StoreError> {
        // The count as of the last batch this instance recorded (no round trip); read once
        // before that.
        let cached = self.open.load(Ordering::Relaxed);
        if cached >= 0 {
            return Ok(cached as usize);
        }
        let mut conn = self.conn().await?;
        let n: Option<i64> = redis::cmd("GET")
            .arg(format!("{}:open", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        let n = n.unwrap_or(0).max(0);
        self.open.store(n, Ordering::Relaxed);
        Ok(n as usize)
    }

    fn concurrent_groups(&self) -> usize {
        DEFAULT_RECORD_GROUPS_IN_FLIGHT
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(())
    }
}

#[async_trait]
impl DeliveryDedup for RedisStore {
    async fn is_delivered(&self, endpoint: &str, event_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        redis::cmd("EXISTS")
            .arg(self.dedup_key(endpoint, event_id))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))
    }

    async fn mark_delivered(&self, endpoint: &str, event_id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let _: Option<String> = redis::cmd("SET")
            .arg(self.dedup_key(endpoint, event_id))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(DEFAULT_DEDUP_TTL.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(())
    }
}

#[async_trait]
impl DeliveryQueueStore for RedisStore {
    async fn claim(
        &self,
        endpoint: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let token = format!(
            "{}:{}",
            self.instance,
            self.claims.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = self.conn().await?;
        type Answer = (Vec<(String, String)>, i64, i64, i64, i64, i64);
        let (rows, next_in, disabled, pending, depth, duplicates): Answer = self
            .claim_script
            .arg(self.queue_prefix(endpoint))
            .arg(limit)
            .arg(lease.as_millis() as u64)
            .arg(&token)
            .arg(self.pending_key())
            .arg(self.dedup_key(endpoint, ""))
            .arg(DEFAULT_DELIVERY_LOG_CAPACITY)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        let mut deliveries = Vec::with_capacity(rows.len());
        for (lane, entry) in rows {
            let Some(entry) = parse_entry(&entry) else {
                return Err(unavailable(format!("a head of lane {lane} is unreadable")));
            };
            deliveries.push(Claimed {
                delivery_id: entry.id.to_string(),
                lane,
                event: Arc::new(entry.event()?),
                attempts: entry.attempts(),
                lease: token.clone(),
            });
        }
        Ok(Claim {
            deliveries,
            disabled: disabled != 0,
            next_due_in: u64::try_from(next_in).ok().map(Duration::from_millis),
            depth: depth.max(0) as usize,
            duplicates: duplicates.max(0) as usize,
            pending: pending.max(0) as usize,
        })
    }

    async fn settle_many(
        &self,
        endpoint: &str,
        settles: &[(Claimed, Settlement)],
    ) -> Result<QueueStatus, StoreError> {
        if settles.is_empty() {
            return Ok(QueueStatus::default());
        }
        let mut invocation = self.settle_script.prepare_invoke();
        invocation
            .arg(self.queue_prefix(endpoint))
            .arg(DEFAULT_DEDUP_TTL.as_millis() as u64)
            .arg(DEFAULT_DELIVERY_LOG_CAPACITY)
            .arg(self.pending_key())
            .arg(self.dedup_key(endpoint, ""));
        for (claimed, settlement) in settles {
            let (action, wait, state) = match *settlement {
                Settlement::Delivered => ("delivered", Duration::ZERO, "delivered"),
                Settlement::Retry(wait) => ("retry", wait, "failed"),
                Settlement::Dead => ("dead", Duration::ZERO, "dead"),
                Settlement::Gone => ("gone", Duration::ZERO, "dead"),
                Settlement::Release if claimed.attempts.is_empty() => {
                    ("release", Duration::ZERO, "pending")
                }
                Settlement::Release => ("release", Duration::ZERO, "failed"),
            };
            let attempts = serde_json::to_string(&claimed.attempts).map_err(unavailable)?;
            invocation
                .arg(&claimed.lane)
                .arg(&claimed.delivery_id)
                .arg(&claimed.lease)
                .arg(action)
                .arg(wait.as_millis() as u64)
                .arg(attempts)
                .arg(state)
                .arg(&claimed.event.id);
        }
        let mut conn = self.conn().await?;
        let (pending, stale, next_in): (i64, Vec<String>, i64) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        for delivery_id in stale {
            tracing::warn!(
                endpoint,
                %delivery_id,
                "the lease ran out before the delivery was settled; another attempt owns it"
            );
        }
        Ok(QueueStatus {
            next_claimable_in: u64::try_from(next_in).ok().map(Duration::from_millis),
            pending: pending.max(0) as usize,
        })
    }

    async fn deliveries(&self, endpoint: &str) -> Result<StoredDeliveries, StoreError> {
        // Read, not locked: a delivery that moves on in between is shown once, where it was
        // first seen (lanes are read before the log).
        let q = self.queue_prefix(endpoint);
        let mut conn = self.conn().await?;
        let (due, leased, log, disabled): (Vec<String>, Vec<String>, Vec<String>, bool) =
            redis::pipe()
                .cmd("ZRANGE")
                .arg(format!("{q}:due"))
                .arg(0)
                .arg(-1)
                .cmd("ZRANGE")
                .arg(format!("{q}:leases"))
                .arg(0)
                .arg(-1)
                .cmd("LRANGE")
                .arg(format!("{q}:log"))
                .arg(0)
                .arg(-1)
                .cmd("EXISTS")
                .arg(format!("{q}:disabled"))
                .query_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
        let mut lanes: Vec<String> = leased;
        lanes.extend(due);
        // Lane entries first (unfinished, in lane order), then the log (finished, oldest
        // first).
        let mut items: Vec<String> = Vec::new();
        if !lanes.is_empty() {
            let mut pipe = redis::pipe();
            for lane in &lanes {
                pipe.cmd("LRANGE")
                    .arg(format!("{q}:lane:{lane}"))
                    .arg(0)
                    .arg(-1);
            }
            let heads: Vec<Vec<String>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
            items.extend(heads.into_iter().flatten());
        }
        items.extend(log);
        let mut seen = std::collections::HashSet::new();
        let mut deliveries = Vec::with_capacity(items.len());
        for item in &items {
            let Some(entry) = parse_entry(item) else {
                return Err(unavailable(format!(
                    "a delivery of {endpoint} is unreadable"
                )));
            };
            if seen.insert(entry.id.to_string()) {
                deliveries.push(entry.stored()?);
            }
        }
        Ok(StoredDeliveries {
            deliveries,
            disabled,
        })
    }

    async fn replay(
        &self,
        endpoint: &str,
        delivery_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let new_id = format!("dlv_{}", uuid::Uuid::now_v7().simple());
        let mut conn = self.conn().await?;
        let (done, _pending): (i64, i64) = self
            .replay_script
            .arg(self.queue_prefix(endpoint))
            .arg(delivery_id)
            .arg(&new_id)
            .arg(self.pending_key())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok((done == 1).then_some(new_id))
    }
}

/// A delivery's `state` field as stored by the scripts.
fn stored_state(s: &str) -> DeliveryState {
    match s {
        "failed" => DeliveryState::Failed,
        "delivered" => DeliveryState::Delivered,
        "dead" => DeliveryState::Dead,
        _ => DeliveryState::Pending,
    }
}

#[cfg(test)]
mod tests;
