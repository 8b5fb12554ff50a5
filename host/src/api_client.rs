//! The HTTP client of the remote `repod` commands (`repod::cli`), and the
//! summaries `promote`, `migrate`, `init`, `rollback`, `versions`, `scan
//! report` and `advisories import` print (or the JSON answer with
//! `--output json`). A refusal is a [`ClientError`] carrying the server's
//! problem detail; [`ClientError::exit_code`] says what `repod` exits with.

use serde_json::{Value, json};

use crate::cli::{cell, date_ms, list_table};

/// Where the daemon is and who is asking.
pub struct Client {
    pub url: String,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem: its status and detail.
    #[error("{status}: {detail}")]
    Refused { status: u16, detail: String },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// Before any request: a file to send could not be read.
    #[error("{0}")]
    Local(String),
}

/// What `repod` exits with; `--help` and the README list them.
pub mod exit {
    pub const OK: u8 = 0;
    /// A local failure (a file unreadable), or a batch in which some items
    /// failed (each one's outcome is printed).
    pub const FAILED: u8 = 1;
    /// The command line is wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The server refused: a 4xx other than 404/410 (bad request, bad or
    /// too weak token, conflict, rejected package).
    pub const REFUSED: u8 = 3;
    /// The server has no such thing: 404 or 410.
    pub const NOT_FOUND: u8 = 4;
    /// The server failed (5xx), could not be reached, or answered
    /// something that is not its API.
    pub const UNAVAILABLE: u8 = 5;
}

impl ClientError {
    /// The exit code this failure maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused {
                status: 404 | 410, ..
            } => exit::NOT_FOUND,
            ClientError::Refused { status, .. } if *status >= 500 => exit::UNAVAILABLE,
            ClientError::Refused { .. } => exit::REFUSED,
            ClientError::Unreachable { .. } | ClientError::Unexpected(_) => exit::UNAVAILABLE,
            ClientError::Local(_) => exit::FAILED,
        }
    }
}

/// A non-JSON answer.
pub struct Text {
    pub status: u16,
    pub content_type: String,
    /// The name Content-Disposition suggests.
    pub file_name: Option<String>,
    pub text: String,
}

impl Client {
    fn agent() -> ureq::Agent {
        // Promotions and migrations wait for a publish; init rebuilds every
        // tree. Generous, but not forever.
        ureq::AgentBuilder::new()
            .timeout_connect(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(3600))
            .build()
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        match body {
            Some(body) => self.send(
                method,
                path,
                Some(("application/json", body.to_string().as_bytes())),
            ),
            None => self.send(method, path, None),
        }
    }

    /// A request with an optional (content type, body) body; the answer's
    /// JSON (`null` when it has no body, as a 204), or the server's problem
    /// as [`ClientError::Refused`].
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<(u16, Value), ClientError> {
        let answer = self.text(method, path, body)?;
        if answer.text.is_empty() {
            return Ok((answer.status, Value::Null));
        }
        let value = serde_json::from_str(&answer.text)
            .map_err(|e| ClientError::Unexpected(format!("{e}: {}", answer.text)))?;
        Ok((answer.status, value))
    }

    /// A request whose answer is not JSON (a client config, a comps.xml).
    pub fn text(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Text, ClientError> {
        let request = self.request(method, path);
        let result = match body {
            Some((content_type, bytes)) => {
                request.set("Content-Type", content_type).send_bytes(bytes)
            }
            None => request.call(),
        };
        self.answer(result)
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let url = format!("{}/api/v1{path}", self.url.trim_end_matches('/'));
        Self::agent()
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token))
    }

    /// The answer of a 2xx; anything else (a problem, a 300 naming several
    /// advisories) is a refusal with the problem's detail.
    fn answer(&self, result: Result<ureq::Response, ureq::Error>) -> Result<Text, ClientError> {
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(ClientError::Unreachable {
                    url: self.url.clone(),
                    message: e.to_string(),
                });
            }
        };
        let status = response.status();
        let content_type = response.content_type().to_owned();
        let file_name = response
            .header("Content-Disposition")
            .and_then(|d| d.split("filename=\"").nth(1))
            .map(|n| n.trim_end_matches('"').to_owned());
        let text = response.into_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(ClientError::Refused { status, detail });
        }
        Ok(Text {
            status,
            content_type,
            file_name,
            text,
        })
    }

    /// Sends `file` as the body, with a progress bar on stderr when `bar`
    /// and the file is large (an OSV `all.zip` is tens of MiB).
    pub fn send_file(
        &self,
        method: &str,
        path: &str,
        file: &std::path::Path,
        bar: bool,
    ) -> Result<(u16, Value), ClientError> {
        let read = std::fs::File::open(file).and_then(|f| Ok((f.metadata()?.len(), f)));
        let (size, reader) =
            read.map_err(|e| ClientError::Local(format!("cannot read {}: {e}", file.display())))?;
        let bar = if bar && size > 4 << 20 {
            indicatif::ProgressBar::new(size).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {elapsed} sending",
                )
                .expect("valid template"),
            )
        } else {
            indicatif::ProgressBar::hidden()
        };
        let result = self
            .request(method, path)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &size.to_string())
            .send(bar.wrap_read(reader));
        bar.finish_and_clear();
        let answer = self.answer(result)?;
        let value = serde_json::from_str(&answer.text)
            .map_err(|e| ClientError::Unexpected(format!("{e}: {}", answer.text)))?;
        Ok((answer.status, value))
    }

    pub fn promote(&self, request: &Value) -> Result<(u16, Value), ClientError> {
        self.call("POST", "/distributions/promote", Some(request))
    }

    pub fn migrate(&self, request: &Value) -> Result<(u16, Value), ClientError> {
        self.call("POST", "/distributions/migrate", Some(request))
    }

    /// Imports one advisory file (a record, an array, or a zip of them).
    pub fn import_advisories(
        &self,
        file: &std::path::Path,
        bar: bool,
    ) -> Result<(u16, Value), ClientError> {
        self.send_file("POST", "/advisories", file, bar)
    }

    /// The scan report of one or every distribution, by state, every page
    /// of it.
    pub fn scan_report(
        &self,
        distribution: Option<&str>,
        state: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        let mut offset: Option<String> = None;
        let mut whole: Option<Value> = None;
        loop {
            let query = query_string(&[
                ("distribution", distribution),
                ("state", state),
                ("offset", offset.as_deref()),
            ]);
            let (status, mut page) = self.call("GET", &format!("/scans{query}"), None)?;
            if status != 200 {
                return Ok((status, page));
            }
            let next = page["next_offset"].as_i64();
            match &mut whole {
                None => whole = Some(page),
                Some(whole) => {
                    let more = page["packages"].take();
                    if let (Some(all), Value::Array(more)) =
                        (whole["packages"].as_array_mut(), more)
                    {
                        all.extend(more);
                    }
                }
            }
            match next {
                Some(next) => offset = Some(next.to_string()),
                None => {
                    let mut whole = whole.expect("one page at least");
                    whole["next_offset"] = Value::Null;
                    return Ok((200, whole));
                }
            }
        }
    }

    pub fn init(&self) -> Result<(u16, Value), ClientError> {
        self.call("POST", "/distributions/init", None)
    }

    pub fn rollback(&self, dist: &str, request: &Value) -> Result<(u16, Value), ClientError> {
        self.call(
            "POST",
            &format!("/distributions/{dist}/rollback"),
            Some(request),
        )
    }

    /// One version, or a page of them (`limit`, `before`).
    pub fn versions(
        &self,
        dist: &str,
        number: Option<i64>,
        limit: Option<i64>,
        before: Option<i64>,
    ) -> Result<(u16, Value), ClientError> {
        if let Some(n) = number {
            return self.call("GET", &format!("/distributions/{dist}/versions/{n}"), None);
        }
        let (limit, before) = (limit.map(|n| n.to_string()), before.map(|n| n.to_string()));
        let query = query_string(&[("limit", limit.as_deref()), ("before", before.as_deref())]);
        self.call(
            "GET",
            &format!("/distributions/{dist}/versions{query}"),
            None,
        )
    }
}

/// `text` percent-encoded for a path segment or a query value.
pub fn segment(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b':');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

/// `?k=v&...` of the set parameters, or nothing.
pub fn query_string(params: &[(&str, Option<&str>)]) -> String {
    let set: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

/// `{"package": .., "from_dist": .., ...}` without the unset options.
pub fn promote_request(
    package: &str,
    from: &str,
    to: &str,
    version: Option<&str>,
    architecture: Option<&str>,
    reason: Option<&str>,
) -> Value {
    let mut body = json!({"package": package, "from_dist": from, "to_dist": to});
    for (key, value) in [
        ("version", version),
        ("architecture", architecture),
        ("reason", reason),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    body
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn published(answer: &Value) -> String {
    match answer["publish"].as_object() {
        Some(p) => format!(
            "; published version {} in {:.0} ms",
            p["version"],
            p["duration_ms"].as_f64().unwrap_or(0.0)
        ),
        None => String::new(),
    }
}

fn made_version(answer: &Value) -> String {
    match answer["distribution_version"]["number"].as_i64() {
        Some(n) => format!("version {n}"),
        None => "no new version".to_owned(),
    }
}

/// The summary of a promotion, one line per package.
pub fn promote_summary(answer: &Value) -> String {
    let mut out = String::new();
    for r in answer["promoted"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "promoted {} {} {} ({} -> {})\n",
            s(&r["name"]),
            s(&r["version"]),
            s(&r["architecture"]),
            s(&answer["from_dist"]),
            s(&answer["to_dist"])
        ));
    }
    for r in answer["already_present"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "already in {}: {} {} {}\n",
            s(&answer["to_dist"]),
            s(&r["name"]),
            s(&r["version"]),
            s(&r["architecture"])
        ));
    }
    held_lines(&mut out, answer);
    out.push_str(&format!(
        "{}: {}{}\n",
        s(&answer["to_dist"]),
        made_version(answer),
        published(answer)
    ));
    out
}

/// A line per package the target's vulnerability gate holds back.
fn held_lines(out: &mut String, answer: &Value) {
    for h in answer["held"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "held out of {} ({}): {} {} {} (id {}): {}\n",
            s(&answer["to_dist"]),
            s(&h["scan"]["state"]),
            s(&h["name"]),
            s(&h["version"]),
            s(&h["architecture"]),
            s(&h["id"]),
            s(&h["scan"]["reason"])
        ));
    }
}

/// The summary of a migration: counts, then every skipped package and why.
pub fn migrate_summary(answer: &Value) -> String {
    let mut out = format!(
        "{} -> {}: {} copied, {} already present, {} skipped; {}{}\n",
        s(&answer["from_dist"]),
        s(&answer["to_dist"]),
        answer["copied"],
        answer["already_present"],
        answer["skipped"],
        made_version(answer),
        published(answer)
    );
    held_lines(&mut out, answer);
    for skip in answer["skips"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  skipped {} {} {}: {}\n",
            s(&skip["name"]),
            s(&skip["version"]),
            s(&skip["architecture"]),
            s(&skip["reason"])
        ));
    }
    out
}

pub fn init_summary(answer: &Value) -> String {
    let mut out = String::new();
    for p in answer["published"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "rebuilt {}: version {}, {} packages, {} files, {:.0} ms\n",
            s(&p["distribution"]),
            p["version"],
            p["packages"],
            p["files"],
            p["duration_ms"].as_f64().unwrap_or(0.0)
        ));
    }
    out
}

pub fn rollback_summary(answer: &Value) -> String {
    format!(
        "{}: content of version {} restored (+{} -{}); {}{}\n",
        s(&answer["distribution"]),
        answer["to"],
        answer["added"],
        answer["removed"],
        made_version(answer),
        published(answer)
    )
}

pub fn versions_summary(answer: &Value) -> String {
    if answer["versions"].is_array() {
        let mut out = format!(
            "{}: latest {}, oldest kept {}, live tree shows {}\n",
            s(&answer["distribution"]),
            answer["latest"],
            answer["oldest"],
            answer["published"]
        );
        out.push_str(&list_table(
            &answer["versions"],
            &[
                ("VERSION", "/number", cell),
                ("CREATED", "/created_ms", date_ms),
                ("ACTION", "/action", cell),
                ("ADDED", "/added", cell),
                ("REMOVED", "/removed", cell),
                ("PACKAGES", "/packages", cell),
                ("BY", "/actor", cell),
                ("REASON", "/reason", cell),
            ],
        ));
        return out;
    }
    let mut out = format!(
        "{} version {}: {} by {} at {}{}\n",
        s(&answer["distribution"]),
        answer["number"],
        s(&answer["action"]),
        s(&answer["actor"]),
        date_ms(&answer["created_ms"]),
        match s(&answer["reason"]) {
            "" => String::new(),
            r => format!(": {r}"),
        }
    );
    out.push_str(&format!("tree: {}\n", s(&answer["tree"])));
    for (label, key) in [
        ("+", "added_packages"),
        ("-", "removed_packages"),
        (" ", "content"),
    ] {
        for r in answer[key].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{label} {} {} {}\n",
                s(&r["name"]),
                s(&r["version"]),
                s(&r["architecture"])
            ));
        }
    }
    out
}

/// The summary of one advisory import, with every rejected record.
pub fn import_summary(answer: &Value) -> String {
    let mut out = format!(
        "{} added, {} updated, {} unchanged, {} rejected\n",
        answer["added"], answer["updated"], answer["unchanged"], answer["rejected"]
    );
    for r in answer["rejections"].as_array().into_iter().flatten() {
        let place = match (r["id"].as_str(), r["entry"].as_str()) {
            (Some(id), Some(entry)) => format!("{id} ({entry})"),
            (Some(id), None) => id.to_owned(),
            (None, Some(entry)) => entry.to_owned(),
            (None, None) => "a record".to_owned(),
        };
        out.push_str(&format!("  rejected {place}: {}\n", s(&r["reason"])));
    }
    out
}

/// The scan report: counts per state and per worst severity, then one line
/// per package.
pub fn scan_summary(answer: &Value) -> String {
    let counts = |key: &str| -> String {
        answer[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "none".to_owned())
    };
    let mut out = format!(
        "states: {}\nworst severity: {}\n",
        counts("states"),
        counts("worst")
    );
    out.push_str(&list_table(
        &answer["packages"],
        &[
            ("STATE", "/state", cell),
            ("WORST", "/worst", cell),
            ("NAME", "/package/name", cell),
            ("VERSION", "/package/version", cell),
            ("ARCH", "/package/architecture", cell),
            ("DISTRIBUTION", "/package/distribution", cell),
            ("FINDINGS", "/findings", cell),
            ("ID", "/package/id", cell),
        ],
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_exit_code() {
        let refused = |status| ClientError::Refused {
            status,
            detail: String::new(),
        };
        for (status, code) in [
            (300, exit::REFUSED),
            (400, exit::REFUSED),
            (401, exit::REFUSED),
            (403, exit::REFUSED),
            (404, exit::NOT_FOUND),
            (409, exit::REFUSED),
            (410, exit::NOT_FOUND),
            (422, exit::REFUSED),
            (500, exit::UNAVAILABLE),
            (502, exit::UNAVAILABLE),
        ] {
            assert_eq!(refused(status).exit_code(), code, "{status}");
        }
        let unreachable = ClientError::Unreachable {
            url: String::new(),
            message: String::new(),
        };
        assert_eq!(unreachable.exit_code(), exit::UNAVAILABLE);
        assert_eq!(
            ClientError::Unexpected(String::new()).exit_code(),
            exit::UNAVAILABLE
        );
        assert_eq!(ClientError::Local(String::new()).exit_code(), exit::FAILED);
    }

    #[test]
    fn path_segments_and_query_values_are_encoded() {
        assert_eq!(segment("ALSA-2023:0959"), "ALSA-2023:0959");
        assert_eq!(segment("a/b c&d"), "a%2Fb%20c%26d");
        assert_eq!(
            query_string(&[("reason", Some("a&b=c")), ("name", None)]),
            "?reason=a%26b%3Dc"
        );
        assert_eq!(query_string(&[("name", None)]), "");
    }
}
