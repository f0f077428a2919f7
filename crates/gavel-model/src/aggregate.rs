//! [`Aggregate`]: what a windowed feature computes, with the names rule
//! packs and metrics use, and the [`InputKind`] each takes. Shared by the
//! rule compiler (which checks a feature against it) and the velocity store
//! (which computes it); neither the rule-side types nor the store's
//! representation live here.

use std::fmt;

/// How a window aggregates the events of a key.
///
/// What an empty window (or an unknown key) reads as is part of each
/// aggregate's definition: see [`Aggregate::empty_value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Number of events. Takes [`InputKind::None`]. Empty: `0`.
    Count,
    /// Sum of the events' numbers. Takes [`InputKind::Number`]. Empty: `0`.
    Sum,
    /// Smallest number. Takes [`InputKind::Number`]. Empty: `None`.
    Min,
    /// Largest number. Takes [`InputKind::Number`]. Empty: `None`.
    Max,
    /// Mean of the numbers. Takes [`InputKind::Number`]. Empty: `None`.
    Avg,
    /// Number of distinct items: exact up to `gavel_velocity::DISTINCT_EXACT_ITEMS`
    /// items, then a HyperLogLog estimate within
    /// `gavel_velocity::DISTINCT_RELATIVE_ERROR`. Takes [`InputKind::Item`]. Empty: `0`.
    Distinct,
    /// Event time (ms) of the oldest event in the window. Takes
    /// [`InputKind::None`]. Empty: `None`.
    FirstSeen,
    /// Event time (ms) of the newest event in the window; it may be later
    /// than the reading time when both fall in one bucket. Takes
    /// [`InputKind::None`]. Empty: `None`.
    LastSeen,
    /// Milliseconds from the key's newest event in the window to the reading
    /// time, never negative. `record` answers with the gap to the key's
    /// previous event (the reading just before this event), `None` when the
    /// window held none. Takes [`InputKind::None`]. Empty: `None`.
    Since,
    /// The distinct items themselves, most recently seen first: up to
    /// `gavel_velocity::RECENT_MAX_ITEMS` per key, the least recently seen
    /// dropped (and counted) past that. Rules read it as a `list(string)`;
    /// its number is the set's size. Takes [`InputKind::Item`]. Empty: `0`.
    Recent,
}

impl Aggregate {
    /// Every aggregate.
    pub const ALL: [Aggregate; 10] = [
        Aggregate::Count,
        Aggregate::Sum,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Avg,
        Aggregate::Distinct,
        Aggregate::FirstSeen,
        Aggregate::LastSeen,
        Aggregate::Since,
        Aggregate::Recent,
    ];

    /// The aggregate's name in rule packs and metrics: `count`, `sum`, `min`,
    /// `max`, `avg`, `distinct`, `first_seen`, `last_seen`, `since`, `recent`.
    pub const fn name(self) -> &'static str {
        match self {
            Aggregate::Count => "count",
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Avg => "avg",
            Aggregate::Distinct => "distinct",
            Aggregate::FirstSeen => "first_seen",
            Aggregate::LastSeen => "last_seen",
            Aggregate::Since => "since",
            Aggregate::Recent => "recent",
        }
    }

    /// The same name as [`Aggregate::name`], spelled like the other name tables.
    pub const fn as_str(self) -> &'static str {
        self.name()
    }

    /// The aggregate named `name` (see [`Aggregate::name`]).
    pub fn from_name(name: &str) -> Option<Aggregate> {
        Aggregate::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The input `record` takes for this aggregate.
    pub const fn input(self) -> InputKind {
        match self {
            Aggregate::Count | Aggregate::FirstSeen | Aggregate::LastSeen | Aggregate::Since => InputKind::None,
            Aggregate::Sum | Aggregate::Min | Aggregate::Max | Aggregate::Avg => InputKind::Number,
            Aggregate::Distinct | Aggregate::Recent => InputKind::Item,
        }
    }

    /// What a window with no event for the key reads as: `Some(0.0)` for
    /// `count`, `sum`, `distinct` and `recent`, `None` (no data) for the others.
    pub const fn empty_value(self) -> Option<f64> {
        match self {
            Aggregate::Count | Aggregate::Sum | Aggregate::Distinct | Aggregate::Recent => Some(0.0),
            _ => None,
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of input an aggregate takes (the velocity store's `Input`
/// variants), for error messages and for callers wiring features to windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// Nothing: the event itself is what counts.
    None,
    /// A finite number.
    Number,
    /// An item to count once.
    Item,
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::None => "no",
            InputKind::Number => "a number",
            InputKind::Item => "an item",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Aggregate::ALL {
            assert_eq!(Aggregate::from_name(a.name()), Some(a));
            assert_eq!(a.as_str(), a.name());
        }
        assert_eq!(Aggregate::from_name("median"), None);
    }
}
