//! Holding: incident events that are recorded but not delivered when made, because a silence
//! (`silences`), an inhibition rule or a route's time interval holds them, and their release
//! once nothing holds them (`release`).
//!
//! - At record: the incident actor routes each event through [`HeldRouting`], which answers
//!   no endpoint for an event something holds (so the store writes no delivery for it) and
//!   notes why; [`Holding::hold`] then keeps one [`Hold`] per incident (store collection
//!   [`HOLDS`], by source and dedup key) and arms its timer (set [`HOLD_TIMERS`]) at the
//!   earliest time its causes may end (a silence's end; an inhibition is checked again when
//!   its source resolves, and every [`DEFAULT_HOLD_RECHECK`] at the latest).
//! - A resolve of an incident that was notified before the hold began is not held by a
//!   silence or an inhibition (a silence is for noise, not for leaving tickets open).
//! - At release ([`release::run`]): a due hold is looked at again with the incident as it is
//!   now; if nothing holds it any more, its current state is notified once
//!   (`incident.created` if it was never notified, else the latest held event's type; a
//!   resolved incident that was never notified is dropped quietly), queued like a group
//!   notification ([`crate::store::DeliveryQueueStore::enqueue`], in the incident's lane).

pub mod inhibit;
pub mod release;
pub mod silences;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::metrics::{HeldLabels, Metrics};
use crate::model::{Event, EventType};
use crate::router::table::RouteTable;
use crate::store::documents::Documents;
use crate::store::timers::Timers;
use crate::store::{Routing, StoreError};
use inhibit::{inhibitors, InhibitRule, SourceIndex};
use silences::{ActiveSilence, CachedSilences, Silence};

/// The store collection of held incidents.
pub const HOLDS: &str = "hold";
/// The timer set of held incidents (when to look at a hold again).
pub const HOLD_TIMERS: &str = "hold";
/// How often silences are read again from the store (another instance may have changed
/// them); changes made through this instance take effect at once.
pub const DEFAULT_SILENCE_REFRESH: Duration = Duration::from_secs(1);
/// The longest a hold waits before it is looked at again, whatever its causes.
pub const DEFAULT_HOLD_RECHECK: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// Most holds read when looking for those of one cause (a silence expired early).
pub const DEFAULT_MAX_HOLDS_LISTED: usize = 100_000;

/// Why an event is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A silence, by id.
    Silence(String),
    /// An inhibition, by the id of the incident that inhibits.
    Inhibition(String),
    /// A route's time interval, by name.
    Interval(String),
}

impl Cause {
    /// The metric label of this cause.
    pub fn label(&self) -> &'static str {
        match self {
            Cause::Silence(_) => "silenced",
            Cause::Inhibition(_) => "inhibited",
            Cause::Interval(_) => "muted",
        }
    }
}

/// One held incident (a document of [`HOLDS`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub incident_id: String,
    /// Whether the incident was notified before this hold began.
    pub notified: bool,
    /// The type of the latest event held.
    pub kind: EventType,
    /// When the hold began.
    pub since: DateTime<Utc>,
    /// What holds it (as of its latest event or check).
    pub causes: Vec<Cause>,
    /// The endpoints its held events did not go to.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Groups (keys) whose notifications left it out: flushed again at its release.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// What holds one event: why, which of its endpoints, and until when at most (a time
/// interval's end).
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub causes: Vec<Cause>,
    pub endpoints: Vec<Arc<str>>,
    pub until: Option<DateTime<Utc>>,
}

/// Routes `event` with `table` and says which endpoints take it now and what holds the
/// others: a silence or an inhibition holds every endpoint, a route's time interval that
/// route's. `unheard`: its incident is held and was never notified (see [`HoldView::causes`]).
pub fn decide(
    table: &RouteTable,
    view: &HoldView,
    event: &Event,
    unheard: bool,
) -> (Vec<Arc<str>>, Option<Held>) {
    let decision = table.route(event);
    let name = |id: &usize| table.endpoints().get(*id).map(|e| e.name.clone());
    let all: Vec<Arc<str>> = decision.endpoints.iter().filter_map(name).collect();
    if all.is_empty() {
        return (all, None);
    }
    let mut causes = view.causes(event, unheard);
    let mut until = None;
    let mut held: Vec<Arc<str>> = Vec::new();
    if !decision.timed.is_empty() {
        if let Some((ids, hold)) = table.held_by_intervals(&decision, view.now) {
            held = ids.iter().filter_map(name).collect();
            causes.extend(hold.names.into_iter().map(Cause::Interval));
            until = hold.until;
        }
    }
    if causes.is_empty() {
        return (all, None);
    }
    if causes.iter().any(|c| !matches!(c, Cause::Interval(_))) {
        held = all.clone();
    }
    let free = all.into_iter().filter(|e| !held.contains(e)).collect();
    (
        free,
        Some(Held {
            causes,
            endpoints: held,
            until,
        }),
    )
}

impl Hold {
    /// The event type its release notifies, if anything is left to say of `open` or not.
    pub fn release_kind(&self, open: bool) -> Option<EventType> {
        match (open, self.notified) {
            (true, false) => Some(EventType::Created),
            (true, true) if self.kind == EventType::Resolved => Some(EventType::Updated),
            (true, true) => Some(self.kind),
            (false, true) => Some(EventType::Resolved),
            (false, false) => None,
        }
    }
}

/// The key of an incident's hold: its source and dedup key (known before the incident is
/// read, so a batch's resolves can be looked up before they are recorded).
pub fn hold_key(source: &str, dedup_key: &str) -> String {
    format!("{source}\u{1f}{dedup_key}")
}

fn event_hold_key(event: &Event) -> String {
    hold_key(&event.source.name, &event.incident.dedup_key)
}

/// Silences, holds and their timers (see the module docs).
pub struct Holding {
    pub docs: Arc<dyn Documents>,
    pub timers: Arc<dyn Timers>,
    statics: RwLock<Arc<Vec<Silence>>>,
    cache: RwLock<CachedSilences>,
    rules: RwLock<Arc<Vec<InhibitRule>>>,
    /// The inhibiting incidents as last read, with the store's version then.
    sources: RwLock<(Option<u64>, Arc<SourceIndex>)>,
}

impl Holding {
    pub fn new(docs: Arc<dyn Documents>, timers: Arc<dyn Timers>) -> Holding {
        Holding {
            docs,
            timers,
            statics: RwLock::new(Arc::new(Vec::new())),
            cache: RwLock::new(CachedSilences::default()),
            rules: RwLock::new(Arc::new(Vec::new())),
            sources: RwLock::new((None, Arc::new(SourceIndex::new()))),
        }
    }

    /// The silences of routes.yaml (at start and on reload).
    pub fn set_static_silences(&self, silences: Vec<Silence>) {
        *self.statics.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(silences);
        // Read again at the next refresh.
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .version = None;
    }

    fn statics(&self) -> Arc<Vec<Silence>> {
        self.statics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn cached_silences(&self) -> CachedSilences {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_cached_silences(&self, version: u64, active: Vec<ActiveSilence>) {
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = CachedSilences {
            version: Some(version),
            active: Arc::new(active),
        };
    }

    fn cached_sources(&self) -> (Option<u64>, Arc<SourceIndex>) {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_cached_sources(&self, version: u64, sources: SourceIndex) {
        *self.sources.write().unwrap_or_else(|e| e.into_inner()) =
            (Some(version), Arc::new(sources));
    }

    /// What holds events at `now`, for one record call. `held` are the holds of the batch's
    /// incidents that are held already (read with [`Holding::holds_of`]).
    pub fn view(&self, now: DateTime<Utc>, held: HashMap<String, Hold>) -> HoldView {
        HoldView {
            now,
            silences: self.cached_silences().active,
            held,
            rules: self.inhibit_rules(),
            sources: self.cached_sources().1,
            batch_sources: Mutex::new(SourceIndex::new()),
        }
    }

    /// Whether anything could hold an event now, with `table` (else record calls skip
    /// every look-up).
    pub fn may_hold(&self, table: &RouteTable) -> bool {
        self.may_hold_incidents() || table.has_intervals()
    }

    /// Whether a silence or an inhibition could hold an incident now (time intervals hold
    /// routes, not incidents).
    pub fn may_hold_incidents(&self) -> bool {
        !self.cached_silences().active.is_empty() || !self.inhibit_rules().is_empty()
    }

    /// The holds of these hold keys that exist.
    pub async fn holds_of(&self, keys: Vec<String>) -> Result<HashMap<String, Hold>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let got = self.docs.get(HOLDS, &keys).await?;
        Ok(keys
            .into_iter()
            .zip(got)
            .filter_map(|(k, v)| Some((k, serde_json::from_str(&v?).ok()?)))
            .collect())
    }

    /// Keeps the holds of these events (each with what holds it) and arms their timers.
    pub async fn hold(
        &self,
        view: &HoldView,
        held: Vec<(Arc<Event>, Held)>,
        metrics: &Metrics,
    ) -> Result<(), StoreError> {
        if held.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = held.iter().map(|(e, _)| event_hold_key(e)).collect();
        let mut existing = self.holds_of(keys.clone()).await?;
        let mut docs: Vec<(String, String)> = Vec::with_capacity(held.len());
        let mut due: Vec<(String, DateTime<Utc>)> = Vec::with_capacity(held.len());
        for ((event, held), key) in held.into_iter().zip(keys) {
            for c in &held.causes {
                metrics
                    .events_held
                    .get_or_create(&HeldLabels {
                        cause: c.label().to_string(),
                    })
                    .inc();
            }
            let before = existing.remove(&key);
            let mut endpoints: Vec<String> = before
                .as_ref()
                .map(|h| h.endpoints.clone())
                .unwrap_or_default();
            for e in &held.endpoints {
                if !endpoints.iter().any(|x| x.as_str() == &**e) {
                    endpoints.push(e.to_string());
                }
            }
            let hold = Hold {
                incident_id: event.incident.id.clone(),
                notified: before
                    .as_ref()
                    .map_or(event.kind != EventType::Created, |h| h.notified),
                kind: event.kind,
                since: before.as_ref().map_or(view.now, |h| h.since),
                causes: held.causes,
                endpoints,
                groups: before.map(|h| h.groups).unwrap_or_default(),
            };
            let at = view.recheck_at(&hold.causes);
            due.push((key.clone(), held.until.map_or(at, |u| u.min(at))));
            tracing::debug!(incident_id = %hold.incident_id, event_type = %event.kind, causes = ?hold.causes, "event held");
            let json = serde_json::to_string(&hold)
                .map_err(|e| StoreError::Rejected(format!("hold: {e}")))?;
            docs.push((key, json));
        }
        self.docs.put(HOLDS, &docs).await?;
        let armed = due.iter().map(|(k, at)| {
            self.timers
                .schedule(HOLD_TIMERS, k, *at, "", crate::store::timers::When::Replace)
        });
        futures_util::future::try_join_all(armed).await?;
        Ok(())
    }

    /// Notes that group `group` left these held incidents (event, causes) out of a
    /// notification: at their release the group is flushed again. Their hold timers are armed
    /// at the earliest end of their causes (never later than armed already).
    pub async fn hold_in_group(
        &self,
        view: &HoldView,
        group: &str,
        held: Vec<(Event, Vec<Cause>)>,
    ) -> Result<(), StoreError> {
        if held.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = held.iter().map(|(e, _)| event_hold_key(e)).collect();
        let mut existing = self.holds_of(keys.clone()).await?;
        let mut docs = Vec::with_capacity(held.len());
        let mut due = Vec::with_capacity(held.len());
        for ((event, causes), key) in held.into_iter().zip(keys) {
            let mut hold = existing.remove(&key).unwrap_or(Hold {
                incident_id: event.incident.id.clone(),
                notified: true,
                kind: event.kind,
                since: view.now,
                causes: Vec::new(),
                endpoints: Vec::new(),
                groups: Vec::new(),
            });
            if !hold.groups.iter().any(|g| g == group) {
                hold.groups.push(group.to_string());
            }
            due.push((key.clone(), view.recheck_at(&causes)));
            hold.causes = causes;
            let json = serde_json::to_string(&hold)
                .map_err(|e| StoreError::Rejected(format!("hold: {e}")))?;
            docs.push((key, json));
        }
        self.docs.put(HOLDS, &docs).await?;
        for (k, at) in due {
            self.timers
                .schedule(
                    HOLD_TIMERS,
                    &k,
                    at,
                    "",
                    crate::store::timers::When::IfEarlier,
                )
                .await?;
        }
        Ok(())
    }

    /// Drops these holds (their incident's resolve went out).
    pub async fn drop_holds(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.docs.remove(HOLDS, keys).await?;
        for k in keys {
            self.timers.cancel(HOLD_TIMERS, k).await?;
        }
        Ok(())
    }

    /// Looks again, at `at`, at every hold one of whose causes is `cause` (a silence changed
    /// or expired, an inhibiting incident resolved).
    pub async fn recheck(&self, cause: &Cause, at: DateTime<Utc>) -> Result<(), StoreError> {
        let holds = self.docs.list(HOLDS, DEFAULT_MAX_HOLDS_LISTED).await?;
        let keys: Vec<String> = holds
            .into_iter()
            .filter(|(_, json)| {
                serde_json::from_str::<Hold>(json).is_ok_and(|h| h.causes.contains(cause))
            })
            .map(|(k, _)| k)
            .collect();
        silences::arm(self, &keys, at).await
    }
}

/// What holds events at one moment (see [`Holding::view`]).
pub struct HoldView {
    pub now: DateTime<Utc>,
    silences: Arc<Vec<ActiveSilence>>,
    held: HashMap<String, Hold>,
    rules: Arc<Vec<InhibitRule>>,
    /// The inhibiting incidents stored.
    sources: Arc<SourceIndex>,
    /// Inhibiting incidents of the batch being recorded, as their events are decided (an
    /// open one added, a resolved one removed: `None`).
    batch_sources: Mutex<SourceIndex>,
}

impl HoldView {
    /// What holds `event` now. `unheard`: its incident is held and was never notified, so
    /// a resolve is held too (the resolve of an incident notified before goes out).
    pub fn causes(&self, event: &Event, unheard: bool) -> Vec<Cause> {
        if event.kind == EventType::Resolved && !unheard {
            return Vec::new();
        }
        let mut causes: Vec<Cause> = self
            .silences
            .iter()
            .filter(|s| s.starts_at <= self.now && self.now < s.ends_at && s.matches(event))
            .map(|s| Cause::Silence(s.id.clone()))
            .collect();
        if !self.rules.is_empty() && event.incident.status.is_open() {
            let batch = self.batch_sources.lock().unwrap_or_else(|e| e.into_inner());
            let mut ids = inhibitors(&self.rules, &self.sources, event);
            for id in inhibitors(&self.rules, &batch, event) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            causes.extend(ids.into_iter().map(Cause::Inhibition));
        }
        causes
    }

    /// Notes `event`'s incident as an inhibiting one of this batch if it is one (open).
    pub fn note_source(&self, event: &Event) {
        if !event.incident.status.is_open() {
            return;
        }
        let mut batch = self.batch_sources.lock().unwrap_or_else(|e| e.into_inner());
        for r in self.rules.iter().filter(|r| r.is_source(event)) {
            let ids = batch.entry((r.id.clone(), r.equal_key(event))).or_default();
            if !ids.contains(&event.incident.id) {
                ids.push(event.incident.id.clone());
            }
        }
    }

    /// When a hold with these causes is looked at again: the earliest end of one of them,
    /// at the latest [`DEFAULT_HOLD_RECHECK`] from now.
    pub fn recheck_at(&self, causes: &[Cause]) -> DateTime<Utc> {
        let mut at = self.now + DEFAULT_HOLD_RECHECK;
        for c in causes {
            if let Cause::Silence(id) = c {
                if let Some(s) = self.silences.iter().find(|s| &s.id == id) {
                    at = at.min(s.ends_at);
                }
            }
        }
        at.max(self.now)
    }

    /// Whether this batch's incident of `event` is held and was never notified.
    fn is_unheard(&self, event: &Event) -> bool {
        self.held
            .get(&event_hold_key(event))
            .is_some_and(|h| !h.notified)
    }

    /// The holds of this batch's resolves that were not held (delivered: nothing left to
    /// release), by hold key.
    pub fn resolved_holds<'e>(&self, delivered: impl Iterator<Item = &'e Event>) -> Vec<String> {
        delivered
            .filter(|e| e.kind == EventType::Resolved)
            .map(event_hold_key)
            .filter(|k| self.held.contains_key(k))
            .collect()
    }

    /// The silences in force (for `route-test` and the admin API).
    pub fn silences(&self) -> &[ActiveSilence] {
        &self.silences
    }
}

/// The route table as a record call sees it: an event something holds goes to no endpoint,
/// and what held it is noted (read back with [`HeldRouting::take_held`]).
pub struct HeldRouting<'a> {
    pub table: &'a RouteTable,
    pub view: &'a HoldView,
    held: Mutex<HashMap<String, Held>>,
}

impl<'a> HeldRouting<'a> {
    pub fn new(table: &'a RouteTable, view: &'a HoldView) -> Self {
        HeldRouting {
            table,
            view,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The causes of each held event, by event id (events of a decision the store made
    /// again after a conflict are among them; callers keep those it recorded).
    pub fn take_held(&self) -> HashMap<String, Held> {
        std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Routing for HeldRouting<'_> {
    fn endpoints_of(&self, event: &Event) -> Vec<Arc<str>> {
        self.view.note_source(event);
        let (free, held) = decide(self.table, self.view, event, self.view.is_unheard(event));
        if let Some(held) = held {
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(event.id.clone(), held);
        }
        free
    }
}

#[cfg(test)]
mod tests;
