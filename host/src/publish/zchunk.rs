//! zchunk variants of indexes, written by libzck, the reference zchunk
//! library (the one createrepo_c, librepo and the `zck` tools use).
//!
//! A zchunk file is a set of independently compressed chunks behind a
//! header listing their checksums, so a client that holds last publish's
//! file fetches only the chunks that changed. Chunks follow entries, as
//! createrepo_c cuts them: the frame head is one chunk, each entry one
//! chunk, the tail rides with the last entry.
//!
//! libzck is loaded at run time (`libzck.so.1`, Debian's `libzck1`), not
//! linked: the daemon runs without it, and only a distribution that asks
//! for zchunk needs it, with an error that says what to install. The crates
//! on crates.io are either unmaintained or encoders without manual
//! chunking, hence these few hand-written declarations of `zck.h` (1.x).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ZchunkError {
    #[error(
        "zchunk needs libzck, which could not be loaded ({0}); install it \
         (the package is libzck1 or zchunk-libs, depending on this machine's system) \
         or turn zchunk off for this distribution"
    )]
    Unavailable(String),
    #[error("libzck: {0}")]
    Library(String),
    #[error("zchunk file: {0}")]
    Io(#[from] std::io::Error),
}

/// A zchunk file and what repomd.xml says of its header.
pub struct Zchunk {
    pub bytes: Vec<u8>,
    /// SHA-256 of the header, lowercase hex (`<header-checksum>`).
    pub header_sha256: String,
    /// Lead and header length in bytes (`<header-size>`).
    pub header_size: u64,
}

// zck.h: enum zck_ioption, zck_hash, zck_log_type.
const ZCK_HASH_FULL_TYPE: c_int = 0;
const ZCK_MANUAL_CHUNK: c_int = 101;
const ZCK_HASH_SHA256: isize = 1;
const ZCK_LOG_NONE: c_int = 4;

type Ctx = c_void;

/// The functions of libzck repod calls, resolved once.
struct Lib {
    create: unsafe extern "C" fn() -> *mut Ctx,
    free: unsafe extern "C" fn(*mut *mut Ctx),
    init_write: unsafe extern "C" fn(*mut Ctx, c_int) -> bool,
    init_read: unsafe extern "C" fn(*mut Ctx, c_int) -> bool,
    set_ioption: unsafe extern "C" fn(*mut Ctx, c_int, isize) -> bool,
    write: unsafe extern "C" fn(*mut Ctx, *const c_char, usize) -> isize,
    end_chunk: unsafe extern "C" fn(*mut Ctx) -> isize,
    close: unsafe extern "C" fn(*mut Ctx) -> bool,
    get_error: unsafe extern "C" fn(*mut Ctx) -> *const c_char,
    header_length: unsafe extern "C" fn(*mut Ctx) -> isize,
    header_digest: unsafe extern "C" fn(*mut Ctx) -> *mut c_char,
    /// Kept loaded for the process's life: the pointers above point into it.
    _library: libloading::Library,
}

fn lib() -> Result<&'static Lib, ZchunkError> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(|| load().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ZchunkError::Unavailable(e.clone()))
}

fn load() -> Result<Lib, libloading::Error> {
    // SAFETY: libzck's initialisers only set up its own state; the symbol
    // types below are those of zck.h 1.x, whose ABI has been stable since
    // 1.0 (soname libzck.so.1).
    unsafe {
        let library = libloading::Library::new("libzck.so.1")?;
        let set_log_level: libloading::Symbol<unsafe extern "C" fn(c_int)> =
            library.get(b"zck_set_log_level\0")?;
        // Errors are read from the context; nothing goes to stderr.
        set_log_level(ZCK_LOG_NONE);
        Ok(Lib {
            create: *library.get(b"zck_create\0")?,
            free: *library.get(b"zck_free\0")?,
            init_write: *library.get(b"zck_init_write\0")?,
            init_read: *library.get(b"zck_init_read\0")?,
            set_ioption: *library.get(b"zck_set_ioption\0")?,
            write: *library.get(b"zck_write\0")?,
            end_chunk: *library.get(b"zck_end_chunk\0")?,
            close: *library.get(b"zck_close\0")?,
            get_error: *library.get(b"zck_get_error\0")?,
            header_length: *library.get(b"zck_get_header_length\0")?,
            header_digest: *library.get(b"zck_get_header_digest\0")?,
            _library: library,
        })
    }
}

/// Whether libzck can be loaded here, and why not.
#[cfg(test)]
pub fn available() -> Result<(), ZchunkError> {
    lib().map(|_| ())
}

/// One libzck context, freed on drop.
struct Context<'a> {
    lib: &'a Lib,
    ctx: *mut Ctx,
}

impl<'a> Context<'a> {
    fn new(lib: &'a Lib) -> Result<Self, ZchunkError> {
        // SAFETY: zck_create takes nothing and returns an owned context or null.
        let ctx = unsafe { (lib.create)() };
        if ctx.is_null() {
            return Err(ZchunkError::Library("zck_create failed".into()));
        }
        Ok(Context { lib, ctx })
    }

    /// `ok` or the context's error message.
    fn check(&self, ok: bool, what: &str) -> Result<(), ZchunkError> {
        if ok {
            return Ok(());
        }
        // SAFETY: the context is live; the message is owned by it and copied.
        let message = unsafe {
            let text = (self.lib.get_error)(self.ctx);
            if text.is_null() {
                String::new()
            } else {
                CStr::from_ptr(text).to_string_lossy().trim().to_owned()
            }
        };
        Err(ZchunkError::Library(format!("{what}: {message}")))
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: the context came from zck_create and is freed once.
        unsafe { (self.lib.free)(&mut self.ctx) }
    }
}

/// A zchunk file of `bytes`, one chunk per range: `ends` are the offsets
/// where chunks end, ascending, the last one `bytes.len()`.
pub fn encode(bytes: &[u8], ends: &[usize]) -> Result<Zchunk, ZchunkError> {
    let lib = lib()?;
    let file = rustix::fs::memfd_create("repod-zchunk", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(file);
    {
        let zck = Context::new(lib)?;
        // SAFETY: the context is live; `file` outlives it and stays open;
        // every buffer passed is a live slice with its own length.
        unsafe {
            {
                // zck_init_write sets the process umask around the temporary
                // file it makes and puts back what it found: two at once
                // could leave 077 behind for good.
                static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());
                let _umask = UMASK.lock().unwrap_or_else(|e| e.into_inner());
                zck.check((lib.init_write)(zck.ctx, file.as_raw_fd()), "init")?;
            }
            zck.check(
                (lib.set_ioption)(zck.ctx, ZCK_MANUAL_CHUNK, 1),
                "manual chunking",
            )?;
            zck.check(
                (lib.set_ioption)(zck.ctx, ZCK_HASH_FULL_TYPE, ZCK_HASH_SHA256),
                "hash type",
            )?;
            let mut start = 0;
            for &end in ends {
                let chunk = &bytes[start..end];
                if chunk.is_empty() {
                    continue;
                }
                let written = (lib.write)(zck.ctx, chunk.as_ptr().cast(), chunk.len());
                zck.check(written == chunk.len() as isize, "write")?;
                zck.check((lib.end_chunk)(zck.ctx) >= 0, "end chunk")?;
                start = end;
            }
            zck.check((lib.close)(zck.ctx), "close")?;
        }
    }
    // Read the header back as a client would: it checks what was written
    // and gives the header's digest and length.
    file.seek(SeekFrom::Start(0))?;
    let (header_sha256, header_size) = {
        let zck = Context::new(lib)?;
        // SAFETY: as above; the digest is a malloc'd string we free.
        unsafe {
            zck.check((lib.init_read)(zck.ctx, file.as_raw_fd()), "read back")?;
            let size = (lib.header_length)(zck.ctx);
            zck.check(size > 0, "header length")?;
            let digest = (lib.header_digest)(zck.ctx);
            zck.check(!digest.is_null(), "header digest")?;
            let hex = CStr::from_ptr(digest).to_string_lossy().into_owned();
            libc_free(digest.cast());
            (hex, size as u64)
        }
    };
    file.seek(SeekFrom::Start(0))?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(Zchunk {
        bytes: out,
        header_sha256,
        header_size,
    })
}

unsafe extern "C" {
    #[link_name = "free"]
    fn libc_free(ptr: *mut c_void);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unzck_gives_back_the_bytes_with_one_chunk_per_range() {
        if let Err(e) = available() {
            panic!("{e}");
        }
        let text = b"<head>\n<a/>\n<b>two</b>\n</head>\n";
        let ends = [7, 12, text.len()];
        let zck = encode(text, &ends).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.zck");
        std::fs::write(&path, &zck.bytes).unwrap();
        let out = std::process::Command::new("unzck")
            .args(["--stdout"])
            .arg(&path)
            .output()
            .expect("unzck (Debian package zchunk)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, text);
        let header = std::process::Command::new("zck_read_header")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        let header = String::from_utf8_lossy(&header.stdout);
        assert!(
            header.contains(&format!("Header checksum: {}", zck.header_sha256)),
            "{header}"
        );
        assert!(
            header.contains(&format!("Header size: {}", zck.header_size)),
            "{header}"
        );
        // A dictionary chunk (empty) and the three ranges.
        assert!(header.contains("Chunk count: 4"), "{header}");
    }
}
