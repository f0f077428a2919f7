//! Files of simulated traffic: events written as JSON Lines or as
//! length-delimited protobuf and read back, and the ground-truth file that
//! says which events (and entities) belong to which [`Scenario`].
//!
//! Nothing here opens a file or reads a path: writers take any
//! [`std::io::Write`], readers any [`BufRead`] or [`Read`], so the binary
//! decides where bytes go. Wrap files in `BufWriter` / `BufReader`: these
//! functions write one record per call and read the protobuf length prefix
//! a byte at a time.
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
//! **Ground truth** ([`write_truth_line`], [`read_truth`]): JSON Lines,
//! one object per labelled event, in stream order; normal events get no
//! line. Keys are always in this order and `entities` is sorted by key:
//!
//! ```text
//! {"event_id":"sim-7-120","scenario":"bid_bot","entities":{"bid":"b-120","device":"botdev-2","ip":"198.51.100.12","listing":"l-77","show":"sh-31","user":"bot-2"}}
//! ```
//!
//! `scenario` is a [`Scenario::as_str`] name. `entities` maps entity types
//! (the lower-case names of `gavel.v1.EntityType`: `user`, `device`, `ip`,
//! `card`, `show`, `listing`, `bid`, `order`, `payout`, `chat_message`,
//! plus `seller` for a shill ring's seller) to the ids the event names:
//! the acting account, its device and IP, and what the payload references
//! (a payment's card and order, a bid's bid, listing and show, a chat
//! message and its show). For an `auction_closed` event, whose acting
//! account is the seller, `user` is the winner and device and IP are left
//! out. In an `account_takeover` line `user` is the account under attack
//! and `device` and `ip` are the attacker's. See [`SimEvent::entities`].

use std::collections::BTreeMap;
use std::io::{BufRead, ErrorKind, Read, Write};

use gavel_model::{Event, Payload, decode_json, decode_protobuf, encode_json};
use prost::Message;
use serde::Serialize;

use crate::{Error, Result, Scenario, SimEvent};

/// The largest protobuf record [`read_protobuf_delimited`] accepts, in
/// bytes: a corrupt length prefix must not make it allocate gigabytes.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// Writes `event` as one line of JSON Lines.
pub fn write_jsonl<W: Write>(mut w: W, event: &Event) -> Result<()> {
    let mut line = encode_json(event).map_err(Error::Encode)?;
    line.push(b'\n');
    w.write_all(&line)?;
    Ok(())
}

/// Writes `event` as one varint-length-prefixed protobuf record.
pub fn write_protobuf_delimited<W: Write>(mut w: W, event: &Event) -> Result<()> {
    w.write_all(&event.encode_length_delimited_to_vec())?;
    Ok(())
}

/// Writes the ground-truth line of `event` if it is labelled; returns
/// whether it wrote one (normal traffic gets none).
pub fn write_truth_line<W: Write>(mut w: W, event: &SimEvent) -> Result<bool> {
    let Some(scenario) = event.scenario else { return Ok(false) };
    #[derive(Serialize)]
    struct Line<'a> {
        event_id: &'a str,
        scenario: &'static str,
        entities: BTreeMap<&'static str, &'a str>,
    }
    let line = Line {
        event_id: &event.event.event_id,
        scenario: scenario.as_str(),
        entities: event.entities().into_iter().collect(),
    };
    let mut bytes = serde_json::to_vec(&line).map_err(|e| Error::Io(e.into()))?;
    bytes.push(b'\n');
    w.write_all(&bytes)?;
    Ok(true)
}

impl SimEvent {
    /// The entities this event names, as `(entity type, id)` pairs sorted by
    /// type: what a ground-truth line lists (see the [module docs](self)).
    pub fn entities(&self) -> Vec<(&'static str, &str)> {
        let event = &self.event;
        let mut out: Vec<(&'static str, &str)> = Vec::new();
        let mut add = |kind: &'static str, id| push_entity(&mut out, kind, id);
        match &event.payload {
            Some(Payload::AuctionClosed(closed)) => {
                add("user", &closed.winner_id);
                add("listing", &closed.listing_id);
                add("show", &closed.show_id);
            }
            payload => {
                add("user", &event.user_id);
                add("device", event.device_id.as_deref().unwrap_or_default());
                add("ip", event.ip.as_deref().unwrap_or_default());
                match payload {
                    Some(Payload::ShowStarted(p)) => add("show", &p.show_id),
                    Some(Payload::ShowEnded(p)) => add("show", &p.show_id),
                    Some(Payload::ListingCreated(p)) => {
                        add("listing", &p.listing_id);
                        add("show", &p.show_id);
                    }
                    Some(Payload::BidPlaced(p)) => {
                        add("bid", &p.bid_id);
                        add("listing", &p.listing_id);
                        add("show", &p.show_id);
                        if self.scenario == Some(Scenario::ShillRing) {
                            add("seller", &p.seller_id);
                        }
                    }
                    Some(Payload::PaymentAttempted(p)) => {
                        add("card", p.card.as_ref().map_or("", |c| &c.fingerprint));
                        add("order", &p.order_id);
                    }
                    Some(Payload::PaymentAuthorized(p)) => {
                        add("card", p.card.as_ref().map_or("", |c| &c.fingerprint));
                        add("order", &p.order_id);
                    }
                    Some(Payload::PaymentDeclined(p)) => {
                        add("card", p.card.as_ref().map_or("", |c| &c.fingerprint));
                        add("order", &p.order_id);
                    }
                    Some(Payload::RefundIssued(p)) => add("order", &p.order_id),
                    Some(Payload::ChargebackFiled(p)) => add("order", &p.order_id),
                    Some(Payload::PayoutRequested(p)) => add("payout", &p.payout_id),
                    Some(Payload::ChatMessageSent(p)) => {
                        add("chat_message", &p.message_id);
                        add("show", &p.show_id);
                    }
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out
    }
}

fn push_entity<'a>(out: &mut Vec<(&'static str, &'a str)>, kind: &'static str, id: &'a str) {
    if !id.is_empty() {
        out.push((kind, id));
    }
}

/// Reads events written by [`write_jsonl`] (or any proto3-JSON event per
/// line).
pub fn read_jsonl<R: BufRead>(reader: R) -> JsonLines<R> {
    JsonLines { reader, line: 0, buf: Vec::new(), done: false }
}

/// Reads events written by [`write_protobuf_delimited`].
pub fn read_protobuf_delimited<R: Read>(reader: R) -> DelimitedProtobuf<R> {
    DelimitedProtobuf { reader, record: 0, buf: Vec::new(), done: false }
}

/// Reads a ground-truth file written by [`write_truth_line`].
pub fn read_truth<R: BufRead>(reader: R) -> TruthLines<R> {
    TruthLines { reader, line: 0, buf: Vec::new(), done: false }
}

/// One line of a ground-truth file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRecord {
    /// The labelled event.
    pub event_id: String,
    /// Its scenario.
    pub scenario: Scenario,
    /// Entity type → id, as [`SimEvent::entities`] lists them.
    pub entities: BTreeMap<String, String>,
}

/// Iterator over the events of a JSON Lines file; see [`read_jsonl`].
#[derive(Debug)]
pub struct JsonLines<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

/// Reads the next non-blank line into `buf`, trimmed; `None` at the end.
fn next_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>, line: &mut usize, done: &mut bool) -> Option<Result<()>> {
    while !*done {
        buf.clear();
        match reader.read_until(b'\n', buf) {
            Ok(0) => *done = true,
            Ok(_) => {
                *line += 1;
                let trimmed = buf.trim_ascii();
                if trimmed.is_empty() {
                    continue;
                }
                let (start, len) = (trimmed.as_ptr() as usize - buf.as_ptr() as usize, trimmed.len());
                buf.drain(..start);
                buf.truncate(len);
                return Some(Ok(()));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                *done = true;
                return Some(Err(e.into()));
            }
        }
    }
    None
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        match next_line(&mut self.reader, &mut self.buf, &mut self.line, &mut self.done)? {
            Ok(()) => Some(decode_json(&self.buf).map_err(|source| Error::JsonLine { line: self.line, source })),
            Err(e) => Some(Err(e)),
        }
    }
}

/// Iterator over the events of a length-delimited protobuf file; see
/// [`read_protobuf_delimited`].
#[derive(Debug)]
pub struct DelimitedProtobuf<R> {
    reader: R,
    record: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: Read> DelimitedProtobuf<R> {
    /// Reads a varint length; `None` at a clean end of input.
    fn read_length(&mut self, record: usize) -> Result<Option<u64>> {
        let mut value = 0u64;
        for i in 0..10 {
            let mut byte = [0u8; 1];
            loop {
                match self.reader.read(&mut byte) {
                    Ok(0) if i == 0 => return Ok(None),
                    Ok(0) => return Err(Error::Truncated { record }),
                    Ok(_) => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            value |= u64::from(byte[0] & 0x7f) << (7 * i);
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(Error::BadLength { record, detail: "varint longer than 10 bytes".into() })
    }

    fn read_record(&mut self) -> Result<Option<Event>> {
        let record = self.record + 1;
        let Some(len) = self.read_length(record)? else { return Ok(None) };
        if len > MAX_RECORD_BYTES {
            return Err(Error::BadLength { record, detail: format!("{len} bytes, over {MAX_RECORD_BYTES}") });
        }
        // At most MAX_RECORD_BYTES, which fits in usize.
        self.buf.resize(len as usize, 0);
        self.reader.read_exact(&mut self.buf).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => Error::Truncated { record },
            _ => Error::Io(e),
        })?;
        self.record = record;
        decode_protobuf(&self.buf).map(Some).map_err(|source| Error::ProtobufRecord { record, source })
    }
}

impl<R: Read> Iterator for DelimitedProtobuf<R> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        if self.done {
            return None;
        }
        match self.read_record() {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) => {
                self.done = true;
                None
            }
            // The framing is intact: the next record can still be read.
            Err(e @ Error::ProtobufRecord { .. }) => Some(Err(e)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over a ground-truth file; see [`read_truth`].
#[derive(Debug)]
pub struct TruthLines<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Iterator for TruthLines<R> {
    type Item = Result<TruthRecord>;

    fn next(&mut self) -> Option<Result<TruthRecord>> {
        if let Err(e) = next_line(&mut self.reader, &mut self.buf, &mut self.line, &mut self.done)? {
            return Some(Err(e));
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Line {
            event_id: String,
            scenario: String,
            #[serde(default)]
            entities: BTreeMap<String, String>,
        }
        let line = self.line;
        let bad = |message: String| Error::TruthLine { line, message };
        let parsed: Line = match serde_json::from_slice(&self.buf) {
            Ok(parsed) => parsed,
            Err(e) => return Some(Err(bad(e.to_string()))),
        };
        let Some(scenario) = Scenario::parse(&parsed.scenario) else {
            return Some(Err(bad(format!("unknown scenario `{}`", parsed.scenario))));
        };
        Some(Ok(TruthRecord { event_id: parsed.event_id, scenario, entities: parsed.entities }))
    }
}
