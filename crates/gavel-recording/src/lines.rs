//! The line reader under both JSON Lines formats (events and ground
//! truth): non-blank lines, trimmed, counted from 1.

use std::io::{BufRead, ErrorKind};

use crate::Result;

/// Reads the non-blank lines of a `BufRead`, reusing one buffer.
#[derive(Debug)]
pub(crate) struct Lines<R> {
    reader: R,
    /// 1-based number of the line in `buf` (blank lines count).
    line: usize,
    /// The current line, trimmed of ASCII white space.
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R) -> Self {
        Lines { reader, line: 0, buf: Vec::new(), done: false }
    }

    /// The next non-blank line, trimmed, as `parse` makes it out of the
    /// line and its number; `None` at the end. After an I/O error there are
    /// no more lines.
    pub(crate) fn next_parsed<T>(&mut self, parse: impl FnOnce(&[u8], usize) -> Result<T>) -> Option<Result<T>> {
        Some(match self.advance()? {
            Ok(()) => parse(&self.buf, self.line),
            Err(e) => Err(e),
        })
    }

    /// Reads the next non-blank line into `buf`, trimmed; `None` at the end.
    fn advance(&mut self) -> Option<Result<()>> {
        while !self.done {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    let trimmed = self.buf.trim_ascii();
                    if trimmed.is_empty() {
                        continue;
                    }
                    let (start, len) = (trimmed.as_ptr() as usize - self.buf.as_ptr() as usize, trimmed.len());
                    self.buf.drain(..start);
                    self.buf.truncate(len);
                    return Some(Ok(()));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
        }
        None
    }
}
