//! Gavel's velocity store: windowed aggregates per key, in event time.
//!
//! A feature such as "bids by this user in the last 10 seconds" is a
//! [`CountWindow`]: for every key it keeps a ring of time buckets whose width
//! follows the window (`window / BUCKETS`, rounded up to a millisecond), so
//! memory per key is fixed whatever the event rate. The clock is the events'
//! own time, passed in by the caller; this crate never reads the machine's
//! clock and does no I/O.
//!
//! Shards share one store: keys live in a sharded concurrent map
//! (`dashmap`), so there is no global lock on the hot path and each event
//! touches each of its keys once.

mod count;

pub use count::{CountWindow, Recorded};

/// Number of buckets a window is divided into. A count is exact at bucket
/// resolution: an event leaves the window up to `window / BUCKETS` after it
/// would in a perfectly sliding one.
pub const BUCKETS: usize = 60;

/// Errors from the velocity store.
#[derive(Debug, thiserror::Error)]
pub enum VelocityError {
    /// A window of zero length, or longer than the store supports.
    #[error("window of {0} ms is out of range (1 ms to 30 days)")]
    WindowOutOfRange(u64),
}

/// Result alias for this crate.
pub type Result<T, E = VelocityError> = std::result::Result<T, E>;

/// The longest window the store accepts: 30 days.
pub const MAX_WINDOW_MS: u64 = 30 * 24 * 60 * 60 * 1000;
