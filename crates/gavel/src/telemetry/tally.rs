//! [`Tally`]: decisions, actions and rule hits since start, kept only by
//! the demo for its live view (production reads the same from `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// What the engine decided since start: decisions, actions by type, and
/// hits per rule in enforce and shadow mode. Shards add to it concurrently.
#[derive(Debug, Default)]
pub struct Tally {
    decisions: [AtomicU64; 5],
    actions: [AtomicU64; 9],
    rules: dashmap::DashMap<String, [AtomicU64; 2]>,
}

/// A copy of a [`Tally`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallySnapshot {
    /// Per decision, indexed by `Decision as usize`.
    pub decisions: [u64; 5],
    /// Per action type, indexed by `ActionType as usize`.
    pub actions: [u64; 9],
    /// Per rule id: (enforce hits, shadow hits).
    pub rules: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Tally {
    /// Counts an event's decision.
    pub fn decision(&self, decision: i32) {
        if let Some(n) = self.decisions.get(decision as usize) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an action.
    pub fn action(&self, action_type: i32) {
        if let Some(n) = self.actions.get(action_type as usize) {
            n.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a rule hit.
    pub fn rule_hit(&self, rule: &str, shadow: bool) {
        let slot = usize::from(shadow);
        if let Some(counts) = self.rules.get(rule) {
            counts[slot].fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.rules.entry(rule.to_string()).or_default()[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> TallySnapshot {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        TallySnapshot {
            decisions: std::array::from_fn(|i| load(&self.decisions[i])),
            actions: std::array::from_fn(|i| load(&self.actions[i])),
            rules: self.rules.iter().map(|e| (e.key().clone(), (load(&e.value()[0]), load(&e.value()[1])))).collect(),
        }
    }
}
