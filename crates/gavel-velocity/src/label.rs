//! [`LabelStore`]: labels on entities (a user marked `bot`, a card marked
//! `stolen`) that hold until their time to live runs out, in event time.
//!
//! Labels share the windows' sharded key table, so they need no global lock
//! and are accounted the same way. A label's expiry is the latest of its
//! `set`s' `t + ttl`: setting is commutative, so replaying the events that
//! set labels (warm-up) rebuilds the same store in any order. `remove`
//! forgets a label at once. This module does not decide who gets a label or
//! for how long; rules and the engine do.

use compact_str::CompactString;
use smallvec::SmallVec;

use crate::map::{ShardedMap, Value, alloc_size};
use crate::window::DEFAULT_SHARDS;
use crate::{Result, VelocityError};

/// One entity's labels, each with the first millisecond it no longer holds.
#[derive(Debug, Default)]
struct Labels(SmallVec<[(CompactString, i64); 1]>);

impl Value for Labels {
    fn heap_bytes(&self) -> usize {
        let list = if self.0.spilled() { alloc_size(self.0.capacity() * size_of::<(CompactString, i64)>()) } else { 0 };
        let names: usize = self
            .0
            .iter()
            .filter(|(name, _)| name.is_heap_allocated())
            .map(|(name, _)| alloc_size(name.capacity()))
            .sum();
        list + names
    }

    fn recency(&self) -> i64 {
        self.0.iter().map(|(_, until)| *until).max().unwrap_or(i64::MIN)
    }
}

/// Labels on entities, each expiring after its time to live.
///
/// Shared by all shard threads through `&self` (`Send + Sync`).
#[derive(Debug)]
pub struct LabelStore {
    map: ShardedMap<Labels>,
}

impl Default for LabelStore {
    fn default() -> Self {
        LabelStore::new()
    }
}

impl LabelStore {
    /// An empty store with [`DEFAULT_SHARDS`] shards.
    pub fn new() -> LabelStore {
        LabelStore { map: ShardedMap::new(DEFAULT_SHARDS, None) }
    }

    /// An empty store with `shards` shards (a power of two, 1 to 1024).
    pub fn with_shards(shards: usize) -> Result<LabelStore> {
        if !shards.is_power_of_two() || shards > 1024 {
            return Err(VelocityError::BadShardCount(shards));
        }
        Ok(LabelStore { map: ShardedMap::new(shards, None) })
    }

    /// Labels `entity` with `label` from event time `t_ms` for `ttl_ms`
    /// milliseconds: the label holds for times before `t_ms + ttl_ms`
    /// (saturating, so `u64::MAX` never expires). If the label is already
    /// set, the later expiry wins.
    pub fn set(&self, entity: &str, label: &str, t_ms: i64, ttl_ms: u64) {
        let until = t_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        self.map.upsert(entity, Labels::default, |labels| match labels.0.iter_mut().find(|(name, _)| name == label) {
            Some((_, old)) => *old = (*old).max(until),
            None => labels.0.push((CompactString::new(label), until)),
        });
    }

    /// Removes `label` from `entity` whatever its expiry. Returns true if it
    /// was set (expired or not, until evicted).
    pub fn remove(&self, entity: &str, label: &str) -> bool {
        let mut found = false;
        self.map.update(entity, |labels| {
            let before = labels.0.len();
            labels.0.retain(|(name, _)| name != label);
            found = labels.0.len() < before;
            !labels.0.is_empty()
        });
        found
    }

    /// True when `entity` carries `label` at event time `t_ms`: set and not
    /// yet expired. A label also holds for events older than its `set`
    /// (a late event of a user marked `bot` is still the bot's).
    pub fn has(&self, entity: &str, label: &str, t_ms: i64) -> bool {
        self.map
            .get(entity, |labels| labels.0.iter().any(|(name, until)| name == label && t_ms < *until))
            .unwrap_or(false)
    }

    /// The labels `entity` carries at `t_ms`, in the order they were first
    /// set.
    pub fn labels(&self, entity: &str, t_ms: i64) -> Vec<String> {
        self.map
            .get(entity, |labels| {
                labels.0.iter().filter(|(_, until)| t_ms < *until).map(|(name, _)| name.to_string()).collect()
            })
            .unwrap_or_default()
    }

    /// Drops every label expired at `now_ms`, and entities left with none.
    /// Returns how many labels were dropped. O(entities), one shard at a
    /// time.
    pub fn evict_expired(&self, now_ms: i64) -> usize {
        let mut dropped = 0;
        self.map.retain(|labels| {
            let before = labels.0.len();
            labels.0.retain(|(_, until)| now_ms < *until);
            dropped += before - labels.0.len();
            if labels.0.spilled() && labels.0.len() <= labels.0.inline_size() {
                labels.0.shrink_to_fit();
            }
            !labels.0.is_empty()
        });
        dropped
    }

    /// Number of entities with at least one label (expired ones included
    /// until evicted).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no entity has a label.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held, counted like [`crate::Window::bytes`].
    pub fn bytes(&self) -> usize {
        self.map.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_hold_until_their_ttl() {
        let s = LabelStore::new();
        s.set("u1", "bot", 1_000, 500);
        assert!(s.has("u1", "bot", 1_000));
        assert!(s.has("u1", "bot", 1_499));
        assert!(!s.has("u1", "bot", 1_500));
        assert!(s.has("u1", "bot", 0), "late events are still the bot's");
        assert!(!s.has("u1", "fraud", 1_000));
        assert!(!s.has("u2", "bot", 1_000));
    }

    #[test]
    fn the_later_expiry_wins_in_any_order() {
        let a = LabelStore::new();
        a.set("u1", "bot", 1_000, 500);
        a.set("u1", "bot", 900, 100);
        let b = LabelStore::new();
        b.set("u1", "bot", 900, 100);
        b.set("u1", "bot", 1_000, 500);
        for t in [950, 1_100, 1_499, 1_500] {
            assert_eq!(a.has("u1", "bot", t), b.has("u1", "bot", t), "t = {t}");
        }
        assert!(a.has("u1", "bot", 1_499));
    }

    #[test]
    fn remove_and_eviction() {
        let s = LabelStore::new();
        s.set("u1", "bot", 0, 100);
        s.set("u1", "vip", 0, 1_000);
        s.set("u1", "a-label-name-longer-than-24-bytes", 0, u64::MAX);
        s.set("u2", "bot", 0, 100);
        assert_eq!(s.labels("u1", 50), ["bot", "vip", "a-label-name-longer-than-24-bytes"]);
        assert!(s.remove("u1", "vip"));
        assert!(!s.remove("u1", "vip"));
        assert!(!s.remove("u3", "vip"));
        assert_eq!(s.len(), 2);
        let bytes = s.bytes();
        assert_eq!(s.evict_expired(100), 2, "both bots expire at 100");
        assert_eq!(s.len(), 1, "u2 had nothing left");
        assert!(s.has("u1", "a-label-name-longer-than-24-bytes", i64::MAX - 1), "never expires");
        assert!(s.bytes() <= bytes);
        assert!(s.remove("u1", "a-label-name-longer-than-24-bytes"));
        assert!(s.is_empty());
    }

    #[test]
    fn rejects_bad_shard_counts() {
        assert!(LabelStore::with_shards(6).is_err());
        assert!(LabelStore::with_shards(1).is_ok());
    }
}
