//! CVSS v3.x base score, computed from a vector string (CVSS v3.1
//! specification, section 7.1 and Appendix A).

/// Base score of a `CVSS:3.0/...` or `CVSS:3.1/...` vector, or `None` when the
/// vector is malformed: unknown version or metric, a value out of range, a
/// repeated metric, or a missing base metric. Temporal and environmental
/// metrics are accepted and ignored: this is the base score only.
///
/// Both 3.0 and 3.1 vectors use the 3.1 `Roundup`, which is the
/// floating-point-safe form of 3.0's "round up to one decimal".
pub fn cvss3_base_score(vector: &str) -> Option<f32> {
    let mut parts = vector.split('/');
    if !matches!(parts.next(), Some("CVSS:3.0" | "CVSS:3.1")) {
        return None;
    }
    // AV, AC, PR, UI, S, C, I, A
    let mut base: [Option<u8>; 8] = [None; 8];
    for part in parts {
        let (key, value) = part.split_once(':')?;
        let &[value] = value.as_bytes() else {
            return None;
        };
        let slot = match key {
            "AV" => 0,
            "AC" => 1,
            "PR" => 2,
            "UI" => 3,
            "S" => 4,
            "C" => 5,
            "I" => 6,
            "A" => 7,
            "E" | "RL" | "RC" | "CR" | "IR" | "AR" | "MAV" | "MAC" | "MPR" | "MUI" | "MS"
            | "MC" | "MI" | "MA" => continue,
            _ => return None,
        };
        if base[slot].replace(value).is_some() {
            return None;
        }
    }
    let [av, ac, pr, ui, s, c, i, a] = base.map(|m| m.unwrap_or(0));
    let changed = match s {
        b'U' => false,
        b'C' => true,
        _ => return None,
    };
    let av = match av {
        b'N' => 0.85,
        b'A' => 0.62,
        b'L' => 0.55,
        b'P' => 0.2,
        _ => return None,
    };
    let ac = match ac {
        b'L' => 0.77,
        b'H' => 0.44,
        _ => return None,
    };
    let pr = match (pr, changed) {
        (b'N', _) => 0.85,
        (b'L', false) => 0.62,
        (b'L', true) => 0.68,
        (b'H', false) => 0.27,
        (b'H', true) => 0.5,
        _ => return None,
    };
    let ui = match ui {
        b'N' => 0.85,
        b'R' => 0.62,
        _ => return None,
    };
    let cia = |m: u8| match m {
        b'H' => Some(0.56),
        b'L' => Some(0.22),
        b'N' => Some(0.0),
        _ => None,
    };
    let (c, i, a): (f64, f64, f64) = (cia(c)?, cia(i)?, cia(a)?);

    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    let score = if impact <= 0.0 {
        0.0
    } else if changed {
        roundup((1.08 * (impact + exploitability)).min(10.0))
    } else {
        roundup((impact + exploitability).min(10.0))
    };
    Some(score as f32)
}

/// The smallest number with one decimal that is >= `x` (CVSS 3.1 Appendix A),
/// done in integers so that e.g. 4.000000001 does not become 4.1.
fn roundup(x: f64) -> f64 {
    let scaled = (x * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 {
        scaled as f64 / 100_000.0
    } else {
        ((scaled / 10_000) + 1) as f64 / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Scores as published by NVD / the FIRST calculator.
        let cases = [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N", 3.7),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N", 5.3),
            ("CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ];
        for (vector, want) in cases {
            assert_eq!(cvss3_base_score(vector), Some(want), "{vector}");
        }
    }

    #[test]
    fn metric_order_and_temporal_metrics_do_not_matter() {
        assert_eq!(
            cvss3_base_score("CVSS:3.1/A:H/I:H/C:H/S:U/UI:N/PR:N/AC:L/AV:N/E:P/RL:O"),
            Some(9.8)
        );
    }

    #[test]
    fn malformed_vectors_are_refused() {
        for bad in [
            "",
            "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",
            "CVSS:3.1/AV:NN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        ] {
            assert_eq!(cvss3_base_score(bad), None, "{bad}");
        }
    }

    #[test]
    fn roundup_is_float_safe() {
        assert_eq!(roundup(4.000_000_000_1), 4.0);
        assert_eq!(roundup(4.02), 4.1);
        assert_eq!(roundup(9.0), 9.0);
    }
}
