//! The state backends: one pair of traits, several implementations (`memory` now, `redis`
//! later). The incident actor and the delivery actors only see these traits.

pub mod memory;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::incidents::transition::Outcome;
use crate::model::{Alert, Event};

/// A store that could not do what was asked; ingest answers 503 and changes nothing.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// What recording one alert did.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub outcome: Outcome,
    pub incident_id: Option<String>,
    /// The event it emitted, if any.
    pub event: Option<Event>,
}

/// Incidents by (source name, dedup key).
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Applies the alerts in order, each atomically (the transition table of
    /// `incidents::transition`), and returns what each did. Either every alert is recorded or,
    /// on error, none is.
    async fn record(
        &self,
        alerts: &[Alert],
        now: DateTime<Utc>,
    ) -> Result<Vec<Recorded>, StoreError>;

    /// Number of open (triggered or acknowledged) incidents.
    async fn open_count(&self) -> Result<usize, StoreError>;

    /// Answers when the store is reachable (`/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The delivery dedup keys: (endpoint, event id) pairs already delivered successfully.
#[async_trait]
pub trait DeliveryDedup: Send + Sync {
    /// Whether this event was already delivered to this endpoint.
    async fn is_delivered(&self, endpoint: &str, event_id: &str) -> Result<bool, StoreError>;
    /// Records a successful delivery.
    async fn mark_delivered(&self, endpoint: &str, event_id: &str) -> Result<(), StoreError>;
}
