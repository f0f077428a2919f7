//! What a window computes: the [`Input`] an event contributes, and the
//! per-bucket cells behind every aggregate except `distinct`. [`Aggregate`]
//! itself (names, input kinds, empty readings) lives in `gavel-model`,
//! shared with the rule compiler.
//!
//! Each bucketed aggregate is a small type implementing [`Agg`]: the cell it
//! keeps per bucket (a `u32` count, an `f64` sum, an offset in the bucket…),
//! how an event adds to it and how the cells of a window fold into one
//! reading. It does not know about keys, locks or time buckets; `ring` and
//! `window` do. `distinct` has its own state in `distinct.rs`.

use std::fmt;

use gavel_model::{Aggregate, InputKind};
use smallvec::Array;

use crate::ring::Span;

/// The value an event contributes to a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// Nothing: the event itself is what counts (`count`, `first_seen`,
    /// `last_seen`, `since`).
    None,
    /// A finite number (`sum`, `min`, `max`, `avg`).
    Number(f64),
    /// An item to count once (`distinct`), e.g. a card fingerprint.
    Item(&'a str),
}

impl Input<'_> {
    /// Which kind of input this is.
    pub fn kind(&self) -> InputKind {
        match self {
            Input::None => InputKind::None,
            Input::Number(_) => InputKind::Number,
            Input::Item(_) => InputKind::Item,
        }
    }
}

/// One event as a bucketed aggregate sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Offset of the event's time from the start of its bucket.
    pub(crate) offset: u32,
    /// The event's number (0 for aggregates that take none).
    pub(crate) value: f64,
}

/// A bucketed aggregate: one cell per non-empty bucket.
pub(crate) trait Agg: Send + Sync + 'static {
    /// Inline storage for a key's cells, sized so the ring stays 24 bytes
    /// while it holds few buckets.
    type Cells: Array<Item: Copy + Send + Sync + fmt::Debug> + Send + Sync;
    /// The public name of this aggregate.
    const AGGREGATE: Aggregate;
    /// A bucket's cell before its first event (the identity of `add`).
    const IDENTITY: <Self::Cells as Array>::Item;
    /// `record` answers with the reading before the event instead of after.
    const ANSWER_BEFORE: bool = false;
    /// Adds one event to a bucket's cell.
    fn add(cell: &mut <Self::Cells as Array>::Item, sample: Sample);
    /// Folds the cells of a window (buckets `bucket_ms` wide) into the
    /// reading at time `t_ms`.
    fn read(span: Span<'_, <Self::Cells as Array>::Item>, bucket_ms: i64, t_ms: i64) -> Option<f64>;
}

/// [`Aggregate::Count`]: a saturating `u32` per bucket.
#[derive(Debug)]
pub(crate) struct Count;

impl Count {
    /// The exact count in the window: at most 60 × `u32::MAX`.
    pub(crate) fn total(cells: &[u32]) -> u64 {
        cells.iter().map(|&n| u64::from(n)).sum()
    }
}

impl Agg for Count {
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::Count;
    const IDENTITY: u32 = 0;
    fn add(cell: &mut u32, _: Sample) {
        *cell = cell.saturating_add(1);
    }
    fn read(span: Span<'_, u32>, _: i64, _: i64) -> Option<f64> {
        // Below 2^38, so exact in an f64.
        Some(Count::total(span.cells) as f64)
    }
}

/// [`Aggregate::Sum`]: an `f64` per bucket, folded oldest bucket first.
#[derive(Debug)]
pub(crate) struct Sum;

impl Agg for Sum {
    type Cells = [f64; 2];
    const AGGREGATE: Aggregate = Aggregate::Sum;
    const IDENTITY: f64 = 0.0;
    fn add(cell: &mut f64, sample: Sample) {
        *cell += sample.value;
    }
    fn read(span: Span<'_, f64>, _: i64, _: i64) -> Option<f64> {
        Some(span.cells.iter().fold(0.0, |sum, v| sum + v))
    }
}

/// [`Aggregate::Min`]: the smallest number per bucket.
#[derive(Debug)]
pub(crate) struct Min;

impl Agg for Min {
    type Cells = [f64; 2];
    const AGGREGATE: Aggregate = Aggregate::Min;
    const IDENTITY: f64 = f64::INFINITY;
    fn add(cell: &mut f64, sample: Sample) {
        *cell = cell.min(sample.value);
    }
    fn read(span: Span<'_, f64>, _: i64, _: i64) -> Option<f64> {
        span.cells.iter().copied().reduce(f64::min)
    }
}

/// [`Aggregate::Max`]: the largest number per bucket.
#[derive(Debug)]
pub(crate) struct Max;

impl Agg for Max {
    type Cells = [f64; 2];
    const AGGREGATE: Aggregate = Aggregate::Max;
    const IDENTITY: f64 = f64::NEG_INFINITY;
    fn add(cell: &mut f64, sample: Sample) {
        *cell = cell.max(sample.value);
    }
    fn read(span: Span<'_, f64>, _: i64, _: i64) -> Option<f64> {
        span.cells.iter().copied().reduce(f64::max)
    }
}

/// A bucket of [`Aggregate::Avg`]: sum and count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SumCount {
    sum: f64,
    n: u32,
}

/// [`Aggregate::Avg`]: sum and count per bucket, divided when read.
#[derive(Debug)]
pub(crate) struct Avg;

impl Agg for Avg {
    type Cells = [SumCount; 1];
    const AGGREGATE: Aggregate = Aggregate::Avg;
    const IDENTITY: SumCount = SumCount { sum: 0.0, n: 0 };
    fn add(cell: &mut SumCount, sample: Sample) {
        // Past u32::MAX events in one bucket the mean stops moving rather
        // than the count wrapping.
        if let Some(n) = cell.n.checked_add(1) {
            cell.n = n;
            cell.sum += sample.value;
        }
    }
    fn read(span: Span<'_, SumCount>, _: i64, _: i64) -> Option<f64> {
        let (sum, n) = span.cells.iter().fold((0.0, 0u64), |(s, n), c| (s + c.sum, n + u64::from(c.n)));
        (n > 0).then(|| sum / n as f64)
    }
}

/// [`Aggregate::FirstSeen`]: the earliest offset per bucket.
#[derive(Debug)]
pub(crate) struct FirstSeen;

impl Agg for FirstSeen {
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::FirstSeen;
    const IDENTITY: u32 = u32::MAX;
    fn add(cell: &mut u32, sample: Sample) {
        *cell = (*cell).min(sample.offset);
    }
    fn read(span: Span<'_, u32>, bucket_ms: i64, _: i64) -> Option<f64> {
        // The oldest bucket's earliest event is the window's.
        let first = span.cells.first()?;
        Some((span.oldest.saturating_mul(bucket_ms) + i64::from(*first)) as f64)
    }
}

/// The newest event time in a window of latest offsets: the newest
/// bucket's latest event.
fn newest(span: Span<'_, u32>, bucket_ms: i64) -> Option<i64> {
    let last = span.cells.last()?;
    Some(span.newest.saturating_mul(bucket_ms) + i64::from(*last))
}

/// [`Aggregate::LastSeen`]: the latest offset per bucket.
#[derive(Debug)]
pub(crate) struct LastSeen;

impl Agg for LastSeen {
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::LastSeen;
    const IDENTITY: u32 = 0;
    fn add(cell: &mut u32, sample: Sample) {
        *cell = (*cell).max(sample.offset);
    }
    fn read(span: Span<'_, u32>, bucket_ms: i64, _: i64) -> Option<f64> {
        newest(span, bucket_ms).map(|t| t as f64)
    }
}

/// [`Aggregate::Since`]: the latest offset per bucket, read as a gap.
#[derive(Debug)]
pub(crate) struct Since;

impl Agg for Since {
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::Since;
    const IDENTITY: u32 = 0;
    const ANSWER_BEFORE: bool = true;
    fn add(cell: &mut u32, sample: Sample) {
        LastSeen::add(cell, sample);
    }
    fn read(span: Span<'_, u32>, bucket_ms: i64, t_ms: i64) -> Option<f64> {
        newest(span, bucket_ms).map(|last| t_ms.saturating_sub(last).max(0) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_inputs_match() {
        for a in Aggregate::ALL {
            assert_eq!(Aggregate::from_name(a.name()), Some(a));
            assert_eq!(a.to_string(), a.name());
        }
        assert_eq!(Aggregate::from_name("median"), None);
        assert_eq!(Aggregate::Distinct.input(), InputKind::Item);
        assert_eq!(Input::Number(1.0).kind(), InputKind::Number);
    }
}
