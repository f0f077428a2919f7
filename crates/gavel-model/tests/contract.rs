//! The event contract against its examples: every payload kind has an
//! example in `proto/examples/`, every example decodes, and JSON ⇄ protobuf
//! round-trips without loss. Arbitrary bytes never panic either decoder.

use std::collections::BTreeSet;
use std::path::PathBuf;

use gavel_model::{Event, EventKind, decode_json, decode_protobuf, encode_json, encode_protobuf};
use proptest::prelude::*;

fn examples() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("proto/examples exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.push((name, std::fs::read(&path).expect("readable example")));
        }
    }
    out.sort();
    out
}

#[test]
fn every_kind_has_an_example_that_decodes_to_that_kind() {
    let mut seen = BTreeSet::new();
    for (name, bytes) in examples() {
        let event = decode_json(&bytes).unwrap_or_else(|e| panic!("{name}.json: {e}"));
        let kind = event.kind().expect("payload present");
        assert_eq!(kind.as_str(), name, "{name}.json holds a {kind} event");
        assert!(!event.event_id.is_empty(), "{name}.json has an event id");
        assert!(event.occurred_at.is_some(), "{name}.json has an event time");
        seen.insert(kind);
    }
    let missing: Vec<_> = EventKind::ALL.iter().filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "kinds without an example: {missing:?}");
}

#[test]
fn json_to_protobuf_and_back_is_lossless() {
    for (name, bytes) in examples() {
        let from_json = decode_json(&bytes).unwrap();
        let wire = encode_protobuf(&from_json);
        let from_proto = decode_protobuf(&wire).unwrap();
        assert_eq!(from_json, from_proto, "{name}: protobuf round trip");

        let json_again = encode_json(&from_proto).unwrap();
        let reparsed = decode_json(&json_again).unwrap();
        assert_eq!(from_json, reparsed, "{name}: JSON round trip");

        // The canonical JSON carries the same fields as the example.
        let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        // pbjson-types writes UTC timestamps with a `+00:00` offset where the
        // examples use `Z`; both are RFC 3339 for the same instant.
        let json_again = String::from_utf8(json_again).unwrap().replace("+00:00\"", "Z\"");
        let canonical: serde_json::Value = serde_json::from_str(&json_again).unwrap();
        assert_eq!(original, canonical, "{name}: canonical JSON equals the example");
    }
}

#[test]
fn snake_case_field_names_are_accepted_too() {
    let json = br#"{"event_id":"e1","user_id":"u1","occurred_at":"2026-11-20T19:00:00Z",
        "bid_placed":{"bid_id":"b1","listing_id":"l1","amount":{"amount_minor":150,"currency":"USD"}}}"#;
    let event: Event = decode_json(json).unwrap();
    assert_eq!(event.kind(), Some(EventKind::BidPlaced));
    match event.payload.unwrap() {
        gavel_model::Payload::BidPlaced(bid) => assert_eq!(bid.amount.unwrap().amount_minor, 150),
        other => panic!("unexpected payload {other:?}"),
    }
}

#[test]
fn outputs_round_trip_both_encodings() {
    use gavel_model::pb::{AutoAction, RiskSignal, RuleHit, RuleMode};
    let signal = RiskSignal {
        event_id: "e1".into(),
        event_kind: "bid_placed".into(),
        score: 60,
        hits: vec![RuleHit {
            rule_id: "bid_bot".into(),
            score: 60,
            mode: RuleMode::Enforce as i32,
            ..Default::default()
        }],
        pack_version: "v1".into(),
        decided_at: Some(gavel_model::timestamp_from_ms(1_763_000_000_000)),
        ..Default::default()
    };
    let json = encode_json(&signal).unwrap();
    let back: RiskSignal = serde_json::from_slice(&json).unwrap();
    assert_eq!(signal, back);
    let action = AutoAction { action_id: "a1".into(), r#type: 1, ..Default::default() };
    let back = <AutoAction as prost::Message>::decode(encode_protobuf(&action).as_slice()).unwrap();
    assert_eq!(action, back);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_protobuf_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_protobuf(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_json_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_json(&bytes);
    }

    #[test]
    fn mutated_examples_never_panic_either_decoder(
        pick in 0usize..18,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let examples = examples();
        let (_, json) = &examples[pick % examples.len()];
        let event = decode_json(json).unwrap();
        for mut bytes in [json.clone(), encode_protobuf(&event)] {
            for (at, byte) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            let _ = decode_json(&bytes);
            let _ = decode_protobuf(&bytes);
        }
    }
}
