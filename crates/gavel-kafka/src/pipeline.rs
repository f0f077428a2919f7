//! The consume → route to shard → process → produce → store-offset loop.
//!
//! One consumer thread polls the group consumer and routes each message to
//! the shard that owns its partition (a fixed function of topic and
//! partition, so per-partition order holds). Shards are threads fed by
//! bounded queues; when a shard's queue is full, the consumer pauses that
//! partition and holds its messages until there is room, so memory stays
//! bounded while other partitions keep flowing (see `context.rs`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gavel_model::Encoding;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::context::GroupContext;
use crate::shard::{self, ShardEnv};
use crate::{KafkaError, KafkaSettings, Result, WarmSink, WarmupReport};

/// One consumed message, as the processor sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// The message key, if any.
    pub key: Option<&'a [u8]>,
    /// The message value (empty for a tombstone).
    pub payload: &'a [u8],
    /// The Kafka timestamp in milliseconds, if the broker gave one.
    pub timestamp_ms: Option<i64>,
    /// The topic's configured encoding.
    pub encoding: Encoding,
}

impl<'a> Input<'a> {
    /// The input view of a consumed message from a topic with `encoding`.
    pub fn of(message: &'a BorrowedMessage<'_>, encoding: Encoding) -> Input<'a> {
        Input {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            payload: message.payload().unwrap_or_default(),
            timestamp_ms: message.timestamp().to_millis(),
            encoding,
        }
    }
}

/// Which output topic a record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputTopic {
    /// `risk.signals`.
    Signals,
    /// `risk.actions`.
    Actions,
    /// `risk.verdicts`.
    Verdicts,
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Destination.
    pub topic: OutputTopic,
    /// Partitioning key (usually the entity id, so one entity's outputs stay in order).
    pub key: Vec<u8>,
    /// Encoded protobuf message.
    pub payload: Vec<u8>,
}

/// What the processor made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Records to produce (possibly none).
    Outputs(Vec<Output>),
    /// The message cannot be processed; send it to the dead-letter topic with this reason.
    DeadLetter(String),
}

/// Turns input messages into output records. Called once per message, in
/// partition order.
pub trait Processor: Send {
    /// Processes one message.
    fn process(&mut self, input: &Input<'_>) -> Processed;

    /// The event time (ms since the epoch) of the message just processed,
    /// if the processor knows it: reported with its acknowledgement for
    /// end-to-end latency.
    fn event_time_ms(&self) -> Option<i64> {
        None
    }
}

/// Hooks for telemetry, called from the consumer and shard threads. Every
/// method has a no-op default.
pub trait PipelineObserver: Send + Sync {
    /// A message was processed and its outputs enqueued, `latency` after it
    /// was received.
    fn processed(&self, _topic: &str, _latency: Duration, _outputs: usize) {}
    /// A message was sent to the dead-letter topic.
    fn dead_lettered(&self, _topic: &str) {}
    /// Every output of a message was acknowledged and its offset stored.
    /// `kafka_timestamp_ms` is the input message's Kafka timestamp and
    /// `event_time_ms` the event's own time, where known, for end-to-end
    /// latency.
    fn acknowledged(&self, _kafka_timestamp_ms: Option<i64>, _event_time_ms: Option<i64>) {}
    /// Consumer lag of an owned partition, in messages, from librdkafka's
    /// statistics; `None` when the partition is no longer owned.
    fn partition_lag(&self, _topic: &str, _partition: i32, _lag: Option<i64>) {}
    /// An output could not be enqueued or delivered and is being sent again.
    fn delivery_retried(&self, _topic: &str) {}
    /// The client reported an error (broker down, connection lost); librdkafka retries.
    fn client_error(&self) {}
    /// Polling the consumer returned an error.
    fn consumer_error(&self) {}
    /// An offset commit failed.
    fn commit_failed(&self) {}
    /// This many partitions are now paused because their shard is full.
    fn paused(&self, _partitions: usize) {}
    /// A rebalance `kind` ("assign" or "revoke") of this many partitions finished.
    fn rebalanced(&self, _kind: &'static str, _partitions: usize) {}
    /// Assigned partitions were warmed up.
    fn warmed(&self, _report: &WarmupReport) {}
}

impl PipelineObserver for () {}

/// The headers a dead-letter record carries: where the message came from
/// and why it could not be processed. The reason never contains payload text.
pub fn dlq_headers(input: &Input<'_>, reason: &str) -> OwnedHeaders {
    let partition = input.partition.to_string();
    let offset = input.offset.to_string();
    OwnedHeaders::new()
        .insert(Header { key: "gavel.source.topic", value: Some(input.topic) })
        .insert(Header { key: "gavel.source.partition", value: Some(&partition) })
        .insert(Header { key: "gavel.source.offset", value: Some(&offset) })
        .insert(Header { key: "gavel.source.encoding", value: Some(input.encoding.as_str()) })
        .insert(Header { key: "gavel.error", value: Some(reason) })
}

/// What the pipeline tells its owner and asks of it, besides processing.
pub struct Hooks {
    /// Telemetry.
    pub observer: Arc<dyn PipelineObserver>,
    /// Rebuilds state from the log on every partition assignment, if given.
    pub warm: Option<Box<dyn WarmSink>>,
    /// Set once partitions are assigned and warmed up; cleared while a
    /// rebalance is in progress and after shutdown.
    pub ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("warm", &self.warm.is_some()).finish_non_exhaustive()
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks { observer: Arc::new(()), warm: None, ready: Arc::default() }
    }
}

/// A consumer-group pipeline, sharded across threads.
pub struct Pipeline {
    settings: Arc<KafkaSettings>,
    producer: FutureProducer,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("group_id", &self.settings.group_id).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Checks the settings and creates the producer.
    pub fn new(settings: KafkaSettings) -> Result<Self> {
        let producer: FutureProducer = settings.producer_config().create().map_err(KafkaError::Client)?;
        Ok(Pipeline { settings: Arc::new(settings), producer })
    }

    /// Joins the group and runs one shard per processor until `shutdown`
    /// resolves or the group cannot go on. Shutting down stops fetching,
    /// drains every shard, commits, flushes the producer and leaves the
    /// group, within the settings' `shutdown_timeout`.
    pub async fn run(
        self,
        processors: Vec<Box<dyn Processor>>,
        hooks: Hooks,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let thread_stop = Arc::clone(&stop);
        let timeout = self.settings.shutdown_timeout;
        std::thread::Builder::new()
            .name("gavel-consumer".into())
            .spawn(move || {
                let _ = done_tx.send(self.consume(processors, hooks, &thread_stop));
            })
            .map_err(|e| KafkaError::Thread(e.to_string()))?;
        let mut done_rx = done_rx;
        tokio::select! {
            () = shutdown => {}
            result = &mut done_rx => return result.unwrap_or_else(|_| Err(KafkaError::Thread("consumer thread died".into()))),
        }
        stop.store(true, Ordering::Relaxed);
        // The consumer thread bounds each step by `timeout`; this is the
        // backstop if the client itself hangs (a broker that never answers).
        match tokio::time::timeout(timeout + Duration::from_secs(5), done_rx).await {
            Ok(result) => result.unwrap_or_else(|_| Err(KafkaError::Thread("consumer thread died".into()))),
            Err(_) => {
                warn!("shutdown did not finish in time; exiting without the last commit");
                Ok(())
            }
        }
    }

    /// The consumer thread: subscribe, start shards, route until stopped, shut down.
    fn consume(self, processors: Vec<Box<dyn Processor>>, hooks: Hooks, stop: &AtomicBool) -> Result<()> {
        let Hooks { observer, warm, ready } = hooks;
        let context = GroupContext::new(Arc::clone(&self.settings), Arc::clone(&observer), warm, Arc::clone(&ready));
        let consumer: BaseConsumer<GroupContext> =
            self.settings.group_consumer_config().create_with_context(context).map_err(KafkaError::Client)?;
        let consumer = Arc::new(consumer);
        let env = Arc::new(ShardEnv {
            settings: Arc::clone(&self.settings),
            consumer: Arc::clone(&consumer),
            producer: self.producer.clone(),
            observer,
        });
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for (index, processor) in processors.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(self.settings.shard_queue.max(1));
            senders.push(tx);
            threads.push(
                shard::spawn(index, Arc::clone(&env), processor, rx).map_err(|e| KafkaError::Thread(e.to_string()))?,
            );
        }
        drop(env);
        let shards = senders.len();
        consumer.context().set_shards(senders);
        let topics: Vec<&str> = self.settings.inputs.iter().map(|t| t.name.as_str()).collect();
        consumer.subscribe(&topics).map_err(|source| KafkaError::Subscribe {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            source,
        })?;
        info!(group = %self.settings.group_id, shards, "consuming");
        let result = route(&consumer, stop);
        let started = Instant::now();
        ready.store(false, Ordering::Relaxed);
        let context = consumer.context();
        let drained = context.drain(self.settings.shutdown_timeout);
        if !drained {
            warn!("shards did not drain in time; their unacknowledged messages will be processed again");
        }
        context.commit(&consumer);
        context.close_shards();
        let deadline = started + self.settings.shutdown_timeout;
        for thread in threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Err(e) = self.producer.flush(deadline.saturating_duration_since(Instant::now())) {
            warn!(error = %e, "producer flush at shutdown");
        }
        // Dropping the consumer leaves the group (a static member keeps its
        // partitions until its session times out, so a restart gets them back).
        drop(consumer);
        info!(group = %self.settings.group_id, elapsed_ms = started.elapsed().as_millis() as u64, "pipeline stopped");
        result
    }
}

/// Polls and routes until `stop` is set or the group cannot go on.
fn route(consumer: &BaseConsumer<GroupContext>, stop: &AtomicBool) -> Result<()> {
    let context = consumer.context();
    while !stop.load(Ordering::Relaxed) {
        context.release(consumer);
        // While a partition is held, come back soon to hand its messages over.
        let wait = if context.holding() { Duration::from_millis(1) } else { Duration::from_millis(100) };
        match consumer.poll(wait) {
            None => {}
            Some(Ok(message)) if !context.route(consumer, &message) => {
                return Err(KafkaError::Thread("a shard stopped".into()));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                context.observe_consumer_error();
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    error!(error = %code, reason, "fatal consumer error");
                    return Err(KafkaError::Consume(rdkafka::error::KafkaError::MessageConsumption(code)));
                }
                warn!(error = %e, "consumer error; librdkafka retries");
            }
        }
        if let Some(fatal) = context.take_fatal() {
            return Err(fatal);
        }
    }
    Ok(())
}
