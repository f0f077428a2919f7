//! The consume → process → produce → store-offset loop.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use gavel_model::Encoding;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tracing::{info, warn};

use crate::{KafkaError, KafkaSettings, Result};

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
}

/// Hooks for telemetry. Every method has a no-op default.
pub trait PipelineObserver: Send + Sync {
    /// A message was processed and its outputs enqueued, `latency` after it
    /// was received.
    fn processed(&self, _topic: &str, _latency: Duration, _outputs: usize) {}
    /// A message was sent to the dead-letter topic.
    fn dead_lettered(&self, _topic: &str) {}
    /// Every output of a message was acknowledged and its offset stored.
    fn acknowledged(&self) {}
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

/// A message whose outputs are on their way.
struct InFlight {
    input_topic: usize,
    partition: i32,
    offset: i64,
    deliveries: Vec<(usize, DeliveryFuture)>,
}

/// A running consume → process → produce loop.
pub struct Pipeline {
    settings: KafkaSettings,
    consumer: StreamConsumer,
    producer: FutureProducer,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("group_id", &self.settings.group_id).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Creates the clients and subscribes to the input topics.
    pub fn new(settings: KafkaSettings) -> Result<Self> {
        let consumer: StreamConsumer = settings.consumer_config().create().map_err(KafkaError::Client)?;
        let producer: FutureProducer = settings.producer_config().create().map_err(KafkaError::Client)?;
        let topics: Vec<&str> = settings.inputs.iter().map(|t| t.name.as_str()).collect();
        consumer.subscribe(&topics).map_err(|source| KafkaError::Subscribe {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            source,
        })?;
        Ok(Pipeline { settings, consumer, producer })
    }

    /// Runs until `shutdown` resolves, then drains in-flight outputs, stores
    /// their offsets and commits. Returns an error, without storing the
    /// offset, if an output cannot be delivered.
    pub async fn run(
        self,
        processor: &mut dyn Processor,
        observer: &dyn PipelineObserver,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let mut shutdown = pin!(shutdown);
        let mut in_flight = FuturesOrdered::new();
        let max_in_flight = self.settings.max_in_flight.max(1);
        let result = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Err(e) = self.acknowledge(done, observer) {
                        break Err(e);
                    }
                }
                received = self.consumer.recv(), if in_flight.len() < max_in_flight => {
                    match received {
                        Ok(message) => match self.handle(&message, processor, observer).await {
                            Ok(pending) => in_flight.push_back(settle(pending)),
                            Err(e) => break Err(e),
                        },
                        Err(e) => warn!(error = %e, "consumer error; librdkafka retries"),
                    }
                }
            }
        };
        // Drain: whatever was enqueued is either acknowledged (and its offset
        // stored) or left for the next run to reprocess.
        while let Some(done) = in_flight.next().await {
            if let Err(e) = self.acknowledge(done, observer) {
                warn!(error = %e, "delivery failed while draining; the message will be reprocessed");
                break;
            }
        }
        if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
            warn!(error = %e, "producer flush at shutdown");
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(RdError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                warn!(error = %e, "final commit failed; uncommitted messages will be reprocessed")
            }
        }
        info!(group = %self.settings.group_id, "pipeline stopped");
        result
    }

    async fn handle(
        &self,
        message: &BorrowedMessage<'_>,
        processor: &mut dyn Processor,
        observer: &dyn PipelineObserver,
    ) -> Result<InFlight> {
        let started = Instant::now();
        let topic = message.topic();
        let Some((input_topic, encoding)) = self.settings.encoding_of(topic) else {
            // Only subscribed topics are delivered; a stranger is a bug upstream.
            return Err(KafkaError::Consume(RdError::Subscription(format!("message from unexpected topic {topic}"))));
        };
        let input = Input::of(message, encoding);
        let mut deliveries = Vec::new();
        match processor.process(&input) {
            Processed::Outputs(outputs) => {
                let count = outputs.len();
                for output in outputs {
                    let (index, name) = match output.topic {
                        crate::OutputTopic::Signals => (0, &self.settings.outputs.signals),
                        crate::OutputTopic::Actions => (1, &self.settings.outputs.actions),
                        crate::OutputTopic::Verdicts => (2, &self.settings.outputs.verdicts),
                    };
                    let record = FutureRecord::to(name).key(output.key.as_slice()).payload(output.payload.as_slice());
                    deliveries.push((index, self.enqueue(record).await?));
                }
                observer.processed(topic, started.elapsed(), count);
            }
            Processed::DeadLetter(reason) => {
                warn!(topic, partition = input.partition, offset = input.offset, error = %reason, "event sent to dead-letter topic");
                let headers = dlq_headers(&input, &reason);
                let mut record = FutureRecord::to(&self.settings.outputs.dlq).payload(input.payload).headers(headers);
                if let Some(key) = input.key {
                    record = record.key(key);
                }
                deliveries.push((3, self.enqueue(record).await?));
                observer.dead_lettered(topic);
                observer.processed(topic, started.elapsed(), 0);
            }
        }
        Ok(InFlight { input_topic, partition: input.partition, offset: input.offset, deliveries })
    }

    /// Enqueues a record, waiting while the producer's queue is full.
    async fn enqueue<'a>(&self, mut record: FutureRecord<'a, [u8], [u8]>) -> Result<DeliveryFuture> {
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((source, back)) => {
                    return Err(KafkaError::Delivery { topic: back.topic.to_string(), source });
                }
            }
        }
    }

    fn acknowledge(&self, done: Settled, observer: &dyn PipelineObserver) -> Result<()> {
        if let Some((output, source)) = done.failure {
            let topic = self.settings.outputs.all()[output].to_string();
            return Err(KafkaError::Delivery { topic, source });
        }
        let topic = &self.settings.inputs[done.input_topic].name;
        if let Err(e) = self.consumer.store_offset(topic, done.partition, done.offset) {
            // The partition was revoked meanwhile; its new owner reprocesses.
            warn!(topic, partition = done.partition, offset = done.offset, error = %e, "offset not stored");
        }
        observer.acknowledged();
        Ok(())
    }
}

/// A message whose deliveries have all finished, one way or the other.
struct Settled {
    input_topic: usize,
    partition: i32,
    offset: i64,
    failure: Option<(usize, RdError)>,
}

async fn settle(pending: InFlight) -> Settled {
    let mut failure = None;
    for (output, delivery) in pending.deliveries {
        let outcome = match delivery.await {
            Ok(Ok(_)) => continue,
            Ok(Err((e, _))) => e,
            Err(_canceled) => RdError::Canceled,
        };
        failure.get_or_insert((output, outcome));
    }
    Settled { input_topic: pending.input_topic, partition: pending.partition, offset: pending.offset, failure }
}
