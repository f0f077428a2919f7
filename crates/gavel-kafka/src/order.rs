//! The order in which a shard applies the messages of its input
//! partitions: a function of the log alone, not of how fetches interleave.
//!
//! Kafka orders one partition; across partitions the order a consumer
//! sees depends on fetch timing, so state that events of several
//! partitions feed (a device's count, a card's accounts) would take
//! different values in two runs over the same log. [`Merge`] fixes the
//! order by a key every message carries in the log:
//!
//! `(stream time, input topic, partition, offset)`
//!
//! where a partition's stream time is the largest Kafka timestamp of its
//! messages so far (so each partition's keys only grow, and its own order
//! is kept). A message is released once no message with a smaller key can
//! still arrive: every other partition either has one buffered (whose key
//! is compared), has already passed that stream time, or has nothing more
//! in the log (its end, as the consumer last saw it, is where this shard
//! has read to). A partition known to have more, whose messages have not
//! come, is waited for up to `wait`; past that it is *stalled* — counted,
//! and not waited for again until its next message comes — so a paused or
//! slow partition costs latency, never progress.
//!
//! Given the same log and no stall, every run releases the same sequence:
//! warm-up replays ranges with known ends in it (never stalling), and a
//! restart resumes it from committed offsets, which are a prefix of it
//! because a shard acknowledges in the order it releases.
//!
//! Pure: no Kafka, no clock of its own (the caller passes `now`), so the
//! order is tested on plain data.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// An input partition: index into the settings' inputs, and partition number.
pub(crate) type Lane = (usize, i32);

/// Where a message stands in the order; smaller goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    /// The partition's stream time at this message (ms).
    pub stream_ms: i64,
    /// Input topic, by index.
    pub topic: usize,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// How far a partition's log goes, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The log holds offsets `[low, high)`.
    Known {
        /// First offset still in the log.
        low: i64,
        /// The next offset to be written.
        high: i64,
    },
    /// Not known yet (no fetch answered): more may come.
    Unknown,
    /// Its messages are held before the shard, its partition paused while
    /// the shard's queue is full, with its `[low, high)` if known: what the
    /// log holds beyond what arrived comes, however long the consumer takes
    /// to fetch again, so it is waited for and never stalled.
    Held(Option<(i64, i64)>),
}

/// Each partition's [`End`] as the consumer last saw it: written by the
/// consumer thread (from librdkafka's statistics, and while it holds a
/// partition's messages back), read by the shards.
#[derive(Debug, Default)]
pub(crate) struct Ends(RwLock<(HashMap<Lane, End>, HashSet<Lane>)>);

impl Ends {
    /// The end of `lane`'s log: [`End::Held`] while its messages are held
    /// back, [`End::Unknown`] before any was seen.
    pub fn get(&self, lane: Lane) -> End {
        let ends = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let end = ends.0.get(&lane).copied().unwrap_or(End::Unknown);
        if !ends.1.contains(&lane) {
            return end;
        }
        End::Held(match end {
            End::Known { low, high } => Some((low, high)),
            End::Unknown | End::Held(_) => None,
        })
    }

    /// Records the end of `lane`'s log.
    pub fn set(&self, lane: Lane, end: End) {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()).0.insert(lane, end);
    }

    /// Records whether `lane`'s messages are held back before the shard.
    pub fn hold(&self, lane: Lane, held: bool) {
        let mut ends = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if held {
            ends.1.insert(lane);
        } else {
            ends.1.remove(&lane);
        }
    }
}

/// What [`Merge::next`] gives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next<T> {
    /// The next message in the order.
    Ready(T),
    /// The next message may be one not yet arrived: ask again by then.
    Wait(Instant),
    /// Nothing buffered.
    Empty,
}

/// One partition's buffered messages and how far it has come.
#[derive(Debug)]
struct Queue<T> {
    /// Which partition.
    lane: Lane,
    /// Buffered messages, in offset order, with their keys.
    buffered: VecDeque<(Key, T)>,
    /// The offset after the last message pushed; `None` before the first,
    /// when the start is not known either (then the log's low end is).
    next: Option<i64>,
    /// The partition's stream time so far (ms).
    stream_ms: i64,
    /// Since when the merge has waited for this partition's next message.
    waiting_since: Option<Instant>,
    /// Waited for past `wait`: not waited for until its next message.
    stalled: bool,
}

impl<T> Queue<T> {
    /// An empty queue for `lane`, whose next message has offset `start` if known.
    fn new(lane: Lane, start: Option<i64>) -> Self {
        Queue { lane, buffered: VecDeque::new(), next: start, stream_ms: i64::MIN, waiting_since: None, stalled: false }
    }

    /// Whether a message not yet arrived may still come before `key`.
    fn may_precede(&self, key: &Key, end: &impl Fn(Lane) -> End) -> bool {
        if self.stalled || !self.buffered.is_empty() {
            return false;
        }
        // Any later message of this partition has a stream time at least
        // this one's, and its key ties on stream time by (topic, partition).
        if (self.stream_ms, self.lane.0, self.lane.1) > (key.stream_ms, key.topic, key.partition) {
            return false;
        }
        match end(self.lane) {
            End::Known { low, high } | End::Held(Some((low, high))) => high > self.next.unwrap_or(low),
            End::Unknown | End::Held(None) => true,
        }
    }
}

/// Messages of several partitions, released in the order of their [`Key`]s.
#[derive(Debug)]
pub(crate) struct Merge<T> {
    /// One queue per partition of this shard, in no particular order.
    queues: Vec<Queue<T>>,
    /// How long to wait for a partition known to have more.
    wait: Duration,
    /// Messages buffered, all partitions together.
    len: usize,
    /// Times a partition was stalled (waited for past `wait`).
    stalls: u64,
    /// Messages released before one that might still have come first,
    /// because the caller forced it (a full buffer, a drain).
    forced: u64,
}

impl<T> Merge<T> {
    /// An empty merge that waits up to `wait` for a partition known to have more.
    pub fn new(wait: Duration) -> Self {
        Merge { queues: Vec::new(), wait, len: 0, stalls: 0, forced: 0 }
    }

    /// Makes `lanes` the partitions merged, each with the offset its next
    /// message has if known. Partitions kept keep their messages and
    /// progress (a known start replaces theirs only if they have none);
    /// those dropped must have nothing buffered.
    pub fn assign(&mut self, lanes: &[(Lane, Option<i64>)]) {
        self.queues.retain(|q| lanes.iter().any(|(lane, _)| *lane == q.lane) || !q.buffered.is_empty());
        for &(lane, start) in lanes {
            match self.queues.iter_mut().find(|q| q.lane == lane) {
                Some(queue) => queue.next = queue.next.or(start),
                None => self.queues.push(Queue::new(lane, start)),
            }
        }
    }

    /// Buffers the message at `offset` of `lane`, with Kafka timestamp
    /// `timestamp_ms`. A partition not assigned is added, start unknown.
    pub fn push(&mut self, lane: Lane, offset: i64, timestamp_ms: Option<i64>, item: T) {
        let index = match self.queues.iter().position(|q| q.lane == lane) {
            Some(index) => index,
            None => {
                self.queues.push(Queue::new(lane, None));
                self.queues.len() - 1
            }
        };
        let queue = &mut self.queues[index];
        queue.stream_ms = queue.stream_ms.max(timestamp_ms.unwrap_or(i64::MIN));
        queue.next = Some(offset + 1);
        queue.waiting_since = None;
        queue.stalled = false;
        let key = Key { stream_ms: queue.stream_ms, topic: lane.0, partition: lane.1, offset };
        queue.buffered.push_back((key, item));
        self.len += 1;
    }

    /// Messages buffered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Times a partition was stalled so far.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// Messages released out of order so far because the caller forced them.
    pub fn forced(&self) -> u64 {
        self.forced
    }

    /// The next message in the order, if no message that may come first
    /// can still arrive, judged by each partition's `end` at `now`. With
    /// `force`, the smallest buffered message goes regardless (counted when
    /// it had to be forced).
    pub fn next(&mut self, now: Instant, force: bool, end: impl Fn(Lane) -> End) -> Next<T> {
        let Some(first) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.buffered.front().map(|(key, _)| (*key, i)))
            .min()
            .map(|(_, i)| i)
        else {
            return Next::Empty;
        };
        let key = self.queues[first].buffered.front().map(|(key, _)| *key).unwrap_or_else(|| unreachable!());
        let mut until: Option<Instant> = None;
        for queue in &mut self.queues {
            if !queue.may_precede(&key, &end) {
                // A wait that ended without a message (its end caught up)
                // must not count against the next one.
                queue.waiting_since = None;
                continue;
            }
            if matches!(end(queue.lane), End::Held(_)) {
                // Backpressure, not the broker: wait on, and look again.
                queue.waiting_since = None;
                let again = now + self.wait;
                until = Some(until.map_or(again, |u| u.min(again)));
                continue;
            }
            let since = *queue.waiting_since.get_or_insert(now);
            let deadline = since + self.wait;
            if now < deadline {
                until = Some(until.map_or(deadline, |u| u.min(deadline)));
            } else {
                queue.stalled = true;
                self.stalls += 1;
            }
        }
        match until {
            Some(_) if force => self.forced += 1,
            Some(until) => return Next::Wait(until),
            None => {}
        }
        let (_, item) = self.queues[first].buffered.pop_front().unwrap_or_else(|| unreachable!());
        self.len -= 1;
        Next::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Messages `(lane, offset, timestamp)` pushed as given, then released
    /// with every partition's end at `ends` and no waiting.
    fn released(arrivals: &[(Lane, i64, i64)], ends: &[(Lane, i64)]) -> Vec<(Lane, i64)> {
        let mut merge = Merge::new(Duration::from_secs(3600));
        let lanes: Vec<(Lane, Option<i64>)> = ends.iter().map(|&(lane, _)| (lane, Some(0))).collect();
        merge.assign(&lanes);
        let now = Instant::now();
        let end_of = |lane: Lane| End::Known { low: 0, high: ends.iter().find(|(l, _)| *l == lane).map_or(0, |e| e.1) };
        let mut out = Vec::new();
        for &(lane, offset, ts) in arrivals {
            merge.push(lane, offset, Some(ts), (lane, offset));
            while let Next::Ready(item) = merge.next(now, false, end_of) {
                out.push(item);
            }
        }
        assert_eq!(merge.len(), 0, "everything arrived, so everything is released");
        assert_eq!(merge.stalls() + merge.forced(), 0);
        out
    }

    #[test]
    fn messages_go_in_stream_time_order_with_ties_by_partition_then_offset() {
        let a = (0, 0);
        let b = (0, 1);
        // b arrives first, but a's first message is earlier.
        let order = released(&[(b, 0, 10), (b, 1, 20), (a, 0, 5), (a, 1, 20), (a, 2, 30)], &[(a, 3), (b, 2)]);
        assert_eq!(order, vec![(a, 0), (b, 0), (a, 1), (b, 1), (a, 2)]);
    }

    #[test]
    fn a_late_timestamp_keeps_its_place_in_its_partition() {
        let a = (0, 0);
        let b = (0, 1);
        // a's second message says 1 ms but follows one at 50: it goes at 50.
        let order = released(&[(a, 0, 50), (a, 1, 1), (b, 0, 40), (b, 1, 60)], &[(a, 2), (b, 2)]);
        assert_eq!(order, vec![(b, 0), (a, 0), (a, 1), (b, 1)]);
    }

    #[test]
    fn a_partition_with_more_in_the_log_is_waited_for_then_stalled() {
        let a = (0, 0);
        let b = (0, 1);
        let mut merge = Merge::new(Duration::from_millis(100));
        merge.assign(&[(a, Some(0)), (b, Some(0))]);
        let t0 = Instant::now();
        merge.push(a, 0, Some(10), "a0");
        let ends = |lane: Lane| End::Known { low: 0, high: if lane == a { 1 } else { 5 } };
        assert_eq!(merge.next(t0, false, ends), Next::Wait(t0 + Duration::from_millis(100)));
        assert_eq!(
            merge.next(t0 + Duration::from_millis(50), false, ends),
            Next::Wait(t0 + Duration::from_millis(100))
        );
        assert_eq!(merge.next(t0 + Duration::from_millis(100), false, ends), Next::Ready("a0"));
        assert_eq!(merge.stalls(), 1);
        // Stalled, b is not waited for again until a message of it comes.
        merge.push(a, 1, Some(20), "a1");
        assert_eq!(merge.next(t0 + Duration::from_millis(101), false, ends), Next::Ready("a1"));
        merge.push(a, 2, Some(30), "a2");
        merge.push(b, 0, Some(25), "b0");
        merge.push(a, 3, Some(40), "a3");
        let later = t0 + Duration::from_millis(200);
        assert_eq!(merge.next(later, false, ends), Next::Ready("b0"));
        assert_eq!(merge.next(later, false, ends), Next::Wait(later + Duration::from_millis(100)));
        // Forcing releases the smallest buffered message and says so.
        assert_eq!(merge.next(later, true, ends), Next::Ready("a2"));
        assert_eq!(merge.forced(), 1);
    }

    /// A partition held back for backpressure is waited for past the wait,
    /// never stalled, until its log has nothing more than what arrived.
    #[test]
    fn a_partition_held_back_is_waited_for_without_stalling() {
        let a = (0, 0);
        let b = (0, 1);
        let mut merge = Merge::new(Duration::from_millis(100));
        merge.assign(&[(a, Some(0)), (b, Some(0))]);
        let t0 = Instant::now();
        merge.push(a, 0, Some(10), "a0");
        let held = |high: i64| {
            move |lane: Lane| if lane == b { End::Held(Some((0, high))) } else { End::Known { low: 0, high: 1 } }
        };
        let late = t0 + Duration::from_secs(5);
        assert_eq!(merge.next(late, false, held(3)), Next::Wait(late + Duration::from_millis(100)));
        assert_eq!(merge.stalls(), 0);
        merge.push(b, 0, Some(5), "b0");
        merge.push(b, 1, Some(6), "b1");
        assert_eq!(merge.next(late, false, held(3)), Next::Ready("b0"));
        assert_eq!(merge.next(late, false, held(3)), Next::Ready("b1"));
        assert_eq!(merge.next(late, false, held(3)), Next::Wait(late + Duration::from_millis(100)), "b2 is in the log");
        assert_eq!(merge.next(late, false, held(2)), Next::Ready("a0"), "nothing more of b in its log");
        let unknown = |lane: Lane| if lane == b { End::Held(None) } else { End::Known { low: 0, high: 2 } };
        merge.push(a, 1, Some(20), "a1");
        assert_eq!(merge.next(late, false, unknown), Next::Wait(late + Duration::from_millis(100)));
        assert_eq!(merge.stalls() + merge.forced(), 0);
    }

    #[test]
    fn a_wait_that_ended_without_a_message_does_not_shorten_the_next() {
        let a = (0, 0);
        let b = (0, 1);
        let mut merge = Merge::new(Duration::from_millis(100));
        merge.assign(&[(a, Some(0)), (b, Some(0))]);
        let t0 = Instant::now();
        let more = |lane: Lane| End::Known { low: 0, high: if lane == a { 9 } else { 5 } };
        let done = |lane: Lane| End::Known { low: 0, high: if lane == a { 9 } else { 0 } };
        merge.push(a, 0, Some(10), "a0");
        assert!(matches!(merge.next(t0, false, more), Next::Wait(_)));
        // b turns out to have nothing: a0 goes, the wait is over.
        assert_eq!(merge.next(t0 + Duration::from_millis(90), false, done), Next::Ready("a0"));
        // Later b has more again: a fresh wait, not a stall.
        merge.push(a, 1, Some(20), "a1");
        let later = t0 + Duration::from_millis(150);
        assert_eq!(merge.next(later, false, more), Next::Wait(later + Duration::from_millis(100)));
        assert_eq!(merge.stalls(), 0);
    }

    #[test]
    fn a_partition_at_its_end_or_past_the_key_is_not_waited_for() {
        let a = (0, 0);
        let b = (0, 1);
        let c = (1, 0);
        let mut merge = Merge::new(Duration::from_secs(60));
        merge.assign(&[(a, Some(0)), (b, Some(7)), (c, None)]);
        let now = Instant::now();
        merge.push(a, 0, Some(10), "a0");
        // b has nothing after offset 7; c's log is empty.
        let ends = |lane: Lane| match lane {
            (0, 0) => End::Known { low: 0, high: 1 },
            (0, 1) => End::Known { low: 0, high: 7 },
            _ => End::Known { low: 3, high: 3 },
        };
        assert_eq!(merge.next(now, false, ends), Next::Ready("a0"));
        // Before any fetch answers, a partition may have anything.
        merge.push(a, 1, Some(20), "a1");
        assert!(matches!(merge.next(now, false, |_| End::Unknown), Next::Wait(_)));
        // A partition whose stream time is already past the key cannot precede it.
        merge.push(b, 7, Some(30), "b7");
        merge.push(c, 3, Some(25), "c3");
        assert_eq!(merge.next(now, false, |_| End::Unknown), Next::Ready("a1"));
        // a, now empty at stream time 20, may still send something before c3 …
        assert!(matches!(merge.next(now, false, |_| End::Unknown), Next::Wait(_)));
        // … unless its log ends where it has read to (and so does c's).
        let a_done = |lane: Lane| match lane {
            (0, 0) => End::Known { low: 0, high: 2 },
            (1, 0) => End::Known { low: 3, high: 4 },
            _ => End::Unknown,
        };
        assert_eq!(merge.next(now, false, a_done), Next::Ready("c3"));
        assert_eq!(merge.next(now, false, a_done), Next::Ready("b7"));
        assert_eq!(merge.next(now, false, a_done), Next::Empty);
    }

    #[test]
    fn reassigning_keeps_the_progress_of_partitions_kept() {
        let a = (0, 0);
        let b = (0, 1);
        let mut merge = Merge::new(Duration::from_secs(60));
        merge.assign(&[(a, Some(0)), (b, Some(0))]);
        merge.push(b, 0, Some(50), "b0");
        merge.assign(&[(b, Some(0))]);
        let now = Instant::now();
        // b's next is offset 1, not the start given again.
        let ends = |lane: Lane| End::Known { low: 0, high: if lane == b { 1 } else { 9 } };
        assert_eq!(merge.next(now, false, ends), Next::Ready("b0"));
        assert_eq!(merge.next(now, false, ends), Next::Empty);
    }

    proptest! {
        /// However the partitions' messages interleave on arrival, the
        /// release order is the same: the log decides it.
        #[test]
        fn the_order_depends_on_the_log_not_on_arrival(
            logs in prop::collection::vec(prop::collection::vec(0i64..50, 0..12), 1..5),
            seed in any::<u64>(),
        ) {
            let lanes: Vec<Lane> = (0..logs.len()).map(|i| (i % 2, i as i32)).collect();
            let ends: Vec<(Lane, i64)> = lanes.iter().zip(&logs).map(|(&l, log)| (l, log.len() as i64)).collect();
            // One arrival order: partition by partition.
            let in_turn: Vec<(Lane, i64, i64)> = lanes
                .iter()
                .zip(&logs)
                .flat_map(|(&lane, log)| log.iter().enumerate().map(move |(o, &ts)| (lane, o as i64, ts)))
                .collect();
            // Another: interleaved by a seeded shuffle that keeps each partition's order.
            let mut cursors = vec![0usize; logs.len()];
            let mut state = seed | 1;
            let mut shuffled = Vec::new();
            while shuffled.len() < in_turn.len() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state % logs.len() as u64) as usize;
                if cursors[i] < logs[i].len() {
                    shuffled.push((lanes[i], cursors[i] as i64, logs[i][cursors[i]]));
                    cursors[i] += 1;
                }
            }
            let first = released(&in_turn, &ends);
            prop_assert_eq!(first.len(), in_turn.len());
            prop_assert_eq!(first, released(&shuffled, &ends));
        }
    }
}
