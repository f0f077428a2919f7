//! The state behind [`Aggregate::Recent`](crate::Aggregate::Recent): the
//! distinct items a key saw in its window, kept as the items themselves so
//! rules can test membership and intersect sets ("this bidder's device was
//! used by the seller's account in the last 30 days").
//!
//! A key holds at most [`RECENT_MAX_ITEMS`] items. Each keeps the times of
//! up to four of its occurrences, the same pruning `distinct`'s exact tier
//! uses: of three occurrences less than a window apart, the middle one adds
//! nothing to the union of their windows, so within the two windows a key
//! keeps, four say when the item counts. A reading at `t` is therefore
//! exact: the items with an occurrence in `(t − w, t]`, late events and
//! reads before the key's newest time included.
//!
//! When a new item arrives at a full key, the item whose newest occurrence
//! is oldest (ties: the smallest item) is dropped, and the table counts it
//! (`Window::dropped_by_bound_total`). A set at its bound therefore always
//! holds the most recently seen items: a member that was dropped reads as
//! absent until it is seen again. Memory per key is bounded: 64 items of up
//! to 24 bytes inline, each with four times (about 4 KiB); longer items add
//! their length.

use compact_str::CompactString;
use smallvec::SmallVec;

use crate::map::alloc_size;
use crate::ring::Clock;
use crate::window::State;

/// Items a `recent` key holds; past that the least recently seen is dropped.
pub const RECENT_MAX_ITEMS: usize = 64;

/// One item and the times of the occurrences that still matter, oldest
/// first.
#[derive(Debug)]
struct Item {
    value: CompactString,
    seen: SmallVec<[i64; 4]>,
}

impl Item {
    fn newest(&self) -> i64 {
        self.seen.last().copied().unwrap_or(i64::MIN)
    }

    /// Whether the item occurred in `(start, t]`.
    fn in_window(&self, start: i64, t: i64) -> bool {
        self.seen.iter().any(|&o| start < o && o <= t)
    }

    /// The item's newest occurrence no later than `t`.
    fn newest_by(&self, t: i64) -> i64 {
        self.seen.iter().rev().find(|&&o| o <= t).copied().unwrap_or(i64::MIN)
    }

    /// Adds an occurrence and drops every middle one of three less than a
    /// window apart.
    fn add(&mut self, clock: &Clock, t_ms: i64) {
        let at = self.seen.partition_point(|&o| o < t_ms);
        if self.seen.get(at) == Some(&t_ms) {
            return;
        }
        self.seen.insert(at, t_ms);
        let mut i = 1;
        while i + 1 < self.seen.len() {
            if self.seen[i + 1].saturating_sub(self.seen[i - 1]) < clock.window_ms() {
                self.seen.remove(i);
                i = (i - 1).max(1);
            } else {
                i += 1;
            }
        }
    }
}

/// The items of one key.
#[derive(Debug, Default)]
pub(crate) struct RecentState {
    items: Vec<Item>,
}

impl RecentState {
    /// The items seen in the window ending at `t_ms`, the most recently
    /// seen (by `t_ms`) first, ties in item order.
    pub(crate) fn members(&self, clock: &Clock, t_ms: i64) -> Vec<String> {
        let start = clock.start(t_ms);
        let mut found: Vec<(i64, &str)> = self
            .items
            .iter()
            .filter(|item| item.in_window(start, t_ms))
            .map(|item| (item.newest_by(t_ms), item.value.as_str()))
            .collect();
        found.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        found.into_iter().map(|(_, v)| v.to_string()).collect()
    }

    /// Whether `item` was seen in the window ending at `t_ms`.
    pub(crate) fn contains(&self, clock: &Clock, t_ms: i64, item: &str) -> bool {
        let start = clock.start(t_ms);
        self.items.iter().any(|i| i.value == item && i.in_window(start, t_ms))
    }
}

impl State for RecentState {
    type In<'a> = &'a str;
    const EMPTY: Option<f64> = crate::Aggregate::Recent.empty_value();
    const ANSWER_BEFORE: bool = false;

    fn advance(&mut self, clock: &Clock, newest: i64) {
        let kept_after = clock.kept_after(newest);
        for item in &mut self.items {
            item.seen.retain(|o| *o > kept_after);
        }
        self.items.retain(|item| !item.seen.is_empty());
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn add(&mut self, clock: &Clock, _newest: i64, t_ms: i64, value: &str) -> usize {
        if let Some(item) = self.items.iter_mut().find(|i| i.value == value) {
            item.add(clock, t_ms);
            return 0;
        }
        let mut dropped = 0;
        if self.items.len() >= RECENT_MAX_ITEMS {
            let oldest = self
                .items
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| a.newest().cmp(&b.newest()).then(a.value.cmp(&b.value)))
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.items.swap_remove(i);
                dropped = 1;
            }
        }
        let mut seen = SmallVec::new();
        seen.push(t_ms);
        self.items.push(Item { value: CompactString::new(value), seen });
        dropped
    }

    fn read(&self, clock: &Clock, t_ms: i64) -> Option<f64> {
        let start = clock.start(t_ms);
        Some(self.items.iter().filter(|item| item.in_window(start, t_ms)).count() as f64)
    }

    fn heap_bytes(&self) -> usize {
        let items = alloc_size(self.items.capacity() * size_of::<Item>());
        let spilled: usize = self
            .items
            .iter()
            .map(|i| {
                let value = if i.value.is_heap_allocated() { alloc_size(i.value.capacity()) } else { 0 };
                let seen = if i.seen.spilled() { alloc_size(i.seen.capacity() * size_of::<i64>()) } else { 0 };
                value + seen
            })
            .sum();
        items + spilled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 60_000;

    fn state(events: &[(i64, &str)]) -> (RecentState, Clock, i64) {
        let clock = Clock::new(W);
        let (mut s, mut newest) = (RecentState::default(), i64::MIN);
        for &(t, v) in events {
            if t > newest {
                newest = t;
                s.advance(&clock, t);
            }
            s.add(&clock, newest, t, v);
        }
        (s, clock, newest)
    }

    #[test]
    fn members_are_the_items_of_the_window_newest_first() {
        let (s, clock, _) = state(&[(0, "a"), (10_000, "b"), (20_000, "a"), (30_000, "c")]);
        assert_eq!(s.members(&clock, 30_000), ["c", "a", "b"]);
        assert_eq!(s.read(&clock, 30_000), Some(3.0));
        // A window's edge: an occurrence exactly a window old is out.
        assert_eq!(s.members(&clock, 70_000), ["c", "a"]);
        assert_eq!(s.members(&clock, 69_999), ["c", "a", "b"]);
        assert!(s.contains(&clock, 79_999, "a"));
        assert!(!s.contains(&clock, 80_000, "a"));
    }

    #[test]
    fn a_late_read_sees_only_what_came_by_then() {
        let (s, clock, _) = state(&[(0, "a"), (30_000, "b"), (10_000, "c")]);
        assert_eq!(s.members(&clock, 10_000), ["c", "a"]);
        assert_eq!(s.members(&clock, 30_000), ["b", "c", "a"]);
        assert!(!s.contains(&clock, 5_000, "b"), "b came after 5 s");
    }

    #[test]
    fn pruned_occurrences_keep_every_window_exact() {
        // Many occurrences of one item: any read agrees with the raw times.
        let times: Vec<i64> = (0..40).map(|i| i * 7_919 % 110_000).collect();
        let events: Vec<(i64, &str)> = times.iter().map(|&t| (t, "x")).collect();
        let (s, clock, newest) = state(&events);
        assert!(s.items[0].seen.len() <= 4, "{:?}", s.items[0].seen);
        for t in (newest - W as i64 + 1..=newest + W as i64).step_by(997) {
            let expected = times.iter().any(|&o| t - (W as i64) < o && o <= t && o > clock.kept_after(newest));
            assert_eq!(s.contains(&clock, t, "x"), expected, "at {t}");
        }
    }

    #[test]
    fn a_full_set_drops_its_least_recently_seen_item() {
        let clock = Clock::new(W);
        let mut s = RecentState::default();
        let names: Vec<String> = (0..RECENT_MAX_ITEMS).map(|i| format!("item-{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(s.add(&clock, i as i64, i as i64, name), 0);
        }
        // item-0 is seen again, so item-1 is now the least recent.
        assert_eq!(s.add(&clock, 100, 100, "item-0"), 0);
        assert_eq!(s.read(&clock, 100), Some(RECENT_MAX_ITEMS as f64));
        assert_eq!(s.add(&clock, 101, 101, "new"), 1, "the bound bites");
        assert_eq!(s.read(&clock, 101), Some(RECENT_MAX_ITEMS as f64));
        assert!(!s.contains(&clock, 101, "item-1"));
        assert!(s.contains(&clock, 101, "item-0") && s.contains(&clock, 101, "new"));
        assert_eq!(s.members(&clock, 101)[..2], ["new", "item-0"]);
    }

    #[test]
    fn advancing_forgets_items_two_windows_old() {
        let (mut s, clock, _) = state(&[(0, "a"), (100_000, "b")]);
        s.advance(&clock, 120_000);
        assert_eq!(s.items.len(), 1);
        s.advance(&clock, 220_000);
        assert!(s.is_empty());
    }
}
