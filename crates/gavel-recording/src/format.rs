//! [`FileFormat`]: how a recording stores its events, chosen by name (a
//! flag) or by a file's extension, with one reader and one writer for
//! either.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;
use std::str::FromStr;

use gavel_model::{Encoding, Event};

use crate::{DelimitedProtobuf, Error, JsonLines, Result, read_jsonl, read_protobuf_delimited};

/// How events are stored in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// One proto3-JSON event per line.
    Jsonl,
    /// Length-delimited protobuf `Event`s (varint length, then the message).
    Protobuf,
}

impl FileFormat {
    /// Every format, in the order command-line help lists them.
    pub const ALL: [FileFormat; 2] = [FileFormat::Jsonl, FileFormat::Protobuf];

    /// The format's name on the command line (`jsonl`, `protobuf`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Protobuf => "protobuf",
        }
    }

    /// One line saying what the format is, for command-line help.
    pub fn description(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "One proto3-JSON event per line",
            FileFormat::Protobuf => "Length-delimited protobuf `Event`s (varint length, then the message)",
        }
    }

    /// The format a file name implies: `.jsonl`, `.json` or `.ndjson` for
    /// JSON Lines, anything else protobuf. Looks at the name only; opens
    /// nothing.
    pub fn of(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "json" | "ndjson") => FileFormat::Jsonl,
            _ => FileFormat::Protobuf,
        }
    }

    /// The encoding of one event in this format: what a Kafka message
    /// carries when the same choice is made for a topic.
    pub fn encoding(self) -> Encoding {
        match self {
            FileFormat::Jsonl => Encoding::Json,
            FileFormat::Protobuf => Encoding::Protobuf,
        }
    }

    /// Writes one event in this format.
    pub fn write<W: Write>(self, w: W, event: &Event) -> Result<()> {
        match self {
            FileFormat::Jsonl => crate::write_jsonl(w, event),
            FileFormat::Protobuf => crate::write_protobuf_delimited(w, event),
        }
    }

    /// Reads the events of a file in this format.
    pub fn read<R: BufRead>(self, reader: R) -> Events<R> {
        match self {
            FileFormat::Jsonl => Events::Jsonl(read_jsonl(reader)),
            FileFormat::Protobuf => Events::Protobuf(read_protobuf_delimited(reader)),
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FileFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        FileFormat::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| Error::UnknownFormat(s.to_string()))
    }
}

/// Iterator over the events of a file in either format; see
/// [`FileFormat::read`].
#[derive(Debug)]
pub enum Events<R> {
    /// A JSON Lines file.
    Jsonl(JsonLines<R>),
    /// A length-delimited protobuf file.
    Protobuf(DelimitedProtobuf<R>),
}

impl<R: BufRead> Iterator for Events<R> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        match self {
            Events::Jsonl(events) => events.next(),
            Events::Protobuf(events) => events.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_extensions_pick_the_format() {
        for format in FileFormat::ALL {
            assert_eq!(format.as_str().parse::<FileFormat>().unwrap(), format);
            assert_eq!(format.to_string(), format.as_str());
        }
        let err = "json".parse::<FileFormat>().unwrap_err().to_string();
        assert!(err.contains("jsonl, protobuf"), "{err}");
        for (name, format) in [
            ("a.jsonl", FileFormat::Jsonl),
            ("a.json", FileFormat::Jsonl),
            ("dir/a.ndjson", FileFormat::Jsonl),
            ("a.pb", FileFormat::Protobuf),
            ("a", FileFormat::Protobuf),
        ] {
            assert_eq!(FileFormat::of(Path::new(name)), format, "{name}");
        }
        assert_eq!(FileFormat::Jsonl.encoding(), Encoding::Json);
        assert_eq!(FileFormat::Protobuf.encoding(), Encoding::Protobuf);
    }
}
