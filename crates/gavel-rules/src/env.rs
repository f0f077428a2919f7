//! The slot layout rule plans are compiled against and read from: event
//! fields by schema index, then `event.kind`, then features; and the
//! [`Env`] that resolves a pack's names (event fields on the rule's kinds,
//! features, lists, labels) to those slots. Shared by the pack compiler,
//! the engine's activation and tools such as `gavel eval`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use gavel_model::schema::{EVENT_FIELDS, FieldType, field};
use gavel_model::{EventKind, or_list};

use crate::LabelEntity;
use crate::expr::{self, CompileError, Env, Plan, Resolved, StringList, Type, Value};

/// Slot of `event.kind` (the payload kind's name) in rule activations.
pub const KIND_SLOT: u32 = EVENT_FIELDS.len() as u32;
/// Slot of feature 0; feature `i` is at `FEATURE_SLOT_BASE + i`.
pub const FEATURE_SLOT_BASE: u32 = KIND_SLOT + 1;

/// Resolves names for one expression: the event fields available on the
/// given kinds, features, lists. Records the features it resolved.
pub(crate) struct PackEnv<'p> {
    pub(crate) kinds: &'p [EventKind],
    /// What the expression belongs to, for messages (`rule`, `feature`).
    pub(crate) what: &'p str,
    pub(crate) features: &'p HashMap<String, (usize, Type)>,
    pub(crate) lists: &'p HashMap<String, Arc<StringList>>,
    /// Features resolved so far (indices; `usize::MAX` for one that failed).
    pub(crate) reads: RefCell<Vec<usize>>,
    /// Features read for another key (`features.x.of(key)`) so far: not
    /// part of the explanation, which shows the event's own keys, but read.
    pub(crate) keyed_reads: RefCell<Vec<usize>>,
}

fn field_type(ty: FieldType) -> Type {
    match ty {
        FieldType::Bool => Type::Bool,
        FieldType::Int => Type::Int,
        FieldType::Uint => Type::Uint,
        FieldType::Double => Type::Double,
        FieldType::String => Type::String,
        FieldType::Timestamp => Type::Timestamp,
        FieldType::Message => Type::Message,
    }
}

impl<'p> PackEnv<'p> {
    /// An environment for one expression of a `what` (`rule`, `feature`) on `kinds`.
    pub(crate) fn new(
        kinds: &'p [EventKind],
        what: &'p str,
        features: &'p HashMap<String, (usize, Type)>,
        lists: &'p HashMap<String, Arc<StringList>>,
    ) -> PackEnv<'p> {
        PackEnv { kinds, what, features, lists, reads: RefCell::default(), keyed_reads: RefCell::default() }
    }
}

pub(crate) fn kinds_list(kinds: &[EventKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

impl Env for PackEnv<'_> {
    fn resolve(&self, segments: &[&str]) -> std::result::Result<Resolved, String> {
        match segments {
            ["event"] | ["features"] | ["lists"] | ["labels"] => Ok(Resolved::Namespace),
            ["labels", entity] => match LabelEntity::from_name(entity) {
                Some(e) => Ok(Resolved::Labels(e as u32)),
                None => {
                    let names: Vec<String> = LabelEntity::ALL.iter().map(|e| format!("labels.{}", e.name())).collect();
                    let expected = or_list(names.iter().map(String::as_str));
                    Err(format!("unknown label entity `labels.{entity}` (expected {expected})"))
                }
            },
            ["event", "kind"] => Ok(Resolved::Field { slot: KIND_SLOT, ty: Type::String }),
            ["event", rest @ ..] => {
                let path = rest.join(".");
                let Some((slot, def)) = EVENT_FIELDS.iter().enumerate().find(|(_, f)| f.path == path) else {
                    let candidates: Vec<String> = EVENT_FIELDS
                        .iter()
                        .filter(|f| f.payload.is_none_or(|k| self.kinds.contains(&k)))
                        .map(|f| format!("event.{}", f.path))
                        .collect();
                    return Err(unknown("field", &format!("event.{path}"), &candidates));
                };
                if let Some(kind) = def.payload
                    && !self.kinds.contains(&kind)
                {
                    return Err(format!(
                        "`event.{path}` is only set on {kind} events, and this {} runs on [{}]",
                        self.what,
                        kinds_list(self.kinds)
                    ));
                }
                Ok(Resolved::Field { slot: slot as u32, ty: field_type(def.ty) })
            }
            ["features", name] => match self.features.get(*name) {
                Some((index, ty)) => {
                    self.reads.borrow_mut().push(*index);
                    Ok(Resolved::Field { slot: FEATURE_SLOT_BASE.saturating_add(*index as u32), ty: ty.clone() })
                }
                None => {
                    let names: Vec<String> = self.features.keys().map(|n| format!("features.{n}")).collect();
                    Err(unknown("feature", &format!("features.{name}"), &names))
                }
            },
            ["lists", name] => match self.lists.get(*name) {
                Some(list) => Ok(Resolved::List(Arc::clone(list))),
                None => {
                    let names: Vec<String> = self.lists.keys().map(|n| format!("lists.{n}")).collect();
                    Err(unknown("list", &format!("lists.{name}"), &names))
                }
            },
            other => {
                let name = other.join(".");
                let hint =
                    if field(&name).is_some() { format!("; did you mean `event.{name}`?") } else { String::new() };
                Err(format!("unknown name `{name}` (names start with event., features. or lists.){hint}"))
            }
        }
    }

    fn known_values(&self, segments: &[&str]) -> Option<Vec<String>> {
        match segments {
            ["event", "kind"] => Some(EventKind::ALL.iter().map(|k| k.as_str().to_string()).collect()),
            _ => None,
        }
    }

    fn feature(&self, segments: &[&str]) -> Option<(u32, Type)> {
        match segments {
            ["features", name] => {
                let (index, ty) = self.features.get(*name)?;
                self.keyed_reads.borrow_mut().push(*index);
                Some((*index as u32, ty.clone()))
            }
            _ => None,
        }
    }
}

pub(crate) fn unknown(what: &str, name: &str, candidates: &[String]) -> String {
    let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
    match expr::nearest(name, &refs) {
        Some(n) => format!("unknown {what} `{name}`; did you mean `{n}`?"),
        None => format!("unknown {what} `{name}`"),
    }
}

/// The slot layout rules are compiled against, from the activation's side:
/// the value of an event-field or `event.kind` slot, or `Err(feature index)`
/// for a feature slot, which only the caller can read.
pub fn event_slot<'a>(
    event: &'a gavel_model::Event,
    kind: EventKind,
    slot: u32,
) -> std::result::Result<Value<'a>, usize> {
    if slot < KIND_SLOT {
        return Ok((EVENT_FIELDS[slot as usize].get)(event).into());
    }
    if slot == KIND_SLOT {
        return Ok(Value::Str(std::borrow::Cow::Borrowed(kind.as_str())));
    }
    Err((slot - FEATURE_SLOT_BASE) as usize)
}

/// Whether an event-field slot is set (`has()`); other slots always are.
pub fn event_slot_is_set(event: &gavel_model::Event, slot: u32) -> bool {
    EVENT_FIELDS.get(slot as usize).is_none_or(|f| (f.has)(event))
}

/// Compiles one expression as a rule on `kinds` would see it, with the given
/// features (name and type, in slot order) and lists: the engine's slot
/// layout, for tools such as `gavel eval`.
pub fn compile_expression(
    source: &str,
    kinds: &[EventKind],
    features: &[(String, Type)],
    lists: &[Arc<StringList>],
) -> std::result::Result<Plan, Vec<CompileError>> {
    let features: HashMap<String, (usize, Type)> =
        features.iter().enumerate().map(|(i, (name, ty))| (name.clone(), (i, ty.clone()))).collect();
    let lists: HashMap<String, Arc<StringList>> = lists.iter().map(|l| (l.name.clone(), Arc::clone(l))).collect();
    let env = PackEnv::new(kinds, "expression", &features, &lists);
    expr::compile(source, &env)
}
