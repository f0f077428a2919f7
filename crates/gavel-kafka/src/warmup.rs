//! Warm-up replay: before consuming live, re-read each input partition from
//! the first message at or after `since` (now − the pack's longest window)
//! up to the group's committed offset, handing every message to a
//! [`WarmSink`] that rebuilds state and emits nothing.
//!
//! The start offset comes from offsets-for-times where the broker answers
//! it; where it does not (some Kafka-compatible brokers, including the test
//! broker), from a binary search over message timestamps, one fetch per
//! probe (`search.rs`). A partition the group never committed is warmed up
//! to its end (the high watermark when planned) and reported in
//! [`WarmupReport::live_starts`]: live consumption starts there, so a first
//! deployment or a renamed group emits nothing for the past. With
//! [`FirstStart::Earliest`] such partitions are skipped instead, and the
//! live consumer reads (and emits for) their whole history.
//!
//! Warm-up never emits, never commits and never joins the group: its
//! consumer only reads the group's committed offsets. When to warm up (on
//! assignment) and what was already fed is the caller's business
//! (`context.rs`).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tracing::{debug, info};

use crate::contract::{Input, WarmSink, WarmupReport};
use crate::detached::Consumed;
use crate::error::{KafkaError, Result};
use crate::order::{End, Lane, Merge, Next};
use crate::search::first_at_or_after;
use crate::settings::{FirstStart, InputOrder, KafkaSettings};

/// A partition to warm up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The last offset this process already fed into its state, if any:
    /// replay starts after it, so nothing is counted twice.
    pub after: Option<i64>,
}

/// One partition to replay: `[start, end)`.
#[derive(Debug)]
pub(crate) struct Range {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset to read.
    pub start: i64,
    /// First offset not to read.
    pub end: i64,
}

/// Replays every partition of every input topic from the first message at
/// or after `since_ms` up to the committed offset of the settings' group.
/// Blocking: run it on a blocking thread.
pub fn warm_up(
    settings: &KafkaSettings,
    since_ms: i64,
    sink: &mut dyn WarmSink,
    timeout: Duration,
) -> Result<WarmupReport> {
    let mut settings = settings.clone();
    settings.warmup_timeout = timeout;
    let replays: Vec<Replay> = all_partitions(&settings)?
        .into_iter()
        .map(|(topic, partition)| Replay { topic, partition, after: None })
        .collect();
    warm_partitions(&settings, &replays, Some(since_ms), sink)
}

/// Every partition of every input topic, as the broker's metadata has them.
pub(crate) fn all_partitions(settings: &KafkaSettings) -> Result<Vec<(String, i32)>> {
    let consumer: BaseConsumer = settings.consumer_config().create()?;
    let mut partitions = Vec::new();
    for input in &settings.inputs {
        let metadata = consumer.fetch_metadata(Some(&input.name), settings.warmup_timeout)?;
        for topic in metadata.topics().iter().filter(|t| t.name() == input.name) {
            partitions.extend(topic.partitions().iter().map(|p| (input.name.clone(), p.id())));
        }
    }
    Ok(partitions)
}

/// Under [`StateScope::Replicated`](crate::StateScope), one partition's
/// plan (`follow.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Followed {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The first offset to read into state: the first at or after
    /// `since_ms`, or `publish` if that is earlier.
    pub start: i64,
    /// The first offset whose outputs nobody has published: the group's
    /// committed offset; for a partition never committed, its end (or its
    /// start with [`FirstStart::Earliest`]).
    pub publish: i64,
}

/// Plans reading `partitions` into state from `since_ms` (`None`: the
/// rules keep no history) and publishing them from where the group is.
/// Blocking.
pub(crate) fn follow_plan(
    settings: &KafkaSettings,
    partitions: &[(String, i32)],
    since_ms: Option<i64>,
) -> Result<Vec<Followed>> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let consumer = replay_consumer(settings)?;
    let replays: Vec<Replay> = partitions
        .iter()
        .map(|(topic, partition)| Replay { topic: topic.clone(), partition: *partition, after: None })
        .collect();
    let Plan { ranges, starts, .. } = plan(&consumer, settings, &replays, since_ms)?;
    let mut followed = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let publish = match starts.iter().find(|(t, p, _)| t == topic && p == partition) {
            Some(&(_, _, offset)) => offset,
            // Never committed, and read from the start (`FirstStart::Earliest`).
            None => consumer.fetch_watermarks(topic, *partition, settings.warmup_timeout)?.0,
        };
        let start = ranges.iter().find(|r| r.topic == *topic && r.partition == *partition).map_or(publish, |r| r.start);
        followed.push(Followed { topic: topic.clone(), partition: *partition, start: start.min(publish), publish });
    }
    Ok(followed)
}

/// Replays the given partitions from the first message at or after
/// `since_ms` (and after each one's `after`) up to the group's committed
/// offset, or, for a partition the group never committed, up to its end
/// (see the module docs and [`FirstStart`]). With `since_ms` `None` (the
/// rules keep no history) nothing is replayed, but the live starts of
/// never-committed partitions are still found. Blocking.
pub fn warm_partitions(
    settings: &KafkaSettings,
    replays: &[Replay],
    since_ms: Option<i64>,
    sink: &mut dyn WarmSink,
) -> Result<WarmupReport> {
    let started = Instant::now();
    let consumer = replay_consumer(settings)?;
    if replays.is_empty() {
        return Ok(WarmupReport::default());
    }
    let Plan { ranges, searched, live_starts, starts } = plan(&consumer, settings, replays, since_ms)?;
    let messages = replay(&consumer, settings, &ranges, sink, settings.warmup_timeout)?;
    let fed = ranges.iter().map(|r| (r.topic.clone(), r.partition, r.end - 1)).collect();
    let report = WarmupReport {
        partitions: ranges.len(),
        messages,
        searched,
        elapsed: started.elapsed(),
        fed,
        live_starts,
        starts,
    };
    info!(
        partitions = report.partitions,
        messages,
        searched,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "warm-up done"
    );
    Ok(report)
}

/// A consumer of the group's offsets for replaying history: it never
/// commits, and fetches in bulk unless the user chose fetch sizes.
fn replay_consumer(settings: &KafkaSettings) -> Result<BaseConsumer> {
    let mut config = settings.consumer_config();
    // Replaying must never move the group's offsets.
    config.set("enable.auto.commit", "false");
    // Replay reads history in bulk: larger fetches, unless the user chose.
    for (key, value) in [("max.partition.fetch.bytes", "8388608"), ("fetch.max.bytes", "67108864")] {
        if config.get(key).is_none() {
            config.set(key, value);
        }
    }
    Ok(config.create()?)
}

/// What to replay, and where live consumption goes on.
struct Plan {
    /// The range to replay of each partition, from its start (found by the
    /// broker or by search) to the group's committed offset (or the end of
    /// a partition never committed).
    ranges: Vec<Range>,
    /// How many starts were searched for.
    searched: usize,
    /// Where live consumption starts on never-committed partitions.
    live_starts: Vec<(String, i32, i64)>,
    /// Where live consumption starts on every partition whose start is known.
    starts: Vec<(String, i32, i64)>,
}

/// Plans the replay of `replays` from `since_ms` (see [`Plan`]).
fn plan(consumer: &BaseConsumer, settings: &KafkaSettings, replays: &[Replay], since_ms: Option<i64>) -> Result<Plan> {
    let timeout = settings.warmup_timeout;
    let mut tpl = TopicPartitionList::new();
    for r in replays {
        tpl.add_partition(&r.topic, r.partition);
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    let mut ranges = Vec::new();
    let mut searched = 0;
    let mut live_starts = Vec::new();
    let mut starts = Vec::new();
    for r in replays {
        let committed_end = match committed.find_partition(&r.topic, r.partition).map(|e| e.offset()) {
            Some(Offset::Offset(end)) => Some(end),
            _ => None,
        };
        if committed_end.is_none() && settings.first_start == FirstStart::Earliest {
            continue;
        }
        let (low, high) = consumer.fetch_watermarks(&r.topic, r.partition, timeout)?;
        let end = committed_end.unwrap_or_else(|| {
            live_starts.push((r.topic.clone(), r.partition, high));
            high
        });
        starts.push((r.topic.clone(), r.partition, end));
        let Some(since_ms) = since_ms else { continue };
        let floor = low.max(r.after.map_or(i64::MIN, |after| after + 1));
        if floor >= end {
            continue;
        }
        let answer = settings
            .offsets_for_times
            .then(|| offset_for_time(consumer, &r.topic, r.partition, since_ms, timeout))
            .flatten();
        let start = match answer {
            Some(start) => start,
            None => {
                searched += 1;
                search_by_timestamp(consumer, &r.topic, r.partition, floor, end, since_ms, timeout)?
            }
        };
        let start = start.max(floor);
        if start < end {
            ranges.push(Range { topic: r.topic.clone(), partition: r.partition, start, end });
        }
    }
    Ok(Plan { ranges, searched, live_starts, starts })
}

/// The broker's answer to offsets-for-times, when it gives one.
fn offset_for_time(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    since_ms: i64,
    timeout: Duration,
) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(since_ms)).ok()?;
    let answer = consumer.offsets_for_times(tpl, timeout).ok()?;
    let element = answer.find_partition(topic, partition)?;
    if element.error().is_err() {
        return None;
    }
    match element.offset() {
        Offset::Offset(o) if o >= 0 => Some(o),
        _ => None,
    }
}

/// The first offset in `[low, high)` whose message timestamp is at or after
/// `since_ms` (`high` if none), by binary search with one fetch per probe.
fn search_by_timestamp(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    low: i64,
    high: i64,
    since_ms: i64,
    timeout: Duration,
) -> Result<i64> {
    first_at_or_after(low, high, since_ms, |mid| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(mid))?;
        consumer.assign(&tpl)?;
        let next = next_message(consumer, timeout)?;
        if let Some((offset, timestamp)) = next {
            debug!(topic, partition, mid, offset, timestamp, "warm-up probe");
        }
        Ok(next)
    })
}

/// The next message's offset and timestamp, waiting up to `timeout`.
fn next_message(consumer: &BaseConsumer, timeout: Duration) -> Result<Option<(i64, i64)>> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => return Ok(Some((m.offset(), m.timestamp().to_millis().unwrap_or(i64::MIN)))),
            Some(Err(e)) => return Err(KafkaError::Consume(e)),
            None => {}
        }
    }
    Ok(None)
}

/// Reads every range to its end, handing the messages over in the order
/// live consumption feeds them (`order.rs`) under [`InputOrder::Log`], or
/// as they come under [`InputOrder::Arrival`]. Every range's end is known,
/// so the merge never has to guess: it waits for a partition with more to
/// come, up to `timeout` like any read.
pub(crate) fn replay(
    consumer: &BaseConsumer,
    settings: &KafkaSettings,
    ranges: &[Range],
    sink: &mut dyn WarmSink,
    timeout: Duration,
) -> Result<u64> {
    if ranges.is_empty() {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    for r in ranges {
        tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.start))?;
    }
    consumer.assign(&tpl)?;
    // One partition has one order: nothing to merge.
    let mut merge = (settings.order == InputOrder::Log && ranges.len() > 1).then(|| {
        let mut merge = Merge::new(timeout);
        let lanes: Vec<(Lane, Option<i64>)> = (0..ranges.len()).map(|i| ((i, 0), Some(ranges[i].start))).collect();
        merge.assign(&lanes);
        merge
    });
    let end_of = |(i, _): Lane| End::Known { low: ranges[i].start, high: ranges[i].end };
    let mut remaining: Vec<bool> = vec![true; ranges.len()];
    let mut messages = 0;
    let mut last_progress = Instant::now();
    while remaining.iter().any(|r| *r) {
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            if last_progress.elapsed() > timeout {
                return Err(KafkaError::consume(rdkafka::types::RDKafkaErrorCode::OperationTimedOut));
            }
            continue;
        };
        let message = polled.map_err(KafkaError::Consume)?;
        last_progress = Instant::now();
        let Some(i) = ranges.iter().position(|r| r.topic == message.topic() && r.partition == message.partition())
        else {
            continue;
        };
        let range = &ranges[i];
        if message.offset() >= range.end {
            remaining[i] = false;
            continue;
        }
        if message.offset() + 1 >= range.end {
            remaining[i] = false;
        }
        let Some(merge) = merge.as_mut() else {
            messages += warm_one(settings, sink, &message);
            continue;
        };
        // Each range is a lane of its own, numbered by its index.
        let Some((topic, _)) = settings.encoding_of(message.topic()) else { continue };
        let held = Consumed::of(&message, topic, &[]);
        merge.push((i, 0), message.offset(), held.timestamp_ms, held);
        while let Next::Ready(held) = merge.next(Instant::now(), false, end_of) {
            sink.warm(&held.input(settings));
            messages += 1;
        }
    }
    if let Some(merge) = merge.as_mut() {
        // Every range is read to its end, so nothing can come first any more.
        while let Next::Ready(held) = merge.next(Instant::now(), true, end_of) {
            sink.warm(&held.input(settings));
            messages += 1;
        }
    }
    Ok(messages)
}

/// Hands `message` to `sink` if it is from an input topic; how many it handed.
fn warm_one(settings: &KafkaSettings, sink: &mut dyn WarmSink, message: &impl Message) -> u64 {
    let Some((_, encoding)) = settings.encoding_of(message.topic()) else { return 0 };
    sink.warm(&Input::of(message, encoding));
    1
}
