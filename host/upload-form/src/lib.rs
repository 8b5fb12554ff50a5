//! The upload form: a `multipart/form-data` body carrying one package in a
//! `file` field and, optionally, the target in a `distribution` field.
//!
//! The package is streamed to a [`Sink`] chunk by chunk, never held whole in
//! memory; the only text field is capped at [`MAX_TEXT_FIELD`] bytes; any
//! other field, a second file or a body that is not well-formed is refused
//! with a [`FormError`] that says what to send instead. The host's upload
//! handler and the `upload_form` fuzz target both go through [`read`].

use std::future::Future;

use bytes::Bytes;
pub use multer::Multipart;

/// Largest `distribution` field accepted (a distribution id is a short slug).
pub const MAX_TEXT_FIELD: u64 = 4096;

/// Where the package's bytes go as they arrive.
pub trait Sink {
    /// What a finished sink hands back (the host: the stored blob).
    type Received;
    /// Why the sink refused (the host: too large, or an I/O failure).
    type Error;
    fn write(&mut self, chunk: &[u8]) -> impl Future<Output = Result<(), Self::Error>>;
    fn finish(self) -> impl Future<Output = Result<Self::Received, Self::Error>>;
}

/// A form that was read to its end.
#[derive(Debug)]
pub struct Form<R> {
    /// The `file` field, as its sink finished it.
    pub received: R,
    /// The `distribution` field, trimmed, if the form had one.
    pub distribution: Option<String>,
    /// The `file` field's `filename`, if it gave one (informational).
    pub filename: Option<String>,
}

/// Why a form was refused. Every variant but `Sink` is the client's fault.
#[derive(Debug, thiserror::Error)]
pub enum FormError<E> {
    #[error("malformed multipart body: {0}")]
    Malformed(multer::Error),
    #[error("upload interrupted: {0}")]
    Interrupted(multer::Error),
    #[error("more than one file field: upload one package per request")]
    SecondFile,
    #[error("unexpected form field {0:?}: send 'file' and optionally 'distribution'")]
    UnexpectedField(String),
    #[error("unreadable distribution field (at most {MAX_TEXT_FIELD} bytes of UTF-8): {0}")]
    Distribution(multer::Error),
    #[error("no 'file' field in the form: attach the package as 'file'")]
    NoFile,
    /// The sink refused a chunk or could not finish.
    #[error("the package could not be stored")]
    Sink(E),
}

/// The parser limits the form's rules need (the `file` field is bounded by
/// its sink, which knows the upload size cap).
pub fn constraints() -> multer::Constraints {
    multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().for_field("distribution", MAX_TEXT_FIELD))
}

/// Parses `boundary` out of a `Content-Type: multipart/form-data; boundary=…`
/// value and starts a parser over `body` with [`constraints`].
pub fn multipart<'r, S, E>(content_type: &str, body: S) -> Result<Multipart<'r>, multer::Error>
where
    S: futures_core::Stream<Item = Result<Bytes, E>> + Send + 'r,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'r,
{
    let boundary = multer::parse_boundary(content_type)?;
    Ok(Multipart::with_constraints(body, boundary, constraints()))
}

/// Reads the whole form, streaming its `file` field into `sink`.
pub async fn read<S: Sink>(
    mut form: Multipart<'_>,
    sink: S,
) -> Result<Form<S::Received>, FormError<S::Error>> {
    let mut sink = Some(sink);
    let (mut received, mut distribution, mut filename) = (None, None, None);
    while let Some(mut field) = form.next_field().await.map_err(FormError::Malformed)? {
        match field.name() {
            Some("file") => {
                let Some(mut target) = sink.take() else {
                    return Err(FormError::SecondFile);
                };
                filename = field.file_name().map(str::to_owned);
                while let Some(chunk) = field.chunk().await.map_err(FormError::Interrupted)? {
                    target.write(&chunk).await.map_err(FormError::Sink)?;
                }
                received = Some(target.finish().await.map_err(FormError::Sink)?);
            }
            Some("distribution") => {
                let text = field.text().await.map_err(FormError::Distribution)?;
                distribution = Some(text.trim().to_owned());
            }
            other => return Err(FormError::UnexpectedField(other.unwrap_or("").to_owned())),
        }
    }
    let received = received.ok_or(FormError::NoFile)?;
    Ok(Form {
        received,
        distribution,
        filename,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;

    /// Collects the file in memory, refusing past `limit` bytes.
    struct Collect {
        bytes: Vec<u8>,
        limit: usize,
    }

    impl Sink for Collect {
        type Received = Vec<u8>;
        type Error = String;
        async fn write(&mut self, chunk: &[u8]) -> Result<(), String> {
            self.bytes.extend_from_slice(chunk);
            if self.bytes.len() > self.limit {
                return Err(format!("over {} bytes", self.limit));
            }
            Ok(())
        }
        async fn finish(self) -> Result<Vec<u8>, String> {
            Ok(self.bytes)
        }
    }

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn part(name: &str, filename: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut out =
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"").into_bytes();
        if let Some(f) = filename {
            out.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
        out
    }

    fn body(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut out = parts.concat();
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    /// Feeds `body` to the parser in chunks of `chunk` bytes.
    fn read_in(
        body: &[u8],
        chunk: usize,
        limit: usize,
    ) -> Result<Form<Vec<u8>>, FormError<String>> {
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let form = multipart(CT, futures_util::stream::iter(chunks)).expect("boundary");
        block_on(read(
            form,
            Collect {
                bytes: Vec::new(),
                limit,
            },
        ))
    }

    /// A package-like payload holding prefixes of the delimiter (CRLF, dashes,
    /// part of the boundary), the bytes a streaming parser has to hold back
    /// at a chunk's end. (The whole delimiter cannot occur in a part: a
    /// client picks a boundary its content does not contain.)
    fn payload() -> Vec<u8> {
        let mut p = b"!<arch>\ndebian-binary   \r\n--Xy\r\n--X\r\n\r\n-\r\n--".to_vec();
        p.extend((0..=255u8).cycle().take(3000));
        p
    }

    #[test]
    fn the_file_and_distribution_come_out_whole_however_the_body_is_cut() {
        let b = body(&[
            part("distribution", None, b" dev \n"),
            part("file", Some("a_1_all.deb"), &payload()),
        ]);
        for chunk in [1, 2, 3, 7, 64, 1000, b.len()] {
            let form = read_in(&b, chunk, 1 << 20).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
            assert_eq!(form.received, payload(), "chunk {chunk}");
            assert_eq!(form.distribution.as_deref(), Some("dev"));
            assert_eq!(form.filename.as_deref(), Some("a_1_all.deb"));
        }
    }

    #[test]
    fn the_distribution_is_optional() {
        let form = read_in(&body(&[part("file", None, b"x")]), 5, 10).unwrap();
        assert_eq!(
            (form.received, form.distribution, form.filename),
            (b"x".to_vec(), None, None)
        );
    }

    #[test]
    fn a_second_file_an_unknown_field_or_no_file_is_refused_by_name() {
        let two = body(&[part("file", None, b"a"), part("file", None, b"b")]);
        assert!(matches!(read_in(&two, 4, 10), Err(FormError::SecondFile)));
        let other = body(&[part("file", None, b"a"), part("comment", None, b"hi")]);
        let err = read_in(&other, 4, 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected form field \"comment\": send 'file' and optionally 'distribution'"
        );
        let none = body(&[part("distribution", None, b"dev")]);
        assert!(matches!(read_in(&none, 4, 10), Err(FormError::NoFile)));
    }

    #[test]
    fn a_distribution_field_over_the_cap_is_refused_not_buffered() {
        let long = vec![b'a'; MAX_TEXT_FIELD as usize + 1];
        let b = body(&[part("distribution", None, &long), part("file", None, b"x")]);
        assert!(matches!(
            read_in(&b, 512, 10),
            Err(FormError::Distribution(_))
        ));
        let fits = vec![b'a'; MAX_TEXT_FIELD as usize];
        let b = body(&[part("distribution", None, &fits), part("file", None, b"x")]);
        assert_eq!(
            read_in(&b, 512, 10).unwrap().distribution.unwrap().len(),
            fits.len()
        );
    }

    #[test]
    fn the_sinks_refusal_is_passed_on() {
        let b = body(&[part("file", None, &payload())]);
        match read_in(&b, 100, 1000) {
            Err(FormError::Sink(e)) => assert_eq!(e, "over 1000 bytes"),
            other => panic!("expected the sink's refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_cut_off_or_unframed_body_is_an_error() {
        let whole = body(&[part("file", None, &payload())]);
        let cut = &whole[..whole.len() / 2];
        assert!(matches!(
            read_in(cut, 64, 1 << 20),
            Err(FormError::Interrupted(_))
        ));
        assert!(matches!(
            read_in(b"not a form at all", 4, 10),
            Err(FormError::Malformed(_))
        ));
        assert!(
            multipart::<_, std::io::Error>("multipart/form-data", futures_util::stream::empty())
                .is_err()
        );
    }
}
