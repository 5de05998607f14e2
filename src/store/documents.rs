//! Small durable documents by collection and key: the state of silences, held incidents and
//! inhibition sources (`holding`). A document is an opaque string (the caller's JSON); the
//! store keeps it, lists it and removes it, nothing more.
//!
//! [`Documents`] is the contract; [`MemoryDocuments`] keeps documents in this process (the
//! memory store), the redis store keeps a hash per collection in Redis
//! (`store::redis::documents`: shared by every instance, kept across restarts). The contract
//! tests in `documents/tests.rs` run against both.
//!
//! # The contract
//! - A document is identified by (collection, key); collections never see each other's.
//! - [`Documents::put`] writes documents (replacing what was there) and
//!   [`Documents::remove`] deletes them; [`Documents::remove_if`] deletes one only if it is
//!   still the value the caller read (a document changed meanwhile, e.g. by another
//!   instance, is kept).
//! - Every write of a collection moves its [`Documents::version`] on, so a reader that
//!   caches a collection reads it again only when it changed.
//! - Keys and values are bounded ([`DEFAULT_MAX_DOCUMENT_KEY_BYTES`],
//!   [`DEFAULT_MAX_DOCUMENT_BYTES`]); a larger one is refused with [`StoreError::Rejected`]
//!   and nothing changes. The memory store keeps at most [`DEFAULT_MEMORY_DOCUMENTS`] per
//!   collection (a new key beyond that is refused the same way).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::StoreError;

/// Most bytes of a document's key.
pub const DEFAULT_MAX_DOCUMENT_KEY_BYTES: usize = 2048;
/// Most bytes of one document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most documents the memory store keeps per collection.
pub const DEFAULT_MEMORY_DOCUMENTS: usize = 1_000_000;

/// Durable documents (see the module docs for the contract).
#[async_trait]
pub trait Documents: Send + Sync {
    /// Writes each (key, value) of `collection`, all or none.
    async fn put(&self, collection: &str, docs: &[(String, String)]) -> Result<(), StoreError>;

    /// The documents of these keys, in order (None: absent).
    async fn get(
        &self,
        collection: &str,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError>;

    /// Up to `limit` documents of `collection`, by key.
    async fn list(
        &self,
        collection: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Deletes these keys; answers how many existed.
    async fn remove(&self, collection: &str, keys: &[String]) -> Result<usize, StoreError>;

    /// Deletes `key` only if its value is still `value`; answers whether it did.
    async fn remove_if(&self, collection: &str, key: &str, value: &str)
        -> Result<bool, StoreError>;

    /// A number that changes with every write of `collection` (0: never written).
    async fn version(&self, collection: &str) -> Result<u64, StoreError>;
}

/// Checks keys and values against the bounds (shared by every implementation).
pub(crate) fn check_bounds(docs: &[(String, String)]) -> Result<(), StoreError> {
    for (k, v) in docs {
        if k.is_empty() || k.len() > DEFAULT_MAX_DOCUMENT_KEY_BYTES {
            return Err(StoreError::Rejected(format!(
                "a document key must have 1 to {DEFAULT_MAX_DOCUMENT_KEY_BYTES} bytes"
            )));
        }
        if v.len() > DEFAULT_MAX_DOCUMENT_BYTES {
            return Err(StoreError::Rejected(format!(
                "a document must have at most {DEFAULT_MAX_DOCUMENT_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

/// One collection in memory.
#[derive(Default)]
struct Collection {
    docs: BTreeMap<String, String>,
    version: u64,
}

/// Documents in this process (the memory store).
#[derive(Default)]
pub struct MemoryDocuments {
    collections: Mutex<HashMap<String, Collection>>,
}

impl MemoryDocuments {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Collection>> {
        self.collections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every document as (collection, key, value) (a durable store's snapshot).
    pub(crate) fn all(&self) -> Vec<(String, String, String)> {
        self.lock()
            .iter()
            .flat_map(|(name, c)| {
                c.docs
                    .iter()
                    .map(move |(k, v)| (name.clone(), k.clone(), v.clone()))
            })
            .collect()
    }

    /// Sets or removes one document as a durable store read it back (no bounds checked).
    pub(crate) fn restore(&self, collection: &str, key: &str, value: Option<&str>) {
        let mut all = self.lock();
        let c = all.entry(collection.to_string()).or_default();
        match value {
            Some(v) => {
                c.docs.insert(key.to_string(), v.to_string());
            }
            None => {
                c.docs.remove(key);
            }
        }
        c.version += 1;
    }
}

#[async_trait]
impl Documents for MemoryDocuments {
    async fn put(&self, collection: &str, docs: &[(String, String)]) -> Result<(), StoreError> {
        check_bounds(docs)?;
        let mut all = self.lock();
        let c = all.entry(collection.to_string()).or_default();
        let new = docs.iter().filter(|(k, _)| !c.docs.contains_key(k)).count();
        if c.docs.len() + new > DEFAULT_MEMORY_DOCUMENTS {
            return Err(StoreError::Rejected(format!(
                "the memory store keeps at most {DEFAULT_MEMORY_DOCUMENTS} documents per collection"
            )));
        }
        for (k, v) in docs {
            c.docs.insert(k.clone(), v.clone());
        }
        c.version += 1;
        Ok(())
    }

    async fn get(
        &self,
        collection: &str,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let all = self.lock();
        let c = all.get(collection);
        Ok(keys
            .iter()
            .map(|k| c.and_then(|c| c.docs.get(k).cloned()))
            .collect())
    }

    async fn list(
        &self,
        collection: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let all = self.lock();
        Ok(all.get(collection).map_or_else(Vec::new, |c| {
            c.docs
                .iter()
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }))
    }

    async fn remove(&self, collection: &str, keys: &[String]) -> Result<usize, StoreError> {
        let mut all = self.lock();
        let Some(c) = all.get_mut(collection) else {
            return Ok(0);
        };
        let n = keys.iter().filter(|k| c.docs.remove(*k).is_some()).count();
        if n > 0 {
            c.version += 1;
        }
        Ok(n)
    }

    async fn remove_if(
        &self,
        collection: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let mut all = self.lock();
        let Some(c) = all.get_mut(collection) else {
            return Ok(false);
        };
        if c.docs.get(key).map(String::as_str) != Some(value) {
            return Ok(false);
        }
        c.docs.remove(key);
        c.version += 1;
        Ok(true)
    }

    async fn version(&self, collection: &str) -> Result<u64, StoreError> {
        Ok(self.lock().get(collection).map_or(0, |c| c.version))
    }
}

#[cfg(test)]
pub(crate) mod tests;
