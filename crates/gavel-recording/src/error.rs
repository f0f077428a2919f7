//! The crate's one error type: what can go wrong reading or writing a
//! recording, with the line or record it happened at.

use gavel_model::ModelError;

/// Errors reading or writing a recording.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The underlying reader or writer failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An event could not be encoded.
    #[error("cannot encode event: {0}")]
    Encode(#[from] ModelError),
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
    /// A length prefix is not a valid varint or exceeds [`crate::MAX_RECORD_BYTES`].
    #[error("record {record} has an invalid length prefix ({detail})")]
    BadLength {
        /// 1-based record number.
        record: usize,
        /// What was wrong with it.
        detail: String,
    },
    /// A line of a ground-truth file is not a valid [`TruthRecord`](crate::TruthRecord).
    #[error("ground truth line {line}: {source}")]
    TruthLine {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A format name that no [`FileFormat`](crate::FileFormat) has.
    #[error("unknown file format `{0}` (expected one of: {names})", names = crate::FileFormat::ALL.map(|f| f.as_str()).join(", "))]
    UnknownFormat(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
