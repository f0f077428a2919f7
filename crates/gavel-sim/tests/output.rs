//! The file formats of `gavel_sim::output`: round trips, determinism byte
//! for byte, ground truth, and how damaged input is reported.

use std::io::Cursor;

use gavel_model::Event;
use gavel_sim::output::{
    MAX_RECORD_BYTES, read_jsonl, read_protobuf_delimited, read_truth, write_jsonl, write_protobuf_delimited,
    write_truth_line,
};
use gavel_sim::{Error, Scenario, SimConfig, SimEvent, Simulator};

fn events(n: usize) -> Vec<SimEvent> {
    Simulator::new(SimConfig::default()).take(n).collect()
}

/// The three files `gavel sim` writes for `n` events of `config`.
fn files(config: SimConfig, n: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (mut jsonl, mut protobuf, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    for e in Simulator::new(config).take(n) {
        write_jsonl(&mut jsonl, &e.event).unwrap();
        write_protobuf_delimited(&mut protobuf, &e.event).unwrap();
        write_truth_line(&mut truth, &e).unwrap();
    }
    (jsonl, protobuf, truth)
}

#[test]
fn jsonl_round_trips() {
    let events = events(5_000);
    let mut buf = Vec::new();
    for e in &events {
        write_jsonl(&mut buf, &e.event).unwrap();
    }
    assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), events.len());
    let back: Vec<Event> = read_jsonl(Cursor::new(buf)).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, events.into_iter().map(|e| e.event).collect::<Vec<_>>());
}

#[test]
fn protobuf_round_trips() {
    let events = events(5_000);
    let mut buf = Vec::new();
    for e in &events {
        write_protobuf_delimited(&mut buf, &e.event).unwrap();
    }
    let back: Vec<Event> = read_protobuf_delimited(Cursor::new(buf)).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, events.into_iter().map(|e| e.event).collect::<Vec<_>>());
}

#[test]
fn same_seed_and_config_give_the_same_bytes() {
    let config = SimConfig { rate_per_sec: 2_000.0, ..SimConfig::default() };
    let a = files(config.clone(), 20_000);
    let b = files(config.clone(), 20_000);
    assert!(a == b, "two runs of one seed and config differ");
    assert!(!a.2.is_empty(), "20k events hold labelled ones");
    let c = files(SimConfig { seed: config.seed + 1, ..config }, 20_000);
    assert_ne!(a.0, c.0);
}

#[test]
fn truth_has_one_line_per_labelled_event_and_reads_back() {
    let events = events(50_000);
    let mut buf = Vec::new();
    let mut written = 0;
    for e in &events {
        written += usize::from(write_truth_line(&mut buf, e).unwrap());
    }
    let labelled: Vec<&SimEvent> = events.iter().filter(|e| e.scenario.is_some()).collect();
    assert_eq!(written, labelled.len());
    let records: Vec<_> = read_truth(Cursor::new(&buf)).collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), labelled.len());
    for (record, event) in records.iter().zip(&labelled) {
        assert_eq!(record.event_id, event.event.event_id);
        assert_eq!(Some(record.scenario), event.scenario);
        let entities: Vec<(&str, &str)> = record.entities.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(entities, event.entities());
        assert!(record.entities.contains_key("user"), "{record:?}");
    }
    // The documented shape, keys in order.
    let first = std::str::from_utf8(&buf).unwrap().lines().next().unwrap();
    assert!(first.starts_with(r#"{"event_id":"sim-7-"#), "{first}");
    assert!(first.contains(r#","scenario":""#) && first.contains(r#","entities":{"#), "{first}");
}

#[test]
fn truth_names_the_abuser_of_an_auction_close() {
    let close = events(200_000)
        .into_iter()
        .find(|e| e.scenario == Some(Scenario::NonPayingBidder) && e.event.kind().unwrap().as_str() == "auction_closed")
        .expect("a non-paying bidder wins within 200k events");
    let entities = close.entities();
    let user = entities.iter().find(|(k, _)| *k == "user").unwrap().1;
    assert!(user.starts_with("npb-"), "{entities:?}");
    assert!(!entities.iter().any(|(k, _)| *k == "device"), "the close's device is the seller's: {entities:?}");
}

#[test]
fn jsonl_skips_blank_lines_and_reports_bad_ones_by_line() {
    let events = events(3);
    let mut buf = Vec::new();
    write_jsonl(&mut buf, &events[0].event).unwrap();
    buf.extend_from_slice(b"\n   \n{\"eventId\": 5}\n");
    write_jsonl(&mut buf, &events[1].event).unwrap();
    // A CRLF line, the last one without its newline.
    let mut last = Vec::new();
    write_jsonl(&mut last, &events[2].event).unwrap();
    last.pop();
    last.extend_from_slice(b"\r");
    buf.extend_from_slice(&last);
    let read: Vec<_> = read_jsonl(Cursor::new(buf)).collect();
    assert_eq!(read.len(), 4);
    assert_eq!(read[0].as_ref().unwrap(), &events[0].event);
    match &read[1] {
        Err(Error::JsonLine { line: 4, .. }) => {}
        other => panic!("expected an error on line 4, got {other:?}"),
    }
    assert_eq!(read[2].as_ref().unwrap(), &events[1].event);
    assert_eq!(read[3].as_ref().unwrap(), &events[2].event);
}

#[test]
fn truncated_protobuf_ends_with_an_error() {
    let events = events(2);
    let mut buf = Vec::new();
    for e in &events {
        write_protobuf_delimited(&mut buf, &e.event).unwrap();
    }
    buf.truncate(buf.len() - 3);
    let read: Vec<_> = read_protobuf_delimited(Cursor::new(buf)).collect();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].as_ref().unwrap(), &events[0].event);
    assert!(matches!(read[1], Err(Error::Truncated { record: 2 })), "{:?}", read[1]);
}

#[test]
fn a_bad_protobuf_record_is_skipped_and_a_huge_length_refused() {
    let events = events(1);
    let mut buf = vec![2, 0xff, 0xff];
    write_protobuf_delimited(&mut buf, &events[0].event).unwrap();
    let read: Vec<_> = read_protobuf_delimited(Cursor::new(buf)).collect();
    assert!(matches!(read[0], Err(Error::ProtobufRecord { record: 1, .. })), "{:?}", read[0]);
    assert_eq!(read[1].as_ref().unwrap(), &events[0].event);

    let mut huge = Vec::new();
    prost::encoding::encode_varint(MAX_RECORD_BYTES + 1, &mut huge);
    let read: Vec<_> = read_protobuf_delimited(Cursor::new(huge)).collect();
    assert!(matches!(read.as_slice(), [Err(Error::BadLength { record: 1, .. })]), "{read:?}");
}

#[test]
fn bad_truth_lines_are_reported() {
    let input = "{\"event_id\":\"e1\",\"scenario\":\"bid_bot\",\"entities\":{\"user\":\"bot-1\"}}\n\
                 {\"event_id\":\"e2\",\"scenario\":\"bidbot\"}\n";
    let read: Vec<_> = read_truth(Cursor::new(input)).collect();
    assert_eq!(read[0].as_ref().unwrap().scenario, Scenario::BidBot);
    assert!(matches!(&read[1], Err(Error::TruthLine { line: 2, message }) if message.contains("bidbot")));
}
