//! The upload form (`repod-upload-form` over multer): any body gives a form
//! or a `FormError`, never a panic or a hang. And the parse does not depend
//! on how the body was cut into chunks on the wire: the input's first byte
//! picks a chunk size, and the result must match the same body read in one
//! piece. A file that comes out must be bytes of the body, verbatim.
//!
//! Input: one byte (chunk size - 1), then the body, whose boundary is
//! `repodfuzz`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use repod_upload_form::{Form, FormError, MAX_TEXT_FIELD, Sink};

const CONTENT_TYPE: &str = "multipart/form-data; boundary=repodfuzz";

struct Collect(Vec<u8>);

impl Sink for Collect {
    type Received = Vec<u8>;
    type Error = &'static str;
    async fn write(&mut self, chunk: &[u8]) -> Result<(), &'static str> {
        self.0.extend_from_slice(chunk);
        if self.0.len() > 1 << 20 {
            return Err("over 1 MiB");
        }
        Ok(())
    }
    async fn finish(self) -> Result<Vec<u8>, &'static str> {
        Ok(self.0)
    }
}

fn read(body: &[u8], chunk: usize) -> Result<Form<Vec<u8>>, FormError<&'static str>> {
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        body.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let form = repod_upload_form::multipart(CONTENT_TYPE, futures_util::stream::iter(chunks))
        .expect("the boundary parses");
    futures_executor::block_on(repod_upload_form::read(form, Collect(Vec::new())))
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let chunked = read(body, usize::from(cut) + 1);
    let whole = read(body, body.len().max(1));
    match (&chunked, &whole) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.received, b.received, "file differs by chunking");
            assert_eq!(a.distribution, b.distribution, "distribution differs by chunking");
            assert_eq!(a.filename, b.filename, "filename differs by chunking");
            assert!(
                a.received.is_empty() || body.windows(a.received.len()).any(|w| w == a.received),
                "the file is not a verbatim slice of the body"
            );
            if let Some(d) = &a.distribution {
                assert!(d.len() as u64 <= MAX_TEXT_FIELD);
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "chunk size {} changed the outcome: {:?} vs {:?}",
            usize::from(cut) + 1,
            chunked.as_ref().map(|f| f.received.len()).map_err(|e| e.to_string()),
            whole.as_ref().map(|f| f.received.len()).map_err(|e| e.to_string()),
        ),
    }
});
