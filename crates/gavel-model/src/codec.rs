//! The two wire encodings of an [`Event`]: protobuf and the proto3 JSON
//! mapping. Both decode into the same Rust type, so the rest of gavel never
//! knows which one a topic uses.

use std::str::FromStr;

use prost::Message;

use crate::{Event, ModelError, Result};

/// How a topic's messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Binary protobuf (`gavel.v1.Event`).
    Protobuf,
    /// The proto3 JSON mapping of `gavel.v1.Event`.
    Json,
}

impl Encoding {
    /// The name used in config and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "json",
        }
    }
}

impl FromStr for Encoding {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "protobuf" | "proto" => Ok(Encoding::Protobuf),
            "json" => Ok(Encoding::Json),
            other => Err(format!("unknown encoding `{other}` (expected `protobuf` or `json`)")),
        }
    }
}

/// Decodes one event in the given encoding. An event without a payload is an
/// error: gavel cannot score what it cannot classify.
pub fn decode(encoding: Encoding, bytes: &[u8]) -> Result<Event> {
    match encoding {
        Encoding::Protobuf => decode_protobuf(bytes),
        Encoding::Json => decode_json(bytes),
    }
}

/// Decodes a protobuf-encoded event.
pub fn decode_protobuf(bytes: &[u8]) -> Result<Event> {
    let event = Event::decode(bytes)?;
    require_payload(event)
}

/// Decodes a proto3-JSON-encoded event.
pub fn decode_json(bytes: &[u8]) -> Result<Event> {
    let event: Event = serde_json::from_slice(bytes).map_err(|e| ModelError::Json {
        line: e.line(),
        column: e.column(),
        message: redact(strip_position(&e.to_string())),
    })?;
    require_payload(event)
}

/// Encodes an event (or any generated message) as protobuf.
pub fn encode_protobuf<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// Encodes an event (or any generated message) in the proto3 JSON mapping.
pub fn encode_json<M: serde::Serialize>(message: &M) -> Result<Vec<u8>> {
    serde_json::to_vec(message).map_err(|e| ModelError::JsonEncode(e.to_string()))
}

fn require_payload(event: Event) -> Result<Event> {
    if event.payload.is_none() {
        return Err(ModelError::MissingPayload);
    }
    Ok(event)
}

/// serde_json appends " at line L column C"; the error carries those as fields.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// Replaces every quoted span (`"…"` or `` `…` ``) of a decoder message with
/// `<redacted>`: serde quotes the offending input value there, and that value
/// may be chat text or card data, which must never reach logs or headers.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c == '"' || c == '`' {
            out.push_str("<redacted>");
            for inner in chars.by_ref() {
                if inner == c {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_reports_position() {
        let err = decode_json(b"{\n  \"eventId\": 5\n}").unwrap_err();
        match err {
            ModelError::Json { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_errors_never_echo_input_values() {
        let inputs: [&[u8]; 3] = [
            br#"{"eventId":"e1","chatMessageSent":{"text":{"nested":"call me 555-0100"}}}"#,
            br#"{"eventId":"e1","paymentAttempted":{"amount":{"amountMinor":"4242424242424242x"}}}"#,
            br#"{"eventId":"e1","listingCreated":{"format":"LISTING_FORMAT_SECRET_555"}}"#,
        ];
        for input in inputs {
            let message = decode_json(input).unwrap_err().to_string();
            for canary in ["555", "4242", "nested"] {
                assert!(!message.contains(canary), "{message}");
            }
        }
    }

    #[test]
    fn unknown_json_fields_are_ignored_like_in_protobuf() {
        let event = decode_json(br#"{"eventId":"e1","fieldFromTheFuture":1,"loginFailed":{"reason":"x"}}"#).unwrap();
        assert_eq!(event.event_id, "e1");
    }

    #[test]
    fn empty_payload_is_rejected() {
        let err = decode_json(br#"{"eventId":"e1"}"#).unwrap_err();
        assert!(matches!(err, ModelError::MissingPayload));
        let err = decode_protobuf(&[]).unwrap_err();
        assert!(matches!(err, ModelError::MissingPayload));
    }

    #[test]
    fn encoding_parses() {
        assert_eq!("json".parse::<Encoding>().unwrap(), Encoding::Json);
        assert_eq!("protobuf".parse::<Encoding>().unwrap(), Encoding::Protobuf);
        assert!("avro".parse::<Encoding>().is_err());
    }
}
