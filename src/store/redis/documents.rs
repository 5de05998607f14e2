//! [`Documents`] in Redis: a hash per collection (`p:doc:<collection>`) and a counter beside
//! it (`p:doc:<collection>:v`) that every write moves on (`MULTI`), shared by every instance
//! and kept across restarts.

use async_trait::async_trait;
use deadpool_redis::redis;

use super::RedisStore;
use crate::store::documents::{check_bounds, Documents};
use crate::store::StoreError;

/// Deletes a field only if it still holds the value read: KEYS hash, version; ARGV field, value.
const REMOVE_IF_LUA: &str = r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('INCR', KEYS[2])
  return 1
end
return 0
"#;

impl RedisStore {
    fn doc_key(&self, collection: &str) -> String {
        format!("{}:doc:{collection}", self.prefix)
    }

    fn doc_version_key(&self, collection: &str) -> String {
        format!("{}:doc:{collection}:v", self.prefix)
    }
}

#[async_trait]
impl Documents for RedisStore {
    async fn put(&self, collection: &str, docs: &[(String, String)]) -> Result<(), StoreError> {
        check_bounds(docs)?;
        if docs.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("HSET").arg(self.doc_key(collection));
        for (k, v) in docs {
            pipe.arg(k).arg(v);
        }
        pipe.ignore()
            .cmd("INCR")
            .arg(self.doc_version_key(collection))
            .ignore();
        let mut conn = self.conn().await?;
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.broken(e))
    }

    async fn get(
        &self,
        collection: &str,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        // HMGET answers one value per field, always as an array.
        redis::cmd("HMGET")
            .arg(self.doc_key(collection))
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))
    }

    async fn list(
        &self,
        collection: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.conn().await?;
        let all: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(self.doc_key(collection))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(all.into_iter().take(limit).collect())
    }

    async fn remove(&self, collection: &str, keys: &[String]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn().await?;
        let (n,): (usize,) = redis::pipe()
            .atomic()
            .cmd("HDEL")
            .arg(self.doc_key(collection))
            .arg(keys)
            .cmd("INCR")
            .arg(self.doc_version_key(collection))
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(n)
    }

    async fn remove_if(
        &self,
        collection: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let n: i64 = redis::Script::new(REMOVE_IF_LUA)
            .key(self.doc_key(collection))
            .key(self.doc_version_key(collection))
            .arg(key)
            .arg(value)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(n == 1)
    }

    async fn version(&self, collection: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let v: Option<u64> = redis::cmd("GET")
            .arg(self.doc_version_key(collection))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(v.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::documents::tests::documents_follow_the_contract;
    use crate::store::redis::tests::{prefix, TestRedis};

    #[actix_rt::test]
    async fn redis_documents_follow_the_contract() {
        let redis = TestRedis::get();
        documents_follow_the_contract(&redis.redis_store(&prefix()), "c").await;
    }

    #[actix_rt::test]
    async fn two_instances_share_documents() {
        let redis = TestRedis::get();
        let p = prefix();
        let (a, b) = (redis.redis_store(&p), redis.redis_store(&p));
        use crate::store::documents::Documents;
        a.put("c", &[("k".into(), "v".into())]).await.unwrap();
        assert_eq!(
            b.get("c", &["k".into()]).await.unwrap(),
            vec![Some("v".into())]
        );
        assert_eq!(a.version("c").await.unwrap(), b.version("c").await.unwrap());
    }
}
