//! Ground truth: which recorded events belong to which abuse scenario, and
//! the entities each one names. Written and read here, in one place, as
//! the typed [`TruthRecord`]; the format is in the [crate docs](crate).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::lines::Lines;
use crate::{Error, Result};

/// One line of a ground-truth file. Serialized, its keys come in field
/// order and `entities` sorted by key, so the same record always gives the
/// same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruthRecord {
    /// The labelled event's `event_id`.
    pub event_id: String,
    /// The scenario it belongs to (for simulated traffic, a `Scenario`
    /// name of gavel-sim).
    pub scenario: String,
    /// For an honest event that resembles abuse (`scenario` is `none`):
    /// which honest behaviour it is (for simulated traffic, a `LookAlike`
    /// name of gavel-sim). Absent on reading, and left out on writing,
    /// when it is not one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub look_alike: Option<String>,
    /// Entity type → id, for the entities the event names (`user` is the
    /// account the abuse is counted against). Absent on reading: empty.
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
}

/// Writes `record` as one line of a ground-truth file.
pub fn write_truth<W: Write>(mut w: W, record: &TruthRecord) -> Result<()> {
    // Serializing strings and a map of strings into a Vec cannot fail but
    // for the writer, which is `Vec`'s and infallible: treat it as I/O.
    let mut line = serde_json::to_vec(record).map_err(|e| Error::Io(e.into()))?;
    line.push(b'\n');
    w.write_all(&line)?;
    Ok(())
}

/// Reads a ground-truth file written by [`write_truth`]. Blank lines are
/// skipped; a line that is not a record is an error naming its line, and
/// reading goes on after it.
pub fn read_truth<R: BufRead>(reader: R) -> TruthLines<R> {
    TruthLines { lines: Lines::new(reader) }
}

/// Iterator over the records of a ground-truth file; see [`read_truth`].
#[derive(Debug)]
pub struct TruthLines<R> {
    lines: Lines<R>,
}

impl<R: BufRead> Iterator for TruthLines<R> {
    type Item = Result<TruthRecord>;

    fn next(&mut self) -> Option<Result<TruthRecord>> {
        self.lines
            .next_parsed(|line, n| serde_json::from_slice(line).map_err(|source| Error::TruthLine { line: n, source }))
    }
}
