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

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::context::{FollowerContext, GroupContext, OutputProducer, ProducerContext};
use crate::contract::{Hooks, Processor};
use crate::error::{KafkaError, Result};
use crate::health;
use crate::settings::KafkaSettings;
use crate::shard::{self, Following, ShardEnv};
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
            observer: Arc::clone(&observer),
            ends: consumer.context().ends(),
            fatal: consumer.context().fatal_slot(),
            caught_up: consumer.context().caught_up_flag(),
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
        let subscribe = || {
            consumer.subscribe(&topics).map_err(|source| KafkaError::Subscribe {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                source,
            })
        };
        if !self.settings.replicated() {
            subscribe()?;
        }
        let monitor_stop = Arc::new(AtomicBool::new(false));
        let monitor =
            monitor_health(Arc::clone(&self.settings), Arc::clone(consumer.context()), Arc::clone(&monitor_stop))?;
        // A replicated member that stops before it joined has nothing to commit.
        let mut joined = !self.settings.replicated();
        let result = if self.settings.replicated() {
            match follow_every_partition(&self.settings, consumer.context(), observer, &monitor_stop) {
                Ok((follower, poller)) => {
                    let context = consumer.context();
                    // Join once state is where the group is, so that this
                    // member takes partitions over warm (`follow.rs`).
                    let started = Instant::now();
                    let caught_up = context.caught_up_flag();
                    let mut result = route(&follower, context, None, stop, || caught_up.load(Ordering::Relaxed));
                    if result.is_ok() && !stop.load(Ordering::Relaxed) {
                        info!(
                            group = %self.settings.group_id,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "state caught up with the group's commits on every input partition: joining (replicated)"
                        );
                        joined = true;
                        result = subscribe().and_then(|()| route(&follower, context, Some(&consumer), stop, || false));
                    }
                    monitor_stop.store(true, Ordering::Relaxed);
                    let _ = poller.join();
                    result
                }
                Err(e) => Err(e),
            }
        } else {
            info!(group = %self.settings.group_id, shards, "consuming");
            route(&consumer, consumer.context(), None, stop, || false)
        };
        monitor_stop.store(true, Ordering::Relaxed);
        let _ = monitor.join();
        let started = Instant::now();
        ready.store(false, Ordering::Relaxed);
        let context = consumer.context();
        let drained = context.drain(self.settings.shutdown_timeout);
        if !drained {
            warn!("shards did not drain in time; their unacknowledged messages will be processed again");
        }
        if joined {
            context.commit(&consumer);
        }
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

/// Polls `consumer` and routes its messages until `stop` is set, `until`
/// holds, or the group cannot go on. Under replicated state `consumer` is
/// the follower and `group` the group consumer, polled for its callbacks
/// only (its partitions are paused: it hands nothing over).
fn route<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    context: &GroupContext,
    group: Option<&BaseConsumer<GroupContext>>,
    stop: &AtomicBool,
    until: impl Fn() -> bool,
) -> Result<()> {
    // With a group to serve as well, come back often enough for its rebalances.
    let idle = if group.is_some() { Duration::from_millis(20) } else { Duration::from_millis(100) };
    while !stop.load(Ordering::Relaxed) && !until() {
        context.release(consumer);
        // While a partition is held, come back soon to hand its messages over.
        let wait = if context.holding() { Duration::from_millis(1) } else { idle };
        match consumer.poll(wait) {
            None => {}
            Some(Ok(message)) if !context.route(consumer, &message) => {
                return Err(KafkaError::ShardStopped);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => polled_error(context, consumer.client(), &e)?,
        }
        if let Some(group) = group {
            // A message fetched before the pause took hold is dropped: the
            // follower reads it.
            if let Some(Err(e)) = group.poll(Duration::ZERO) {
                polled_error(context, group.client(), &e)?;
            }
        }
        if let Some(fatal) = context.take_fatal() {
            return Err(fatal);
        }
    }
    Ok(())
}

/// Counts an error a poll returned; a fatal one stops the group.
fn polled_error<C: rdkafka::ClientContext>(
    context: &GroupContext,
    client: &rdkafka::client::Client<C>,
    error: &rdkafka::error::KafkaError,
) -> Result<()> {
    context.observe_consumer_error();
    if let Some((code, reason)) = client.fatal_error() {
        error!(error = %code, reason, "fatal consumer error");
        return Err(KafkaError::consume(code));
    }
    warn!(error = %error, "consumer error; librdkafka retries");
    Ok(())
}

/// How often a replicated member reads the group's committed offsets, so
/// that the outputs it holds for other members' partitions can go.
const COMMITTED_EVERY: Duration = Duration::from_millis(500);

/// How often a replicated member looks for input partitions added since
/// it started, to read them too.
const NEW_PARTITIONS_EVERY: Duration = Duration::from_secs(10);

/// Under replicated state: plans every input partition (`warmup.rs`:
/// from the start of the longest window, published from the group's
/// committed offsets), tells the shards, and starts the follower that
/// reads them all and the thread that, until `stop`, reads the group's
/// commits and adds input partitions created later.
fn follow_every_partition(
    settings: &Arc<KafkaSettings>,
    context: &Arc<GroupContext>,
    observer: Arc<dyn crate::contract::PipelineObserver>,
    stop: &Arc<AtomicBool>,
) -> Result<(Arc<BaseConsumer<FollowerContext>>, std::thread::JoinHandle<()>)> {
    let follower: BaseConsumer<FollowerContext> = settings.follower_config().create_with_context(FollowerContext {
        settings: Arc::clone(settings),
        observer,
        ends: context.ends(),
    })?;
    let follower = Arc::new(follower);
    let mut lanes = Vec::new();
    let partitions = crate::warmup::all_partitions(settings)?;
    follow_more(settings, context, &follower, &mut lanes, &partitions)?;
    let reader: BaseConsumer = settings.consumer_config().create()?;
    let (settings, context, stop, reading) =
        (Arc::clone(settings), Arc::clone(context), Arc::clone(stop), Arc::clone(&follower));
    let poller = std::thread::Builder::new().name("gavel-follow".into()).spawn(move || {
        let mut looked = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(COMMITTED_EVERY);
            if looked.elapsed() >= NEW_PARTITIONS_EVERY {
                looked = Instant::now();
                let added = crate::warmup::all_partitions(&settings).and_then(|all| {
                    let new: Vec<(String, i32)> = all
                        .into_iter()
                        .filter(|(topic, partition)| {
                            !lanes.iter().any(|((t, p), _)| settings.inputs[*t].name == *topic && p == partition)
                        })
                        .collect();
                    follow_more(&settings, &context, &reading, &mut lanes, &new)
                });
                if let Err(e) = added {
                    warn!(error = %e, "new input partitions not looked for; trying again");
                }
            }
            let mut all = TopicPartitionList::new();
            for ((topic, partition), _) in &lanes {
                all.add_partition(&settings.inputs[*topic].name, *partition);
            }
            match reader.committed_offsets(all, COMMITTED_EVERY * 4) {
                Ok(committed) => {
                    let known: Vec<_> = lanes
                        .iter()
                        .filter_map(|&(lane, _)| {
                            let element = committed.find_partition(&settings.inputs[lane.0].name, lane.1)?;
                            match element.offset() {
                                Offset::Offset(offset) => Some((lane, offset)),
                                _ => None,
                            }
                        })
                        .collect();
                    context.tell_shards(known, Following::Committed);
                }
                Err(e) => tracing::debug!(error = %e, "committed offsets not read; held outputs wait"),
            }
            // Caught up or not, as the shard last said.
            context.publish_ready();
        }
    })?;
    Ok((follower, poller))
}

/// Adds `partitions` to what the follower reads and the shards merge
/// (`lanes`, each with its first offset), as `warmup::follow_plan` plans
/// them.
fn follow_more(
    settings: &KafkaSettings,
    context: &GroupContext,
    follower: &BaseConsumer<FollowerContext>,
    lanes: &mut Vec<(crate::order::Lane, i64)>,
    partitions: &[(String, i32)],
) -> Result<()> {
    if partitions.is_empty() {
        return Ok(());
    }
    let plan = crate::warmup::follow_plan(settings, partitions, context.since_ms())?;
    let mut tpl = TopicPartitionList::new();
    let (mut started, mut published) = (Vec::with_capacity(plan.len()), Vec::with_capacity(plan.len()));
    for followed in &plan {
        tpl.add_partition_offset(&followed.topic, followed.partition, Offset::Offset(followed.start))?;
        if let Some((topic, _)) = settings.encoding_of(&followed.topic) {
            started.push(((topic, followed.partition), followed.start));
            published.push(((topic, followed.partition), followed.publish));
        }
    }
    let first = lanes.is_empty();
    lanes.extend(started.iter().copied());
    context.set_lanes(lanes);
    context.tell_shards(started, Following::Start);
    context.tell_shards(published, Following::Committed);
    follower.incremental_assign(&tpl)?;
    let messages: u64 = plan.iter().map(|f| (f.publish - f.start).max(0) as u64).sum();
    if first {
        info!(
            partitions = plan.len(),
            messages, "reading every input partition: these are state only, published already"
        );
    } else {
        info!(partitions = plan.len(), messages, "new input partitions: reading them into state too");
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
