//! How outputs are written: [`OutputFormat`] encodes each message (binary
//! protobuf, the proto3 JSON mapping, or protobuf in the Confluent Schema
//! Registry wire format) and names its headers.
//!
//! Every signal, action, verdict and shadow signal carries:
//! - `content-type`: `application/x-protobuf`, `application/json`, or
//!   `application/vnd.confluent.protobuf` (registry framing);
//! - `gavel.schema`: the message's full name (`gavel.v1.RiskSignal`,
//!   `gavel.v1.AutoAction`, `gavel.v1.Verdict`);
//! - `gavel.pack.version`: the version of the rule pack that decided it;
//! - then the input's trace headers, added by the adapter.

use std::sync::Arc;

use gavel_kafka::OutputTopic;
use gavel_model::Encoding;
use gavel_model::pb::{AutoAction, RiskSignal, Verdict};
use prost::{Message, Name};

/// The header naming the message's content type.
pub const CONTENT_TYPE: &str = "content-type";
/// The header naming the message's full protobuf name.
pub const SCHEMA: &str = "gavel.schema";
/// The header naming the rule pack version that decided the output.
pub const PACK_VERSION: &str = "gavel.pack.version";

/// One output message type's encoding details.
#[derive(Debug, Clone)]
struct Framed {
    /// `gavel.schema` header value.
    schema: Arc<str>,
    /// Bytes before the protobuf body (registry framing), else empty.
    prefix: Vec<u8>,
}

/// The encoding of every output, with its header values computed once.
#[derive(Debug, Clone)]
pub struct OutputFormat {
    encoding: Encoding,
    content_type: Arc<str>,
    /// Signals, actions, verdicts, shadow: in that order.
    framed: [Framed; 4],
}

impl Default for OutputFormat {
    fn default() -> Self {
        OutputFormat::plain(Encoding::Protobuf)
    }
}

impl OutputFormat {
    /// Outputs in `encoding`, unframed.
    pub fn plain(encoding: Encoding) -> OutputFormat {
        let content_type = match encoding {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        };
        OutputFormat {
            encoding,
            content_type: content_type.into(),
            framed: OUTPUT_TOPICS.map(|topic| Framed { schema: schema_of(topic).into(), prefix: Vec::new() }),
        }
    }

    /// Protobuf outputs framed in the Confluent wire format, with the
    /// schema id registered for each output topic.
    pub fn confluent(ids: &[(OutputTopic, u32)]) -> anyhow::Result<OutputFormat> {
        let mut format = OutputFormat::plain(Encoding::Protobuf);
        format.content_type = "application/vnd.confluent.protobuf".into();
        for (slot, topic) in format.framed.iter_mut().zip(OUTPUT_TOPICS) {
            let id = ids
                .iter()
                .find(|(t, _)| *t == topic)
                .map(|(_, id)| *id)
                .ok_or_else(|| anyhow::anyhow!("no schema id for output topic {topic:?}"))?;
            let location = gavel_model::wire::location(&slot.schema)
                .ok_or_else(|| anyhow::anyhow!("{} is not in the contract", slot.schema))?;
            slot.prefix = gavel_model::wire::confluent_prefix(id, location.index);
        }
        Ok(format)
    }

    /// The `content-type` header value.
    pub fn content_type(&self) -> &Arc<str> {
        &self.content_type
    }

    /// `message` encoded for `topic`, and its `gavel.schema` header value.
    pub fn encode<M: Message + Name + serde::Serialize>(
        &self,
        topic: OutputTopic,
        message: &M,
    ) -> Result<(Vec<u8>, &Arc<str>), String> {
        let framed = &self.framed[slot(topic)];
        let bytes = match self.encoding {
            Encoding::Json => gavel_model::encode_json(message).map_err(|e| e.to_string())?,
            Encoding::Protobuf => {
                let mut bytes = Vec::with_capacity(framed.prefix.len() + message.encoded_len());
                bytes.extend_from_slice(&framed.prefix);
                message.encode_raw(&mut bytes);
                bytes
            }
        };
        Ok((bytes, &framed.schema))
    }
}

/// The output topics that carry a protobuf message, in slot order.
const OUTPUT_TOPICS: [OutputTopic; 4] =
    [OutputTopic::Signals, OutputTopic::Actions, OutputTopic::Verdicts, OutputTopic::Shadow];

fn slot(topic: OutputTopic) -> usize {
    OUTPUT_TOPICS.iter().position(|t| *t == topic).unwrap_or(0)
}

/// The full name of the message `topic` carries.
fn schema_of(topic: OutputTopic) -> String {
    match topic {
        OutputTopic::Actions => AutoAction::full_name(),
        OutputTopic::Verdicts => Verdict::full_name(),
        _ => RiskSignal::full_name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal() -> RiskSignal {
        RiskSignal { event_id: "e1".into(), score: 40, pack_version: "p".into(), ..Default::default() }
    }

    #[test]
    fn each_encoding_reads_back_with_its_standard_decoder() {
        let protobuf = OutputFormat::plain(Encoding::Protobuf);
        let (bytes, schema) = protobuf.encode(OutputTopic::Signals, &signal()).unwrap();
        assert_eq!(&**schema, "gavel.v1.RiskSignal");
        assert_eq!(RiskSignal::decode(bytes.as_slice()).unwrap(), signal());

        let json = OutputFormat::plain(Encoding::Json);
        assert_eq!(&**json.content_type(), "application/json");
        let (bytes, _) = json.encode(OutputTopic::Signals, &signal()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""eventId":"e1""#), "{text}");
        assert_eq!(serde_json::from_str::<RiskSignal>(&text).unwrap(), signal());

        let ids = [
            (OutputTopic::Signals, 7),
            (OutputTopic::Actions, 8),
            (OutputTopic::Verdicts, 9),
            (OutputTopic::Shadow, 7),
        ];
        let framed = OutputFormat::confluent(&ids).unwrap();
        let (bytes, _) = framed.encode(OutputTopic::Signals, &signal()).unwrap();
        let (id, path, body) = gavel_model::wire::split_confluent(&bytes).unwrap();
        let at = gavel_model::wire::location("gavel.v1.RiskSignal").unwrap();
        assert_eq!((id, path), (7, vec![at.index as i64]));
        assert_eq!(RiskSignal::decode(body).unwrap(), signal());
        let verdict = Verdict { event_id: "e1".into(), ..Default::default() };
        let (bytes, schema) = framed.encode(OutputTopic::Verdicts, &verdict).unwrap();
        assert_eq!(&**schema, "gavel.v1.Verdict");
        let (id, _, body) = gavel_model::wire::split_confluent(&bytes).unwrap();
        assert_eq!(id, 9);
        assert_eq!(Verdict::decode(body).unwrap(), verdict);
    }

    #[test]
    fn a_missing_schema_id_is_an_error() {
        assert!(OutputFormat::confluent(&[(OutputTopic::Signals, 1)]).is_err());
    }
}
