//! The `control` file of a binary package: one deb822 stanza.
//!
//! Values come out the way `dpkg-deb -f` prints them and the family plugin
//! expects them: the first line without its leading blanks, continuation
//! lines joined with `\n` and keeping their leading space, trailing blanks
//! of the whole value removed. Anything dpkg would refuse to parse
//! (continuation before any field, a line without `:`, a second stanza, a
//! repeated field) is an error here too, so a stanza can never be read two
//! ways.

use crate::{ReadError, human_bytes};

pub(crate) fn parse(
    bytes: &[u8],
    max_field_bytes: usize,
) -> Result<Vec<(String, String)>, ReadError> {
    let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ended = false;
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        if line.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r') {
            // Blank lines before the stanza are tolerated, after it they
            // end it: only further blank lines may follow.
            ended = !fields.is_empty();
            continue;
        }
        if ended {
            return Err(ReadError::Control(format!(
                "line {number} starts a second stanza; a binary package's control file has exactly one"
            )));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let Some((name, value)) = fields.last_mut() else {
                return Err(ReadError::Control(format!(
                    "line {number} is a continuation line (starts with a space) but no field precedes it"
                )));
            };
            value.push(b'\n');
            value.extend_from_slice(line);
            check_size(name, value, max_field_bytes)?;
            continue;
        }
        if line[0] == b'#' {
            return Err(ReadError::Control(format!(
                "line {number} is a comment; comments are not allowed in a binary package's control file"
            )));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(ReadError::Control(format!(
                "line {number} has no ':' ({:?}); every line is \"Field: value\" or a continuation starting with a space",
                String::from_utf8_lossy(line)
            )));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| (0x21..=0x7e).contains(&b)) || name[0] == b'-' {
            return Err(ReadError::Control(format!(
                "line {number} has an invalid field name {:?}; names are printable ASCII without spaces",
                String::from_utf8_lossy(name)
            )));
        }
        // ASCII checked above.
        let name = String::from_utf8_lossy(name).into_owned();
        if fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(ReadError::Control(format!(
                "field {name} appears more than once (line {number})"
            )));
        }
        let value = line[colon + 1..]
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .map_or(&[][..], |start| &line[colon + 1 + start..]);
        check_size(&name, value, max_field_bytes)?;
        fields.push((name, value.to_vec()));
    }
    if fields.is_empty() {
        return Err(ReadError::Control(
            "the control file has no fields".to_owned(),
        ));
    }
    fields
        .into_iter()
        .map(|(name, mut value)| {
            while value.last().is_some_and(|b| b" \t\r\n".contains(b)) {
                value.pop();
            }
            match String::from_utf8(value) {
                Ok(value) => Ok((name, value)),
                Err(_) => Err(ReadError::NonUtf8Field { field: name }),
            }
        })
        .collect()
}

fn check_size(name: &str, value: &[u8], max: usize) -> Result<(), ReadError> {
    if value.len() > max {
        return Err(ReadError::TooLarge {
            what: format!("control field {name}"),
            limit: human_bytes(max as u64),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text.as_bytes(), 1 << 20).unwrap()
    }

    fn err(text: &[u8]) -> String {
        parse(text, 1 << 20).unwrap_err().to_string()
    }

    #[test]
    fn keeps_order_and_the_shape_of_multiline_values() {
        let fields = ok(
            "Package: foo\nVersion:  1:2.0~rc1+b1-1 \nConffiles:\n /etc/a 123\n /etc/b 456\nDescription: short\n long line\n .\n more\n\n",
        );
        assert_eq!(
            fields,
            [
                ("Package", "foo"),
                ("Version", "1:2.0~rc1+b1-1"),
                ("Conffiles", "\n /etc/a 123\n /etc/b 456"),
                ("Description", "short\n long line\n .\n more"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        assert_eq!(
            err(b" leading\nPackage: x\n"),
            "malformed control file: line 1 is a continuation line (starts with a space) but no field precedes it"
        );
        assert_eq!(
            err(b"Package: x\nno colon here\n"),
            "malformed control file: line 2 has no ':' (\"no colon here\"); every line is \"Field: value\" or a continuation starting with a space"
        );
        assert_eq!(
            err(b"Package: x\npackage: y\n"),
            "malformed control file: field package appears more than once (line 2)"
        );
        assert_eq!(
            err(b"Package: x\n\nPackage: y\n"),
            "malformed control file: line 3 starts a second stanza; a binary package's control file has exactly one"
        );
        assert_eq!(
            err(b"\n\n"),
            "malformed control file: the control file has no fields"
        );
        assert_eq!(
            err(b"Package: x\nDescription: caf\xe9\n"),
            "control field Description is not valid UTF-8"
        );
    }

    #[test]
    fn bounds_each_field() {
        let long = format!("Package: x\nDescription: a\n {}\n", "b".repeat(100));
        assert_eq!(
            parse(long.as_bytes(), 64).unwrap_err().to_string(),
            "control field Description is larger than 64 bytes"
        );
    }
}
