//! Compiling pack files into a [`Pack`]: YAML parsed, then one pass per
//! section — `version`, `lists`, `features`, `rules` (with their actions
//! and labels), `decisions`, `tests` — each in its own file, every error
//! collected with its place — then, for a pack that compiles, the lints
//! (`lint.rs`) that find what compiles but cannot be meant. Name
//! resolution and slots are `env.rs`; the result's shape is `pack.rs`.

mod actions;
mod decisions;
mod duration;
mod features;
mod lint;
mod lists;
mod rules;
mod tests;
mod version;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gavel_model::{EventKind, Fnv64};
use serde_saphyr::Spanned;

use crate::diagnostic::code;
use crate::env::PackEnv;
use crate::expr::{self, CompileError, Plan, StringList, Type};
use crate::format::PackFile;
use crate::{Diagnostic, Pack, Result, RulesError};

pub use decisions::{SCORE_RANGE, THRESHOLD_RANGE};
pub use duration::format_duration;
pub(crate) use duration::parse_window;
pub use features::{aggregate_type, aggregate_value_types};

impl Pack {
    /// Compiles a pack from its files, given as `(path, text)` pairs: the
    /// YAML files (`.yaml`/`.yml`) and any data files lists refer to.
    /// Returns every error found across all files; a pack that compiles
    /// carries its warnings in [`Pack::warnings`].
    pub fn compile<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Pack> {
        let files: Vec<(&str, &str)> = files.into_iter().collect();
        let mut c = PackCompiler::default();
        let mut parsed = Vec::new();
        for (name, text) in &files {
            if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                continue;
            }
            match serde_saphyr::from_str::<Option<PackFile>>(text) {
                Ok(file) => parsed.push(Source { name, text, file: file.unwrap_or_default() }),
                Err(e) => c.diags.push(yaml_diagnostic(name, &e)),
            }
        }
        let version = c.version(&parsed);
        let lists = c.lists(&parsed, &files);
        let list_index: HashMap<String, Arc<StringList>> =
            lists.iter().map(|l| (l.name.clone(), Arc::clone(l))).collect();
        let (features, feature_defs) = c.features(&parsed, &list_index);
        let rules = c.rules(&parsed, &features, &feature_defs, &list_index);
        let decisions = c.decisions(&parsed);
        let tests = c.tests(&parsed);
        if !c.diags.is_empty() {
            return Err(RulesError::Invalid(c.diags));
        }
        let Some(version) = version else {
            return Err(RulesError::Invalid(vec![Diagnostic::whole(
                "<pack>",
                code::MISSING,
                "no file sets `version`",
            )]));
        };
        c.lints(&parsed, &features, &rules);
        let warnings = c.warnings;
        Ok(Pack { version, hash: content_hash(&files), lists, features, rules, decisions, tests, warnings })
    }
}

/// FNV-1a over names (relative to the pack directory) and contents, in name
/// order: a stable content id wherever the pack is loaded from.
fn content_hash(files: &[(&str, &str)]) -> String {
    let dir_of = |n: &str| n.rfind('/').map_or(0, |i| i + 1);
    let common = files.iter().map(|(n, _)| &n[..dir_of(n)]).reduce(|a, b| {
        let mut len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        len = a[..len].rfind('/').map_or(0, |i| i + 1);
        &a[..len]
    });
    let strip = common.map_or(0, str::len);
    let mut sorted: Vec<(&str, &str)> = files.iter().map(|(n, t)| (&n[strip..], *t)).collect();
    sorted.sort();
    let mut h = Fnv64::new();
    for (name, text) in sorted {
        h.write(name.as_bytes()).write(&[0]).write(text.as_bytes()).write(&[0]);
    }
    h.hex()
}

/// One parsed YAML file of the pack.
struct Source<'a> {
    name: &'a str,
    text: &'a str,
    file: PackFile,
}

/// What became of a rule the pack defines, for the tests that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleStatus {
    /// Compiled and enabled: tests may name it.
    Enabled,
    /// Compiled, `enabled: false`.
    Disabled,
    /// Did not compile: its own errors say why, tests naming it add none.
    Failed,
}

/// The compiler's state: the diagnostics found so far, and what the lints
/// need to know about the pack's rules.
#[derive(Default)]
struct PackCompiler {
    /// Errors.
    diags: Vec<Diagnostic>,
    /// Warnings, reported when the pack compiles.
    warnings: Vec<Diagnostic>,
    /// Every rule id defined, and what became of it.
    rule_status: HashMap<String, RuleStatus>,
    /// Features read by any expression of an enabled rule (condition,
    /// action ids, label ids).
    features_read: HashSet<usize>,
    /// Features read by disabled rules.
    features_read_by_disabled: HashSet<usize>,
}

impl PackCompiler {
    /// An error (or, for a `W` code, a warning) at a YAML node.
    fn at<T>(&mut self, code: &'static str, src: &Source<'_>, spanned: &Spanned<T>, message: impl Into<String>) {
        self.push(Diagnostic::at_location(src.name, src.text, &spanned.referenced, code, message.into()));
    }

    fn push(&mut self, diag: Diagnostic) {
        if diag.is_error() { self.diags.push(diag) } else { self.warnings.push(diag) }
    }

    fn kinds(&mut self, src: &Source<'_>, on: &Spanned<Vec<String>>) -> Option<Vec<EventKind>> {
        let mut kinds = Vec::new();
        let mut ok = true;
        for name in &on.value {
            match EventKind::from_name(name) {
                Some(k) => kinds.push(k),
                None => {
                    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    let hint =
                        expr::nearest(name, &names).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                    self.at(code::UNKNOWN_NAME, src, on, format!("unknown event kind `{name}`{hint}"));
                    ok = false;
                }
            }
        }
        if kinds.is_empty() && ok {
            self.at(code::MISSING, src, on, "`on` needs at least one event kind");
            ok = false;
        }
        ok.then_some(kinds)
    }

    /// Compiles one expression field, reporting errors at their place in the file.
    fn expression(
        &mut self,
        src: &Source<'_>,
        spanned: &Spanned<String>,
        env: &PackEnv<'_>,
        expected: &[Type],
    ) -> Option<Plan> {
        match expr::compile(&spanned.value, env) {
            Ok(plan) if expected.contains(plan.ty()) => {
                // W003, W004: the expression compiler's own warnings.
                for w in plan.warnings() {
                    let at = CompileError { start: w.start, end: w.end, message: w.message.clone() };
                    self.in_expression(w.code, src, spanned, &at);
                }
                Some(plan)
            }
            Ok(plan) => {
                let want = expected.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ");
                self.expression_error(
                    src,
                    spanned,
                    CompileError {
                        start: 0,
                        end: spanned.value.len(),
                        message: format!("expected {want}, got {}", plan.ty()),
                    },
                );
                None
            }
            Err(errors) => {
                for e in errors {
                    self.expression_error(src, spanned, e);
                }
                None
            }
        }
    }

    fn expression_error(&mut self, src: &Source<'_>, spanned: &Spanned<String>, e: CompileError) {
        self.in_expression(code::EXPRESSION, src, spanned, &e);
    }

    /// A problem at bytes `e.start..e.end` of the expression in `spanned`.
    fn in_expression(&mut self, code: &'static str, src: &Source<'_>, spanned: &Spanned<String>, e: &CompileError) {
        self.push(Diagnostic::in_expression(src.name, src.text, &spanned.referenced, &spanned.value, code, e));
    }
}

fn yaml_diagnostic(file: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = error.location().map_or((0, 0), |loc| (loc.line() as usize, loc.column() as usize));
    // The YAML error text carries its own position and source excerpt; keep
    // the message itself (the renderer draws the excerpt).
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.strip_prefix("line ").and_then(|rest| rest.split_once(": ")) {
        Some((_position, message)) => message,
        None => first,
    };
    let message = message.split(" at line ").next().unwrap_or(message).to_string();
    Diagnostic::at_place(file, line, column, code::YAML, message)
}

#[cfg(test)]
mod hash_tests {
    use super::content_hash;

    #[test]
    fn content_hash_is_pinned() {
        // Computed by the hand-rolled FNV-1a this crate used before `gavel_model::fnv`.
        let files = [("rules/pack/a.yaml", "version: x\n"), ("rules/pack/lists/b.txt", "é\n")];
        assert_eq!(content_hash(&files), "7088f9aecf0832b7");
    }
}
