//! What the simulator puts in a recording: the same seed and config give
//! the same files byte for byte, and the ground truth has one record per
//! labelled event naming the right entities. The file formats themselves
//! are gavel-recording's, tested there.

use std::io::Cursor;

use gavel_recording::{read_truth, write_jsonl, write_protobuf_delimited};
use gavel_sim::{Scenario, SimConfig, SimEvent, Simulator, write_truth_line};

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
        assert_eq!(Some(record.scenario.parse::<Scenario>().unwrap()), event.scenario);
        let entities: Vec<(&str, &str)> = record.entities.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(entities, event.entities());
        assert!(record.entities.contains_key("user"), "{record:?}");
        assert_eq!(Some(record), event.truth().as_ref());
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
fn normal_traffic_has_no_truth() {
    let normal = events(2_000).into_iter().find(|e| e.scenario.is_none()).unwrap();
    assert_eq!(normal.truth(), None);
    let mut buf = Vec::new();
    assert!(!write_truth_line(&mut buf, &normal).unwrap());
    assert!(buf.is_empty());
}
