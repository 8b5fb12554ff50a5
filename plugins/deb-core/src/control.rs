//! Control stanzas: checking what a `.deb` declares before it is copied into
//! a Packages file.
//!
//! A Packages file is many stanzas separated by blank lines. A value that
//! smuggles a newline (or a blank continuation line) would end one package's
//! stanza early and let an uploader inject fields, or whole packages, into
//! the index everybody reads. So every value is checked here, and only the
//! checked form is ever rendered.

use repod_family_sdk::Field;

/// Fields the repository writes itself; a package's own copies (which a sane
/// `.deb` never has) are dropped so they cannot contradict the real file.
const REPOSITORY_FIELDS: [&str; 6] = ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

/// Fields every binary package must have (Debian policy 5.3).
pub const REQUIRED_FIELDS: [&str; 5] = [
    "Package",
    "Version",
    "Architecture",
    "Maintainer",
    "Description",
];

/// A control stanza whose field names and values are safe to render.
#[derive(Debug, Clone)]
pub struct Stanza {
    /// In the package's order, without empty values or repository fields.
    /// A value's first line has no leading blanks; continuation lines keep
    /// theirs (they start with a space or a tab).
    fields: Vec<Field>,
}

impl Stanza {
    /// Checks a stanza as the host parsed it: one entry per field, the value
    /// being the text after `Name:`, continuation lines included with their
    /// leading whitespace.
    pub fn check(control: &[Field]) -> Result<Stanza, String> {
        let mut fields: Vec<Field> = Vec::with_capacity(control.len() + 4);
        for (i, (name, value)) in control.iter().enumerate() {
            check_name(name)?;
            if control[..i]
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                return Err(format!(
                    "control field {name} appears more than once; each field may appear only once"
                ));
            }
            let value = check_value(name, value)?;
            let owned = REPOSITORY_FIELDS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(name));
            if !owned && !value.is_empty() {
                fields.push((name.clone(), value.to_owned()));
            }
        }
        let stanza = Stanza { fields };
        for required in REQUIRED_FIELDS {
            match control
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(required))
            {
                None => {
                    return Err(format!(
                        "control field {required} is missing; a .deb must declare {}",
                        REQUIRED_FIELDS.join(", ")
                    ));
                }
                Some(_) if stanza.get(required).is_none_or(|v| v.trim().is_empty()) => {
                    return Err(format!("control field {required} is empty"));
                }
                Some(_) => {}
            }
        }
        Ok(stanza)
    }

    /// A field's value, looked up case-insensitively as deb822 requires.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The stanza's lines, each ending in `\n`, with no blank line after.
    pub fn render(&self, out: &mut String) {
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push(':');
            // A value whose first line is empty (e.g. `Conffiles:`) starts
            // right away with its continuation lines.
            if !value.starts_with('\n') {
                out.push(' ');
            }
            out.push_str(value);
            out.push('\n');
        }
    }
}

/// deb822 field names: printable ASCII without `:` or space, not starting
/// with `#` (a comment) or `-` (reserved).
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "control field name {name:?} is not valid: field names are printable ASCII without \
             ':' or spaces and do not start with '#' or '-'"
        ))
    }
}

/// Returns the value with its first line's leading blanks removed.
fn check_value<'a>(name: &str, value: &'a str) -> Result<&'a str, String> {
    let value = value
        .trim_start_matches([' ', '\t'])
        .trim_end_matches([' ', '\t']);
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && *c != '\t' && *c != '\n')
    {
        return Err(format!(
            "control field {name} contains the control character {c:?}, which is not allowed \
             in a control file"
        ));
    }
    for (n, line) in value.split('\n').enumerate().skip(1) {
        if !line.starts_with([' ', '\t']) {
            return Err(format!(
                "control field {name} has a line break not followed by a space (line {} of the \
                 value: {line:?}); continuation lines must start with a space",
                n + 1
            ));
        }
        if line.trim().is_empty() {
            return Err(format!(
                "control field {name} has an empty continuation line (line {} of the value); \
                 write \" .\" for an empty line in a description",
                n + 1
            ));
        }
    }
    Ok(value)
}

/// Debian policy 5.6.1: lower-case letters, digits, `+`, `-` and `.`, at
/// least two characters, starting with a letter or digit.
pub fn valid_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+.-".contains(c))
}

pub fn check_package_name(what: &str, name: &str) -> Result<(), String> {
    if valid_package_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} is not a valid Debian package name: use at least two characters \
             from a-z, 0-9, '+', '-' and '.', starting with a letter or digit"
        ))
    }
}

/// The source package of a binary: `Source: name` or `Source: name (version)`,
/// the version being given when it differs from the binary's.
pub fn parse_source(value: &str) -> Result<(&str, Option<&str>), String> {
    let invalid = |why: String| {
        format!(
            "control field Source {value:?} is not valid: {why} (expected \"name\" or \"name (version)\")"
        )
    };
    let (name, version) = match value.split_once('(') {
        None => (value.trim(), None),
        Some((name, rest)) => {
            let version = rest
                .strip_suffix(')')
                .ok_or_else(|| invalid("the version is not closed by ')'".into()))?;
            (name.trim(), Some(version.trim()))
        }
    };
    check_package_name("source package name", name).map_err(invalid)?;
    if let Some(version) = version {
        crate::version::parse(version).map_err(invalid)?;
    }
    Ok((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<Field> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: [(&str, &str); 5] = [
        ("Package", "hello"),
        ("Version", "1.0-1"),
        ("Architecture", "amd64"),
        ("Maintainer", "A <a@example.org>"),
        ("Description", "greets\n the world\n .\n politely"),
    ];

    #[test]
    fn renders_in_order_dropping_repository_fields() {
        let mut control = fields(&BASE);
        control.push(("Size".into(), "1".into()));
        control.push(("Homepage".into(), "".into()));
        control.push(("Conffiles".into(), "\n /etc/hello.conf abc".into()));
        let mut out = String::new();
        Stanza::check(&control).unwrap().render(&mut out);
        assert_eq!(
            out,
            "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: A <a@example.org>\n\
             Description: greets\n the world\n .\n politely\nConffiles:\n /etc/hello.conf abc\n"
        );
    }

    #[test]
    fn rejections() {
        let case = |extra: (&str, &str)| {
            let mut control = fields(&BASE);
            control.push((extra.0.into(), extra.1.into()));
            Stanza::check(&control).unwrap_err()
        };
        assert!(
            case(("X-Evil", "a\nPackage: evil")).contains("line break not followed by a space")
        );
        assert!(case(("X-Evil", "a\n\nPackage: evil")).contains("line break not followed"));
        assert!(case(("X-Evil", "a\n \t\n b")).contains("empty continuation line"));
        assert!(case(("X-Evil", "a\r\n b")).contains("control character '\\r'"));
        assert!(case(("X-Evil", "a\0")).contains("control character"));
        assert!(case(("Bad Name", "x")).contains("field name \"Bad Name\" is not valid"));
        assert!(case(("#x", "x")).contains("is not valid"));
        assert!(case(("package", "x")).contains("appears more than once"));

        let mut control = fields(&BASE);
        control.retain(|(k, _)| k != "Maintainer");
        let err = Stanza::check(&control).unwrap_err();
        assert!(
            err.starts_with("control field Maintainer is missing"),
            "{err}"
        );

        let mut control = fields(&BASE);
        control[4].1 = "  ".into();
        assert_eq!(
            Stanza::check(&control).unwrap_err(),
            "control field Description is empty"
        );
    }

    #[test]
    fn package_names() {
        for ok in ["hello", "libc6", "g++", "0ad", "python3.12", "a-b+c.d"] {
            assert!(valid_package_name(ok), "{ok}");
        }
        for bad in ["", "a", "Hello", "-x", "+x", ".x", "a_b", "a b", "ä1"] {
            assert!(!valid_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn sources() {
        assert_eq!(parse_source("hello").unwrap(), ("hello", None));
        assert_eq!(
            parse_source("hello (1:2.0-1)").unwrap(),
            ("hello", Some("1:2.0-1"))
        );
        assert!(
            parse_source("Hello")
                .unwrap_err()
                .contains("not a valid Debian package name")
        );
        assert!(
            parse_source("hello (1.0")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(
            parse_source("hello (x)")
                .unwrap_err()
                .contains("must start with a digit")
        );
    }
}
