//! A key's state for every aggregate but `distinct`: its events kept
//! exactly while few, time buckets beyond.
//!
//! - **Exact tier**: up to [`EXACT_EVENTS`] events, each with its time (and
//!   number), oldest first. Any window is answered exactly.
//! - **Bucket tier**: one more event and the key moves its events into a
//!   [`Ring`] of buckets `window / 60` wide. A reading then covers every
//!   bucket the window overlaps, so it includes every event of the window
//!   and possibly a few more: ones in the bucket where the window starts
//!   (less than a bucket older than the window) and, for a reading earlier
//!   than the key's newest event, ones in the bucket where it ends (less
//!   than a bucket after the reading's time). The key returns to the exact
//!   tier once its ring empties.
//!
//! Either way a key keeps what it saw in the two windows ending at its
//! newest time (see `ring`), so memory per key is bounded: at most
//! `EXACT_EVENTS` events or 121 cells.

use smallvec::SmallVec;

use crate::EXACT_EVENTS;
use crate::aggregate::{Agg, Exact, Sample};
use crate::map::alloc_size;
use crate::ring::{Clock, Ring};
use crate::window::State;

/// A key's events: exact while few, bucketed beyond.
pub(crate) enum Tiered<A: Agg> {
    /// At most [`EXACT_EVENTS`] events, oldest first.
    Exact(SmallVec<A::Events>),
    /// More than that since the key last held nothing.
    Buckets(Box<Ring<A::Cells>>),
}

impl<A: Agg> std::fmt::Debug for Tiered<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tiered::Exact(events) => f.debug_tuple("Exact").field(&&events[..]).finish(),
            Tiered::Buckets(ring) => f.debug_tuple("Buckets").field(ring).finish(),
        }
    }
}

impl<A: Agg> Default for Tiered<A> {
    fn default() -> Self {
        Tiered::Exact(SmallVec::new())
    }
}

/// The events of `events` (oldest first) in the window ending at `t_ms`.
fn window<'a, E: Exact>(events: &'a [E], clock: &Clock, t_ms: i64) -> &'a [E] {
    let start = clock.start(t_ms);
    let (Some(first), Some(last)) = (events.first(), events.last()) else { return events };
    // Most readings are of every event held: search only when not.
    let lo = if first.t() > start { 0 } else { events.partition_point(|e| e.t() <= start) };
    let hi = if last.t() <= t_ms { events.len() } else { events.partition_point(|e| e.t() <= t_ms) };
    &events[lo..hi.max(lo)]
}

impl<A: Agg> Tiered<A> {
    /// True while answers are exact.
    #[cfg(test)]
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, Tiered::Exact(_))
    }

    /// Moves the events into buckets, the head at `newest`'s.
    fn to_buckets(events: &[A::Event], clock: &Clock, newest: i64) -> Box<Ring<A::Cells>> {
        let mut ring = Box::new(Ring::new(clock.bucket(newest)));
        for e in events {
            let (index, offset) = clock.split(e.t());
            A::add(ring.cell_mut(index, || A::IDENTITY), Sample { offset, value: e.value() });
        }
        ring
    }
}

impl<A: Agg> State for Tiered<A> {
    type In<'a> = f64;
    const EMPTY: Option<f64> = A::AGGREGATE.empty_value();
    const ANSWER_BEFORE: bool = A::ANSWER_BEFORE;

    fn advance(&mut self, clock: &Clock, newest: i64) {
        match self {
            Tiered::Exact(events) => {
                let kept_after = clock.kept_after(newest);
                if events.first().is_some_and(|e| e.t() <= kept_after) {
                    let gone = events.partition_point(|e| e.t() <= kept_after);
                    let left = events.len() - gone;
                    events.copy_within(gone.., 0);
                    events.truncate(left);
                    // Back inline once few enough, but not at every dip: a
                    // key moving between one, two and three events keeps a
                    // block of up to four times the inline size rather than
                    // allocate at every event (until it is evicted).
                    let large = events.capacity() > 4 * events.inline_size();
                    if events.spilled() && large && left <= events.inline_size() {
                        events.shrink_to_fit();
                    }
                }
            }
            Tiered::Buckets(ring) => {
                let (oldest, head) = clock.kept_buckets(newest);
                ring.advance(head, oldest);
                if ring.is_empty() {
                    *self = Tiered::default();
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Tiered::Exact(events) => events.is_empty(),
            Tiered::Buckets(ring) => ring.is_empty(),
        }
    }

    fn add(&mut self, clock: &Clock, newest: i64, t_ms: i64, value: f64) -> usize {
        if let Tiered::Exact(events) = self {
            if events.len() < EXACT_EVENTS {
                let event = A::Event::new(t_ms, value);
                if events.last().is_none_or(|e| e.t() <= t_ms) {
                    events.push(event);
                } else {
                    // After any event at the same time: stable, oldest first.
                    let at = events.partition_point(|e| e.t() <= t_ms);
                    events.insert(at, event);
                }
                return 0;
            }
            *self = Tiered::Buckets(Self::to_buckets(events, clock, newest));
        }
        if let Tiered::Buckets(ring) = self {
            let (index, offset) = clock.split(t_ms);
            A::add(ring.cell_mut(index, || A::IDENTITY), Sample { offset, value });
        }
        0
    }

    fn read(&self, clock: &Clock, t_ms: i64) -> Option<f64> {
        match self {
            Tiered::Exact(events) => A::read_exact(window(events, clock, t_ms), t_ms),
            Tiered::Buckets(ring) => {
                let (lo, hi) = clock.window_buckets(t_ms);
                A::read(ring.span(lo, hi), clock, t_ms)
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Tiered::Exact(events) if events.spilled() => alloc_size(events.capacity() * size_of::<A::Event>()),
            Tiered::Exact(_) => 0,
            Tiered::Buckets(ring) => alloc_size(size_of::<Ring<A::Cells>>()) + ring.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Count, FirstSeen, Sum};

    #[test]
    fn exact_until_full_then_buckets_until_empty() {
        let clock = Clock::new(60_000);
        let mut s: Tiered<Count> = Tiered::default();
        for i in 0..EXACT_EVENTS as i64 {
            s.add(&clock, i * 100, i * 100, 0.0);
        }
        assert!(s.is_exact());
        assert_eq!(s.read(&clock, 60_000), Some(EXACT_EVENTS as f64 - 1.0), "the event at 0 is exactly 60 s old");
        let newest = EXACT_EVENTS as i64 * 100;
        s.add(&clock, newest, newest, 0.0);
        assert!(!s.is_exact());
        // (0, 60 000] is exactly 60 buckets: still exact at a bucket edge.
        assert_eq!(s.read(&clock, 60_000), Some(EXACT_EVENTS as f64));
        // (50, 60 050] starts inside bucket (0, 1000]: the event at 0 is
        // out, those at 100 … 1000 are in as they should be.
        assert_eq!(s.read(&clock, 60_050), Some(EXACT_EVENTS as f64));
        s.advance(&clock, 100_000);
        assert!(!s.is_exact(), "two windows back from 100 000, everything is kept");
        s.advance(&clock, newest + 120_000);
        assert!(!s.is_exact(), "the newest event's bucket (3 000, 4 000] still overlaps what is kept");
        s.advance(&clock, newest + 121_000);
        assert!(s.is_exact() && s.is_empty());
    }

    /// Records like a table: the key moves to `t` first if it is newer.
    fn push<A: Agg>(s: &mut Tiered<A>, clock: &Clock, newest: &mut i64, t: i64, value: f64) {
        if t > *newest {
            *newest = t;
            s.advance(clock, t);
        }
        s.add(clock, *newest, t, value);
    }

    #[test]
    fn buckets_only_ever_over_include() {
        let clock = Clock::new(60_000);
        let (mut s, mut newest) = (Tiered::<Sum>::default(), i64::MIN);
        for i in 0..=EXACT_EVENTS as i64 {
            push(&mut s, &clock, &mut newest, 30_000 + i, 1.0);
        }
        push(&mut s, &clock, &mut newest, 91_500, 10.0);
        assert!(!s.is_exact());
        // (30 010, 90 010] holds the 22 events at 30 011 … 30 032; the
        // bucket (30 000, 31 000] brings the 10 at 30 001 … 30 010 too, never
        // the one at 30 000.
        assert_eq!(s.read(&clock, 90_010), Some(32.0));
        // A reading behind the newest event: (31 400, 91 400] is empty, but
        // its last bucket (91 000, 92 000] holds the event at 91 500.
        assert_eq!(s.read(&clock, 91_400), Some(10.0));
        let (mut first, mut newest) = (Tiered::<FirstSeen>::default(), i64::MIN);
        for i in 0..=EXACT_EVENTS as i64 {
            push(&mut first, &clock, &mut newest, 30_000 + i, 0.0);
        }
        assert_eq!(first.read(&clock, 90_010), Some(30_001.0), "up to a bucket earlier than the window's start");
    }
}
