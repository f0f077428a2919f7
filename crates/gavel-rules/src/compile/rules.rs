//! The `rules` section: each rule's kinds, mode and condition compiled,
//! the features it reads checked against its kinds, and its actions and
//! label operations.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gavel_model::pb;
use gavel_model::{EventKind, or_list};

use super::{PackCompiler, Source, parse_window};
use crate::env::{PackEnv, kinds_list};
use crate::expr::{self, StringList, Type};
use crate::format::RuleDef;
use crate::{Feature, LabelEntity, LabelOp, Rule, RuleMode};

impl PackCompiler {
    /// Every enabled rule, in file order.
    pub(super) fn rules(
        &mut self,
        parsed: &[Source<'_>],
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut ids = HashSet::new();
        for src in parsed {
            for def in &src.file.rules {
                if !ids.insert(def.id.value.clone()) {
                    self.at(src, &def.id, format!("duplicate rule id `{}`", def.id.value));
                    continue;
                }
                if let Some(rule) = self.rule(src, def, features, feature_index, lists)
                    && def.enabled
                {
                    rules.push(rule);
                }
            }
        }
        rules
    }

    fn rule(
        &mut self,
        src: &Source<'_>,
        def: &RuleDef,
        features: &[Feature],
        feature_index: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<Rule> {
        let on = self.kinds(src, &def.on)?;
        let mode = match &def.mode {
            None => Some(RuleMode::Enforce),
            Some(m) => match RuleMode::from_name(&m.value) {
                Some(mode) => Some(mode),
                None => {
                    let expected = or_list(pb::RuleMode::SPECIFIED.iter().map(|m| m.as_str()));
                    self.at(src, m, format!("unknown mode `{}` (expected {expected})", m.value));
                    None
                }
            },
        };
        let env = PackEnv::new(&on, "rule", feature_index, lists);
        let when = self.expression(src, &def.when, &env, &[Type::Bool]);
        let mut actions = Vec::new();
        for action in &def.actions {
            if let Some(a) = self.action(src, action, &on, feature_index, lists) {
                actions.push(a);
            }
        }
        let mut reads = env.reads.take();
        reads.sort_unstable();
        reads.dedup();
        if reads.contains(&usize::MAX) {
            // A feature that failed to compile: its own error says what to fix.
            return None;
        }
        self.check_foreign_reads(src, def, &on, &reads, features, feature_index, lists);
        if actions.len() != def.actions.len() {
            return None;
        }
        let labels = self.labels(src, def, &PackEnv::new(&on, "rule", feature_index, lists))?;
        Some(Rule {
            id: def.id.value.clone(),
            description: def.description.clone(),
            owner: def.owner.clone(),
            tags: def.tags.clone(),
            on,
            when: when?,
            reads,
            score: def.score,
            mode: mode?,
            actions,
            labels,
        })
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
                self.at(src, &op.entity, format!("unknown label entity `{}` (expected {expected})", op.entity.value));
            }
            let ttl = op.ttl.as_ref().map(|t| parse_window(&t.value).map_err(|e| self.at(src, t, e)));
            match (&op.add, &op.remove, ttl, entity) {
                (Some(label), None, Some(Ok(ttl)), Some(entity)) => {
                    labels.push(LabelOp { label: label.value.clone(), entity, id, ttl_ms: Some(ttl) })
                }
                (Some(label), None, None, _) => self.at(src, label, "adding a label needs a `ttl`"),
                (None, Some(label), None, Some(entity)) => {
                    labels.push(LabelOp { label: label.value.clone(), entity, id, ttl_ms: None })
                }
                (None, Some(label), Some(_), _) => self.at(src, label, "removing a label takes no `ttl`"),
                (Some(label), Some(_), _, _) => self.at(src, label, "a label entry either adds or removes"),
                (None, None, _, _) => self.at(src, &op.entity, "a label entry needs `add` or `remove`"),
                _ => {}
            }
        }
        (labels.len() == def.labels.len()).then_some(labels)
    }
}
