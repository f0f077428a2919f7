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
    let event: Event = serde_json::from_slice(bytes).map_err(|e| json_error(bytes, &e))?;
    require_payload(event)
}

/// A decoding error that says what kind of problem it is and where (field
/// path, line, column), built from the error's structure, never from its
/// message text, which quotes input values (chat text, card numbers).
fn json_error(bytes: &[u8], error: &serde_json::Error) -> ModelError {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Io => "unreadable input".to_string(),
        // serde_json's syntax messages are fixed texts ("expected value",
        // "trailing characters", …) that never include input.
        Category::Syntax | Category::Eof => strip_position(&error.to_string()).to_string(),
        Category::Data => data_error(strip_position(&error.to_string())),
    };
    // The failing field's path, found by decoding again with path tracking:
    // only on this cold path, so the hot path pays nothing for it.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let path = match serde_path_to_error::deserialize::<_, Event>(&mut de) {
        Err(e) => field_path(e.path()),
        Ok(_) => String::new(),
    };
    let message = if path.is_empty() { what } else { format!("{what} at {path}") };
    ModelError::Json { line: error.line(), column: error.column(), message }
}

/// The shape of a serde data error with every input-derived part dropped:
/// serde's own forms are "invalid type: <unexpected>, expected <exp>",
/// "invalid value: …", "unknown variant `<input>`, expected …", "unknown
/// field …", "missing field `<name>`", "duplicate field `<name>`" and
/// "invalid length <n>, expected …", where only the expectation and the
/// field names come from the schema. Anything else (a custom message, e.g.
/// from a timestamp parser) may quote input and becomes "invalid value".
fn data_error(message: &str) -> String {
    // The expectation ends the message: the last ", expected " is serde's.
    let expected = message.rfind(", expected ").map(|i| &message[i + 2..]);
    let unexpected_kind = |rest: &str| {
        // "string \"…\"", "integer `5`", "floating point `1.5`", "map": the
        // words before the quoted value.
        let end = rest.find(['"', '`', ',']).unwrap_or(rest.len());
        let kind = rest[..end].trim();
        if kind.chars().all(|c| c.is_ascii_lowercase() || c == ' ') { kind.to_string() } else { String::new() }
    };
    let with_expected = |head: String| match expected {
        Some(exp) if !exp.contains(['"']) => format!("{head}, {exp}"),
        _ => head,
    };
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        with_expected(format!("invalid type: {}", unexpected_kind(rest)).trim_end_matches(": ").to_string())
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        with_expected(format!("invalid value: {}", unexpected_kind(rest)).trim_end_matches(": ").to_string())
    } else if message.starts_with("unknown variant ") {
        with_expected("unknown enum value".to_string())
    } else if message.starts_with("unknown field ") {
        with_expected("unknown field".to_string())
    } else if message.starts_with("invalid length ") {
        with_expected("invalid length".to_string())
    } else if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        // The name is the schema's (serde only reports fields it knows).
        let name = message.split('`').nth(1).unwrap_or_default();
        let head = if message.starts_with("missing") { "missing field" } else { "duplicate field" };
        if known_segment(name) { format!("{head} {name}") } else { head.to_string() }
    } else {
        "invalid value".to_string()
    }
}

/// `chat_message_sent.text`, `items[2]`: the path's segments that are
/// field names of the schema, each other segment (an unknown key, which is
/// input) shown as `?`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                let snake = snake_case(key);
                out.push_str(if known_segment(&snake) { &snake } else { "?" });
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A proto3 JSON key as its field name: `chatMessageSent` →
/// `chat_message_sent`; a snake_case name is unchanged (proto3 JSON
/// accepts both).
pub fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `name` is one segment of some field path of the schema.
fn known_segment(name: &str) -> bool {
    let in_schema = || crate::schema::EVENT_FIELDS.iter().any(|f| f.path.split('.').any(|s| s == name));
    !name.is_empty() && in_schema()
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

    /// Places a hostile value can sit in a JSON event: string values of
    /// each type of field, enum values, keys known and unknown, numbers.
    const HOSTILE_TEMPLATES: &[&str] = &[
        r#"{"chatMessageSent":"@"}"#,
        r#"{"chatMessageSent":{"text":{"@":1}}}"#,
        r#"{"chatMessageSent":{"text":@}}"#,
        r#"{"paymentAttempted":{"amount":{"amountMinor":"@"}}}"#,
        r#"{"paymentAttempted":{"amount":{"amountMinor":@}}}"#,
        r#"{"listingCreated":{"format":"@"}}"#,
        r#"{"listingCreated":{"format":@}}"#,
        r#"{"occurredAt":"@","loginFailed":{}}"#,
        r#"{"eventId":["@"],"loginFailed":{}}"#,
        r#"{"@":{"@":[1,"@"]},"loginFailed":{}}"#,
        r#"{"loginFailed":{"@":"@"}, "@"}"#,
        r#"{"userId":"@" "loginFailed":{}}"#,
        r#"{"chatMessageSent":{"text":"@"},"chatMessageSent":{"text":"@"}}"#,
        r#"["@"]"#,
        r#""@""#,
    ];

    /// Hostile texts, each holding the canary `Qx7Z` or a card number:
    /// quotes, escapes, backticks and Unicode meant to break a redactor
    /// that pairs quote characters.
    const HOSTILE_VALUES: &[&str] = &[
        "Qx7Z",
        "a\\\"4111111111111111 Qx7Z",
        "`Qx7Z`",
        "x` 4111111111111111 `y",
        "\\u0022Qx7Z\\u0022",
        "Qx7Z\\",
        "\u{201c}Qx7Z\u{201d} \u{00e9}\u{1f600}",
        "\\\"\\\"Qx7Z",
        ", expected 4111111111111111",
        "\" Qx7Z \"",
        "Qx7Z\\n4111111111111111",
    ];

    #[test]
    fn json_errors_never_echo_input_values_of_a_hostile_corpus() {
        let mut tried = 0;
        for template in HOSTILE_TEMPLATES {
            for value in HOSTILE_VALUES {
                for raw in [value.to_string(), format!("\"{value}\""), format!("{value}1")] {
                    let input = template.replace('@', &raw);
                    let Err(e) = decode_json(input.as_bytes()) else { continue };
                    tried += 1;
                    let message = e.to_string();
                    for canary in ["Qx7Z", "4111", "\u{201c}", "\u{1f600}"] {
                        assert!(!message.contains(canary), "{input}\n  -> {message}");
                    }
                }
            }
        }
        assert!(tried > 300, "only {tried} inputs failed to decode");
    }

    #[test]
    fn json_errors_name_the_field_and_the_problem() {
        let message = decode_json(br#"{"chatMessageSent":{"text":5}}"#).unwrap_err().to_string();
        assert!(message.contains("invalid type: integer, expected a string at chat_message_sent.text"), "{message}");
        let message = decode_json(br#"{"listingCreated":{"format":"NOPE"}}"#).unwrap_err().to_string();
        assert!(message.contains("unknown enum value") && message.contains("listing_created.format"), "{message}");
        let message = decode_json(br#"{"chatMessageSent":{"text":"a"}"#).unwrap_err().to_string();
        assert!(message.contains("EOF while parsing"), "{message}");
    }

    proptest::proptest! {
        /// Any text in a string value, an enum value or a key: the error
        /// never shows a run of it (runs of 4 characters not in the schema).
        #[test]
        fn json_errors_never_echo_arbitrary_text(text in "\\PC{4,40}", at in 0usize..HOSTILE_TEMPLATES.len()) {
            let marked = format!("Qx7Z{text}");
            let escaped = serde_json::to_string(&marked).unwrap();
            for input in [HOSTILE_TEMPLATES[at].replace("\"@\"", &escaped), HOSTILE_TEMPLATES[at].replace('@', &marked)] {
                if let Err(e) = decode_json(input.as_bytes()) {
                    let message = e.to_string();
                    proptest::prop_assert!(!message.contains("Qx7Z"), "{} -> {}", input, message);
                }
            }
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
