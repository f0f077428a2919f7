//! [`Tally`]: decisions, actions and rule hits since start, kept only by
//! the demo for its live view (production reads the same from `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

use gavel_model::pb::{ActionType, Decision};

/// What the engine decided since start: decisions, actions by type, and
/// hits per rule in enforce and shadow mode. Shards add to it concurrently.
#[derive(Debug)]
pub struct Tally {
    /// Per decision, at [`Decision::index`].
    decisions: Vec<AtomicU64>,
    /// Per action type, at [`ActionType::index`].
    actions: Vec<AtomicU64>,
    rules: dashmap::DashMap<String, [AtomicU64; 2]>,
}

impl Default for Tally {
    fn default() -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        Tally {
            decisions: zeros(Decision::ALL.len()),
            actions: zeros(ActionType::ALL.len()),
            rules: Default::default(),
        }
    }
}

/// A copy of a [`Tally`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallySnapshot {
    decisions: Vec<u64>,
    actions: Vec<u64>,
    /// Per rule id: (enforce hits, shadow hits).
    pub rules: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Default for TallySnapshot {
    fn default() -> Self {
        TallySnapshot {
            decisions: vec![0; Decision::ALL.len()],
            actions: vec![0; ActionType::ALL.len()],
            rules: Default::default(),
        }
    }
}

impl TallySnapshot {
    /// Events decided `decision`.
    pub fn decisions(&self, decision: Decision) -> u64 {
        self.decisions[decision.index()]
    }

    /// Actions of type `action`.
    pub fn actions(&self, action: ActionType) -> u64 {
        self.actions[action.index()]
    }
}

impl Tally {
    /// Counts an event's decision.
    pub fn decision(&self, decision: Decision) {
        self.decisions[decision.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an action of proto type number `action_type`.
    pub fn action(&self, action_type: i32) {
        self.actions[ActionType::from_i32_or_unspecified(action_type).index()].fetch_add(1, Ordering::Relaxed);
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
            decisions: self.decisions.iter().map(load).collect(),
            actions: self.actions.iter().map(load).collect(),
            rules: self.rules.iter().map(|e| (e.key().clone(), (load(&e.value()[0]), load(&e.value()[1])))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_decision_action_and_rule() {
        let tally = Tally::default();
        tally.decision(Decision::Block);
        tally.decision(Decision::Block);
        tally.action(ActionType::MuteChat as i32);
        tally.action(9_999);
        tally.rule_hit("r", true);
        let snap = tally.snapshot();
        assert_eq!(snap.decisions(Decision::Block), 2);
        assert_eq!(snap.decisions(Decision::Allow), 0);
        assert_eq!(snap.actions(ActionType::MuteChat), 1);
        assert_eq!(snap.actions(ActionType::Unspecified), 1, "an unknown type counts as unspecified");
        assert_eq!(snap.rules["r"], (0, 1));
        assert_eq!(TallySnapshot::default().decisions(Decision::Review), 0);
    }
}
