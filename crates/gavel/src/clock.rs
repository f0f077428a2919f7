//! The wall clock, read in one place. Gavel decides on event time; the
//! wall clock only stamps and ages what it has already decided:
//!
//! - `decided_at` on signals, verdicts and actions (the processor);
//! - the eviction horizon of idle velocity keys, lapsed cooldowns and
//!   expired labels (store maintenance), and the start of warm-up replay
//!   (now − the pack's longest window);
//! - the end-to-end latency of an acknowledged message (telemetry);
//! - the start time of simulated traffic sent live (`gavel sim --brokers`,
//!   the demo);
//! - where `gavel dlq republish --since AGE` starts reading.
//!
//! Nothing here feeds a rule: expressions see `event.occurred_at` only.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock is set before it.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
