//! The [`Activation`] rules evaluate against: one event's fields (through
//! the generated schema accessors), its kind, and feature values.

use std::borrow::Cow;

use gavel_model::schema::EVENT_FIELDS;
use gavel_model::{Event, EventKind};
use gavel_rules::expr::{Activation, Value};
use gavel_rules::{FEATURE_SLOT_BASE, KIND_SLOT};

use crate::Engine;

/// One event as rule expressions see it.
pub(crate) struct EventActivation<'a, 'e> {
    engine: &'e Engine,
    event: &'a Event,
    kind: EventKind,
    t: i64,
    /// Values of the features this event fed (by feature index).
    values: &'e [Option<i64>],
}

impl<'a, 'e> EventActivation<'a, 'e> {
    pub(crate) fn new(
        engine: &'e Engine,
        event: &'a Event,
        kind: EventKind,
        t: i64,
        values: &'e [Option<i64>],
    ) -> Self {
        EventActivation { engine, event, kind, t, values }
    }

    /// Feature `f`'s value for this event: the updated value if the event fed
    /// it, otherwise the current value for the key computed from this event.
    pub(crate) fn feature(&self, f: usize) -> i64 {
        match self.values.get(f).copied().flatten() {
            Some(v) => v,
            None => self.engine.peek(f, self, self.t),
        }
    }
}

impl<'a> Activation<'a> for EventActivation<'a, '_> {
    fn field(&self, slot: u32) -> Value<'a> {
        if slot < KIND_SLOT {
            return (EVENT_FIELDS[slot as usize].get)(self.event).into();
        }
        if slot == KIND_SLOT {
            return Value::Str(Cow::Borrowed(self.kind.as_str()));
        }
        Value::Int(self.feature((slot - FEATURE_SLOT_BASE) as usize))
    }

    fn has(&self, slot: u32) -> bool {
        match EVENT_FIELDS.get(slot as usize) {
            Some(def) => (def.has)(self.event),
            None => true,
        }
    }
}
