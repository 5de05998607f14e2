//! Maps for the memory store that grow without long pauses.
//!
//! A `HashMap` grows by moving every entry into a table twice its size, all at once. With a
//! million open incidents that is about 100 ms during which the thread that records alerts
//! does nothing else, and the requests waiting for it pile up. [`ShardedMap`] splits one map
//! into [`DEFAULT_MAP_SHARDS`] maps chosen by the key's hash, so each growth moves one shard:
//! the same total work in pauses 64 times shorter.
//!
//! [`PreHashedState`] is for keys that already are uniform hashes (the dedup store's 128-bit
//! keys): hashing them again with SipHash would only add cost, to inserts and to growth.

use std::borrow::Borrow;
use std::collections::hash_map::{self, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// How many maps a [`ShardedMap`] is split into. A power of two; more shards mean shorter
/// pauses when one grows and a little more memory for tables that are not full.
pub const DEFAULT_MAP_SHARDS: usize = 64;

/// A hash map split into [`DEFAULT_MAP_SHARDS`] maps by the key's hash.
pub struct ShardedMap<K, V> {
    /// Picks the shard; each shard hashes with its own state again for its slot.
    router: RandomState,
    shards: Box<[HashMap<K, V>]>,
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            router: RandomState::new(),
            shards: (0..DEFAULT_MAP_SHARDS).map(|_| HashMap::new()).collect(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn shard_of<Q>(&self, key: &Q) -> usize
    where
        Q: Hash + ?Sized,
    {
        // The top bits: a shard's own map uses the low ones for its slots.
        (self.router.hash_one(key) >> (64 - DEFAULT_MAP_SHARDS.trailing_zeros())) as usize
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard_of(key)].get(key)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let shard = self.shard_of(&key);
        self.shards[shard].insert(key, value)
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard_of(key);
        self.shards[shard].remove(key)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(HashMap::is_empty)
    }

    /// Every entry, shard by shard (in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(hash_map::HashMap::iter)
    }

    /// Every key (in no particular order).
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }
}

/// Hashes a key that already is a uniform hash by folding its bits, instead of hashing it
/// again. Only for such keys: any other key would crowd into few slots.
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by integer keys; folds anything else so that it still works.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// The `BuildHasher` of [`PreHashed`].
pub type PreHashedState = BuildHasherDefault<PreHashed>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_sharded_map_is_a_map() {
        let mut m: ShardedMap<String, usize> = ShardedMap::default();
        assert!(m.is_empty());
        for i in 0..10_000 {
            assert_eq!(m.insert(format!("k{i}"), i), None);
        }
        assert_eq!(m.insert("k7".into(), 70), Some(7));
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get("k7"), Some(&70));
        assert_eq!(m.get("k9999"), Some(&9999));
        assert_eq!(m.get("nope"), None);
        assert_eq!(m.remove("k1"), Some(1));
        assert_eq!(m.remove("k1"), None);
        assert_eq!(m.len(), 9_999);
        let keys: HashSet<&String> = m.keys().collect();
        assert_eq!(keys.len(), 9_999);
        assert!(!keys.contains(&"k1".to_string()));
        assert_eq!(m.iter().map(|(_, v)| *v).max(), Some(9999));
    }

    #[test]
    fn entries_spread_over_every_shard() {
        let mut m: ShardedMap<u64, ()> = ShardedMap::default();
        for i in 0..64_000 {
            m.insert(i, ());
        }
        let sizes: Vec<usize> = m.shards.iter().map(HashMap::len).collect();
        // 1,000 expected per shard; a shard that got nothing would mean the bits are wrong.
        assert!(sizes.iter().all(|&n| (700..1300).contains(&n)), "{sizes:?}");
    }

    #[test]
    fn prehashed_keys_fold_both_halves() {
        let hash = |n: u128| PreHashedState::default().hash_one(n);
        assert_ne!(hash(1), hash(2));
        assert_ne!(hash(1 << 64), hash(2 << 64), "the high half counts too");
        let mut set: HashSet<u128, PreHashedState> = HashSet::default();
        for i in 0..1000u128 {
            set.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835));
        }
        assert_eq!(set.len(), 1000);
    }
}
