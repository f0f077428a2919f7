//! A rule's `actions`: action type, target entity and its id, cooldown
//! and expiry.

use gavel_model::or_list;
use gavel_model::pb::{ActionType, EntityType};
use serde_saphyr::Spanned;

use super::{PackCompiler, Source, parse_window};
use crate::diagnostic::code;
use crate::env::PackEnv;
use crate::expr::{self, Type};
use crate::format::ActionDef;
use crate::{Action, LabelEntity};

impl PackCompiler {
    /// One action of a rule, its id compiled in the rule's `env`.
    pub(super) fn action(&mut self, src: &Source<'_>, def: &ActionDef, env: &PackEnv<'_>) -> Option<Action> {
        let kind = match pack_action_type(&def.kind.value) {
            Some(kind) => Some(kind),
            None => {
                let other = &def.kind.value;
                let expected = or_list(ActionType::SPECIFIED.iter().map(|t| t.as_str()));
                self.at(code::UNKNOWN_NAME, src, &def.kind, format!("unknown action `{other}` (expected {expected})"));
                None
            }
        };
        let Some(target) = EntityType::from_name(&def.target.value).filter(|t| *t != EntityType::Unspecified) else {
            self.at(code::UNKNOWN_NAME, src, &def.target, format!("unknown target `{}`", def.target.value));
            return None;
        };
        // The event's own user, device and ip are the default ids.
        let default_id = LabelEntity::from_entity_type(target).map(|e| format!("event.{}", e.field()));
        let id = match (&def.id, default_id) {
            (Some(id), _) => self.expression(src, id, env, &[Type::String]),
            (None, Some(default)) => expr::compile(&default, env).ok(),
            (None, None) => {
                self.at(
                    code::MISSING,
                    src,
                    &def.target,
                    format!("target `{}` needs an `id` expression", def.target.value),
                );
                None
            }
        };
        let duration = |this: &mut Self, d: &Option<Spanned<String>>| match d {
            None => Some(None),
            Some(text) => match parse_window(&text.value) {
                Ok(ms) => Some(Some(ms)),
                Err(e) => {
                    this.at(code::BAD_VALUE, src, text, e);
                    None
                }
            },
        };
        let cooldown = duration(self, &def.cooldown)?;
        let expires = duration(self, &def.expires)?;
        Some(Action { kind: kind?, target, id: id?, cooldown_ms: cooldown.unwrap_or(0), expires_ms: expires })
    }
}

/// The action type a pack names (`block_bid`, …); never `Unspecified`.
pub(super) fn pack_action_type(name: &str) -> Option<ActionType> {
    ActionType::from_name(name).filter(|t| *t != ActionType::Unspecified)
}
