//! Exactly-once shards (`KafkaSettings::exactly_once`): each shard produces
//! through its own transactional producer and commits its input offsets
//! inside the same transaction, so a message's outputs and the advance of
//! its offset become visible together or not at all.
//!
//! - **Transactional ids.** `<group>.<instance>.shard-<n>`, where
//!   `<instance>` is the static membership id (`instance_id`) when there is
//!   one, so a restarted instance reuses its ids: `init_transactions` then
//!   aborts whatever its crashed predecessor left open and fences any
//!   zombie of it. Without an instance id it is a per-process token, and a
//!   crash leaves its open transaction to the broker's
//!   `transaction.timeout.ms` (10 s unless configured).
//! - **Fencing across rebalances** (KIP-447): the offsets go to the
//!   transaction with the group consumer's current group metadata
//!   (`send_offsets_to_transaction`), so a shard whose partitions moved to
//!   another member, or whose member was fenced, cannot commit: its
//!   transaction aborts and the new owner processes those messages.
//! - **Batching.** A transaction is opened by the first message after a
//!   commit and committed once it has been open `transaction_interval`
//!   (100 ms) or holds `max_in_flight` messages, and whenever the consumer
//!   drains the shard (before partitions are given up, and at shutdown).
//! - **Failures.** The records of the open transaction are kept until it
//!   commits. A retriable failure retries the step; an abortable one aborts
//!   and sends the same records again in a new transaction (nothing is
//!   processed twice); a fatal one (the producer fenced) rebuilds the
//!   producer and does the same; a lost group membership aborts and drops
//!   the batch, whose messages the partitions' next owner processes.
//!
//! What this module does not do: route, pause or warm up (`context.rs`), or
//! anything of the at-least-once path (`shard.rs`), whose message →
//! records step it reuses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata};
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::Producer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::context::{OutputProducer, ProducerContext};
use crate::contract::Processor;
use crate::detached::Consumed;
use crate::follow::Follow;
use crate::settings::KafkaSettings;
use crate::shard::{self, Acked, Drained, Inbox, Job, Record, ShardEnv, Work};

/// Where a shard gets the group consumer's current group metadata (member
/// id, generation), which fences its offset commits.
pub(crate) trait GroupMetadata: Send + Sync {
    /// The metadata now, or `None` if the consumer is in no group.
    fn metadata(&self) -> Option<ConsumerGroupMetadata>;
}

impl<C: ConsumerContext + 'static> GroupMetadata for BaseConsumer<C> {
    fn metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.group_metadata()
    }
}

/// What every exactly-once shard shares.
pub(crate) struct TxnEnv {
    /// Settings, observer (the shared producer is not used here).
    pub shard: Arc<ShardEnv>,
    /// The group consumer.
    pub group: Arc<dyn GroupMetadata>,
    /// Names this process in transactional ids when there is no instance id.
    pub process: String,
}

/// A token unique to this process, for transactional ids without an instance id.
pub(crate) fn process_token() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("p{}-{nanos:x}-{}", std::process::id(), CALLS.fetch_add(1, Ordering::Relaxed))
}

/// The `transactional.id` of shard `index`: stable across restarts when the
/// settings carry an instance id, unique to this process otherwise.
pub(crate) fn transactional_id(settings: &KafkaSettings, process: &str, index: usize) -> String {
    let instance = settings.instance_id.as_deref().unwrap_or(process);
    format!("{}.{instance}.shard-{index}", settings.group_id)
}

/// Starts exactly-once shard `index` on its own thread.
pub(crate) fn spawn(
    index: usize,
    env: Arc<TxnEnv>,
    processor: Box<dyn Processor>,
    work: mpsc::Receiver<Work>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    crate::shard::on_own_thread(index, move || async move {
        let inbox = Inbox::new(&env.shard, work);
        run(&env, index, processor, inbox).await
    })
}

/// The shard's loop: add messages to the open transaction, committing it on
/// its time or size bound and whenever asked to drain.
async fn run(env: &TxnEnv, index: usize, mut processor: Box<dyn Processor>, mut work: Inbox) {
    let Some(mut shard) = TxnShard::start(env, index).await else { return };
    let settings = &env.shard.settings;
    let limit = settings.max_in_flight.max(1);
    let mut fed: Vec<(usize, i32, i64)> = Vec::new();
    let mut follow = settings.replicated().then(|| Follow::new(shard::TAIL_BYTES));
    loop {
        let due = shard.batch.opened.map(|opened| opened + settings.transaction_interval);
        let due_at = tokio::time::Instant::from_std(due.unwrap_or_else(Instant::now));
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(due_at), if due.is_some() => shard.commit(false).await,
            next = work.recv() => match next {
                None => break,
                Some(Job::Message(message)) => {
                    shard::note_fed(&mut fed, &message);
                    if shard::publishes(&env.shard, follow.as_mut(), &message, &mut *processor) {
                        shard.take(&message, &mut *processor).await;
                    }
                    if shard.batch.acked.len() >= limit {
                        shard.commit(false).await;
                    }
                }
                Some(Job::Follow(following)) => {
                    let Some(follow) = follow.as_mut() else { continue };
                    // Held outputs go out in the next transaction, with
                    // their offsets: exactly once across the hand-over.
                    for produced in shard::follow(&env.shard, follow, following) {
                        shard.add(produced).await;
                    }
                }
                Some(Job::Drain(reply)) => {
                    shard.commit(false).await;
                    // The consumer thread may have given up waiting; nothing to do then.
                    let _ = reply.send(Drained { fed: fed.clone() });
                }
            }
        }
    }
    shard.commit(false).await;
}

/// The messages of the open transaction.
#[derive(Default)]
struct Batch {
    /// Every record sent in it, kept to be sent again after an abort.
    records: Vec<Record>,
    /// Its messages, reported once it commits.
    acked: Vec<Acked>,
    /// The offset to commit per partition: (input topic, partition, next offset).
    next: Vec<(usize, i32, i64)>,
    /// When it was opened; `None` when no transaction is open.
    opened: Option<Instant>,
}

/// What a failed transactional step calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// Do the step again.
    Retry,
    /// Abort, then send the batch again in a new transaction.
    Abort,
    /// Replace the producer (fatal error, e.g. fenced), then send again.
    Rebuild,
    /// The group moved on without this member: abort and drop the batch.
    Lost,
}

/// Why a transactional step failed.
#[derive(Debug)]
enum Failure {
    /// A client call failed.
    Kafka(RdError),
    /// The consumer has no group metadata to commit with.
    NoGroup,
}

impl From<RdError> for Failure {
    fn from(error: RdError) -> Self {
        Failure::Kafka(error)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Kafka(error) => error.fmt(f),
            Failure::NoGroup => f.write_str("the consumer has no group metadata"),
        }
    }
}

/// Classifies a failure; `fatal` says whether the producer reports a fatal
/// error (which outranks whatever the step returned).
fn classify(failure: &Failure, fatal: bool) -> Recovery {
    let error = match failure {
        _ if fatal => return Recovery::Rebuild,
        Failure::NoGroup => return Recovery::Lost,
        Failure::Kafka(RdError::Transaction(error)) => error,
        Failure::Kafka(_) => return Recovery::Abort,
    };
    let lost = matches!(
        error.code(),
        RDKafkaErrorCode::IllegalGeneration | RDKafkaErrorCode::UnknownMemberId | RDKafkaErrorCode::FencedInstanceId
    );
    if error.is_fatal() {
        Recovery::Rebuild
    } else if lost {
        Recovery::Lost
    } else if error.txn_requires_abort() {
        Recovery::Abort
    } else if error.is_retriable() {
        Recovery::Retry
    } else {
        Recovery::Abort
    }
}

/// One shard's transactional producer and open transaction.
struct TxnShard<'a> {
    /// What every shard shares.
    env: &'a TxnEnv,
    /// The shard's index.
    index: usize,
    /// Its `transactional.id`.
    id: String,
    /// The producer, initialised for transactions.
    producer: OutputProducer,
    /// The open transaction.
    batch: Batch,
}

impl<'a> TxnShard<'a> {
    /// Creates and initialises the shard's producer, retrying until the
    /// broker accepts; `None` if the configuration is unusable.
    async fn start(env: &'a TxnEnv, index: usize) -> Option<TxnShard<'a>> {
        let id = transactional_id(&env.shard.settings, &env.process, index);
        let producer = match Self::producer(env, &id).await {
            Ok(producer) => producer,
            Err(e) => {
                error!(shard = index, transactional_id = %id, error = %e, "transactional producer not created");
                return None;
            }
        };
        info!(shard = index, transactional_id = %id, "transactional producer ready");
        Some(TxnShard { env, index, id, producer, batch: Batch::default() })
    }

    /// A new producer for `id` with transactions initialised (which aborts
    /// what an earlier producer with this id left open, and fences it).
    /// Only creating the client can fail; initialising is retried.
    async fn producer(env: &TxnEnv, id: &str) -> Result<OutputProducer, RdError> {
        let settings = &env.shard.settings;
        let mut backoff = Backoff::default();
        loop {
            let context = ProducerContext::default();
            context.observe(Arc::clone(&env.shard.observer));
            let producer: OutputProducer = settings.transactional_producer_config(id).create_with_context(context)?;
            match producer.init_transactions(settings.shutdown_timeout) {
                Ok(()) => return Ok(producer),
                Err(e) => warn!(transactional_id = %id, error = %e, "init_transactions failed; retrying"),
            }
            backoff.wait().await;
        }
    }

    /// Processes `message` into the open transaction (opening one if none
    /// is), recovering at once if a record cannot be sent.
    async fn take(&mut self, message: &Consumed, processor: &mut dyn Processor) {
        let settings = &self.env.shard.settings;
        let produced = shard::process(&*self.env.shard.observer, settings, message, processor);
        let outputs = produced.outputs;
        self.add(produced).await;
        shard::report(&*self.env.shard.observer, settings, message, outputs);
    }

    /// Adds one processed message's records and offset to the open
    /// transaction (opening one if none is), recovering at once if a
    /// record cannot be sent.
    async fn add(&mut self, produced: shard::Produced) {
        let mut failed = None;
        if self.batch.opened.is_none() {
            failed = self.producer.begin_transaction().err().map(Failure::Kafka);
            self.batch.opened = Some(Instant::now());
        }
        for record in produced.records {
            if failed.is_none() {
                failed = self.send(&record).await.err();
            }
            self.batch.records.push(record);
        }
        let Acked { topic, partition, offset, .. } = produced.acked;
        self.batch.acked.push(produced.acked);
        match self.batch.next.iter_mut().find(|(t, p, _)| *t == topic && *p == partition) {
            Some(entry) => entry.2 = offset + 1,
            None => self.batch.next.push((topic, partition, offset + 1)),
        }
        if let Some(failure) = failed {
            // A record missing from the transaction must never commit: start over.
            warn!(shard = self.index, error = %failure, "output not enqueued in the transaction");
            self.recover(Recovery::Abort).await;
            self.commit(true).await;
        }
    }

    /// Enqueues one record on the producer, waiting while its queue is full.
    async fn send(&self, record: &Record) -> Result<(), Failure> {
        loop {
            match self.producer.send_result(record.to_send(&self.env.shard.settings)) {
                // Delivery is checked by commit_transaction, which fails if any record failed.
                Ok(_delivery) => return Ok(()),
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }

    /// Commits the open transaction, if any, with its offsets; `resend`
    /// first opens a new transaction with the batch's records (after an
    /// abort). Retries until it commits or the group has moved on.
    async fn commit(&mut self, mut resend: bool) {
        if self.batch.opened.is_none() {
            return;
        }
        let mut backoff = Backoff::default();
        loop {
            let step = if resend { self.resend().await } else { Ok(()) };
            let step = step.inspect(|()| resend = false).and_then(|()| self.finish());
            let Err(failure) = step else { break };
            let recovery = classify(&failure, self.producer.client().fatal_error().is_some());
            warn!(
                shard = self.index,
                transactional_id = %self.id,
                messages = self.batch.acked.len(),
                error = %failure,
                ?recovery,
                "transaction not committed"
            );
            self.env.shard.observer.commit_failed();
            if recovery == Recovery::Lost {
                self.recover(Recovery::Abort).await;
                self.batch = Batch::default();
                return;
            }
            resend |= self.recover(recovery).await;
            backoff.wait().await;
        }
        let observer = &self.env.shard.observer;
        for acked in std::mem::take(&mut self.batch).acked {
            observer.acknowledged(acked.kafka_timestamp_ms, acked.event_time_ms);
        }
    }

    /// Carries out `recovery`; returns whether the batch must be sent again.
    async fn recover(&mut self, recovery: Recovery) -> bool {
        match recovery {
            Recovery::Retry | Recovery::Lost => false,
            Recovery::Abort => {
                if let Err(e) = self.producer.abort_transaction(self.env.shard.settings.shutdown_timeout) {
                    warn!(shard = self.index, error = %e, "abort failed; rebuilding the producer");
                    self.rebuild().await;
                }
                true
            }
            Recovery::Rebuild => {
                self.rebuild().await;
                true
            }
        }
    }

    /// Replaces the producer with a new one for the same id (the old one's
    /// open transaction is aborted by the new one's `init_transactions`).
    async fn rebuild(&mut self) {
        match Self::producer(self.env, &self.id).await {
            Ok(producer) => self.producer = producer,
            // The same configuration created the first one: not expected.
            Err(e) => error!(shard = self.index, error = %e, "transactional producer not rebuilt"),
        }
    }

    /// Opens a new transaction with every record of the batch.
    async fn resend(&self) -> Result<(), Failure> {
        self.producer.begin_transaction()?;
        for record in &self.batch.records {
            self.send(record).await?;
        }
        if let Some(first) = self.batch.records.first() {
            self.env.shard.observer.delivery_retried(first.topic_name(&self.env.shard.settings));
        }
        Ok(())
    }

    /// Adds the batch's offsets to the transaction and commits it.
    fn finish(&self) -> Result<(), Failure> {
        let settings = &self.env.shard.settings;
        let metadata = self.env.group.metadata().ok_or(Failure::NoGroup)?;
        let mut offsets = TopicPartitionList::new();
        for &(topic, partition, next) in &self.batch.next {
            offsets.add_partition_offset(&settings.inputs[topic].name, partition, Offset::Offset(next))?;
        }
        self.producer.send_offsets_to_transaction(&offsets, &metadata, settings.shutdown_timeout)?;
        self.producer.commit_transaction(settings.shutdown_timeout)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactional_ids_are_stable_with_an_instance_id_and_unique_without() {
        let mut settings = KafkaSettings::new("b", "risk", vec![]);
        let (a, b) = (process_token(), process_token());
        assert_ne!(transactional_id(&settings, &a, 0), transactional_id(&settings, &b, 0));
        assert_ne!(transactional_id(&settings, &a, 0), transactional_id(&settings, &a, 1));
        settings.instance_id = Some("gavel-3".into());
        assert_eq!(transactional_id(&settings, &a, 1), "risk.gavel-3.shard-1");
        assert_eq!(transactional_id(&settings, &b, 1), "risk.gavel-3.shard-1");
    }

    #[test]
    fn failures_outside_a_transaction_call_abort_and_a_lost_group_drops() {
        assert_eq!(classify(&Failure::NoGroup, false), Recovery::Lost);
        assert_eq!(classify(&Failure::Kafka(RdError::Canceled), false), Recovery::Abort);
        assert_eq!(classify(&Failure::Kafka(RdError::Canceled), true), Recovery::Rebuild);
        assert_eq!(classify(&Failure::NoGroup, true), Recovery::Rebuild);
    }
}
