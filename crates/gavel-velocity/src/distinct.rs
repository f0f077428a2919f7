//! The state behind [`Aggregate::Distinct`](crate::Aggregate::Distinct):
//! exact while a key has few items, HyperLogLog sketches per bucket beyond.
//!
//! Items are hashed once with wyhash (64 bits, fixed seed, so the same item
//! is the same everywhere and a replay rebuilds the same state).
//!
//! - **Exact tier**: while the ring holds at most [`DISTINCT_EXACT_ITEMS`]
//!   items, each is kept as its hash plus a 60-bit mask of the buckets it
//!   was seen in (16 bytes an item). Any window is then answered exactly,
//!   up to a 64-bit hash collision: the odds that two of 32 items collide
//!   are below 32² / 2⁶⁵ ≈ 3·10⁻¹⁷.
//! - **Sketch tier**: one more item and the key switches to one
//!   `cardinality-estimator` sketch (HyperLogLog++, P = 12, six-bit
//!   registers, LogLog-Beta bias correction) per non-empty bucket, plus the
//!   union of them all, which answers reads of the window ending at the head
//!   in constant time. A sketch stores up to 128 items as 32-bit encoded
//!   hashes (exact unless two of them collide, odds below 128² / 2²⁷ ≈
//!   10⁻⁴) and past that 4096 registers (3 KiB): a relative standard error
//!   of [`DISTINCT_RELATIVE_ERROR`] (1.04 / √4096 ≈ 1.6 %), so 99.7 % of
//!   estimates fall within ±4.9 %. When the head moves past a non-empty
//!   bucket the union is rebuilt from the buckets left (at most 59 merges);
//!   reading any other window (a late event, or a read ahead of the head
//!   while old buckets still hold items) merges that window's buckets.
//!   A key returns to the exact tier once its ring empties.
//!
//! Memory per key is bounded by 61 sketches of 3 KiB (≈ 190 KiB) for a key
//! with more than 128 distinct items in every bucket, whatever the rate.

use cardinality_estimator::CardinalityEstimator;

use crate::BUCKETS;
use crate::map::{Value, alloc_size};
use crate::ring::{self, ALL_AGES, Ring};

/// Items a key's ring can hold before `distinct` switches from exact to
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

/// Items seen, each with the ages of the buckets it was seen in.
#[derive(Debug)]
pub(crate) struct Exact {
    head: i64,
    /// (item hash, bit `age` set: seen in bucket `head - age`).
    items: Vec<(u64, u64)>,
}

impl Exact {
    fn advance(&mut self, index: i64) {
        if index <= self.head {
            return;
        }
        let steps = index.saturating_sub(self.head);
        self.head = index;
        if steps >= BUCKETS as i64 {
            self.items.clear();
        } else {
            for (_, ages) in &mut self.items {
                *ages = (*ages << steps) & ALL_AGES;
            }
            self.items.retain(|(_, ages)| *ages != 0);
        }
        if self.items.capacity() > 4 * self.items.len().max(1) {
            self.items.shrink_to_fit();
        }
    }

    fn count(&self, index: i64) -> usize {
        let window = ring::window_ages(self.head, index);
        self.items.iter().filter(|(_, ages)| ages & window != 0).count()
    }
}

/// One sketch per non-empty bucket and their union.
#[derive(Debug)]
pub(crate) struct Sketched {
    ring: Ring<[Sketch; 2]>,
    /// Union of every bucket in the ring: the window ending at the head.
    union: Sketch,
}

impl Sketched {
    fn count(&self, index: i64) -> usize {
        let window = ring::window_ages(self.ring.head(), index);
        if self.ring.mask() & !window == 0 {
            return self.union.estimate();
        }
        let mut merged = Sketch::new();
        for sketch in self.ring.span(window).cells {
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
    /// At most [`DISTINCT_EXACT_ITEMS`] items in the ring.
    Exact(Exact),
    /// More than that since the ring was last empty.
    Sketched(Box<Sketched>),
}

impl DistinctState {
    /// An empty state whose newest bucket is `head`.
    pub(crate) fn new(head: i64) -> Self {
        DistinctState::Exact(Exact { head, items: Vec::new() })
    }

    /// The newest bucket index.
    pub(crate) fn head(&self) -> i64 {
        match self {
            DistinctState::Exact(e) => e.head,
            DistinctState::Sketched(s) => s.ring.head(),
        }
    }

    /// True when no bucket holds an item.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            DistinctState::Exact(e) => e.items.is_empty(),
            DistinctState::Sketched(s) => s.ring.is_empty(),
        }
    }

    /// Moves the head forward to `index`, dropping the buckets that leave.
    pub(crate) fn advance(&mut self, index: i64) {
        match self {
            DistinctState::Exact(e) => e.advance(index),
            DistinctState::Sketched(s) => {
                if s.ring.advance(index) {
                    if s.ring.is_empty() {
                        *self = DistinctState::new(index);
                        return;
                    }
                    let mut union = Sketch::new();
                    for sketch in s.ring.cells() {
                        union.merge(sketch);
                    }
                    s.union = union;
                }
            }
        }
    }

    /// Adds item `hash` to bucket `index`, which lies in the ring.
    pub(crate) fn add(&mut self, index: i64, hash: u64) {
        match self {
            DistinctState::Exact(e) => {
                debug_assert!(index <= e.head && !ring::too_late(e.head, index));
                // In the ring: 0 <= head - index < BUCKETS.
                let bit = 1u64 << (e.head - index);
                if let Some((_, ages)) = e.items.iter_mut().find(|(h, _)| *h == hash) {
                    *ages |= bit;
                } else if e.items.len() < DISTINCT_EXACT_ITEMS {
                    e.items.push((hash, bit));
                } else {
                    let mut sketched = Box::new(Sketched { ring: Ring::new(e.head), union: Sketch::new() });
                    for &(h, mut ages) in &e.items {
                        while ages != 0 {
                            let age = ages.trailing_zeros();
                            ages &= ages - 1;
                            sketched.ring.cell_mut(e.head - i64::from(age), Sketch::new).insert_hash(h);
                        }
                        sketched.union.insert_hash(h);
                    }
                    *self = DistinctState::Sketched(sketched);
                    self.add(index, hash);
                }
            }
            DistinctState::Sketched(s) => {
                s.ring.cell_mut(index, Sketch::new).insert_hash(hash);
                s.union.insert_hash(hash);
            }
        }
    }

    /// Distinct items in the window ending in bucket `index`.
    pub(crate) fn count(&self, index: i64) -> usize {
        match self {
            DistinctState::Exact(e) => e.count(index),
            DistinctState::Sketched(s) => s.count(index),
        }
    }

    /// True while answers are exact (up to hash collisions).
    #[cfg(test)]
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, DistinctState::Exact(_))
    }
}

impl Value for DistinctState {
    fn heap_bytes(&self) -> usize {
        match self {
            DistinctState::Exact(e) => alloc_size(e.items.capacity() * size_of::<(u64, u64)>()),
            DistinctState::Sketched(s) => s.heap_bytes(),
        }
    }

    fn recency(&self) -> i64 {
        self.head()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(state: &mut DistinctState, index: i64, items: std::ops::Range<u64>) {
        state.advance(index);
        for i in items {
            state.add(index, item_hash(&format!("item-{i}")));
        }
    }

    #[test]
    fn exact_tier_counts_windows_exactly() {
        let mut s = DistinctState::new(0);
        fill(&mut s, 0, 0..10);
        fill(&mut s, 30, 5..20);
        assert!(s.is_exact());
        assert_eq!(s.count(30), 20);
        assert_eq!(s.count(0), 10, "a late read sees only buckets up to 0");
        assert_eq!(s.count(60), 15, "bucket 0 has left the window ending at 60");
        s.advance(89);
        assert_eq!(s.count(89), 15);
        s.advance(90);
        assert!(s.is_empty());
    }

    #[test]
    fn switches_to_sketches_and_back() {
        let mut s = DistinctState::new(0);
        fill(&mut s, 0, 0..30);
        fill(&mut s, 1, 20..60);
        assert!(!s.is_exact());
        assert_eq!(s.count(1), 60, "the sketches hold few items exactly");
        assert_eq!(s.count(0), 30);
        assert_eq!(s.count(60), 40, "bucket 0 is out of the window ending at 60");
        s.advance(60);
        assert_eq!(s.count(60), 40, "the union was rebuilt without bucket 0");
        s.advance(200);
        assert!(s.is_exact() && s.is_empty());
    }

    #[test]
    fn large_cardinalities_stay_within_the_error_bound() {
        // Deterministic: fixed hash seed, fixed items.
        for n in [1_000u64, 10_000, 100_000, 1_000_000] {
            let mut s = DistinctState::new(0);
            // Spread over several buckets, with repeats.
            for i in 0..n {
                let index = (i % 7) as i64;
                s.advance(index);
                s.add(index.min(s.head()), item_hash(&format!("card-{i}")));
                s.add(s.head(), item_hash(&format!("card-{}", i / 2)));
            }
            let got = s.count(s.head()) as f64;
            let err = (got - n as f64).abs() / n as f64;
            assert!(err <= 3.0 * DISTINCT_RELATIVE_ERROR, "n = {n}: estimate {got}, error {err:.4}");
        }
    }
}
