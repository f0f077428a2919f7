//! Gavel's recording format: files of events and the ground truth beside
//! them. `gavel sim` writes recordings, `gavel replay` reads them, and any
//! other tool that records marketplace traffic can write them too.
//!
//! Start at [`FileFormat`], which picks the event encoding of a file (from
//! its name or a flag) and reads and writes events in it; [`TruthRecord`]
//! is one line of a ground-truth file.
//!
//! Nothing here opens a file or reads a path: writers take any
//! [`std::io::Write`], readers any [`std::io::BufRead`] or
//! [`std::io::Read`], so the caller decides where bytes go. Wrap files in
//! `BufWriter` / `BufReader`: these functions write one record per call and
//! read the protobuf length prefix a byte at a time. Nor does this crate know
//! the simulator: a scenario is a name, and an entity type a string.
//!
//! # Formats
//!
//! **JSON Lines** ([`write_jsonl`], [`read_jsonl`]): one event per line in
//! the proto3 JSON mapping (what [`gavel_model::encode_json`] writes),
//! `\n`-terminated. Blank lines are skipped on reading; a line that is not
//! an event is an error naming its line, and reading goes on after it.
//!
//! **Length-delimited protobuf** ([`write_protobuf_delimited`],
//! [`read_protobuf_delimited`]): each event as a varint byte length and
//! then that many bytes of `gavel.v1.Event`, the framing of prost's
//! `encode_length_delimited` (and of Java's `writeDelimitedTo`). A record
//! that does not decode is an error naming its 1-based number, and reading
//! goes on; a file that ends inside a record, or a length over
//! [`MAX_RECORD_BYTES`], ends the stream with an error.
//!
//! **Ground truth** ([`write_truth`], [`read_truth`]): JSON Lines, one
//! object per labelled event, in stream order; normal events get no line
//! unless they are honest look-alikes (below). Keys are always in this
//! order and `entities` is sorted by key:
//!
//! ```text
//! {"event_id":"sim-7-120","scenario":"bid_bot","entities":{"bid":"b-120","device":"botdev-2","ip":"198.51.100.12","listing":"l-77","show":"sh-31","user":"bot-2"}}
//! ```
//!
//! `scenario` names the abuse pattern the event belongs to (the simulator
//! writes its `Scenario` names). `entities` maps entity types (the
//! lower-case names of `gavel.v1.EntityType`: `user`, `device`, `ip`,
//! `card`, `show`, `listing`, `bid`, `order`, `payout`, `chat_message`,
//! plus `seller` for a shill ring's seller) to the ids the event names; it
//! may be absent. `user` is the account the abuse is counted against (the
//! backtest's per-user recall). An honest event that resembles abuse (a
//! household sharing a card, a winner whose first card declines) has
//! `"scenario":"none"` and, after it, `look_alike` naming the honest
//! behaviour, so a backtest can say how many honest look-alike users a
//! pack flags:
//!
//! ```text
//! {"event_id":"sim-7-981","scenario":"none","look_alike":"second_card","entities":{"card":"fp-88-2","order":"o-51","user":"u-88"}}
//! ```
//!
//! A line with any other key is an error.

mod error;
mod events;
mod format;
mod lines;
mod truth;

pub use error::{Error, Result};
pub use events::{
    DelimitedProtobuf, JsonLines, MAX_RECORD_BYTES, read_jsonl, read_protobuf_delimited, write_jsonl,
    write_protobuf_delimited,
};
pub use format::{Events, FileFormat};
pub use truth::{TruthLines, TruthRecord, read_truth, write_truth};
