//! [`LabelStore`]: labels on entities (a user marked `bot`, a card marked
//! `stolen`) as facts in event time.
//!
//! An event at time `t` sees the labels that held at `t`: set at or before
//! `t` for a time to live that has not run out at `t`, and not removed
//! between the set and `t`. A `set` at `s` for `ttl` makes the label hold
//! over `[s, s + ttl)`; a `remove` at `r` ends, at `r`, every set made at
//! or before `r` (a set and a remove at the same millisecond: the remove
//! wins), and leaves later sets alone. So a late event from before a label
//! was set does not see it, and one from after a remove does not either,
//! whatever order the sets, removes and reads arrive in.
//!
//! Each label keeps the spells it holds over ([`SPELLS`] at most) and the
//! times it was removed at ([`SPELLS`] at most), so the store stays bounded
//! however often a rule fires. Replaying the events that set and remove
//! labels (warm-up) rebuilds the same answers in any order within those
//! bounds, with one limit: two spells that overlap are kept as one once a
//! label has more than `SPELLS` of them, and a remove that arrives after
//! both, at a time between their starts, then ends the later one too.
//! Labels share the windows' sharded key table, so they need no global lock
//! and are accounted the same way. This module does not decide who gets a
//! label or for how long; rules and the engine do.

use compact_str::CompactString;
use smallvec::SmallVec;

use crate::map::{ShardedMap, Value, alloc_size};
use crate::window::DEFAULT_SHARDS;
use crate::{Result, VelocityError};

/// Spells, and remove times, a label keeps: past that the oldest overlapping
/// spells merge, or the oldest spell is forgotten; the oldest remove time is
/// forgotten.
pub const SPELLS: usize = 4;

/// One spell: the label holds over `[from, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spell {
    from: i64,
    until: i64,
}

/// One label of an entity, in event time.
#[derive(Debug)]
struct Label {
    name: CompactString,
    /// Disjoint or overlapping, sorted by start; each ends at the first
    /// remove at or after its start.
    spells: SmallVec<[Spell; 1]>,
    /// Times of the latest removes, sorted.
    removes: SmallVec<[i64; 2]>,
}

impl Label {
    fn holds(&self, t_ms: i64) -> bool {
        self.spells.iter().any(|s| s.from <= t_ms && t_ms < s.until)
    }

    fn set(&mut self, from: i64, until: i64) {
        // A remove at or after the start ends the spell there.
        let until = self.removes.iter().find(|&&r| r >= from).map_or(until, |&r| until.min(r));
        if until <= from {
            return;
        }
        let spell = Spell { from, until };
        match self.spells.iter_mut().find(|s| s.from == from) {
            // The same start: the longer spell says it all.
            Some(same) => same.until = same.until.max(until),
            None => {
                let at = self.spells.partition_point(|s| s.from < from);
                self.spells.insert(at, spell);
            }
        }
        if self.spells.len() > SPELLS {
            match (1..self.spells.len()).find(|&i| self.spells[i].from <= self.spells[i - 1].until) {
                Some(i) => {
                    self.spells[i - 1].until = self.spells[i - 1].until.max(self.spells[i].until);
                    self.spells.remove(i);
                }
                None => {
                    self.spells.remove(0);
                }
            }
        }
    }

    /// Returns true when the label held at `at`.
    fn remove(&mut self, at: i64) -> bool {
        let held = self.holds(at);
        for s in &mut self.spells {
            if s.from <= at && at < s.until {
                s.until = at;
            }
        }
        self.spells.retain(|s| s.from < s.until);
        if let Err(i) = self.removes.binary_search(&at) {
            self.removes.insert(i, at);
            if self.removes.len() > SPELLS {
                self.removes.remove(0);
            }
        }
        held
    }

    /// Forgets what ended at or before `now_ms`; false when nothing is left.
    fn forget_before(&mut self, now_ms: i64) -> bool {
        self.spells.retain(|s| now_ms < s.until);
        self.removes.retain(|r| now_ms < *r);
        if self.spells.spilled() && self.spells.len() <= self.spells.inline_size() {
            self.spells.shrink_to_fit();
        }
        if self.removes.spilled() && self.removes.len() <= self.removes.inline_size() {
            self.removes.shrink_to_fit();
        }
        !self.spells.is_empty() || !self.removes.is_empty()
    }

    fn heap_bytes(&self) -> usize {
        let name = if self.name.is_heap_allocated() { alloc_size(self.name.capacity()) } else { 0 };
        let spells = if self.spells.spilled() { alloc_size(self.spells.capacity() * size_of::<Spell>()) } else { 0 };
        let removes = if self.removes.spilled() { alloc_size(self.removes.capacity() * size_of::<i64>()) } else { 0 };
        name + spells + removes
    }
}

/// One entity's labels.
#[derive(Debug, Default)]
struct Labels(SmallVec<[Label; 1]>);

impl Labels {
    fn get_or_insert(&mut self, name: &str) -> &mut Label {
        let at = match self.0.iter().position(|l| l.name == name) {
            Some(at) => at,
            None => {
                self.0.push(Label {
                    name: CompactString::new(name),
                    spells: SmallVec::new(),
                    removes: SmallVec::new(),
                });
                self.0.len() - 1
            }
        };
        &mut self.0[at]
    }
}

impl Value for Labels {
    fn heap_bytes(&self) -> usize {
        let list = if self.0.spilled() { alloc_size(self.0.capacity() * size_of::<Label>()) } else { 0 };
        list + self.0.iter().map(Label::heap_bytes).sum::<usize>()
    }

    fn recency(&self) -> i64 {
        self.0.iter().flat_map(|l| &l.spells).map(|s| s.until).max().unwrap_or(i64::MIN)
    }
}

/// Labels on entities, in event time.
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
    /// milliseconds: the label holds at times from `t_ms` to before `t_ms +
    /// ttl_ms` (saturating, so `u64::MAX` never expires), up to the first
    /// remove at or after `t_ms`. Events before `t_ms` do not see it.
    pub fn set(&self, entity: &str, label: &str, t_ms: i64, ttl_ms: u64) {
        let until = t_ms.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        self.map.upsert(entity, Labels::default, |labels| labels.get_or_insert(label).set(t_ms, until));
    }

    /// Removes `label` from `entity` from event time `t_ms` on: every set at
    /// or before `t_ms` ends there; events before `t_ms`, and sets after it,
    /// are unaffected. Returns true if the label held at `t_ms`.
    pub fn remove(&self, entity: &str, label: &str, t_ms: i64) -> bool {
        self.map.upsert(entity, Labels::default, |labels| labels.get_or_insert(label).remove(t_ms)).0
    }

    /// True when `entity` carries `label` at event time `t_ms`.
    pub fn has(&self, entity: &str, label: &str, t_ms: i64) -> bool {
        self.map.get(entity, |labels| labels.0.iter().any(|l| l.name == label && l.holds(t_ms))).unwrap_or(false)
    }

    /// The labels `entity` carries at `t_ms`, in the order they were first
    /// set or removed.
    pub fn labels(&self, entity: &str, t_ms: i64) -> Vec<String> {
        self.map
            .get(entity, |labels| labels.0.iter().filter(|l| l.holds(t_ms)).map(|l| l.name.to_string()).collect())
            .unwrap_or_default()
    }

    /// Forgets every spell and remove that ended at or before `now_ms`, and
    /// entities left with none: afterwards, an event older than `now_ms`
    /// no longer sees a label that had expired by `now_ms`. Returns how many
    /// labels were dropped. O(entities), one shard at a time.
    pub fn evict_expired(&self, now_ms: i64) -> usize {
        let mut dropped = 0;
        self.map.retain(|labels| {
            let before = labels.0.len();
            labels.0.retain(|l| l.forget_before(now_ms));
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
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_label_holds_from_its_set_until_its_ttl() {
        let s = LabelStore::new();
        s.set("u1", "bot", 1_000, 500);
        assert!(!s.has("u1", "bot", 999), "an event from before the set does not see it");
        assert!(s.has("u1", "bot", 1_000));
        assert!(s.has("u1", "bot", 1_001));
        assert!(s.has("u1", "bot", 1_499));
        assert!(!s.has("u1", "bot", 1_500), "expired");
        assert!(!s.has("u1", "fraud", 1_000));
        assert!(!s.has("u2", "bot", 1_000));
    }

    #[test]
    fn a_remove_ends_earlier_sets_from_its_own_time() {
        let s = LabelStore::new();
        s.set("u1", "bot", 1_000, 10_000);
        assert!(s.remove("u1", "bot", 5_000));
        assert!(s.has("u1", "bot", 4_999), "an event before the remove still sees it");
        assert!(!s.has("u1", "bot", 5_000) && !s.has("u1", "bot", 9_000), "removed");
        // A later set starts a new spell; a late one from before the remove
        // ends at the remove.
        s.set("u1", "bot", 7_000, 1_000);
        s.set("u1", "bot", 3_000, 100_000);
        assert!(s.has("u1", "bot", 7_500) && !s.has("u1", "bot", 8_000));
        assert!(s.has("u1", "bot", 4_999) && !s.has("u1", "bot", 6_000));
        // The same millisecond: the remove wins.
        s.set("u2", "bot", 1_000, 500);
        s.remove("u2", "bot", 1_000);
        assert!(!s.has("u2", "bot", 1_000));
        assert!(!s.remove("u3", "vip", 0));
    }

    #[test]
    fn the_later_expiry_wins_in_any_order() {
        let a = LabelStore::new();
        a.set("u1", "bot", 1_000, 500);
        a.set("u1", "bot", 900, 100);
        let b = LabelStore::new();
        b.set("u1", "bot", 900, 100);
        b.set("u1", "bot", 1_000, 500);
        for t in [899, 900, 950, 1_000, 1_100, 1_499, 1_500] {
            assert_eq!(a.has("u1", "bot", t), b.has("u1", "bot", t), "t = {t}");
        }
        assert!(a.has("u1", "bot", 1_499) && !a.has("u1", "bot", 899));
    }

    #[test]
    fn a_bot_labelled_at_every_bid_costs_a_few_spells() {
        let s = LabelStore::new();
        s.set("u1", "bot", 0, 60_000);
        let bytes = s.bytes();
        for i in 1..10_000 {
            s.set("u1", "bot", i * 1_000, 60_000);
        }
        assert!(s.has("u1", "bot", 0) && s.has("u1", "bot", 10_058_999) && !s.has("u1", "bot", 10_059_000));
        assert!(!s.has("u1", "bot", -1));
        assert!(s.bytes() - bytes <= 160, "{} more bytes than one spell", s.bytes() - bytes);
    }

    #[test]
    fn remove_and_eviction() {
        let s = LabelStore::new();
        s.set("u1", "bot", 0, 100);
        s.set("u1", "vip", 0, 1_000);
        s.set("u1", "a-label-name-longer-than-24-bytes", 0, u64::MAX);
        s.set("u2", "bot", 0, 100);
        assert_eq!(s.labels("u1", 50), ["bot", "vip", "a-label-name-longer-than-24-bytes"]);
        assert!(s.remove("u1", "vip", 50));
        assert!(!s.remove("u1", "vip", 60));
        assert_eq!(s.labels("u1", 60), ["bot", "a-label-name-longer-than-24-bytes"]);
        assert_eq!(s.labels("u1", 40), ["bot", "vip", "a-label-name-longer-than-24-bytes"]);
        assert_eq!(s.len(), 2);
        let bytes = s.bytes();
        assert_eq!(s.evict_expired(100), 3, "both bots end at 100, vip's spell and remove before");
        assert_eq!(s.len(), 1, "u2 had nothing left");
        assert!(s.has("u1", "a-label-name-longer-than-24-bytes", i64::MAX - 1), "never expires");
        assert!(s.bytes() <= bytes);
        assert!(s.remove("u1", "a-label-name-longer-than-24-bytes", 200));
        assert_eq!(s.evict_expired(300), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn rejects_bad_shard_counts() {
        assert!(LabelStore::with_shards(6).is_err());
        assert!(LabelStore::with_shards(1).is_ok());
    }

    /// A set (`ttl: Some`) or remove (`None`) of one label, at a time.
    type Op = (i64, Option<u64>);

    /// The semantics, spelled out: some set at or before `t` whose time to
    /// live has not run out, with no remove between it and `t`.
    fn holds(ops: &[Op], t: i64) -> bool {
        ops.iter().any(|&(s, ttl)| {
            ttl.is_some_and(|ttl| s <= t && t < s + ttl as i64)
                && !ops.iter().any(|&(r, ttl)| ttl.is_none() && s <= r && r <= t)
        })
    }

    proptest! {
        /// Up to SPELLS sets and SPELLS removes of a label, applied in two
        /// orders: both answer every time exactly as the semantics say.
        #[test]
        fn any_order_answers_as_in_event_time(
            sets in proptest::collection::vec((0i64..100, 1u64..60), 0..=SPELLS),
            removes in proptest::collection::vec(0i64..100, 0..=SPELLS),
            shuffle in any::<proptest::sample::Index>(),
        ) {
            let mut ops: Vec<Op> = sets.iter().map(|&(t, ttl)| (t, Some(ttl))).collect();
            ops.extend(removes.iter().map(|&t| (t, None)));
            let mut shuffled = ops.clone();
            let n = shuffled.len().max(1);
            shuffled.rotate_left(shuffle.index(n) % n);
            shuffled.reverse();
            let stores = [LabelStore::with_shards(1).unwrap(), LabelStore::with_shards(1).unwrap()];
            for (store, order) in stores.iter().zip([&ops, &shuffled]) {
                for &(t, ttl) in order {
                    match ttl {
                        Some(ttl) => store.set("u", "bot", t, ttl),
                        None => { store.remove("u", "bot", t); }
                    }
                }
            }
            for t in -1..170 {
                let want = holds(&ops, t);
                prop_assert_eq!(stores[0].has("u", "bot", t), want, "in order, t = {}", t);
                prop_assert_eq!(stores[1].has("u", "bot", t), want, "shuffled, t = {}", t);
            }
            // Eviction forgets only what ended by then.
            stores[0].evict_expired(50);
            for t in 50..170 {
                prop_assert_eq!(stores[0].has("u", "bot", t), holds(&ops, t), "after eviction, t = {}", t);
            }
        }
    }
}
