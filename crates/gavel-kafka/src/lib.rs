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
//! # Replicated state
//!
//! With [`StateScope::Replicated`], every member reads every input
//! partition into its state and publishes only for the partitions the
//! group assigns it; the guarantees above hold for what it publishes, and
//! a partition that changes hands is published from the group's committed
//! offset, first with the outputs its new owner held for it (`follow.rs`).
//!
//! # Exactly-once mode
//!
//! With [`KafkaSettings::exactly_once`], steps 2–4 change: each shard
//! produces through its own transactional producer and sends its input
//! offsets into the same transaction (`send_offsets_to_transaction`, with
//! the group consumer's metadata so that a member that lost its partitions
//! cannot commit), committing every `transaction_interval` or
//! `max_in_flight` messages and before partitions are given up. Consumers
//! read `read_committed`, so a reader of the outputs sees each message's
//! outputs exactly once, and a crash rolls back outputs and offsets
//! together (`transactional.rs`).
//!
//! This crate knows nothing of rules or features: it moves bytes and
//! offsets. Decoding and scoring happen in the [`Processor`] the binary
//! supplies.

//!
//! # Where to start reading
//!
//! `contract.rs` (re-exported here: [`Processor`], [`Input`], [`Processed`],
//! …) is what the binary implements and receives; [`Pipeline::run`] is the
//! entry point; `shard.rs` keeps the delivery guarantee above and
//! `context.rs` the rebalance protocol.
//!
//! # Module dependency order
//!
//! Each module imports only modules listed before it (no cycles):
//!
//! 1. `error`: [`KafkaError`] and [`Result`].
//! 2. `contract`: the public types and traits ([`Input`], [`Processor`],
//!    [`Processed`], [`OutputTopic`], [`OutputTopics`], [`PipelineObserver`],
//!    [`WarmSink`], [`Hooks`], …); imports no other module.
//! 3. `settings`: [`KafkaSettings`] and the client configurations (contract).
//! 4. `backoff`, `order`, `follow`, `routing`, `search`: pure logic (retry
//!    delays, the order partitions are merged in, what a replicated member
//!    does with each message, partition → shard and pause/resume, the
//!    timestamp search); only `follow` imports another (`order`).
//! 5. `admin`: topic creation (error, settings).
//! 6. `detached`: a consumed message copied out of the consumer, as the
//!    shards and warm-up's merge hold it (contract, settings).
//! 7. `warmup`: replay of history into a [`WarmSink`] (error, contract,
//!    settings, order, search, detached).
//! 8. `read`: reading a whole topic (error, contract, settings, warmup).
//! 9. `dlq`: reading the dead-letter topic back and re-publishing its
//!    records ([`DeadLetterReader`], [`Republisher`]; error, settings).
//! 10. `shard`: the shard workers (contract, settings, order, follow,
//!     detached, backoff).
//! 11. `transactional`: the exactly-once shard workers (contract, settings,
//!     backoff, detached, shard).
//! 12. `context`: the consumer's context, routing and rebalances (error,
//!     contract, settings, order, routing, detached, shard, warmup).
//! 13. `pipeline`: [`Pipeline`], the threads and the poll loop (error,
//!     contract, settings, shard, transactional, context).

mod admin;
mod backoff;
mod context;
mod contract;
mod detached;
mod dlq;
mod error;
mod follow;
mod health;
mod order;
mod pipeline;
mod read;
mod routing;
mod search;
mod settings;
mod shard;
mod transactional;
mod warmup;

pub use admin::create_topics;
pub use contract::{
    BeyondTheMessageKey, Hooks, Input, InputTopic, Output, OutputTopic, OutputTopics, Outputs, PipelineObserver,
    Processed, Processor, WarmSink, WarmupReport, dead_letter, dlq_headers,
};
pub use dlq::{DeadLetter, DeadLetterReader, FailedDelivery, PartitionRange, ReadFrom, Republisher};
pub use error::{KafkaError, Result};
pub use pipeline::Pipeline;
pub use read::read_topic;
pub use settings::{FirstStart, InputOrder, KafkaSettings, StateScope};
pub use warmup::{Replay, warm_partitions, warm_up};
