//! The state behind [`Aggregate::Distinct`](crate::Aggregate::Distinct):
//! exact while a key has few items, HyperLogLog sketches per bucket beyond.
//!
//! Items are hashed once with wyhash (64 bits, fixed seed, so the same item
//! is the same everywhere and a replay rebuilds the same state).
//!
//! - **Exact tier**: while the key holds at most [`DISTINCT_EXACT_ITEMS`]
//!   items, each is kept as its hash and the times of up to four of its
//!   occurrences (16 bytes each; see [`Exact`] for why four say everything).
//!   Any window is then answered exactly, up to a 64-bit hash collision:
//!   the odds that two of 32 items collide are below 32² / 2⁶⁵ ≈ 3·10⁻¹⁷.
//! - **Sketch tier**: one more item and the key switches to one
//!   `cardinality-estimator` sketch (HyperLogLog++, P = 12, six-bit
//!   registers, LogLog-Beta bias correction) per non-empty bucket, plus the
//!   union of those in the window ending at the key's newest time, which
//!   answers reads of that window in constant time. A sketch stores up to
//!   128 items as 32-bit encoded hashes (exact unless two of them collide,
//!   odds below 128² / 2²⁷ ≈ 10⁻⁴) and past that 4096 registers (3 KiB): a
//!   relative standard error of [`DISTINCT_RELATIVE_ERROR`] (1.04 / √4096 ≈
//!   1.6 %), so 99.7 % of estimates fall within ±4.9 %. Like every bucketed
//!   reading, a sketched one covers every bucket its window overlaps: it
//!   never misses an item of the window and may take in items from less
//!   than a bucket beyond either edge. When the window's first bucket moves
//!   past a non-empty one the union is rebuilt from the buckets left (at
//!   most 60 merges); reading any other window (a late event, or a read
//!   ahead of the newest time) merges that window's buckets. A key returns
//!   to the exact tier once it holds nothing.
//!
//! Memory per key is bounded: 128 occurrences in the exact tier (2 KiB);
//! 121 sketches of 3 KiB and their union (≈ 366 KiB) for a key with more
//! than 128 distinct items in every bucket of two windows, whatever the
//! rate.

use cardinality_estimator::CardinalityEstimator;

use crate::map::alloc_size;
use crate::ring::{Clock, Ring};
use crate::window::State;

/// Items a key can hold before `distinct` switches from exact to
/// HyperLogLog sketches.
pub const DISTINCT_EXACT_ITEMS: usize = 32;

/// Relative standard error of a `distinct` estimate past 128 items in the
/// window (HyperLogLog++ with 2¹² registers: 1.04 / √4096). Below that the
/// answer is exact up to hash collisions.
pub const DISTINCT_RELATIVE_ERROR: f64 = 0.01625;

/// HyperLogLog++ with 2¹² six-bit registers, fed our own 64-bit hashes.
type Sketch = CardinalityEstimator<u64>;

/// The 64-bit hash of an item.
pub(crate) fn item_hash(item: &str) -> u64 {
    wyhash::wyhash(item.as_bytes(), 0x6761_7665_6c5f_6964)
}

/// Items seen, each with the times that matter of its occurrences.
///
/// An item counts in the window ending at `t` when it occurred in
/// `(t − w, t]`: the union of `[o, o + w)` over its occurrences `o`. Of
/// three occurrences less than a window apart, the middle one adds nothing
/// to that union (the other two cover it), so it is dropped; within the two
/// windows a key keeps, that leaves at most four per item.
#[derive(Debug, Default)]
pub(crate) struct Exact {
    /// (item hash, occurrence time), sorted.
    seen: Vec<(u64, i64)>,
}

impl Exact {
    fn advance(&mut self, clock: &Clock, newest: i64) {
        let kept_after = clock.kept_after(newest);
        self.seen.retain(|(_, t)| *t > kept_after);
        if self.seen.capacity() > 4 * self.seen.len().max(1) {
            self.seen.shrink_to_fit();
        }
    }

    /// Number of distinct items held.
    fn items(&self) -> usize {
        self.seen.chunk_by(|a, b| a.0 == b.0).count()
    }

    /// Adds an occurrence; false (and nothing added) when the item is new
    /// and the tier is full.
    fn add(&mut self, clock: &Clock, hash: u64, t_ms: i64) -> bool {
        let lo = self.seen.partition_point(|(h, _)| *h < hash);
        let mut hi = self.seen.partition_point(|(h, _)| *h <= hash);
        if lo == hi && self.items() >= DISTINCT_EXACT_ITEMS {
            return false;
        }
        let at = lo + self.seen[lo..hi].partition_point(|(_, t)| *t < t_ms);
        if self.seen.get(at) == Some(&(hash, t_ms)) {
            return true;
        }
        if at == hi && hi - lo >= 2 && t_ms.saturating_sub(self.seen[hi - 2].1) < clock.window_ms() {
            // The newest occurrence, less than a window after the one
            // before last: the last one becomes the middle of three, and
            // the one before it was already a window from it, so this is
            // all the pruning there is.
            self.seen[hi - 1].1 = t_ms;
            return true;
        }
        self.seen.insert(at, (hash, t_ms));
        hi += 1;
        // Drop every middle occurrence of three less than a window apart.
        let mut i = lo + 1;
        while i + 1 < hi {
            if self.seen[i + 1].1.saturating_sub(self.seen[i - 1].1) < clock.window_ms() {
                self.seen.remove(i);
                hi -= 1;
                i = (i - 1).max(lo + 1);
            } else {
                i += 1;
            }
        }
        true
    }

    fn count(&self, clock: &Clock, t_ms: i64) -> usize {
        let start = clock.start(t_ms);
        self.seen.chunk_by(|a, b| a.0 == b.0).filter(|run| run.iter().any(|&(_, t)| start < t && t <= t_ms)).count()
    }
}

/// One sketch per non-empty bucket and the union of those in the window
/// ending at the key's newest time.
#[derive(Debug)]
pub(crate) struct Sketched {
    ring: Ring<[Sketch; 2]>,
    /// Union of the buckets from `union_from` to the head.
    union: Sketch,
    /// The first bucket of the window ending at the key's newest time.
    union_from: i64,
}

impl Sketched {
    /// The sketches of `exact`'s items, the head at `newest`'s bucket.
    fn from_exact(exact: &Exact, clock: &Clock, newest: i64) -> Box<Sketched> {
        let union_from = clock.window_buckets(newest).0;
        let mut sketched =
            Box::new(Sketched { ring: Ring::new(clock.bucket(newest)), union: Sketch::new(), union_from });
        for &(hash, t) in &exact.seen {
            sketched.add(clock, t, hash);
        }
        sketched
    }

    fn add(&mut self, clock: &Clock, t_ms: i64, hash: u64) {
        let bucket = clock.bucket(t_ms);
        self.ring.cell_mut(bucket, Sketch::new).insert_hash(hash);
        if bucket >= self.union_from {
            self.union.insert_hash(hash);
        }
    }

    /// Moves the head to `newest`'s bucket; false when nothing is left.
    fn advance(&mut self, clock: &Clock, newest: i64) -> bool {
        let from = clock.window_buckets(newest).0;
        let left_union = from > self.union_from && self.ring.occupied(self.union_from, from - 1) != 0;
        let (oldest, head) = clock.kept_buckets(newest);
        self.ring.advance(head, oldest);
        if self.ring.is_empty() {
            return false;
        }
        if left_union {
            self.union = Sketch::new();
            for sketch in self.ring.span(from, self.ring.head()).cells {
                self.union.merge(sketch);
            }
        }
        self.union_from = self.union_from.max(from);
        true
    }

    fn count(&self, clock: &Clock, t_ms: i64) -> usize {
        let (lo, hi) = clock.window_buckets(t_ms);
        if self.ring.occupied(lo, hi) == self.ring.occupied(self.union_from, self.ring.head()) {
            return self.union.estimate();
        }
        let mut merged = Sketch::new();
        for sketch in self.ring.span(lo, hi).cells {
            merged.merge(sketch);
        }
        merged.estimate()
    }

    fn heap_bytes(&self) -> usize {
        let sketch = |s: &Sketch| alloc_size(s.size_of() - size_of::<Sketch>());
        alloc_size(size_of::<Sketched>())
            + self.ring.heap_bytes()
            + self.ring.cells().iter().map(sketch).sum::<usize>()
            + sketch(&self.union)
    }
}

/// A key's distinct items: exact or sketched.
#[derive(Debug)]
pub(crate) enum DistinctState {
    /// At most [`DISTINCT_EXACT_ITEMS`] items held.
    Exact(Exact),
    /// More than that since the key last held nothing.
    Sketched(Box<Sketched>),
}

impl Default for DistinctState {
    fn default() -> Self {
        DistinctState::Exact(Exact::default())
    }
}

impl DistinctState {
    /// True while answers are exact (up to hash collisions).
    #[cfg(test)]
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, DistinctState::Exact(_))
    }
}

impl State for DistinctState {
    /// The item's hash.
    type In<'a> = u64;
    const EMPTY: Option<f64> = crate::Aggregate::Distinct.empty_value();
    const ANSWER_BEFORE: bool = false;

    fn advance(&mut self, clock: &Clock, newest: i64) {
        match self {
            DistinctState::Exact(e) => e.advance(clock, newest),
            DistinctState::Sketched(s) => {
                if !s.advance(clock, newest) {
                    *self = DistinctState::default();
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            DistinctState::Exact(e) => e.seen.is_empty(),
            DistinctState::Sketched(s) => s.ring.is_empty(),
        }
    }

    fn add(&mut self, clock: &Clock, newest: i64, t_ms: i64, hash: u64) -> usize {
        if let DistinctState::Exact(e) = self {
            if e.add(clock, hash, t_ms) {
                return 0;
            }
            *self = DistinctState::Sketched(Sketched::from_exact(e, clock, newest));
        }
        if let DistinctState::Sketched(s) = self {
            s.add(clock, t_ms, hash);
        }
        0
    }

    fn read(&self, clock: &Clock, t_ms: i64) -> Option<f64> {
        let n = match self {
            DistinctState::Exact(e) => e.count(clock, t_ms),
            DistinctState::Sketched(s) => s.count(clock, t_ms),
        };
        Some(n as f64)
    }

    fn heap_bytes(&self) -> usize {
        match self {
            DistinctState::Exact(e) => alloc_size(e.seen.capacity() * size_of::<(u64, i64)>()),
            DistinctState::Sketched(s) => s.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 60_000;

    fn fill(state: &mut DistinctState, clock: &Clock, newest: &mut i64, t: i64, items: std::ops::Range<u64>) {
        if t > *newest {
            *newest = t;
            state.advance(clock, t);
        }
        for i in items {
            state.add(clock, *newest, t, item_hash(&format!("item-{i}")));
        }
    }

    #[test]
    fn exact_tier_counts_windows_exactly() {
        let clock = Clock::new(W);
        let (mut s, mut newest) = (DistinctState::default(), 0);
        fill(&mut s, &clock, &mut newest, 0, 0..10);
        fill(&mut s, &clock, &mut newest, 30_000, 5..20);
        assert!(s.is_exact());
        assert_eq!(s.read(&clock, 30_000), Some(20.0));
        assert_eq!(s.read(&clock, 0), Some(10.0), "a late read sees only what came by then");
        assert_eq!(s.read(&clock, 59_999), Some(20.0));
        assert_eq!(s.read(&clock, 60_000), Some(15.0), "the items seen only at 0 are exactly a window old");
        s.advance(&clock, 149_999);
        assert_eq!(s.read(&clock, 89_999), Some(15.0), "kept for late events two windows back");
        s.advance(&clock, 150_000);
        assert!(s.is_empty());
    }

    #[test]
    fn keeps_at_most_four_occurrences_an_item_and_the_same_answers() {
        let clock = Clock::new(W);
        let (mut s, mut newest) = (DistinctState::default(), 0);
        let times: Vec<i64> = (0..200).map(|i| i * 600).collect();
        for &t in &times {
            fill(&mut s, &clock, &mut newest, t, 0..1);
        }
        let DistinctState::Exact(e) = &s else { panic!("one item is exact") };
        assert!(e.seen.len() <= 4, "{:?}", e.seen);
        for t in (newest - 60_000..=newest + 61_000).step_by(250) {
            let truth = times.iter().any(|&o| t - 60_000 < o && o <= t);
            assert_eq!(s.read(&clock, t), Some(f64::from(u8::from(truth))), "t = {t}");
        }
    }

    #[test]
    fn switches_to_sketches_and_back() {
        let clock = Clock::new(W);
        let (mut s, mut newest) = (DistinctState::default(), 0);
        fill(&mut s, &clock, &mut newest, 1_000, 0..30);
        fill(&mut s, &clock, &mut newest, 2_000, 20..60);
        assert!(!s.is_exact());
        assert_eq!(s.read(&clock, 2_000), Some(60.0), "the sketches hold few items exactly");
        assert_eq!(s.read(&clock, 1_000), Some(30.0));
        assert_eq!(s.read(&clock, 61_000), Some(40.0), "bucket (0, 1000] is out of (1000, 61 000]");
        s.advance(&clock, 61_000);
        assert_eq!(s.read(&clock, 61_000), Some(40.0), "the union was rebuilt without bucket 0");
        s.advance(&clock, 200_000);
        assert!(s.is_exact() && s.is_empty());
    }

    #[test]
    fn large_cardinalities_stay_within_the_error_bound() {
        // Deterministic: fixed hash seed, fixed items.
        let clock = Clock::new(W);
        for n in [1_000u64, 10_000, 100_000, 1_000_000] {
            let (mut s, mut newest) = (DistinctState::default(), 0);
            // Spread over several buckets, with repeats.
            for i in 0..n {
                let t = (i % 7) as i64 * 1_000;
                if t > newest {
                    newest = t;
                    s.advance(&clock, t);
                }
                s.add(&clock, newest, t, item_hash(&format!("card-{i}")));
                s.add(&clock, newest, newest, item_hash(&format!("card-{}", i / 2)));
            }
            let got = s.read(&clock, newest).unwrap_or(0.0);
            let err = (got - n as f64).abs() / n as f64;
            assert!(err <= 3.0 * DISTINCT_RELATIVE_ERROR, "n = {n}: estimate {got}, error {err:.4}");
        }
    }
}
