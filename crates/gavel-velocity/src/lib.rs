//! Gavel's velocity store: windowed aggregates per key, in event time, and
//! entity labels with a time to live.
//!
//! Start at [`Window`]: one feature such as "sum of payment amounts per card
//! in the last hour" is a window configured with an [`Aggregate`] and a
//! length. For every key it keeps a ring of [`BUCKETS`] time buckets whose
//! width follows the window (`window / BUCKETS`, rounded up to a
//! millisecond), so memory per key is bounded whatever the event rate.
//! [`CountWindow`] is the count-only face the engine has used from the start;
//! it runs on the same table. [`LabelStore`] keeps labels such as `bot` on
//! entities until their time to live runs out.
//!
//! # Time
//!
//! The clock is the events' own time, passed in by the caller. A key's ring
//! ends at the newest bucket it has seen (its *head*). An event whose bucket
//! lies inside the window ending at the head counts, however late it comes;
//! an older one is counted in `too_late_total` and changes nothing. Reading
//! at a time `t` covers the buckets in the window ending at `t`'s bucket that
//! the ring still holds. Windows are exact at bucket resolution: an event
//! leaves the window up to one bucket width after it would in a perfectly
//! sliding one.
//!
//! # Warm-up
//!
//! There is nothing to load: replaying past events through `record` (and
//! discarding what it returns) rebuilds exactly the state live traffic would
//! have built, in any order within a window, since buckets only add. Replay
//! at least one window length of history for every feature.
//!
//! # Memory
//!
//! Keys live in a table split into shards, each behind its own lock; a key
//! of up to 24 bytes is stored inline, and a key's buckets are stored
//! sparsely (only the non-empty ones), inline while few. `evict_idle` drops
//! keys whose window is empty; an optional cap per window evicts the least
//! recently active keys (see [`WindowConfig::max_keys`]); `bytes()` estimates
//! what the window holds, for gauges.
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
mod ring;
mod window;

pub use aggregate::Input;
pub use count::{CountWindow, Recorded};
pub use distinct::{DISTINCT_EXACT_ITEMS, DISTINCT_RELATIVE_ERROR};
pub use gavel_model::{Aggregate, InputKind};
pub use label::LabelStore;
pub use window::{DEFAULT_SHARDS, Window, WindowConfig};

/// Number of buckets a window is divided into. An aggregate is exact at
/// bucket resolution: an event leaves the window up to `window / BUCKETS`
/// after it would in a perfectly sliding one.
pub const BUCKETS: usize = 60;

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

// Every bucket of a ring has one bit in a u64 mask.
const _: () = assert!(BUCKETS <= 64);
// A bucket is at most 30 days / 60 wide, so an offset inside it fits in u32.
const _: () = assert!(MAX_WINDOW_MS.div_ceil(BUCKETS as u64) <= u32::MAX as u64);
