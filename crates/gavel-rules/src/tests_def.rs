//! Rule tests as compiled from a pack: events already decoded, times
//! resolved, expectations checked against the pack's rule ids. Running them
//! needs the engine, so it happens in `gavel-engine` (`testing`).

use gavel_model::Event;
use gavel_model::pb::{ActionType, Decision};

/// One test: a sequence of steps against a fresh engine.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The test's name.
    pub name: String,
    /// Where it is defined: `file:line:col`.
    pub place: String,
    /// Steps in order.
    pub steps: Vec<Step>,
}

/// Events sent at one point of a test, and what must follow.
#[derive(Debug, Clone)]
pub struct Step {
    /// Offset of the first event from the test's start, in ms.
    pub at_ms: u64,
    /// The event (its `occurred_at` and `event_id` are filled in per send).
    pub event: Event,
    /// How many times to send it.
    pub repeat: u32,
    /// Spacing between repeats, in ms.
    pub every_ms: u64,
    /// Expectations on the outcome of the last send.
    pub expect: Option<Expect>,
    /// Where the step is defined.
    pub place: String,
}

/// Expectations on one outcome.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Rules that must fire.
    pub fires: Vec<String>,
    /// Rules that must not fire.
    pub not_fires: Vec<String>,
    /// The decision, if checked.
    pub decision: Option<Decision>,
    /// The action types, in order, if checked.
    pub actions: Option<Vec<ActionType>>,
    /// The score, if checked.
    pub score: Option<i32>,
}
