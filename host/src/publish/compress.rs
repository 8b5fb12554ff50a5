//! Index compression in independently cached pieces.
//!
//! A republish after one upload must not recompress a 50,000-entry index.
//! So an index body is cut into chunks at content-defined points (an entry
//! whose sort key hashes to 0 mod [`CHUNK_EVERY`] starts a chunk), each chunk
//! is compressed on its own and cached by the SHA-256 of its bytes, and the
//! compressed file is assembled from the pieces. Adding one entry changes
//! one chunk; every other piece comes from the cache.
//!
//! What stock clients read whole (checked with apt 2.6, see FACTS.md):
//! concatenated gzip members, concatenated zstd frames, and one xz *stream*
//! made of several *blocks*. Concatenated xz streams are NOT read whole by
//! apt, so xz pieces are blocks: each chunk is compressed as a one-block
//! stream by liblzma (through `xz2`), the block is cut out of it, and the
//! blocks are wrapped in one stream header, index and footer written here.
//! No crate exposes liblzma's block/index encoders, hence this small
//! hand-written container code (format: the .xz file format spec 1.1.0).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Average number of entries per chunk: small enough that recompressing one
/// chunk is cheap, large enough that compressors see context.
pub const CHUNK_EVERY: u64 = 128;

/// A chunk is cut after this many bytes even without a content point, so a
/// run of unlucky keys cannot make one huge chunk.
const CHUNK_MAX_BYTES: usize = 1 << 20;

/// xz preset for index blocks. Measured on 64 KiB chunks of a real
/// 20 MB Packages index (BENCHMARKS.md): preset 2 runs ~3x faster than 6
/// for 12% more bytes; with chunks that small, 6's larger search buys
/// little. A full publish of 50,000 packages fits its 5 s budget only so.
const XZ_PRESET: u32 = 2;
/// Dictionary for xz blocks: a block rarely holds more than a chunk.
const XZ_DICT: u32 = 1 << 20;
/// zstd level for index pieces. On ~160 KiB chunks of a real Packages
/// index (`zstd -b1 -e12 -B160K`, BENCHMARKS.md) level 6 gives the smallest
/// output of levels 1 to 12 and runs twice as fast as 10.
const ZSTD_LEVEL: i32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Codec {
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => "gz",
            Codec::Xz => "xz",
            Codec::Zstd => "zst",
            Codec::Bzip2 => "bz2",
        }
    }
}

/// An index body and where its chunks start and end.
#[derive(Default)]
pub struct Body {
    pub bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Where the head and each entry end, when asked for (zchunk cuts a
    /// chunk per entry).
    entry_ends: Option<Vec<usize>>,
    /// The sort key of the last entry, while marking.
    last_key: Option<String>,
}

/// The zchunk group of an entry: what its sort key holds after the last
/// U+001F. Consecutive entries of one group share a chunk (createrepo_c
/// keeps the packages of one source RPM together); an entry without one is
/// a chunk of its own.
pub fn zchunk_group(sort_key: &str) -> Option<&str> {
    sort_key.rsplit_once('\u{1f}').map(|(_, group)| group)
}

impl Body {
    /// Starts a body with `head` as a chunk of its own.
    pub fn new(head: &str) -> Body {
        let mut body = Body::default();
        body.push_piece(head.as_bytes());
        body
    }

    /// As [`Body::new`], also recording where zchunk chunks end: after the
    /// head, and between two entries unless they are of one group
    /// ([`zchunk_group`]).
    pub fn marking_entries(head: &str) -> Body {
        let mut body = Body::new(head);
        body.entry_ends = Some(vec![body.bytes.len()]);
        body
    }

    /// Where zchunk chunks end, the last running to the end of the tail
    /// (it rides with the last entry); `None` unless made by
    /// [`Body::marking_entries`].
    pub fn entry_ranges(&self) -> Option<Vec<usize>> {
        let mut ends = self.entry_ends.clone()?;
        ends.push(self.bytes.len());
        Some(ends)
    }

    /// Appends an entry, opening a new chunk before it when its sort key
    /// is a content point or the current chunk is full.
    pub fn push_entry(&mut self, sort_key: &str, text: &[u8]) {
        let start = self.ends.last().copied().unwrap_or(0);
        let open = self.bytes.len() - start;
        if open > 0
            && (fnv1a(sort_key.as_bytes()).is_multiple_of(CHUNK_EVERY) || open >= CHUNK_MAX_BYTES)
        {
            self.ends.push(self.bytes.len());
        }
        if let Some(ends) = &mut self.entry_ends {
            let group = zchunk_group(sort_key);
            if self
                .last_key
                .take()
                .is_some_and(|last| group.is_none() || zchunk_group(&last) != group)
            {
                ends.push(self.bytes.len());
            }
            self.last_key = Some(sort_key.to_owned());
        }
        self.bytes.extend_from_slice(text);
    }

    /// Appends `tail` as a chunk of its own and closes the body.
    pub fn finish(mut self, tail: &str) -> Body {
        self.close_open_chunk();
        self.push_piece(tail.as_bytes());
        self
    }

    fn close_open_chunk(&mut self) {
        if self.bytes.len() > self.ends.last().copied().unwrap_or(0) {
            self.ends.push(self.bytes.len());
        }
    }

    fn push_piece(&mut self, piece: &[u8]) {
        self.close_open_chunk();
        self.bytes.extend_from_slice(piece);
        self.close_open_chunk();
    }

    /// The non-empty chunks, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let chunk = &self.bytes[start..end];
            start = end;
            chunk
        })
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

type PieceKey = (Codec, [u8; 32]);

/// Compressed pieces of recent publishes. Each publish keeps only what it
/// used, so the cache holds about one compressed copy of the live indexes.
#[derive(Default)]
pub struct PieceCache {
    pieces: HashMap<PieceKey, Arc<Piece>>,
    /// zchunk files of the last publish, by [`PieceCache::zchunk_key`]:
    /// libzck compresses as it writes and takes no compressed chunk, so an
    /// index is reused whole or written anew.
    zchunks: HashMap<[u8; 32], Arc<super::zchunk::Zchunk>>,
}

/// One compressed chunk. For xz it is a block plus its index record.
pub struct Piece {
    bytes: Vec<u8>,
    /// xz only: the block's unpadded size.
    unpadded: u64,
    uncompressed: u64,
}

/// Counts of a compression run, for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reuse {
    pub reused: usize,
    pub compressed: usize,
}

impl PieceCache {
    /// Compresses `body` with every codec in `codecs`, reusing cached pieces
    /// and compressing the missing ones on up to `threads` threads. Returns
    /// one file per codec, in order, and replaces the cache's content with
    /// the pieces these files are made of.
    pub fn compress(
        &mut self,
        jobs: &[(&Body, Vec<Codec>)],
        threads: usize,
    ) -> std::io::Result<(Vec<Vec<Vec<u8>>>, Reuse)> {
        // Every (codec, chunk) needed, keyed by content.
        let mut layout: Vec<Vec<Vec<PieceKey>>> = Vec::new();
        let mut missing: Vec<(PieceKey, &[u8])> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut reuse = Reuse::default();
        for (body, codecs) in jobs {
            let ids: Vec<([u8; 32], &[u8])> = body
                .chunks()
                .map(|c| (Sha256::digest(c).into(), c))
                .collect();
            let mut per_codec = Vec::new();
            for &codec in codecs {
                let mut keys = Vec::with_capacity(ids.len());
                for &(id, chunk) in &ids {
                    let key = (codec, id);
                    if seen.insert(key) {
                        if self.pieces.contains_key(&key) {
                            reuse.reused += 1;
                        } else {
                            missing.push((key, chunk));
                        }
                    }
                    keys.push(key);
                }
                per_codec.push(keys);
            }
            layout.push(per_codec);
        }
        reuse.compressed = missing.len();
        for (key, piece) in compress_all(&missing, threads)? {
            self.pieces.insert(key, Arc::new(piece));
        }

        let mut out = Vec::new();
        for ((_, codecs), per_codec) in jobs.iter().zip(&layout) {
            let mut files = Vec::new();
            for (&codec, keys) in codecs.iter().zip(per_codec) {
                let pieces: Vec<&Piece> = keys.iter().map(|k| &*self.pieces[k]).collect();
                files.push(assemble(codec, &pieces)?);
            }
            out.push(files);
        }
        self.pieces.retain(|k, _| seen.contains(k));
        Ok((out, reuse))
    }

    /// The key of a zchunk file: the body's SHA-256 and where its chunks end.
    pub fn zchunk_key(body_sha256: &str, ends: &[usize]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(body_sha256.as_bytes());
        for end in ends {
            hasher.update(end.to_le_bytes());
        }
        hasher.finalize().into()
    }

    /// Replaces the zchunk files kept with `used`: what this publish
    /// wrote or reused.
    pub fn keep_zchunks(&mut self, used: HashMap<[u8; 32], Arc<super::zchunk::Zchunk>>) {
        self.zchunks = used;
    }

    pub fn zchunk(&self, key: &[u8; 32]) -> Option<Arc<super::zchunk::Zchunk>> {
        self.zchunks.get(key).cloned()
    }
}

fn compress_all(
    work: &[(PieceKey, &[u8])],
    threads: usize,
) -> std::io::Result<Vec<(PieceKey, Piece)>> {
    if work.is_empty() {
        return Ok(Vec::new());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = threads.clamp(1, work.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> std::io::Result<Vec<(PieceKey, Piece)>> {
                    let mut done = Vec::new();
                    // One zstd context per thread: a fresh one per piece
                    // spent more time zeroing its tables than compressing.
                    let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(key, chunk)) = work.get(i) else {
                            return Ok(done);
                        };
                        done.push((key, compress_piece(key.0, chunk, &mut zstd)?));
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(work.len());
        for worker in workers {
            all.extend(worker.join().expect("compression thread panicked")?);
        }
        Ok(all)
    })
}

fn compress_piece(
    codec: Codec,
    chunk: &[u8],
    zstd: &mut zstd::bulk::Compressor<'_>,
) -> std::io::Result<Piece> {
    let bytes = match codec {
        Codec::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(chunk.len() / 4),
                flate2::Compression::default(),
            );
            enc.write_all(chunk)?;
            enc.finish()?
        }
        Codec::Zstd => zstd.compress(chunk)?,
        Codec::Bzip2 => {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            enc.write_all(chunk)?;
            enc.finish()?
        }
        Codec::Xz => return xz::block(chunk),
    };
    Ok(Piece {
        bytes,
        unpadded: 0,
        uncompressed: chunk.len() as u64,
    })
}

/// Concatenates pieces into one file that decompresses to the body.
fn assemble(codec: Codec, pieces: &[&Piece]) -> std::io::Result<Vec<u8>> {
    if codec == Codec::Xz {
        return Ok(xz::stream(pieces));
    }
    if pieces.is_empty() {
        // An empty index is still a valid compressed file.
        let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
        return Ok(compress_piece(codec, &[], &mut zstd)?.bytes);
    }
    let mut out = Vec::with_capacity(pieces.iter().map(|p| p.bytes.len()).sum());
    for piece in pieces {
        out.extend_from_slice(&piece.bytes);
    }
    Ok(out)
}

/// The .xz container around blocks compressed by liblzma.
mod xz {
    use super::Piece;

    const HEADER_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
    const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];
    /// Stream flags: check type CRC64 (what `xz` writes by default).
    const FLAGS: [u8; 2] = [0x00, 0x04];
    const HEADER_LEN: usize = 12;
    const FOOTER_LEN: usize = 12;

    /// Compresses `chunk` as a one-block stream and keeps only the block.
    pub fn block(chunk: &[u8]) -> std::io::Result<Piece> {
        let mut opts = xz2::stream::LzmaOptions::new_preset(super::XZ_PRESET)?;
        opts.dict_size(super::XZ_DICT);
        let mut filters = xz2::stream::Filters::new();
        filters.lzma2(&opts);
        let stream = xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc64)?;
        let mut enc =
            xz2::write::XzEncoder::new_stream(Vec::with_capacity(chunk.len() / 4), stream);
        std::io::Write::write_all(&mut enc, chunk)?;
        let whole = enc.finish()?;
        let bad = |what: &str| std::io::Error::other(format!("liblzma output: {what}"));

        // Footer: CRC32(4) backward size(4) flags(2) magic(2).
        let n = whole.len();
        if n < HEADER_LEN + FOOTER_LEN || whole[n - 2..] != FOOTER_MAGIC {
            return Err(bad("no stream footer"));
        }
        let backward = u32::from_le_bytes(whole[n - 8..n - 4].try_into().expect("4 bytes"));
        let index_len = (backward as usize + 1) * 4;
        let index_start = n
            .checked_sub(FOOTER_LEN + index_len)
            .filter(|&s| s >= HEADER_LEN)
            .ok_or_else(|| bad("index size out of range"))?;
        let mut index = &whole[index_start..n - FOOTER_LEN];
        if index.first() != Some(&0) {
            return Err(bad("no index indicator"));
        }
        index = &index[1..];
        let records = read_varint(&mut index).ok_or_else(|| bad("bad index"))?;
        if records != 1 {
            return Err(bad("expected exactly one block"));
        }
        let unpadded = read_varint(&mut index).ok_or_else(|| bad("bad index"))?;
        let uncompressed = read_varint(&mut index).ok_or_else(|| bad("bad index"))?;
        if uncompressed != chunk.len() as u64
            || padded(unpadded) != (index_start - HEADER_LEN) as u64
        {
            return Err(bad("block sizes disagree with the index"));
        }
        Ok(Piece {
            bytes: whole[HEADER_LEN..index_start].to_vec(),
            unpadded,
            uncompressed,
        })
    }

    /// One stream made of `blocks`: header, blocks, index, footer.
    pub fn stream(blocks: &[&Piece]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER_LEN + FOOTER_LEN + 64 + blocks.iter().map(|b| b.bytes.len()).sum::<usize>(),
        );
        out.extend_from_slice(&HEADER_MAGIC);
        out.extend_from_slice(&FLAGS);
        out.extend_from_slice(&crc32fast::hash(&FLAGS).to_le_bytes());
        for block in blocks {
            out.extend_from_slice(&block.bytes);
        }

        let mut index = vec![0u8];
        write_varint(&mut index, blocks.len() as u64);
        for block in blocks {
            write_varint(&mut index, block.unpadded);
            write_varint(&mut index, block.uncompressed);
        }
        while index.len() % 4 != 0 {
            index.push(0);
        }
        let crc = crc32fast::hash(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&index);

        let backward = (index.len() / 4 - 1) as u32;
        let mut tail = backward.to_le_bytes().to_vec();
        tail.extend_from_slice(&FLAGS);
        out.extend_from_slice(&crc32fast::hash(&tail).to_le_bytes());
        out.extend_from_slice(&tail);
        out.extend_from_slice(&FOOTER_MAGIC);
        out
    }

    fn padded(n: u64) -> u64 {
        n.div_ceil(4) * 4
    }

    fn write_varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn read_varint(input: &mut &[u8]) -> Option<u64> {
        let mut n = 0u64;
        for i in 0..9 {
            let (&byte, rest) = input.split_first()?;
            *input = rest;
            n |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn body(n: usize) -> Body {
        let mut body = Body::new("HEAD\n");
        for i in 0..n {
            let key = format!("pkg{i:06}");
            body.push_entry(
                &key,
                format!("Package: {key}\nVersion: 1.{i}\nDescription: entry {i}\n\n").as_bytes(),
            );
        }
        body.finish("TAIL\n")
    }

    fn decompress(codec: Codec, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match codec {
            Codec::Gzip => flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap(),
            Codec::Xz => xz2::read::XzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap(),
            Codec::Zstd => zstd::stream::read::Decoder::new(bytes)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap(),
            Codec::Bzip2 => bzip2::read::MultiBzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap(),
        };
        out
    }

    const ALL: [Codec; 4] = [Codec::Gzip, Codec::Xz, Codec::Zstd, Codec::Bzip2];

    #[test]
    fn zchunk_ranges_follow_entry_groups() {
        let mut body = Body::marking_entries("<h>\n");
        for (key, text) in [
            ("a\u{1f}src-a", "<a/>\n"),
            ("a2\u{1f}src-a", "<a2/>\n"),
            ("b", "<b/>\n"),
            ("c\u{1f}src-c", "<c/>\n"),
            ("d\u{1f}src-a", "<d/>\n"),
        ] {
            body.push_entry(key, text.as_bytes());
        }
        let body = body.finish("</h>\n");
        let ends = body.entry_ranges().unwrap();
        let mut start = 0;
        let chunks: Vec<&str> = ends
            .iter()
            .map(|&end| {
                let chunk = std::str::from_utf8(&body.bytes[start..end]).unwrap();
                start = end;
                chunk
            })
            .collect();
        assert_eq!(
            chunks,
            ["<h>\n", "<a/>\n<a2/>\n", "<b/>\n", "<c/>\n", "<d/>\n</h>\n"]
        );
        assert_eq!(Body::new("x").entry_ranges(), None);
        let empty = Body::marking_entries("<h>").finish("</h>");
        assert_eq!(empty.entry_ranges(), Some(vec![3, 7]));
    }

    #[test]
    fn pieces_reassemble_to_the_body() {
        for n in [0, 1, 5, 3000] {
            let body = body(n);
            let mut cache = PieceCache::default();
            let (files, _) = cache.compress(&[(&body, ALL.to_vec())], 2).unwrap();
            for (codec, file) in ALL.iter().zip(&files[0]) {
                assert_eq!(
                    decompress(*codec, file),
                    body.bytes,
                    "{codec:?}, {n} entries"
                );
            }
        }
    }

    #[test]
    fn the_xz_stream_is_one_stream_that_xz_accepts() {
        let body = body(3000);
        assert!(body.chunks().count() > 10, "the test needs several chunks");
        let mut cache = PieceCache::default();
        let (files, _) = cache.compress(&[(&body, vec![Codec::Xz])], 2).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Packages.xz");
        std::fs::write(&path, &files[0][0]).unwrap();
        // `xz --list` reads the index: one stream, one block per chunk.
        let list = std::process::Command::new("xz")
            .args(["--robot", "--list"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            list.status.success(),
            "{}",
            String::from_utf8_lossy(&list.stderr)
        );
        let text = String::from_utf8(list.stdout).unwrap();
        let totals: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("totals"))
            .unwrap()
            .split('\t')
            .collect();
        assert_eq!(totals[1], "1", "streams: {text}");
        assert_eq!(
            totals[2],
            body.chunks().count().to_string(),
            "blocks: {text}"
        );
        let out = std::process::Command::new("xz")
            .args(["-dc"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, body.bytes);
    }

    #[test]
    fn one_new_entry_recompresses_one_chunk() {
        let before = body(3000);
        let mut after = Body::new("HEAD\n");
        for i in 0..3000 {
            let key = format!("pkg{i:06}");
            let text = format!("Package: {key}\nVersion: 1.{i}\nDescription: entry {i}\n\n");
            after.push_entry(&key, text.as_bytes());
            if i == 1500 {
                after.push_entry("pkg001500a", b"Package: pkg001500a\n\n");
            }
        }
        let after = after.finish("TAIL\n");
        let mut cache = PieceCache::default();
        let (_, first) = cache.compress(&[(&before, vec![Codec::Xz])], 2).unwrap();
        assert_eq!(first.reused, 0);
        let (files, second) = cache.compress(&[(&after, vec![Codec::Xz])], 2).unwrap();
        assert!(second.compressed <= 2, "{second:?}");
        assert!(second.reused >= before.chunks().count() - 2, "{second:?}");
        assert_eq!(decompress(Codec::Xz, &files[0][0]), after.bytes);
    }
}
