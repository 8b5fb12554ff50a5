//! The `Release` file: the one file apt trusts by signature, and through
//! which it trusts every index by hash.
//!
//! The layout follows apt-ftparchive and the Debian archive: the header
//! fields, then one section per hash algorithm listing every index file with
//! its size, paths relative to `dists/<codename>/`. Like the Debian archive,
//! an index published only compressed (Contents) is listed uncompressed too:
//! apt verifies what it decompresses against that entry.

use std::collections::BTreeMap;

use repod_family_sdk::{
    Distribution, Field, Publication, PublishedFile, SignatureKind, SignatureRequest, TopLevelFile,
};

use crate::config::Settings;
use crate::layout::{binary_archs, dist_dir};

const DAY: u64 = 86_400;

/// Hash sections apt knows, in apt-ftparchive's order: (algorithm as the
/// host names it, section title).
const HASH_SECTIONS: [(&str, &str); 4] = [
    ("md5", "MD5Sum"),
    ("sha1", "SHA1"),
    ("sha256", "SHA256"),
    ("sha512", "SHA512"),
];

pub fn render_top_level(
    dist: &Distribution,
    files: &[PublishedFile],
    now: u64,
) -> Result<Publication, String> {
    let settings = Settings::of(dist)?;
    let dir = dist_dir(&dist.id);
    let relative = |path: &str| -> Result<String, String> {
        let rel = path
            .strip_prefix(&dir)
            .and_then(|p| p.strip_prefix('/'))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                format!(
                    "published file {path:?} is outside {dir}/, so it cannot be listed in the \
                     Release file of distribution {}",
                    dist.id
                )
            })?;
        if rel.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "published file {path:?} has whitespace in its name, which a Release file cannot list"
            ));
        }
        Ok(rel.to_owned())
    };

    // Relative path -> (size, checksums), sorted by path like apt-ftparchive.
    let mut listed: BTreeMap<String, (u64, &[Field])> = BTreeMap::new();
    for file in files {
        let rel = relative(&file.path)?;
        // by-hash copies are found through the hashes of the named files.
        if rel.split('/').any(|segment| segment == "by-hash") {
            continue;
        }
        listed.insert(rel, (file.size, &file.checksums));
        listed
            .entry(relative(&file.index)?)
            .or_insert((file.open_size, &file.open_checksums));
    }

    let mut out = String::new();
    let mut field = |name: &str, value: &str| out.push_str(&format!("{name}: {value}\n"));
    field("Origin", &settings.origin);
    field("Label", &settings.label);
    field("Suite", &settings.suite);
    field("Codename", &settings.codename);
    field("Date", &rfc1123(now));
    if let Some(days) = settings.valid_until_days {
        field(
            "Valid-Until",
            &rfc1123(now.saturating_add(u64::from(days) * DAY)),
        );
    }
    field(
        "Architectures",
        &binary_archs(&dist.architectures)
            .collect::<Vec<_>>()
            .join(" "),
    );
    field("Components", &dist.components.join(" "));
    field("Acquire-By-Hash", "yes");
    field("Description", &settings.description);

    for (path, (_, checksums)) in &listed {
        if !checksums.iter().any(|(algo, _)| algo == "sha256") {
            return Err(format!(
                "internal error: the host gave no sha256 checksum for {path}"
            ));
        }
    }
    for (algo, title) in HASH_SECTIONS {
        let lines: Vec<String> = listed
            .iter()
            .filter_map(|(path, (size, checksums))| {
                let (_, hex) = checksums.iter().find(|(a, _)| a == algo)?;
                Some(format!(" {hex} {size:>16} {path}\n"))
            })
            .collect();
        if !lines.is_empty() {
            out.push_str(title);
            out.push_str(":\n");
            out.extend(lines);
        }
    }

    Ok(Publication {
        files: vec![TopLevelFile {
            path: format!("{dir}/Release"),
            content: out,
            signatures: vec![
                SignatureRequest {
                    path: format!("{dir}/InRelease"),
                    kind: SignatureKind::Cleartext,
                },
                SignatureRequest {
                    path: format!("{dir}/Release.gpg"),
                    kind: SignatureKind::DetachedArmored,
                },
            ],
        }],
        public_key_paths: vec![],
    })
}

/// `Thu, 01 Jan 1970 00:00:00 UTC`: RFC 1123 in UTC, as apt expects in
/// `Date` and `Valid-Until`. Plugins have no clock, so `now` comes from the
/// host; the calendar arithmetic is Howard Hinnant's days-to-civil.
pub fn rfc1123(unix: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / DAY;
    let secs = unix % DAY;
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[((days + 4) % 7) as usize];

    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);

    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} UTC",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_gnu_date() {
        // Expected values from `date -u -R -d @<t>`.
        for (t, want) in [
            (0, "Thu, 01 Jan 1970 00:00:00 UTC"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 UTC"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 UTC"),
            (1_735_689_600, "Wed, 01 Jan 2025 00:00:00 UTC"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 UTC"),
        ] {
            assert_eq!(rfc1123(t), want);
        }
    }
}
