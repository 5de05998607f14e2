//! [`Timers`] in Redis (`timers.lua`, one script run per call): shared by every instance,
//! kept across restarts. A claim moves a timer's place in the set's `ready` zset to its
//! lease's end, so a claimant that dies leaves the timer due again when its lease runs out.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RedisStore;
use crate::store::timers::{check_bounds, from_ms, to_ms, ClaimedTimer, Timer, Timers, When};
use crate::store::StoreError;

impl RedisStore {
    fn timer_set_key(&self, set: &str) -> String {
        format!("{}:tm:{set}", self.prefix)
    }
}

#[async_trait]
impl Timers for RedisStore {
    async fn schedule(
        &self,
        set: &str,
        key: &str,
        due: DateTime<Utc>,
        payload: &str,
        when: When,
    ) -> Result<bool, StoreError> {
        check_bounds(key, payload)?;
        let when = match when {
            When::Replace => "replace",
            When::IfAbsent => "absent",
            When::IfEarlier => "earlier",
        };
        let mut conn = self.conn().await?;
        let armed: i64 = self
            .timers_script
            .arg("schedule")
            .arg(self.timer_set_key(set))
            .arg(key)
            .arg(to_ms(due))
            .arg(payload)
            .arg(when)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(armed == 1)
    }

    async fn get(&self, set: &str, key: &str) -> Result<Option<Timer>, StoreError> {
        let s = self.timer_set_key(set);
        let mut conn = self.conn().await?;
        let (due, payload): (Option<i64>, Option<String>) = deadpool_redis::redis::pipe()
            .cmd("HGET")
            .arg(format!("{s}:due"))
            .arg(key)
            .cmd("HGET")
            .arg(format!("{s}:payload"))
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(due.map(|due| Timer {
            key: key.to_string(),
            due: from_ms(due),
            payload: payload.unwrap_or_default(),
        }))
    }

    async fn claim_due(
        &self,
        set: &str,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedTimer>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = to_ms(now);
        let until = now.saturating_add(lease.as_millis().min(i64::MAX as u128) as i64);
        let token = format!(
            "{}:t{}",
            self.instance,
            self.claims.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = self.conn().await?;
        let rows: Vec<(String, i64, String, String)> = self
            .timers_script
            .arg("claim")
            .arg(self.timer_set_key(set))
            .arg(now)
            .arg(limit)
            .arg(until)
            .arg(&token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(rows
            .into_iter()
            .map(|(key, due, payload, lease)| ClaimedTimer {
                set: set.to_string(),
                timer: Timer {
                    key,
                    due: from_ms(due),
                    payload,
                },
                lease,
            })
            .collect())
    }

    async fn complete(
        &self,
        claimed: &ClaimedTimer,
        then: Option<(DateTime<Utc>, &str)>,
    ) -> Result<bool, StoreError> {
        if let Some((_, payload)) = then {
            check_bounds(&claimed.timer.key, payload)?;
        }
        let (rearm, due, payload) = match then {
            Some((due, payload)) => ("1", to_ms(due), payload),
            None => ("0", 0, ""),
        };
        let mut conn = self.conn().await?;
        let done: i64 = self
            .timers_script
            .arg("complete")
            .arg(self.timer_set_key(&claimed.set))
            .arg(&claimed.timer.key)
            .arg(&claimed.lease)
            .arg(rearm)
            .arg(due)
            .arg(payload)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(done == 1)
    }

    async fn cancel(&self, set: &str, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let existed: i64 = self
            .timers_script
            .arg("cancel")
            .arg(self.timer_set_key(set))
            .arg(key)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(existed == 1)
    }

    async fn next_due(&self, set: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self.conn().await?;
        let score: Option<String> = self
            .timers_script
            .arg("next")
            .arg(self.timer_set_key(set))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(score
            .and_then(|s| s.parse::<f64>().ok())
            .map(|ms| from_ms(ms as i64)))
    }
}

#[cfg(test)]
mod tests;
