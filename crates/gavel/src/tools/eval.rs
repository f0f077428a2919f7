//! `gavel eval`: evaluates one expression against one event (and given
//! feature values and a pack's lists), for T&S ops trying a condition out.
//! The result is JSON on stdout either way; an expression that does not
//! compile (each error at its `line:col` in the expression) or fails to
//! evaluate makes the command exit non-zero.

use std::path::Path;

use anyhow::Context;
use gavel_model::{Event, EventKind};
use gavel_rules::expr::{Activation, Type, Value};
use gavel_rules::{compile_expression, event_slot, event_slot_is_set, span};

/// What `gavel eval` prints, and whether it is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// `{"type": ..., "value": ...}`, or `{"error": ..., "errors": [...]}`
    /// with each compile error's line and column in the expression.
    pub json: String,
    /// The expression did not compile or failed to evaluate.
    pub failed: bool,
}

/// Evaluates `expression` against the event in `event_json` (proto3 JSON),
/// with feature values from `features_json` (`{"name": number}`) and the
/// lists of the pack in `pack`, if given.
pub fn eval(
    expression: &str,
    event_json: &[u8],
    features_json: Option<&str>,
    pack: Option<&Path>,
) -> anyhow::Result<Evaluation> {
    let event = gavel_model::decode_json(event_json).context("decoding the event")?;
    let kind = event.kind().context("the event has no payload")?;
    let features: Vec<(String, f64)> = match features_json {
        Some(text) => {
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(text).context("--features must be a JSON object of numbers")?;
            map.into_iter()
                .map(|(k, v)| {
                    v.as_f64().map(|n| (k.clone(), n)).with_context(|| format!("feature `{k}` is not a number"))
                })
                .collect::<anyhow::Result<_>>()?
        }
        None => Vec::new(),
    };
    let lists = match pack {
        Some(dir) => crate::tools::pack::load(dir)?.lists,
        None => Vec::new(),
    };
    let typed: Vec<(String, Type)> = features
        .iter()
        .map(|(name, v)| (name.clone(), if v.fract() == 0.0 && v.abs() < 9e15 { Type::Int } else { Type::Double }))
        .collect();
    let plan = match compile_expression(expression, &[kind], &typed, &lists) {
        Ok(plan) => plan,
        Err(errors) => {
            let placed: Vec<serde_json::Value> = errors
                .iter()
                .map(|e| {
                    let (line, column) = span::line_col(expression, e.start);
                    let length = expression.get(e.start..e.end).map_or(1, |t| t.chars().count().max(1));
                    serde_json::json!({ "line": line, "column": column, "length": length, "message": e.message })
                })
                .collect();
            let messages: Vec<String> = placed
                .iter()
                .map(|e| format!("{}:{}: {}", e["line"], e["column"], e["message"].as_str().unwrap_or_default()))
                .collect();
            let json = serde_json::json!({ "error": messages.join("; "), "errors": placed }).to_string();
            return Ok(Evaluation { json, failed: true });
        }
    };
    let activation = EvalActivation { event: &event, kind, features: &features };
    Ok(match plan.eval(&activation) {
        Ok(value) => Evaluation {
            json: format!("{{\"type\":\"{}\",\"value\":{}}}", plan.ty(), value.to_json_string()),
            failed: false,
        },
        Err(e) => Evaluation { json: serde_json::json!({ "error": e.to_string() }).to_string(), failed: true },
    })
}

struct EvalActivation<'a> {
    event: &'a Event,
    kind: EventKind,
    features: &'a [(String, f64)],
}

impl<'a> Activation<'a> for EvalActivation<'a> {
    fn field(&self, slot: u32) -> Value<'a> {
        let f = match event_slot(self.event, self.kind, slot) {
            Ok(value) => return value,
            Err(feature) => feature,
        };
        match self.features.get(f) {
            Some((_, v)) if v.fract() == 0.0 && v.abs() < 9e15 => Value::Int(*v as i64),
            Some((_, v)) => Value::Double(*v),
            None => Value::Null,
        }
    }

    fn has(&self, slot: u32) -> bool {
        event_slot_is_set(self.event, slot)
    }
}

/// `gavel eval` as the command line gives it: reads the event file and
/// evaluates.
pub fn eval_file(
    expression: &str,
    event_path: &Path,
    features_json: Option<&str>,
    pack: Option<&Path>,
) -> anyhow::Result<Evaluation> {
    let bytes = std::fs::read(event_path).with_context(|| format!("reading {}", event_path.display()))?;
    eval(expression, &bytes, features_json, pack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_reads_event_fields_features_and_lists() {
        let event = br#"{"userId":"u1","chatMessageSent":{"text":"pay me on Venmo"}}"#;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let out = eval(
            "lists.payment_apps.exists(k, event.chat_message_sent.text.folded().contains(k)) && features.n > 2",
            event,
            Some(r#"{"n": 3}"#),
            Some(&dir),
        )
        .unwrap();
        assert_eq!(out, Evaluation { json: r#"{"type":"bool","value":true}"#.into(), failed: false });
        let out = eval("size(event.chat_message_sent.text) * 2", event, None, None).unwrap();
        assert_eq!(out.json, r#"{"type":"int","value":30}"#);
    }

    #[test]
    fn errors_fail_and_say_where_they_are_as_line_and_column() {
        let event = br#"{"userId":"u1","chatMessageSent":{"text":"hi"}}"#;
        let out =
            eval("event.user_id != '' &&\n  event.bid_placed.amount.amount_minor > 1", event, None, None).unwrap();
        assert!(out.failed, "{out:?}");
        let json: serde_json::Value = serde_json::from_str(&out.json).unwrap();
        let error = json["error"].as_str().unwrap();
        assert!(error.starts_with("2:3: `event.bid_placed.amount.amount_minor` is only set on bid_placed"), "{error}");
        assert_eq!((json["errors"][0]["line"].as_u64(), json["errors"][0]["column"].as_u64()), (Some(2), Some(3)));

        let out = eval("1 / (size(event.chat_message_sent.text) - 2)", event, None, None).unwrap();
        assert!(out.failed, "a run-time error fails too: {out:?}");
        assert!(out.json.contains("\"error\""), "{}", out.json);
    }
}
