//! The redis store: incidents, delivery dedup keys and the delivery queue in Redis, so that
//! nothing accepted is lost on a crash and several switchyard instances share one Redis.
//!
//! Every batch of alerts (the incident actor groups waiting requests into one) costs one round
//! trip: a Lua script (`record.lua`) that checks the versions the batch was decided against
//! (the incidents as this process last recorded them, `known`) and writes the transitions, the
//! event history and every routed delivery at once. On a conflict (another instance changed
//! an incident, or this one did not know it) nothing is written, the script answers those
//! incidents as they are, and the batch is decided again. Delivery actors `claim.lua` due lane
//! heads under a lease and `settle.lua` them, many per script run. The key layout and the
//! consistency argument are in docs/ARCHITECTURE.md ("Redis store").

mod admin;
mod conn;
mod documents;
mod groups;
mod incidents;
mod keys;
mod known;
mod query;
mod queue;
mod request_ids;
mod timers;

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::Script;
use deadpool_redis::Pool;

pub use conn::{
    RedisBuildError, RedisSpec, DEFAULT_REDIS_CONNECT_TIMEOUT, DEFAULT_REDIS_POOL_SIZE,
    DEFAULT_REDIS_RESPONSE_TIMEOUT, DEFAULT_REDIS_WAIT_TIMEOUT,
};
pub use incidents::{
    DEFAULT_INCIDENT_HISTORY, DEFAULT_RECORD_CAS_ATTEMPTS, DEFAULT_RECORD_GROUPS_IN_FLIGHT,
    DEFAULT_RESOLVED_INCIDENT_TTL,
};

/// How many claimed deliveries one endpoint has in flight at once with the redis store. Each
/// is exposed to the kill -9 window (answered 2xx, result not stored yet: sent again by the
/// instance that takes the lane over), so this stays small; Redis, not this, bounds the redis
/// store's rate.
pub const DEFAULT_REDIS_ENDPOINT_CONCURRENCY: usize = 32;
/// How long a delivery dedup key lives: an event is not delivered twice within this time.
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many finished (delivered or dead) deliveries the redis store keeps per endpoint, in
/// Redis, for the admin API. When full, the oldest finished delivery is forgotten.
pub const DEFAULT_DELIVERY_LOG_CAPACITY: usize = 10_000;

pub use known::DEFAULT_KNOWN_INCIDENTS;
pub use query::{SourceKinds, DEFAULT_EXTERNAL_REF_TTL};

const RECORD_LUA: &str = include_str!("record.lua");
/// The delivery-queue scripts begin with the helpers they share (`common.lua`).
const CLAIM_LUA: &str = concat!(include_str!("common.lua"), include_str!("claim.lua"));
const SETTLE_LUA: &str = concat!(include_str!("common.lua"), include_str!("settle.lua"));
const REPLAY_LUA: &str = concat!(include_str!("common.lua"), include_str!("replay.lua"));
const ENQUEUE_LUA: &str = concat!(include_str!("common.lua"), include_str!("enqueue.lua"));
const TIMERS_LUA: &str = include_str!("timers.lua");
const GROUPS_LUA: &str = include_str!("groups.lua");

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
    /// The incidents this process last recorded: each batch's first guess (`known`).
    known: std::sync::Mutex<known::KnownIncidents>,
    record_script: Script,
    claim_script: Script,
    settle_script: Script,
    replay_script: Script,
    enqueue_script: Script,
    timers_script: Script,
    groups_script: Script,
    /// Source kinds by name, for incidents read back (`query`).
    source_kinds: RwLock<query::SourceKinds>,
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
            known: std::sync::Mutex::new(known::KnownIncidents::new(DEFAULT_KNOWN_INCIDENTS)),
            record_script: Script::new(RECORD_LUA),
            claim_script: Script::new(CLAIM_LUA),
            settle_script: Script::new(SETTLE_LUA),
            replay_script: Script::new(REPLAY_LUA),
            enqueue_script: Script::new(ENQUEUE_LUA),
            timers_script: Script::new(TIMERS_LUA),
            groups_script: Script::new(GROUPS_LUA),
            source_kinds: RwLock::new(query::SourceKinds::new()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, known::KnownIncidents> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
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
}

#[cfg(test)]
pub(crate) mod tests;
