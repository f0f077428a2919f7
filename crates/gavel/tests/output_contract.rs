//! The output contract on a real broker: every signal, action and verdict
//! carries its content type, schema name and pack version, and the input's
//! trace headers; each encoding (protobuf, proto3 JSON, the Confluent
//! Schema Registry framing) reads back with its standard decoder. The
//! registry is a small in-test HTTP server speaking the registry's API.

mod support;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gavel::runtime::ServeOptions;
use gavel::runtime::encoding::OutputFormat;
use gavel::runtime::registry::Registry;
use gavel::runtime::reload::Rules;
use gavel::telemetry::Stats;
use gavel_engine::Engine;
use gavel_model::Encoding;
use gavel_model::pb::{AutoAction, RiskSignal, Verdict};
use gavel_rules::Pack;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One record read back: its headers and value.
struct Read {
    headers: HashMap<String, String>,
    value: Vec<u8>,
}

/// Runs gavel with `format` over three bids by one user (the third fires
/// the rule and blocks the bid) and one undecodable message, all carrying
/// a trace context, and returns what each output topic received.
async fn run_with(name: &str, format: OutputFormat) -> Option<HashMap<&'static str, Vec<Read>>> {
    let brokers = support::shared_brokers()?;
    let setup = support::Setup::new(&brokers, name, 1).await;
    let producer = support::producer(&brokers);
    for n in 0..4u64 {
        let payload = if n == 3 { b"{not json".to_vec() } else { support::bid(n, "alice") };
        let headers = OwnedHeaders::new()
            .insert(Header { key: "traceparent", value: Some(TRACEPARENT) })
            .insert(Header { key: "X-Request-Id", value: Some(format!("req-{n}").as_str()) })
            .insert(Header { key: "unrelated", value: Some("x") });
        producer
            .send(
                FutureRecord::to(&setup.input).key("alice").payload(&payload).headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let mut settings = setup.settings();
    settings.trace_headers = vec!["traceparent".into(), "x-request-id".into()];
    let pack = std::fs::read_to_string(setup.dir.join("pack/pack.yaml")).unwrap();
    let rules = Rules::new(Engine::new(Pack::compile([("pack.yaml", pack.as_str())]).unwrap()), None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions { shards: 1, emit: gavel::runtime::Emit { verdicts: true, shadow: false }, format };
    let gavel = tokio::spawn(gavel::runtime::serve(
        settings,
        rules,
        Arc::new(Stats::default()),
        options,
        Arc::new(AtomicBool::new(false)),
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut read = HashMap::new();
    for (label, topic, expected) in [
        ("signals", &setup.outputs.signals, 1),
        ("actions", &setup.outputs.actions, 1),
        ("verdicts", &setup.outputs.verdicts, 3),
        ("dlq", &setup.outputs.dlq, 1),
    ] {
        read.insert(label, read_records(&brokers, topic, expected).await);
    }
    stop_tx.send(()).unwrap();
    gavel.await.unwrap().expect("gavel shuts down cleanly");
    Some(read)
}

async fn read_records(brokers: &str, topic: &str, count: usize) -> Vec<Read> {
    let consumer: StreamConsumer = support::reader_config(brokers, "contract-reader").create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < count {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("{count} records on {topic} within 60 s, got {}", out.len()))
            .unwrap();
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Read { headers, value: m.payload().unwrap_or_default().to_vec() });
    }
    out
}

/// Every output names its encoding, schema and pack, and carries the
/// configured trace headers (any case) but no others.
fn assert_headers(read: &HashMap<&str, Vec<Read>>, content_type: &str) {
    for (label, schema) in
        [("signals", "gavel.v1.RiskSignal"), ("actions", "gavel.v1.AutoAction"), ("verdicts", "gavel.v1.Verdict")]
    {
        for record in &read[label] {
            let h = &record.headers;
            assert_eq!(h["content-type"], content_type, "{label}: {h:?}");
            assert_eq!(h["gavel.schema"], schema, "{label}");
            assert_eq!(h["gavel.pack.version"], "resilience-1", "{label}");
            assert_eq!(h["traceparent"], TRACEPARENT, "{label}");
            assert!(h["X-Request-Id"].starts_with("req-"), "{label}: {h:?}");
            assert!(!h.contains_key("unrelated"), "{label}: only the configured headers are copied");
        }
    }
    // The action and the signal come from the third bid: its request id.
    assert_eq!(read["actions"][0].headers["X-Request-Id"], "req-2");
    assert_eq!(read["signals"][0].headers["X-Request-Id"], "req-2");
    // A dead-lettered input keeps its trace too.
    let dead = &read["dlq"][0].headers;
    assert_eq!(dead["traceparent"], TRACEPARENT);
    assert_eq!(dead["X-Request-Id"], "req-3");
    assert_eq!(read["dlq"][0].value, b"{not json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_outputs_carry_schema_pack_and_trace_headers() {
    let Some(read) = run_with("contract-pb", OutputFormat::plain(Encoding::Protobuf)).await else { return };
    assert_headers(&read, "application/x-protobuf");
    let signal = RiskSignal::decode(read["signals"][0].value.as_slice()).unwrap();
    assert_eq!(signal.event_id, "ev-2");
    AutoAction::decode(read["actions"][0].value.as_slice()).unwrap();
    for record in &read["verdicts"] {
        Verdict::decode(record.value.as_slice()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_outputs_are_the_proto3_json_mapping() {
    let Some(read) = run_with("contract-json", OutputFormat::plain(Encoding::Json)).await else { return };
    assert_headers(&read, "application/json");
    let text = String::from_utf8(read["signals"][0].value.clone()).unwrap();
    assert!(text.contains(r#""eventId":"ev-2""#), "lowerCamelCase field names: {text}");
    let signal: RiskSignal = serde_json::from_str(&text).unwrap();
    assert_eq!(signal.score, 70);
    let action: AutoAction = serde_json::from_slice(&read["actions"][0].value).unwrap();
    assert_eq!(action.target.unwrap().id, "bid-2");
    for record in &read["verdicts"] {
        let verdict: Verdict = serde_json::from_slice(&record.value).unwrap();
        assert_eq!(verdict.pack_version, "resilience-1");
    }
}

/// What the in-test registry was asked and has registered.
#[derive(Default)]
struct RegistryState {
    /// (subject, schema, references) → (id, version).
    registered: Vec<(String, String, serde_json::Value, u32, u32)>,
    requests: Vec<String>,
}

/// Serves `POST /subjects/{subject}/versions` (register) and
/// `POST /subjects/{subject}` (look up) like a schema registry: one id per
/// distinct schema, versions counted per subject.
async fn start_registry() -> (String, Arc<Mutex<RegistryState>>) {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::post;

    type Shared = Arc<Mutex<RegistryState>>;
    fn find(state: &RegistryState, subject: &str, body: &serde_json::Value) -> Option<(u32, u32)> {
        state
            .registered
            .iter()
            .find(|r| r.0 == subject && r.1 == body["schema"] && r.2 == body["references"])
            .map(|r| (r.3, r.4))
    }
    async fn register(
        State(state): State<Shared>,
        Path(subject): Path<String>,
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> axum::Json<serde_json::Value> {
        let mut s = state.lock().unwrap();
        s.requests.push(format!("register {subject}"));
        assert_eq!(body["schemaType"], "PROTOBUF");
        let (id, _) = find(&s, &subject, &body).unwrap_or_else(|| {
            let schema = body["schema"].as_str().unwrap().to_string();
            let same = s.registered.iter().find(|r| r.1 == schema && r.2 == body["references"]).map(|r| r.3);
            let id = same.unwrap_or(100 + s.registered.len() as u32);
            let version = 1 + s.registered.iter().filter(|r| r.0 == subject).count() as u32;
            s.registered.push((subject.clone(), schema, body["references"].clone(), id, version));
            (id, version)
        });
        axum::Json(serde_json::json!({ "id": id }))
    }
    async fn lookup(
        State(state): State<Shared>,
        Path(subject): Path<String>,
        axum::Json(body): axum::Json<serde_json::Value>,
    ) -> (StatusCode, axum::Json<serde_json::Value>) {
        let mut s = state.lock().unwrap();
        s.requests.push(format!("lookup {subject}"));
        match find(&s, &subject, &body) {
            Some((id, version)) => {
                (StatusCode::OK, axum::Json(serde_json::json!({"subject": subject, "id": id, "version": version})))
            }
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error_code": 40403, "message": "Schema not found"})),
            ),
        }
    }
    let state: Shared = Arc::default();
    let app = axum::Router::new()
        .route("/subjects/{subject}/versions", post(register))
        .route("/subjects/{subject}", post(lookup))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_framed_outputs_name_their_registered_schema() {
    if support::shared_brokers().is_none() {
        return;
    }
    let (url, state) = start_registry().await;
    let names = support::Setup::new(&support::shared_brokers().unwrap(), "contract-sr-names", 1).await;
    let topics = names.outputs.clone();

    // Lookup only, before anything is registered: a clear refusal.
    let lookup_only = Registry::new(&url, None, false);
    let refused = tokio::task::spawn_blocking({
        let topics = topics.clone();
        move || lookup_only.schema_ids(&topics)
    })
    .await
    .unwrap()
    .unwrap_err()
    .to_string();
    assert!(refused.contains("auto_register is false"), "{refused}");

    let registry = Registry::new(&url, Some("user:secret"), true);
    let ids = tokio::task::spawn_blocking(move || registry.schema_ids(&topics)).await.unwrap().unwrap();
    {
        let s = state.lock().unwrap();
        let common = s.registered.iter().find(|r| r.0 == "gavel/v1/common.proto").expect("common.proto registered");
        let signals = s.registered.iter().find(|r| r.0.ends_with("-signals-value")).expect("signals subject");
        assert_eq!(
            signals.2,
            serde_json::json!([{"name": "gavel/v1/common.proto", "subject": "gavel/v1/common.proto", "version": common.4}])
        );
        assert!(signals.1.contains("message RiskSignal"));
    }
    assert_eq!(ids.len(), 4, "signals, actions, verdicts, shadow: {ids:?}");
    let id_of = |t| ids.iter().find(|(topic, _)| *topic == t).unwrap().1;

    let Some(read) = run_with("contract-sr", OutputFormat::confluent(&ids).unwrap()).await else { return };
    assert_headers(&read, "application/vnd.confluent.protobuf");
    for (label, topic, name) in [
        ("signals", gavel_kafka::OutputTopic::Signals, "gavel.v1.RiskSignal"),
        ("actions", gavel_kafka::OutputTopic::Actions, "gavel.v1.AutoAction"),
        ("verdicts", gavel_kafka::OutputTopic::Verdicts, "gavel.v1.Verdict"),
    ] {
        let at = gavel_model::wire::location(name).unwrap();
        for record in &read[label] {
            let (id, path, body) = gavel_model::wire::split_confluent(&record.value).expect("framed");
            assert_eq!(id, id_of(topic), "{label}");
            assert_eq!(path, vec![at.index as i64], "{label}");
            match label {
                "signals" => drop(RiskSignal::decode(body).unwrap()),
                "actions" => drop(AutoAction::decode(body).unwrap()),
                _ => drop(Verdict::decode(body).unwrap()),
            }
        }
    }
    // Dead letters keep the input's own bytes, unframed.
    assert_eq!(read["dlq"][0].value, b"{not json");
}
