//! What a consumer needs to read gavel's outputs with its own tooling: the
//! `.proto` sources of the contract (to register with a schema registry or
//! generate stubs from), where each message is declared, and the Confluent
//! Schema Registry wire format.
//!
//! The Confluent framing of a protobuf record is: a zero magic byte, the
//! schema id as a 4-byte big-endian integer, the message's path among the
//! file's messages as zig-zag varints (a count, then each index; the path
//! `[0]` is written as the single byte 0), then the protobuf bytes. Java's
//! `KafkaProtobufDeserializer`, Go's and Python's Confluent deserialisers
//! all read it.

/// Where a message is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLocation {
    /// Full name, e.g. `gavel.v1.RiskSignal`.
    pub full_name: &'static str,
    /// Import path of the declaring file, e.g. `gavel/v1/risk.proto`.
    pub file: &'static str,
    /// Position among the file's top-level messages, from 0.
    pub index: usize,
}

include!(concat!(env!("OUT_DIR"), "/messages.rs"));

/// The `.proto` source of every file of the contract, by import path, each
/// after the files it imports (the well-known `google/protobuf` files,
/// which registries know, are not included).
pub const PROTO_FILES: &[(&str, &str)] = &[
    ("gavel/v1/common.proto", include_str!("../../../proto/gavel/v1/common.proto")),
    ("gavel/v1/events.proto", include_str!("../../../proto/gavel/v1/events.proto")),
    ("gavel/v1/risk.proto", include_str!("../../../proto/gavel/v1/risk.proto")),
];

/// Where the message `full_name` is declared, if it is part of the contract.
pub fn location(full_name: &str) -> Option<MessageLocation> {
    MESSAGES.iter().copied().find(|m| m.full_name == full_name)
}

/// The source of the file at import path `file`.
pub fn proto_source(file: &str) -> Option<&'static str> {
    PROTO_FILES.iter().find(|(path, _)| *path == file).map(|(_, source)| *source)
}

/// The gavel files `file` imports, in the order it names them.
pub fn imports(file: &str) -> Vec<&'static str> {
    let Some(source) = proto_source(file) else { return Vec::new() };
    source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("import \"")?.strip_suffix("\";"))
        .filter_map(|path| PROTO_FILES.iter().find(|(p, _)| *p == path).map(|(p, _)| *p))
        .collect()
}

/// The bytes that precede a protobuf record of the top-level message at
/// `index` in its file, registered under `schema_id`, in the Confluent
/// wire format.
pub fn confluent_prefix(schema_id: u32, index: usize) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(8);
    prefix.push(0);
    prefix.extend_from_slice(&schema_id.to_be_bytes());
    if index == 0 {
        prefix.push(0);
    } else {
        zigzag_varint(1, &mut prefix);
        zigzag_varint(index as i64, &mut prefix);
    }
    prefix
}

/// Splits a Confluent-framed protobuf record into its schema id, message
/// index path and protobuf bytes; `None` if it is not framed so.
pub fn split_confluent(record: &[u8]) -> Option<(u32, Vec<i64>, &[u8])> {
    let (&magic, rest) = record.split_first()?;
    if magic != 0 || rest.len() < 4 {
        return None;
    }
    let id = u32::from_be_bytes(rest[..4].try_into().ok()?);
    let mut rest = &rest[4..];
    let count = read_zigzag_varint(&mut rest)?;
    let path = if count == 0 {
        vec![0]
    } else {
        (0..count).map(|_| read_zigzag_varint(&mut rest)).collect::<Option<Vec<_>>>()?
    };
    Some((id, path, rest))
}

fn zigzag_varint(value: i64, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_zigzag_varint(bytes: &mut &[u8]) -> Option<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use prost::Name as _;

    use super::*;
    use crate::pb::{AutoAction, RiskSignal, Verdict};

    #[test]
    fn output_messages_are_located_in_risk_proto() {
        for name in [RiskSignal::full_name(), Verdict::full_name(), AutoAction::full_name()] {
            let at = location(&name).unwrap_or_else(|| panic!("{name} is not in the table"));
            assert_eq!(at.file, "gavel/v1/risk.proto");
            let declared = proto_source(at.file).unwrap().lines().filter(|l| l.starts_with("message ")).nth(at.index);
            let short = name.rsplit('.').next().unwrap();
            assert_eq!(declared.map(|l| l.split_whitespace().nth(1).unwrap()), Some(short));
        }
        assert_eq!(imports("gavel/v1/risk.proto"), ["gavel/v1/common.proto"]);
        assert!(imports("gavel/v1/common.proto").is_empty());
    }

    #[test]
    fn confluent_framing_matches_the_documented_bytes() {
        // The first message: magic, id, the single byte 0.
        assert_eq!(confluent_prefix(7, 0), [0, 0, 0, 0, 7, 0]);
        // Message 2: count 1 and index 2, each zig-zag (2 and 4).
        assert_eq!(confluent_prefix(0x0102_0304, 2), [0, 1, 2, 3, 4, 2, 4]);
        // A large index needs a two-byte varint: 70 → zig-zag 140.
        assert_eq!(confluent_prefix(1, 70), [0, 0, 0, 0, 1, 2, 0x8c, 0x01]);
        for index in [0, 1, 2, 63, 64, 70, 1000] {
            let mut record = confluent_prefix(42, index);
            record.extend_from_slice(b"body");
            let (id, path, body) = split_confluent(&record).unwrap();
            assert_eq!((id, path, body), (42, vec![index as i64], &b"body"[..]));
        }
        assert_eq!(split_confluent(b"\x01\0\0\0\x07\0"), None);
        assert_eq!(split_confluent(b"\0\0\0"), None);
    }
}
