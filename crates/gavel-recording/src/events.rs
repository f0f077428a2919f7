//! Events in a recording: JSON Lines and length-delimited protobuf,
//! written one event per call and read back as iterators of results.

use std::io::{BufRead, ErrorKind, Read, Write};

use gavel_model::{Event, decode_json, decode_protobuf, encode_json};
use prost::Message;

use crate::lines::Lines;
use crate::{Error, Result};

/// The largest protobuf record [`read_protobuf_delimited`] accepts, in
/// bytes: a corrupt length prefix must not make it allocate gigabytes.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;

/// Writes `event` as one line of JSON Lines.
pub fn write_jsonl<W: Write>(mut w: W, event: &Event) -> Result<()> {
    let mut line = encode_json(event)?;
    line.push(b'\n');
    w.write_all(&line)?;
    Ok(())
}

/// Writes `event` as one varint-length-prefixed protobuf record.
pub fn write_protobuf_delimited<W: Write>(mut w: W, event: &Event) -> Result<()> {
    w.write_all(&event.encode_length_delimited_to_vec())?;
    Ok(())
}

/// Reads events written by [`write_jsonl`] (or any proto3-JSON event per
/// line).
pub fn read_jsonl<R: BufRead>(reader: R) -> JsonLines<R> {
    JsonLines { lines: Lines::new(reader) }
}

/// Reads events written by [`write_protobuf_delimited`].
pub fn read_protobuf_delimited<R: Read>(reader: R) -> DelimitedProtobuf<R> {
    DelimitedProtobuf { reader, record: 0, buf: Vec::new(), done: false }
}

/// Iterator over the events of a JSON Lines file; see [`read_jsonl`].
#[derive(Debug)]
pub struct JsonLines<R> {
    lines: Lines<R>,
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        self.lines.next_parsed(|line, n| decode_json(line).map_err(|source| Error::JsonLine { line: n, source }))
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
