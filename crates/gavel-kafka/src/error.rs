//! The crate's one error type and its `Result` alias.
//!
//! Lower crates' errors are wrapped, never turned into strings, so that a
//! caller can walk the `source()` chain and tell an rdkafka failure (an
//! external system; retrying may help) from anything else. Failures the
//! pipeline retries by itself (deliveries, offset commits) are logged and
//! counted, not returned, so they have no variant here.

use rdkafka::types::RDKafkaErrorCode;

/// Errors from the Kafka adapter.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A client could not be created or configured, or a client call
    /// (metadata, watermarks, committed offsets, assignment) failed.
    #[error("kafka client: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// librdkafka refused a client option. Names the option, never its
    /// value: a value may be a resolved secret (`env:`/`file:`), and
    /// librdkafka's own message repeats it.
    #[error("kafka option `{option}` rejected: {reason}")]
    Option {
        /// The option's name.
        option: String,
        /// librdkafka's reason, with the value taken out.
        reason: String,
    },
    /// Subscribing to the input topics failed.
    #[error("subscribe to {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// Why.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Consuming failed in a way that cannot be retried, or a replay made no
    /// progress within its timeout.
    #[error("consume: {0}")]
    Consume(#[source] rdkafka::error::KafkaError),
    /// A pipeline thread could not be started.
    #[error("pipeline thread could not start: {0}")]
    Spawn(#[from] std::io::Error),
    /// The consumer thread ended without reporting how.
    #[error("pipeline thread: consumer thread died")]
    ConsumerDied,
    /// A shard's queue closed while the consumer was still routing to it.
    #[error("pipeline thread: a shard stopped")]
    ShardStopped,
    /// Under replicated state: this member took a partition over below
    /// outputs it had dropped for room (`follow.rs`). It stops rather than
    /// skip them; restarted, it rebuilds state from the log and publishes
    /// from the group's committed offset.
    #[error(
        "took over {topic} partition {partition} at offset {from}, but the held outputs up to offset {lost} \
         were dropped for room; stopping so that a restart publishes them"
    )]
    HandOverGap {
        /// The input topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// The offset it was taken over at.
        from: i64,
        /// The last offset whose outputs were dropped.
        lost: i64,
    },
    /// The broker does not know the topic.
    #[error("topic {0} does not exist on the broker")]
    UnknownTopic(String),
    /// The topic has no such partition.
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// Creating a topic failed.
    #[error("create topic {topic}: {source}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        #[source]
        source: RDKafkaErrorCode,
    },
}

/// Result alias for this crate.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

impl From<rdkafka::error::KafkaError> for KafkaError {
    fn from(error: rdkafka::error::KafkaError) -> Self {
        match error {
            rdkafka::error::KafkaError::ClientConfig(_, description, option, value) => {
                let reason = if value.is_empty() { description } else { description.replace(&value, "<redacted>") };
                KafkaError::Option { option, reason }
            }
            other => KafkaError::Client(other),
        }
    }
}

impl KafkaError {
    /// A consume error for `code`, as librdkafka would report it.
    pub(crate) fn consume(code: RDKafkaErrorCode) -> Self {
        KafkaError::Consume(rdkafka::error::KafkaError::MessageConsumption(code))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn rdkafka_errors_stay_in_the_source_chain() {
        let error: KafkaError = rdkafka::error::KafkaError::Canceled.into();
        assert!(error.source().is_some_and(|s| s.is::<rdkafka::error::KafkaError>()));
        let error = KafkaError::consume(RDKafkaErrorCode::OperationTimedOut);
        assert!(error.source().is_some_and(|s| s.is::<rdkafka::error::KafkaError>()));
        let error = KafkaError::CreateTopic { topic: "t".into(), source: RDKafkaErrorCode::InvalidPartitions };
        assert!(error.source().is_some_and(|s| s.is::<RDKafkaErrorCode>()));
    }

    #[test]
    fn a_rejected_option_is_named_without_its_value() {
        for (option, value) in [("sasl.passwrod", "hunter2-SECRET"), ("session.timeout.ms", "hunter2-SECRET")] {
            let mut config = rdkafka::ClientConfig::new();
            config.set("bootstrap.servers", "127.0.0.1:1").set(option, value);
            let Err(error) = config.create::<rdkafka::consumer::BaseConsumer>() else {
                panic!("librdkafka accepted {option}");
            };
            let error = KafkaError::from(error);
            let mut text = error.to_string();
            let mut source = error.source();
            while let Some(s) = source {
                text.push_str(&s.to_string());
                source = s.source();
            }
            assert!(text.contains(option), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
