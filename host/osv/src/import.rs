//! Import of OSV files: one record, a JSON array of records, or a zip of
//! `*.json` records, with per-record validation and resource limits.

use std::io::{Cursor, Read};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::{Advisory, Event};

/// Resource limits for [`parse`]. They bound memory use on hostile input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted record, in bytes of JSON text (default 4 MiB).
    pub max_record_bytes: usize,
    /// Largest accepted input in uncompressed bytes: the JSON input itself,
    /// or the sum of decompressed `*.json` zip entries (default 2 GiB).
    pub max_total_bytes: u64,
    /// Most entries a zip may have (default 500,000).
    pub max_entries: usize,
    /// Largest uncompressed/compressed ratio of one zip entry (default 200).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 4 << 20,
            max_total_bytes: 2 << 30,
            max_entries: 500_000,
            max_ratio: 200,
        }
    }
}

/// The outcome of an import: records that passed, and those that did not.
#[derive(Debug, Clone, Default)]
pub struct Import {
    pub advisories: Vec<Advisory>,
    pub rejected: Vec<Rejected>,
}

/// A record (or zip entry) that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The record's id, when it has a well-formed one.
    pub id: Option<String>,
    /// Where it was: a zip entry name, an array index, or `name[index]` for an
    /// array inside a zip entry. `None` for a single-record input.
    pub entry: Option<String>,
    pub reason: String,
}

/// The input as a whole could not be read; nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "expected an OSV record (a JSON object), a JSON array of records, \
         or a zip archive of *.json records, but the input {found}"
    )]
    Unrecognized { found: String },
    #[error(
        "input starts like JSON but is not valid JSON ({0}); \
         expected an OSV record or a JSON array of records"
    )]
    InvalidJson(serde_json::Error),
    #[error("input starts like a zip archive but cannot be read as one: {0}")]
    Zip(String),
    #[error("zip archive has {entries} entries, more than the limit of {max}")]
    TooManyEntries { entries: usize, max: usize },
    #[error("input exceeds the limit of {max} bytes of uncompressed data")]
    TooLarge { max: u64 },
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// An archive with no entries holds only its end-of-central-directory record.
const EMPTY_ZIP_MAGIC: &[u8] = b"PK\x05\x06";

/// Parses OSV input: one JSON record, a JSON array of records, or a zip
/// (detected by its `PK\x03\x04` magic) whose `*.json` entries are records
/// (or arrays of records). Other zip entries are ignored.
///
/// A record that fails to deserialize or validate is listed in
/// [`Import::rejected`] and the rest still import. Only a failure of the input
/// as a whole (neither JSON nor zip, invalid JSON syntax, unreadable archive,
/// a limit on the whole input exceeded) is an [`ImportError`].
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Import, ImportError> {
    if bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(EMPTY_ZIP_MAGIC) {
        return parse_zip(bytes, limits);
    }
    if bytes.len() as u64 > limits.max_total_bytes {
        return Err(ImportError::TooLarge {
            max: limits.max_total_bytes,
        });
    }
    let mut out = Import::default();
    match parse_document(bytes, None, limits, &mut out) {
        Ok(()) => Ok(out),
        Err(DocError::NotJson(found)) => Err(ImportError::Unrecognized { found }),
        Err(DocError::Invalid(e)) => Err(ImportError::InvalidJson(e)),
    }
}

/// Why a JSON document (the input, or one zip entry) could not be split into records.
enum DocError {
    NotJson(String),
    Invalid(serde_json::Error),
}

impl DocError {
    fn reason(&self) -> String {
        match self {
            DocError::NotJson(found) => {
                format!("expected an OSV record or a JSON array of records, but the entry {found}")
            }
            DocError::Invalid(e) => format!("not valid JSON: {e}"),
        }
    }
}

/// Splits one JSON document into records and imports each into `out`.
/// `label` names the document (a zip entry) in rejections.
fn parse_document(
    text: &[u8],
    label: Option<&str>,
    limits: &Limits,
    out: &mut Import,
) -> Result<(), DocError> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            let entry = label.map(str::to_owned);
            if text.len() > limits.max_record_bytes {
                out.rejected
                    .push(oversized(None, entry, text.len(), limits));
                return Ok(());
            }
            let raw: &RawValue = serde_json::from_slice(text).map_err(DocError::Invalid)?;
            import_record(raw.get(), entry, out);
            Ok(())
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_slice(text).map_err(DocError::Invalid)?;
            for (i, raw) in items.into_iter().enumerate() {
                let entry = Some(match label {
                    Some(l) => format!("{l}[{i}]"),
                    None => i.to_string(),
                });
                if raw.get().len() > limits.max_record_bytes {
                    let id = probe_id(raw.get());
                    out.rejected
                        .push(oversized(id, entry, raw.get().len(), limits));
                } else {
                    import_record(raw.get(), entry, out);
                }
            }
            Ok(())
        }
        _ => Err(DocError::NotJson(describe_start(text))),
    }
}

fn oversized(id: Option<String>, entry: Option<String>, len: usize, limits: &Limits) -> Rejected {
    Rejected {
        id,
        entry,
        reason: format!(
            "record is {len} bytes, over the limit of {} bytes",
            limits.max_record_bytes
        ),
    }
}

/// Deserializes and validates one record's JSON text.
fn import_record(raw: &str, entry: Option<String>, out: &mut Import) {
    if json_has_nul(raw.as_bytes()) {
        out.rejected.push(Rejected {
            id: probe_id(raw),
            entry,
            reason: "a text field holds a NUL character (\\u0000), which no field may contain"
                .to_owned(),
        });
        return;
    }
    match serde_json::from_str::<Advisory>(raw) {
        Err(e) => out.rejected.push(Rejected {
            id: probe_id(raw),
            entry,
            reason: format!("not a valid OSV record: {e}"),
        }),
        Ok(mut adv) => match validate(&adv) {
            Err(reason) => out.rejected.push(Rejected {
                id: check_id(&adv.id).ok().map(|()| adv.id.clone()),
                entry,
                reason,
            }),
            Ok(()) => {
                adv.raw = raw.to_owned();
                out.advisories.push(adv);
            }
        },
    }
}

/// Whether JSON text holds a NUL character: a raw NUL byte (not valid
/// JSON) or the escape `\u0000`. PostgreSQL stores no NUL in text, and no
/// field of a record or an API request needs one. An escaped backslash
/// followed by `u0000` is text, not a NUL.
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            0 => return true,
            b'\\' => {
                if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    false
}

/// Best-effort id of a record that failed to deserialize, if it is well-formed.
fn probe_id(raw: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Probe>(raw).ok()?.id? {
        serde_json::Value::String(id) if check_id(&id).is_ok() => Some(id),
        _ => None,
    }
}

fn describe_start(text: &[u8]) -> String {
    if text.is_empty() {
        return "is empty".to_owned();
    }
    let head = &text[..text.len().min(16)];
    format!("starts with {:?}", String::from_utf8_lossy(head))
}

fn parse_zip(bytes: &[u8], limits: &Limits) -> Result<Import, ImportError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ImportError::Zip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(ImportError::TooManyEntries {
            entries: archive.len(),
            max: limits.max_entries,
        });
    }
    let mut out = Import::default();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let name = match archive.name_for_index(i) {
            None => continue,
            Some(Ok(name)) => name.into_owned(),
            Some(Err(e)) => {
                out.rejected.push(Rejected {
                    id: None,
                    entry: Some(format!("#{i}")),
                    reason: format!("unreadable zip entry name: {e}"),
                });
                continue;
            }
        };
        if name.ends_with('/') || !name.to_ascii_lowercase().ends_with(".json") {
            continue;
        }
        let reject = |out: &mut Import, reason: String| {
            out.rejected.push(Rejected {
                id: None,
                entry: Some(name.clone()),
                reason,
            })
        };
        let mut file = match archive.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                reject(&mut out, format!("cannot open zip entry: {e}"));
                continue;
            }
        };
        let declared = file.size();
        let compressed = file.compressed_size();
        let ratio_cap = compressed.saturating_mul(limits.max_ratio);
        if declared > ratio_cap {
            reject(
                &mut out,
                format!(
                    "zip entry declares {declared} bytes from {compressed} compressed, \
                     over the ratio limit of {}; refused as a possible zip bomb",
                    limits.max_ratio
                ),
            );
            continue;
        }
        if declared > limits.max_record_bytes as u64 {
            reject(
                &mut out,
                format!(
                    "record is {declared} bytes, over the limit of {} bytes",
                    limits.max_record_bytes
                ),
            );
            continue;
        }
        if total.saturating_add(declared) > limits.max_total_bytes {
            return Err(ImportError::TooLarge {
                max: limits.max_total_bytes,
            });
        }
        // The header may lie: never read more than the limits allow, whatever it says.
        let cap = ratio_cap.min(limits.max_record_bytes as u64);
        let mut buf = Vec::with_capacity(declared as usize);
        if let Err(e) = (&mut file).take(cap + 1).read_to_end(&mut buf) {
            reject(&mut out, format!("cannot decompress zip entry: {e}"));
            continue;
        }
        if buf.len() as u64 > cap {
            reject(
                &mut out,
                format!(
                    "zip entry decompresses to more than {cap} bytes although it declares \
                     {declared}; refused (record size or compression ratio limit)"
                ),
            );
            continue;
        }
        total += buf.len() as u64;
        if total > limits.max_total_bytes {
            return Err(ImportError::TooLarge {
                max: limits.max_total_bytes,
            });
        }
        if let Err(e) = parse_document(&buf, Some(&name), limits, &mut out) {
            reject(&mut out, e.reason());
        }
    }
    Ok(out)
}

/// Checks the per-record rules that deserialization alone does not enforce.
pub(crate) fn validate(adv: &Advisory) -> Result<(), String> {
    check_id(&adv.id)?;
    if !is_rfc3339(&adv.modified) {
        return Err(format!(
            "`modified` is not an RFC3339 timestamp: {:?}",
            adv.modified
        ));
    }
    for (ai, affected) in adv.affected.iter().enumerate() {
        for (ri, range) in affected.ranges.iter().enumerate() {
            if range.events.is_empty() {
                return Err(format!("affected[{ai}].ranges[{ri}] has no events"));
            }
            // The schema requires an `introduced` in every range; it is enforced
            // for the types this crate evaluates, others are only stored.
            if range.kind.is_evaluated()
                && !range
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Introduced(_)))
            {
                return Err(format!(
                    "affected[{ai}].ranges[{ri}] has no `introduced` event"
                ));
            }
        }
    }
    Ok(())
}

/// An id must be non-empty and safe to use as a storage key.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("`id` is empty".to_owned());
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!(
            "`id` {id:?} contains a control character or a slash"
        ));
    }
    Ok(())
}

/// RFC3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with the
/// calendar checked (leap years, a leap second `:60` allowed).
pub(crate) fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return false;
    };
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &frac[digits..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<u32> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
            };
            matches!((two(*h1, *h2), two(*m1, *m2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, extra: &str) -> String {
        format!(r#"{{"id":"{id}","modified":"2024-05-01T10:00:00Z"{extra}}}"#)
    }

    fn one(json: &str) -> Import {
        parse(json.as_bytes(), &Limits::default()).unwrap()
    }

    fn reason(json: &str) -> String {
        let import = one(json);
        assert!(
            import.advisories.is_empty(),
            "expected a rejection for {json}"
        );
        assert_eq!(import.rejected.len(), 1);
        import.rejected[0].reason.clone()
    }

    #[test]
    fn rfc3339_timestamps() {
        for ok in [
            "2023-03-07T17:32:20Z",
            "2026-08-31T17:26:24.789222646Z",
            "2024-02-29T00:00:00Z",
            "2016-12-31T23:59:60Z",
            "2024-01-01t00:00:00z",
            "2024-01-01T00:00:00+05:30",
            "2024-01-01T00:00:00.5-08:00",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2023-03-07",
            "2023-03-07 17:32:20Z",
            "2023-03-07T17:32:20",
            "2023-13-07T17:32:20Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-03-07T24:00:00Z",
            "2023-03-07T17:60:00Z",
            "2023-03-07T17:32:20.Z",
            "2023-03-07T17:32:20+0530",
            "2023-03-07T17:32:20+24:00",
            "2023-03-07T17:32:20ZZ",
            "+023-03-07T17:32:20Z",
            "２023-03-07T17:32:20Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn a_valid_record_keeps_its_raw_text_and_ignores_unknown_fields() {
        let json = record("OSV-1", r#","future_field":{"x":[1,2]},"aliases":null"#);
        let import = one(&format!("\n  {json}\n"));
        assert!(import.rejected.is_empty());
        let adv = &import.advisories[0];
        assert_eq!(adv.raw, json);
        assert!(adv.aliases.is_empty());
    }

    #[test]
    fn required_fields() {
        let r = one(r#"{"id":"OSV-2"}"#);
        assert_eq!(r.rejected[0].id.as_deref(), Some("OSV-2"));
        assert!(
            r.rejected[0].reason.contains("modified"),
            "{:?}",
            r.rejected
        );

        let r = one(r#"{"modified":"2024-05-01T10:00:00Z"}"#);
        assert_eq!(r.rejected[0].id, None);
        assert!(r.rejected[0].reason.contains("id"));
    }

    #[test]
    fn nul_characters_are_refused_but_escaped_backslashes_are_text() {
        let r = one(&record("OSV-N", r#","summary":"a\u0000b""#));
        assert_eq!(r.rejected[0].id.as_deref(), Some("OSV-N"));
        assert!(r.rejected[0].reason.contains("NUL"), "{:?}", r.rejected);
        let ok = one(&record("OSV-T", r#","summary":"C:\\u0000 is a path""#));
        assert_eq!(ok.advisories.len(), 1, "{:?}", ok.rejected);
        assert!(json_has_nul(b"\"\x00\""));
        assert!(!json_has_nul(br#""\\\\u0000""#));
        assert!(json_has_nul(br#""\\\\\u0000""#));
    }

    #[test]
    fn bad_ids_and_timestamps() {
        assert!(reason(&record("", "")).contains("`id` is empty"));
        let r = one(&record("A/B", ""));
        assert_eq!(
            r.rejected[0].id, None,
            "a malformed id is not reported as the id"
        );
        assert!(r.rejected[0].reason.contains("slash"));
        assert!(reason(&record("A\\u0007B", "")).contains("control"));
        let r = one(r#"{"id":"OSV-3","modified":"yesterday"}"#);
        assert_eq!(r.rejected[0].id.as_deref(), Some("OSV-3"));
        assert!(r.rejected[0].reason.contains("RFC3339"));
    }

    #[test]
    fn range_rules() {
        let aff = |ranges: &str| {
            format!(
                r#","affected":[{{"package":{{"ecosystem":"E","name":"p"}},"ranges":[{ranges}]}}]"#
            )
        };
        assert!(
            reason(&record("R-1", &aff(r#"{"type":"ECOSYSTEM","events":[]}"#)))
                .contains("no events")
        );
        assert!(
            reason(&record(
                "R-2",
                &aff(r#"{"type":"ECOSYSTEM","events":[{"fixed":"1"}]}"#)
            ))
            .contains("no `introduced`")
        );
        assert!(
            reason(&record(
                "R-3",
                &aff(r#"{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1"}]}"#)
            ))
            .contains("both `introduced` and `fixed`")
        );
        assert!(
            reason(&record(
                "R-4",
                &aff(r#"{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1","limit":"2"}]}"#)
            ))
            .contains("both `fixed` and `limit`")
        );
        assert!(
            reason(&record(
                "R-5",
                &aff(r#"{"type":"ECOSYSTEM","events":[{"introduced":""}]}"#)
            ))
            .contains("empty version")
        );
        assert!(
            reason(&record(
                "R-6",
                &aff(r#"{"type":"ECOSYSTEM","events":[{"introduced":0}]}"#)
            ))
            .contains("invalid type")
        );
        assert!(
            reason(&record(
                "R-7",
                &aff(r#"{"type":"ECOSYSTEM","events":[{}]}"#)
            ))
            .contains("none of")
        );

        // Unknown and GIT range types are stored; only the non-empty rule applies.
        let kept = one(&record(
            "R-8",
            &aff(
                r#"{"type":"FUTURE","events":[{"fixed":"x"}]},{"type":"GIT","repo":"r","events":[{"fixed":"abc"}]}"#,
            ),
        ));
        assert!(kept.rejected.is_empty(), "{:?}", kept.rejected);
        assert_eq!(
            kept.advisories[0].affected[0].ranges[0].kind,
            crate::RangeType::Other("FUTURE".into())
        );
    }

    #[test]
    fn an_array_rejects_bad_items_by_index_and_keeps_the_rest() {
        let json = format!(
            "[{},{},{},42]",
            record("A-1", ""),
            r#"{"id":"A-2","modified":"nope"}"#,
            record("A-3", "")
        );
        let import = one(&json);
        let ids: Vec<&str> = import.advisories.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["A-1", "A-3"]);
        assert_eq!(import.advisories[1].raw, record("A-3", ""));
        let rejected: Vec<(Option<&str>, Option<&str>)> = import
            .rejected
            .iter()
            .map(|r| (r.id.as_deref(), r.entry.as_deref()))
            .collect();
        assert_eq!(rejected, [(Some("A-2"), Some("1")), (None, Some("3"))]);
    }

    #[test]
    fn whole_input_errors_say_what_was_expected() {
        let err = parse(b"hello", &Limits::default()).unwrap_err();
        assert!(matches!(err, ImportError::Unrecognized { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("JSON array of records") && msg.contains("zip") && msg.contains("hello"),
            "{msg}"
        );

        let err = parse(b"", &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("is empty"));

        let err = parse(b"[{\"id\":", &Limits::default()).unwrap_err();
        assert!(matches!(err, ImportError::InvalidJson(_)), "{err}");

        let err = parse(b"PK\x03\x04garbage", &Limits::default()).unwrap_err();
        assert!(matches!(err, ImportError::Zip(_)));
        assert!(err.to_string().contains("zip archive"), "{err}");
    }

    #[test]
    fn record_and_total_limits() {
        let small = Limits {
            max_record_bytes: 100,
            ..Limits::default()
        };
        let big = record("BIG-1", &format!(r#","details":"{}""#, "x".repeat(200)));
        let json = format!("[{big},{}]", record("OK-1", ""));
        let import = parse(json.as_bytes(), &small).unwrap();
        assert_eq!(import.advisories.len(), 1);
        assert_eq!(import.rejected[0].id.as_deref(), Some("BIG-1"));
        assert!(import.rejected[0].reason.contains("over the limit"));

        let tiny_total = Limits {
            max_total_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            parse(json.as_bytes(), &tiny_total),
            Err(ImportError::TooLarge { max: 10 })
        ));
    }

    #[test]
    fn bom_is_tolerated() {
        let json = format!("\u{feff}{}", record("BOM-1", ""));
        assert_eq!(one(&json).advisories.len(), 1);
    }
}
