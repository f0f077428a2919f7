//! The crate's one error type. Generating events cannot fail; writing
//! their ground truth ([`crate::write_truth_line`]) and parsing scenario
//! names can.

/// Errors from writing ground truth and from parsing a [`Scenario`](crate::Scenario) name.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the recording failed (see gavel-recording's errors).
    #[error(transparent)]
    Recording(#[from] gavel_recording::Error),
    /// A scenario name that no [`Scenario`](crate::Scenario) has.
    #[error("unknown scenario `{0}` (expected one of: {names})", names = crate::Scenario::ALL.map(|s| s.as_str()).join(", "))]
    UnknownScenario(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
