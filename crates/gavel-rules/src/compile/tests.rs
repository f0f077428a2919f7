//! The `tests` section: rule tests' steps timed, their events decoded and
//! their expectations checked against the pack's rules.

use gavel_model::or_list;
use gavel_model::pb::Decision;
use serde_saphyr::Spanned;

use super::actions::pack_action_type;
use super::duration::parse_offset;
use super::{PackCompiler, Source};
use crate::Rule;
use crate::expr;
use crate::format::ExpectDef;
use crate::tests_def::{Expect, Step, TestCase};

impl PackCompiler {
    /// Every test whose steps and expectations compile.
    pub(super) fn tests(&mut self, parsed: &[Source<'_>], rules: &[Rule]) -> Vec<TestCase> {
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
                                self.at(src, at, e);
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
                                self.at(src, every, e);
                                ok = false;
                                continue;
                            }
                        },
                        None => 100,
                    };
                    let repeat = step.repeat.unwrap_or(1).max(1);
                    clock = at_ms + every_ms * u64::from(repeat - 1);
                    let event = match serde_json::to_vec(&step.event.value)
                        .map_err(|e| e.to_string())
                        .and_then(|bytes| gavel_model::decode_json(&bytes).map_err(|e| e.to_string()))
                    {
                        Ok(event) => event,
                        Err(e) => {
                            self.at(src, &step.event, format!("test event: {e}"));
                            ok = false;
                            continue;
                        }
                    };
                    let expect = match &step.expect {
                        Some(expect) => match self.expect(src, expect, rules) {
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

    fn expect(&mut self, src: &Source<'_>, def: &ExpectDef, rules: &[Rule]) -> Option<Expect> {
        let mut ok = true;
        let mut rule_ids = |this: &mut Self, ids: &[Spanned<String>]| -> Vec<String> {
            for id in ids {
                if !rules.iter().any(|r| r.id == id.value) {
                    let known: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
                    let hint =
                        expr::nearest(&id.value, &known).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default();
                    this.at(src, id, format!("unknown (or disabled) rule `{}`{hint}", id.value));
                    ok = false;
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
                    self.at(src, d, format!("unknown decision `{}` (expected {expected})", d.value));
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
                            self.at(src, a, format!("unknown action `{}`", a.value));
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
