//! Recording alerts: each group decided here with the transition table against its incidents
//! as this process last knew them (`known`), routed, and written with its deliveries by
//! `record.lua` in one compare-and-set script run: one round trip. A conflict (another
//! instance changed an incident, or this process did not know it) answers the incidents as
//! they are, and the group is decided again against them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis;
use serde::Serialize;

use super::conn::unavailable;
use super::known::Known;
use super::RedisStore;
use crate::model::transition::Outcome;
use crate::model::{Alert, Event, EventType, Incident, IncidentStatus, SourceRef};
use crate::store::leases::LeaseOffer;
use crate::store::{
    decide_once, Claimed, IncidentStore, Next, Recorded, Recording, Routing, StoreError,
};

/// How often a batch is decided again when another instance changed one of its incidents
/// in between; after that the request fails with 503 (the client retries).
pub const DEFAULT_RECORD_CAS_ATTEMPTS: usize = 16;
/// How many groups of alerts the incident actor records at once when no incident is in two
/// of them (each a script run: a round trip during which the next group would otherwise only
/// wait). More waiting groups wait for one of these to finish.
pub const DEFAULT_RECORD_GROUPS_IN_FLIGHT: usize = 4;
/// How many events each incident's history keeps; older ones are trimmed.
pub const DEFAULT_INCIDENT_HISTORY: usize = 100;
/// How long a resolved incident (and its history) is kept; firing again before then reopens
/// nothing (a new incident is created either way), so this only bounds Redis memory.
pub const DEFAULT_RESOLVED_INCIDENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A random wait of up to `attempt` milliseconds.
fn conflict_backoff(attempt: usize) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(random % (attempt as u64 * 1000).max(1))
}

/// One batch for `record.lua`, as the script's flat arguments (strings are passed to Lua as
/// they are: no JSON for the script to decode). The layout is in record.lua's header.
struct RecordBatch {
    args: Vec<String>,
    /// Every delivery written: (endpoint, delivery id, the event); a lane is its incident.
    deliveries: Vec<(Arc<str>, String, Arc<Event>)>,
    /// Each incident the batch changes, as it leaves it: (key, version, incident).
    known: Vec<(String, u64, Known)>,
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
                        lane: event.incident.id.as_str().into(),
                        event: Arc::clone(event),
                        attempts: Vec::new(),
                        lease: token.to_string(),
                        replay: false,
                    },
                )
            })
            .collect()
    }
}

impl RecordBatch {
    fn new(prefix: &str, checks: &[(String, u64, Option<Known>)]) -> RecordBatch {
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
            known: Vec::new(),
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
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a crate::model::group::GroupNotice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notice: Option<&'a crate::model::delivery::DeadNotice>,
}

/// The JSON a delivery entry keeps of its event besides the incident.
pub(super) fn envelope_json(event: &Event) -> Result<String, StoreError> {
    serde_json::to_string(&EnvelopeRef {
        id: &event.id,
        kind: event.kind,
        timestamp: event.timestamp,
        source: &event.source,
        changes: event.changes.as_ref(),
        group: event.group.as_deref(),
        notice: event.notice.as_deref(),
    })
    .map_err(unavailable)
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
    /// Decides a batch against the incidents as read: what each alert did and the script's
    /// input. Alerts for the same incident see each other's result, in order.
    fn plan(
        &self,
        alerts: &[Alert],
        keys: &[String],
        read: &[(String, u64, Option<Known>)],
        now: DateTime<Utc>,
        routes: &dyn Routing,
    ) -> Result<(Vec<Recorded>, RecordBatch), StoreError> {
        // Each incident as the batch has decided it so far: as read, or the state an earlier
        // alert of the batch left (the incident inside its event, not copied out of it).
        let mut state: HashMap<&str, (u64, Current)> = read
            .iter()
            .map(|(k, v, inc)| {
                (
                    k.as_str(),
                    (*v, Current::Read(inc.as_ref().map(Known::get))),
                )
            })
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
                            args.push(envelope_json(event)?);
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
        batch.known = state
            .into_iter()
            .filter_map(|(k, (v, current))| {
                let known = match current {
                    Current::Read(_) => return None,
                    Current::Owned(i) => Known::Incident(Arc::from(i)),
                    Current::InEvent(e) => Known::InEvent(e),
                };
                Some((k.to_string(), v, known))
            })
            .collect();
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
        // First the incidents as this process last knew them; after a conflict, as the script
        // answered them.
        let mut read: Vec<(String, u64, Option<Known>)> = {
            let known = self.known();
            unique
                .iter()
                .map(|k| {
                    let (v, inc) = known.guess(k);
                    ((*k).clone(), v, inc)
                })
                .collect()
        };
        let at: HashMap<&str, usize> = unique
            .iter()
            .enumerate()
            .map(|(n, k)| (k.as_str(), n))
            .collect();
        for attempt in 0..DEFAULT_RECORD_CAS_ATTEMPTS {
            if attempt > 1 {
                // Two conflicts in a row: another instance is changing these incidents too.
                // Back off a little, at random, so racing instances stop colliding.
                tokio::time::sleep(conflict_backoff(attempt)).await;
            }
            let (recorded, mut batch) = self.plan(alerts, &keys, &read, now, routes)?;
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
                let mut known = self.known();
                for (k, v, inc) in std::mem::take(&mut batch.known) {
                    known.learn(k, v, Some(inc));
                }
                drop(known);
                return Ok(Recording {
                    recorded,
                    leased: batch.leased(&token, &leased),
                    due: due.into_iter().map(Arc::from).collect(),
                    pending: Some(pending.max(0) as usize),
                });
            }
            // `leased` holds what the script found instead: (key, version, incident JSON).
            let mut known = self.known();
            for found in leased.chunks(3) {
                let [k, v, j] = found else {
                    return Err(unavailable("record.lua answered a conflict out of shape"));
                };
                let v: u64 = v.parse().map_err(|_| {
                    unavailable(format!("incident {k} in redis has an unreadable version"))
                })?;
                let inc = if j.is_empty() {
                    None
                } else {
                    Some(Known::Incident(Arc::new(
                        serde_json::from_str::<Incident>(j).map_err(|e| {
                            unavailable(format!("incident {k} in redis is unreadable: {e}"))
                        })?,
                    )))
                };
                if let Some(slot) = at.get(k.as_str()).and_then(|&n| read.get_mut(n)) {
                    *slot = (k.clone(), v, inc.clone());
                }
                known.learn(k.clone(), v, inc);
            }
            drop(known);
            tracing::debug!("an incident of this batch was not as known here; deciding it again");
        }
        Err(unavailable(
            "incidents of this batch kept changing under other instances; retry",
        ))
    }

    async fn persist(&self) -> Result<(), StoreError> {
        // Every call is in Redis when it returns (as durable as Redis keeps it).
        Ok(())
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
