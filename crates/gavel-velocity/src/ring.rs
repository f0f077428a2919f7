//! The sparse bucket ring each key keeps, and the arithmetic of windows.
//!
//! A ring holds the [`BUCKETS`] buckets ending at its *head* (the newest
//! bucket index it has seen). Bucket `head - age` is described by bit `age`
//! of an occupancy mask, and only occupied buckets have a cell, stored oldest
//! first. A key that saw three events in one bucket costs one cell, not
//! sixty. This module knows nothing of what a cell holds; `aggregate` and
//! `distinct` do.

use std::fmt;

use smallvec::{Array, SmallVec};

use crate::BUCKETS;

const SPAN: i64 = BUCKETS as i64;

/// Mask of every age a ring can hold.
pub(crate) const ALL_AGES: u64 = (1 << BUCKETS) - 1;

/// Mask of ages `lo..hi` (`lo <= hi <= BUCKETS`).
fn ages(lo: u32, hi: u32) -> u64 {
    ((1u64 << hi) - 1) & !((1u64 << lo) - 1)
}

/// True when an event in bucket `index` is older than the window ending at
/// `head`: it has left the ring and changes nothing.
pub(crate) fn too_late(head: i64, index: i64) -> bool {
    index <= head.saturating_sub(SPAN)
}

/// The ages of a ring with head `head` that lie in the window ending in
/// bucket `index`, as a mask: buckets `index - BUCKETS + 1 ..= index` that
/// the ring still holds.
pub(crate) fn window_ages(head: i64, index: i64) -> u64 {
    // Ages below `newer` are buckets newer than `index`.
    let newer = head.saturating_sub(index);
    let lo = newer.clamp(0, SPAN);
    let hi = newer.saturating_add(SPAN).clamp(0, SPAN);
    // Both clamped to 0..=BUCKETS, so the casts are exact.
    ages(lo as u32, hi as u32)
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
    mask: u64,
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

    /// Occupancy mask: bit `age` for bucket `head - age`.
    pub(crate) fn mask(&self) -> u64 {
        self.mask
    }

    /// True when no bucket holds anything.
    pub(crate) fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// Moves the head forward to `index`, dropping the buckets that fall out.
    /// Returns true when a cell was dropped. Does nothing when `index` is not
    /// newer than the head.
    pub(crate) fn advance(&mut self, index: i64) -> bool {
        if index <= self.head {
            return false;
        }
        let steps = index.saturating_sub(self.head);
        self.head = index;
        if self.mask == 0 {
            return false;
        }
        let dropped = if steps >= SPAN {
            self.cells.len()
        } else {
            // steps is in 1..BUCKETS: the cells of ages BUCKETS - steps and
            // above leave; they are the oldest, at the front.
            (self.mask >> (SPAN - steps)).count_ones() as usize
        };
        self.mask = if steps >= SPAN { 0 } else { (self.mask << steps) & ALL_AGES };
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
    /// empty. The bucket must lie in the ring (`index <= head` and not too
    /// late).
    pub(crate) fn cell_mut(&mut self, index: i64, make: impl FnOnce() -> A::Item) -> &mut A::Item {
        debug_assert!(index <= self.head && !too_late(self.head, index));
        // Within the ring: 0 <= head - index < BUCKETS.
        let age = (self.head - index) as u32;
        let at = self.position(age);
        if self.mask & (1 << age) == 0 {
            self.mask |= 1 << age;
            self.cells.insert(at, make());
        }
        &mut self.cells[at]
    }

    /// The cells of the window whose ages are `window` (a contiguous run of
    /// ages, as [`window_ages`] makes).
    pub(crate) fn span(&self, window: u64) -> Span<'_, A::Item> {
        debug_assert!(
            (window >> window.trailing_zeros().min(63)) & ((window >> window.trailing_zeros().min(63)) + 1) == 0,
            "a window is a contiguous run of ages"
        );
        let picked = self.mask & window;
        if picked == 0 {
            return Span { cells: &[], oldest: self.head, newest: self.head };
        }
        let oldest = 63 - picked.leading_zeros();
        let newest = picked.trailing_zeros();
        // The window is contiguous, so every occupied age from `oldest` down
        // to `newest` is in it: their cells are one run.
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
    fn window_ages_cover_the_overlap() {
        assert_eq!(window_ages(100, 100), ALL_AGES);
        assert_eq!(window_ages(100, 40), 0, "window ending at 40 is (−20, 40]: all gone");
        assert_eq!(window_ages(100, 41), 1 << 59);
        assert_eq!(window_ages(100, 101), ALL_AGES & !(1 << 59));
        assert_eq!(window_ages(100, 159), 1);
        assert_eq!(window_ages(100, 160), 0);
        assert!(too_late(100, 40) && !too_late(100, 41));
        assert_eq!(window_ages(i64::MAX, i64::MIN), 0);
        assert_eq!(window_ages(i64::MIN, i64::MAX), 0);
    }

    #[test]
    fn cells_stay_sorted_and_leave_in_order() {
        let mut r: Ring<[u32; 4]> = Ring::new(10);
        *r.cell_mut(10, || 0) += 1;
        *r.cell_mut(5, || 0) += 5;
        *r.cell_mut(8, || 0) += 3;
        *r.cell_mut(8, || 0) += 3;
        let all = r.span(ALL_AGES);
        assert_eq!((all.cells, all.oldest, all.newest), (&[5, 6, 1][..], 5, 10));
        let mid = r.span(window_ages(10, 9));
        assert_eq!((mid.cells, mid.oldest, mid.newest), (&[5, 6][..], 5, 8));
        let late = r.span(window_ages(10, 6));
        assert_eq!((late.cells, late.oldest, late.newest), (&[5][..], 5, 5));
        assert!(r.span(window_ages(10, 4)).cells.is_empty());
        let ahead = r.span(window_ages(10, 67));
        assert_eq!((ahead.cells, ahead.oldest, ahead.newest), (&[6, 1][..], 8, 10));
        assert!(r.advance(66), "bucket 5 leaves when the head reaches 65");
        let rest = r.span(ALL_AGES);
        assert_eq!((rest.cells, rest.oldest, rest.newest), (&[6, 1][..], 8, 10));
        assert!(r.advance(1_000));
        assert!(r.is_empty());
        assert!(!r.advance(1_000));
    }

    #[test]
    fn spills_and_comes_back_inline() {
        let mut r: Ring<[u32; 4]> = Ring::new(59);
        for i in 0..60 {
            *r.cell_mut(i, || 0) += 1;
        }
        assert_eq!(r.cells().len(), 60);
        assert!(r.heap_bytes() > 0);
        r.advance(115);
        assert_eq!(r.cells().len(), 4);
        assert_eq!(r.heap_bytes(), 0);
    }
}
