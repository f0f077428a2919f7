//! The [`Activation`] rules evaluate against: one event's fields (through
//! the generated schema accessors), its kind, and feature values.

use std::borrow::Cow;
use std::cell::RefCell;

use gavel_model::{Aggregate, Event, EventKind};
use gavel_rules::expr::{Activation, TextForm, Type, Value};
use gavel_rules::{LabelEntity, event_slot, event_slot_is_set};

use crate::{Engine, label_key};

/// One event as rule expressions see it.
pub(crate) struct EventActivation<'a, 'e> {
    engine: &'e Engine,
    event: &'a Event,
    kind: EventKind,
    t: i64,
    /// Readings of the features this event fed (by feature index).
    values: &'e [Option<Option<f64>>],
    /// Text normal forms of this event's fields, computed once whichever
    /// rules read them.
    forms: RefCell<Vec<(u32, TextForm, String)>>,
}

impl<'a, 'e> EventActivation<'a, 'e> {
    pub(crate) fn new(
        engine: &'e Engine,
        event: &'a Event,
        kind: EventKind,
        t: i64,
        values: &'e [Option<Option<f64>>],
    ) -> Self {
        EventActivation { engine, event, kind, t, values, forms: RefCell::new(Vec::new()) }
    }

    /// Feature `f`'s value for this event: the updated value if the event fed
    /// it, otherwise the current value for the key computed from this event.
    pub(crate) fn feature(&self, f: usize) -> Option<f64> {
        match self.values.get(f).copied().flatten() {
            Some(reading) => reading,
            None => self.engine.peek(f, self, self.t),
        }
    }
}

/// A feature's reading as rules see it, by the aggregate's type.
fn typed<'a>(aggregate: Aggregate, reading: Option<f64>) -> Value<'a> {
    let Some(v) = reading else { return Value::Null };
    match gavel_rules::aggregate_type(aggregate) {
        Type::Int => Value::Int(v as i64),
        // Times are kept in ms; expressions see nanoseconds.
        Type::Timestamp => Value::Timestamp(i128::from(v as i64) * 1_000_000),
        Type::Duration => Value::Duration((v as i64).saturating_mul(1_000_000)),
        Type::List(_) => Value::List(Vec::new()),
        _ => Value::Double(v),
    }
}

/// A `recent` feature's items as a `list(string)`.
fn members<'a>(items: Vec<String>) -> Value<'a> {
    Value::List(items.into_iter().map(|s| Value::Str(Cow::Owned(s))).collect())
}

impl<'a> Activation<'a> for EventActivation<'a, '_> {
    fn field(&self, slot: u32) -> Value<'a> {
        let f = match event_slot(self.event, self.kind, slot) {
            Ok(value) => return value,
            Err(feature) => feature,
        };
        let aggregate = self.engine.pack().features[f].aggregate;
        if aggregate == Aggregate::Recent {
            return match self.engine.key_of(f, self) {
                Some(key) => members(self.engine.windows()[f].members(&key, self.t)),
                None => Value::List(Vec::new()),
            };
        }
        typed(aggregate, self.feature(f))
    }

    fn feature_at(&self, feature: u32, key: &str) -> Value<'a> {
        let f = feature as usize;
        let (Some(def), Some(window)) = (self.engine.pack().features.get(f), self.engine.windows().get(f)) else {
            return Value::Null;
        };
        match def.aggregate {
            _ if key.is_empty() => typed(def.aggregate, def.aggregate.empty_value()),
            Aggregate::Recent => members(window.members(key, self.t)),
            aggregate => typed(aggregate, window.read(key, self.t)),
        }
    }

    fn has_label(&self, entity: u32, label: &str) -> bool {
        let Some(entity) = LabelEntity::from_index(entity) else { return false };
        let id = entity.id_of(self.event);
        !id.is_empty() && self.engine.labels().has(&label_key(entity, id), label, self.t)
    }

    fn has(&self, slot: u32) -> bool {
        event_slot_is_set(self.event, slot)
    }

    fn text_form(&self, slot: u32, form: TextForm) -> Option<String> {
        let mut forms = self.forms.borrow_mut();
        if let Some((.., kept)) = forms.iter().find(|(s, f, _)| *s == slot && *f == form) {
            return Some(kept.clone());
        }
        let Value::Str(text) = self.field(slot) else { return None };
        let kept = form.of(&text);
        forms.push((slot, form, kept.clone()));
        Some(kept)
    }
}
