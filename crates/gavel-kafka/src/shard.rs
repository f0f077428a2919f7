//! A shard worker: owns some input partitions, processes their messages in
//! order, produces the outputs and stores each input offset once every
//! output of that message, and of every message before it, is acknowledged.
//!
//! Each shard is an OS thread with its own single-threaded tokio runtime, so
//! a busy shard never starves another, and the consumer thread can block on
//! a shard (to drain it before a rebalance) without stalling a runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{BorrowedMessage, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc;
use tracing::warn;

use crate::KafkaSettings;
use crate::context::GroupContext;
use crate::pipeline::{Input, OutputTopic, PipelineObserver, Processed, Processor, dlq_headers};

/// Index of each output topic in [`crate::OutputTopics::all`].
const DLQ: usize = 3;

/// A consumed message, detached from the consumer so it can cross threads.
/// Key and payload share one buffer: one allocation per message.
#[derive(Debug)]
pub(crate) struct Consumed {
    pub topic: usize,
    pub partition: i32,
    pub offset: i64,
    timestamp_ms: Option<i64>,
    key_len: Option<usize>,
    data: Vec<u8>,
    received: Instant,
}

impl Consumed {
    /// Copies what a shard needs out of `message` from input topic `topic`.
    pub fn of(message: &BorrowedMessage<'_>, topic: usize) -> Consumed {
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
        }
    }

    fn input<'a>(&'a self, settings: &'a KafkaSettings) -> Input<'a> {
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

/// What a shard is asked to do.
#[derive(Debug)]
pub(crate) enum Work {
    /// Process a message.
    Message(Consumed),
    /// Finish everything sent before this, wait for every acknowledgement
    /// and store the offsets, then answer with what the shard has fed into
    /// state so far.
    Drain(std::sync::mpsc::Sender<Drained>),
}

/// A shard's answer to [`Work::Drain`].
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// `(input topic, partition, last offset processed)` for every partition
    /// this shard has processed.
    pub fed: Vec<(usize, i32, i64)>,
}

/// One record to produce, kept until acknowledged so that it can be sent again.
struct Record {
    output: usize,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
}

/// A message whose outputs are on their way.
struct InFlight {
    acked: Acked,
    deliveries: Vec<(Record, DeliveryFuture)>,
}

/// A message all of whose outputs are safe.
#[derive(Debug, Clone, Copy)]
struct Acked {
    topic: usize,
    partition: i32,
    offset: i64,
    kafka_timestamp_ms: Option<i64>,
    event_time_ms: Option<i64>,
}

/// What every shard shares.
pub(crate) struct ShardEnv {
    pub settings: Arc<KafkaSettings>,
    pub consumer: Arc<BaseConsumer<GroupContext>>,
    pub producer: FutureProducer,
    pub observer: Arc<dyn PipelineObserver>,
}

/// Starts shard `index` on its own thread.
pub(crate) fn spawn(
    index: usize,
    env: Arc<ShardEnv>,
    processor: Box<dyn Processor>,
    work: mpsc::Receiver<Work>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("gavel-shard-{index}")).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(shard = index, error = %e, "shard runtime could not start");
                return;
            }
        };
        runtime.block_on(run(&env, processor, work));
    })
}

async fn run(env: &ShardEnv, mut processor: Box<dyn Processor>, mut work: mpsc::Receiver<Work>) {
    let mut in_flight = FuturesOrdered::new();
    let mut fed: Vec<(usize, i32, i64)> = Vec::new();
    let max_in_flight = env.settings.max_in_flight.max(1);
    loop {
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => acknowledge(env, done),
            next = work.recv(), if in_flight.len() < max_in_flight => match next {
                None => break,
                Some(Work::Message(message)) => {
                    note_fed(&mut fed, &message);
                    let pending = handle(env, &message, &mut *processor).await;
                    in_flight.push_back(settle(env, pending));
                }
                Some(Work::Drain(reply)) => {
                    while let Some(done) = in_flight.next().await {
                        acknowledge(env, done);
                    }
                    // The consumer thread may have given up waiting; nothing to do then.
                    let _ = reply.send(Drained { fed: fed.clone() });
                }
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        acknowledge(env, done);
    }
}

fn note_fed(fed: &mut Vec<(usize, i32, i64)>, message: &Consumed) {
    // A shard owns a handful of partitions: a scan beats hashing.
    match fed.iter_mut().find(|(t, p, _)| *t == message.topic && *p == message.partition) {
        Some(entry) => entry.2 = message.offset,
        None => fed.push((message.topic, message.partition, message.offset)),
    }
}

async fn handle(env: &ShardEnv, message: &Consumed, processor: &mut dyn Processor) -> InFlight {
    let input = message.input(&env.settings);
    let mut deliveries = Vec::new();
    match processor.process(&input) {
        Processed::Outputs(outputs) => {
            let count = outputs.len();
            for output in outputs {
                let index = match output.topic {
                    OutputTopic::Signals => 0,
                    OutputTopic::Actions => 1,
                    OutputTopic::Verdicts => 2,
                };
                let record = Record { output: index, key: Some(output.key), payload: output.payload, headers: None };
                let delivery = enqueue(env, &record).await;
                deliveries.push((record, delivery));
            }
            env.observer.processed(input.topic, message.received.elapsed(), count);
        }
        Processed::DeadLetter(reason) => {
            // Per message at debug: a burst of bad input must not flood the
            // logs. The count is in `gavel_events_dead_lettered_total` and the
            // periodic stats line; the reason is in the record's headers.
            tracing::debug!(
                topic = input.topic,
                partition = input.partition,
                offset = input.offset,
                error = %reason,
                "event sent to dead-letter topic"
            );
            let record = Record {
                output: DLQ,
                key: input.key.map(<[u8]>::to_vec),
                payload: input.payload.to_vec(),
                headers: Some(dlq_headers(&input, &reason)),
            };
            let delivery = enqueue(env, &record).await;
            deliveries.push((record, delivery));
            env.observer.dead_lettered(input.topic);
            env.observer.processed(input.topic, message.received.elapsed(), 0);
        }
    }
    let acked = Acked {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        kafka_timestamp_ms: message.timestamp_ms,
        event_time_ms: processor.event_time_ms(),
    };
    InFlight { acked, deliveries }
}

/// Enqueues a record on the producer, waiting while its queue is full and
/// retrying anything else: an output is never dropped.
async fn enqueue(env: &ShardEnv, record: &Record) -> DeliveryFuture {
    let topic = env.settings.outputs.all()[record.output];
    let mut backoff = Backoff::default();
    loop {
        let mut future = FutureRecord::to(topic).payload(record.payload.as_slice());
        if let Some(key) = &record.key {
            future = future.key(key.as_slice());
        }
        if let Some(headers) = &record.headers {
            future = future.headers(headers.clone());
        }
        match env.producer.send_result(future) {
            Ok(delivery) => return delivery,
            Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((error, _)) => {
                warn!(topic, error = %error, "output not enqueued; retrying");
                env.observer.delivery_retried(topic);
                backoff.wait().await;
            }
        }
    }
}

/// Waits until every output of a message is acknowledged, sending again any
/// the producer gave up on (after its own retries, e.g. through a long broker
/// outage). Messages settle in consumption order, so a later offset is never
/// stored before an earlier message's outputs are safe.
async fn settle(env: &ShardEnv, pending: InFlight) -> Acked {
    for (record, mut delivery) in pending.deliveries {
        let mut backoff = Backoff::default();
        loop {
            let error = match delivery.await {
                Ok(Ok(_)) => break,
                Ok(Err((error, _))) => error,
                Err(_canceled) => RdError::Canceled,
            };
            let topic = env.settings.outputs.all()[record.output];
            warn!(topic, error = %error, "delivery failed; sending again");
            env.observer.delivery_retried(topic);
            backoff.wait().await;
            delivery = enqueue(env, &record).await;
        }
    }
    pending.acked
}

fn acknowledge(env: &ShardEnv, done: Acked) {
    let name = &env.settings.inputs[done.topic].name;
    if let Err(e) = env.consumer.store_offset(name, done.partition, done.offset) {
        // The partition was revoked meanwhile; its new owner reprocesses.
        warn!(topic = %name, partition = done.partition, offset = done.offset, error = %e, "offset not stored");
    }
    env.observer.acknowledged(done.kafka_timestamp_ms, done.event_time_ms);
}

/// Exponential backoff from 50 ms to 5 s.
#[derive(Debug, Default)]
struct Backoff {
    attempts: u32,
}

impl Backoff {
    async fn wait(&mut self) {
        let delay = Duration::from_millis(50u64.saturating_mul(1 << self.attempts.min(7)).min(5_000));
        self.attempts += 1;
        tokio::time::sleep(delay).await;
    }
}
