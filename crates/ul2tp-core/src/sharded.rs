//! A hash map split into shards, each behind its own reader-writer lock: the lookup tables
//! of the receive path.
//!
//! Why not a snapshot copied on every change (what the registry had): creating or deleting
//! one session copied every table, so the cost of a create grew with the number of sessions
//! (2.6 ms each at 5,000). Why not a lock-free map with tombstones (tried: `papaya`): with
//! sessions coming and going its probe sequences grew with every delete until the next
//! resize, 100-200 µs per create + delete at 10,000 sessions. Here a change locks one shard
//! of 64 for one `HashMap` insert or remove (O(1), freed slots are reused), and a lookup
//! takes one uncontended read lock and clones the value (an `Arc`), so readers on several
//! threads rarely meet and never wait for long.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const SHARDS: usize = 64;

/// A multiply-rotate hash (the Fx hash of rustc) for the small integer keys of these maps:
/// SipHash was half the receive path's time. Not resistant to chosen keys, which is fine
/// here: the keys inserted are the daemon's own tunnel and session ids (or ids the
/// administrator configured); a packet can only look one up.
#[derive(Debug, Clone, Copy, Default)]
pub struct FxBuildHasher;

/// The hasher of [`FxBuildHasher`].
#[derive(Debug, Default)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }
    fn write_u16(&mut self, v: u16) {
        self.add(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for FxBuildHasher {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher::default()
    }
}

/// A concurrent map from `K` to `V` (values are cloned out, so `V` is usually an `Arc`).
pub struct ShardedMap<K, V> {
    shards: Box<[RwLock<HashMap<K, V, FxBuildHasher>>]>,
}

impl<K: Hash + Eq, V: Clone> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> std::fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedMap").finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone> ShardedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    fn shard(&self, k: &K) -> &RwLock<HashMap<K, V, FxBuildHasher>> {
        // Bits 40..46 of the same hash: the shard's HashMap takes its bucket from the low
        // bits and its tag from the top 7, which must not be the same for a whole shard.
        let h = FxBuildHasher.hash_one(k);
        &self.shards[(h >> 40) as usize % SHARDS]
    }

    fn read(&self, k: &K) -> RwLockReadGuard<'_, HashMap<K, V, FxBuildHasher>> {
        self.shard(k).read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, k: &K) -> RwLockWriteGuard<'_, HashMap<K, V, FxBuildHasher>> {
        self.shard(k).write().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `k`.
    pub fn get(&self, k: &K) -> Option<V> {
        self.read(k).get(k).cloned()
    }

    /// Whether `k` has a value.
    pub fn contains_key(&self, k: &K) -> bool {
        self.read(k).contains_key(k)
    }

    /// Set the value of `k`, returning the old one.
    pub fn insert(&self, k: K, v: V) -> Option<V> {
        self.write(&k).insert(k, v)
    }

    /// Remove `k`, returning its value.
    pub fn remove(&self, k: &K) -> Option<V> {
        self.write(k).remove(k)
    }

    /// Replace the value of `k` by `f(old)` (`None`: remove it), atomically for this key.
    pub fn update(&self, k: K, f: impl FnOnce(Option<&V>) -> Option<V>) {
        let mut shard = self.write(&k);
        match f(shard.get(&k)) {
            Some(v) => {
                shard.insert(k, v);
            }
            None => {
                shard.remove(&k);
            }
        }
    }

    /// How many entries there are (locks every shard in turn; not a snapshot).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether the map is empty (see [`ShardedMap::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn insert_get_update_remove() {
        let m: ShardedMap<u32, Arc<str>> = ShardedMap::new();
        for i in 0..1000u32 {
            assert!(m.insert(i, Arc::from(i.to_string())).is_none());
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&7).as_deref(), Some("7"));
        assert!(m.contains_key(&999) && !m.contains_key(&1000));
        m.update(7, |old| old.map(|o| Arc::from(format!("{o}+"))));
        assert_eq!(m.get(&7).as_deref(), Some("7+"));
        m.update(7, |_| None);
        m.update(5000, |old| {
            assert!(old.is_none());
            Some(Arc::from("new"))
        });
        assert_eq!(m.get(&7), None);
        assert_eq!(m.remove(&5000).as_deref(), Some("new"));
        for i in 0..1000u32 {
            m.remove(&i);
        }
        assert!(m.is_empty());
    }

    #[test]
    fn readers_and_a_writer_on_threads() {
        let m: Arc<ShardedMap<u32, Arc<u32>>> = Arc::new(ShardedMap::new());
        for i in 0..100 {
            m.insert(i, Arc::new(i));
        }
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for round in 0..10_000u32 {
                        let k = round % 100;
                        // Keys below 50 are never touched by the writer.
                        if k < 50 {
                            assert_eq!(m.get(&k).as_deref(), Some(&k));
                        }
                    }
                })
            })
            .collect();
        for round in 0..10_000u32 {
            let k = 50 + round % 50;
            m.remove(&k);
            m.insert(k, Arc::new(k));
        }
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(m.len(), 100);
    }
}
