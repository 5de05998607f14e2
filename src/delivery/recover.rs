//! Bulk recovery (`POST /api/v1/endpoints/{name}/recover`): which dead deliveries of an
//! endpoint are sent again, in which order. A plain function of the store's delivery log;
//! the actor hands its answer to `DeliveryQueueStore::replay_many`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::model::delivery::DeliveryState;
use crate::store::StoredDeliveries;

/// The ids of the dead deliveries to replay: every dead one whose event happened at or after
/// `since` (all without it) and that has not been replayed already (a replay that died too is
/// itself dead, and recovered in its place), oldest event first (the log's order among equal
/// times), so each incident's events reach the endpoint in their order.
pub fn dead_to_recover(log: &StoredDeliveries, since: Option<DateTime<Utc>>) -> Vec<String> {
    let replayed: HashSet<&str> = log
        .deliveries
        .iter()
        .filter_map(|d| d.replay_of.as_deref())
        .collect();
    let mut dead: Vec<_> = log
        .deliveries
        .iter()
        .filter(|d| d.state == DeliveryState::Dead)
        .filter(|d| !replayed.contains(d.id.as_str()))
        .filter(|d| since.is_none_or(|s| d.event.timestamp >= s))
        .collect();
    // A stable sort: the log's order stays among events of the same time.
    dead.sort_by_key(|d| d.event.timestamp);
    dead.into_iter().map(|d| d.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;
    use crate::model::EventType;
    use crate::store::StoredDelivery;

    fn stored(
        id: &str,
        secs: i64,
        state: DeliveryState,
        replay_of: Option<&str>,
    ) -> StoredDelivery {
        let mut e = event(EventType::Created);
        e.timestamp = DateTime::from_timestamp(secs, 0).unwrap();
        StoredDelivery {
            id: id.into(),
            event: e,
            state,
            attempts: Vec::new(),
            replay_of: replay_of.map(str::to_string),
            next_attempt_at: None,
        }
    }

    #[test]
    fn dead_ones_oldest_first_skipping_replayed_and_older_than_since() {
        let log = StoredDeliveries {
            deliveries: vec![
                stored("pending", 1, DeliveryState::Pending, None),
                stored("d30", 30, DeliveryState::Dead, None),
                stored("d10", 10, DeliveryState::Dead, None),
                stored("ok", 5, DeliveryState::Delivered, None),
                stored("d20", 20, DeliveryState::Dead, None),
                stored("d20b", 20, DeliveryState::Dead, None),
                stored("again", 40, DeliveryState::Delivered, Some("d5")),
                stored("d5", 5, DeliveryState::Dead, None),
            ],
            disabled: false,
        };
        assert_eq!(dead_to_recover(&log, None), ["d10", "d20", "d20b", "d30"]);
        let since = DateTime::from_timestamp(20, 0);
        assert_eq!(dead_to_recover(&log, since), ["d20", "d20b", "d30"]);
    }
}
