//! The consume → route to shard → process → produce → store-offset loop.
//!
//! One consumer thread polls the group consumer and routes each message to
//! the shard that owns its partition (a fixed function of topic and
//! partition, so per-partition order holds). Shards are threads fed by
//! bounded queues; when a shard's queue is full, the consumer pauses that
//! partition and holds its messages until there is room, so memory stays
//! bounded while other partitions keep flowing (see `context.rs`).
//!
//! This module starts and stops the threads and runs the poll loop; the
//! rebalance protocol lives in `context.rs`, the per-message work in
//! `shard.rs`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::context::{GroupContext, OutputProducer, ProducerContext};
use crate::contract::{Hooks, Processor};
use crate::error::{KafkaError, Result};
use crate::health;
use crate::settings::KafkaSettings;
use crate::shard::{self, ShardEnv};
use crate::transactional::{self, TxnEnv};

/// A consumer-group pipeline, sharded across threads.
pub struct Pipeline {
    /// What to consume and produce, and how.
    settings: Arc<KafkaSettings>,
    /// The idempotent producer every shard shares (at-least-once mode;
    /// exactly-once shards each create their own transactional one).
    producer: OutputProducer,
    /// The producer's context, to hand it the observer at run time.
    producer_context: ProducerContext,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("group_id", &self.settings.group_id).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Checks the settings and creates the producer.
    pub fn new(settings: KafkaSettings) -> Result<Self> {
        let producer_context = ProducerContext::default();
        let producer: OutputProducer = settings.producer_config().create_with_context(producer_context.clone())?;
        Ok(Pipeline { settings: Arc::new(settings), producer, producer_context })
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
        std::thread::Builder::new().name("gavel-consumer".into()).spawn(move || {
            let _ = done_tx.send(self.consume(processors, hooks, &thread_stop));
        })?;
        let mut done_rx = done_rx;
        tokio::select! {
            () = shutdown => {}
            result = &mut done_rx => return result.unwrap_or(Err(KafkaError::ConsumerDied)),
        }
        stop.store(true, Ordering::Relaxed);
        // The consumer thread bounds each step by `timeout`; this is the
        // backstop if the client itself hangs (a broker that never answers).
        match tokio::time::timeout(timeout + Duration::from_secs(5), done_rx).await {
            Ok(result) => result.unwrap_or(Err(KafkaError::ConsumerDied)),
            Err(_) => {
                warn!("shutdown did not finish in time; exiting without the last commit");
                Ok(())
            }
        }
    }

    /// The consumer thread: subscribe, start shards, route until stopped, shut down.
    fn consume(self, processors: Vec<Box<dyn Processor>>, hooks: Hooks, stop: &AtomicBool) -> Result<()> {
        let Hooks { observer, warm, ready, beyond_the_message_key } = hooks;
        self.producer_context.observe(Arc::clone(&observer));
        let context = GroupContext::new(
            Arc::clone(&self.settings),
            Arc::clone(&observer),
            warm,
            Arc::clone(&ready),
            beyond_the_message_key,
        );
        let consumer: BaseConsumer<GroupContext> =
            self.settings.group_consumer_config().create_with_context(context)?;
        let consumer = Arc::new(consumer);
        let env = Arc::new(ShardEnv {
            settings: Arc::clone(&self.settings),
            offsets: Arc::clone(&consumer) as Arc<dyn shard::OffsetStore>,
            producer: self.producer.clone(),
            observer,
            ends: consumer.context().ends(),
        });
        let txn = self.settings.exactly_once.then(|| {
            Arc::new(TxnEnv {
                shard: Arc::clone(&env),
                group: Arc::clone(&consumer) as Arc<dyn transactional::GroupMetadata>,
                process: transactional::process_token(),
            })
        });
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for (index, processor) in processors.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(self.settings.shard_queue.max(1));
            senders.push(tx);
            threads.push(match &txn {
                Some(txn) => transactional::spawn(index, Arc::clone(txn), processor, rx)?,
                None => shard::spawn(index, Arc::clone(&env), processor, rx)?,
            });
        }
        drop((env, txn));
        let shards = senders.len();
        consumer.context().set_shards(senders);
        let topics: Vec<&str> = self.settings.inputs.iter().map(|t| t.name.as_str()).collect();
        consumer.subscribe(&topics).map_err(|source| KafkaError::Subscribe {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            source,
        })?;
        info!(group = %self.settings.group_id, shards, "consuming");
        let monitor_stop = Arc::new(AtomicBool::new(false));
        let monitor =
            monitor_health(Arc::clone(&self.settings), Arc::clone(consumer.context()), Arc::clone(&monitor_stop))?;
        let result = route(&consumer, stop);
        monitor_stop.store(true, Ordering::Relaxed);
        let _ = monitor.join();
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
                return Err(KafkaError::ShardStopped);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                context.observe_consumer_error();
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    error!(error = %code, reason, "fatal consumer error");
                    return Err(KafkaError::consume(code));
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

/// Probes the group's lag every [`health::PROBE_INTERVAL`] on a thread of
/// its own (`health.rs`): reports the lag of the partitions this member
/// does not own and feeds the health verdict into readiness, until `stop`.
fn monitor_health(
    settings: Arc<KafkaSettings>,
    context: Arc<GroupContext>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer = settings.consumer_config().create()?;
    let thread = std::thread::Builder::new().name("gavel-health".into()).spawn(move || {
        let mut judge = health::Judge::default();
        // The first probe at once: readiness waits for its partition count
        // where the pack keeps state beyond the message key.
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            if Instant::now() < next {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            next = Instant::now() + health::PROBE_INTERVAL;
            let owned = context.owned();
            let probe = health::probe(&consumer, &settings, health::PROBE_INTERVAL / 2);
            if let Ok(probe) = &probe {
                context.report_lags(probe, &owned);
                context.set_partitions(probe);
            }
            context.set_healthy(judge.observe(probe.as_ref().ok(), owned.len()));
        }
    })?;
    Ok(thread)
}
