//! The `rules` section: each rule's kinds, mode and condition compiled,
//! the features it reads checked against its kinds, and its actions and
//! label operations.

use std::collections::HashMap;
use std::sync::Arc;

use gavel_model::pb;
use gavel_model::{EventKind, or_list};

use super::decisions::SCORE_RANGE;
use super::{PackCompiler, RuleStatus, Source, parse_window};
use crate::diagnostic::code;
use crate::env::{PackEnv, kinds_list};
use crate::expr::{self, StringList, Type};
use crate::format::{RuleDef, SequenceDef, WaitDef};
use crate::{Feature, LabelEntity, LabelOp, Rule, RuleMode, Sequence, SequenceStep, Wait};
use serde_saphyr::Spanned;

impl PackCompiler {
    /// Every enabled rule, in file order; what became of each rule defined
    /// is kept for the tests and lints.
    pub(super) fn rules(
        &mut self,
        parsed: &[Source<'_>],
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        for src in parsed {
            for def in &src.file.rules {
                if self.rule_status.contains_key(&def.id.value) {
                    self.at(code::DUPLICATE, src, &def.id, format!("duplicate rule id `{}`", def.id.value));
                    continue;
                }
                let status = match self.rule(src, def, features, feature_index, lists) {
                    Some((rule, reads)) if def.enabled => {
                        self.features_read.extend(reads);
                        rules.push(rule);
                        RuleStatus::Enabled
                    }
                    Some((_, reads)) => {
                        self.features_read_by_disabled.extend(reads);
                        RuleStatus::Disabled
                    }
                    None => RuleStatus::Failed,
                };
                self.rule_status.insert(def.id.value.clone(), status);
            }
        }
        rules
    }

    /// One rule, and every feature any of its expressions reads.
    fn rule(
        &mut self,
        src: &Source<'_>,
        def: &RuleDef,
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<(Rule, Vec<usize>)> {
        let score = if SCORE_RANGE.contains(&def.score.value) {
            Some(def.score.value)
        } else {
            let (lo, hi) = (SCORE_RANGE.start(), SCORE_RANGE.end());
            self.at(
                code::BAD_VALUE,
                src,
                &def.score,
                format!("score {} is out of range: a rule's score is {lo} to {hi}", def.score.value),
            );
            None
        };
        let on = self.kinds(src, &def.on)?;
        let mode = match &def.mode {
            None => Some(RuleMode::Enforce),
            Some(m) => match RuleMode::from_name(&m.value) {
                Some(mode) => Some(mode),
                None => {
                    let expected = or_list(pb::RuleMode::SPECIFIED.iter().map(|m| m.as_str()));
                    self.at(code::UNKNOWN_NAME, src, m, format!("unknown mode `{}` (expected {expected})", m.value));
                    None
                }
            },
        };
        let env = PackEnv::new(&on, "rule", feature_index, lists);
        let when = self.expression(src, &def.when, &env, &[Type::Bool]);
        let mut reads = env.reads.take();
        reads.sort_unstable();
        reads.dedup();
        let mut actions = Vec::new();
        for action in &def.actions {
            if let Some(a) = self.action(src, action, &env) {
                actions.push(a);
            }
        }
        if reads.contains(&usize::MAX) {
            // A feature that failed to compile: its own error says what to fix.
            return None;
        }
        self.check_foreign_reads(src, def, &on, &reads, features, feature_index, lists);
        if actions.len() != def.actions.len() {
            return None;
        }
        let labels = self.labels(src, def, &env)?;
        let wait = match &def.wait {
            Some(wait) => Some(self.wait(src, wait, &env, feature_index, lists)?),
            None => None,
        };
        let after = match &def.after {
            Some(after) => Some(self.sequence(src, def, after, &env, features, feature_index, lists)?),
            None => None,
        };
        // Action and label ids may read features too.
        let mut all_reads = env.reads.take();
        all_reads.extend(env.keyed_reads.take());
        if all_reads.contains(&usize::MAX) {
            return None;
        }
        all_reads.extend(&reads);
        let rule = Rule {
            id: def.id.value.clone(),
            description: def.description.clone(),
            owner: def.owner.clone(),
            tags: def.tags.clone(),
            on,
            when: when?,
            reads,
            score: score?,
            mode: mode?,
            actions,
            labels,
            wait,
            after,
        };
        Some((rule, all_reads))
    }

    /// A feature read on a kind that does not feed it is looked up by its
    /// key, computed from this event: the key must make sense here.
    #[allow(clippy::too_many_arguments)]
    fn check_foreign_reads(
        &mut self,
        src: &Source<'_>,
        def: &RuleDef,
        on: &[EventKind],
        reads: &[usize],
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) {
        for &f in reads {
            let feature = &features[f];
            let foreign: Vec<EventKind> = on.iter().copied().filter(|k| !feature.on.contains(k)).collect();
            if foreign.is_empty() {
                continue;
            }
            let key_env = PackEnv::new(&foreign, "rule", feature_index, lists);
            if let Err(errors) = expr::compile(feature.key.source(), &key_env) {
                self.at(
                    code::EXPRESSION,
                    src,
                    &def.when,
                    format!(
                        "rule reads `features.{}` on [{}], which do not feed it, and its key cannot be computed there: {}",
                        feature.name,
                        kinds_list(&foreign),
                        errors[0].message
                    ),
                );
            }
        }
    }

    /// A rule's `wait`: its length, the kinds that cancel it, its key on the
    /// rule's own event (`env`) and the match and filter on a cancelling
    /// event. Those two read the cancelling event only: no features.
    fn wait(
        &mut self,
        src: &Source<'_>,
        def: &Spanned<WaitDef>,
        env: &PackEnv<'_>,
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<Wait> {
        let wait = &def.value;
        let for_ms = parse_window(&wait.within.value).map_err(|e| self.at(code::BAD_VALUE, src, &wait.within, e));
        let key = self.expression(src, &wait.key, env, &[Type::String]);
        if wait.unless.value.is_empty() {
            self.at(code::MISSING, src, &wait.unless, "a wait needs at least one event kind in `unless`");
            return None;
        }
        let unless = self.kinds(src, &wait.unless)?;
        let cancel_env = PackEnv::new(&unless, "wait", feature_index, lists);
        let on_cancel = |c: &mut Self, text: &Spanned<String>, ty: Type| {
            let plan = c.expression(src, text, &cancel_env, &[ty]);
            let read = !cancel_env.reads.take().is_empty() | !cancel_env.keyed_reads.take().is_empty();
            if read && plan.is_some() {
                let message = "a wait's `match` and `where` read the cancelling event, not features";
                c.at(code::EXPRESSION, src, text, message);
                return None;
            }
            plan
        };
        let matches = on_cancel(self, &wait.matches, Type::String);
        let filter = match &wait.filter {
            Some(f) => Some(on_cancel(self, f, Type::Bool)?),
            None => None,
        };
        Some(Wait { for_ms: for_ms.ok()?, unless, key: key?, matches: matches?, filter })
    }

    /// A rule's `after`: the window, the order, the key on the rule's own
    /// event (`env`) and on each step's, and each step's kinds and filter.
    #[allow(clippy::too_many_arguments)]
    fn sequence(
        &mut self,
        src: &Source<'_>,
        def: &RuleDef,
        after: &Spanned<SequenceDef>,
        env: &PackEnv<'_>,
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<Sequence> {
        let seq = &after.value;
        let within_ms = parse_window(&seq.within.value).map_err(|e| self.at(code::BAD_VALUE, src, &seq.within, e));
        let any_order = match seq.order.as_ref().map(|o| o.value.as_str()) {
            None | Some("given") => Some(false),
            Some("any") => Some(true),
            Some(other) => {
                let message = format!("unknown order `{other}` (expected given or any)");
                self.at(code::UNKNOWN_NAME, src, seq.order.as_ref().expect("matched Some"), message);
                None
            }
        };
        let key = self.expression(src, &seq.key, env, &[Type::String]);
        if seq.steps.value.is_empty() {
            self.at(code::MISSING, src, &seq.steps, "a sequence needs at least one step before the rule's own event");
            return None;
        }
        let mut steps = Vec::new();
        for step in &seq.steps.value {
            let Some(on) = self.kinds(src, &step.on) else { continue };
            let step_env = PackEnv::new(&on, "sequence step", feature_index, lists);
            let step_key = self.expression(src, &seq.key, &step_env, &[Type::String]);
            let filter = step.filter.as_ref().map(|f| self.expression(src, f, &step_env, &[Type::Bool]));
            let mut reads = step_env.reads.take();
            reads.extend(step_env.keyed_reads.take());
            if reads.contains(&usize::MAX) {
                continue;
            }
            self.check_foreign_reads(src, def, &on, &reads, features, feature_index, lists);
            // Counted with the rule's own reads (enabled or not).
            env.keyed_reads.borrow_mut().extend(reads);
            match (step_key, filter) {
                (Some(key), None) => steps.push(SequenceStep { on, key, filter: None }),
                (Some(key), Some(Some(filter))) => steps.push(SequenceStep { on, key, filter: Some(filter) }),
                _ => {}
            }
        }
        if steps.len() != seq.steps.value.len() {
            return None;
        }
        Some(Sequence { within_ms: within_ms.ok()?, any_order: any_order?, key: key?, steps })
    }

    /// The rule's label operations; `None` when any is wrong (each reported).
    fn labels(&mut self, src: &Source<'_>, def: &RuleDef, env: &PackEnv<'_>) -> Option<Vec<LabelOp>> {
        let mut labels = Vec::new();
        for op in &def.labels {
            let id = match &op.id {
                Some(id) => match self.expression(src, id, env, &[Type::String]) {
                    Some(plan) => Some(plan),
                    None => continue,
                },
                None => None,
            };
            let entity = LabelEntity::from_name(&op.entity.value);
            if entity.is_none() {
                let expected = or_list(LabelEntity::ALL.iter().map(|e| e.name()));
                self.at(
                    code::UNKNOWN_NAME,
                    src,
                    &op.entity,
                    format!("unknown label entity `{}` (expected {expected})", op.entity.value),
                );
            }
            let ttl = op.ttl.as_ref().map(|t| parse_window(&t.value).map_err(|e| self.at(code::BAD_VALUE, src, t, e)));
            match (&op.add, &op.remove, ttl, entity) {
                (Some(label), None, Some(Ok(ttl)), Some(entity)) => {
                    labels.push(LabelOp { label: label.value.clone(), entity, id, ttl_ms: Some(ttl) })
                }
                (Some(label), None, None, _) => self.at(code::MISSING, src, label, "adding a label needs a `ttl`"),
                (None, Some(label), None, Some(entity)) => {
                    labels.push(LabelOp { label: label.value.clone(), entity, id, ttl_ms: None })
                }
                (None, Some(label), Some(_), _) => {
                    self.at(code::BAD_VALUE, src, label, "removing a label takes no `ttl`")
                }
                (Some(label), Some(_), _, _) => {
                    self.at(code::BAD_VALUE, src, label, "a label entry either adds or removes")
                }
                (None, None, _, _) => self.at(code::MISSING, src, &op.entity, "a label entry needs `add` or `remove`"),
                _ => {}
            }
        }
        (labels.len() == def.labels.len()).then_some(labels)
    }
}
