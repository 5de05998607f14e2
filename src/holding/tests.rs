//! Holding decisions without a running system.

use super::*;
use crate::model::test_event;

#[test]
fn a_release_says_what_the_endpoints_have_not_heard() {
    let hold = |notified, kind| Hold {
        incident_id: "inc_1".into(),
        notified,
        kind,
        since: Utc::now(),
        causes: vec![],
        endpoints: vec![],
    };
    // Never notified: created while open, nothing once resolved.
    assert_eq!(
        hold(false, EventType::Updated).release_kind(true),
        Some(EventType::Created)
    );
    assert_eq!(hold(false, EventType::Resolved).release_kind(false), None);
    // Notified before: its latest change, or its resolve.
    assert_eq!(
        hold(true, EventType::Acknowledged).release_kind(true),
        Some(EventType::Acknowledged)
    );
    assert_eq!(
        hold(true, EventType::Updated).release_kind(false),
        Some(EventType::Resolved)
    );
}

#[test]
fn a_resolve_is_held_only_for_an_incident_never_notified() {
    let now = Utc::now();
    let s = silences::Silence {
        id: "s1".into(),
        matchers: vec![silences::SilenceMatcher {
            name: "severity".into(),
            value: "info".into(),
            is_regex: false,
            is_equal: true,
        }],
        starts_at: now - chrono::TimeDelta::minutes(1),
        ends_at: now + chrono::TimeDelta::minutes(1),
        created_by: "me".into(),
        comment: String::new(),
        updated_at: now,
    };
    let view = HoldView {
        now,
        silences: Arc::new(silences::compile(&[s], now)),
        held: HashMap::new(),
        rules: Arc::new(Vec::new()),
        sources: Arc::new(SourceIndex::new()),
        batch_sources: Mutex::new(SourceIndex::new()),
    };
    let created = test_event("inc_1", EventType::Created);
    assert_eq!(
        view.causes(&created, false),
        vec![Cause::Silence("s1".into())]
    );
    let resolved = test_event("inc_1", EventType::Resolved);
    assert!(view.causes(&resolved, false).is_empty());
    assert_eq!(view.causes(&resolved, true).len(), 1);
    // The hold is looked at again when the silence ends.
    assert_eq!(
        view.recheck_at(&[Cause::Silence("s1".into())]),
        now + chrono::TimeDelta::minutes(1)
    );
    let mut critical = created.clone();
    critical.incident.severity = crate::model::Severity::Critical;
    assert!(view.causes(&critical, false).is_empty());
}
