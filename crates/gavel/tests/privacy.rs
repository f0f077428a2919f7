//! Chat text, card data and secrets never leave gavel except where they
//! came in: canary values are fed through a running `gavel run` (the shipped
//! pack, debug logging) in chat messages, card fields, malformed messages
//! and a librdkafka secret, and then looked for in its logs, `/metrics`,
//! `/stats`, `/v1/rules`, `gavel config print`, every output record, and
//! the dead-letter headers. (A dead-letter record's value is the original
//! message, kept on purpose so that it can be replayed.)

mod support;

use std::time::Duration;

use gavel_model::{Event, Payload, pb};
use gavel_model::{encode_json, timestamp_from_ms};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::FutureRecord;
use support::{Gavel, Setup, eventually, exclusive, producer, shared_brokers};

const CHAT_CANARY: &str = "CANARYCHAT7731";
const CARD_BIN_CANARY: &str = "CANARYBIN4242";
const BAD_CANARY: &str = "CANARYBAD5521";
const TIME_CANARY: &str = "CANARYTIME0001";
const SECRET_CANARY: &str = "CANARYSECRET9911";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn base(n: u32, user: &str) -> Event {
    Event {
        event_id: format!("priv-{n}"),
        occurred_at: Some(timestamp_from_ms(now_ms())),
        user_id: user.into(),
        device_id: Some("dev-shared".into()),
        ip: Some("203.0.113.9".into()),
        ..Default::default()
    }
}

/// Chat that the shipped pack flags (an off-platform payment push), and
/// card payments that trip card testing, all carrying canaries.
fn events() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in 0..6 {
        let mut chat = base(n, "u-chatty");
        chat.payload = Some(Payload::ChatMessageSent(pb::ChatMessageSent {
            message_id: format!("m{n}"),
            show_id: "show-1".into(),
            text: format!("pay me on venmo or zelle, {CHAT_CANARY} cash app"),
        }));
        out.push(encode_json(&chat).unwrap());
    }
    for n in 10..20 {
        let mut pay = base(n, "u-carder");
        pay.payload = Some(Payload::PaymentAttempted(pb::PaymentAttempted {
            payment_id: format!("p{n}"),
            order_id: format!("o{n}"),
            amount: Some(pb::Money { amount_minor: 100, currency: "USD".into() }),
            card: Some(pb::Card {
                fingerprint: format!("fp-{n}"),
                bin: format!("{CARD_BIN_CANARY}{n}"),
                country: "US".into(),
            }),
            seller_id: "s1".into(),
        }));
        out.push(encode_json(&pay).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_stay_out_of_logs_metrics_and_outputs() {
    let _one_at_a_time = exclusive().await;
    let Some(brokers) = shared_brokers() else { return };
    let setup = Setup::new(&brokers, "privacy", 2).await;
    setup.use_shipped_pack();
    // PLAINTEXT ignores SASL settings: the secret is configured but unused.
    let secret = format!("\"sasl.password\" = \"{SECRET_CANARY}\"");
    let (config, admin) = setup.config_with("gavel", None, 2, &secret);
    let log = setup.dir.join("gavel.log");

    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["config", "print", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let printed = String::from_utf8_lossy(&printed.stdout).to_string();
    assert!(printed.contains("sasl.password"), "the option is listed: {printed}");
    assert!(!printed.contains(SECRET_CANARY), "config print shows the secret");

    let gavel = {
        // Debug logging everywhere, librdkafka's included.
        let g = Gavel::start_with_env(&config, admin, &log, &[("GAVEL_LOG", "debug")]);
        assert!(g.until_ready(Duration::from_secs(60)).await.is_some(), "not ready\n{}", g.log_tail());
        g
    };

    let writer = producer(&brokers);
    let mut messages = events();
    messages.push(format!(r#"{{"eventId": "{BAD_CANARY}", "chatMessageSent": {{"text": "{CHAT_CANARY}"#).into_bytes());
    messages.push(
        format!(
            r#"{{"eventId": "priv-bad-time", "userId": "u1", "occurredAt": "{TIME_CANARY}", "chatMessageSent": {{}}}}"#
        )
        .into_bytes(),
    );
    let expected_dlq = 2;
    for payload in &messages {
        let record = FutureRecord::to(&setup.input).key("k").payload(payload);
        writer.send(record, Duration::from_secs(10)).await.unwrap();
    }

    // Read every output back, headers included.
    let reader: BaseConsumer = support::reader_config(&brokers, "privacy-reader").create().unwrap();
    let outputs = setup.outputs.clone();
    reader.subscribe(&[&outputs.signals, &outputs.actions, &outputs.verdicts, &outputs.dlq]).unwrap();
    let mut verdicts = 0;
    let mut dead = Vec::new();
    let mut published = Vec::new();
    let all_in = eventually(Duration::from_secs(60), || {
        while let Some(Ok(m)) = reader.poll(Duration::from_millis(50)) {
            let headers: Vec<String> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| format!("{}={}", h.key, String::from_utf8_lossy(h.value.unwrap_or_default())))
                        .collect()
                })
                .unwrap_or_default();
            if m.topic() == outputs.dlq {
                dead.push(headers.join("\n"));
            } else {
                if m.topic() == outputs.verdicts {
                    verdicts += 1;
                }
                published.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
            }
        }
        verdicts >= messages.len() - expected_dlq && dead.len() >= expected_dlq
    })
    .await;
    assert!(all_in, "{verdicts} verdicts, {} dead letters\n{}", dead.len(), gavel.log_tail());
    assert!(published.len() > verdicts, "no rule fired: the output check proves little");

    let scraped: Vec<String> = ["/metrics", "/stats", "/v1/rules"].iter().filter_map(|p| gavel.fetch(p)).collect();
    assert_eq!(scraped.len(), 3, "admin endpoint answered");
    // Metric labels come from fixed small sets: no entity id is a label value.
    for id in ["u-chatty", "u-carder", "dev-shared", "203.0.113.9", "show-1", "fp-10"] {
        assert!(!scraped[0].contains(id), "entity id {id} in /metrics");
    }
    let mut gavel = gavel;
    let (status, _) = gavel.terminate(Duration::from_secs(20)).expect("exits");
    assert!(status.success());
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("dead-letter"), "the bad messages were logged (without their contents)");

    let canaries = [CHAT_CANARY, CARD_BIN_CANARY, BAD_CANARY, TIME_CANARY, SECRET_CANARY];
    let places =
        [("logs", vec![logs]), ("admin endpoint", scraped), ("outputs", published), ("dead-letter headers", dead)];
    for (place, texts) in &places {
        for canary in canaries {
            assert!(!texts.iter().any(|t| t.contains(canary)), "{canary} found in {place}");
        }
    }
    eprintln!(
        "privacy: 5 canaries, {} messages, none in logs, metrics, outputs or dead-letter headers",
        messages.len()
    );
}

/// A Kafka option librdkafka refuses (a misspelt name, an unsupported
/// one) stops start-up naming the option, never its value: the value may
/// be a secret resolved from `env:` or `file:`. Needs no broker: the
/// client is refused before it connects.
#[test]
fn a_refused_option_is_named_without_its_secret_value() {
    let dir = std::env::temp_dir().join(format!("gavel-privacy-option-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pack = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    for option in ["sasl.passwrod", "sasl.oauthbearer.client.secret.typo"] {
        let config = dir.join("gavel.toml");
        let text = format!(
            "pack = {pack:?}\nadmin_addr = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"127.0.0.1:1\"\n\
             [kafka.options]\n\"{option}\" = \"env:GAVEL_PRIVACY_SECRET\"\n\
             [[inputs]]\ntopic = \"marketplace.bids\"\nencoding = \"json\"\n",
            pack = pack.display().to_string(),
        );
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gavel"))
            .args(["run", "--config"])
            .arg(&config)
            .env("GAVEL_PRIVACY_SECRET", SECRET_CANARY)
            .output()
            .unwrap();
        let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "gavel started with a refused option:\n{printed}");
        assert!(printed.contains(option), "the error names the option:\n{printed}");
        assert!(!printed.contains(SECRET_CANARY), "the error shows the secret:\n{printed}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
