//! Event time: the clock every window in gavel runs on.
//!
//! Gavel never reads the machine's clock to decide; it uses the event's own
//! `occurred_at`, falling back to the Kafka message timestamp when the event
//! carries none.

use pbjson_types::Timestamp;

use crate::Event;

/// The event's `occurred_at` in milliseconds since the Unix epoch, or `None`
/// when the event carries no timestamp.
pub fn event_time_ms(event: &Event) -> Option<i64> {
    event.occurred_at.as_ref().map(timestamp_to_ms)
}

/// Converts a protobuf timestamp to milliseconds since the Unix epoch.
pub fn timestamp_to_ms(ts: &Timestamp) -> i64 {
    ts.seconds.saturating_mul(1000).saturating_add(i64::from(ts.nanos / 1_000_000))
}

/// Converts milliseconds since the Unix epoch to a protobuf timestamp.
pub fn timestamp_from_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        // rem_euclid(1000) is in 0..1000, so the product fits in i32.
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_including_negative() {
        for ms in [0, 1, 999, 1_000, 1_763_000_000_123, -1, -1_001] {
            assert_eq!(timestamp_to_ms(&timestamp_from_ms(ms)), ms);
        }
    }
}
