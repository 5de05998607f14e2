//! Reading incidents for the admin API (list with filters, get by id). A separate trait from
//! `IncidentStore` so that the write path stays minimal; every store implements both.

use async_trait::async_trait;

use crate::model::{Incident, IncidentStatus};
use crate::store::StoreError;

/// Most incidents one list call returns when the caller names no `limit`.
pub const DEFAULT_INCIDENT_LIST_LIMIT: usize = 100;

/// The largest `limit` a list call accepts; larger values are cut to it.
pub const MAX_INCIDENT_LIST_LIMIT: usize = 1000;

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub source: Option<String>,
    pub limit: usize,
}

impl IncidentFilter {
    pub fn matches(&self, incident: &Incident) -> bool {
        self.status.is_none_or(|s| s == incident.status)
            && self
                .source
                .as_deref()
                .is_none_or(|want| incident.source.as_ref().is_some_and(|s| &*s.name == want))
    }
}

/// Incidents by id, for reading.
#[async_trait]
pub trait IncidentQuery: Send + Sync {
    /// Incidents matching `filter`, most recently started first, at most `filter.limit`.
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError>;
    /// One incident by its id.
    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError>;
}
