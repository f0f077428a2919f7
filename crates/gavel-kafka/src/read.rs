//! Reading a topic from its beginning to its current end, outside any
//! consumer group: for `gavel replay --topic`.
//!
//! It reuses warm-up's replay loop and commits nothing; it neither decodes
//! nor orders across partitions (the caller does).

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::contract::{Input, InputTopic, WarmSink};
use crate::error::Result;
use crate::settings::KafkaSettings;
use crate::warmup::{Range, replay};

/// Hands every message of `topic` that exists now to `each`, partition by
/// partition in offset order (partitions interleave). Stops at the high
/// watermarks taken at the start; fails if the broker goes quiet for
/// `settings.warmup_timeout`. Blocking.
pub fn read_topic(
    settings: &KafkaSettings,
    topic: &str,
    encoding: gavel_model::Encoding,
    each: &mut (dyn FnMut(&Input<'_>) + Send),
) -> Result<u64> {
    let timeout = settings.warmup_timeout;
    let mut settings = settings.clone();
    settings.inputs = vec![InputTopic { name: topic.to_string(), encoding }];
    let mut config = settings.consumer_config();
    config.set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut ranges = Vec::new();
    for partition in metadata.topics().iter().filter(|t| t.name() == topic).flat_map(|t| t.partitions()) {
        let (start, end) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        if start < end {
            ranges.push(Range { topic: topic.to_string(), partition: partition.id(), start, end });
        }
    }
    replay(&consumer, &settings, &ranges, &mut Each(each), timeout)
}

/// A callback as a [`WarmSink`].
struct Each<'a>(&'a mut (dyn FnMut(&Input<'_>) + Send));

impl WarmSink for Each<'_> {
    fn warm(&mut self, input: &Input<'_>) {
        (self.0)(input)
    }
}
