//! Reads for the admin API (`IncidentQuery`: get by id through the `incid` index, list by
//! scanning the incident keys) and the remembered external records of Jira and ServiceNow
//! (`ExternalRefs`), on the redis store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::redis;

use super::RedisStore;
use crate::model::{Incident, SourceRef};
use crate::store::query::{IncidentFilter, IncidentQuery};
use crate::store::refs::ExternalRefs;
use crate::store::StoreError;

/// How long a remembered external record (a Jira issue key, a ServiceNow `sys_id`) is kept
/// after it was last written; after that it is looked up at the service again.
pub const DEFAULT_EXTERNAL_REF_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Keys read per `SCAN` step and incidents fetched per pipelined read when listing.
const LIST_BATCH: usize = 500;

impl RedisStore {
    fn ref_key(&self, endpoint: &str, incident_id: &str) -> String {
        format!("{}:ref:{endpoint}:{incident_id}", self.prefix)
    }

    /// The incident stored under `key` (`p:inc:<source>:<dedup key>`) from its JSON, with its
    /// source taken from the key.
    fn incident_from(&self, key: &str, json: &str) -> Option<Incident> {
        let rest = key.strip_prefix(&format!("{}:inc:", self.prefix))?;
        let (source, _) = rest.split_once(':')?;
        let mut incident: Incident = serde_json::from_str(json).ok()?;
        incident.source = Some(SourceRef {
            name: source.into(),
            kind: self.source_kind(source),
        });
        Some(incident)
    }
}

#[async_trait]
impl IncidentQuery for RedisStore {
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut conn = self.conn().await?;
        let pattern = format!(
            "{}:inc:{}:*",
            self.prefix,
            filter.source.as_deref().unwrap_or("*")
        );
        let mut cursor: u64 = 0;
        let mut found = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(LIST_BATCH)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.broken(e))?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HGET").arg(k).arg("j");
                }
                let jsons: Vec<Option<String>> = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.broken(e))?;
                found.extend(
                    keys.iter()
                        .zip(jsons)
                        .filter_map(|(k, j)| self.incident_from(k, j.as_deref()?))
                        .filter(|i| filter.matches(i)),
                );
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        found.sort_by_key(|i| std::cmp::Reverse(i.started_at));
        found.truncate(filter.limit);
        Ok(found)
    }

    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let mut conn = self.conn().await?;
        let key: Option<String> = redis::cmd("GET")
            .arg(format!("{}:incid:{id}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        let Some(key) = key else {
            return Ok(None);
        };
        let json: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("j")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        // The id index outlives a reopened key: the key must still hold this incident.
        Ok(json
            .and_then(|j| self.incident_from(&key, &j))
            .filter(|i| i.id == id))
    }
}

#[async_trait]
impl ExternalRefs for RedisStore {
    async fn get(&self, endpoint: &str, incident_id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        redis::cmd("GET")
            .arg(self.ref_key(endpoint, incident_id))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))
    }

    async fn put(
        &self,
        endpoint: &str,
        incident_id: &str,
        reference: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let _: () = redis::cmd("SET")
            .arg(self.ref_key(endpoint, incident_id))
            .arg(reference)
            .arg("PX")
            .arg(DEFAULT_EXTERNAL_REF_TTL.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(())
    }
}

/// The source kinds by name, so incidents read back carry their `SourceRef`.
pub type SourceKinds = std::collections::HashMap<String, Arc<str>>;
