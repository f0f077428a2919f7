//! Every metric gavel exports, declared once: its name, kind, unit and
//! Prometheus `HELP` text, in one table ([`ALL`]), with a constant per name
//! for the code that records it.
//!
//! Names follow `gavel_<subsystem>_<name>_<unit>` with `_total` for
//! counters. Label values come from small fixed sets (topic, event kind,
//! rule id, mode, decision, action type) and never carry a user, device or
//! card id.

use metrics::Unit;

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic count.
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Distribution of observations.
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The exported name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The unit, where the name carries one.
    pub unit: Option<Unit>,
    /// The `HELP` line.
    pub help: &'static str,
}

macro_rules! catalog {
    ($($(#[doc = $doc:literal])* $id:ident: $kind:ident $(($unit:ident))? = $name:literal, $help:literal;)+) => {
        $($(#[doc = $doc])* pub const $id: &str = $name;)+

        /// Every metric, in the order `/metrics` describes them.
        pub const ALL: &[Metric] = &[$(Metric {
            name: $name,
            kind: Kind::$kind,
            unit: catalog!(@unit $($unit)?),
            help: $help,
        }),+];
    };
    (@unit) => { None };
    (@unit $unit:ident) => { Some(Unit::$unit) };
}

catalog! {
    /// Counter, label `topic`: messages consumed.
    EVENTS_CONSUMED: Counter = "gavel_events_consumed_total", "Input messages consumed, by topic.";
    /// Counter, labels `topic`: messages sent to the dead-letter topic.
    EVENTS_DEAD_LETTERED: Counter = "gavel_events_dead_lettered_total", "Input messages sent to the dead-letter topic, by topic.";
    /// Counter, label `kind`: events evaluated by the engine.
    EVENTS_EVALUATED: Counter = "gavel_events_evaluated_total", "Events evaluated by the engine, by event kind.";
    /// Counter: messages whose outputs were all acknowledged and offset stored.
    EVENTS_ACKNOWLEDGED: Counter = "gavel_events_acknowledged_total", "Input messages whose outputs were all acknowledged and offset stored.";
    /// Counter: risk signals produced.
    SIGNALS: Counter = "gavel_signals_total", "Risk signals published.";
    /// Counter: signals published on the shadow topic.
    SHADOW_SIGNALS: Counter = "gavel_shadow_signals_total", "Signals published on the shadow topic (events a shadow rule fired on).";
    /// Counter, label `topic`: records over the size limit, replaced by dead-letter references.
    OUTPUTS_OVERSIZED: Counter = "gavel_outputs_oversized_total", "Records over the message size limit, by output topic; each was replaced by a dead-letter reference to its input.";
    /// Counter, label `topic`: messages whose processing panicked (dead-lettered).
    PROCESSING_PANICS: Counter = "gavel_processing_panics_total", "Input messages whose processing panicked (a bug); each went to the dead-letter topic, by topic.";
    /// Counter, labels `rule`, `mode`: rule hits.
    RULE_HITS: Counter = "gavel_rule_hits_total", "Rule hits, by rule and mode (enforce or shadow).";
    /// Counter, label `rule`: conditions that failed to evaluate (the rule did not fire).
    RULE_ERRORS: Counter = "gavel_rule_evaluation_errors_total", "Rule conditions that failed to evaluate, by rule.";
    /// Counter, label `type`: auto-actions produced.
    ACTIONS: Counter = "gavel_actions_total", "Auto-actions published, by type.";
    /// Counter, label `decision`: verdicts by decision.
    VERDICTS: Counter = "gavel_verdicts_total", "Events decided, by decision.";
    /// Counter, label `result` (`success`, `failure`): rule pack reloads.
    RULES_RELOADS: Counter = "gavel_rules_reloads_total", "Rule pack reloads, by result.";
    /// Gauge, label `result`: when the last reload of that result finished.
    RULES_LAST_RELOAD: Gauge(Seconds) = "gavel_rules_last_reload_timestamp_seconds", "When the last rule pack reload finished (Unix seconds), by result.";
    /// Gauge, labels `version`, `hash`: 1 for the pack in force.
    RULES_PACK_INFO: Gauge = "gavel_rules_pack_info", "1 for the rule pack in force, by version and content hash.";
    /// Gauge: rules in the pack in force.
    RULES_ACTIVE: Gauge = "gavel_rules_active", "Rules in the pack in force.";
    /// Counter: messages replayed by warm-up (features rebuilt, nothing emitted).
    WARMUP_MESSAGES: Counter = "gavel_warmup_messages_total", "Messages replayed by warm-up.";
    /// Counter: velocity keys evicted because their window emptied.
    VELOCITY_EVICTED: Counter = "gavel_velocity_keys_evicted_total", "Velocity keys dropped by maintenance because they hold no event any more (cap evictions are counted apart).";
    /// Counter, label `feature`: keys evicted because the feature hit its `max_keys` cap.
    VELOCITY_CAP_EVICTIONS: Counter = "gavel_velocity_cap_evictions_total", "Velocity keys evicted by a feature's max_keys cap, by feature.";
    /// Counter, label `feature`: events older than their key's window, ignored.
    VELOCITY_TOO_LATE: Counter = "gavel_velocity_events_too_late_total", "Events older than their key's window, ignored, by feature.";
    /// Counter, label `feature`: items a `recent` feature's key dropped because it held its bound.
    VELOCITY_ITEMS_DROPPED: Counter = "gavel_velocity_items_dropped_total", "Items a recent feature dropped because the key already held RECENT_MAX_ITEMS, least recently seen first, by feature.";
    /// Gauge: keys holding recorded steps of sequence rules.
    SEQUENCE_KEYS: Gauge = "gavel_sequence_keys", "Keys holding recorded steps of sequence rules (after:), over all such rules.";
    /// Gauge: absence rules' timers waiting for their deadline.
    TIMERS_PENDING: Gauge = "gavel_timers_pending", "Timers of absence rules (wait:) waiting for their deadline.";
    /// Counter, label `outcome`: timers armed, fired at their deadline, cancelled in time, or refused at the bound.
    TIMERS: Counter = "gavel_timers_total", "Timers of absence rules by outcome: armed, fired (deadline reached), cancelled (a matching event in time), refused (MAX_PENDING_TIMERS pending).";
    /// Gauge, label `feature`: keys held.
    VELOCITY_KEYS: Gauge = "gavel_velocity_keys", "Velocity keys held, by feature.";
    /// Gauge, label `feature`: bytes held (estimate).
    VELOCITY_BYTES: Gauge(Bytes) = "gavel_velocity_bytes", "Velocity store memory, by feature (estimate).";
    /// Gauge: entities carrying at least one label.
    LABELS: Gauge = "gavel_labels_entities", "Entities carrying at least one label.";
    /// Histogram, label `topic`: receive → outputs enqueued, in seconds.
    PROCESSING_DURATION: Histogram(Seconds) = "gavel_processing_duration_seconds", "Receive to outputs enqueued, by input topic.";
    /// Client-level errors (broker down, connection lost); librdkafka retries them.
    KAFKA_CLIENT_ERRORS: Counter = "gavel_kafka_client_errors_total", "Kafka client errors (broker down, connection lost); retried.";
    /// Errors returned by polling the consumer.
    KAFKA_CONSUMER_ERRORS: Counter = "gavel_kafka_consumer_errors_total", "Errors returned by polling the consumer.";
    /// Outputs sent again after a failed enqueue or delivery, by output topic.
    KAFKA_DELIVERY_RETRIES: Counter = "gavel_kafka_delivery_retries_total", "Outputs sent again after a failed enqueue or delivery, by topic.";
    /// Offset commits that failed.
    KAFKA_COMMIT_FAILURES: Counter = "gavel_kafka_commit_failures_total", "Offset commits that failed.";
    /// Partitions paused because their shard is behind.
    KAFKA_PARTITIONS_PAUSED: Gauge = "gavel_kafka_partitions_paused", "Input partitions paused because their shard is behind.";
    /// Partitions this instance owns.
    KAFKA_PARTITIONS_ASSIGNED: Gauge = "gavel_kafka_partitions_assigned", "Input partitions this instance owns.";
    /// 1 while this instance's state counts every event it should: it owns
    /// every input partition (or none), or the pack keeps no state beyond
    /// the user; 0 while features keyed by device, IP, card or seller see
    /// only its share of the partitions.
    STATE_EXACT: Gauge = "gavel_state_exact", "1 while this instance owns every input partition or the pack keeps no state beyond the user.";
    /// Under `kafka.order = "log"`, messages applied out of the log's
    /// order, by why: `stalled` (a partition the broker said had more sent
    /// nothing within `kafka.order_wait`, and was no longer waited for) or
    /// `forced` (a shard's merge buffer was full, or it drained for a
    /// rebalance or shutdown). Nonzero: answers of that stretch may differ
    /// from another run's over the same log.
    INPUT_ORDER_BROKEN: Counter = "gavel_input_order_broken_total", "Times the log's order was given up, by reason (stalled, forced).";
    /// Under `kafka.state = "replicated"`: bytes of outputs this instance
    /// holds for partitions others publish, until the group's commits
    /// pass them (sampled every half second).
    FOLLOW_HELD_BYTES: Gauge(Bytes) = "gavel_follow_held_bytes", "Bytes of outputs held for partitions other instances publish (replicated state).";
    /// Under `kafka.state = "replicated"`: messages whose held outputs an
    /// instance published on taking their partition over.
    FOLLOW_HANDED_OVER: Counter = "gavel_follow_handed_over_total", "Held messages published on taking a partition over (replicated state).";
    /// Rebalances handled, by kind (`assign`, `revoke`).
    KAFKA_REBALANCES: Counter = "gavel_kafka_rebalances_total", "Rebalances handled, by kind.";
    /// How long the last warm-up took.
    WARMUP_DURATION: Gauge(Seconds) = "gavel_warmup_duration_seconds", "How long the last warm-up took.";
    /// Gauge: consumer lag of each owned input partition, in messages
    /// (librdkafka statistics, every second; 0 once a partition is given up).
    KAFKA_CONSUMER_LAG: Gauge = "gavel_kafka_consumer_lag_messages", "Consumer lag of each owned input partition, in messages.";
    /// Histogram: from the event's time (`from="event_time"`) or its Kafka
    /// timestamp (`from="kafka_timestamp"`) to every output acknowledged.
    END_TO_END_DURATION: Histogram(Seconds) = "gavel_end_to_end_duration_seconds", "Event time or Kafka timestamp to outputs acknowledged.";
    /// Gauge: 1 while partitions are assigned and warmed up, else 0.
    READY: Gauge = "gavel_ready", "1 while partitions are assigned and warmed up.";
    /// Gauge: resident memory of the process (the process collector's).
    PROCESS_RESIDENT_MEMORY: Gauge(Bytes) = "process_resident_memory_bytes", "Resident memory size in bytes.";
    /// Counter: CPU time of the process (the process collector's).
    PROCESS_CPU: Counter(Seconds) = "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.";
    /// Gauge: when the process started (the process collector's).
    PROCESS_START_TIME: Gauge(Seconds) = "process_start_time_seconds", "Start time of the process since unix epoch in seconds.";
    /// Gauge: open file descriptors (the process collector's).
    PROCESS_OPEN_FDS: Gauge = "process_open_fds", "Number of open file descriptors.";
    /// Gauge, always 1: the running version, as a label.
    BUILD_INFO: Gauge = "gavel_build_info", "Always 1, labelled with the running version.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_conventional() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} declared twice", m.name);
            assert!(m.name.starts_with("gavel_") || m.name.starts_with("process_"), "{}", m.name);
            if m.kind == Kind::Counter {
                assert!(m.name.ends_with("_total"), "counter {} must end in _total", m.name);
            }
            if m.unit == Some(Unit::Seconds) {
                // A counter of seconds is `…_seconds_total`.
                assert!(m.name.trim_end_matches("_total").ends_with("_seconds"), "{}", m.name);
            }
            assert!(!m.help.is_empty());
        }
    }
}
