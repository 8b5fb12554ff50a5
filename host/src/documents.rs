//! Documents a distribution publishes whole beside its package indexes,
//! such as the comps.xml that gives rpm-md repositories their package
//! groups. The family plugin declares an index whose
//! `index-spec.extensions` has `repod.document` = NAME; the host fills that
//! index with the document stored under NAME (empty while there is none),
//! so compression, checksum naming and the top-level file (the plugin
//! lists it, e.g. as repomd.xml's `group` and `group_gz`) work as for any
//! index. The host knows nothing of a document's meaning: a document named
//! N must be well-formed XML whose root element is `<N>`, at most
//! [`MAX_BYTES`], without a DOCTYPE.

use std::collections::BTreeMap;

use quick_xml::events::Event;

use crate::db::Db;
use crate::plugins::contract::Distribution;

pub const DOCUMENT: &str = "repod.document";

/// The one document the API takes today (`/distributions/{id}/comps`).
pub const COMPS: &str = "comps";

/// The largest document taken (a large distribution's comps.xml is ~3 MiB).
pub const MAX_BYTES: usize = 16 << 20;

/// Whether `dist` publishes a document called `name`.
pub fn declared(dist: &Distribution, name: &str) -> bool {
    dist.indexes.iter().any(|i| of_index(i) == Some(name))
}

/// The document named by an index spec, if it holds one.
pub fn of_index(spec: &crate::plugins::contract::IndexSpec) -> Option<&str> {
    crate::plugins::contract::extension(&spec.extensions, DOCUMENT)
}

/// `bytes` as the text of a document called `name`, or what is wrong.
pub fn validate(name: &str, bytes: &[u8]) -> Result<String, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "the {name} document is larger than {}",
            crate::blobs::human_size(MAX_BYTES as u64)
        ));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| format!("the {name} document is not UTF-8: {e}"))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut rooted = false;
    let mut root = |found: &str| {
        if rooted {
            Err(format!(
                "the {name} document has more than one root element"
            ))
        } else if found != name {
            Err(format!(
                "the {name} document's root element is <{found}>, not <{name}>"
            ))
        } else {
            rooted = true;
            Ok(())
        }
    };
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "the {name} document is not well-formed XML (near byte {}): {e}",
                reader.error_position()
            )
        })?;
        // Attributes are parsed (quick-xml checks them only when asked):
        // duplicates and unquoted values are errors.
        let attributes_ok = |e: &quick_xml::events::BytesStart| {
            e.attributes()
                .try_for_each(|a| a.map(|_| ()))
                .map_err(|err| format!("the {name} document has a malformed attribute: {err}"))
        };
        match event {
            Event::Start(e) => {
                attributes_ok(&e)?;
                if depth == 0 {
                    root(e.name().into_inner())?;
                }
                depth += 1;
            }
            Event::Empty(e) => {
                attributes_ok(&e)?;
                if depth == 0 {
                    root(e.name().into_inner())?;
                }
            }
            // Only XML's own entities and character references: anything
            // else would need a DTD, which is refused.
            Event::GeneralRef(r) => {
                let predefined = matches!(&*r, "amp" | "lt" | "gt" | "quot" | "apos");
                let character = r.is_char_ref() && matches!(r.resolve_char_ref(), Ok(Some(_)));
                if depth == 0 || !(predefined || character) {
                    return Err(format!(
                        "the {name} document refers to an unknown entity &{};",
                        &*r
                    ));
                }
            }
            Event::CData(_) if depth == 0 => {
                return Err(format!(
                    "the {name} document has text outside its root element"
                ));
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::DocType(_) => {
                return Err(format!(
                    "the {name} document has a DOCTYPE, which is not taken"
                ));
            }
            Event::Text(t) if depth == 0 && !(*t).trim().is_empty() => {
                return Err(format!(
                    "the {name} document has text outside its root element"
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!(
            "the {name} document ends inside an element (unclosed <{name}>?)"
        ));
    }
    if !rooted {
        return Err(format!(
            "the {name} document is empty: expected <{name}>...</{name}>"
        ));
    }
    Ok(text.to_owned())
}

/// Every document `dist` has, by name.
pub async fn all(db: &Db, dist: &str) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, content FROM distribution_documents WHERE distribution = $1")
            .bind(dist)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().collect())
}

/// A stored document and who set it when.
#[derive(Debug, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Stored {
    pub content: String,
    pub sha256: String,
    pub updated_ms: i64,
    pub updated_by: String,
}

pub async fn get(db: &Db, dist: &str, name: &str) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query_as(
        "SELECT content, sha256, updated_ms, updated_by FROM distribution_documents \
         WHERE distribution = $1 AND name = $2",
    )
    .bind(dist)
    .bind(name)
    .fetch_optional(db)
    .await
}

/// Stores (or replaces) a validated document, with an audit entry.
pub async fn set(
    db: &Db,
    dist: &str,
    name: &str,
    content: &str,
    actor: &str,
) -> Result<String, sqlx::Error> {
    let sha256 = crate::plugins::sha256_hex(content.as_bytes());
    let mut tx = crate::db::write(db).await?;
    sqlx::query(
        "INSERT INTO distribution_documents (distribution, name, content, sha256, updated_ms, \
         updated_by) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (distribution, name) DO UPDATE \
         SET content = excluded.content, sha256 = excluded.sha256, \
         updated_ms = excluded.updated_ms, updated_by = excluded.updated_by",
    )
    .bind(dist)
    .bind(name)
    .bind(content)
    .bind(&sha256)
    .bind(crate::scan::now_ms())
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    let detail = format!("{name} of {dist}: sha256 {sha256}, {} bytes", content.len());
    crate::audit::record(&mut tx, actor, "distribution.document", dist, &detail).await?;
    tx.commit().await?;
    Ok(sha256)
}

/// Deletes a document; whether there was one.
pub async fn delete(db: &Db, dist: &str, name: &str, actor: &str) -> Result<bool, sqlx::Error> {
    let mut tx = crate::db::write(db).await?;
    let gone =
        sqlx::query("DELETE FROM distribution_documents WHERE distribution = $1 AND name = $2")
            .bind(dist)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
    if gone {
        let detail = format!("{name} of {dist} removed");
        crate::audit::record(&mut tx, actor, "distribution.document", dist, &detail).await?;
    }
    tx.commit().await?;
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn documents_are_well_formed_xml_with_the_named_root() {
        let ok = "<?xml version=\"1.0\"?>\n<comps><group a=\"1\"><id>x &amp; &#233;</id></group></comps>\n";
        assert_eq!(validate("comps", ok.as_bytes()).unwrap(), ok);
        assert!(validate("comps", b"<comps/>").is_ok());
        for (bad, words) in [
            ("", "is empty"),
            ("not xml", "outside its root"),
            ("<groups></groups>", "root element is <groups>"),
            ("<comps><group></comps>", "not well-formed"),
            ("<comps>", "ends inside an element"),
            ("<comps/><comps/>", "more than one root"),
            ("<!DOCTYPE comps [<!ENTITY x \"y\">]><comps/>", "DOCTYPE"),
            ("<comps><id>&nbsp;</id></comps>", "unknown entity"),
            ("<comps/>&x;", "unknown entity"),
            ("<comps a=1/>", "malformed attribute"),
            ("<comps a=\"1\" a=\"2\"/>", "malformed attribute"),
            ("<comps/><![CDATA[x]]>", "outside its root"),
        ] {
            let err = validate("comps", bad.as_bytes()).unwrap_err();
            assert!(err.contains(words), "{bad:?}: {err}");
        }
        assert!(
            validate("comps", &[0xff, 0xfe])
                .unwrap_err()
                .contains("not UTF-8")
        );
    }
}
