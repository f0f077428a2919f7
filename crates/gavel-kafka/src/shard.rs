//! A shard worker: owns some input partitions, processes their messages in
//! order, produces the outputs and stores each input offset once every
//! output of that message, and of every message before it, is acknowledged.
//!
//! Each shard is an OS thread with its own single-threaded tokio runtime, so
//! a busy shard never starves another, and the consumer thread can block on
//! a shard (to drain it before a rebalance) without stalling a runtime.
//!
//! A shard neither routes nor pauses (`context.rs` does, on the consumer
//! thread) and knows nothing of the group consumer beyond storing offsets
//! through [`OffsetStore`]. This is the at-least-once path; the
//! exactly-once shards (`transactional.rs`) reuse its message → records
//! step ([`process`], [`report`]) and its work protocol.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError as RdError, KafkaResult};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc;
use tracing::warn;

use crate::backoff::Backoff;
use crate::contract::{Input, OutputTopic, Outputs, PipelineObserver, Processed, Processor, dlq_headers};
use crate::detached::{Consumed, named_headers};
use crate::follow::{Follow, Role};
use crate::order::{End, Ends, Lane, Merge, Next};
use crate::settings::{InputOrder, KafkaSettings};

/// What a shard is asked to do.
#[derive(Debug)]
pub(crate) enum Work {
    /// Process a message.
    Message(Consumed),
    /// Finish everything sent before this, wait for every acknowledgement
    /// and store the offsets, then answer with what the shard has fed into
    /// state so far.
    Drain(std::sync::mpsc::Sender<Drained>),
    /// The partitions this shard owns now, each with the offset its next
    /// message has where known: the partitions [`Inbox`] merges.
    Lanes(Vec<(Lane, Option<i64>)>),
    /// Under replicated state, what this member publishes changed.
    Follow(Following),
}

/// Under [`StateScope::Replicated`](crate::StateScope), a change in what
/// the member publishes (`follow.rs`); taken ahead of buffered messages.
#[derive(Debug)]
pub(crate) enum Following {
    /// Every partition's first offset read.
    Start(Vec<(Lane, i64)>),
    /// Partitions the group assigned, each with the offset publishing
    /// starts at (the group's committed offset).
    Own(Vec<(Lane, i64)>),
    /// Partitions the group took away.
    Disown(Vec<Lane>),
    /// The group's committed offsets, as last read.
    Committed(Vec<(Lane, i64)>),
}

/// What a shard's loop does next, as its [`Inbox`] gives it.
#[derive(Debug)]
pub(crate) enum Job {
    /// Process a message.
    Message(Consumed),
    /// See [`Work::Drain`]: every message sent before it has been given
    /// (under replicated state: every one given before it was asked).
    Drain(std::sync::mpsc::Sender<Drained>),
    /// See [`Work::Follow`].
    Follow(Following),
}

/// A shard's queue as its loop reads it: in arrival order, or under
/// [`InputOrder::Log`] through a [`Merge`] of the shard's partitions, so
/// messages come in the log's order (`order.rs`). `recv` is cancel-safe:
/// whatever it took from the queue stays in the merge.
pub(crate) struct Inbox {
    /// The queue the consumer thread fills.
    work: mpsc::Receiver<Work>,
    /// The merge, under `InputOrder::Log`.
    merge: Option<Merge<Consumed>>,
    /// Where each partition's log ends, as the consumer last saw it.
    ends: Arc<Ends>,
    /// Telemetry.
    observer: Arc<dyn PipelineObserver>,
    /// A drain asked for: buffered messages go first, then it.
    draining: Option<std::sync::mpsc::Sender<Drained>>,
    /// The consumer thread closed the queue.
    closed: bool,
    /// Buffered messages at most before the smallest is forced out.
    bound: usize,
    /// Bytes of the buffered messages ([`Consumed::size`]).
    bytes: usize,
    /// Stalls and forced releases already reported.
    reported: (u64, u64),
    /// Under replicated state, a drain waits only for acknowledgements:
    /// buffered messages are fed in their order whoever owns them.
    replicated: bool,
    /// Jobs that go ahead of buffered messages.
    control: std::collections::VecDeque<Job>,
}

impl Inbox {
    /// The inbox of a shard of `env` reading `work`.
    pub fn new(env: &ShardEnv, work: mpsc::Receiver<Work>) -> Inbox {
        let settings = Arc::clone(&env.settings);
        Inbox {
            work,
            merge: (settings.order == InputOrder::Log).then(|| Merge::new(settings.order_wait)),
            ends: Arc::clone(&env.ends),
            bound: settings.shard_queue.max(1).saturating_mul(64),
            bytes: 0,
            observer: Arc::clone(&env.observer),
            draining: None,
            closed: false,
            reported: (0, 0),
            replicated: settings.replicated(),
            control: std::collections::VecDeque::new(),
        }
    }

    /// The next job; `None` once the queue is closed and nothing is left.
    pub async fn recv(&mut self) -> Option<Job> {
        if self.merge.is_none() {
            loop {
                match self.work.recv().await? {
                    Work::Message(message) => return Some(Job::Message(message)),
                    Work::Drain(reply) => return Some(Job::Drain(reply)),
                    Work::Follow(following) => return Some(Job::Follow(following)),
                    Work::Lanes(_) => {}
                }
            }
        }
        loop {
            while self.draining.is_none() && !self.closed && !self.full() {
                match self.work.try_recv() {
                    Ok(work) => self.take(work),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => self.closed = true,
                }
            }
            if let Some(job) = self.control.pop_front() {
                return Some(job);
            }
            let force = self.draining.is_some() || self.closed || self.full();
            let next = {
                let ends = &self.ends;
                let merge = self.merge.as_mut().unwrap_or_else(|| unreachable!());
                merge.next(Instant::now(), force, |lane| ends.get(lane))
            };
            self.report();
            match next {
                Next::Ready(message) => {
                    self.bytes -= message.size();
                    return Some(Job::Message(message));
                }
                Next::Empty => {
                    if let Some(reply) = self.draining.take() {
                        return Some(Job::Drain(reply));
                    }
                    if self.closed {
                        return None;
                    }
                    match self.work.recv().await {
                        Some(work) => self.take(work),
                        None => self.closed = true,
                    }
                }
                Next::Wait(until) => {
                    tokio::select! {
                        work = self.work.recv() => match work {
                            Some(work) => self.take(work),
                            None => self.closed = true,
                        },
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
                    }
                }
            }
        }
    }

    /// Messages in the merge.
    fn buffered(&self) -> usize {
        self.merge.as_ref().map_or(0, Merge::len)
    }

    /// Whether the merge holds as much as it may. The bound is generous: a
    /// catch-up fetches each partition in large chunks, so several
    /// partitions' chunks may be buffered before the one the order waits
    /// for arrives, and forcing a message out then would break the order.
    fn full(&self) -> bool {
        self.bytes >= MERGE_BYTES || self.buffered() >= self.bound
    }

    /// Files one piece of work into the merge.
    fn take(&mut self, work: Work) {
        let Some(merge) = self.merge.as_mut() else { return };
        match work {
            Work::Message(message) => {
                let lane = (message.topic, message.partition);
                self.bytes += message.size();
                merge.push(lane, message.offset, message.timestamp_ms, message);
            }
            Work::Drain(reply) if self.replicated => self.control.push_back(Job::Drain(reply)),
            Work::Drain(reply) => self.draining = Some(reply),
            Work::Lanes(lanes) => merge.assign(&lanes),
            Work::Follow(following) => self.control.push_back(Job::Follow(following)),
        }
    }

    /// Reports new stalls and forced releases.
    fn report(&mut self) {
        let Some(merge) = &self.merge else { return };
        let now = (merge.stalls(), merge.forced());
        if now != self.reported {
            self.observer.out_of_order(now.0 - self.reported.0, now.1 - self.reported.1);
            self.reported = now;
        }
    }
}

/// Bytes of messages a shard's merge buffers at most (besides 64 shard
/// queues of messages) before it forces the smallest out.
const MERGE_BYTES: usize = 64 << 20;

/// A shard's answer to [`Work::Drain`].
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// `(input topic, partition, last offset processed)` for every partition
    /// this shard has processed.
    pub fed: Vec<(usize, i32, i64)>,
}

/// One record to produce, kept until acknowledged so that it can be sent again.
pub(crate) struct Record {
    /// Destination.
    topic: OutputTopic,
    /// Partitioning key.
    key: Option<Vec<u8>>,
    /// Value.
    payload: Vec<u8>,
    /// Headers, if any.
    headers: Option<OwnedHeaders>,
}

impl Record {
    /// The record as the producer takes it, for `settings`' topic names.
    pub(crate) fn to_send<'a>(&'a self, settings: &'a KafkaSettings) -> FutureRecord<'a, [u8], [u8]> {
        let mut future = FutureRecord::to(settings.outputs.name(self.topic)).payload(self.payload.as_slice());
        if let Some(key) = &self.key {
            future = future.key(key.as_slice());
        }
        if let Some(headers) = &self.headers {
            future = future.headers(headers.clone());
        }
        future
    }

    /// Bytes of key, value and headers.
    pub(crate) fn size(&self) -> usize {
        use rdkafka::message::Headers as _;
        let headers =
            self.headers.as_ref().map_or(0, |h| h.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum());
        self.key.as_ref().map_or(0, Vec::len) + self.payload.len() + headers
    }

    /// The name of the record's topic under `settings`.
    pub(crate) fn topic_name<'a>(&self, settings: &'a KafkaSettings) -> &'a str {
        settings.outputs.name(self.topic)
    }
}

/// What processing one message gave: the records to produce and what to
/// report about it.
pub(crate) struct Produced {
    /// The outputs, or the dead-letter record.
    pub records: Vec<Record>,
    /// What to store and report once the records are safe.
    pub acked: Acked,
    /// Outputs the processor returned, or `None` for a dead letter.
    pub outputs: Option<usize>,
}

/// A message whose outputs are on their way.
struct InFlight {
    /// What to store and report once every delivery succeeded.
    acked: Acked,
    /// Each output with its pending delivery.
    deliveries: Vec<(Record, DeliveryFuture)>,
}

/// A message all of whose outputs are safe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acked {
    /// Input topic, by index into the settings' inputs.
    pub topic: usize,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The input's Kafka timestamp, if any.
    pub kafka_timestamp_ms: Option<i64>,
    /// The event's own time, if the processor gave it.
    pub event_time_ms: Option<i64>,
}

/// Where a shard stores the offsets of acknowledged messages: the group
/// consumer, whose auto-commit (and the commits on revoke and shutdown)
/// then commits them.
pub(crate) trait OffsetStore: Send + Sync {
    /// Marks `offset` of `topic`/`partition` as processed.
    fn store(&self, topic: &str, partition: i32, offset: i64) -> KafkaResult<()>;
}

impl<C: ConsumerContext + 'static> OffsetStore for BaseConsumer<C> {
    fn store(&self, topic: &str, partition: i32, offset: i64) -> KafkaResult<()> {
        self.store_offset(topic, partition, offset)
    }
}

/// What every shard shares.
pub(crate) struct ShardEnv {
    /// The pipeline's settings.
    pub settings: Arc<KafkaSettings>,
    /// The group consumer, for storing offsets.
    pub offsets: Arc<dyn OffsetStore>,
    /// The shared idempotent producer.
    pub producer: crate::context::OutputProducer,
    /// Telemetry.
    pub observer: Arc<dyn PipelineObserver>,
    /// Where each input partition's log ends, from the consumer's statistics.
    pub ends: Arc<Ends>,
    /// Set when the group cannot go on; the consumer loop stops with it.
    pub fatal: Arc<std::sync::Mutex<Option<crate::error::KafkaError>>>,
    /// Under replicated state: state has reached where the group is on
    /// every partition (`Follow::caught_up`; readiness, and joining, wait
    /// for it).
    pub caught_up: Arc<std::sync::atomic::AtomicBool>,
}

/// Starts shard `index` on its own thread.
pub(crate) fn spawn(
    index: usize,
    env: Arc<ShardEnv>,
    processor: Box<dyn Processor>,
    work: mpsc::Receiver<Work>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    on_own_thread(index, move || async move {
        let inbox = Inbox::new(&env, work);
        run(&env, processor, inbox).await
    })
}

/// Runs the loop `shard` makes on a thread named for shard `index`, in a
/// single-threaded tokio runtime of its own (both kinds of shard).
pub(crate) fn on_own_thread<F>(
    index: usize,
    shard: impl FnOnce() -> F + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: std::future::Future<Output = ()>,
{
    std::thread::Builder::new().name(format!("gavel-shard-{index}")).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(shard = index, error = %e, "shard runtime could not start");
                return;
            }
        };
        runtime.block_on(shard());
    })
}

/// The shard's loop: take work while fewer than `max_in_flight` messages
/// await acknowledgement, acknowledging (in order) as deliveries complete.
async fn run(env: &ShardEnv, mut processor: Box<dyn Processor>, mut work: Inbox) {
    let mut in_flight = FuturesOrdered::new();
    let mut fed: Vec<(usize, i32, i64)> = Vec::new();
    let max_in_flight = env.settings.max_in_flight.max(1);
    let mut follow = env.settings.replicated().then(|| Follow::new(TAIL_BYTES));
    loop {
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => acknowledge(env, done),
            next = work.recv(), if in_flight.len() < max_in_flight => match next {
                None => break,
                Some(Job::Message(message)) => {
                    note_fed(&mut fed, &message);
                    if publishes(env, follow.as_mut(), &message, &mut *processor) {
                        let pending = handle(env, &message, &mut *processor).await;
                        in_flight.push_back(settle(env, pending));
                    }
                }
                Some(Job::Follow(following)) => {
                    let Some(follow) = follow.as_mut() else { continue };
                    for produced in self::follow(env, follow, following) {
                        let pending = send(env, produced).await;
                        in_flight.push_back(settle(env, pending));
                    }
                }
                Some(Job::Drain(reply)) => {
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

/// Bytes a held message costs besides its records.
const HELD_OVERHEAD: usize = 96;

/// Whether this member publishes `message`: always, unless under
/// replicated state (`follow`), where one it does not publish is fed into
/// state here, warm or held for its owner (`follow.rs`), both kinds of
/// shard.
pub(crate) fn publishes(
    env: &ShardEnv,
    follow: Option<&mut Follow<Produced>>,
    message: &Consumed,
    processor: &mut dyn Processor,
) -> bool {
    let Some(follow) = follow else { return true };
    let role = follow.role((message.topic, message.partition), message.offset);
    match role {
        Role::Publish => {}
        Role::Warm => warm(env, message, processor),
        Role::Hold => hold(env, follow, message, processor),
    }
    // Only the group's moves (`Following`) can put a member that has
    // caught up behind again.
    if !env.caught_up.load(std::sync::atomic::Ordering::Relaxed) {
        note_caught_up(env, follow);
    }
    role == Role::Publish
}

/// Processes a message another member may publish and keeps its outputs
/// in the partition's tail (`follow.rs`).
fn hold(env: &ShardEnv, follow: &mut Follow<Produced>, message: &Consumed, processor: &mut dyn Processor) {
    let mut holding = Holding(processor);
    let produced = process(&*env.observer, &env.settings, message, &mut holding);
    let size = produced.records.iter().map(Record::size).sum::<usize>() + HELD_OVERHEAD;
    follow.hold((message.topic, message.partition), message.offset, produced, size);
}

/// Carries out one change of what this member publishes and reports it:
/// the held outputs to publish now, before anything else of their
/// partitions (both kinds of shard).
pub(crate) fn follow(env: &ShardEnv, follow: &mut Follow<Produced>, following: Following) -> Vec<Produced> {
    let handed_over = apply(env, follow, following);
    if !handed_over.is_empty() {
        env.observer.handed_over(handed_over.len());
    }
    env.observer.held(follow.held_bytes());
    note_caught_up(env, follow);
    handed_over
}

/// Bytes of held outputs a member keeps, at most, for partitions another
/// member publishes (`follow.rs`): at 300 bytes an event, about 900,000
/// events, many seconds of the group's commits at any rate one member
/// keeps up with.
pub(crate) const TAIL_BYTES: usize = 256 << 20;

/// Carries out one change of what this member publishes, returning the
/// held outputs to publish now; a hand-over gap stops the group.
fn apply(env: &ShardEnv, follow: &mut Follow<Produced>, following: Following) -> Vec<Produced> {
    let mut publish = Vec::new();
    match following {
        Following::Start(lanes) => lanes.into_iter().for_each(|(lane, start)| follow.start(lane, start)),
        Following::Committed(lanes) => lanes.into_iter().for_each(|(lane, offset)| follow.committed(lane, offset)),
        Following::Disown(lanes) => lanes.into_iter().for_each(|lane| follow.disown(lane)),
        Following::Own(lanes) => {
            for (lane, from) in lanes {
                match follow.own(lane, from) {
                    Ok(held) => publish.extend(held),
                    Err(gap) => {
                        let topic = env.settings.inputs[gap.lane.0].name.clone();
                        tracing::error!(
                            topic,
                            partition = gap.lane.1,
                            from = gap.from,
                            lost = gap.lost,
                            "partition taken over below outputs dropped for room"
                        );
                        let error = crate::error::KafkaError::HandOverGap {
                            topic,
                            partition: gap.lane.1,
                            from: gap.from,
                            lost: gap.lost,
                        };
                        lock_fatal(env).get_or_insert(error);
                    }
                }
            }
        }
    }
    publish
}

/// The group's fatal-error slot.
fn lock_fatal(env: &ShardEnv) -> std::sync::MutexGuard<'_, Option<crate::error::KafkaError>> {
    env.fatal.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Publishes whether state has reached where the group is on every partition.
fn note_caught_up(env: &ShardEnv, follow: &Follow<Produced>) {
    let caught_up = follow.caught_up(|lane| match env.ends.get(lane) {
        End::Known { high, .. } | End::Held(Some((_, high))) => Some(high),
        End::Unknown | End::Held(None) => None,
    });
    env.caught_up.store(caught_up, std::sync::atomic::Ordering::Relaxed);
}

/// A processor seen through [`Processor::hold`]: for messages another
/// member may publish, evaluated like any other but counted nowhere.
struct Holding<'a>(&'a mut dyn Processor);

impl Processor for Holding<'_> {
    fn process(&mut self, input: &Input<'_>) -> Processed {
        self.0.hold(input)
    }
}

/// Feeds one message into state only; a panic is the processor's bug and
/// changes nothing here (the message's owner dead-letters it).
fn warm(env: &ShardEnv, message: &Consumed, processor: &mut dyn Processor) {
    let input = message.input(&env.settings);
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| processor.warm(&input))).is_err() {
        env.observer.panicked(&env.settings.inputs[message.topic].name);
    }
}

/// Remembers `message` as the last one of its partition fed into state.
pub(crate) fn note_fed(fed: &mut Vec<(usize, i32, i64)>, message: &Consumed) {
    // A shard owns a handful of partitions: a scan beats hashing.
    match fed.iter_mut().find(|(t, p, _)| *t == message.topic && *p == message.partition) {
        Some(entry) => entry.2 = message.offset,
        None => fed.push((message.topic, message.partition, message.offset)),
    }
}

/// Processes one message and enqueues its outputs (or its dead-letter record).
async fn handle(env: &ShardEnv, message: &Consumed, processor: &mut dyn Processor) -> InFlight {
    let produced = process(&*env.observer, &env.settings, message, processor);
    let outputs = produced.outputs;
    let in_flight = send(env, produced).await;
    report(&*env.observer, &env.settings, message, outputs);
    in_flight
}

/// Enqueues the records of one processed message.
async fn send(env: &ShardEnv, produced: Produced) -> InFlight {
    let mut deliveries = Vec::with_capacity(produced.records.len());
    for mut record in produced.records {
        let delivery = enqueue(env, &mut record, &produced.acked).await;
        deliveries.push((record, delivery));
    }
    InFlight { acked: produced.acked, deliveries }
}

/// Runs the processor on one message: its outputs, or its dead-letter record.
/// A processor that panics dead-letters the message and the shard goes on
/// with the next one: a bug triggered by one message must not stop its
/// partition. The reason does not repeat the panic's message, which may
/// quote the input. A message over `max_input_bytes` is dead-lettered
/// undecoded; a record over the producer's limit (an output, or the
/// dead-letter copy of a large input) is replaced by a dead-letter
/// reference to the input, so nothing is sent that the producer would
/// refuse forever.
pub(crate) fn process(
    observer: &dyn PipelineObserver,
    settings: &KafkaSettings,
    message: &Consumed,
    processor: &mut dyn Processor,
) -> Produced {
    let input = message.input(settings);
    let size = input.payload.len() + input.key.map_or(0, <[u8]>::len);
    let processed = if size > settings.max_input_bytes {
        Processed::DeadLetter(format!(
            "message of {size} bytes is over kafka.max_input_bytes ({})",
            settings.max_input_bytes
        ))
    } else {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| processor.process(&input))).unwrap_or_else(|_| {
            observer.panicked(&settings.inputs[message.topic].name);
            Processed::DeadLetter("processing panicked (a bug in gavel; the log has where)".into())
        })
    };
    let limit = settings.max_output_bytes();
    let (records, outputs, event_time_ms) = match processed {
        Processed::Outputs(Outputs { records, event_time_ms }) => {
            let count = records.len();
            let records = records
                .into_iter()
                .map(|o| {
                    let headers = output_headers(&o.headers, &message.trace);
                    let record = Record { topic: o.topic, key: Some(o.key), payload: o.payload, headers };
                    if record.size() <= limit {
                        return record;
                    }
                    observer.oversized(settings.outputs.name(record.topic));
                    let reason = format!(
                        "its output to {} is {} bytes, over the producer's limit of {limit}",
                        settings.outputs.name(record.topic),
                        record.size()
                    );
                    dead_letter_reference(&input, &message.trace, Some(size), &reason)
                })
                .collect();
            (records, Some(count), event_time_ms)
        }
        Processed::DeadLetter(reason) => {
            let record = dead_letter(&input, &message.trace, &reason);
            let record = if record.size() <= limit {
                record
            } else {
                observer.oversized(settings.outputs.name(OutputTopic::DeadLetter));
                dead_letter_reference(&input, &message.trace, Some(size), &reason)
            };
            (vec![record], None, None)
        }
    };
    let acked = Acked {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        kafka_timestamp_ms: message.timestamp_ms,
        event_time_ms,
    };
    Produced { records, acked, outputs }
}

/// Reports a processed message (`outputs`: how many, `None` for a dead letter)
/// once its records are enqueued.
pub(crate) fn report(
    observer: &dyn PipelineObserver,
    settings: &KafkaSettings,
    message: &Consumed,
    outputs: Option<usize>,
) {
    let topic = &settings.inputs[message.topic].name;
    match outputs {
        Some(count) => observer.processed(topic, message.received.elapsed(), count),
        None => {
            observer.dead_lettered(topic);
            observer.processed(topic, message.received.elapsed(), 0);
        }
    }
}

/// The dead-letter record of `input`: its original key and bytes, with its
/// provenance and `reason` in headers.
fn dead_letter(input: &Input<'_>, trace: &[(String, Vec<u8>)], reason: &str) -> Record {
    // Per message at debug: a burst of bad input must not flood the logs.
    // The count is in `gavel_events_dead_lettered_total` and the periodic
    // stats line; the reason is in the record's headers.
    tracing::debug!(
        topic = input.topic,
        partition = input.partition,
        offset = input.offset,
        error = %reason,
        "event sent to dead-letter topic"
    );
    Record {
        topic: OutputTopic::DeadLetter,
        key: input.key.map(<[u8]>::to_vec),
        payload: input.payload.to_vec(),
        headers: Some(with_trace(dlq_headers(input, reason), trace)),
    }
}

/// An output's own headers, then its input's trace headers; `None` when
/// there are neither.
fn output_headers(own: &[(&'static str, std::sync::Arc<str>)], trace: &[(String, Vec<u8>)]) -> Option<OwnedHeaders> {
    if own.is_empty() && trace.is_empty() {
        return None;
    }
    let headers = own.iter().fold(OwnedHeaders::new_with_capacity(own.len() + trace.len()), |h, (key, value)| {
        h.insert(rdkafka::message::Header { key, value: Some(value.as_bytes()) })
    });
    Some(with_trace(headers, trace))
}

/// `headers` followed by the input's trace headers.
fn with_trace(headers: OwnedHeaders, trace: &[(String, Vec<u8>)]) -> OwnedHeaders {
    trace
        .iter()
        .fold(headers, |h, (key, value)| h.insert(rdkafka::message::Header { key, value: Some(value.as_slice()) }))
}

/// A dead-letter record that stands for `input` without its bytes, for an
/// input or output too large to write: empty key and value, with the
/// source's topic, partition and offset (where the original can be read
/// back while retained), its size in `gavel.source.size` where known, and
/// `reason`.
fn dead_letter_reference(input: &Input<'_>, trace: &[(String, Vec<u8>)], size: Option<usize>, reason: &str) -> Record {
    let mut headers = dlq_headers(input, reason);
    if let Some(size) = size {
        headers = headers.insert(rdkafka::message::Header {
            key: crate::contract::dead_letter::SOURCE_SIZE,
            value: Some(size.to_string().as_str()),
        });
    }
    Record { topic: OutputTopic::DeadLetter, key: None, payload: Vec::new(), headers: Some(with_trace(headers, trace)) }
}

/// Producer errors that sending the same record again cannot fix: the
/// record itself is refused (too large for the producer or the topic, or
/// invalid for it).
fn refuses_record(error: &RdError) -> bool {
    matches!(
        error,
        RdError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::MessageBatchTooLarge
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidMessageSize
        )
    )
}

/// Replaces a record the broker or producer refused with a dead-letter
/// reference to its input (see [`dead_letter_reference`]), unless it is one
/// already: a reference is tiny, so a refusal of it is the dead-letter
/// topic's problem, retried like any other failure.
fn replace_refused(env: &ShardEnv, record: &mut Record, acked: &Acked, error: &RdError) -> bool {
    if record.topic == OutputTopic::DeadLetter && record.payload.is_empty() && record.key.is_none() {
        return false;
    }
    let topic = record.topic_name(&env.settings).to_string();
    env.observer.oversized(&topic);
    let source = &env.settings.inputs[acked.topic];
    let input = Input {
        topic: &source.name,
        partition: acked.partition,
        offset: acked.offset,
        key: None,
        payload: &[],
        timestamp_ms: acked.kafka_timestamp_ms,
        encoding: source.encoding,
    };
    let reason = format!("its output to {topic} ({} bytes) was refused: {error}", record.size());
    warn!(topic = %topic, source = %source.name, partition = acked.partition, offset = acked.offset, error = %error,
        "output refused; dead-lettered as a reference to its input");
    let trace = record.headers.as_ref().map_or_else(Vec::new, |h| named_headers(h, &env.settings.trace_headers));
    *record = dead_letter_reference(&input, &trace, None, &reason);
    true
}

/// Enqueues a record on the producer, waiting while its queue is full and
/// retrying anything else: an output is never dropped. A record the
/// producer refuses outright is replaced by a dead-letter reference.
async fn enqueue(env: &ShardEnv, record: &mut Record, acked: &Acked) -> DeliveryFuture {
    let mut backoff = Backoff::default();
    loop {
        let error = match env.producer.send_result(record.to_send(&env.settings)) {
            Ok(delivery) => return delivery,
            Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            Err((error, _)) => error,
        };
        if refuses_record(&error) && replace_refused(env, record, acked, &error) {
            continue;
        }
        let topic = record.topic_name(&env.settings);
        warn!(topic, error = %error, "output not enqueued; retrying");
        env.observer.delivery_retried(topic);
        backoff.wait().await;
    }
}

/// Waits until every output of a message is acknowledged, sending again any
/// the producer gave up on (after its own retries, e.g. through a long broker
/// outage). Messages settle in consumption order, so a later offset is never
/// stored before an earlier message's outputs are safe.
async fn settle(env: &ShardEnv, pending: InFlight) -> Acked {
    for (mut record, mut delivery) in pending.deliveries {
        let mut backoff = Backoff::default();
        loop {
            let error = match delivery.await {
                Ok(Ok(_)) => break,
                Ok(Err((error, _))) => error,
                Err(_canceled) => RdError::Canceled,
            };
            if !(refuses_record(&error) && replace_refused(env, &mut record, &pending.acked, &error)) {
                let topic = env.settings.outputs.name(record.topic);
                warn!(topic, error = %error, "delivery failed; sending again");
                env.observer.delivery_retried(topic);
                backoff.wait().await;
            }
            delivery = enqueue(env, &mut record, &pending.acked).await;
        }
    }
    pending.acked
}

/// Stores the offset of a message all of whose outputs are safe.
fn acknowledge(env: &ShardEnv, done: Acked) {
    let name = &env.settings.inputs[done.topic].name;
    if let Err(e) = env.offsets.store(name, done.partition, done.offset) {
        // The partition was revoked meanwhile; its new owner reprocesses.
        warn!(topic = %name, partition = done.partition, offset = done.offset, error = %e, "offset not stored");
    }
    env.observer.acknowledged(done.kafka_timestamp_ms, done.event_time_ms);
}
