//! Compiling pack files into a [`Pack`]: names resolved to indices, windows
//! parsed, conditions checked against the declared features.

use std::collections::{HashMap, HashSet};

use gavel_model::EventKind;

use crate::format::{FeatureDef, PackFile, RuleDef};
use crate::{Diagnostic, Result, RulesError};

/// A compiled rule pack, ready for the engine.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The pack's declared version, stamped on every output.
    pub version: String,
    /// Features, indexed by [`Condition::feature`].
    pub features: Vec<Feature>,
    /// Enabled rules, in file order.
    pub rules: Vec<Rule>,
}

/// The envelope field a feature is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// `user_id`.
    User,
    /// `device_id`.
    Device,
    /// `ip`.
    Ip,
}

impl KeyField {
    fn parse(name: &str) -> Option<KeyField> {
        match name {
            "user" => Some(KeyField::User),
            "device" => Some(KeyField::Device),
            "ip" => Some(KeyField::Ip),
            _ => None,
        }
    }

    /// The key's value in an event, `None` when the event lacks it.
    pub fn of(self, event: &gavel_model::Event) -> Option<&str> {
        let value = match self {
            KeyField::User => Some(event.user_id.as_str()),
            KeyField::Device => event.device_id.as_deref(),
            KeyField::Ip => event.ip.as_deref(),
        };
        value.filter(|v| !v.is_empty())
    }
}

/// How a feature aggregates the events in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Number of events.
    Count,
}

/// A windowed aggregate the velocity store computes.
#[derive(Debug, Clone)]
pub struct Feature {
    /// Name rules refer to as `features.<name>`.
    pub name: String,
    /// Event kinds that update it.
    pub on: Vec<EventKind>,
    /// What it is grouped by.
    pub key: KeyField,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// The aggregate.
    pub aggregate: Aggregate,
}

/// Whether a rule's hits change outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleMode {
    /// Scores count and actions are emitted.
    Enforce,
    /// Evaluated and reported only.
    Shadow,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// Applies the operator.
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
        }
    }
}

/// `features.<feature> <op> <threshold>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// Index into [`Pack::features`].
    pub feature: usize,
    /// The comparison.
    pub op: CmpOp,
    /// The number compared against.
    pub threshold: f64,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, stable across versions; used in outputs and metric labels.
    pub id: String,
    /// What the rule catches, for reviewers.
    pub description: String,
    /// The team or person who answers for the rule.
    pub owner: Option<String>,
    /// Event kinds the rule applies to.
    pub on: Vec<EventKind>,
    /// When it fires.
    pub condition: Condition,
    /// Score added when it fires.
    pub score: i32,
    /// Enforce or shadow.
    pub mode: RuleMode,
}

impl Pack {
    /// Compiles a pack from its files, given as `(name, text)` pairs. Returns
    /// every error found across all files.
    pub fn compile<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Pack> {
        let mut diags = Vec::new();
        let mut parsed = Vec::new();
        for (name, text) in files {
            match serde_saphyr::from_str::<Option<PackFile>>(text) {
                Ok(file) => parsed.push((name, text, file.unwrap_or_default())),
                Err(e) => diags.push(yaml_diagnostic(name, &e)),
            }
        }

        let mut version = None;
        let mut features = Vec::new();
        let mut feature_index = HashMap::new();
        // Features that failed to compile: rules reading them are not
        // reported again, the feature's own error says what to fix.
        let mut broken = HashSet::new();
        for (name, text, file) in &parsed {
            if let Some(v) = &file.version {
                if version.is_some() {
                    diags.push(at(name, text, "version:", "`version` is set in more than one file"));
                }
                version = Some(v.clone());
            }
            for def in &file.features {
                match compile_feature(def) {
                    Ok(f) => {
                        if feature_index.insert(f.name.clone(), features.len()).is_some() {
                            diags.push(at(name, text, &def.name, &format!("duplicate feature `{}`", def.name)));
                        }
                        features.push(f);
                    }
                    Err(msg) => {
                        broken.insert(def.name.as_str());
                        diags.push(at(name, text, &def.name, &msg));
                    }
                }
            }
        }

        let mut rules = Vec::new();
        let mut rule_ids = HashMap::new();
        for (name, text, file) in &parsed {
            for def in &file.rules {
                if rule_ids.insert(def.id.clone(), ()).is_some() {
                    diags.push(at(name, text, &def.id, &format!("duplicate rule id `{}`", def.id)));
                }
                match compile_rule(def, &features, &feature_index) {
                    Ok(rule) if def.enabled => rules.push(rule),
                    Ok(_) => {}
                    Err(RuleError::ReadsBrokenFeature(f)) if broken.contains(f.as_str()) => {}
                    Err(RuleError::ReadsBrokenFeature(f)) => diags.push(at(
                        name,
                        text,
                        &def.when,
                        &format!("rule `{}`: unknown feature `{f}`", def.id),
                    )),
                    Err(RuleError::Invalid(msg)) => diags.push(at(name, text, &def.when, &msg)),
                }
            }
        }

        if version.is_none() && diags.is_empty() {
            diags.push(Diagnostic {
                file: "<pack>".into(),
                line: 0,
                column: 0,
                message: "no file sets `version`".into(),
            });
        }
        if !diags.is_empty() {
            return Err(RulesError::Invalid(diags));
        }
        // version is Some: the check above returned otherwise.
        Ok(Pack {
            version: version.unwrap_or_default(),
            features,
            rules,
        })
    }

    /// The longest feature window in milliseconds: how much history warm-up
    /// must replay to rebuild the store.
    pub fn longest_window_ms(&self) -> u64 {
        self.features.iter().map(|f| f.window_ms).max().unwrap_or(0)
    }
}

fn event_kinds(names: &[String]) -> Result<Vec<EventKind>, String> {
    names
        .iter()
        .map(|n| EventKind::from_name(n).ok_or_else(|| format!("unknown event kind `{n}`")))
        .collect()
}

fn compile_feature(def: &FeatureDef) -> Result<Feature, String> {
    let key = KeyField::parse(&def.key).ok_or_else(|| {
        format!(
            "feature `{}`: unknown key `{}` (expected user, device or ip)",
            def.name, def.key
        )
    })?;
    let aggregate = match def.aggregate.as_str() {
        "count" => Aggregate::Count,
        other => {
            return Err(format!(
                "feature `{}`: unsupported aggregate `{other}` (expected count)",
                def.name
            ));
        }
    };
    let window_ms = parse_window(&def.window).map_err(|e| format!("feature `{}`: {e}", def.name))?;
    Ok(Feature {
        name: def.name.clone(),
        on: event_kinds(&def.on)?,
        key,
        window_ms,
        aggregate,
    })
}

/// Parses `500ms`, `10s`, `5m`, `2h`, `30d`.
pub(crate) fn parse_window(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid window `{text}` (expected e.g. 10s, 5m, 1h, 30d)"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!("invalid window unit in `{text}` (expected ms, s, m, h or d)"));
        }
    };
    let ms = n
        .checked_mul(scale)
        .ok_or_else(|| format!("window `{text}` is too long"))?;
    if ms == 0 || ms > 30 * 86_400_000 {
        return Err(format!("window `{text}` must be between 1ms and 30d"));
    }
    Ok(ms)
}

/// Why a rule did not compile.
enum RuleError {
    /// The condition names a feature that is not declared (or did not compile).
    ReadsBrokenFeature(String),
    /// Anything else, as a message.
    Invalid(String),
}

impl From<String> for RuleError {
    fn from(message: String) -> Self {
        RuleError::Invalid(message)
    }
}

fn compile_rule(def: &RuleDef, features: &[Feature], index: &HashMap<String, usize>) -> Result<Rule, RuleError> {
    let on = event_kinds(&def.on)?;
    let mode = match def.mode.as_deref() {
        None | Some("enforce") => RuleMode::Enforce,
        Some("shadow") => RuleMode::Shadow,
        Some(other) => {
            return Err(format!("rule `{}`: unknown mode `{other}` (expected enforce or shadow)", def.id).into());
        }
    };
    let condition = parse_condition(&def.when, index).map_err(|e| match e {
        RuleError::Invalid(msg) => RuleError::Invalid(format!("rule `{}`: {msg}", def.id)),
        broken => broken,
    })?;
    let feature = &features[condition.feature];
    if let Some(kind) = on.iter().find(|k| !feature.on.contains(k)) {
        return Err(format!(
            "rule `{}` runs on `{kind}` but feature `{}` is not updated by it, so it would read a stale value",
            def.id, feature.name
        )
        .into());
    }
    Ok(Rule {
        id: def.id.clone(),
        description: def.description.clone(),
        owner: def.owner.clone(),
        on,
        condition,
        score: def.score,
        mode,
    })
}

fn parse_condition(text: &str, index: &HashMap<String, usize>) -> Result<Condition, RuleError> {
    let mut parts = text.split_whitespace();
    let (Some(lhs), Some(op), Some(rhs), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(format!("condition `{text}` must have the form `features.<name> <op> <number>`").into());
    };
    let name = lhs
        .strip_prefix("features.")
        .ok_or_else(|| format!("`{lhs}` is not a feature (write `features.<name>`)"))?;
    let op = match op {
        ">" => CmpOp::Gt,
        ">=" => CmpOp::Ge,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        "==" => CmpOp::Eq,
        "!=" => CmpOp::Ne,
        other => return Err(format!("unknown operator `{other}`").into()),
    };
    let threshold: f64 = rhs.parse().map_err(|_| format!("`{rhs}` is not a number"))?;
    let feature = *index
        .get(name)
        .ok_or_else(|| RuleError::ReadsBrokenFeature(name.to_string()))?;
    Ok(Condition { feature, op, threshold })
}

/// A diagnostic at the first place `needle` occurs in `text` (line 0 if absent).
fn at(file: &str, text: &str, needle: &str, message: &str) -> Diagnostic {
    let (line, column) = text
        .find(needle)
        .map(|offset| {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
            (line, column)
        })
        .unwrap_or((0, 0));
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        message: message.to_string(),
    }
}

fn yaml_diagnostic(file: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = error
        .location()
        .map_or((0, 0), |loc| (loc.line() as usize, loc.column() as usize));
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACK: &str = r#"
version: "test-1"
features:
  - name: bids_per_user_10s
    on: [bid_placed]
    key: user
    window: 10s
    aggregate: count
rules:
  - id: bid_bot
    description: bids faster than a person
    on: [bid_placed]
    when: features.bids_per_user_10s > 8
    score: 60
"#;

    #[test]
    fn compiles_a_pack() {
        let pack = Pack::compile([("pack.yaml", PACK)]).unwrap();
        assert_eq!(pack.version, "test-1");
        assert_eq!(pack.features[0].window_ms, 10_000);
        assert_eq!(
            pack.rules[0].condition,
            Condition {
                feature: 0,
                op: CmpOp::Gt,
                threshold: 8.0
            }
        );
        assert_eq!(pack.longest_window_ms(), 10_000);
    }

    #[test]
    fn reports_every_error_with_a_place() {
        let bad = PACK.replace("window: 10s", "window: 10x").replace("> 8", "> eight");
        let Err(RulesError::Invalid(diags)) = Pack::compile([("pack.yaml", bad.as_str())]) else {
            panic!("expected errors");
        };
        assert_eq!(diags.len(), 2, "{diags:?}");
        assert!(diags.iter().all(|d| d.line > 0), "{diags:?}");
        assert!(diags[0].message.contains("10x"));
        assert!(diags[1].message.contains("eight"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let bad = PACK.replace("score: 60", "score: 60\n    scroe: 1");
        let Err(RulesError::Invalid(diags)) = Pack::compile([("pack.yaml", bad.as_str())]) else {
            panic!("expected errors");
        };
        assert!(diags[0].message.contains("scroe"), "{diags:?}");
        assert_eq!(diags[0].line, 15, "{diags:?}");
    }

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("500ms"), Ok(500));
        assert_eq!(parse_window("1h"), Ok(3_600_000));
        assert_eq!(parse_window("30d"), Ok(2_592_000_000));
        assert!(parse_window("31d").is_err());
        assert!(parse_window("0s").is_err());
        assert!(parse_window("s").is_err());
    }
}
