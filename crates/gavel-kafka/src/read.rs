//! Reading a topic from its beginning to its current end, outside any
//! consumer group: for `gavel replay --topic`.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::pipeline::Input;
use crate::{KafkaError, KafkaSettings, Result};

/// Hands every message of `topic` that exists now to `each`, partition by
/// partition in offset order (partitions interleave). Stops at the high
/// watermarks taken at the start; fails if the broker goes quiet for
/// `settings.warmup_timeout`. Blocking.
pub fn read_topic(
    settings: &KafkaSettings,
    topic: &str,
    encoding: gavel_model::Encoding,
    each: &mut dyn FnMut(&Input<'_>),
) -> Result<u64> {
    let timeout = settings.warmup_timeout;
    let mut config = settings.consumer_config();
    config.set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().map_err(KafkaError::Client)?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(KafkaError::Client)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).map_err(KafkaError::Client)?;
        if low < high {
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).map_err(KafkaError::Client)?;
            ends.push((p, high));
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&tpl).map_err(KafkaError::Client)?;
    let mut read = 0;
    let mut last = Instant::now();
    while !ends.is_empty() {
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            if last.elapsed() > timeout {
                return Err(KafkaError::Consume(rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                )));
            }
            continue;
        };
        let message = polled.map_err(KafkaError::Consume)?;
        last = Instant::now();
        let Some(i) = ends.iter().position(|(p, _)| *p == message.partition()) else { continue };
        if message.offset() < ends[i].1 {
            each(&Input::of(&message, encoding));
            read += 1;
        }
        if message.offset() + 1 >= ends[i].1 {
            ends.swap_remove(i);
        }
    }
    Ok(read)
}
