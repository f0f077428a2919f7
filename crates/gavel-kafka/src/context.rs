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
//!   partitions are given up. In exactly-once mode draining commits each
//!   shard's open transaction, offsets included, and there is nothing else
//!   to commit.
//! - **Assign**: before the new partitions are assigned, each is replayed in
//!   warm-up mode from the start of the pack's longest window (or from just
//!   after the last offset this process already fed into its state) up to the
//!   group's committed offset; one the group never committed is replayed to
//!   its end and assigned there, so it goes live without emitting for the
//!   past (unless `first_start` is `earliest`). `/readyz` is false meanwhile.
//!
//! Which shard a partition goes to, and when it is paused and resumed, is
//! decided by the pure [`Router`] (`routing.rs`); this module carries the
//! decisions out on the consumer. It processes nothing itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError as RdError, KafkaResult};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::mpsc::{self, error::TrySendError};
use tracing::{error, info, warn};

use crate::contract::{BeyondTheMessageKey, PipelineObserver, WarmSink};
use crate::detached::Consumed;
use crate::error::{KafkaError, Result};
use crate::order::{End, Ends};
use crate::routing::{Lane, Offer, Partition, Routed, Router, shard_of};
use crate::settings::{InputOrder, KafkaSettings};
use crate::shard::{Drained, Following, Work};
use crate::warmup::{Replay, warm_partitions};

/// How long the consumer sleeps between offers to a full shard.
const HANDOFF_RETRY: Duration = Duration::from_micros(500);

/// A shard's queue, as a lane of the router.
impl Lane for mpsc::Sender<Work> {
    type Item = Consumed;

    fn offer(&self, consumed: Consumed) -> Offer<Consumed> {
        match self.try_send(Work::Message(consumed)) {
            Ok(()) => Offer::Taken,
            Err(TrySendError::Full(Work::Message(consumed))) => Offer::Full(consumed),
            Err(_) => Offer::Closed,
        }
    }

    fn free(&self) -> usize {
        mpsc::Sender::capacity(self)
    }

    fn capacity(&self) -> usize {
        self.max_capacity()
    }
}

/// The consumer's context: librdkafka calls it on rebalances and errors.
pub(crate) struct GroupContext {
    /// The pipeline's settings.
    settings: Arc<KafkaSettings>,
    /// Telemetry.
    observer: Arc<dyn PipelineObserver>,
    /// The shard queues and the messages of paused partitions.
    router: Mutex<Router<mpsc::Sender<Work>>>,
    /// Last offset per partition whose message this process fed into state.
    fed: Mutex<HashMap<Partition, i64>>,
    /// Where assigned partitions are warmed up, if anywhere.
    warm: Option<Mutex<Box<dyn WarmSink>>>,
    /// True while partitions are assigned and warmed up and the group is
    /// healthy ([`GroupContext::publish_ready`]).
    ready: Arc<AtomicBool>,
    /// Partitions are assigned and warmed up.
    warmed: AtomicBool,
    /// The broker answers and the group is not stuck (`health.rs`).
    healthy: AtomicBool,
    /// The partitions this member owns.
    owned: Mutex<std::collections::HashSet<Partition>>,
    /// The input topics' partitions, all members together, from the last
    /// health probe (0 before the first).
    partitions_total: AtomicUsize,
    /// Why one user's events may be split between members
    /// ([`crate::health::not_copartitioned`]), from the last probe.
    not_copartitioned: Mutex<Option<String>>,
    /// State that events of any partition feed ([`Hooks`](crate::Hooks)).
    beyond_the_message_key: Option<BeyondTheMessageKey>,
    /// Whether the last readiness check found this member's state exact.
    exact: AtomicBool,
    /// Set when the group cannot go on (warm-up failed for good, a
    /// hand-over gap); the consumer loop stops with it.
    fatal: Arc<Mutex<Option<KafkaError>>>,
    /// Under replicated state: the shard's state has reached where the
    /// group is on every partition (`Follow::caught_up`).
    caught_up: Arc<AtomicBool>,
    /// Each input partition's log end, from the statistics, for the shards'
    /// merges (`order.rs`).
    ends: Arc<Ends>,
}

/// Locks `mutex`, recovering it if a panic poisoned it, so that shutdown
/// can still drain and commit.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl GroupContext {
    /// A context reporting to `observer`, warming assigned partitions up
    /// into `warm` if given, and keeping `ready` up to date.
    pub fn new(
        settings: Arc<KafkaSettings>,
        observer: Arc<dyn PipelineObserver>,
        warm: Option<Box<dyn WarmSink>>,
        ready: Arc<AtomicBool>,
        beyond_the_message_key: Option<BeyondTheMessageKey>,
    ) -> Self {
        GroupContext {
            settings,
            observer,
            router: Mutex::default(),
            fed: Mutex::default(),
            warm: warm.map(Mutex::new),
            ready,
            warmed: AtomicBool::new(false),
            healthy: AtomicBool::new(true),
            owned: Mutex::default(),
            partitions_total: AtomicUsize::new(0),
            not_copartitioned: Mutex::default(),
            beyond_the_message_key,
            exact: AtomicBool::new(true),
            fatal: Arc::default(),
            caught_up: Arc::new(AtomicBool::new(false)),
            ends: Arc::default(),
        }
    }

    /// The slot a shard reports a fatal error in.
    pub fn fatal_slot(&self) -> Arc<Mutex<Option<KafkaError>>> {
        Arc::clone(&self.fatal)
    }

    /// The flag a shard sets once caught up (replicated state).
    pub fn caught_up_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.caught_up)
    }

    /// The earliest Kafka timestamp still worth replaying, as the warm-up
    /// sink says; `None` when there is no history to keep.
    pub fn since_ms(&self) -> Option<i64> {
        self.warm.as_ref().and_then(|warm| lock(warm).since_ms())
    }

    /// Sends each shard its share of `items` (by partition) as `make`
    /// wraps it; with `every`, an empty share too. Blocks while a queue is
    /// full; a shard that stopped is the pipeline's to report.
    fn send_shares<T>(&self, items: Vec<(Partition, T)>, every: bool, make: impl Fn(Vec<(Partition, T)>) -> Work) {
        let shards = lock(&self.router).lanes().to_vec();
        if shards.is_empty() {
            return;
        }
        let mut shares: Vec<Vec<(Partition, T)>> = (0..shards.len()).map(|_| Vec::new()).collect();
        for item in items {
            shares[shard_of(item.0, shards.len())].push(item);
        }
        for (shard, share) in shards.iter().zip(shares) {
            if every || !share.is_empty() {
                let _ = shard.blocking_send(make(share));
            }
        }
    }

    /// Sends each shard its share of `items`, as `make` wraps it: under
    /// replicated state, what the member publishes.
    pub fn tell_shards<T>(&self, items: Vec<(Partition, T)>, make: impl Fn(Vec<(Partition, T)>) -> Following) {
        self.send_shares(items, false, |share| Work::Follow(make(share)));
    }

    /// Sends every shard the partitions it merges, each with its first
    /// offset (replicated state: every input partition).
    pub fn set_lanes(&self, lanes: &[(Partition, i64)]) {
        let lanes = lanes.iter().map(|&(lane, start)| (lane, Some(start))).collect();
        self.send_shares(lanes, true, Work::Lanes);
    }

    /// Each input partition's log end as last seen, shared with the shards.
    pub fn ends(&self) -> Arc<Ends> {
        Arc::clone(&self.ends)
    }

    /// Tells each shard which partitions it owns now, with the offset live
    /// consumption starts at where `starts` has it, so that under
    /// [`InputOrder::Log`] it waits for a partition that has yet to send
    /// anything. Partitions kept keep their progress.
    fn announce_lanes(&self, starts: &[(String, i32, i64)]) {
        // Replicated state merges every partition, whoever owns it.
        if self.settings.order != InputOrder::Log || self.settings.replicated() {
            return;
        }
        let owned: Vec<Partition> = lock(&self.owned).iter().copied().collect();
        let lanes = owned
            .into_iter()
            .map(|lane| {
                let start = starts
                    .iter()
                    .find(|(topic, partition, _)| *partition == lane.1 && self.settings.inputs[lane.0].name == *topic)
                    .map(|s| s.2);
                (lane, start)
            })
            .collect();
        // After a drain or before any message of the new assignment, so
        // there is room.
        self.send_shares(lanes, true, Work::Lanes);
    }

    /// Ready = assigned and warmed up, healthy, and exact (or allowed not
    /// to be: `allow_partial_ownership`).
    pub fn publish_ready(&self) {
        let exact = self.check_exact();
        let caught_up = !self.settings.replicated() || self.caught_up.load(Ordering::Relaxed);
        let ready = self.warmed.load(Ordering::Relaxed)
            && self.healthy.load(Ordering::Relaxed)
            && caught_up
            && (exact || self.settings.allow_partial_ownership);
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether this member's state counts every event it should: it owns
    /// every input partition (or none: it scores nothing), or the processor
    /// keeps no state beyond the message key. Logs each change and reports
    /// it to the observer.
    fn check_exact(&self) -> bool {
        let owned = lock(&self.owned).len();
        let total = self.partitions_total.load(Ordering::Relaxed);
        let beyond = match &self.beyond_the_message_key {
            // Every partition feeds this member's state.
            _ if self.settings.replicated() => Vec::new(),
            Some(beyond) if owned > 0 && (total == 0 || owned < total) => {
                // Split users make even the state keyed by the user partial.
                let split = lock(&self.not_copartitioned).clone();
                split.into_iter().chain(beyond()).collect()
            }
            _ => Vec::new(),
        };
        let exact = beyond.is_empty();
        if total == 0 && !exact {
            // Until the first health probe has counted the partitions.
            return false;
        }
        if self.exact.swap(exact, Ordering::Relaxed) != exact {
            if exact {
                info!(owned, total, "state exact again: this member owns every input partition");
            } else {
                let named = beyond.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
                let more = beyond.len().saturating_sub(5);
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                let consequence = if self.settings.allow_partial_ownership {
                    "ready anyway (kafka.allow_partial_ownership): these count only this member's share of the events"
                } else {
                    "not ready: these would count only this member's share of the events; run one instance, \
                     or set kafka.allow_partial_ownership = true to score with partial counts"
                };
                warn!(
                    "this member owns {owned} of {total} input partitions, and the pack keeps state that events \
                     of any partition feed: {named}{more}; {consequence}"
                );
            }
        }
        self.observer.exact(exact);
        exact
    }

    /// Records a health probe's count of the input partitions and checks
    /// readiness again.
    pub fn set_partitions(&self, probe: &crate::health::Probe) {
        let mut counts: Vec<(&str, usize)> = self.settings.inputs.iter().map(|i| (i.name.as_str(), 0)).collect();
        for &(topic, _, _) in &probe.lags {
            counts[topic].1 += 1;
        }
        let option = "partition.assignment.strategy";
        let strategy = self.settings.consumer_options.get(option).or(self.settings.client_options.get(option));
        let strategy = strategy.map(String::as_str);
        let split = crate::health::not_copartitioned(&counts, strategy);
        let total = probe.lags.len();
        let changed = self.partitions_total.swap(total, Ordering::Relaxed) != total;
        let split_changed = std::mem::replace(&mut *lock(&self.not_copartitioned), split.clone()) != split;
        if changed || split_changed {
            self.publish_ready();
        }
    }

    /// Records the health verdict (`health.rs`), logging each change.
    pub fn set_healthy(&self, healthy: bool) {
        if self.healthy.swap(healthy, Ordering::Relaxed) != healthy {
            if healthy {
                info!("group healthy again");
            } else {
                warn!(
                    "not ready: the broker is unreachable, or the group is stuck (no partitions here, unconsumed messages, no commits)"
                );
            }
        }
        self.publish_ready();
    }

    /// The partitions this member owns now.
    pub fn owned(&self) -> std::collections::HashSet<Partition> {
        lock(&self.owned).clone()
    }

    /// Reports a lag probe's figures for the partitions this member does
    /// not own.
    pub fn report_lags(&self, probe: &crate::health::Probe, owned: &std::collections::HashSet<Partition>) {
        // Under replicated state the member's own consumer never fetches,
        // so the probe reports every partition's lag.
        let none = std::collections::HashSet::new();
        let owned = if self.settings.replicated() { &none } else { owned };
        for (topic, partition, lag) in crate::health::unowned_lags(probe, owned) {
            self.observer.partition_lag(&self.settings.inputs[topic].name, partition, Some(lag));
        }
    }

    /// Installs the shard queues.
    pub fn set_shards(&self, shards: Vec<mpsc::Sender<Work>>) {
        lock(&self.router).set_lanes(shards);
    }

    /// Closes the shard queues: each shard finishes and exits.
    pub fn close_shards(&self) {
        lock(&self.router).close();
    }

    /// Counts an error returned by polling.
    pub fn observe_consumer_error(&self) {
        self.observer.consumer_error();
    }

    /// Why the group cannot go on, if it cannot.
    pub fn take_fatal(&self) -> Option<KafkaError> {
        lock(&self.fatal).take()
    }

    /// `partition` as a one-element list, for pause and resume.
    fn topic_partition(&self, (topic, partition): Partition) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.settings.inputs[topic].name, partition);
        tpl
    }

    /// Routes a consumed message to its shard. When the shard's queue is
    /// full, waits up to `pause_after` for room, then holds the message and
    /// pauses its partition (`routing.rs` says why pausing comes last).
    /// Returns false once the shards are gone.
    pub fn route<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        message: &rdkafka::message::BorrowedMessage<'_>,
    ) -> bool {
        let Some((topic, _)) = self.settings.encoding_of(message.topic()) else {
            warn!(topic = message.topic(), "message from a topic gavel did not subscribe to; skipped");
            return true;
        };
        let key = (topic, message.partition());
        let mut consumed = Consumed::of(message, topic, &self.settings.trace_headers);
        // The clock is read only once a shard refuses, not per message.
        let mut give_up = None;
        let (mut router, routed) = loop {
            let mut router = lock(&self.router);
            match router.offer(key, consumed) {
                Ok(routed) => break (router, routed),
                Err(refused) => {
                    let deadline = *give_up.get_or_insert_with(|| Instant::now() + self.settings.pause_after);
                    if Instant::now() >= deadline {
                        let routed = router.hold(key, refused);
                        break (router, routed);
                    }
                    consumed = refused;
                    drop(router);
                    // A shard works off dozens of messages in this time.
                    std::thread::sleep(HANDOFF_RETRY);
                }
            }
        };
        match routed {
            Routed::Sent => {
                if router.flows(key) {
                    self.ends.hold(key, false);
                }
                true
            }
            Routed::Held => true,
            Routed::Pause => {
                if let Err(e) = consumer.pause(&self.topic_partition(key)) {
                    warn!(topic = message.topic(), partition = key.1, error = %e, "pause failed");
                }
                // The merges wait for it rather than stall it: it is late
                // because its shard is full, not because of the broker.
                self.ends.hold(key, true);
                self.observer.paused(router.paused());
                true
            }
            Routed::Closed => false,
        }
    }

    /// Whether some partition is paused, waiting for its shard.
    pub fn holding(&self) -> bool {
        lock(&self.router).holding()
    }

    /// Moves held messages into shards that have room again, and resumes a
    /// partition once nothing of it is held.
    pub fn release<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let mut router = lock(&self.router);
        if !router.holding() || router.lanes().is_empty() {
            return;
        }
        let resumed = router.release();
        for &key in &resumed {
            if let Err(e) = consumer.resume(&self.topic_partition(key)) {
                warn!(partition = key.1, error = %e, "resume failed");
            }
        }
        if !resumed.is_empty() {
            self.observer.paused(router.paused());
        }
    }

    /// Asks every shard to drain and waits, at most `timeout`, for them all.
    /// Returns false if some shard did not answer in time.
    pub fn drain(&self, timeout: Duration) -> bool {
        let shards = lock(&self.router).lanes().to_vec();
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

    /// Commits the stored offsets, synchronously. In exactly-once mode
    /// nothing is stored: the shards committed their offsets in their
    /// transactions while draining.
    /// Returns whether the offsets are committed (or nothing needed it).
    pub fn commit(&self, consumer: &BaseConsumer<GroupContext>) -> bool {
        if self.settings.exactly_once {
            return true;
        }
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(RdError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => true,
            Err(e) => {
                self.observer.commit_failed();
                warn!(error = %e, "commit failed; uncommitted messages will be processed again");
                false
            }
        }
    }

    /// The input partitions in `tpl` (others are ignored).
    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<Partition> {
        tpl.elements()
            .iter()
            .filter_map(|e| self.settings.encoding_of(e.topic()).map(|(topic, _)| (topic, e.partition())))
            .collect()
    }

    /// Before giving partitions up: drop what is held of them, drain every
    /// shard, commit.
    fn revoked(&self, consumer: &BaseConsumer<GroupContext>, tpl: &TopicPartitionList) {
        let partitions = self.partitions(tpl);
        if self.settings.replicated() {
            // The follower goes on reading them, into state; from now on
            // their outputs are held for the new owner (`follow.rs`).
            self.tell_shards(partitions.iter().map(|&p| (p, ())).collect(), |share| {
                Following::Disown(share.into_iter().map(|(p, ())| p).collect())
            });
        } else {
            let mut router = lock(&self.router);
            for &key in &partitions {
                let held_back = router.held_back(key);
                if router.forget(key) {
                    let _ = consumer.resume(&self.topic_partition(key));
                }
                if held_back {
                    self.ends.hold(key, false);
                }
            }
            self.observer.paused(router.paused());
        }
        for &(topic, partition) in &partitions {
            self.observer.partition_lag(&self.settings.inputs[topic].name, partition, None);
        }
        let started = Instant::now();
        let drained = self.drain(self.settings.shutdown_timeout);
        if !drained {
            warn!("a shard did not drain in time; its partitions' latest outputs will be processed again");
        }
        let committed = self.commit(consumer);
        self.observer.rebalanced("revoke", partitions.len());
        // Say what happened: the warnings above already said what did not.
        let what = match (drained, committed) {
            (true, true) => "partitions revoked: drained and committed",
            (true, false) => "partitions revoked: drained, not committed",
            (false, true) => "partitions revoked: committed what drained in time",
            (false, false) => "partitions revoked: neither drained nor committed",
        };
        info!(partitions = partitions.len(), elapsed_ms = started.elapsed().as_millis() as u64, "{what}");
    }

    /// Before partitions are assigned: warm them up (into the sink, if
    /// there is one) and return where live consumption starts on those the
    /// group never committed; or, if warm-up fails for good, stop the group
    /// rather than score with no history (`None`).
    fn assigning(&self, tpl: &TopicPartitionList) -> Option<Starts> {
        let partitions = self.partitions(tpl);
        self.observer.rebalanced("assign", partitions.len());
        self.warmed.store(false, Ordering::Relaxed);
        self.publish_ready();
        let warmed = match &self.warm {
            Some(warm) => self.warm_up(&partitions, &mut **lock(warm)),
            None => self.warm_up(&partitions, &mut NoHistory),
        };
        match warmed {
            Ok(starts) => Some(starts),
            Err(e) => {
                error!(error = %e, "warm-up failed; stopping rather than scoring with no history");
                *lock(&self.fatal) = Some(e);
                None
            }
        }
    }

    /// Replays `partitions` into `sink`, each from just after what this
    /// process already fed into its state, trying three more times, a
    /// second apart, before giving up. Returns the live starts of the
    /// partitions the group never committed.
    fn warm_up(&self, partitions: &[Partition], sink: &mut dyn WarmSink) -> Result<Starts> {
        let since_ms = sink.since_ms();
        let replays: Vec<Replay> = {
            let fed = lock(&self.fed);
            partitions
                .iter()
                .map(|&(topic, partition)| Replay {
                    topic: self.settings.inputs[topic].name.clone(),
                    partition,
                    after: fed.get(&(topic, partition)).copied(),
                })
                .collect()
        };
        let mut attempt = 0;
        let report = loop {
            match warm_partitions(&self.settings, &replays, since_ms, sink) {
                Ok(report) => break report,
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    warn!(error = %e, attempt, "warm-up failed; trying again");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        };
        {
            let mut fed = lock(&self.fed);
            for (topic, partition, last) in &report.fed {
                if let Some((topic, _)) = self.settings.encoding_of(topic) {
                    fed.insert((topic, *partition), *last);
                }
            }
        }
        self.observer.warmed(&report);
        Ok(Starts { live: report.live_starts, all: report.starts })
    }
}

impl GroupContext {
    /// Under replicated state, the assignment: no warm-up (state already
    /// holds every partition); each new partition is published from the
    /// group's committed offset, after the outputs held for it. The group
    /// consumer's partitions are paused at once: the follower reads.
    fn assign_followed(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList, cooperative: bool) {
        let partitions = self.partitions(tpl);
        self.observer.rebalanced("assign", partitions.len());
        let named: Vec<(String, i32)> = partitions
            .iter()
            .map(|&(topic, partition)| (self.settings.inputs[topic].name.clone(), partition))
            .collect();
        let plan = match crate::warmup::follow_plan(&self.settings, &named, None) {
            Ok(plan) => plan,
            Err(e) => {
                error!(error = %e, "committed offsets unreadable; stopping rather than publish from a guess");
                *lock(&self.fatal) = Some(e);
                return;
            }
        };
        let assigned = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
        if let Err(e) = assigned {
            warn!(error = %e, "assign failed");
        }
        if let Err(e) = consumer.pause(tpl) {
            warn!(error = %e, "pausing the group consumer failed; its messages are dropped");
        }
        {
            let mut owned = lock(&self.owned);
            if !cooperative {
                owned.clear();
            }
            owned.extend(partitions.iter().copied());
        }
        let froms: Vec<(Partition, i64)> = plan
            .iter()
            .filter_map(|f| self.settings.encoding_of(&f.topic).map(|(topic, _)| ((topic, f.partition), f.publish)))
            .collect();
        self.tell_shards(froms, Following::Own);
        self.warmed.store(true, Ordering::Relaxed);
        self.publish_ready();
        info!(partitions = tpl.count(), "partitions assigned: published from the group's committed offsets");
    }
}

/// Records each input partition's log end from `statistics` into `ends`.
fn record_ends(settings: &KafkaSettings, ends: &Ends, statistics: &rdkafka::Statistics) {
    for (name, topic) in &statistics.topics {
        let Some((index, _)) = settings.encoding_of(name) else { continue };
        for partition in topic.partitions.values() {
            // Read committed stops at the last stable offset.
            let high = if settings.exactly_once { partition.ls_offset } else { partition.hi_offset };
            if partition.partition >= 0 && partition.lo_offset >= 0 && high >= 0 {
                ends.set((index, partition.partition), End::Known { low: partition.lo_offset, high });
            }
        }
    }
}

/// The follower's context under replicated state: it reads every input
/// partition, so the log ends come from its statistics.
pub(crate) struct FollowerContext {
    /// The pipeline's settings.
    pub settings: Arc<KafkaSettings>,
    /// Telemetry.
    pub observer: Arc<dyn PipelineObserver>,
    /// The ends the shards' merges wait on.
    pub ends: Arc<Ends>,
}

impl ClientContext for FollowerContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        record_ends(&self.settings, &self.ends, &statistics);
    }

    fn error(&self, error: RdError, reason: &str) {
        client_error(&*self.observer, &error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        librdkafka_log(level, facility, message);
    }
}

impl ConsumerContext for FollowerContext {}

/// Where live consumption starts on assigned partitions.
struct Starts {
    /// On those the group never committed: at their end.
    live: Vec<(String, i32, i64)>,
    /// On every one whose start is known.
    all: Vec<(String, i32, i64)>,
}

/// The sink of a pipeline without warm-up: it keeps no history, so only
/// the live starts of never-committed partitions are looked up.
struct NoHistory;

impl WarmSink for NoHistory {
    fn warm(&mut self, _input: &crate::contract::Input<'_>) {}
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        // Under replicated state this consumer never fetches: the
        // follower's statistics have the ends.
        if !self.settings.replicated() {
            record_ends(&self.settings, &self.ends, &statistics);
        }
        for (name, topic) in &statistics.topics {
            // Replicated: the paused partitions' figures are stale; the
            // health probe reports every partition's lag.
            if self.settings.encoding_of(name).is_none() || self.settings.replicated() {
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
        client_error(&*self.observer, &error, reason);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        librdkafka_log(level, facility, message);
    }
}

/// One client error: counted and logged once. librdkafka reports each
/// error twice, as an error event and as a log line; the log line is
/// demoted to debug ([`librdkafka_log`]) so this is the one that shows.
fn client_error(observer: &dyn PipelineObserver, error: &RdError, reason: &str) {
    observer.client_error();
    warn!(error = %error, reason, "kafka client error; librdkafka retries");
}

/// A librdkafka log line. Errors also arrive as error events, which
/// [`client_error`] counts and logs, so at error level the line is kept at
/// debug only; the rest keep their level.
fn librdkafka_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::debug!(target: "librdkafka", facility, "{message}");
        }
        RDKafkaLogLevel::Warning => warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => info!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// The producers' context: client errors counted and logged once, as the
/// consumer's are. The observer arrives with the pipeline's hooks, after
/// the producer is made, so it is set once at run time, through a clone
/// (clones share the slot).
#[derive(Default, Clone)]
pub(crate) struct ProducerContext {
    observer: Arc<std::sync::OnceLock<Arc<dyn PipelineObserver>>>,
}

impl ProducerContext {
    /// Reports to `observer` from now on (the first call wins).
    pub fn observe(&self, observer: Arc<dyn PipelineObserver>) {
        let _ = self.observer.set(observer);
    }
}

impl ClientContext for ProducerContext {
    fn error(&self, error: RdError, reason: &str) {
        match self.observer.get() {
            Some(observer) => client_error(&**observer, &error, reason),
            None => warn!(error = %error, reason, "kafka client error; librdkafka retries"),
        }
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        librdkafka_log(level, facility, message);
    }
}

/// The producer gavel writes with.
pub(crate) type OutputProducer = rdkafka::producer::FutureProducer<ProducerContext>;

impl ConsumerContext for GroupContext {
    /// The whole rebalance, in place of rdkafka's default: on assignment the
    /// partitions are warmed up *before* they are assigned, so that those
    /// the group never committed can be assigned at the offset warm-up
    /// reached (the end of the log) instead of librdkafka's
    /// `auto.offset.reset`.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS if self.settings.replicated() => {
                self.assign_followed(consumer, tpl, cooperative);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // A warm-up that failed for good stops the group: assign
                // nothing rather than consume with no history.
                let Some(starts) = self.assigning(tpl) else { return };
                for (topic, partition, offset) in &starts.live {
                    if let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Offset(*offset)) {
                        warn!(topic, partition, error = %e, "live start not set");
                    }
                }
                let assigned = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(e) = assigned {
                    warn!(error = %e, "assign failed");
                }
                {
                    let mut owned = lock(&self.owned);
                    if !cooperative {
                        owned.clear();
                    }
                    owned.extend(self.partitions(tpl));
                }
                self.announce_lanes(&starts.all);
                self.warmed.store(true, Ordering::Relaxed);
                self.publish_ready();
                info!(partitions = tpl.count(), started_at_end = starts.live.len(), "partitions assigned");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoked(consumer, tpl);
                let unassigned = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = unassigned {
                    warn!(error = %e, "unassign failed");
                }
                {
                    let mut owned = lock(&self.owned);
                    for partition in self.partitions(tpl) {
                        owned.remove(&partition);
                    }
                }
                self.announce_lanes(&[]);
                self.warmed.store(false, Ordering::Relaxed);
                self.publish_ready();
            }
            other => {
                warn!(error = %RDKafkaErrorCode::from(other), "rebalance error");
                if !cooperative {
                    let _ = consumer.unassign();
                    lock(&self.owned).clear();
                }
                self.warmed.store(false, Ordering::Relaxed);
                self.publish_ready();
            }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[derive(Default)]
    struct Errors(AtomicUsize);

    impl PipelineObserver for Errors {
        fn client_error(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A producer's client errors are counted like the consumer's: once per
    /// error event, through a context whose observer is set after the
    /// producer exists.
    #[test]
    fn producer_client_errors_are_counted_once_through_a_late_observer() {
        let context = ProducerContext::default();
        let handle = context.clone();
        let errors = Arc::new(Errors::default());
        ClientContext::error(&context, RdError::Canceled, "before the observer: logged only");
        handle.observe(Arc::clone(&errors) as Arc<dyn PipelineObserver>);
        ClientContext::error(&context, RdError::Canceled, "broker down");
        // The same error's log line is not a second report.
        ClientContext::log(&context, RDKafkaLogLevel::Error, "FAIL", "broker down");
        assert_eq!(errors.0.load(Ordering::Relaxed), 1);
    }
}
