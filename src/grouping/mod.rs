//! Grouping (a route's `group_by`, Alertmanager's semantics): incidents routed to a grouped
//! route are collected by their group key and notified together, one `group.notification`
//! per group and endpoint, paced by `group_wait`, `group_interval` and `repeat_interval`.
//!
//! - [`Grouper::join`] (called by the incident actor after each record call, before the
//!   requests are answered): marks each incident of an event routed to a grouped route as
//!   changed in its group (`store::groups`) and arms the group's timer (`store::timers`, set
//!   [`GROUP_TIMERS`]): a new group at now + `group_wait`, a group notified before at its
//!   last notification + `group_interval` (never later than a timer armed already).
//! - [`flush::run`]: claims due group timers (leased: of several instances one flushes each
//!   group) and flushes each group ([`flush::flush_group`]): one `group.notification` queued
//!   to the group's endpoints, then the timer is re-armed at now + `repeat_interval` while an
//!   incident is open; a group whose incidents are all resolved and notified ends.

pub mod flush;
pub mod notice;
pub mod reminders;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Event, Labels};
use crate::router::table::{GroupTarget, RouteTable};
use crate::store::groups::Groups;
use crate::store::timers::{Timers, When};
use crate::store::StoreError;

/// The timer set of group notifications.
pub const GROUP_TIMERS: &str = "group";

/// What a group keeps of its route from when it began (`Groups` meta, JSON): its
/// notifications go to these endpoints with these timings until it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub route: String,
    pub labels: Labels,
    pub endpoints: Vec<String>,
    pub wait_ms: u64,
    pub interval_ms: u64,
    pub repeat_ms: u64,
}

impl GroupMeta {
    fn of(g: &GroupTarget) -> GroupMeta {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        GroupMeta {
            route: g.route.to_string(),
            labels: g.labels.clone(),
            endpoints: g.endpoints.iter().map(|e| e.to_string()).collect(),
            wait_ms: ms(g.grouping.wait),
            interval_ms: ms(g.grouping.interval),
            repeat_ms: ms(g.grouping.repeat),
        }
    }
}

/// `t` + `ms` milliseconds (saturating at chrono's end of time).
pub(crate) fn after(t: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    t.checked_add_signed(chrono::TimeDelta::milliseconds(
        i64::try_from(ms).unwrap_or(i64::MAX),
    ))
    .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Adds incidents to their groups (see the module docs).
pub struct Grouper {
    pub groups: Arc<dyn Groups>,
    pub timers: Arc<dyn Timers>,
}

impl Grouper {
    /// Adds each event's incident to the groups of the grouped routes that take it and arms
    /// their timers. Answers whether each event joined a group (in order).
    pub async fn join(
        &self,
        table: &RouteTable,
        events: &[Arc<Event>],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut joined = Vec::with_capacity(events.len());
        let mut joins = Vec::new();
        let mut metas: HashMap<String, GroupMeta> = HashMap::new();
        for event in events {
            let groups = table.route(event).groups;
            joined.push(!groups.is_empty());
            for g in groups {
                let meta = metas
                    .entry(g.key.clone())
                    .or_insert_with(|| GroupMeta::of(&g));
                let meta = serde_json::to_string(meta).unwrap_or_default();
                joins.push((g.key, meta, event.incident.id.clone()));
            }
        }
        if joins.is_empty() {
            return Ok(joined);
        }
        let notified = self.groups.join(&joins).await?;
        let arm = notified.into_iter().filter_map(|(key, at)| {
            let meta = metas.get(&key)?;
            Some(match at {
                None => (key, after(now, meta.wait_ms), When::IfAbsent),
                Some(at) => (key, after(at, meta.interval_ms).max(now), When::IfEarlier),
            })
        });
        let armed = arm.map(|(key, due, when)| async move {
            self.timers
                .schedule(GROUP_TIMERS, &key, due, "", when)
                .await
        });
        futures_util::future::try_join_all(armed).await?;
        Ok(joined)
    }
}

#[cfg(test)]
mod tests;
