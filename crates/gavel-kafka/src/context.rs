//! The consumer's side of the group: routing messages to shards, pausing
//! partitions whose shard is full, and the rebalance protocol.
//!
//! Everything here runs on the consumer thread: messages are routed between
//! polls, and librdkafka calls the rebalance hooks from inside a poll, so the
//! locks below are never contended; they exist because the context must be
//! `Sync`.
//!
//! - **Revoke**: held messages of the revoked partitions are dropped (they
//!   were never processed and their offsets were never stored), every shard
//!   drains (finishes what it was sent, waits for acknowledgements, stores
//!   offsets), and the stored offsets are committed synchronously before the
//!   partitions are given up.
//! - **Assign**: before the new partitions go live, each is replayed in
//!   warm-up mode from the start of the pack's longest window (or from just
//!   after the last offset this process already fed into its state) up to the
//!   group's committed offset. `/readyz` is false meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError as RdError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, TopicPartitionList};
use tokio::sync::mpsc::{self, error::TrySendError};
use tracing::{error, info, warn};

use crate::pipeline::PipelineObserver;
use crate::shard::{Consumed, Drained, Work};
use crate::warmup::{Replay, WarmSink, warm_partitions};
use crate::{KafkaError, KafkaSettings};

/// Input partition, by index into the settings' inputs.
type Partition = (usize, i32);

/// Where messages go.
#[derive(Default)]
struct Router {
    /// One queue per shard; empty once shutting down.
    shards: Vec<mpsc::Sender<Work>>,
    /// Messages of paused partitions, in order, waiting for room in their shard.
    held: HashMap<Partition, VecDeque<Consumed>>,
}

/// The consumer's context: librdkafka calls it on rebalances and errors.
pub(crate) struct GroupContext {
    settings: Arc<KafkaSettings>,
    observer: Arc<dyn PipelineObserver>,
    router: Mutex<Router>,
    /// Last offset per partition whose message this process fed into state.
    fed: Mutex<HashMap<Partition, i64>>,
    warm: Option<Mutex<Box<dyn WarmSink>>>,
    ready: Arc<AtomicBool>,
    /// Set when the group cannot go on (warm-up failed for good); the
    /// consumer loop stops with it.
    fatal: Mutex<Option<KafkaError>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GroupContext {
    pub fn new(
        settings: Arc<KafkaSettings>,
        observer: Arc<dyn PipelineObserver>,
        warm: Option<Box<dyn WarmSink>>,
        ready: Arc<AtomicBool>,
    ) -> Self {
        GroupContext {
            settings,
            observer,
            router: Mutex::default(),
            fed: Mutex::default(),
            warm: warm.map(Mutex::new),
            ready,
            fatal: Mutex::default(),
        }
    }

    /// Installs the shard queues.
    pub fn set_shards(&self, shards: Vec<mpsc::Sender<Work>>) {
        lock(&self.router).shards = shards;
    }

    /// Closes the shard queues: each shard finishes and exits.
    pub fn close_shards(&self) {
        let mut router = lock(&self.router);
        router.shards.clear();
        router.held.clear();
    }

    pub fn observe_consumer_error(&self) {
        self.observer.consumer_error();
    }

    pub fn take_fatal(&self) -> Option<KafkaError> {
        lock(&self.fatal).take()
    }

    fn shard_of(&self, (topic, partition): Partition, shards: usize) -> usize {
        // Partition numbers spread one topic over the shards; the topic
        // index staggers topics so partition 0 of each does not pile up on
        // shard 0.
        (partition as usize).wrapping_add(topic) % shards.max(1)
    }

    fn topic_partition(&self, (topic, partition): Partition) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.settings.inputs[topic].name, partition);
        tpl
    }

    /// Routes a consumed message to its shard, or holds it and pauses its
    /// partition when the shard's queue is full. Returns false once the
    /// shards are gone.
    pub fn route(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        message: &rdkafka::message::BorrowedMessage<'_>,
    ) -> bool {
        let Some((topic, _)) = self.settings.encoding_of(message.topic()) else {
            warn!(topic = message.topic(), "message from a topic gavel did not subscribe to; skipped");
            return true;
        };
        let key = (topic, message.partition());
        let consumed = Consumed::of(message, topic);
        let mut router = lock(&self.router);
        if router.shards.is_empty() {
            return false;
        }
        if let Some(queue) = router.held.get_mut(&key) {
            queue.push_back(consumed);
            return true;
        }
        let shard = self.shard_of(key, router.shards.len());
        match router.shards[shard].try_send(Work::Message(consumed)) {
            Ok(()) => true,
            Err(TrySendError::Full(Work::Message(consumed))) => {
                if let Err(e) = consumer.pause(&self.topic_partition(key)) {
                    warn!(topic = message.topic(), partition = key.1, error = %e, "pause failed");
                }
                router.held.insert(key, VecDeque::from([consumed]));
                self.observer.paused(router.held.len());
                true
            }
            Err(_) => false,
        }
    }

    /// Whether some partition is paused, waiting for its shard.
    pub fn holding(&self) -> bool {
        !lock(&self.router).held.is_empty()
    }

    /// Moves held messages into shards that have room again, and resumes a
    /// partition once nothing of it is held.
    pub fn release(&self, consumer: &BaseConsumer<GroupContext>) {
        let mut router = lock(&self.router);
        if router.held.is_empty() || router.shards.is_empty() {
            return;
        }
        let Router { shards, held } = &mut *router;
        let mut resumed = Vec::new();
        for (&key, queue) in held.iter_mut() {
            let shard = &shards[self.shard_of(key, shards.len())];
            // Hysteresis: hand over only once the shard has worked off half
            // its queue, so a partition is not paused and resumed per message.
            if shard.capacity() < shard.max_capacity().div_ceil(2) {
                continue;
            }
            while let Some(consumed) = queue.pop_front() {
                match shard.try_send(Work::Message(consumed)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(Work::Message(consumed))) => {
                        queue.push_front(consumed);
                        break;
                    }
                    Err(_) => return,
                }
            }
            if queue.is_empty() {
                resumed.push(key);
            }
        }
        for key in resumed {
            held.remove(&key);
            if let Err(e) = consumer.resume(&self.topic_partition(key)) {
                warn!(partition = key.1, error = %e, "resume failed");
            }
        }
        self.observer.paused(held.len());
    }

    /// Asks every shard to drain and waits, at most `timeout`, for them all.
    /// Returns false if some shard did not answer in time.
    pub fn drain(&self, timeout: Duration) -> bool {
        let shards = lock(&self.router).shards.clone();
        let (reply, answers) = std::sync::mpsc::channel::<Drained>();
        let deadline = Instant::now() + timeout;
        let mut asked = 0;
        for shard in &shards {
            // A full queue empties as the shard works; blocking here is the point.
            if shard.blocking_send(Work::Drain(reply.clone())).is_ok() {
                asked += 1;
            }
        }
        drop(reply);
        let mut fed = lock(&self.fed);
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(Instant::now());
            match answers.recv_timeout(left) {
                Ok(drained) => {
                    for (topic, partition, offset) in drained.fed {
                        let entry = fed.entry((topic, partition)).or_insert(offset);
                        *entry = (*entry).max(offset);
                    }
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Commits the stored offsets, synchronously.
    pub fn commit(&self, consumer: &BaseConsumer<GroupContext>) {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(RdError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.observer.commit_failed();
                warn!(error = %e, "commit failed; uncommitted messages will be processed again");
            }
        }
    }

    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<Partition> {
        tpl.elements()
            .iter()
            .filter_map(|e| self.settings.encoding_of(e.topic()).map(|(topic, _)| (topic, e.partition())))
            .collect()
    }

    fn revoked(&self, consumer: &BaseConsumer<GroupContext>, tpl: &TopicPartitionList) {
        let partitions = self.partitions(tpl);
        {
            let mut router = lock(&self.router);
            for key in &partitions {
                if router.held.remove(key).is_some() {
                    let _ = consumer.resume(&self.topic_partition(*key));
                }
            }
            self.observer.paused(router.held.len());
        }
        for &(topic, partition) in &partitions {
            self.observer.partition_lag(&self.settings.inputs[topic].name, partition, None);
        }
        let started = Instant::now();
        if !self.drain(self.settings.shutdown_timeout) {
            warn!("a shard did not drain in time; its partitions' latest outputs will be processed again");
        }
        self.commit(consumer);
        self.observer.rebalanced("revoke", partitions.len());
        info!(
            partitions = partitions.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partitions revoked: drained and committed"
        );
    }

    fn assigned(&self, tpl: &TopicPartitionList) {
        let partitions = self.partitions(tpl);
        self.observer.rebalanced("assign", partitions.len());
        if let Some(warm) = &self.warm {
            self.ready.store(false, Ordering::Relaxed);
            let mut sink = lock(warm);
            if let Some(since_ms) = sink.since_ms() {
                let fed = lock(&self.fed).clone();
                let replays: Vec<Replay> = partitions
                    .iter()
                    .map(|&(topic, partition)| Replay {
                        topic: self.settings.inputs[topic].name.clone(),
                        partition,
                        after: fed.get(&(topic, partition)).copied(),
                    })
                    .collect();
                let mut attempt = 0;
                loop {
                    match warm_partitions(&self.settings, &replays, since_ms, &mut **sink) {
                        Ok(report) => {
                            for (topic, partition, last) in &report.fed {
                                if let Some((topic, _)) = self.settings.encoding_of(topic) {
                                    lock(&self.fed).insert((topic, *partition), *last);
                                }
                            }
                            self.observer.warmed(&report);
                            break;
                        }
                        Err(e) if attempt < 3 => {
                            attempt += 1;
                            warn!(error = %e, attempt, "warm-up failed; trying again");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        Err(e) => {
                            error!(error = %e, "warm-up failed; stopping rather than scoring with no history");
                            *lock(&self.fatal) = Some(e);
                            return;
                        }
                    }
                }
            }
        }
        self.ready.store(true, Ordering::Relaxed);
        info!(partitions = partitions.len(), "partitions assigned");
    }
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (name, topic) in &statistics.topics {
            if self.settings.encoding_of(name).is_none() {
                continue;
            }
            for partition in topic.partitions.values() {
                // -1 is librdkafka's internal "unassigned" partition.
                if partition.partition < 0 || !partition.desired || partition.fetch_state != "active" {
                    continue;
                }
                let lag = [partition.consumer_lag_stored, partition.consumer_lag].into_iter().find(|&l| l >= 0);
                if let Some(lag) = lag {
                    self.observer.partition_lag(name, partition.partition, Some(lag));
                }
            }
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        self.observer.client_error();
        warn!(error = %error, reason, "kafka client error; librdkafka retries");
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.revoked(consumer, tpl);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.assigned(tpl),
            Rebalance::Revoke(_) => self.ready.store(false, Ordering::Relaxed),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) | Err(RdError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.observer.commit_failed();
                warn!(error = %e, "offset commit failed; retried with the next commit");
            }
        }
    }
}
