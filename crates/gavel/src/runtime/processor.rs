//! The [`Processor`] that joins the Kafka adapter to the engine: decode,
//! evaluate, encode. Anything that cannot be decoded or evaluated becomes a
//! dead-letter reason; nothing here panics on bad input.

use std::sync::Arc;

use gavel_kafka::{Input, Output, OutputTopic, Outputs, Processed, Processor};
use gavel_model::pb::RuleMode;

use crate::runtime::encoding::{CONTENT_TYPE, OutputFormat, PACK_VERSION, SCHEMA};
use crate::runtime::reload::Rules;
use crate::telemetry::Stats;
use crate::telemetry::engine::EventMetrics;

/// Which optional outputs to publish besides signals and actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Emit {
    /// A verdict for every event.
    pub verdicts: bool,
    /// A signal on the shadow topic for every event a shadow rule fired on.
    pub shadow: bool,
}

/// Decodes with the topic's encoding, runs the engine, encodes the signal.
#[derive(Debug)]
pub struct EngineProcessor {
    rules: Arc<Rules>,
    stats: Arc<Stats>,
    emit: Emit,
    format: OutputFormat,
    /// The `gavel.pack.version` header value of the engine last used.
    pack_version: Arc<str>,
    /// Metric handles, registered on first use (after the recorder is installed).
    counters: Option<EventMetrics>,
    /// Whether this evaluation counts in the metrics: not for a message
    /// another instance publishes (replicated state), which it counts.
    counting: bool,
}

impl EngineProcessor {
    /// A processor over `engine`, reporting to `stats`, publishing the
    /// optional outputs `emit` names.
    pub fn new(rules: Arc<Rules>, stats: Arc<Stats>, emit: Emit) -> Self {
        EngineProcessor {
            rules,
            stats,
            emit,
            format: OutputFormat::default(),
            pack_version: "".into(),
            counters: None,
            counting: true,
        }
    }

    /// The same, writing outputs in `format` (protobuf unless told).
    pub fn with_format(self, format: OutputFormat) -> Self {
        EngineProcessor { format, ..self }
    }
}

/// Encodes outputs and gives each its content type, schema and pack
/// version headers.
struct Headed<'a> {
    format: &'a OutputFormat,
    pack_version: &'a Arc<str>,
}

impl Headed<'_> {
    /// `message` encoded for `topic`, keyed by `key`, with its headers; a
    /// message that cannot be encoded dead-letters its input.
    fn output<M>(&self, topic: OutputTopic, key: &str, message: &M) -> Result<Output, Processed>
    where
        M: prost::Message + prost::Name + serde::Serialize,
    {
        let (payload, schema) = self
            .format
            .encode(topic, message)
            .map_err(|e| Processed::DeadLetter(format!("cannot encode its output for {topic:?}: {e}")))?;
        let mut output = Output::new(topic, key.as_bytes().to_vec(), payload);
        output.headers = vec![
            (CONTENT_TYPE, Arc::clone(self.format.content_type())),
            (SCHEMA, Arc::clone(schema)),
            (PACK_VERSION, Arc::clone(self.pack_version)),
        ];
        Ok(output)
    }
}

impl Processor for EngineProcessor {
    fn process(&mut self, input: &Input<'_>) -> Processed {
        self.outputs(input).unwrap_or_else(|dead_letter| dead_letter)
    }

    fn warm(&mut self, input: &Input<'_>) {
        crate::runtime::warm_input(&self.rules, input);
    }

    fn hold(&mut self, input: &Input<'_>) -> Processed {
        self.counting = false;
        let processed = self.process(input);
        self.counting = true;
        processed
    }
}

impl EngineProcessor {
    /// The outputs of `input`, or (as the error) its dead-letter reason.
    fn outputs(&mut self, input: &Input<'_>) -> Result<Processed, Processed> {
        let event = match gavel_model::decode(input.encoding, input.payload) {
            Ok(event) => event,
            Err(e) => return Err(Processed::DeadLetter(e.to_string())),
        };
        // One snapshot per event: a reload never splits an evaluation.
        let engine = self.rules.current();
        // Wall clock for `decided_at` only: windows run on event time.
        let decided_at = crate::clock::now_ms();
        // A panic in here is caught by the shard, which dead-letters the
        // event; the velocity store's locks ignore poisoning, so state
        // stays usable.
        let lane = gavel_engine::lane_of(input.topic, input.partition);
        let outcome = match engine.evaluate_in(lane, &event, input.timestamp_ms, decided_at) {
            Ok(outcome) => outcome,
            Err(e) => return Err(Processed::DeadLetter(e.to_string())),
        };
        if *self.pack_version != *engine.pack().version {
            self.pack_version = engine.pack().version.as_str().into();
        }
        let header = Headed { format: &self.format, pack_version: &self.pack_version };
        let mut outputs = Vec::with_capacity(outcome.actions.len() + 2);
        // Absence rules whose wait this event ended go first: their
        // deadlines came before it.
        let counters = self.counters.get_or_insert_with(EventMetrics::default);
        let mut count = self.counting.then_some(counters);
        if let Some(counters) = count.as_deref_mut() {
            counters.evaluated(outcome.kind, outcome.decision);
            if let Some(tally) = &self.stats.tally {
                tally.decision(outcome.decision);
            }
        }
        for one in outcome.timeouts.iter().map(|t| &t.outcome).chain([&outcome]) {
            publish(one, &header, &self.stats, count.as_deref_mut(), self.emit, &mut outputs)?;
        }
        if self.emit.verdicts {
            let verdict = engine.verdict(&event, &outcome, decided_at);
            // Keyed by user, so one user's verdicts stay in order; an event
            // with no user by its own id, so it is not lumped under "".
            let key = if event.user_id.is_empty() { &event.event_id } else { &event.user_id };
            outputs.push(header.output(OutputTopic::Verdicts, key, &verdict)?);
        }
        Ok(Processed::Outputs(Outputs::new(outputs, Some(outcome.event_time_ms))))
    }
}

/// Counts the hits of one outcome (an event's, or an absence rule's
/// firing) in `counters`, if given, and appends its signal, shadow signal
/// and actions to `outputs`.
fn publish(
    outcome: &gavel_engine::Outcome,
    header: &Headed<'_>,
    stats: &Stats,
    mut counters: Option<&mut EventMetrics>,
    emit: Emit,
    outputs: &mut Vec<Output>,
) -> Result<(), Processed> {
    let tally = counters.is_some().then_some(stats.tally.as_ref()).flatten();
    if let Some(counters) = counters.as_deref_mut() {
        for hit in outcome.hits() {
            let shadow = hit.mode == RuleMode::Shadow as i32;
            counters.rule_hit(&hit.rule_id, shadow);
            if let Some(tally) = tally {
                tally.rule_hit(&hit.rule_id, shadow);
            }
        }
        for rule in &outcome.failed_rules {
            counters.rule_failed(rule);
        }
    }
    if let Some(signal) = outcome.signal() {
        if let Some(counters) = counters.as_deref_mut() {
            stats.signal();
            counters.signal();
        }
        let key = signal.entity.as_ref().map_or("", |e| e.id.as_str());
        outputs.push(header.output(OutputTopic::Signals, key, signal)?);
    }
    if emit.shadow
        && let Some(signal) = outcome.shadow_signal()
    {
        if let Some(counters) = counters.as_deref_mut() {
            counters.shadow_signal();
        }
        let key = signal.entity.as_ref().map_or("", |e| e.id.as_str());
        outputs.push(header.output(OutputTopic::Shadow, key, signal)?);
    }
    for action in &outcome.actions {
        if let Some(counters) = counters.as_deref_mut() {
            counters.action(action.r#type);
        }
        if let Some(tally) = tally {
            tally.action(action.r#type);
        }
        let key = action.target.as_ref().map_or("", |t| t.id.as_str());
        outputs.push(header.output(OutputTopic::Actions, key, action)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gavel_engine::Engine;
    use gavel_model::Encoding;
    use gavel_rules::Pack;
    use prost::Message as _;

    use super::*;

    const PACK: &str = r#"
version: "p"
rules:
  - id: bookkeeping
    description: marks chatters
    on: [chat_message_sent]
    when: "true"
    score: 0
    labels:
      - add: chatted
        entity: user
        ttl: 1h
  - id: scored
    description: says venmo
    on: [chat_message_sent]
    when: event.chat_message_sent.text.contains("venmo")
    score: 10
    actions:
      - type: mute_chat
        target: user
  - id: shadowed
    description: says hi
    on: [chat_message_sent]
    mode: shadow
    when: event.chat_message_sent.text.contains("hi")
    score: 90
    actions:
      - type: suspend_account
        target: user
"#;

    fn process(processor: &mut EngineProcessor, payload: &[u8]) -> Processed {
        processor.process(&Input {
            topic: "chat",
            partition: 0,
            offset: 0,
            key: None,
            payload,
            timestamp_ms: Some(1_767_225_600_000),
            encoding: Encoding::Json,
        })
    }

    #[test]
    fn publishes_signals_actions_and_verdicts_but_not_bookkeeping_hits() {
        let rules = Rules::new(Engine::new(Pack::compile([("p.yaml", PACK)]).unwrap()), None);
        let emit = Emit { verdicts: true, shadow: false };
        let mut processor = EngineProcessor::new(rules, Arc::new(Stats::default()), emit);
        let Processed::Outputs(out) = process(&mut processor, br#"{"userId":"u1","chatMessageSent":{"text":"hi"}}"#)
        else {
            panic!("decodable input")
        };
        let topics: Vec<OutputTopic> = out.iter().map(|o| o.topic).collect();
        assert_eq!(topics, [OutputTopic::Verdicts], "neither a score-0 hit nor a shadow hit publishes a signal");
        let verdict = gavel_model::pb::Verdict::decode(&*out[0].payload).unwrap();
        assert_eq!((verdict.score, verdict.decision), (0, gavel_model::pb::Decision::Allow as i32));
        // The event has no time of its own: the Kafka timestamp is its time.
        assert_eq!(verdict.event_time, Some(gavel_model::timestamp_from_ms(1_767_225_600_000)));
        assert_eq!(out[0].key, b"u1", "verdicts are keyed by user");

        let Processed::Outputs(out) = process(&mut processor, br#"{"eventId":"e9","chatMessageSent":{"text":"hi"}}"#)
        else {
            panic!("decodable input")
        };
        assert_eq!(out[0].key, b"e9", "an event with no user is keyed by its id");

        let Processed::Outputs(out) =
            process(&mut processor, br#"{"userId":"u1","chatMessageSent":{"text":"venmo me"}}"#)
        else {
            panic!("decodable input")
        };
        let topics: Vec<OutputTopic> = out.iter().map(|o| o.topic).collect();
        assert_eq!(topics, [OutputTopic::Signals, OutputTopic::Actions, OutputTopic::Verdicts]);
        assert!(out.iter().all(|o| o.key == b"u1"));

        assert!(matches!(process(&mut processor, b"{oops"), Processed::DeadLetter(reason) if reason.contains("JSON")));
    }

    #[test]
    fn shadow_hits_publish_on_the_shadow_topic_only_when_asked() {
        let rules = Rules::new(Engine::new(Pack::compile([("p.yaml", PACK)]).unwrap()), None);
        let emit = Emit { verdicts: false, shadow: true };
        let mut processor = EngineProcessor::new(rules, Arc::new(Stats::default()), emit);
        let Processed::Outputs(out) = process(&mut processor, br#"{"userId":"u1","chatMessageSent":{"text":"hi"}}"#)
        else {
            panic!("decodable input")
        };
        let topics: Vec<OutputTopic> = out.iter().map(|o| o.topic).collect();
        assert_eq!(topics, [OutputTopic::Shadow], "the shadow action is not taken");
        let signal = gavel_model::pb::RiskSignal::decode(&*out[0].payload).unwrap();
        assert_eq!(signal.score, 0, "shadow scores do not count");
        let hits: Vec<&str> = signal.hits.iter().map(|h| h.rule_id.as_str()).collect();
        assert_eq!(hits, ["bookkeeping", "shadowed"]);

        // An event that publishes anyway lists the shadow hit in its signal.
        let Processed::Outputs(out) =
            process(&mut processor, br#"{"userId":"u1","chatMessageSent":{"text":"hi, venmo me"}}"#)
        else {
            panic!("decodable input")
        };
        let topics: Vec<OutputTopic> = out.iter().map(|o| o.topic).collect();
        assert_eq!(topics, [OutputTopic::Signals, OutputTopic::Shadow, OutputTopic::Actions]);
        let signal = gavel_model::pb::RiskSignal::decode(&*out[0].payload).unwrap();
        assert_eq!(signal.score, 10);
        assert_eq!(signal.hits.len(), 3);
        let action = gavel_model::pb::AutoAction::decode(&*out[2].payload).unwrap();
        assert_eq!(action.rule_id, "scored");
    }

    #[test]
    fn an_absence_rule_publishes_when_its_partition_reaches_the_deadline() {
        let pack = r#"
version: "w"
rules:
  - id: quiet
    description: a user who said hello never said goodbye within a minute
    on: [chat_message_sent]
    when: event.chat_message_sent.text == "hello"
    wait:
      for: 1m
      unless: [chat_message_sent]
      key: event.user_id
      match: event.user_id
      where: event.chat_message_sent.text == "bye"
    score: 50
    actions:
      - type: mute_chat
        target: user
"#;
        let rules = Rules::new(Engine::new(Pack::compile([("p.yaml", pack)]).unwrap()), None);
        let mut processor = EngineProcessor::new(rules, Arc::new(Stats::default()), Emit::default());
        let mut at = |partition: i32, payload: &[u8]| {
            let input = Input {
                topic: "chat",
                partition,
                offset: 0,
                key: None,
                payload,
                timestamp_ms: None,
                encoding: Encoding::Json,
            };
            match processor.process(&input) {
                Processed::Outputs(out) => out.iter().map(|o| (o.topic, o.payload.clone())).collect::<Vec<_>>(),
                Processed::DeadLetter(reason) => panic!("{reason}"),
            }
        };
        let hello =
            br#"{"eventId":"h1","userId":"u1","occurredAt":"2026-01-01T00:00:00Z","chatMessageSent":{"text":"hello"}}"#;
        assert!(at(0, hello).is_empty());
        // Partition 1 is past the deadline; partition 0's clock is not.
        let later =
            br#"{"eventId":"x","userId":"u2","occurredAt":"2026-01-01T00:05:00Z","chatMessageSent":{"text":"hi"}}"#;
        assert!(at(1, later).is_empty());
        let out = at(0, later);
        let topics: Vec<OutputTopic> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(topics, [OutputTopic::Signals, OutputTopic::Actions]);
        let signal = gavel_model::pb::RiskSignal::decode(&*out[0].1).unwrap();
        assert_eq!(signal.event_id, "h1/quiet/timeout");
        assert_eq!(signal.entity.unwrap().id, "u1");
        let action = gavel_model::pb::AutoAction::decode(&*out[1].1).unwrap();
        assert_eq!((action.rule_id.as_str(), action.source_event_id.as_str()), ("quiet", "h1/quiet/timeout"));
    }
}
