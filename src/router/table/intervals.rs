//! The route table's time intervals: each route's `mute_time_intervals` and
//! `active_time_intervals` (own or inherited) and what they hold at one instant.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{EndpointId, RouteDecision, RouteNode, RouteTable};
use crate::config::intervals::TimeInterval;

/// A route's time intervals by name (own or inherited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteIntervals {
    pub mute: Vec<String>,
    pub active: Vec<String>,
}

impl RouteIntervals {
    pub(super) fn is_empty(&self) -> bool {
        self.mute.is_empty() && self.active.is_empty()
    }
}

/// What a route's time intervals do at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalHold {
    /// The intervals that hold: mute intervals in force, or the active intervals out of force.
    pub names: Vec<String>,
    /// When that may change (the earliest end or start of one of them); None: never.
    pub until: Option<DateTime<Utc>>,
}

impl RouteTable {
    /// The `time_intervals:` routes name (checked by `config::validate`: a name no interval
    /// has never holds).
    pub fn with_time_intervals(mut self, intervals: Vec<TimeInterval>) -> Self {
        self.intervals = intervals
            .into_iter()
            .map(|i| (i.name.clone(), Arc::new(i)))
            .collect();
        self
    }

    /// Whether any route has time intervals.
    pub fn has_intervals(&self) -> bool {
        fn any(nodes: &[RouteNode]) -> bool {
            nodes
                .iter()
                .any(|n| !n.timing.is_empty() || any(&n.children))
        }
        any(&self.routes)
    }

    /// What `intervals` do at `now`: None when they hold nothing.
    pub fn interval_hold(
        &self,
        intervals: &RouteIntervals,
        now: DateTime<Utc>,
    ) -> Option<IntervalHold> {
        let mut names = Vec::new();
        let mut until: Option<DateTime<Utc>> = None;
        let mut earliest = |t: Option<DateTime<Utc>>| {
            if let Some(t) = t {
                until = Some(until.map_or(t, |u| u.min(t)));
            }
        };
        for name in &intervals.mute {
            if let Some(i) = self.intervals.get(name).filter(|i| i.contains(now)) {
                names.push(name.clone());
                earliest(i.next_change(now));
            }
        }
        let active: Vec<&Arc<TimeInterval>> = intervals
            .active
            .iter()
            .filter_map(|n| self.intervals.get(n))
            .collect();
        if !intervals.active.is_empty() && !active.iter().any(|i| i.contains(now)) {
            names.extend(intervals.active.iter().cloned());
            for i in active {
                earliest(i.next_change(now));
            }
        }
        (!names.is_empty()).then_some(IntervalHold { names, until })
    }

    /// The endpoints of `decision` held by their routes' time intervals at `now` (not also
    /// routed by a route that does not hold them), with what holds them.
    pub fn held_by_intervals(
        &self,
        decision: &RouteDecision,
        now: DateTime<Utc>,
    ) -> Option<(Vec<EndpointId>, IntervalHold)> {
        let mut held: Vec<EndpointId> = Vec::new();
        let mut free: Vec<EndpointId> = decision.untimed.clone();
        let mut hold: Option<IntervalHold> = None;
        for (ids, intervals) in &decision.timed {
            match self.interval_hold(intervals, now) {
                None => free.extend(ids),
                Some(h) => {
                    held.extend(ids);
                    hold = Some(match hold {
                        None => h,
                        Some(mut all) => {
                            for n in h.names {
                                if !all.names.contains(&n) {
                                    all.names.push(n);
                                }
                            }
                            all.until = match (all.until, h.until) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                            all
                        }
                    });
                }
            }
        }
        held.retain(|id| decision.endpoints.contains(id) && !free.contains(id));
        held.dedup();
        let hold = hold?;
        (!held.is_empty()).then_some((held, hold))
    }

    /// The time intervals of the route named `route` (a grouped route's, at its flush).
    pub fn intervals_of(&self, route: &str) -> Option<Arc<RouteIntervals>> {
        fn find(nodes: &[RouteNode], route: &str) -> Option<Arc<RouteIntervals>> {
            nodes.iter().find_map(|n| {
                if &*n.name == route {
                    Some(n.timing.clone())
                } else {
                    find(&n.children, route)
                }
            })
        }
        find(&self.routes, route)
    }
}
