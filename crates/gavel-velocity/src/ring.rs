//! The arithmetic of windows ([`Clock`]) and the sparse ring of time
//! buckets a busy key keeps ([`Ring`]).
//!
//! A window of `w` ms read at time `t` covers `(t − w, t]`. Buckets are
//! `w / BUCKETS` wide (rounded up to a millisecond) and closed on the right:
//! bucket `i` holds the times in `(i·b, (i+1)·b]`, so a window whose start
//! falls on a bucket edge (every whole second of a 60 s window) is exactly
//! its `BUCKETS` buckets. A key keeps what it saw in the two windows ending
//! at its newest time (the second one serves late events, whose own window
//! reaches back past the first), which a ring of [`RING_BUCKETS`] buckets
//! always holds.
//!
//! A ring describes bucket `head - age` by bit `age` of an occupancy mask,
//! and only occupied buckets have a cell, stored oldest first: a key that saw
//! three events in one bucket costs one cell, not a hundred and twenty. This
//! module knows nothing of what a cell holds; `aggregate` and `distinct` do.

use std::fmt;

use smallvec::{Array, SmallVec};

use crate::BUCKETS;

/// Buckets a ring can hold: two windows' worth, plus the one a window's
/// start may fall inside.
pub(crate) const RING_BUCKETS: u32 = 2 * BUCKETS as u32 + 1;

/// Mask of every age a ring can hold.
const ALL_AGES: u128 = (1 << RING_BUCKETS) - 1;

/// Mask of ages `lo..hi` (`lo <= hi <= RING_BUCKETS`).
fn ages(lo: u32, hi: u32) -> u128 {
    ((1u128 << hi) - 1) & !((1u128 << lo) - 1)
}

/// One window's length and bucket width, and where its edges fall. All
/// arithmetic saturates: times near `i64::MIN` or `i64::MAX` do not wrap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    window_ms: i64,
    bucket_ms: i64,
    /// `w − 1` as whole buckets and a remainder, so that the bucket a
    /// window starts in follows from the bucket it ends in without a second
    /// division.
    one_back: (i64, i64),
    /// The same for `2w − 1`, back to the oldest bucket a key keeps.
    two_back: (i64, i64),
}

impl Clock {
    /// The clock of a window of `window_ms` (1 ms to 30 days, checked by the
    /// caller).
    pub(crate) fn new(window_ms: u64) -> Clock {
        // window_ms <= 30 days, so it and its bucket width fit in i64.
        let (window_ms, bucket_ms) = (window_ms as i64, window_ms.div_ceil(BUCKETS as u64) as i64);
        let back = |d: i64| (d.div_euclid(bucket_ms), d.rem_euclid(bucket_ms));
        Clock { window_ms, bucket_ms, one_back: back(window_ms - 1), two_back: back(2 * window_ms - 1) }
    }

    pub(crate) fn window_ms(&self) -> i64 {
        self.window_ms
    }

    pub(crate) fn bucket_ms(&self) -> i64 {
        self.bucket_ms
    }

    /// The bucket holding `t` (bucket `i` holds `(i·b, (i+1)·b]`) and the
    /// offset of `t` from its first millisecond.
    pub(crate) fn split(&self, t: i64) -> (i64, u32) {
        let x = t.saturating_sub(1);
        // 0 <= offset < bucket_ms <= 30 days / 60, which fits in u32.
        (x.div_euclid(self.bucket_ms), x.rem_euclid(self.bucket_ms) as u32)
    }

    /// The bucket holding `t`.
    pub(crate) fn bucket(&self, t: i64) -> i64 {
        self.split(t).0
    }

    /// The bucket holding `t − (k·b + s)`, from `t`'s bucket and offset.
    fn back(split: (i64, u32), (k, s): (i64, i64)) -> i64 {
        let (index, offset) = split;
        index.saturating_sub(k).saturating_sub(i64::from(i64::from(offset) < s))
    }

    /// The first millisecond of bucket `index`.
    pub(crate) fn bucket_start(&self, index: i64) -> i64 {
        index.saturating_mul(self.bucket_ms).saturating_add(1)
    }

    /// The exclusive start of the window ending at `t`: it covers
    /// `(start(t), t]`.
    pub(crate) fn start(&self, t: i64) -> i64 {
        t.saturating_sub(self.window_ms)
    }

    /// The first and last bucket the window ending at `t` overlaps.
    pub(crate) fn window_buckets(&self, t: i64) -> (i64, i64) {
        let split = self.split(t);
        (Self::back(split, self.one_back), split.0)
    }

    /// True when an event at `t` is too late for a key whose newest time is
    /// `newest`: a window or more older.
    pub(crate) fn too_late(&self, newest: i64, t: i64) -> bool {
        t <= self.start(newest)
    }

    /// A key whose newest time is `newest` keeps what came after this time:
    /// two windows.
    pub(crate) fn kept_after(&self, newest: i64) -> i64 {
        newest.saturating_sub(self.window_ms.saturating_mul(2))
    }

    /// The oldest bucket a key whose newest time is `newest` keeps, and the
    /// newest (`newest`'s own).
    pub(crate) fn kept_buckets(&self, newest: i64) -> (i64, i64) {
        let split = self.split(newest);
        (Self::back(split, self.two_back), split.0)
    }
}

/// The cells of one window: a run of a ring's cells, oldest bucket first.
#[derive(Debug)]
pub(crate) struct Span<'a, T> {
    /// The cells, oldest bucket first.
    pub(crate) cells: &'a [T],
    /// Bucket index of the first cell (of the head when there is none).
    pub(crate) oldest: i64,
    /// Bucket index of the last cell (of the head when there is none).
    pub(crate) newest: i64,
}

/// A sparse ring of cells, one per occupied bucket.
pub(crate) struct Ring<A: Array> {
    head: i64,
    /// Bit `age` set: bucket `head - age` has a cell.
    mask: u128,
    /// One cell per set bit of `mask`, oldest bucket first.
    cells: SmallVec<A>,
}

impl<A: Array<Item: fmt::Debug>> fmt::Debug for Ring<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("head", &self.head)
            .field("mask", &format_args!("{:#x}", self.mask))
            .field("cells", &&self.cells[..])
            .finish()
    }
}

impl<A: Array> Ring<A> {
    /// An empty ring whose newest bucket is `head`.
    pub(crate) fn new(head: i64) -> Self {
        Ring { head, mask: 0, cells: SmallVec::new() }
    }

    /// The newest bucket index.
    pub(crate) fn head(&self) -> i64 {
        self.head
    }

    /// True when no bucket holds anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// Moves the head forward to `head` (if newer) and drops the buckets
    /// older than `oldest`. Returns true when a cell was dropped.
    pub(crate) fn advance(&mut self, head: i64, oldest: i64) -> bool {
        let before = self.mask.count_ones();
        if head > self.head {
            let steps = head.saturating_sub(self.head);
            self.head = head;
            self.mask = if steps >= i64::from(RING_BUCKETS) { 0 } else { (self.mask << steps) & ALL_AGES };
        }
        // Ages above `head - oldest` are older than `oldest`.
        let keep = self.head.saturating_sub(oldest).saturating_add(1).clamp(0, i64::from(RING_BUCKETS));
        // Clamped to 0..=RING_BUCKETS, so the cast is exact.
        self.mask &= ages(0, keep as u32);
        // The buckets that left are the oldest, at the front.
        let dropped = (before - self.mask.count_ones()) as usize;
        if dropped > 0 {
            self.cells.drain(..dropped);
            if self.cells.spilled() && self.cells.len() <= self.cells.inline_size() {
                // Back to inline storage: frees the heap block.
                self.cells.shrink_to_fit();
            }
        }
        dropped > 0
    }

    /// Position in `cells` of the cell for `age` (set or not).
    fn position(&self, age: u32) -> usize {
        (self.mask >> (age + 1)).count_ones() as usize
    }

    /// The cell of bucket `index`, created with `make` if the bucket is
    /// empty. The bucket must lie in the ring: `head - RING_BUCKETS < index
    /// <= head`.
    pub(crate) fn cell_mut(&mut self, index: i64, make: impl FnOnce() -> A::Item) -> &mut A::Item {
        debug_assert!(index <= self.head && self.head.saturating_sub(index) < i64::from(RING_BUCKETS));
        // In the ring: 0 <= head - index < RING_BUCKETS.
        let age = (self.head - index) as u32;
        let at = self.position(age);
        if self.mask & (1 << age) == 0 {
            self.mask |= 1 << age;
            self.cells.insert(at, make());
        }
        &mut self.cells[at]
    }

    /// Mask of the ages of buckets `lo..=hi`, as far as the ring reaches.
    fn ages_of(&self, lo: i64, hi: i64) -> u128 {
        let limit = i64::from(RING_BUCKETS);
        let newest = self.head.saturating_sub(hi).clamp(0, limit);
        let oldest = self.head.saturating_sub(lo).saturating_add(1).clamp(0, limit);
        // Both clamped to 0..=RING_BUCKETS, so the casts are exact.
        if newest < oldest { ages(newest as u32, oldest as u32) } else { 0 }
    }

    /// Occupancy of buckets `lo..=hi`, as a mask of ages from the head.
    pub(crate) fn occupied(&self, lo: i64, hi: i64) -> u128 {
        self.mask & self.ages_of(lo, hi)
    }

    /// The cells of buckets `lo..=hi`.
    pub(crate) fn span(&self, lo: i64, hi: i64) -> Span<'_, A::Item> {
        let picked = self.occupied(lo, hi);
        if picked == 0 {
            return Span { cells: &[], oldest: self.head, newest: self.head };
        }
        let oldest = 127 - picked.leading_zeros();
        let newest = picked.trailing_zeros();
        // The buckets are contiguous, so every occupied age from `oldest`
        // down to `newest` is picked: their cells are one run.
        Span {
            cells: &self.cells[self.position(oldest)..=self.position(newest)],
            oldest: self.head - i64::from(oldest),
            newest: self.head - i64::from(newest),
        }
    }

    /// Every cell, oldest first.
    pub(crate) fn cells(&self) -> &[A::Item] {
        &self.cells
    }

    /// Heap bytes held beyond the inline cells.
    pub(crate) fn heap_bytes(&self) -> usize {
        if self.cells.spilled() { crate::map::alloc_size(self.cells.capacity() * size_of::<A::Item>()) } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_closed_on_the_right() {
        let c = Clock::new(60_000);
        assert_eq!(c.bucket_ms(), 1_000);
        assert_eq!((c.bucket(1), c.bucket(1_000), c.bucket(1_001)), (0, 0, 1));
        assert_eq!((c.bucket(0), c.bucket(-999), c.bucket(-1_000)), (-1, -1, -2));
        assert_eq!((c.bucket_start(1), c.split(1_001), c.split(2_000)), (1_001, (1, 0), (1, 999)));
        // (0, 60 000] is exactly buckets 0 to 59; (500, 60 500] overlaps 61.
        assert_eq!(c.window_buckets(60_000), (0, 59));
        assert_eq!(c.window_buckets(60_500), (0, 60));
        assert!(c.too_late(60_000, 0) && !c.too_late(60_000, 1));
        assert_eq!((c.kept_after(200_000), c.kept_buckets(200_000)), (80_000, (80, 199)));
        // Saturating, never wrapping.
        assert_eq!(c.start(i64::MIN + 5), i64::MIN);
        assert!(!c.too_late(i64::MIN + 5, i64::MIN + 1));
        assert_eq!(c.bucket_start(i64::MAX / 10), i64::MAX);
        // Windows that do not divide by 60 round the bucket up.
        assert_eq!(Clock::new(61).bucket_ms(), 2);
        assert_eq!(Clock::new(1).bucket_ms(), 1);
    }

    #[test]
    fn a_ring_always_holds_the_buckets_kept() {
        // Whatever the window and the newest time, the buckets from the
        // oldest kept to the head fit in the ring.
        for window in [1u64, 59, 60, 61, 119, 600_000, 7 * 86_400_000, crate::MAX_WINDOW_MS] {
            let c = Clock::new(window);
            for newest in [-7_919, 0, 1, 59, 60, 61, 1_000_003, 86_400_000 * 45 + 17] {
                let (oldest, head) = c.kept_buckets(newest);
                assert_eq!(oldest, c.bucket(c.kept_after(newest) + 1), "window {window} newest {newest}");
                assert_eq!(c.window_buckets(newest).0, c.bucket(c.start(newest) + 1));
                let span = head - oldest + 1;
                assert!(span <= i64::from(RING_BUCKETS), "window {window} newest {newest}: {span}");
            }
        }
    }

    #[test]
    fn cells_stay_sorted_and_leave_in_order() {
        let mut r: Ring<[u32; 4]> = Ring::new(10);
        *r.cell_mut(10, || 0) += 1;
        *r.cell_mut(5, || 0) += 5;
        *r.cell_mut(8, || 0) += 3;
        *r.cell_mut(8, || 0) += 3;
        let all = r.span(i64::MIN, i64::MAX);
        assert_eq!((all.cells, all.oldest, all.newest), (&[5, 6, 1][..], 5, 10));
        let mid = r.span(0, 9);
        assert_eq!((mid.cells, mid.oldest, mid.newest), (&[5, 6][..], 5, 8));
        let late = r.span(5, 6);
        assert_eq!((late.cells, late.oldest, late.newest), (&[5][..], 5, 5));
        assert!(r.span(-100, 4).cells.is_empty());
        assert!(r.span(11, 100).cells.is_empty());
        assert_eq!(r.occupied(6, 10).count_ones(), 2);
        assert!(r.advance(66, 6), "bucket 5 leaves");
        let rest = r.span(i64::MIN, i64::MAX);
        assert_eq!((rest.cells, rest.oldest, rest.newest), (&[6, 1][..], 8, 10));
        assert!(!r.advance(66, 6));
        assert!(r.advance(70, 9), "bucket 8 leaves while still within the ring's reach");
        assert_eq!(r.cells(), &[1]);
        assert!(r.advance(1_000, 0), "bucket 10 falls off the ring");
        assert!(r.is_empty());
        assert!(!r.advance(1_000, 0));
    }

    #[test]
    fn spills_and_comes_back_inline() {
        let mut r: Ring<[u32; 4]> = Ring::new(120);
        for i in 0..121 {
            *r.cell_mut(i, || 0) += 1;
        }
        assert_eq!(r.cells().len(), 121);
        assert!(r.heap_bytes() > 0);
        r.advance(240, 237);
        assert_eq!((r.cells().len(), r.heap_bytes()), (0, 0));
        for i in 237..241 {
            *r.cell_mut(i, || 0) += 1;
        }
        r.advance(241, 0);
        assert_eq!(r.cells().len(), 4);
        assert_eq!(r.heap_bytes(), 0);
    }
}
