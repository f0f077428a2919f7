//! Finding where warm-up starts when the broker cannot answer
//! offsets-for-times: a binary search for the first offset whose message
//! timestamp is at or after a given time.
//!
//! Pure: the search asks a `probe` for "the next message at or after this
//! offset", so the same code runs over a consumer (`warmup.rs`, one fetch
//! per probe) and over a vector in the tests. It assumes timestamps grow
//! with offsets, as with broker log-append time or producers that stamp
//! event time in order; it does not check that they do.

/// The first offset in `[low, high)` whose message timestamp is at or after
/// `since_ms`, or `high` if there is none.
///
/// `probe(offset)` returns the offset and timestamp of the first readable
/// message at or after `offset` (offsets may have gaps: compaction,
/// transaction markers), or `None` if nothing is readable from there on. Its
/// errors are passed through. The answer is always in `[low, high]`; where
/// offsets have gaps it may be an unreadable offset, from which reading
/// yields the same messages as from the first readable one after it.
pub(crate) fn first_at_or_after<E>(
    mut low: i64,
    mut high: i64,
    since_ms: i64,
    mut probe: impl FnMut(i64) -> Result<Option<(i64, i64)>, E>,
) -> Result<i64, E> {
    while low < high {
        let mid = low + (high - low) / 2;
        match probe(mid)? {
            // Nothing readable at or after mid: the range ends before it.
            None => high = mid,
            // Everything up to the message found is older.
            Some((offset, timestamp)) if timestamp < since_ms => low = offset.saturating_add(1).min(high),
            Some(_) => high = mid,
        }
    }
    Ok(low)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// Searches a partition whose message at offset `i` has `timestamps[i]`.
    fn search(timestamps: &[i64], since_ms: i64) -> i64 {
        let probe = |offset: i64| -> Result<_, Infallible> {
            Ok(timestamps.get(offset as usize).map(|&timestamp| (offset, timestamp)))
        };
        let found = first_at_or_after(0, timestamps.len() as i64, since_ms, probe);
        found.unwrap_or_else(|never| match never {})
    }

    #[test]
    fn an_empty_partition_starts_at_its_end() {
        assert_eq!(search(&[], 100), 0);
    }

    #[test]
    fn all_older_starts_at_the_end_and_all_newer_at_the_start() {
        assert_eq!(search(&[1, 2, 3, 4, 5], 100), 5);
        assert_eq!(search(&[101, 102, 103], 100), 0);
    }

    #[test]
    fn the_boundary_itself_is_included() {
        let timestamps = [10, 20, 30, 40, 50, 60, 70];
        assert_eq!(search(&timestamps, 40), 3, "a message stamped exactly `since` is replayed");
        assert_eq!(search(&timestamps, 41), 4);
        assert_eq!(search(&timestamps, 39), 3);
        for (i, &t) in timestamps.iter().enumerate() {
            assert_eq!(search(&timestamps, t), i as i64);
        }
    }

    #[test]
    fn duplicates_start_at_the_first_of_their_run() {
        assert_eq!(search(&[5, 7, 7, 7, 7, 7, 9], 7), 1);
        assert_eq!(search(&[7, 7, 7, 7], 7), 0);
        assert_eq!(search(&[3, 3, 3, 3, 8], 4), 4);
    }

    #[test]
    fn every_answer_matches_a_linear_scan() {
        let timestamps: Vec<i64> = (0..50).map(|i| i / 3 * 10).collect();
        for since in -5..=200 {
            let expected = timestamps.iter().position(|&t| t >= since).unwrap_or(timestamps.len()) as i64;
            assert_eq!(search(&timestamps, since), expected, "since {since}");
        }
    }

    #[test]
    fn gaps_in_offsets_and_a_nonzero_floor_are_handled() {
        // Offsets 100..120, only the even ones readable, stamped with their offset.
        let readable = |offset: i64| (offset..120).find(|o| o % 2 == 0);
        let probe = |offset: i64| -> Result<_, Infallible> { Ok(readable(offset).map(|o| (o, o))) };
        let found = |since| first_at_or_after(100, 120, since, probe).unwrap_or_else(|never| match never {});
        assert_eq!(found(0), 100);
        assert_eq!(found(108), 107, "107 is a gap: reading from it starts at 108");
        assert_eq!(found(500), 119, "nothing readable from the gap on: as good as the end");
        for since in 90..130 {
            let first = (100..120).filter(|o| o % 2 == 0).find(|&o| o >= since);
            let start = found(since);
            assert!((100..=120).contains(&start));
            assert_eq!(readable(start), first, "since {since}: reading from {start} yields the right messages");
        }
    }

    #[test]
    fn probe_errors_stop_the_search() {
        let failed = first_at_or_after(0, 10, 5, |_| Err("broker went away"));
        assert_eq!(failed, Err("broker went away"));
    }
}
