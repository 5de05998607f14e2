//! The connection to Redis: the checked `store:` section ([`RedisSpec`]), the pool with every
//! timeout set, and the one multiplexed connection every call shares.

use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, AsyncConnectionConfig};
use deadpool_redis::{Manager, Pool, Runtime};
use thiserror::Error;

use super::RedisStore;
use crate::config::types::{StoreConfig, StoreKind};
use crate::store::StoreError;

/// Most Redis connections one instance opens. Calls share one multiplexed connection taken
/// from the pool; when it fails, the next call takes a checked one, waiting up to
/// [`DEFAULT_REDIS_WAIT_TIMEOUT`] when all are busy, then failing with 503.
pub const DEFAULT_REDIS_POOL_SIZE: usize = 16;
/// How long a request waits for a free pooled connection before it fails (503).
pub const DEFAULT_REDIS_WAIT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to Redis may take before the request fails (503).
pub const DEFAULT_REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one Redis command or script may take before the request fails (503).
pub const DEFAULT_REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The `store:` section for `kind: redis`, checked.
#[derive(Clone)]
pub struct RedisSpec {
    url: String,
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisSpec")
            .field("url", &"***")
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Why the redis store could not be built.
#[derive(Debug, Error)]
pub enum RedisBuildError {
    #[error("invalid redis URL: {0}")]
    Url(String),
    #[error("`key_prefix` must not be empty")]
    EmptyPrefix,
    #[error("redis pool: {0}")]
    Pool(String),
}

impl RedisSpec {
    /// `Some` for `kind: redis` (the URL parsed, nothing connected yet), `None` for memory.
    pub fn build(cfg: &StoreConfig) -> Result<Option<RedisSpec>, RedisBuildError> {
        if cfg.kind != StoreKind::Redis {
            return Ok(None);
        }
        let url = cfg.url.clone().unwrap_or_default();
        redis::Client::open(url.as_str()).map_err(|e| RedisBuildError::Url(e.to_string()))?;
        if cfg.key_prefix.is_empty() {
            return Err(RedisBuildError::EmptyPrefix);
        }
        Ok(Some(RedisSpec {
            url,
            key_prefix: cfg.key_prefix.clone(),
        }))
    }

    pub fn new(url: &str, key_prefix: &str) -> RedisSpec {
        RedisSpec {
            url: url.into(),
            key_prefix: key_prefix.into(),
        }
    }

    /// A pool with every timeout set (deadpool's default is none); connects lazily.
    pub fn pool(&self) -> Result<Pool, RedisBuildError> {
        let conn = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(DEFAULT_REDIS_CONNECT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_REDIS_RESPONSE_TIMEOUT));
        let manager = Manager::new_with_config(self.url.as_str(), conn)
            .map_err(|e| RedisBuildError::Url(e.to_string()))?;
        Pool::builder(manager)
            .max_size(DEFAULT_REDIS_POOL_SIZE)
            .wait_timeout(Some(DEFAULT_REDIS_WAIT_TIMEOUT))
            .create_timeout(Some(DEFAULT_REDIS_CONNECT_TIMEOUT))
            .recycle_timeout(Some(DEFAULT_REDIS_RESPONSE_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| RedisBuildError::Pool(e.to_string()))
    }
}

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// The shared connection: one multiplexed connection pipelines every concurrent call on
    /// one socket, so it is taken from the pool once (checked with a PING) and kept until a
    /// call fails, instead of a checkout (and its PING round trip) per call.
    pub(super) async fn conn(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(conn) = self.shared_conn().clone() {
            return Ok(conn);
        }
        let pooled = self.pool.get().await.map_err(unavailable)?;
        let conn: MultiplexedConnection = (*pooled).clone();
        *self.shared_conn() = Some(conn.clone());
        Ok(conn)
    }

    fn shared_conn(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call failed: the next one gets a checked connection from the pool.
    pub(super) fn broken(&self, e: impl std::fmt::Display) -> StoreError {
        *self.shared_conn() = None;
        unavailable(e)
    }
}
