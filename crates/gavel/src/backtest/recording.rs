//! What a replay reads: the [`Recording`], its events encoded once and
//! ordered by event time, from a recorded file (gavel-recording's formats)
//! or from a Kafka topic read to its current end.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context;
use gavel_model::{Event, decode, encode_protobuf, event_time_ms};
use gavel_recording::FileFormat;

/// The events of a replay, encoded once and ordered by event time, then
/// event id: the same events give the same order however they were read
/// (a file, or a topic's partitions interleaved as they arrived).
#[derive(Debug, Default)]
pub struct Recording {
    events: Vec<(i64, Vec<u8>)>,
    /// Records that had no event time (or no payload) and were skipped.
    pub skipped: u64,
}

impl Recording {
    /// Collects `events` and sorts them by event time.
    pub fn new(events: impl IntoIterator<Item = Event>) -> Recording {
        let mut recording = Recording::default();
        let mut keyed = Vec::new();
        for event in events {
            match event_time_ms(&event).filter(|_| event.kind().is_some()) {
                Some(t) => keyed.push((t, event.event_id.clone(), encode_protobuf(&event))),
                None => recording.skipped += 1,
            }
        }
        // Stable: events with the same time and id keep their input order.
        keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        recording.events = keyed.into_iter().map(|(t, _, bytes)| (t, bytes)).collect();
        recording
    }

    /// Events to replay.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events in replay order: event time in milliseconds and the
    /// event as protobuf.
    pub(super) fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> {
        self.events.iter().map(|(t, bytes)| (*t, bytes.as_slice()))
    }
}

/// Opens a file for buffered reading, naming it in the error.
pub(super) fn open(path: &Path) -> anyhow::Result<BufReader<File>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::with_capacity(1 << 20, file))
}

/// Reads a recorded file; the first record that does not read is an error
/// naming the file and the record.
pub fn read_file(path: &Path, format: FileFormat) -> anyhow::Result<Recording> {
    let events: Vec<Event> =
        format.read(open(path)?).collect::<Result<_, _>>().with_context(|| path.display().to_string())?;
    Ok(Recording::new(events))
}

/// Reads a topic from its beginning to its current end; messages that do
/// not decode are counted as skipped.
pub(super) fn read_kafka(brokers: &str, topic: &str, format: FileFormat) -> anyhow::Result<Recording> {
    let settings = gavel_kafka::KafkaSettings::new(brokers, format!("gavel-replay-{}", std::process::id()), vec![]);
    let mut events = Vec::new();
    let mut undecodable = 0;
    gavel_kafka::read_topic(&settings, topic, format.encoding(), &mut |input| match decode(
        input.encoding,
        input.payload,
    ) {
        Ok(event) => events.push(event),
        Err(_) => undecodable += 1,
    })?;
    let mut recording = Recording::new(events);
    recording.skipped += undecodable;
    Ok(recording)
}
