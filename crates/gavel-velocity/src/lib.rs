//! Gavel's velocity store: windowed aggregates per key, in event time, and
//! entity labels with a time to live.
//!
//! Start at [`Window`]: one feature such as "sum of payment amounts per card
//! in the last hour" is a window configured with an [`Aggregate`] and a
//! length. For every key it keeps its recent events exactly while they are
//! few (up to [`EXACT_EVENTS`], which is most keys) and in [`BUCKETS`] time
//! buckets per window length beyond, so memory per key is bounded whatever
//! the event rate. [`CountWindow`] is the count-only face the engine has
//! used from the start; it runs on the same table. [`LabelStore`] keeps
//! labels such as `bot` on entities, in event time.
//!
//! # Time
//!
//! The clock is the events' own time, passed in by the caller. A reading at
//! time `t` of a window `w` long covers `(t − w, t]`: every event younger
//! than the window counts, one exactly `w` old does not. This is exact while
//! a key holds at most `EXACT_EVENTS` events (`distinct`:
//! [`DISTINCT_EXACT_ITEMS`] items). A key that goes past that keeps its
//! events in buckets of `w / 60` until it holds none, and a reading then
//! covers every bucket the window overlaps: it may also count events up to
//! one bucket older than `t − w` and, for a reading earlier than the key's
//! newest event, up to one bucket after `t`, never fewer than the window
//! holds. Buckets are closed on the right, `(i·b, (i+1)·b]`, so a window
//! starting on a bucket edge is exact even then.
//!
//! A key's *newest* time is the latest event time it has seen. Events may
//! arrive in any order: one that is less than `w` older than its key's
//! newest counts and reads its own full window (a key keeps the two windows
//! ending at its newest time for that). One `w` or more older is too late:
//! it is counted in `too_late_total`, changes nothing, and reads the window
//! ending at the key's newest time, as does any reading at such a time.
//!
//! # Warm-up
//!
//! There is nothing to load: replaying past events through `record` (and
//! discarding what it returns) rebuilds the state live traffic built. In
//! the order they first came (a topic's order), exactly. In another order
//! the too-late events may differ; where none is too late in either order
//! (in time order none is) the same events count and readings agree
//! exactly, except `distinct` past its exact tier, which agrees within the
//! bucket bound above. Replay at least one window length of history for
//! every feature (two to answer late events the same way).
//!
//! # Memory
//!
//! Keys live in a table split into shards, each behind its own lock; a key
//! of up to 24 bytes is stored inline, and so are its first events; a
//! bucketed key's ring is one heap block, holding only its non-empty
//! buckets. `evict_idle` drops keys
//! with nothing left to read; an optional cap per window evicts the least
//! recently active keys (see [`WindowConfig::max_keys`]); `bytes()`
//! estimates what the window holds, for gauges.
//!
//! # What this crate does not do
//!
//! No I/O, no threads, no async, no wall clock, no persistence: it is a pure
//! in-memory data structure shared by the engine's shards through `&self`.

mod aggregate;
mod count;
mod distinct;
mod label;
mod map;
mod recent;
mod ring;
mod tier;
mod window;

pub use aggregate::Input;
pub use count::{CountWindow, Recorded};
pub use distinct::{DISTINCT_EXACT_ITEMS, DISTINCT_RELATIVE_ERROR};
pub use gavel_model::{Aggregate, InputKind};
pub use label::LabelStore;
pub use recent::RECENT_MAX_ITEMS;
pub use window::{DEFAULT_SHARDS, Window, WindowConfig};

/// Number of buckets a window is divided into once a key holds more than
/// [`EXACT_EVENTS`] events: a reading may then reach up to `window / BUCKETS`
/// past the window's edges (see the crate docs).
pub const BUCKETS: usize = 60;

/// Events a key holds exactly (their times, and numbers for `sum`, `min`,
/// `max` and `avg`) before it moves to buckets. `distinct` counts items
/// instead: [`DISTINCT_EXACT_ITEMS`].
pub const EXACT_EVENTS: usize = 32;

/// The longest window the store accepts: 30 days.
pub const MAX_WINDOW_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Errors from the velocity store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VelocityError {
    /// A window of zero length, or longer than the store supports.
    #[error("window of {0} ms is out of range (1 ms to 30 days)")]
    WindowOutOfRange(u64),
    /// A shard count that is not a power of two between 1 and 1024.
    #[error("shard count {0} is not a power of two between 1 and 1024")]
    BadShardCount(usize),
    /// A key cap of zero.
    #[error("a window must be allowed to hold at least one key")]
    ZeroKeyCap,
    /// The input does not fit the window's aggregate (a wiring bug in the
    /// caller, not bad data).
    #[error("aggregate `{aggregate}` takes {expected} input, got {got}")]
    InputMismatch {
        /// The window's aggregate.
        aggregate: Aggregate,
        /// The input kind it takes.
        expected: InputKind,
        /// The input kind it was given.
        got: InputKind,
    },
    /// A number that is NaN or infinite, which would poison the window.
    #[error("aggregate `{0}` was given a number that is not finite")]
    NotFinite(Aggregate),
}

/// Result alias for this crate.
pub type Result<T, E = VelocityError> = std::result::Result<T, E>;

// Every bucket of a ring (two windows and one more) has one bit in a u128 mask.
const _: () = assert!(2 * BUCKETS < 128);
// A bucket is at most 30 days / 60 wide, so an offset inside it fits in u32.
const _: () = assert!(MAX_WINDOW_MS.div_ceil(BUCKETS as u64) <= u32::MAX as u64);
