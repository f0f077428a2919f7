//! Registers gavel's output schemas with a Confluent-compatible schema
//! registry at start-up and returns the schema id of each output topic.
//!
//! Subjects follow the registry's default naming: a topic's record values
//! are registered under `TOPIC-value`, and the file that `risk.proto`
//! imports (`gavel/v1/common.proto`) under its own import path, referenced
//! by version. The well-known `google/protobuf` files are built into the
//! registry and are not registered.

use std::time::Duration;

use gavel_kafka::{OutputTopic, OutputTopics};
use serde::Deserialize;
use serde_json::json;

/// How long one registry request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The registry media type of requests and answers.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A registry to register schemas with.
#[derive(Debug)]
pub struct Registry {
    url: String,
    /// `Authorization` header value, if any. Never logged.
    authorization: Option<String>,
    auto_register: bool,
    agent: ureq::Agent,
}

/// A registry's answer to a lookup or a registration.
#[derive(Debug, Deserialize)]
struct Registered {
    id: u32,
    #[serde(default)]
    version: Option<u32>,
}

/// A registry's error body.
#[derive(Debug, Deserialize)]
struct RegistryError {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
}

/// The subject and version of a registered file, as a reference names it.
#[derive(Debug, Clone)]
struct Reference {
    name: &'static str,
    version: u32,
}

impl Registry {
    /// A client for the registry at `url`; `basic_auth` is `user:password`.
    pub fn new(url: &str, basic_auth: Option<&str>, auto_register: bool) -> Registry {
        use base64::Engine as _;
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        Registry {
            url: url.trim_end_matches('/').to_string(),
            authorization: basic_auth
                .map(|pair| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))),
            auto_register,
            agent,
        }
    }

    /// The schema id of each output topic that carries a protobuf message
    /// (signals, actions, verdicts, shadow), registering the schemas first
    /// when `auto_register` is on. Blocking: call it off the async runtime.
    pub fn schema_ids(&self, topics: &OutputTopics) -> anyhow::Result<Vec<(OutputTopic, u32)>> {
        let mut references = Vec::new();
        for file in gavel_model::wire::imports(RISK_FILE) {
            let schema = gavel_model::wire::proto_source(file).unwrap_or_default();
            let found = self.ensure(file, schema, &[])?;
            let version =
                found.version.ok_or_else(|| anyhow::anyhow!("schema registry gave no version for subject `{file}`"))?;
            references.push(Reference { name: file, version });
        }
        let schema = gavel_model::wire::proto_source(RISK_FILE).unwrap_or_default();
        let mut ids = Vec::new();
        for topic in OutputTopic::ALL.into_iter().filter(|t| *t != OutputTopic::DeadLetter) {
            let subject = format!("{}-value", topics.name(topic));
            let found = self.ensure(&subject, schema, &references)?;
            tracing::info!(subject = %subject, id = found.id, "output schema registered");
            ids.push((topic, found.id));
        }
        Ok(ids)
    }

    /// Looks `schema` up under `subject`, registering it first if allowed.
    fn ensure(&self, subject: &str, schema: &str, references: &[Reference]) -> anyhow::Result<Registered> {
        let body = json!({
            "schemaType": "PROTOBUF",
            "schema": schema,
            "references": references
                .iter()
                .map(|r| json!({"name": r.name, "subject": r.name, "version": r.version}))
                .collect::<Vec<_>>(),
        });
        let subject_path = format!("{}/subjects/{}", self.url, encode_path(subject));
        if self.auto_register {
            // Registering an already registered schema returns its id.
            self.post(&format!("{subject_path}/versions"), &body, subject)?;
        }
        // The lookup also gives the version, which references need.
        self.post(&subject_path, &body, subject)
    }

    fn post(&self, url: &str, body: &serde_json::Value, subject: &str) -> anyhow::Result<Registered> {
        let mut request = self.agent.post(url).header("Content-Type", MEDIA_TYPE).header("Accept", MEDIA_TYPE);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response =
            request.send_json(body).map_err(|e| anyhow::anyhow!("schema registry {} unreachable: {e}", self.url))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| anyhow::anyhow!("schema registry {}: reading the answer: {e}", self.url))?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("schema registry {}: unexpected answer for `{subject}`: {e}", self.url));
        }
        let error: RegistryError =
            serde_json::from_str(&text).unwrap_or(RegistryError { error_code: 0, message: String::new() });
        let hint = match error.error_code {
            40401 | 40403 if !self.auto_register => {
                " (not registered, and outputs.schema_registry.auto_register is false)"
            }
            409 | 42201 => " (incompatible with the subject's compatibility setting)",
            _ => "",
        };
        anyhow::bail!(
            "schema registry {} refused subject `{subject}`: HTTP {} {}{hint}",
            self.url,
            status.as_u16(),
            error.message
        )
    }
}

/// The file that declares every output message.
const RISK_FILE: &str = "gavel/v1/risk.proto";

/// `subject` as one URL path segment: everything but unreserved characters
/// percent-encoded (the import path's slashes included).
fn encode_path(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for byte in subject.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_path_segment() {
        assert_eq!(encode_path("gavel/v1/common.proto"), "gavel%2Fv1%2Fcommon.proto");
        assert_eq!(encode_path("risk.signals-value"), "risk.signals-value");
        assert_eq!(encode_path("a b?"), "a%20b%3F");
    }

    #[test]
    fn an_unreachable_registry_is_a_clear_error() {
        // Port 9 on loopback: nothing listens.
        let registry = Registry::new("http://127.0.0.1:9", None, true);
        let error = registry.schema_ids(&OutputTopics::default()).unwrap_err().to_string();
        assert!(error.contains("schema registry http://127.0.0.1:9 unreachable"), "{error}");
    }
}
