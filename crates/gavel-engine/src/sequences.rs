//! The recorded steps of sequence rules (`after:`), per rule and key.
//!
//! For each key, each step keeps the times, kinds and ids of its most
//! recent [`STEP_OCCURRENCES`] events inside the rule's window, so a match
//! can name the events that made it. Reads are exact while no step of a
//! key saw more than that many events in one window; past it the oldest
//! go first, which can only hide an in-order chain whose first step is
//! older than every kept one.

use dashmap::DashMap;
use gavel_model::EventKind;
use gavel_rules::Sequence;

/// Events kept per step and key.
pub const STEP_OCCURRENCES: usize = 4;

/// One event that was a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Occurrence {
    pub t: i64,
    pub kind: EventKind,
    pub event_id: Box<str>,
}

/// Per step, its occurrences, oldest first.
type Steps = Vec<Vec<Occurrence>>;

/// Every sequence rule's recorded steps, shared by all shards.
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    steps: DashMap<(Box<str>, Box<str>), Steps>,
}

impl Sequences {
    /// Records `occurrence` as step `step` of `rule` (with `steps` steps and
    /// a window of `within_ms`) for `key`, forgetting what left the window.
    pub fn record(&self, rule: &str, key: &str, steps: usize, step: usize, within_ms: u64, occurrence: Occurrence) {
        let mut entry = self.steps.entry((Box::from(rule), Box::from(key))).or_insert_with(|| vec![Vec::new(); steps]);
        let Some(list) = entry.get_mut(step) else { return };
        let start = occurrence.t.saturating_sub(within_ms as i64);
        list.retain(|o| o.t > start);
        // Kept in time order; a late event goes in its place.
        let at = list.partition_point(|o| o.t <= occurrence.t);
        list.insert(at, occurrence);
        if list.len() > STEP_OCCURRENCES {
            list.remove(0);
        }
    }

    /// For `rule`'s sequence and `key`, the events that make the steps at
    /// an event at `t`: times in `(t − within, t]`, in the written order
    /// (each at or after the one before, the earliest that fits, so the
    /// chain is found if the kept events hold one) or, with `any_order`,
    /// the latest of each step. `None` when some step is missing.
    pub fn matched(&self, rule: &str, key: &str, sequence: &Sequence, t: i64) -> Option<Vec<Occurrence>> {
        let entry = self.steps.get(&(Box::from(rule), Box::from(key)))?;
        let start = t.saturating_sub(sequence.within_ms as i64);
        let in_window = |o: &&Occurrence| o.t > start && o.t <= t;
        let mut found = Vec::with_capacity(entry.len());
        let mut after = i64::MIN;
        for list in entry.iter() {
            let hit = if sequence.any_order {
                list.iter().rev().find(in_window)
            } else {
                list.iter().filter(in_window).find(|o| o.t >= after)
            }?;
            after = hit.t;
            found.push(hit.clone());
        }
        Some(found)
    }

    /// Drops the keys with no step left inside its rule's window as of
    /// `now_ms` (`within_of` gives each rule's window, `None` for a rule
    /// that is gone).
    pub fn evict(&self, now_ms: i64, within_of: impl Fn(&str) -> Option<u64>) {
        self.steps.retain(|(rule, _), steps| {
            let Some(within) = within_of(rule) else { return false };
            let start = now_ms.saturating_sub(within as i64);
            steps.iter().flatten().any(|o| o.t > start)
        });
    }

    /// Keeps only the steps of the rules `keep` accepts (a reload).
    pub fn retain_rules(&self, keep: impl Fn(&str) -> bool) {
        self.steps.retain(|(rule, _), _| keep(rule));
    }

    /// Keys held, over all rules.
    pub fn len(&self) -> usize {
        self.steps.len()
    }
}
