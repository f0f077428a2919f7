//! Gavel's engine: `evaluate(event) -> Outcome`.
//!
//! The engine owns a compiled rule [`Pack`] and the velocity store its
//! features live in. For each event it updates the features the event's kind
//! feeds, evaluates the rules that apply to that kind, and returns an
//! [`Outcome`] holding the rule hits and, when any rule fired, the
//! [`RiskSignal`] to publish.
//!
//! It does no I/O, runs no async code and never reads the machine's clock:
//! event time comes from the event (or the caller's fallback) and the
//! decision time is passed in. One `Engine` is shared by every shard; its
//! methods take `&self`.

use gavel_model::pb::{FeatureValue, RiskSignal, RuleHit, RuleMode as PbRuleMode};
use gavel_model::{EntityRef, EntityType, Event, EventKind, event_time_ms, timestamp_from_ms};
use gavel_rules::{Pack, RuleMode};
use gavel_velocity::CountWindow;

/// Errors from evaluating one event. Each is about the event, not the engine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The event has no payload, so no kind to route by.
    #[error("event has no payload")]
    NoPayload,
    /// Neither the event nor its transport carries a time.
    #[error("event has no occurred_at and no fallback timestamp")]
    NoEventTime,
}

/// Result alias for this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What the engine decided about one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The event's kind.
    pub kind: EventKind,
    /// The event time used, in milliseconds since the epoch.
    pub event_time_ms: i64,
    /// Every rule that fired, enforcing and shadow.
    pub hits: Vec<RuleHit>,
    /// The signal to publish, present when any rule fired.
    pub signal: Option<RiskSignal>,
}

/// A compiled pack bound to its velocity store.
#[derive(Debug)]
pub struct Engine {
    pack: Pack,
    windows: Vec<CountWindow>,
    /// For each event kind (by `EventKind::index`), the features it updates.
    features_by_kind: Vec<Vec<usize>>,
    /// For each event kind, the rules that apply to it.
    rules_by_kind: Vec<Vec<usize>>,
}

impl Engine {
    /// Builds an engine with an empty store for `pack`.
    pub fn new(pack: Pack) -> Engine {
        let windows = pack
            .features
            .iter()
            // The rule compiler only accepts windows in the store's range.
            .map(|f| CountWindow::new(f.window_ms).expect("pack windows are validated at compile time"))
            .collect();
        let mut features_by_kind = vec![Vec::new(); EventKind::ALL.len()];
        for (i, feature) in pack.features.iter().enumerate() {
            for kind in &feature.on {
                features_by_kind[kind.index()].push(i);
            }
        }
        let mut rules_by_kind = vec![Vec::new(); EventKind::ALL.len()];
        for (i, rule) in pack.rules.iter().enumerate() {
            for kind in &rule.on {
                rules_by_kind[kind.index()].push(i);
            }
        }
        Engine {
            pack,
            windows,
            features_by_kind,
            rules_by_kind,
        }
    }

    /// The pack in force.
    pub fn pack(&self) -> &Pack {
        &self.pack
    }

    /// The windows, in pack feature order (for gauges).
    pub fn windows(&self) -> &[CountWindow] {
        &self.windows
    }

    /// Updates features for `event` and evaluates the rules that apply.
    /// `fallback_time_ms` (the Kafka timestamp) is used when the event has no
    /// `occurred_at`; `decided_at_ms` is stamped on the outputs.
    pub fn evaluate(&self, event: &Event, fallback_time_ms: Option<i64>, decided_at_ms: i64) -> Result<Outcome> {
        let kind = event.kind().ok_or(EngineError::NoPayload)?;
        let t = event_time_ms(event)
            .or(fallback_time_ms)
            .ok_or(EngineError::NoEventTime)?;
        let values = self.update_features(event, kind, t);

        let mut hits = Vec::new();
        let mut score = 0;
        for &r in &self.rules_by_kind[kind.index()] {
            let rule = &self.pack.rules[r];
            let condition = rule.condition;
            // The compiler guarantees every feature a rule reads is fed by
            // the rule's event kinds, so its value is in `values`.
            let value = values
                .iter()
                .find(|(f, _)| *f == condition.feature)
                .map_or(0, |(_, v)| *v) as f64;
            if !condition.op.holds(value, condition.threshold) {
                continue;
            }
            let feature = &self.pack.features[condition.feature].name;
            let mode = match rule.mode {
                RuleMode::Enforce => {
                    score += rule.score;
                    PbRuleMode::Enforce
                }
                RuleMode::Shadow => PbRuleMode::Shadow,
            };
            hits.push(RuleHit {
                rule_id: rule.id.clone(),
                score: rule.score,
                mode: mode as i32,
                explanation: format!(
                    "{}: features.{feature} = {value} {} {}",
                    rule.description,
                    condition.op.as_str(),
                    condition.threshold
                ),
                features: vec![FeatureValue {
                    name: feature.clone(),
                    value,
                }],
            });
        }

        let signal = (!hits.is_empty()).then(|| RiskSignal {
            event_id: event.event_id.clone(),
            event_kind: kind.as_str().to_string(),
            entity: Some(EntityRef {
                r#type: EntityType::User as i32,
                id: event.user_id.clone(),
            }),
            score,
            hits: hits.clone(),
            pack_version: self.pack.version.clone(),
            decided_at: Some(timestamp_from_ms(decided_at_ms)),
            event_time: Some(timestamp_from_ms(t)),
        });
        Ok(Outcome {
            kind,
            event_time_ms: t,
            hits,
            signal,
        })
    }

    /// Updates features only, producing nothing: warm-up after a restart
    /// replays past events through this to rebuild the store.
    pub fn warm(&self, event: &Event, fallback_time_ms: Option<i64>) -> Result<()> {
        let kind = event.kind().ok_or(EngineError::NoPayload)?;
        let t = event_time_ms(event)
            .or(fallback_time_ms)
            .ok_or(EngineError::NoEventTime)?;
        self.update_features(event, kind, t);
        Ok(())
    }

    /// Records the event in every feature its kind feeds; returns
    /// `(feature index, value)` for each. A feature whose key the event lacks
    /// (no device id, say) reads 0 and is not updated.
    fn update_features(&self, event: &Event, kind: EventKind, t: i64) -> Vec<(usize, u64)> {
        self.features_by_kind[kind.index()]
            .iter()
            .map(|&f| {
                let feature = &self.pack.features[f];
                let value = feature
                    .key
                    .of(event)
                    .map_or(0, |key| self.windows[f].record(key, t).value());
                (f, value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use gavel_model::Payload;
    use gavel_model::pb::BidPlaced;

    use super::*;

    const PACK: &str = r#"
version: "t1"
features:
  - name: bids_per_user_10s
    on: [bid_placed]
    key: user
    window: 10s
    aggregate: count
  - name: bids_per_device_10s
    on: [bid_placed]
    key: device
    window: 10s
    aggregate: count
rules:
  - id: bid_bot
    description: bids faster than a person
    on: [bid_placed]
    when: features.bids_per_user_10s > 3
    score: 60
  - id: bid_bot_device
    description: device bidding fast
    on: [bid_placed]
    when: features.bids_per_device_10s > 3
    score: 10
    mode: shadow
"#;

    fn bid(user: &str, t_ms: i64) -> Event {
        Event {
            event_id: format!("e-{t_ms}"),
            occurred_at: Some(timestamp_from_ms(t_ms)),
            user_id: user.into(),
            device_id: Some("d1".into()),
            payload: Some(Payload::BidPlaced(BidPlaced::default())),
            ..Default::default()
        }
    }

    #[test]
    fn fires_once_the_count_passes_the_threshold() {
        let engine = Engine::new(Pack::compile([("p.yaml", PACK)]).unwrap());
        for i in 0..3 {
            let out = engine.evaluate(&bid("u1", 1_000 + i * 100), None, 0).unwrap();
            assert!(out.signal.is_none(), "bid {i} fired early");
        }
        let out = engine.evaluate(&bid("u1", 1_400), None, 7).unwrap();
        let signal = out.signal.expect("fourth bid fires");
        assert_eq!(signal.score, 60, "shadow hits add no score");
        assert_eq!(signal.hits.len(), 2);
        assert_eq!(signal.hits[0].rule_id, "bid_bot");
        assert_eq!(signal.hits[0].features[0].value, 4.0);
        assert_eq!(signal.hits[1].mode, PbRuleMode::Shadow as i32);
        assert_eq!(signal.pack_version, "t1");
        assert_eq!(signal.event_id, "e-1400");

        // Another user is not affected by u1's count, but shares the device.
        let out = engine.evaluate(&bid("u2", 1_500), None, 0).unwrap();
        assert_eq!(
            out.hits.iter().map(|h| h.rule_id.as_str()).collect::<Vec<_>>(),
            ["bid_bot_device"]
        );
    }

    #[test]
    fn warm_up_changes_state_but_emits_nothing() {
        let engine = Engine::new(Pack::compile([("p.yaml", PACK)]).unwrap());
        for i in 0..5 {
            engine.warm(&bid("u1", i * 10), None).unwrap();
        }
        let out = engine.evaluate(&bid("u1", 100), None, 0).unwrap();
        assert_eq!(out.hits[0].features[0].value, 6.0);
    }

    #[test]
    fn falls_back_to_transport_time_and_rejects_timeless_events() {
        let engine = Engine::new(Pack::compile([("p.yaml", PACK)]).unwrap());
        let mut event = bid("u1", 0);
        event.occurred_at = None;
        assert_eq!(engine.evaluate(&event, None, 0).unwrap_err(), EngineError::NoEventTime);
        assert_eq!(engine.evaluate(&event, Some(42), 0).unwrap().event_time_ms, 42);
        event.payload = None;
        assert_eq!(
            engine.evaluate(&event, Some(42), 0).unwrap_err(),
            EngineError::NoPayload
        );
    }
}
