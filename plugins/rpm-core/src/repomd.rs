//! The frames around the package entries and the `repomd.xml` of each
//! architecture's repository.
//!
//! `repomd.xml` is the one file a client trusts first: it is signed
//! (`repomd.xml.asc`, detached and armored, which both librepo and libzypp
//! fetch) and names every other index by checksum. Its layout follows
//! createrepo_c; the checksums and sizes are the host's, the timestamps are
//! the publish time (createrepo_c uses the index files' mtimes, which are
//! its generation time too). Unlike createrepo_c, no sqlite databases are
//! published (as with `--no-database`: dnf and zypper build their own
//! caches from the XML), and every file ends with a newline (createrepo_c
//! leaves it off after `</metadata>`).

use std::fmt::Write;

use crate::config::COMPRESSION;
use crate::sdk::{
    Distribution, Frame, Publication, PublishedFile, SignatureKind, SignatureRequest, TopLevelFile,
};
use crate::{IndexCompression, IndexKind, repos, setting};
use repod_family_sdk::zchunk_header;

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

pub(crate) fn render_frames(
    dist: &Distribution,
    indexes: &[(String, u64)],
) -> Result<Vec<Frame>, String> {
    indexes
        .iter()
        .map(|(path, count)| {
            if crate::repos(dist)
                .iter()
                .any(|r| !r.debug && crate::prestodelta_path(&r.root(&dist.id)) == *path)
            {
                return Ok(Frame {
                    head: format!("{XML_DECLARATION}<prestodelta>\n"),
                    tail: "</prestodelta>\n".to_owned(),
                });
            }
            // comps.xml is the document as stored: no frame.
            if crate::repos(dist)
                .iter()
                .any(|r| !r.debug && crate::comps_path(&r.root(&dist.id)) == *path)
            {
                return Ok(Frame {
                    head: String::new(),
                    tail: String::new(),
                });
            }
            let (_, kind) = IndexKind::parse(dist, path)
                .ok_or_else(|| format!("{path} is not an index of distribution {}", dist.id))?;
            let (open, root) = match kind {
                IndexKind::Primary => (
                    "<metadata xmlns=\"http://linux.duke.edu/metadata/common\" \
                     xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\"",
                    "metadata",
                ),
                IndexKind::Filelists => (
                    "<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\"",
                    "filelists",
                ),
                IndexKind::Other => (
                    "<otherdata xmlns=\"http://linux.duke.edu/metadata/other\"",
                    "otherdata",
                ),
            };
            Ok(Frame {
                head: format!("{XML_DECLARATION}{open} packages=\"{count}\">\n"),
                tail: format!("</{root}>\n"),
            })
        })
        .collect()
}

fn checksum<'a>(fields: &'a [(String, String)], what: &str, path: &str) -> Result<&'a str, String> {
    fields
        .iter()
        .find(|(algo, _)| algo == "sha256")
        .map(|(_, hex)| hex.as_str())
        .ok_or_else(|| format!("the host sent no sha256 {what} for {path}"))
}

/// The published variant of one index that repomd.xml points at: the one in
/// the distribution's compression if there are several (never the zchunk
/// variant, which has a `<data>` entry of its own).
fn pick<'a>(
    files: &'a [PublishedFile],
    index: &str,
    preferred: Option<IndexCompression>,
) -> Option<&'a PublishedFile> {
    let all: Vec<&PublishedFile> = files
        .iter()
        .filter(|f| f.index == index && zchunk_header(f).is_none())
        .collect();
    all.iter()
        .find(|f| {
            f.compression.is_some() && f.compression == preferred.map(IndexCompression::to_sdk)
        })
        .or_else(|| all.iter().find(|f| f.compression.is_some()))
        .or_else(|| all.first())
        .copied()
}

/// The zchunk variant of one index, if the host published one.
fn zchunk_of<'a>(files: &'a [PublishedFile], index: &str) -> Option<&'a PublishedFile> {
    files
        .iter()
        .find(|f| f.index == index && zchunk_header(f).is_some())
}

/// One `<data>` entry of repomd.xml, in createrepo_c's element order. An
/// uncompressed file has no open checksum or size; a zchunk file also has
/// its header's.
fn write_data(
    xml: &mut String,
    kind: &str,
    file: &PublishedFile,
    root: &str,
    now: u64,
) -> Result<(), String> {
    let href = file.path.strip_prefix(root).ok_or_else(|| {
        format!(
            "published file {} is outside the repository {root}",
            file.path
        )
    })?;
    let compressed = file.compression.is_some() || zchunk_header(file).is_some();
    let sha256 = checksum(&file.checksums, "checksum", &file.path)?;
    let _ = writeln!(
        xml,
        "  <data type=\"{kind}\">\n    <checksum type=\"sha256\">{}</checksum>",
        quick_xml::escape::escape(sha256)
    );
    if compressed {
        let open = checksum(&file.open_checksums, "open checksum", &file.path)?;
        let _ = writeln!(
            xml,
            "    <open-checksum type=\"sha256\">{}</open-checksum>",
            quick_xml::escape::escape(open)
        );
    }
    if let Some((header, _)) = zchunk_header(file) {
        let _ = writeln!(
            xml,
            "    <header-checksum type=\"sha256\">{}</header-checksum>",
            quick_xml::escape::escape(header)
        );
    }
    let _ = write!(
        xml,
        "    <location href=\"{href}\"/>\n    \
         <timestamp>{now}</timestamp>\n    \
         <size>{size}</size>\n",
        href = quick_xml::escape::escape(href),
        size = file.size,
    );
    if compressed {
        let _ = writeln!(xml, "    <open-size>{}</open-size>", file.open_size);
    }
    if let Some((_, size)) = zchunk_header(file) {
        let _ = writeln!(xml, "    <header-size>{size}</header-size>");
    }
    xml.push_str("  </data>\n");
    Ok(())
}

pub(crate) fn render_top_level(
    dist: &Distribution,
    files: &[PublishedFile],
    now: u64,
) -> Result<Publication, String> {
    let preferred = setting(dist, COMPRESSION).and_then(IndexCompression::parse);
    let mut publication = Publication {
        files: Vec::new(),
        public_key_paths: Vec::new(),
    };
    for repo in repos(dist) {
        let root = repo.root(&dist.id);
        let mut xml = String::with_capacity(2048);
        xml.push_str(XML_DECLARATION);
        xml.push_str(
            "<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" \
             xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n",
        );
        let _ = writeln!(xml, "  <revision>{now}</revision>");
        for kind in IndexKind::ALL {
            let index = kind.path(&root);
            let file = pick(files, &index, preferred)
                .ok_or_else(|| format!("no published file for index {index}"))?;
            write_data(&mut xml, kind.name(), file, &root, now)?;
        }
        for kind in IndexKind::ALL {
            if let Some(file) = zchunk_of(files, &kind.path(&root)) {
                write_data(&mut xml, &format!("{}_zck", kind.name()), file, &root, now)?;
            }
        }
        // The groups, once a comps.xml was set (createrepo_c's layout).
        let comps = crate::comps_path(&root);
        let set = |f: &&PublishedFile| f.index == comps && f.open_size > 0;
        let plain = files
            .iter()
            .filter(set)
            .find(|f| f.compression.is_none() && zchunk_header(f).is_none());
        let gz = files.iter().filter(set).find(|f| f.compression.is_some());
        let zck = files
            .iter()
            .filter(set)
            .find(|f| zchunk_header(f).is_some());
        for (kind, file) in [("group", plain), ("group_gz", gz), ("group_zck", zck)] {
            if let Some(file) = file {
                write_data(&mut xml, kind, file, &root, now)?;
            }
        }
        // Delta RPMs, when the distribution makes them (after the groups:
        // createrepo_c orders the other types by name).
        if let Some(file) = pick(files, &crate::prestodelta_path(&root), preferred) {
            write_data(&mut xml, "prestodelta", file, &root, now)?;
        }
        xml.push_str("</repomd>\n");
        let repomd = format!("{root}repodata/repomd.xml");
        publication.files.push(TopLevelFile {
            signatures: vec![SignatureRequest {
                path: format!("{repomd}.asc"),
                kind: SignatureKind::DetachedArmored,
            }],
            path: repomd,
            content: xml,
        });
        publication
            .public_key_paths
            .push(format!("{root}repodata/repomd.xml.key"));
    }
    Ok(publication)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::prepare::tests::alma9;
    use crate::sdk::Compression;

    /// What the host reports after writing the three indexes of each
    /// architecture, zstd-compressed and checksum-named.
    pub(crate) fn published(dist: &Distribution) -> Vec<PublishedFile> {
        let mut files = Vec::new();
        for (n, repo) in repos(dist).into_iter().enumerate() {
            let root = repo.root(&dist.id);
            for (k, kind) in IndexKind::ALL.into_iter().enumerate() {
                let digit = char::from(b'a' + (n * 3 + k) as u8);
                let sha: String = std::iter::repeat_n(digit, 64).collect();
                let open_sha: String = std::iter::repeat_n('0', 63).chain([digit]).collect();
                files.push(PublishedFile {
                    path: format!("{root}repodata/{sha}-{}.xml.zst", kind.name()),
                    index: kind.path(&root),
                    compression: Some(Compression::Zstd),
                    size: 1000 + (n * 3 + k) as u64,
                    checksums: vec![("sha256".to_owned(), sha)],
                    open_size: 5000 + (n * 3 + k) as u64,
                    open_checksums: vec![("sha256".to_owned(), open_sha)],
                });
            }
        }
        files
    }

    #[test]
    fn frames_wrap_each_index_kind() {
        let dist = alma9();
        let frames = render_frames(
            &dist,
            &[
                ("almalinux9/x86_64/repodata/primary.xml".to_owned(), 3),
                ("almalinux9/aarch64/repodata/filelists.xml".to_owned(), 0),
                ("almalinux9/x86_64/repodata/other.xml".to_owned(), 12),
            ],
        )
        .unwrap();
        assert_eq!(
            frames[0].head,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" \
             xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"3\">\n"
        );
        assert_eq!(frames[0].tail, "</metadata>\n");
        assert_eq!(
            frames[1].head,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"0\">\n"
        );
        assert_eq!(frames[1].tail, "</filelists>\n");
        assert_eq!(
            frames[2].head,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"12\">\n"
        );
        assert_eq!(frames[2].tail, "</otherdata>\n");
    }

    #[test]
    fn frames_reject_unknown_indexes() {
        let dist = alma9();
        for path in [
            "almalinux9/s390x/repodata/primary.xml",
            "almalinux9/noarch/repodata/primary.xml",
            "almalinux9/x86_64/repodata/updateinfo.xml",
            "rocky9/x86_64/repodata/primary.xml",
        ] {
            let err = render_frames(&dist, &[(path.to_owned(), 1)]).unwrap_err();
            assert_eq!(
                err,
                format!("{path} is not an index of distribution almalinux9")
            );
        }
    }

    #[test]
    fn repomd_per_architecture_with_signature_and_key() {
        let dist = alma9();
        let publication = render_top_level(&dist, &published(&dist), 1_700_000_000).unwrap();
        let paths: Vec<&str> = publication.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "almalinux9/x86_64/repodata/repomd.xml",
                "almalinux9/aarch64/repodata/repomd.xml",
            ]
        );
        let x86 = &publication.files[0];
        assert_eq!(x86.signatures.len(), 1);
        assert_eq!(
            x86.signatures[0].path,
            "almalinux9/x86_64/repodata/repomd.xml.asc"
        );
        assert_eq!(x86.signatures[0].kind, SignatureKind::DetachedArmored);
        assert_eq!(
            publication.public_key_paths,
            [
                "almalinux9/x86_64/repodata/repomd.xml.key",
                "almalinux9/aarch64/repodata/repomd.xml.key",
            ]
        );
        assert!(publication.files[1].content.contains(&format!(
            "<location href=\"repodata/{}-primary.xml.zst\"/>",
            "d".repeat(64)
        )));
    }

    #[test]
    fn zchunk_variants_get_their_own_entries_after_the_others() {
        let dist = alma9();
        let mut files = published(&dist);
        files.push(PublishedFile {
            path: format!(
                "almalinux9/x86_64/repodata/{}-primary.xml.zck",
                "9".repeat(64)
            ),
            index: "almalinux9/x86_64/repodata/primary.xml".to_owned(),
            compression: None,
            size: 1712,
            checksums: vec![
                ("sha256".to_owned(), "9".repeat(64)),
                ("zck-header-sha256".to_owned(), "8".repeat(64)),
                ("zck-header-size".to_owned(), "154".to_owned()),
            ],
            open_size: 3564,
            open_checksums: vec![("sha256".to_owned(), "7".repeat(64))],
        });
        let publication = render_top_level(&dist, &files, 1_700_000_000).unwrap();
        let x86 = &publication.files[0].content;
        // The zchunk file is not taken for primary itself.
        assert!(x86.contains(&format!("{}-primary.xml.zst", "a".repeat(64))));
        let zck = &x86[x86
            .find("<data type=\"primary_zck\">")
            .expect("primary_zck")..];
        let zck = &zck[..zck.find("</data>").unwrap()];
        assert_eq!(
            zck,
            format!(
                "<data type=\"primary_zck\">\n    \
                 <checksum type=\"sha256\">{}</checksum>\n    \
                 <open-checksum type=\"sha256\">{}</open-checksum>\n    \
                 <header-checksum type=\"sha256\">{}</header-checksum>\n    \
                 <location href=\"repodata/{}-primary.xml.zck\"/>\n    \
                 <timestamp>1700000000</timestamp>\n    \
                 <size>1712</size>\n    \
                 <open-size>3564</open-size>\n    \
                 <header-size>154</header-size>\n  ",
                "9".repeat(64),
                "7".repeat(64),
                "8".repeat(64),
                "9".repeat(64)
            )
        );
        assert!(x86.find("type=\"other\"").unwrap() < x86.find("type=\"primary_zck\"").unwrap());
        // Nothing for the architecture that has no zchunk file.
        assert!(!publication.files[1].content.contains("_zck"));
    }

    #[test]
    fn a_set_comps_is_listed_as_group_and_group_gz() {
        let dist = alma9();
        let mut files = published(&dist);
        let comps = |compression: Option<Compression>, name: &str, open_size: u64| PublishedFile {
            path: format!("almalinux9/x86_64/repodata/{name}"),
            index: "almalinux9/x86_64/repodata/comps.xml".to_owned(),
            compression,
            size: 300,
            checksums: vec![("sha256".to_owned(), "c".repeat(64))],
            open_size,
            open_checksums: vec![("sha256".to_owned(), "d".repeat(64))],
        };
        // Unset: empty files, not listed.
        files.push(comps(None, "e-comps.xml", 0));
        let repomd = &render_top_level(&dist, &files, 7).unwrap().files[0].content;
        assert!(!repomd.contains("group"), "{repomd}");
        files.pop();
        files.push(comps(None, "c-comps.xml", 900));
        files.push(comps(Some(Compression::Gzip), "c-comps.xml.gz", 900));
        let repomd = &render_top_level(&dist, &files, 7).unwrap().files[0].content;
        assert!(
            repomd.contains("<data type=\"group\">\n    <checksum type=\"sha256\">cccc")
                && repomd.contains("<location href=\"repodata/c-comps.xml\"/>"),
            "{repomd}"
        );
        let gz = &repomd[repomd.find("type=\"group_gz\"").unwrap()..];
        assert!(
            gz.contains("<open-checksum type=\"sha256\">dddd"),
            "{repomd}"
        );
        assert!(gz.contains("<open-size>900</open-size>"), "{repomd}");
        // The other repository has no groups.
        let aarch64 = &render_top_level(&dist, &files, 7).unwrap().files[1].content;
        assert!(!aarch64.contains("group"));
    }

    #[test]
    fn split_debuginfo_repositories_get_their_own_repomd() {
        let mut dist = alma9();
        dist.settings
            .push((crate::SPLIT_DEBUGINFO.to_owned(), "true".to_owned()));
        let publication = render_top_level(&dist, &published(&dist), 7).unwrap();
        let paths: Vec<&str> = publication.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "almalinux9/x86_64/repodata/repomd.xml",
                "almalinux9/x86_64/debug/repodata/repomd.xml",
                "almalinux9/aarch64/repodata/repomd.xml",
                "almalinux9/aarch64/debug/repodata/repomd.xml",
            ]
        );
        assert!(
            publication.files[1]
                .content
                .contains("<location href=\"repodata/")
        );
    }

    #[test]
    fn repomd_snapshot() {
        let dist = alma9();
        let publication = render_top_level(&dist, &published(&dist), 1_700_000_000).unwrap();
        insta::assert_snapshot!(publication.files[0].content);
    }

    #[test]
    fn repomd_prefers_the_configured_compression_and_needs_every_index() {
        let dist = alma9();
        let mut files = published(&dist);
        let mut plain = files[0].clone();
        plain.path = "almalinux9/x86_64/repodata/plain-primary.xml".to_owned();
        plain.compression = None;
        files.insert(0, plain);
        let mut gz = files[1].clone();
        gz.path = "almalinux9/x86_64/repodata/gz-primary.xml.gz".to_owned();
        gz.compression = Some(Compression::Gzip);
        files.insert(0, gz);
        let content = &render_top_level(&dist, &files, 1).unwrap().files[0].content;
        assert!(content.contains("-primary.xml.zst\"/>"), "{content}");

        let missing: Vec<PublishedFile> = published(&dist)
            .into_iter()
            .filter(|f| f.index != "almalinux9/aarch64/repodata/other.xml")
            .collect();
        assert_eq!(
            render_top_level(&dist, &missing, 1).unwrap_err(),
            "no published file for index almalinux9/aarch64/repodata/other.xml"
        );

        let mut outside = published(&dist);
        outside[0].path = "elsewhere/primary.xml.zst".to_owned();
        assert!(
            render_top_level(&dist, &outside, 1)
                .unwrap_err()
                .contains("is outside the repository almalinux9/x86_64/")
        );
    }
}
