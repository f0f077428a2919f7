//! What a window computes: the [`Input`] an event contributes, and how
//! every aggregate except `distinct` reads its events. [`Aggregate`] itself
//! (names, input kinds, empty readings) lives in `gavel-model`, shared with
//! the rule compiler.
//!
//! Each aggregate is a small type implementing [`Agg`]: how it reads a few
//! events kept exactly (their times, and numbers if it takes them), the cell
//! it keeps per bucket once a key has more (a `u32` count, an `f64` sum, an
//! offset in the bucket…), how an event adds to a cell and how the cells of
//! a window fold into one reading. It does not know about keys, locks or
//! when a key moves from exact events to buckets; `tier`, `ring` and
//! `window` do. `distinct` has its own state in `distinct.rs`.

use std::fmt;

use gavel_model::{Aggregate, InputKind};
use smallvec::Array;

use crate::ring::{Clock, Span};

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

/// One event as a bucket cell sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Offset of the event's time from the first millisecond of its bucket.
    pub(crate) offset: u32,
    /// The event's number (0 for aggregates that take none).
    pub(crate) value: f64,
}

/// One event as the exact tier keeps it: its time, and its number if the
/// aggregate takes one.
pub(crate) trait Exact: Copy + Send + Sync + fmt::Debug + 'static {
    fn new(t_ms: i64, value: f64) -> Self;
    fn t(&self) -> i64;
    fn value(&self) -> f64;
}

/// An event of an aggregate that takes no number: its time alone.
impl Exact for i64 {
    fn new(t_ms: i64, _: f64) -> Self {
        t_ms
    }
    fn t(&self) -> i64 {
        *self
    }
    fn value(&self) -> f64 {
        0.0
    }
}

/// An event with a number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Valued {
    t: i64,
    value: f64,
}

impl Exact for Valued {
    fn new(t_ms: i64, value: f64) -> Self {
        Valued { t: t_ms, value }
    }
    fn t(&self) -> i64 {
        self.t
    }
    fn value(&self) -> f64 {
        self.value
    }
}

/// An aggregate other than `distinct`: how it reads a few events kept
/// exactly, and the cell it keeps per bucket once there are more.
pub(crate) trait Agg: Send + Sync + 'static {
    /// What the exact tier keeps per event.
    type Event: Exact;
    /// Inline storage for the exact tier, sized so that a key's state stays
    /// small while it holds one or two events.
    type Events: Array<Item = Self::Event> + Send + Sync;
    /// Inline storage for a ring's cells.
    type Cells: Array<Item: Copy + Send + Sync + fmt::Debug> + Send + Sync;
    /// The public name of this aggregate.
    const AGGREGATE: Aggregate;
    /// A bucket's cell before its first event (the identity of `add`).
    const IDENTITY: <Self::Cells as Array>::Item;
    /// `record` answers with the reading before the event instead of after.
    const ANSWER_BEFORE: bool = false;
    /// The reading of `events`, the events of the window ending at `t_ms`,
    /// oldest first.
    fn read_exact(events: &[Self::Event], t_ms: i64) -> Option<f64>;
    /// Adds one event to a bucket's cell.
    fn add(cell: &mut <Self::Cells as Array>::Item, sample: Sample);
    /// Folds the cells of a window's buckets into the reading at `t_ms`.
    fn read(span: Span<'_, <Self::Cells as Array>::Item>, clock: &Clock, t_ms: i64) -> Option<f64>;
}

/// [`Aggregate::Count`]: a saturating `u32` per bucket.
#[derive(Debug)]
pub(crate) struct Count;

impl Agg for Count {
    type Event = i64;
    type Events = [i64; 2];
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::Count;
    const IDENTITY: u32 = 0;
    fn read_exact(events: &[i64], _: i64) -> Option<f64> {
        Some(events.len() as f64)
    }
    fn add(cell: &mut u32, _: Sample) {
        *cell = cell.saturating_add(1);
    }
    fn read(span: Span<'_, u32>, _: &Clock, _: i64) -> Option<f64> {
        // At most 121 × u32::MAX, below 2^53, so exact in an f64.
        Some(span.cells.iter().map(|&n| u64::from(n)).sum::<u64>() as f64)
    }
}

/// The sum of the events' numbers, oldest first.
fn sum(events: &[Valued]) -> f64 {
    events.iter().fold(0.0, |sum, e| sum + e.value)
}

/// [`Aggregate::Sum`]: an `f64` per bucket, folded oldest bucket first.
#[derive(Debug)]
pub(crate) struct Sum;

impl Agg for Sum {
    type Event = Valued;
    type Events = [Valued; 1];
    type Cells = [f64; 2];
    const AGGREGATE: Aggregate = Aggregate::Sum;
    const IDENTITY: f64 = 0.0;
    fn read_exact(events: &[Valued], _: i64) -> Option<f64> {
        Some(sum(events))
    }
    fn add(cell: &mut f64, sample: Sample) {
        *cell += sample.value;
    }
    fn read(span: Span<'_, f64>, _: &Clock, _: i64) -> Option<f64> {
        Some(span.cells.iter().fold(0.0, |sum, v| sum + v))
    }
}

/// [`Aggregate::Min`]: the smallest number per bucket.
#[derive(Debug)]
pub(crate) struct Min;

impl Agg for Min {
    type Event = Valued;
    type Events = [Valued; 1];
    type Cells = [f64; 2];
    const AGGREGATE: Aggregate = Aggregate::Min;
    const IDENTITY: f64 = f64::INFINITY;
    fn read_exact(events: &[Valued], _: i64) -> Option<f64> {
        events.iter().map(Exact::value).reduce(f64::min)
    }
    fn add(cell: &mut f64, sample: Sample) {
        *cell = cell.min(sample.value);
    }
    fn read(span: Span<'_, f64>, _: &Clock, _: i64) -> Option<f64> {
        span.cells.iter().copied().reduce(f64::min)
    }
}

/// [`Aggregate::Max`]: the largest number per bucket.
#[derive(Debug)]
pub(crate) struct Max;

impl Agg for Max {
    type Event = Valued;
    type Events = [Valued; 1];
    type Cells = [f64; 2];
    const AGGREGATE: Aggregate = Aggregate::Max;
    const IDENTITY: f64 = f64::NEG_INFINITY;
    fn read_exact(events: &[Valued], _: i64) -> Option<f64> {
        events.iter().map(Exact::value).reduce(f64::max)
    }
    fn add(cell: &mut f64, sample: Sample) {
        *cell = cell.max(sample.value);
    }
    fn read(span: Span<'_, f64>, _: &Clock, _: i64) -> Option<f64> {
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
    type Event = Valued;
    type Events = [Valued; 1];
    type Cells = [SumCount; 1];
    const AGGREGATE: Aggregate = Aggregate::Avg;
    const IDENTITY: SumCount = SumCount { sum: 0.0, n: 0 };
    fn read_exact(events: &[Valued], _: i64) -> Option<f64> {
        (!events.is_empty()).then(|| sum(events) / events.len() as f64)
    }
    fn add(cell: &mut SumCount, sample: Sample) {
        // Past u32::MAX events in one bucket the mean stops moving rather
        // than the count wrapping.
        if let Some(n) = cell.n.checked_add(1) {
            cell.n = n;
            cell.sum += sample.value;
        }
    }
    fn read(span: Span<'_, SumCount>, _: &Clock, _: i64) -> Option<f64> {
        let (sum, n) = span.cells.iter().fold((0.0, 0u64), |(s, n), c| (s + c.sum, n + u64::from(c.n)));
        (n > 0).then(|| sum / n as f64)
    }
}

/// [`Aggregate::FirstSeen`]: the earliest offset per bucket.
#[derive(Debug)]
pub(crate) struct FirstSeen;

impl Agg for FirstSeen {
    type Event = i64;
    type Events = [i64; 2];
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::FirstSeen;
    const IDENTITY: u32 = u32::MAX;
    fn read_exact(events: &[i64], _: i64) -> Option<f64> {
        events.first().map(|&t| t as f64)
    }
    fn add(cell: &mut u32, sample: Sample) {
        *cell = (*cell).min(sample.offset);
    }
    fn read(span: Span<'_, u32>, clock: &Clock, _: i64) -> Option<f64> {
        // The oldest bucket's earliest event is the window's.
        let first = span.cells.first()?;
        Some(clock.bucket_start(span.oldest).saturating_add(i64::from(*first)) as f64)
    }
}

/// The newest event time in a window of latest offsets: the newest
/// bucket's latest event.
fn newest(span: Span<'_, u32>, clock: &Clock) -> Option<i64> {
    let last = span.cells.last()?;
    Some(clock.bucket_start(span.newest).saturating_add(i64::from(*last)))
}

/// [`Aggregate::LastSeen`]: the latest offset per bucket.
#[derive(Debug)]
pub(crate) struct LastSeen;

impl Agg for LastSeen {
    type Event = i64;
    type Events = [i64; 2];
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::LastSeen;
    const IDENTITY: u32 = 0;
    fn read_exact(events: &[i64], _: i64) -> Option<f64> {
        events.last().map(|&t| t as f64)
    }
    fn add(cell: &mut u32, sample: Sample) {
        *cell = (*cell).max(sample.offset);
    }
    fn read(span: Span<'_, u32>, clock: &Clock, _: i64) -> Option<f64> {
        newest(span, clock).map(|t| t as f64)
    }
}

/// [`Aggregate::Since`]: the latest offset per bucket, read as a gap.
#[derive(Debug)]
pub(crate) struct Since;

impl Agg for Since {
    type Event = i64;
    type Events = [i64; 2];
    type Cells = [u32; 4];
    const AGGREGATE: Aggregate = Aggregate::Since;
    const IDENTITY: u32 = 0;
    const ANSWER_BEFORE: bool = true;
    fn read_exact(events: &[i64], t_ms: i64) -> Option<f64> {
        events.last().map(|&last| t_ms.saturating_sub(last).max(0) as f64)
    }
    fn add(cell: &mut u32, sample: Sample) {
        LastSeen::add(cell, sample);
    }
    fn read(span: Span<'_, u32>, clock: &Clock, t_ms: i64) -> Option<f64> {
        // A bucket may hold events after `t_ms` when `t_ms` is a late
        // event's: the gap is then 0, never negative.
        newest(span, clock).map(|last| t_ms.saturating_sub(last).max(0) as f64)
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
