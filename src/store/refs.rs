//! What an endpoint remembers about an incident on the far side: the Jira issue key, the
//! ServiceNow `sys_id`. One trait, one in-memory backend here; the redis store implements the
//! same trait so that a restart (or another instance) finds the issue to transition.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::store::StoreError;

/// How many (endpoint, incident) references the memory backend keeps. When full, the oldest
/// is forgotten; the kinds then look the record up by their dedup key (ServiceNow) or open a
/// new one (Jira).
pub const DEFAULT_MEMORY_REFS_CAPACITY: usize = 100_000;

/// References to records in an endpoint's service, by (endpoint name, incident id).
#[async_trait]
pub trait ExternalRefs: Send + Sync {
    async fn get(&self, endpoint: &str, incident_id: &str) -> Result<Option<String>, StoreError>;
    async fn put(
        &self,
        endpoint: &str,
        incident_id: &str,
        reference: &str,
    ) -> Result<(), StoreError>;
}

type RefKey = (String, String);
type RefTable = (HashMap<RefKey, String>, VecDeque<RefKey>);

/// The in-memory backend: bounded, oldest forgotten first.
#[derive(Default)]
pub struct MemoryRefs {
    inner: Mutex<RefTable>,
}

impl MemoryRefs {
    /// Remembers `reference` for (endpoint, incident).
    pub fn remember(&self, endpoint: &str, incident_id: &str, reference: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (endpoint.to_string(), incident_id.to_string());
        if g.0.insert(key.clone(), reference.to_string()).is_none() {
            g.1.push_back(key);
            if g.1.len() > DEFAULT_MEMORY_REFS_CAPACITY {
                if let Some(old) = g.1.pop_front() {
                    g.0.remove(&old);
                }
            }
        }
    }

    /// Every (endpoint, incident id, reference), oldest first (a file store's snapshot).
    pub fn entries(&self) -> Vec<(String, String, String)> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.iter()
            .filter_map(|k| g.0.get(k).map(|r| (k.0.clone(), k.1.clone(), r.clone())))
            .collect()
    }
}

#[async_trait]
impl ExternalRefs for MemoryRefs {
    async fn get(&self, endpoint: &str, incident_id: &str) -> Result<Option<String>, StoreError> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(g.0
            .get(&(endpoint.to_string(), incident_id.to_string()))
            .cloned())
    }

    async fn put(
        &self,
        endpoint: &str,
        incident_id: &str,
        reference: &str,
    ) -> Result<(), StoreError> {
        self.remember(endpoint, incident_id, reference);
        Ok(())
    }
}
