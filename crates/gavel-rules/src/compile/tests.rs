//! The `tests` section: rule tests' steps timed, their events checked
//! field by field against the event schema and decoded, and their
//! expectations checked against the pack's rules. A rule that failed to
//! compile adds nothing here: its own errors say what to fix.

use gavel_model::or_list;
use gavel_model::pb::Decision;
use serde_saphyr::Spanned;

use super::actions::pack_action_type;
use super::duration::parse_offset;
use super::{PackCompiler, RuleStatus, Source};
use crate::diagnostic::code;
use crate::expr;
use crate::format::ExpectDef;
use crate::tests_def::{Expect, Step, TestCase};
use crate::{Diagnostic, span};
use gavel_model::schema::{EVENT_FIELDS, FieldType, field};

impl PackCompiler {
    /// Every test whose steps and expectations compile.
    pub(super) fn tests(&mut self, parsed: &[Source<'_>]) -> Vec<TestCase> {
        let mut tests = Vec::new();
        for src in parsed {
            for def in &src.file.tests {
                let place = |at: &serde_saphyr::Location| format!("{}:{}:{}", src.name, at.line(), at.column());
                let mut steps = Vec::new();
                let mut clock = 0u64;
                let mut ok = true;
                for (i, step) in def.steps.iter().enumerate() {
                    let at_ms = match &step.at {
                        Some(at) => match parse_offset(&at.value) {
                            Ok(ms) => ms,
                            Err(e) => {
                                self.at(code::BAD_VALUE, src, at, e);
                                ok = false;
                                continue;
                            }
                        },
                        None if i == 0 => 0,
                        None => clock + 1_000,
                    };
                    let every_ms = match &step.every {
                        Some(every) => match parse_offset(&every.value) {
                            Ok(ms) => ms,
                            Err(e) => {
                                self.at(code::BAD_VALUE, src, every, e);
                                ok = false;
                                continue;
                            }
                        },
                        None => 100,
                    };
                    let repeat = step.repeat.unwrap_or(1).max(1);
                    clock = at_ms + every_ms * u64::from(repeat - 1);
                    if !self.event_fields(src, &step.event) {
                        ok = false;
                        continue;
                    }
                    let event = match serde_json::to_vec(&step.event.value)
                        .map_err(|e| e.to_string())
                        .and_then(|bytes| gavel_model::decode_json(&bytes).map_err(|e| e.to_string()))
                    {
                        Ok(event) => event,
                        Err(e) => {
                            self.at(code::TEST_EVENT, src, &step.event, format!("test event: {e}"));
                            ok = false;
                            continue;
                        }
                    };
                    let expect = match &step.expect {
                        Some(expect) => match self.expect(src, expect) {
                            Some(e) => Some(e),
                            None => {
                                ok = false;
                                continue;
                            }
                        },
                        None => None,
                    };
                    steps.push(Step { at_ms, event, repeat, every_ms, expect, place: place(&step.event.referenced) });
                }
                if ok {
                    tests.push(TestCase { name: def.name.value.clone(), place: place(&def.name.referenced), steps });
                }
            }
        }
        tests
    }

    fn expect(&mut self, src: &Source<'_>, def: &ExpectDef) -> Option<Expect> {
        let mut ok = true;
        let mut rule_ids = |this: &mut Self, ids: &[Spanned<String>]| -> Vec<String> {
            for id in ids {
                match this.rule_status.get(&id.value) {
                    Some(RuleStatus::Enabled) => {}
                    // Reported where the rule is; the test cannot run.
                    Some(RuleStatus::Failed) => ok = false,
                    Some(RuleStatus::Disabled) => {
                        let message = format!("rule `{}` is disabled (`enabled: false`), so it never fires", id.value);
                        this.at(code::UNKNOWN_NAME, src, id, message);
                        ok = false;
                    }
                    None => {
                        let known: Vec<&str> = this.rule_status.keys().map(String::as_str).collect();
                        let hint = expr::nearest(&id.value, &known)
                            .map(|n| format!("; did you mean `{n}`?"))
                            .unwrap_or_default();
                        this.at(code::UNKNOWN_NAME, src, id, format!("unknown rule `{}`{hint}", id.value));
                        ok = false;
                    }
                }
            }
            ids.iter().map(|i| i.value.clone()).collect()
        };
        let fires = rule_ids(self, &def.fires);
        let not_fires = rule_ids(self, &def.not_fires);
        let decision = match &def.decision {
            None => None,
            Some(d) => match Decision::from_name(&d.value).filter(|d| *d != Decision::Unspecified) {
                Some(decision) => Some(decision),
                None => {
                    let expected = or_list(Decision::SPECIFIED.iter().map(|d| d.as_str()));
                    self.at(
                        code::UNKNOWN_NAME,
                        src,
                        d,
                        format!("unknown decision `{}` (expected {expected})", d.value),
                    );
                    ok = false;
                    None
                }
            },
        };
        let actions = match &def.actions {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for a in list {
                    match pack_action_type(&a.value) {
                        Some(t) => out.push(t),
                        None => {
                            self.at(code::UNKNOWN_NAME, src, a, format!("unknown action `{}`", a.value));
                            ok = false;
                        }
                    }
                }
                Some(out)
            }
        };
        ok.then_some(Expect { fires, not_fires, decision, actions, score: def.score })
    }
}

impl PackCompiler {
    /// Checks every key of a test event against the event schema, as the
    /// proto3 JSON mapping names fields (lowerCamelCase or the proto name):
    /// an unknown key is an error with the nearest valid name, never a
    /// field silently left unset. True when every key is known.
    fn event_fields(&mut self, src: &Source<'_>, event: &Spanned<serde_json::Value>) -> bool {
        let mut unknown = Vec::new();
        unknown_fields(&event.value, "", &mut unknown);
        // Each key is found in the file after the event's start, so its own
        // line and column are given.
        let start = span::offset_of(src.text, event.referenced.line() as usize, event.referenced.column() as usize);
        let from = start.unwrap_or(src.text.len());
        for (key, within, hint) in &unknown {
            let message = match (within.is_empty(), hint) {
                (true, Some(h)) => format!("unknown field `{key}` in test event; did you mean `{h}`?"),
                (true, None) => format!("unknown field `{key}` in test event"),
                (false, Some(h)) => format!("unknown field `{key}` in `{within}` of test event; did you mean `{h}`?"),
                (false, None) => format!("unknown field `{key}` in `{within}` of test event"),
            };
            match find_key(src.text, from, key) {
                Some(at) => {
                    let (line, column) = span::line_col(src.text, at);
                    let mut d = Diagnostic::at_place(src.name, line, column, code::TEST_EVENT, message);
                    d.len = key.chars().count();
                    self.push(d);
                }
                None => self.at(code::TEST_EVENT, src, event, message),
            }
        }
        unknown.is_empty()
    }
}

/// The keys of `value` (an event, or the message at schema path `prefix`)
/// the schema does not have, each with the path it is in (as written) and
/// the nearest valid key, in the key's own spelling (camelCase or snake).
fn unknown_fields(value: &serde_json::Value, prefix: &str, out: &mut Vec<(String, String, Option<String>)>) {
    let serde_json::Value::Object(map) = value else { return };
    for (key, child) in map {
        let name = gavel_model::snake_case(key);
        let path = if prefix.is_empty() { name } else { format!("{prefix}.{name}") };
        match field(&path) {
            Some(def) if def.ty == FieldType::Message => unknown_fields(child, &path, out),
            Some(_) => {}
            None => {
                let camel = !key.contains('_');
                let siblings: Vec<String> = EVENT_FIELDS
                    .iter()
                    .filter_map(|f| {
                        let rest =
                            if prefix.is_empty() { f.path } else { f.path.strip_prefix(prefix)?.strip_prefix('.')? };
                        (!rest.contains('.')).then(|| if camel { camel_case(rest) } else { rest.to_string() })
                    })
                    .collect();
                let refs: Vec<&str> = siblings.iter().map(String::as_str).collect();
                let within = prefix
                    .split('.')
                    .filter(|p| !p.is_empty())
                    .map(|p| if camel { camel_case(p) } else { p.to_string() });
                out.push((
                    key.clone(),
                    within.collect::<Vec<_>>().join("."),
                    expr::nearest(key, &refs).map(str::to_string),
                ));
            }
        }
    }
}

/// `amount_minor` → `amountMinor`, the proto3 JSON name.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The byte where `key` is written as a mapping key (bare or quoted, then
/// `:`) at or after byte `from` of `text`.
fn find_key(text: &str, from: usize, key: &str) -> Option<usize> {
    let mut at = from.min(text.len());
    while let Some(i) = text.get(at..)?.find(key) {
        let start = at + i;
        let end = start + key.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].trim_start_matches(['"', '\'']).trim_start();
        let word_start = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if word_start && after.starts_with(':') {
            return Some(start);
        }
        at = end;
    }
    None
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn names_convert_both_ways() {
        assert_eq!(gavel_model::snake_case("amountMinor"), "amount_minor");
        assert_eq!(gavel_model::snake_case("amount_minor"), "amount_minor");
        assert_eq!(camel_case("payment_attempted"), "paymentAttempted");
    }

    #[test]
    fn unknown_keys_are_found_at_every_depth_with_the_nearest_name() {
        let event = serde_json::json!({
            "userId": "u",
            "paymentAttempted": { "amount": { "amountMinr": 5, "currency": "USD" }, "card": { "bin": "4" } },
            "device": "d",
        });
        let mut out = Vec::new();
        unknown_fields(&event, "", &mut out);
        assert_eq!(
            out,
            [
                ("device".to_string(), String::new(), Some("deviceId".to_string())),
                ("amountMinr".to_string(), "paymentAttempted.amount".to_string(), Some("amountMinor".to_string())),
            ]
        );
    }

    #[test]
    fn keys_are_found_as_keys_not_as_values() {
        let text = "e: { a: amountMinr, amountMinr: 1 }";
        assert_eq!(find_key(text, 0, "amountMinr"), Some(20));
        assert_eq!(find_key(text, 0, "nope"), None);
        assert_eq!(find_key("{\"k\": 1}", 0, "k"), Some(2));
    }
}
