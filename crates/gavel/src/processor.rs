//! The [`Processor`] that joins the Kafka adapter to the engine: decode,
//! evaluate, encode. Anything that cannot be decoded or evaluated becomes a
//! dead-letter reason; nothing here panics on bad input.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use gavel_engine::Engine;
use gavel_kafka::{Input, Output, OutputTopic, Processed, Processor};
use gavel_model::encode_protobuf;
use gavel_model::pb::RuleMode;
use metrics::counter;

use crate::telemetry::{Stats, names};

/// Decodes with the topic's encoding, runs the engine, encodes the signal.
#[derive(Debug)]
pub struct EngineProcessor {
    engine: Arc<Engine>,
    stats: Arc<Stats>,
}

impl EngineProcessor {
    /// A processor over `engine`, reporting to `stats`.
    pub fn new(engine: Arc<Engine>, stats: Arc<Stats>) -> Self {
        EngineProcessor { engine, stats }
    }
}

/// Wall-clock milliseconds, for `decided_at` only: windows run on event time.
fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Processor for EngineProcessor {
    fn process(&mut self, input: &Input<'_>) -> Processed {
        let event = match gavel_model::decode(input.encoding, input.payload) {
            Ok(event) => event,
            Err(e) => return Processed::DeadLetter(e.to_string()),
        };
        let outcome = match self.engine.evaluate(&event, input.timestamp_ms, wall_clock_ms()) {
            Ok(outcome) => outcome,
            Err(e) => return Processed::DeadLetter(e.to_string()),
        };
        counter!(names::EVENTS_EVALUATED, "kind" => outcome.kind.as_str()).increment(1);
        for hit in &outcome.hits {
            let mode = if hit.mode == RuleMode::Shadow as i32 {
                "shadow"
            } else {
                "enforce"
            };
            counter!(names::RULE_HITS, "rule" => hit.rule_id.clone(), "mode" => mode).increment(1);
        }
        let Some(signal) = outcome.signal else {
            return Processed::Outputs(Vec::new());
        };
        self.stats.signal();
        counter!(names::SIGNALS).increment(1);
        let key = signal
            .entity
            .as_ref()
            .map(|e| e.id.clone().into_bytes())
            .unwrap_or_default();
        Processed::Outputs(vec![Output {
            topic: OutputTopic::Signals,
            key,
            payload: encode_protobuf(&signal),
        }])
    }
}
