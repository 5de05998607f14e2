//! [`Groups`] in Redis (`groups.lua`): a hash per group, shared by every instance and kept
//! across restarts.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_redis::redis;

use super::RedisStore;
use crate::store::groups::{GroupState, Groups};
use crate::store::timers::{from_ms, to_ms};
use crate::store::StoreError;

impl RedisStore {
    fn group_key(&self, key: &str) -> String {
        format!("{}:grp:{key}", self.prefix)
    }
}

/// A group hash read back.
fn state(key: &str, fields: BTreeMap<String, String>) -> Option<GroupState> {
    let meta = fields.get("meta")?.clone();
    let notified_at = fields
        .get("at")
        .and_then(|a| a.parse::<i64>().ok())
        .map(from_ms);
    let members = fields
        .iter()
        .filter_map(|(f, v)| Some((f.strip_prefix("m:")?.to_string(), v.parse().ok()?)))
        .collect();
    Some(GroupState {
        key: key.to_string(),
        meta,
        members,
        notified_at,
    })
}

#[async_trait]
impl Groups for RedisStore {
    async fn join(
        &self,
        joins: &[(String, String, String)],
    ) -> Result<Vec<(String, Option<DateTime<Utc>>)>, StoreError> {
        if joins.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.groups_script.arg("join");
        inv.arg(&self.prefix).arg(joins.len());
        for (key, meta, incident) in joins {
            inv.arg(key).arg(meta).arg(incident);
        }
        let mut conn = self.conn().await?;
        let rows: Vec<(String, String)> = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(rows
            .into_iter()
            .map(|(k, at)| (k, at.parse::<i64>().ok().map(from_ms)))
            .collect())
    }

    async fn get(&self, key: &str) -> Result<Option<GroupState>, StoreError> {
        let mut conn = self.conn().await?;
        let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(self.group_key(key))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(state(key, fields))
    }

    async fn flushed(
        &self,
        key: &str,
        seen: &[(String, u64)],
        ended: &[String],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut inv = self.groups_script.arg("flushed");
        inv.arg(&self.prefix)
            .arg(key)
            .arg(to_ms(at))
            .arg(seen.len());
        for (id, count) in seen {
            inv.arg(id)
                .arg(count)
                .arg(if ended.contains(id) { "1" } else { "0" });
        }
        let mut conn = self.conn().await?;
        let changed: i64 = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(changed == 1)
    }

    async fn list(&self, limit: usize) -> Result<Vec<GroupState>, StoreError> {
        let mut conn = self.conn().await?;
        let mut keys: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{}:groups", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        keys.sort();
        keys.truncate(limit);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HGETALL").arg(self.group_key(k));
        }
        let all: Vec<BTreeMap<String, String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(keys
            .iter()
            .zip(all)
            .filter_map(|(k, f)| state(k, f))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::redis::tests::{prefix, TestRedis};

    #[actix_rt::test]
    async fn redis_groups_follow_the_contract() {
        let redis = TestRedis::get();
        crate::store::groups::tests::groups_follow_the_contract(&redis.redis_store(&prefix()))
            .await;
    }
}
