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
    Client(#[from] rdkafka::error::KafkaError),
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
}
