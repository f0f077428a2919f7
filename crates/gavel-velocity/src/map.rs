//! The sharded key table every window and the label store keep their keys
//! in, with its cap, its eviction policy and its memory accounting.
//!
//! A key is hashed once (foldhash, seeded at random per table, so crafted
//! keys cannot pile into one slot chain); the hash picks a shard and then the
//! slot inside that shard's `hashbrown` table, so an update costs one hash,
//! one lock and one probe. Shards are independent `RwLock`s, padded apart so
//! that two threads on neighbouring shards do not share a cache line: there
//! is no global lock. Keys are kept exactly (never just their hash); keys of
//! up to 24 bytes live inline in the slot.
//!
//! This module does not know what a value means: values report their heap
//! bytes and their recency through [`Value`].

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use compact_str::CompactString;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

/// What a value in the table tells the table.
pub(crate) trait Value {
    /// Bytes of heap blocks the value owns, as [`alloc_size`] counts them.
    fn heap_bytes(&self) -> usize;
    /// How recently the key was active: the cap evicts the lowest first.
    fn recency(&self) -> i64;
}

/// What the allocator spends on a heap block of `request` bytes: glibc
/// malloc adds an 8-byte header, rounds to 16 and never hands out less than
/// 32. Other allocators differ by a few bytes per block.
pub(crate) fn alloc_size(request: usize) -> usize {
    if request == 0 { 0 } else { (request + 8).next_multiple_of(16).max(32) }
}

/// One key and its value.
pub(crate) struct Slot<V> {
    pub(crate) key: CompactString,
    pub(crate) value: V,
}

impl<V: Value> Slot<V> {
    fn heap_bytes(&self) -> usize {
        let key = if self.key.is_heap_allocated() { alloc_size(self.key.capacity()) } else { 0 };
        key + self.value.heap_bytes()
    }
}

/// One shard: a table and the heap bytes its slots own.
pub(crate) struct Shard<V> {
    table: HashTable<Slot<V>>,
    heap: usize,
}

impl<V: Value> Shard<V> {
    /// Evicts the `count` least recent keys (ties broken by table order) in
    /// one pass over the shard. Returns how many were evicted.
    fn evict_least_recent(&mut self, count: usize) -> usize {
        let mut ranks: Vec<i64> = self.table.iter().map(|s| s.value.recency()).collect();
        let count = count.min(ranks.len());
        if count == 0 {
            return 0;
        }
        let (_, cut, _) = ranks.select_nth_unstable(count - 1);
        let cut = *cut;
        let below = ranks.iter().filter(|r| **r < cut).count();
        let mut ties = count - below;
        let mut freed = 0;
        self.table.retain(|slot| {
            let r = slot.value.recency();
            let evict = r < cut
                || (r == cut && ties > 0 && {
                    ties -= 1;
                    true
                });
            if evict {
                freed += slot.heap_bytes();
            }
            !evict
        });
        self.heap -= freed;
        count
    }
}

/// A shard on a cache line (pair) of its own.
#[repr(align(128))]
struct Padded<V>(RwLock<Shard<V>>);

/// Keys to values, split into shards. Its `Debug` shows sizes, never keys.
pub(crate) struct ShardedMap<V> {
    shards: Box<[Padded<V>]>,
    /// Right shift that leaves a shard index from the hash bits below the
    /// top 7 (hashbrown keeps the top 7 for its control bytes and the low
    /// bits for the slot, so the shard takes neither).
    shift: u32,
    /// Keys per shard before the cap evicts.
    shard_cap: usize,
    hasher: foldhash::fast::RandomState,
}

impl<V: Value> fmt::Debug for ShardedMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedMap")
            .field("shards", &self.shards.len())
            .field("keys", &self.len())
            .field("shard_cap", &self.shard_cap)
            .finish_non_exhaustive()
    }
}

impl<V: Value> ShardedMap<V> {
    /// A map of `shards` shards (a power of two, checked by the caller)
    /// holding at most `max_keys` (rounded up to a multiple of `shards`).
    pub(crate) fn new(shards: usize, max_keys: Option<usize>) -> Self {
        debug_assert!(shards.is_power_of_two());
        let bits = shards.trailing_zeros();
        ShardedMap {
            shards: (0..shards).map(|_| Padded(RwLock::new(Shard { table: HashTable::new(), heap: 0 }))).collect(),
            shift: 64 - bits,
            shard_cap: max_keys.map_or(usize::MAX, |m| m.div_ceil(shards)),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard<V>> {
        let index = if self.shift == 64 { 0 } else { (hash << 7) >> self.shift };
        // index < shards.len(): it has `64 - shift` bits.
        &self.shards[index as usize].0
    }

    fn read_shard(lock: &RwLock<Shard<V>>) -> RwLockReadGuard<'_, Shard<V>> {
        // A panic while a shard was locked can at worst leave one key's
        // aggregate partly updated; the table itself stays sound, so keep
        // serving rather than fail every later event.
        lock.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_shard(lock: &RwLock<Shard<V>>) -> RwLockWriteGuard<'_, Shard<V>> {
        lock.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the value of `key`, creating it with `make` first if
    /// absent. When the key is new and its shard is full, first evicts the
    /// least recent sixteenth of the shard (at least one key). Returns what
    /// `f` returns and how many keys the cap evicted.
    pub(crate) fn upsert<R>(&self, key: &str, make: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> (R, usize) {
        let hash = self.hash(key);
        let mut guard = Self::write_shard(self.shard(hash));
        let shard = &mut *guard;
        let rehash = |slot: &Slot<V>| self.hash(&slot.key);
        let full = shard.table.len() >= self.shard_cap;
        match shard.table.entry(hash, |slot| slot.key == key, rehash) {
            Entry::Occupied(mut entry) => {
                let value = &mut entry.get_mut().value;
                let before = value.heap_bytes();
                let out = f(value);
                shard.heap = shard.heap - before + value.heap_bytes();
                (out, 0)
            }
            Entry::Vacant(entry) if !full => {
                let mut entry = entry.insert(Slot { key: CompactString::new(key), value: make() });
                let slot = entry.get_mut();
                let out = f(&mut slot.value);
                shard.heap += slot.heap_bytes();
                (out, 0)
            }
            Entry::Vacant(_) => {
                let evicted = shard.evict_least_recent((shard.table.len() / 16).max(1));
                let mut slot = Slot { key: CompactString::new(key), value: make() };
                let out = f(&mut slot.value);
                shard.heap += slot.heap_bytes();
                shard.table.insert_unique(hash, slot, rehash);
                (out, evicted)
            }
        }
    }

    /// Runs `f` on the value of `key`, if present, under a read lock.
    pub(crate) fn get<R>(&self, key: &str, f: impl FnOnce(&V) -> R) -> Option<R> {
        let hash = self.hash(key);
        let shard = Self::read_shard(self.shard(hash));
        shard.table.find(hash, |slot| slot.key == key).map(|slot| f(&slot.value))
    }

    /// Visits every value, one shard at a time, keeping those for which `f`
    /// returns true. Returns how many were removed.
    pub(crate) fn retain(&self, mut f: impl FnMut(&mut V) -> bool) -> usize {
        let mut removed = 0;
        for padded in &self.shards {
            let mut guard = Self::write_shard(&padded.0);
            let shard = &mut *guard;
            let mut heap = shard.heap;
            let before = shard.table.len();
            shard.table.retain(|slot| {
                let old = slot.heap_bytes();
                let keep = f(&mut slot.value);
                heap = heap - old + if keep { slot.heap_bytes() } else { 0 };
                keep
            });
            shard.heap = heap;
            removed += before - shard.table.len();
            if shard.table.len() * 4 < shard.table.capacity() {
                // Give back what a burst of keys grew, keeping room to double.
                let len = shard.table.len();
                shard.table.shrink_to(len * 2, |slot| self.hash(&slot.key));
            }
        }
        removed
    }

    /// Number of keys held.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|p| Self::read_shard(&p.0).table.len()).sum()
    }

    /// Estimated bytes held: the shards, their tables' allocations and the
    /// heap blocks their slots own.
    pub(crate) fn bytes(&self) -> usize {
        let shards: usize = self
            .shards
            .iter()
            .map(|p| {
                let shard = Self::read_shard(&p.0);
                alloc_size(shard.table.allocation_size()) + shard.heap
            })
            .sum();
        size_of::<Self>() + alloc_size(size_of_val(&*self.shards)) + shards
    }
}
