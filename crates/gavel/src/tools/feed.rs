//! The one producer of simulated traffic into Kafka, for `gavel sim
//! --brokers` and the demo: events from an iterator, each to its topic of
//! the default layout ([`gavel_sim::topic_for`]) keyed by its acting
//! account, encoded per topic, paced to a rate (or unpaced), until the
//! events run out or `stop` fires.
//!
//! # Delivery semantics
//!
//! **A full local queue waits; it never drops.** When librdkafka's local
//! queue is full (the broker is slower than the rate, or away), the feed
//! waits [`QUEUE_FULL_WAIT`] and offers the same event again, until it is
//! queued or `stop` fires. The feed then falls behind its rate instead of
//! thinning the stream: simulated traffic with holes would change what the
//! rules see (a bidding war missing bids, a takeover missing a step), and
//! a ground truth written beside it would name events that never arrived.
//! [`FeedReport::queue_full_waits`] counts the waits.
//!
//! Pacing follows a schedule (event `n` is due `n / rate` seconds after the
//! start, sent in batches of 10 ms worth), so after a stall the feed catches
//! up to its rate, and the event times the simulator gave (`1 / rate`
//! apart) stay near the wall clock.
//!
//! Every queued event is delivered or the feed fails: deliveries are
//! awaited every few thousand events and at the end, and the first failed
//! one is the feed's error. Whether a retried send can duplicate a message
//! is the producer config's business (`enable.idempotence`). An error other
//! than a full queue (a message too large, a bad topic) fails the feed at
//! once. When `stop` fires the event in hand is not sent and not reported;
//! those already queued are still awaited.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::Context;
use gavel_model::{Encoding, Event, encode_json, encode_protobuf};
use gavel_sim::{SimEvent, topic_for};
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// How long the feed waits before offering an event to a full local queue
/// again.
pub const QUEUE_FULL_WAIT: Duration = Duration::from_millis(5);

/// Deliveries outstanding before the feed stops to await them.
const MAX_PENDING: usize = 10_000;

/// What [`FeedOptions::undecodable_every`] sends, and where.
const UNDECODABLE: &[u8] = b"\xffnot an event";
const UNDECODABLE_TOPIC: &str = "marketplace.bids";

/// How fast the feed sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// This many events per second of wall-clock time.
    PerSecond(f64),
    /// As fast as the producer queues them.
    Unpaced,
}

/// How the feed encodes the events of each topic.
#[derive(Debug, Clone, Copy)]
pub enum Encodings {
    /// Every topic in one encoding.
    All(Encoding),
    /// Each topic's encoding from its name.
    PerTopic(fn(&str) -> Encoding),
}

impl Encodings {
    fn of(self, topic: &str) -> Encoding {
        match self {
            Encodings::All(encoding) => encoding,
            Encodings::PerTopic(of) => of(topic),
        }
    }
}

/// What [`feed`] sends, and how fast.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// The rate.
    pub pace: Pace,
    /// The encoding per topic.
    pub encodings: Encodings,
    /// After every this many events, one message that is not an event (to
    /// `marketplace.bids`), to show the dead-letter path; `None` for none.
    pub undecodable_every: Option<u64>,
}

/// What a feed sent; every message counted here was delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedReport {
    /// Events delivered.
    pub events: u64,
    /// Undecodable messages delivered ([`FeedOptions::undecodable_every`]).
    pub undecodable: u64,
    /// Times a send found the local queue full and waited.
    pub queue_full_waits: u64,
}

/// The producer config both callers start from: `bootstrap.servers` and a
/// 5 ms linger, so that a paced batch leaves as a few requests.
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("linger.ms", "5");
    config
}

/// Sends `events` to Kafka through a producer made from `config`, as the
/// [module docs](self) say, calling `on_queued` with each event once it is
/// queued (`gavel sim` writes its ground truth there). Returns when the
/// events run out or `stop` fires, once every queued message is delivered.
pub async fn feed(
    config: &ClientConfig,
    options: &FeedOptions,
    events: impl IntoIterator<Item = SimEvent>,
    stop: impl Future<Output = ()>,
    mut on_queued: impl FnMut(&SimEvent) -> anyhow::Result<()>,
) -> anyhow::Result<FeedReport> {
    // Through gavel's error: it names a rejected option without its value.
    let producer: FutureProducer =
        config.create().map_err(gavel_kafka::KafkaError::from).context("creating the Kafka producer")?;
    let mut events = events.into_iter().peekable();
    let mut stop = std::pin::pin!(stop);
    let mut report = FeedReport::default();
    let mut pending = Vec::new();
    let started = Instant::now();
    'feed: while events.peek().is_some() {
        if !wait_turn(options.pace, started, report.events, &mut stop).await {
            break;
        }
        for sim_event in events.by_ref().take(batch(options.pace)) {
            let event = &sim_event.event;
            let topic = topic_for(event.kind().context("simulated events have a payload")?);
            let payload = encode(options.encodings.of(topic), event)?;
            let record = FutureRecord::to(topic).key(event.user_id.as_bytes()).payload(payload.as_slice());
            let Some(delivery) = queue(&producer, record, &mut stop, &mut report).await? else { break 'feed };
            pending.push(delivery);
            on_queued(&sim_event)?;
            report.events += 1;
            if options.undecodable_every.is_some_and(|n| n > 0 && report.events.is_multiple_of(n)) {
                let record = FutureRecord::<[u8], [u8]>::to(UNDECODABLE_TOPIC).payload(UNDECODABLE);
                let Some(delivery) = queue(&producer, record, &mut stop, &mut report).await? else { break 'feed };
                pending.push(delivery);
                report.undecodable += 1;
            }
        }
        if pending.len() > MAX_PENDING {
            delivered(&mut pending).await?;
        }
    }
    delivered(&mut pending).await?;
    Ok(report)
}

/// Events per paced batch: 10 ms worth, at least one; unpaced, enough that
/// checking `stop` between batches costs nothing.
fn batch(pace: Pace) -> usize {
    match pace {
        Pace::PerSecond(rate) => ((rate / 100.0).ceil() as usize).max(1),
        Pace::Unpaced => 1_000,
    }
}

/// Waits until event `sent` is due; `false` if `stop` fired first.
async fn wait_turn<F: Future<Output = ()>>(pace: Pace, started: Instant, sent: u64, stop: &mut Pin<&mut F>) -> bool {
    match pace {
        Pace::PerSecond(rate) => {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => true,
                () = stop.as_mut() => false,
            }
        }
        // Let other tasks run between batches, and see `stop` if it fired.
        Pace::Unpaced => tokio::select! {
            biased;
            () = stop.as_mut() => false,
            () = tokio::task::yield_now() => true,
        },
    }
}

fn encode(encoding: Encoding, event: &Event) -> anyhow::Result<Vec<u8>> {
    Ok(match encoding {
        Encoding::Protobuf => encode_protobuf(event),
        Encoding::Json => encode_json(event)?,
    })
}

/// Queues `record`; while the local queue is full, waits and offers it
/// again (never drops: see the module docs). `None` if `stop` fired first.
async fn queue<F: Future<Output = ()>>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
    stop: &mut Pin<&mut F>,
    report: &mut FeedReport,
) -> anyhow::Result<Option<DeliveryFuture>> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(Some(delivery)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                report.queue_full_waits += 1;
                tokio::select! {
                    () = tokio::time::sleep(QUEUE_FULL_WAIT) => {}
                    () = stop.as_mut() => return Ok(None),
                }
            }
            Err((error, _)) => return Err(error).context("queueing a simulated event"),
        }
    }
}

/// Awaits every pending delivery; the first that failed is the error.
async fn delivered(pending: &mut Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for delivery in pending.drain(..) {
        delivery.await.context("delivery canceled")?.map_err(|(e, _)| e).context("delivering a simulated event")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gavel_sim::{MARKETPLACE_TOPICS, SimConfig, Simulator};
    use rdkafka::mocking::MockCluster;

    use super::*;

    fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
        let cluster = MockCluster::new(1).unwrap();
        for topic in MARKETPLACE_TOPICS {
            cluster.create_topic(topic, 2, 1).unwrap();
        }
        cluster
    }

    fn options(pace: Pace, undecodable_every: Option<u64>) -> FeedOptions {
        FeedOptions { pace, encodings: Encodings::All(Encoding::Protobuf), undecodable_every }
    }

    #[tokio::test]
    async fn a_full_queue_waits_and_every_event_is_delivered() {
        let cluster = cluster();
        let mut config = producer_config(&cluster.bootstrap_servers());
        // A queue of ten messages: the feed finds it full again and again.
        config.set("queue.buffering.max.messages", "10");
        let events = Simulator::new(SimConfig::default()).take(3_000);
        let mut queued = Vec::new();
        let report = feed(&config, &options(Pace::Unpaced, Some(1_000)), events, std::future::pending(), |e| {
            queued.push(e.event.event_id.clone());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(report.events, 3_000);
        assert_eq!(report.undecodable, 3);
        assert!(report.queue_full_waits > 0, "{report:?}");
        let expected: Vec<String> = (1..=3_000).map(|i| format!("sim-7-{i}")).collect();
        assert_eq!(queued, expected, "every event queued once, in order");
    }

    #[tokio::test]
    async fn a_paced_feed_keeps_its_rate_and_stops_when_told() {
        let cluster = cluster();
        let config = producer_config(&cluster.bootstrap_servers());
        let started = Instant::now();
        let events = Simulator::new(SimConfig::default()).take(200);
        let report =
            feed(&config, &options(Pace::PerSecond(1_000.0), None), events, std::future::pending(), |_| Ok(()))
                .await
                .unwrap();
        assert_eq!(report.events, 200);
        // 200 events at 1,000/s: the last batch is due at 190 ms.
        assert!(started.elapsed() >= Duration::from_millis(190), "{:?}", started.elapsed());

        // The simulator first: setting up its shows takes a while.
        let events = Simulator::new(SimConfig::default());
        let stop = tokio::time::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let report = feed(&config, &options(Pace::PerSecond(1_000.0), None), events, stop, |_| Ok(())).await.unwrap();
        let ms = started.elapsed().as_millis() as u64;
        // Never ahead of the schedule (one event a millisecond, a batch of
        // ten at a time), however late a loaded machine fires the stop.
        assert!((10..=ms + 10).contains(&report.events), "{report:?} in {ms} ms");
    }
}
