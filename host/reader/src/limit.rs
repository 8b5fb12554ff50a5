//! Readers that stop a stream at a limit and remember why.
//!
//! Errors travel through debpkg, the decompressors and tar as plain
//! `io::Error`s, re-wrapped on the way; their messages are not ours to
//! parse. So the reader that trips records the real reason in a shared
//! [`Tripwire`] and the caller asks it first: a limit hit becomes a
//! "decompression bomb" error and a failed read of the host's own file an
//! I/O error, whatever the layers in between made of them.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::{ReadError, human_bytes};

/// The first reason a wrapped reader refused to go on.
#[derive(Clone, Default)]
pub(crate) struct Tripwire(Rc<RefCell<Option<ReadError>>>);

impl Tripwire {
    fn trip(&self, error: ReadError) -> io::Error {
        let message = error.to_string();
        let mut slot = self.0.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
        io::Error::other(message)
    }

    /// The recorded reason, else `fallback` for an error that came from the
    /// data itself (corrupt compression, bad tar).
    pub(crate) fn explain(&self, fallback: impl FnOnce() -> ReadError) -> ReadError {
        self.0.borrow_mut().take().unwrap_or_else(fallback)
    }
}

/// The file being parsed: read errors here are the host's, not the
/// uploader's.
pub(crate) struct Source<R> {
    inner: R,
    tripwire: Tripwire,
}

impl<R> Source<R> {
    pub(crate) fn new(inner: R, tripwire: Tripwire) -> Self {
        Source { inner, tripwire }
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                Err(self.tripwire.trip(ReadError::Io(e)))
            }
            result => result,
        }
    }
}

/// A decompressed member: fails once it has produced more than `max_bytes`,
/// or more than `ratio` times the member's compressed size (the first
/// [`RATIO_EXEMPT`] bytes aside).
pub(crate) struct Bounded<R> {
    inner: R,
    produced: u64,
    max_bytes: u64,
    ratio_bytes: u64,
    ratio: u64,
    compressed: u64,
    what: String,
    tripwire: Tripwire,
}

/// Output every member may produce whatever its ratio: tar pads even a
/// one-file archive to a 10 KiB record, which a 60-byte gzip member would
/// otherwise "expand" 170 times.
pub(crate) const RATIO_EXEMPT: u64 = 1 << 20;

impl<R: Read> Bounded<R> {
    /// `compressed` is the member's size in the file; `None` for an
    /// uncompressed member, which has no ratio to check.
    pub(crate) fn new(
        inner: R,
        what: String,
        max_bytes: u64,
        compressed: Option<u64>,
        ratio: u64,
        tripwire: Tripwire,
    ) -> Self {
        let ratio_bytes = match compressed {
            Some(size) => size.saturating_mul(ratio).max(RATIO_EXEMPT),
            None => u64::MAX,
        };
        Bounded {
            inner,
            produced: 0,
            max_bytes,
            ratio_bytes,
            ratio,
            compressed: compressed.unwrap_or(0),
            what,
            tripwire,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never ask for more than one byte past the limit: what is handed
        // out stays bounded even if the caller ignores the error.
        let room = self
            .max_bytes
            .min(self.ratio_bytes)
            .saturating_sub(self.produced)
            .saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.produced += n as u64;
        if self.produced > self.max_bytes {
            return Err(self.tripwire.trip(ReadError::Bomb {
                what: self.what.clone(),
                limit: human_bytes(self.max_bytes),
            }));
        }
        if self.produced > self.ratio_bytes {
            return Err(self.tripwire.trip(ReadError::Bomb {
                what: self.what.clone(),
                limit: format!(
                    "{} times its compressed size of {}",
                    self.ratio,
                    human_bytes(self.compressed)
                ),
            }));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_byte_limit_and_says_so() {
        let tripwire = Tripwire::default();
        let data = vec![0u8; 5000];
        let mut r = Bounded::new(&data[..], "x.tar".into(), 4096, None, 200, tripwire.clone());
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(out.len() <= 4097);
        let err = tripwire.explain(|| unreachable!());
        assert_eq!(
            err.to_string(),
            "x.tar expands beyond 4 KiB (decompression bomb?)"
        );
    }

    #[test]
    fn ratio_applies_past_the_exemption() {
        let tripwire = Tripwire::default();
        let data = vec![0u8; 3 << 20];
        let mut r = Bounded::new(
            &data[..],
            "y.tar.gz".into(),
            u64::MAX,
            Some(10_000),
            200,
            tripwire.clone(),
        );
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(out.len() <= 2_000_000);
        let err = tripwire.explain(|| unreachable!());
        assert_eq!(
            err.to_string(),
            "y.tar.gz expands beyond 200 times its compressed size of 10000 bytes (decompression bomb?)"
        );
    }

    #[test]
    fn within_limits_reads_everything() {
        let data = vec![7u8; 100_000];
        let mut r = Bounded::new(
            &data[..],
            "z".into(),
            100_000,
            Some(1000),
            200,
            Tripwire::default(),
        );
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 100_000);
    }
}
