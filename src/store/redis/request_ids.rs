//! [`RequestIds`] in Redis: one key per (source, request id), `SET NX` while the request is
//! being recorded and a TTL of its window once recorded, so every instance sees the same ids
//! and a restart forgets none.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::redis;

use super::RedisStore;
use crate::store::request_ids::{IdState, RequestIds, DEFAULT_RECORDING_CLAIM};
use crate::store::StoreError;

const RECORDING: &str = "recording";
const RECORDED: &str = "recorded";

impl RedisStore {
    fn request_id_key(&self, source: &str, id: &str) -> String {
        format!("{}:reqid:{source}:{id}", self.prefix)
    }
}

#[async_trait]
impl RequestIds for RedisStore {
    async fn begin_recording(&self, source: &str, id: &str) -> Result<IdState, StoreError> {
        let key = self.request_id_key(source, id);
        let mut conn = self.conn().await?;
        // SET NX GET: claims the key, or answers what it holds, in one step.
        let (set, held): (Option<String>, Option<String>) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(RECORDING)
            .arg("NX")
            .arg("PX")
            .arg(DEFAULT_RECORDING_CLAIM.as_millis() as u64)
            .cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(match (set, held.as_deref()) {
            (Some(_), _) => IdState::New,
            (None, Some(RECORDED)) => IdState::Recorded,
            (None, Some(_)) => IdState::Recording,
            // Ran out between the two commands: recorded by nobody now, so try once more.
            (None, None) => IdState::Recording,
        })
    }

    async fn recorded(&self, source: &str, id: &str, window: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let _: () = redis::cmd("SET")
            .arg(self.request_id_key(source, id))
            .arg(RECORDED)
            .arg("PX")
            .arg(window.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(())
    }

    async fn forget(&self, source: &str, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let _: i64 = redis::cmd("DEL")
            .arg(self.request_id_key(source, id))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(())
    }
}
