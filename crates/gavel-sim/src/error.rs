//! The crate's one error type. Generating events cannot fail; reading and
//! writing files of them ([`crate::output`]) and parsing scenario names can.

use gavel_model::ModelError;

/// Errors from [`crate::output`] and from parsing a [`Scenario`](crate::Scenario) name.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An event could not be encoded.
    #[error("cannot encode event: {0}")]
    Encode(#[source] ModelError),
    /// A line of a JSON Lines file is not a valid event.
    #[error("line {line}: {source}")]
    JsonLine {
        /// 1-based line number.
        line: usize,
        /// Why the line did not decode (input values redacted).
        #[source]
        source: ModelError,
    },
    /// A record of a length-delimited protobuf file is not a valid event.
    #[error("record {record}: {source}")]
    ProtobufRecord {
        /// 1-based record number.
        record: usize,
        /// Why the record did not decode.
        #[source]
        source: ModelError,
    },
    /// A length-delimited file ends inside a record or its length prefix.
    #[error("record {record} is truncated: the input ends inside it")]
    Truncated {
        /// 1-based record number.
        record: usize,
    },
    /// A length prefix is not a valid varint or exceeds [`crate::output::MAX_RECORD_BYTES`].
    #[error("record {record} has an invalid length prefix ({detail})")]
    BadLength {
        /// 1-based record number.
        record: usize,
        /// What was wrong with it.
        detail: String,
    },
    /// A line of a ground-truth file is not a valid record.
    #[error("ground truth line {line}: {message}")]
    TruthLine {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A scenario name that no [`Scenario`](crate::Scenario) has.
    #[error("unknown scenario `{0}` (expected one of: {names})", names = crate::Scenario::ALL.map(|s| s.as_str()).join(", "))]
    UnknownScenario(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
