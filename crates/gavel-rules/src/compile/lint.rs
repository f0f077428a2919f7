//! Lints: what compiles but is almost certainly not what its author meant,
//! reported as warnings once the whole pack compiles — "no rule sets this
//! label" cannot be said while a rule that might set it is broken.
//!
//! - `W001`: a label tested (`'x' in labels.user`) that no enforcing rule
//!   of the pack adds on that entity.
//! - `W002`: a feature no expression of an enabled rule reads.
//! - `W005`: a rule that never sees data in a feature it reads: none of the
//!   kinds it runs on feeds the feature, so the value is looked up by the
//!   key this event gives, and that key includes `event.kind`, which here
//!   is never one of the kinds the feature was fed by.
//! - `W006`: a pack with no enabled rule, which allows every event.
//!
//! `W003`, `W004` and `W007` are the expression compiler's, reported where each
//! expression compiles. These lints read expressions' syntax trees (the
//! `cel` parser's), never evaluate anything.

use std::collections::{HashMap, HashSet};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo};
use cel::parser::Parser;
use serde_saphyr::Spanned;

use super::{PackCompiler, RuleStatus, Source};
use crate::diagnostic::code;
use crate::env::kinds_list;
use crate::expr::{self, CompileError};
use crate::span::char_to_byte;
use crate::{Feature, LabelEntity, Rule, RuleMode};

impl PackCompiler {
    /// Every lint, over a pack that compiled.
    pub(super) fn lints(&mut self, parsed: &[Source<'_>], features: &[Feature], rules: &[Rule]) {
        self.labels_never_set(parsed, rules);
        self.features_never_read(parsed, features);
        self.never_fires(parsed, features, rules);
        self.no_rules(parsed, rules);
    }

    /// W006, on the whole pack, when no rule is enabled.
    fn no_rules(&mut self, parsed: &[Source<'_>], rules: &[Rule]) {
        if rules.is_empty() {
            let file = parsed.first().map_or("pack", |src| src.name);
            self.push(crate::Diagnostic::whole(
                file,
                crate::diagnostic::code::NO_RULES,
                "the pack has no enabled rules: it allows every event (`gavel run` refuses to serve it unless \
                 `allow_empty_pack = true`)",
            ));
        }
    }

    /// W001, at each test of a label no enforcing rule adds on its entity.
    fn labels_never_set(&mut self, parsed: &[Source<'_>], rules: &[Rule]) {
        // (entity, label) → the rules that add it, and whether they enforce.
        let mut adders: HashMap<(LabelEntity, &str), Vec<(&str, RuleMode)>> = HashMap::new();
        for rule in rules {
            for op in rule.labels.iter().filter(|op| op.ttl_ms.is_some()) {
                adders.entry((op.entity, op.label.as_str())).or_default().push((rule.id.as_str(), rule.mode));
            }
        }
        for src in parsed {
            for def in &src.file.rules {
                if self.rule_status.get(&def.id.value) != Some(&RuleStatus::Enabled) {
                    continue;
                }
                for test in label_tests(&def.when.value) {
                    let Some(entity) = LabelEntity::from_name(&test.entity) else { continue };
                    let by = adders.get(&(entity, test.label.as_str())).map_or(&[][..], Vec::as_slice);
                    if by.iter().any(|(_, mode)| *mode == RuleMode::Enforce) {
                        continue;
                    }
                    let hint = match by.first() {
                        Some((rule, _)) => {
                            format!("; rule `{rule}` adds it, but in shadow mode, which changes no labels")
                        }
                        None => {
                            let elsewhere = LabelEntity::ALL.into_iter().find(|other| {
                                adders
                                    .get(&(*other, test.label.as_str()))
                                    .is_some_and(|by| by.iter().any(|(_, mode)| *mode == RuleMode::Enforce))
                            });
                            let same_entity: Vec<&str> = adders
                                .iter()
                                .filter(|((e, _), by)| {
                                    *e == entity && by.iter().any(|(_, mode)| *mode == RuleMode::Enforce)
                                })
                                .map(|((_, label), _)| *label)
                                .collect();
                            match (elsewhere, expr::nearest(&test.label, &same_entity)) {
                                (_, Some(near)) => format!("; did you mean `{near}`?"),
                                (Some(other), None) => {
                                    format!(
                                        "; it is added on the {}, so test it in `labels.{}`",
                                        other.name(),
                                        other.name()
                                    )
                                }
                                (None, None) => String::new(),
                            }
                        }
                    };
                    let message = format!(
                        "label `{}` is never added to `labels.{}` by any rule, so this test is always false{hint}",
                        test.label, test.entity
                    );
                    self.warn_in(src, &def.when, test.start, test.end, code::LABEL_NEVER_SET, message);
                }
            }
        }
    }

    /// W002, at the name of each feature no enabled rule reads.
    fn features_never_read(&mut self, parsed: &[Source<'_>], features: &[Feature]) {
        for (i, feature) in features.iter().enumerate() {
            if self.features_read.contains(&i) {
                continue;
            }
            let Some((src, def)) = parsed
                .iter()
                .find_map(|src| src.file.features.iter().find(|d| d.name.value == feature.name).map(|d| (src, d)))
            else {
                continue;
            };
            let why = if self.features_read_by_disabled.contains(&i) {
                "only disabled rules read it"
            } else {
                "no rule reads it"
            };
            let message = format!(
                "feature `{}` is never read: {why}, yet every [{}] event updates it; read it as `features.{}` or remove it",
                feature.name,
                kinds_list(&feature.on),
                feature.name
            );
            self.at(code::FEATURE_NEVER_READ, src, &def.name, message);
        }
    }

    /// W005, at the feature's name in the condition of each rule that can
    /// never see data in it.
    fn never_fires(&mut self, parsed: &[Source<'_>], features: &[Feature], rules: &[Rule]) {
        let kind_keyed: HashSet<usize> =
            features.iter().enumerate().filter(|(_, f)| reads_event_kind(f.key.source())).map(|(i, _)| i).collect();
        for rule in rules {
            for &f in &rule.reads {
                let feature = &features[f];
                let fed_here = rule.on.iter().any(|k| feature.on.contains(k));
                if fed_here || !kind_keyed.contains(&f) {
                    continue;
                }
                let Some((src, def)) = parsed
                    .iter()
                    .find_map(|src| src.file.rules.iter().find(|d| d.id.value == rule.id).map(|d| (src, d)))
                else {
                    continue;
                };
                let name = format!("features.{}", feature.name);
                let (start, end) = find_name(&def.when.value, &name).unwrap_or((0, def.when.value.len()));
                let message = format!(
                    "rule `{}` never sees data in `{name}`: it runs on [{}], which do not feed it (only [{}] do), \
                     and its key `{}` includes `event.kind`, so the key computed here never matches one it was fed with",
                    rule.id,
                    kinds_list(&rule.on),
                    kinds_list(&feature.on),
                    feature.key.source()
                );
                self.warn_in(src, &def.when, start, end, code::NEVER_FIRES, message);
            }
        }
    }

    /// A warning at bytes `start..end` of the expression in `spanned`.
    fn warn_in(
        &mut self,
        src: &Source<'_>,
        spanned: &Spanned<String>,
        start: usize,
        end: usize,
        code: &'static str,
        message: String,
    ) {
        self.in_expression(code, src, spanned, &CompileError { start, end, message });
    }
}

/// One `'label' in labels.<entity>` in an expression, with the byte range
/// of its label literal.
#[derive(Debug, PartialEq, Eq)]
struct LabelTest {
    label: String,
    entity: String,
    start: usize,
    end: usize,
}

/// Every test of a constant label in `source` (none when it does not parse).
fn label_tests(source: &str) -> Vec<LabelTest> {
    let Ok((root, info)) = Parser::new().parse_with_source_info(source) else { return Vec::new() };
    let mut out = Vec::new();
    walk(&root, &mut |e| {
        let Expr::Call(call) = &e.expr else { return };
        let [item, set] = call.args.as_slice() else { return };
        if call.func_name != "@in" || call.target.is_some() {
            return;
        }
        let (Expr::Literal(LiteralValue::String(label)), Expr::Select(select)) = (&item.expr, &set.expr) else {
            return;
        };
        if !matches!(&select.operand.expr, Expr::Ident(root) if root == "labels") {
            return;
        }
        let (start, end) = literal_span(&info, source, item);
        out.push(LabelTest { label: label.to_string(), entity: select.field.clone(), start, end });
    });
    out
}

/// Whether `source` reads `event.kind` anywhere.
fn reads_event_kind(source: &str) -> bool {
    let Ok(root) = Parser::new().parse(source) else { return false };
    let mut found = false;
    walk(&root, &mut |e| {
        if let Expr::Select(s) = &e.expr
            && s.field == "kind"
            && !s.test
            && matches!(&s.operand.expr, Expr::Ident(root) if root == "event")
        {
            found = true;
        }
    });
    found
}

/// The byte range of the first `name` (a dotted name such as
/// `features.x`) in `source` that is a whole name, not part of a longer one.
fn find_name(source: &str, name: &str) -> Option<(usize, usize)> {
    let is_name_char = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = source[from..].find(name) {
        let (start, end) = (from + i, from + i + name.len());
        let before = source[..start].chars().next_back();
        let after = source[end..].chars().next();
        if before.is_none_or(|c| !is_name_char(c) && c != '.') && after.is_none_or(|c| !is_name_char(c)) {
            return Some((start, end));
        }
        from = end;
    }
    None
}

/// The byte range of a literal: from its offset to the end of the quoted
/// text the parser saw there.
fn literal_span(info: &SourceInfo, source: &str, e: &IdedExpr) -> (usize, usize) {
    let Some((start, _)) = info.offset_for(e.id) else { return (0, source.len()) };
    let start = char_to_byte(source, start as usize);
    let rest = &source[start..];
    let end = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].find(q).map_or(source.len(), |i| start + i + 2),
        _ => crate::span::next_char_boundary(source, start),
    };
    (start, end)
}

/// Calls `visit` on `e` and every expression below it.
fn walk(e: &IdedExpr, visit: &mut impl FnMut(&IdedExpr)) {
    visit(e);
    match &e.expr {
        Expr::Call(call) => {
            call.target.iter().for_each(|t| walk(t, visit));
            call.args.iter().for_each(|a| walk(a, visit));
        }
        Expr::Comprehension(c) => {
            for part in [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                walk(part, visit);
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|x| walk(x, visit)),
        Expr::Map(map) => map.entries.iter().for_each(|entry| walk_entry(&entry.expr, visit)),
        Expr::Struct(s) => s.entries.iter().for_each(|entry| walk_entry(&entry.expr, visit)),
        Expr::Select(s) => walk(&s.operand, visit),
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
    }
}

fn walk_entry(entry: &EntryExpr, visit: &mut impl FnMut(&IdedExpr)) {
    match entry {
        EntryExpr::StructField(f) => walk(&f.value, visit),
        EntryExpr::MapEntry(m) => {
            walk(&m.key, visit);
            walk(&m.value, visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_tests_are_found_with_their_literal() {
        let source = "event.user_id != '' && !(\"bot\" in labels.user) || 'x' in labels.device || y in labels.ip";
        let tests = label_tests(source);
        assert_eq!(tests.len(), 2, "{tests:?}");
        assert_eq!((tests[0].label.as_str(), tests[0].entity.as_str()), ("bot", "user"));
        assert_eq!(&source[tests[0].start..tests[0].end], "\"bot\"");
        assert_eq!(&source[tests[1].start..tests[1].end], "'x'");
        assert!(label_tests("'a' in").is_empty());
    }

    #[test]
    fn event_kind_reads_and_names_are_found() {
        assert!(reads_event_kind("event.kind + ':' + event.user_id"));
        assert!(!reads_event_kind("event.user_id"));
        assert!(!reads_event_kind("event.kindness"));
        assert_eq!(find_name("features.ab > 1 || features.a > 2", "features.a"), Some((19, 29)));
        assert_eq!(find_name("xfeatures.a", "features.a"), None);
    }
}
