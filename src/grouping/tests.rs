//! Grouping's plain parts: joining groups arms their timers as Alertmanager paces them.

use std::sync::Arc;

use chrono::TimeDelta;

use super::*;
use crate::model::{test_event, EventType};
use crate::router::table::EndpointFilter;
use crate::store::groups::MemoryGroups;
use crate::store::timers::tests::at;
use crate::store::timers::MemoryTimers;

fn table() -> RouteTable {
    let routes: Vec<crate::config::types::RouteConfig> =
        serde_json::from_value(serde_json::json!([
            {"name": "k8s", "matchers": ["team=\"ops\""], "to": ["chat"],
             "group_by": ["cluster"], "group_wait": "10s", "group_interval": "1m"},
            {"name": "plain", "to": ["chat"]}
        ]))
        .unwrap();
    let endpoints = vec![EndpointFilter {
        name: "chat".into(),
        events: None,
        enabled: true,
    }];
    RouteTable::build(&routes, &[], endpoints).unwrap()
}

fn event(id: &str, team: &str, cluster: &str) -> Arc<Event> {
    let mut e = test_event(id, EventType::Created);
    e.incident.labels = [("team", team), ("cluster", cluster)]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    Arc::new(e)
}

#[actix_rt::test]
async fn joining_arms_group_wait_then_group_interval() {
    let (groups, timers) = (
        Arc::new(MemoryGroups::default()),
        Arc::new(MemoryTimers::default()),
    );
    let g = Grouper {
        groups: groups.clone(),
        timers: timers.clone(),
    };
    let t = table();
    let joined = g
        .join(
            &t,
            &[
                event("i1", "ops", "a"),
                event("i2", "web", "a"),
                event("i3", "ops", "b"),
            ],
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(joined, vec![true, false, true]);
    let key = "k8s:{cluster=\"a\"}";
    assert_eq!(
        timers.get(GROUP_TIMERS, key).await.unwrap().unwrap().due,
        at(10)
    );
    // Another incident within the wait does not move it.
    g.join(&t, &[event("i4", "ops", "a")], at(5)).await.unwrap();
    assert_eq!(
        timers.get(GROUP_TIMERS, key).await.unwrap().unwrap().due,
        at(10)
    );
    let state = groups.get(key).await.unwrap().unwrap();
    assert_eq!(state.members.len(), 2);
    let meta: GroupMeta = serde_json::from_str(&state.meta).unwrap();
    assert_eq!(
        (meta.wait_ms, meta.interval_ms, meta.repeat_ms),
        (10_000, 60_000, 4 * 3_600_000)
    );

    // Once notified (at 10), a change waits for notified + group_interval, pulling an armed
    // repeat forward.
    let c = timers
        .claim_due(GROUP_TIMERS, at(10), 10, Duration::from_secs(30))
        .await
        .unwrap();
    let seen: Vec<_> = state.members.into_iter().collect();
    groups.flushed(key, &seen, &[], at(10)).await.unwrap();
    let repeat = at(10) + TimeDelta::hours(4);
    let c = c.iter().find(|c| c.timer.key == key).unwrap();
    timers.complete(c, Some((repeat, ""))).await.unwrap();
    g.join(&t, &[event("i5", "ops", "a")], at(20))
        .await
        .unwrap();
    assert_eq!(
        timers.get(GROUP_TIMERS, key).await.unwrap().unwrap().due,
        at(70)
    );
    // A later change leaves the earlier time armed.
    g.join(&t, &[event("i6", "ops", "a")], at(500))
        .await
        .unwrap();
    assert_eq!(
        timers.get(GROUP_TIMERS, key).await.unwrap().unwrap().due,
        at(70)
    );
}
