use std::io;

/// Why a file was refused.
///
/// Every variant but [`ReadError::Io`] means the *file* is at fault (answer
/// 4xx); `Io` means the host could not read its own copy (answer 5xx). The
/// messages are written for the person who uploaded the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("the file is empty: not a .deb or .rpm package")]
    Empty,

    /// Neither format's signature: says what the file looks like instead.
    #[error("not a .deb or .rpm package: {0}")]
    UnknownFormat(String),

    /// The ar container is not a Debian package (missing or misplaced
    /// debian-binary / control.tar / data.tar members).
    #[error("not a Debian package: {0}")]
    NotDeb(String),

    /// debian-binary holds something other than `2.x`.
    #[error(
        "unsupported Debian package format {0:?} in debian-binary: only format 2.x is supported"
    )]
    DebVersion(String),

    /// Bad lead or header magic.
    #[error("not an RPM package: {0}")]
    NotRpm(String),

    /// A structure declares more bytes than the file has.
    #[error("truncated: {0} ended early")]
    Truncated(String),

    /// A member decompresses past a size or ratio limit.
    #[error("{what} expands beyond {limit} (decompression bomb?)")]
    Bomb { what: String, limit: String },

    #[error("{what} has more than {limit} entries")]
    TooManyEntries { what: String, limit: u64 },

    /// A field, name or header is larger than its limit.
    #[error("{what} is larger than {limit}")]
    TooLarge { what: String, limit: String },

    #[error("control field {field} is not valid UTF-8")]
    NonUtf8Field { field: String },

    #[error("file name in {archive} is not valid UTF-8: {lossy:?}")]
    NonUtf8Path { archive: String, lossy: String },

    #[error("RPM header tag {tag} is not valid UTF-8")]
    NonUtf8Tag { tag: String },

    /// An absolute path or a `..` component: unpacking it would write
    /// outside the root.
    #[error("file name in {archive} escapes the package root: {path:?}")]
    PathEscapes { archive: String, path: String },

    /// A path that cannot be indexed safely (newline, empty or `.` components).
    #[error("file name {path:?} in {archive} {problem}")]
    BadPath {
        archive: String,
        path: String,
        problem: &'static str,
    },

    /// The control file's syntax.
    #[error("malformed control file: {0}")]
    Control(String),

    /// A member that cannot be decompressed or unpacked as tar, or an ar
    /// structure that does not parse.
    #[error("malformed {member}: {detail}")]
    Archive { member: String, detail: String },

    /// RPM header index entries that point outside the header, wrong types,
    /// missing required tags.
    #[error("malformed RPM header: {0}")]
    RpmHeader(String),

    /// A recorded digest or size does not match the bytes.
    #[error("RPM {0} does not match the file: it was corrupted or modified after it was built")]
    Mismatch(String),

    /// Valid but not something this reader handles (e.g. data.tar.lzma).
    #[error("unsupported package: {0}")]
    Unsupported(String),

    /// A parsing library hit an internal error (a panic) on this input.
    #[error("{0} could not be parsed: the parser failed on malformed input")]
    ParserFailed(&'static str),

    /// The host's own copy of the file could not be read.
    #[error("could not read the package file: {0}")]
    Io(#[from] io::Error),
}

impl ReadError {
    /// True when the file is at fault (a 4xx answer); false for I/O errors
    /// on the host's side.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ReadError::Io(_))
    }
}
