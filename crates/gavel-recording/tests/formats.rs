//! The recording formats: round trips, ground truth byte for byte, and how
//! damaged input is reported. The events are `proto/examples/`, one per
//! payload kind, each repeated under fresh ids.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;

use gavel_model::{Event, decode_json};
use gavel_recording::{
    Error, FileFormat, MAX_RECORD_BYTES, TruthRecord, read_jsonl, read_protobuf_delimited, read_truth, write_jsonl,
    write_protobuf_delimited, write_truth,
};

/// `n` events: the examples in file-name order, over and over, the `i`th
/// with event id `ex-i`.
fn events(n: usize) -> Vec<Event> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    let examples: Vec<Event> = paths.iter().map(|p| decode_json(&std::fs::read(p).unwrap()).unwrap()).collect();
    assert!(examples.len() >= 18, "one example per payload kind");
    (0..n).map(|i| Event { event_id: format!("ex-{i}"), ..examples[i % examples.len()].clone() }).collect()
}

/// `events` written one by one with `write`.
fn written(events: &[Event], write: impl Fn(&mut Vec<u8>, &Event) -> gavel_recording::Result<()>) -> Vec<u8> {
    let mut buf = Vec::new();
    for e in events {
        write(&mut buf, e).unwrap();
    }
    buf
}

#[test]
fn jsonl_round_trips() {
    let events = events(1_800);
    let buf = written(&events, |w, e| write_jsonl(w, e));
    assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), events.len());
    let back: Vec<Event> = read_jsonl(Cursor::new(buf)).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, events);
}

#[test]
fn protobuf_round_trips() {
    let events = events(1_800);
    let buf = written(&events, |w, e| write_protobuf_delimited(w, e));
    let back: Vec<Event> = read_protobuf_delimited(Cursor::new(buf)).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, events);
}

#[test]
fn a_file_format_writes_and_reads_what_its_functions_do() {
    let events = events(40);
    for format in FileFormat::ALL {
        let by_format = written(&events, |w, e| format.write(w, e));
        let by_function = match format {
            FileFormat::Jsonl => written(&events, |w, e| write_jsonl(w, e)),
            FileFormat::Protobuf => written(&events, |w, e| write_protobuf_delimited(w, e)),
        };
        assert_eq!(by_format, by_function, "{format}");
        let back: Vec<Event> = format.read(Cursor::new(by_format)).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, events, "{format}");
    }
}

#[test]
fn truth_has_the_documented_shape_and_reads_back() {
    let records = vec![
        TruthRecord {
            event_id: "sim-7-120".into(),
            scenario: "bid_bot".into(),
            look_alike: None,
            entities: BTreeMap::from(
                [("user", "bot-2"), ("show", "sh-31"), ("bid", "b-120"), ("ip", "198.51.100.12")]
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            ),
        },
        TruthRecord {
            event_id: "e2".into(),
            scenario: "shared_card".into(),
            look_alike: None,
            entities: BTreeMap::new(),
        },
        TruthRecord {
            event_id: "sim-7-981".into(),
            scenario: "none".into(),
            look_alike: Some("second_card".into()),
            entities: BTreeMap::from([("user", "u-88")].map(|(k, v)| (k.to_string(), v.to_string()))),
        },
    ];
    let mut buf = Vec::new();
    for r in &records {
        write_truth(&mut buf, r).unwrap();
    }
    assert_eq!(
        String::from_utf8(buf.clone()).unwrap(),
        "{\"event_id\":\"sim-7-120\",\"scenario\":\"bid_bot\",\"entities\":{\"bid\":\"b-120\",\"ip\":\"198.51.100.12\",\"show\":\"sh-31\",\"user\":\"bot-2\"}}\n\
         {\"event_id\":\"e2\",\"scenario\":\"shared_card\",\"entities\":{}}\n\
         {\"event_id\":\"sim-7-981\",\"scenario\":\"none\",\"look_alike\":\"second_card\",\"entities\":{\"user\":\"u-88\"}}\n"
    );
    let back: Vec<TruthRecord> = read_truth(Cursor::new(buf)).collect::<Result<_, _>>().unwrap();
    assert_eq!(back, records);
}

#[test]
fn jsonl_skips_blank_lines_and_reports_bad_ones_by_line() {
    let events = events(3);
    let mut buf = Vec::new();
    write_jsonl(&mut buf, &events[0]).unwrap();
    buf.extend_from_slice(b"\n   \n{\"eventId\": 5}\n");
    write_jsonl(&mut buf, &events[1]).unwrap();
    // A CRLF line, the last one without its newline.
    let mut last = Vec::new();
    write_jsonl(&mut last, &events[2]).unwrap();
    last.pop();
    last.extend_from_slice(b"\r");
    buf.extend_from_slice(&last);
    let read: Vec<_> = read_jsonl(Cursor::new(buf)).collect();
    assert_eq!(read.len(), 4);
    assert_eq!(read[0].as_ref().unwrap(), &events[0]);
    match &read[1] {
        Err(Error::JsonLine { line: 4, .. }) => {}
        other => panic!("expected an error on line 4, got {other:?}"),
    }
    assert_eq!(read[2].as_ref().unwrap(), &events[1]);
    assert_eq!(read[3].as_ref().unwrap(), &events[2]);
}

#[test]
fn truncated_protobuf_ends_with_an_error() {
    let events = events(2);
    let mut buf = written(&events, |w, e| write_protobuf_delimited(w, e));
    buf.truncate(buf.len() - 3);
    let read: Vec<_> = read_protobuf_delimited(Cursor::new(buf)).collect();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].as_ref().unwrap(), &events[0]);
    assert!(matches!(read[1], Err(Error::Truncated { record: 2 })), "{:?}", read[1]);
}

#[test]
fn a_bad_protobuf_record_is_skipped_and_a_huge_length_refused() {
    let events = events(1);
    let mut buf = vec![2, 0xff, 0xff];
    write_protobuf_delimited(&mut buf, &events[0]).unwrap();
    let read: Vec<_> = read_protobuf_delimited(Cursor::new(buf)).collect();
    assert!(matches!(read[0], Err(Error::ProtobufRecord { record: 1, .. })), "{:?}", read[0]);
    assert_eq!(read[1].as_ref().unwrap(), &events[0]);

    let mut huge = Vec::new();
    prost::encoding::encode_varint(MAX_RECORD_BYTES + 1, &mut huge);
    let read: Vec<_> = read_protobuf_delimited(Cursor::new(huge)).collect();
    assert!(matches!(read.as_slice(), [Err(Error::BadLength { record: 1, .. })]), "{read:?}");
}

#[test]
fn bad_truth_lines_are_reported() {
    let input = "{\"event_id\":\"e1\",\"scenario\":\"bid_bot\",\"entities\":{\"user\":\"bot-1\"}}\n\
                 {\"event_id\":\"e2\"}\n\
                 \n\
                 {\"event_id\":\"e4\",\"scenario\":\"bid_bot\",\"labels\":[]}\n\
                 {\"event_id\":\"e5\",\"scenario\":\"chat_spam\"}\n";
    let read: Vec<_> = read_truth(Cursor::new(input)).collect();
    assert_eq!(read.len(), 4);
    assert_eq!(read[0].as_ref().unwrap().scenario, "bid_bot");
    assert_eq!(read[0].as_ref().unwrap().entities["user"], "bot-1");
    assert!(
        matches!(&read[1], Err(Error::TruthLine { line: 2, source }) if source.to_string().contains("scenario")),
        "{:?}",
        read[1]
    );
    assert!(
        matches!(&read[2], Err(Error::TruthLine { line: 4, source }) if source.to_string().contains("labels")),
        "{:?}",
        read[2]
    );
    assert!(read[3].as_ref().unwrap().entities.is_empty(), "entities may be absent");
}
