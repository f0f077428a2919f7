//! Gavel's Kafka adapter: a consumer in a consumer group reads the input
//! topics and routes each message to the shard thread that owns its
//! partition; the shard hands it to its [`Processor`], produces what it
//! returns, and stores the input offset only after the broker has
//! acknowledged every output for it.
//!
//! # Delivery semantics
//!
//! At-least-once, in per-partition order:
//!
//! 1. A message is processed and all its outputs (or its dead-letter record)
//!    are enqueued on an idempotent producer.
//! 2. The message's delivery futures join a queue in consumption order. Only
//!    when every output of a message is acknowledged, and every message
//!    before it has been too, is its offset stored (`enable.auto.offset.store`
//!    is off), so a stored offset never runs ahead of an unacknowledged output.
//! 3. Stored offsets are committed periodically by librdkafka, and
//!    synchronously before partitions are given up in a rebalance (after
//!    every shard has drained) and on shutdown.
//! 4. An output the producer gives up on is sent again, with backoff, until
//!    the broker takes it: a broker outage delays outputs but drops none.
//!
//! A crash therefore re-delivers at most the messages after the last commit;
//! their outputs are produced again (actions carry deterministic ids for
//! that reason). A message that does not decode goes to the dead-letter
//! topic with `gavel.source.*` and `gavel.error` headers and never blocks
//! its partition.
//!
//! This crate knows nothing of rules or features: it moves bytes and
//! offsets. Decoding and scoring happen in the [`Processor`] the binary
//! supplies.

mod admin;
mod context;
mod pipeline;
mod read;
mod settings;
mod shard;
mod warmup;

pub use admin::create_topics;
pub use pipeline::{Hooks, Input, Output, OutputTopic, Pipeline, PipelineObserver, Processed, Processor, dlq_headers};
pub use read::read_topic;
pub use settings::{InputTopic, KafkaSettings, OutputTopics};
pub use warmup::{Replay, WarmSink, WarmupReport, warm_partitions, warm_up};

/// Errors from the Kafka adapter.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A client could not be created or configured.
    #[error("kafka client: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// Subscribing to the input topics failed.
    #[error("subscribe to {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// Why.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// An output could not be delivered after librdkafka's retries; the input
    /// offset was not stored, so the message will be processed again.
    #[error("delivery to {topic} failed: {source}")]
    Delivery {
        /// The output topic.
        topic: String,
        /// Why.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Consuming failed in a way that cannot be retried.
    #[error("consume: {0}")]
    Consume(#[source] rdkafka::error::KafkaError),
    /// Committing offsets at shutdown failed.
    #[error("commit: {0}")]
    Commit(#[source] rdkafka::error::KafkaError),
    /// A pipeline thread could not start or stopped unexpectedly.
    #[error("pipeline thread: {0}")]
    Thread(String),
    /// Creating topics failed.
    #[error("create topic {topic}: {message}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Why.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;
