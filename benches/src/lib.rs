//! Shared set-up for gavel's benchmarks: the shipped rule pack and a
//! pre-generated, pre-encoded slice of simulated marketplace traffic, so the
//! timed loops measure gavel and not the simulator.

pub mod broker;

use gavel_model::{Encoding, encode_json, encode_protobuf};
use gavel_rules::Pack;
use gavel_sim::{SimConfig, Simulator};

/// The shipped pack, `rules/`.
pub fn shipped_pack() -> Pack {
    // The shipped pack is checked by the test suite; failing here is a bug.
    gavel::tools::pack::shipped().expect("shipped pack compiles")
}

/// A pack of `n` rules in the style of the shipped ones (velocity
/// thresholds, keyword scans, field tests), for compile-time benchmarks.
pub fn synthetic_pack_files(n: usize) -> Vec<(String, String)> {
    let mut text =
        String::from("version: \"bench\"\nlists:\n  - name: words\n    items: [venmo, zelle, \"dm me\"]\nfeatures:\n");
    for f in 0..10 {
        text.push_str(&format!(
            "  - name: f{f}\n    on: [bid_placed, chat_message_sent]\n    key: event.user_id\n    window: {}s\n    aggregate: count\n",
            10 * (f + 1)
        ));
    }
    text.push_str("rules:\n");
    for r in 0..n {
        let when = match r % 3 {
            0 => format!("features.f{} > {} && event.kind == 'bid_placed'", r % 10, r % 50),
            1 => "lists.words.exists(k, event.chat_message_sent.text.lowerAscii().contains(k))".to_string(),
            _ => format!("event.chat_message_sent.text.matches('^spam{r}[0-9]+$') || size(event.user_id) > {}", r % 40),
        };
        let on = if r % 3 == 0 { "bid_placed" } else { "chat_message_sent" };
        text.push_str(&format!(
            "  - id: r{r}\n    description: synthetic rule {r}\n    on: [{on}]\n    when: \"{when}\"\n    score: 10\n"
        ));
    }
    vec![("bench/pack.yaml".to_string(), text)]
}

/// `n` simulated events encoded as `encoding`, with the default seed.
pub fn encoded_events(n: usize, encoding: Encoding) -> Vec<Vec<u8>> {
    Simulator::new(SimConfig::default())
        .take(n)
        .map(|e| match encoding {
            Encoding::Protobuf => encode_protobuf(&e.event),
            // Simulated events always serialize.
            Encoding::Json => encode_json(&e.event).expect("simulated events encode"),
        })
        .collect()
}

/// Produces `n` simulated events (protobuf, keyed by user) to `topic`, as
/// fast as the broker takes them, and waits for every acknowledgement.
pub async fn preload(brokers: &str, topic: &str, n: usize) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "20").create()?;
    let mut pending = Vec::with_capacity(n);
    for sim in Simulator::new(SimConfig::default()).take(n) {
        let payload = encode_protobuf(&sim.event);
        let mut record = FutureRecord::to(topic).key(&sim.event.user_id).payload(&payload);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => break pending.push(delivery),
                Err((_, back)) => {
                    record = back;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        }
    }
    for delivery in pending {
        if let Ok(Err((e, _))) = delivery.await {
            return Err(e);
        }
    }
    Ok(())
}
