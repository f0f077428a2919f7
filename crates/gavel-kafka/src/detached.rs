//! A consumed message detached from its consumer: what the shards, and
//! warm-up's merge, hold of a message after the poll that returned it.

use std::time::Instant;

use rdkafka::Message;

use crate::contract::Input;
use crate::settings::KafkaSettings;

/// A consumed message, detached from the consumer so it can cross threads.
/// Key and payload share one buffer: one allocation per message.
#[derive(Debug)]
pub(crate) struct Consumed {
    /// Input topic, by index into the settings' inputs.
    pub topic: usize,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The Kafka timestamp, if any.
    pub timestamp_ms: Option<i64>,
    /// Length of the key at the start of `data`; `None` for no key.
    key_len: Option<usize>,
    /// Key, then payload.
    data: Vec<u8>,
    /// When the consumer took it, for processing latency.
    pub received: Instant,
    /// The message's trace headers (those named in
    /// `KafkaSettings::trace_headers`), copied to each of its outputs.
    pub trace: Vec<(String, Vec<u8>)>,
}

impl Consumed {
    /// Bytes it holds: key, payload and trace headers, and its own fields.
    pub fn size(&self) -> usize {
        let trace: usize = self.trace.iter().map(|(name, value)| name.len() + value.len()).sum();
        std::mem::size_of::<Consumed>() + self.data.len() + trace
    }

    /// Copies what a shard needs out of `message` from input topic `topic`,
    /// keeping the headers named in `trace_headers`.
    pub fn of(message: &impl Message, topic: usize, trace_headers: &[String]) -> Consumed {
        let key = message.key();
        let payload = message.payload().unwrap_or_default();
        let mut data = Vec::with_capacity(key.map_or(0, <[u8]>::len) + payload.len());
        if let Some(key) = key {
            data.extend_from_slice(key);
        }
        data.extend_from_slice(payload);
        Consumed {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key_len: key.map(<[u8]>::len),
            data,
            received: Instant::now(),
            trace: trace_of(message, trace_headers),
        }
    }

    /// The processor's view of the message.
    pub fn input<'a>(&'a self, settings: &'a KafkaSettings) -> Input<'a> {
        let topic = &settings.inputs[self.topic];
        let split = self.key_len.unwrap_or(0);
        Input {
            topic: &topic.name,
            partition: self.partition,
            offset: self.offset,
            key: self.key_len.map(|_| &self.data[..split]),
            payload: &self.data[split..],
            timestamp_ms: self.timestamp_ms,
            encoding: topic.encoding,
        }
    }
}

/// The headers of `message` named in `names` (any ASCII case), in the
/// message's order; nothing is allocated for a message without them.
fn trace_of(message: &impl Message, names: &[String]) -> Vec<(String, Vec<u8>)> {
    message.headers().map_or_else(Vec::new, |headers| named_headers(headers, names))
}

/// The headers in `headers` named in `names` (any ASCII case), copied.
pub(crate) fn named_headers<H: rdkafka::message::Headers>(headers: &H, names: &[String]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|h| names.iter().any(|n| n.eq_ignore_ascii_case(h.key)))
        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
        .collect()
}
