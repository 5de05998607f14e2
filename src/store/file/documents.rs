//! The file store's documents (`store::documents`: silences, held incidents): the memory
//! implementation, each change journaled as the state it left for the keys it touched (an
//! [`Op::Document`]) and synced before the call returns, like groups and timers.

use async_trait::async_trait;
use futures_util::FutureExt;

use super::timers::ready;
use super::FileStore;
use crate::store::documents::{Documents, MemoryDocuments};
use crate::store::memory::changes::Op;
use crate::store::StoreError;

/// Applies a logged document op at start-up (other ops are left alone).
pub(super) fn apply(op: &Op, docs: &MemoryDocuments) {
    if let Op::Document {
        collection,
        key,
        value,
    } = op
    {
        docs.restore(collection, key, value.as_deref());
    }
}

/// Every document as ops (a snapshot).
pub(super) fn snapshot(docs: &MemoryDocuments) -> Vec<Op> {
    docs.all()
        .into_iter()
        .map(|(collection, key, value)| Op::Document {
            collection,
            key,
            value: Some(value),
        })
        .collect()
}

impl FileStore {
    /// The ops that record these keys of `collection` as they are now.
    fn documents_now(&self, collection: &str, keys: &[String]) -> Vec<Op> {
        let values = self
            .docs
            .get(collection, keys)
            .now_or_never()
            .and_then(Result::ok)
            .unwrap_or_default();
        keys.iter()
            .zip(values)
            .map(|(key, value)| Op::Document {
                collection: collection.to_string(),
                key: key.clone(),
                value,
            })
            .collect()
    }
}

#[async_trait]
impl Documents for FileStore {
    async fn put(&self, collection: &str, docs: &[(String, String)]) -> Result<(), StoreError> {
        self.side_committed(|| {
            ready(self.docs.put(collection, docs))?;
            let keys: Vec<String> = docs.iter().map(|(k, _)| k.clone()).collect();
            Ok(((), self.documents_now(collection, &keys)))
        })
        .await
    }

    async fn get(
        &self,
        collection: &str,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.docs.get(collection, keys).await
    }

    async fn list(
        &self,
        collection: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.docs.list(collection, limit).await
    }

    async fn remove(&self, collection: &str, keys: &[String]) -> Result<usize, StoreError> {
        self.side_committed(|| {
            let n = ready(self.docs.remove(collection, keys))?;
            let ops = if n > 0 {
                self.documents_now(collection, keys)
            } else {
                Vec::new()
            };
            Ok((n, ops))
        })
        .await
    }

    async fn remove_if(
        &self,
        collection: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        self.side_committed(|| {
            let removed = ready(self.docs.remove_if(collection, key, value))?;
            let ops = if removed {
                self.documents_now(collection, &[key.to_string()])
            } else {
                Vec::new()
            };
            Ok((removed, ops))
        })
        .await
    }

    async fn version(&self, collection: &str) -> Result<u64, StoreError> {
        self.docs.version(collection).await
    }
}
