//! Go duration syntax (`30s`, `1h30m`, `500ms`, `0s`), as Pomerium's config uses.

use std::fmt;
use std::time::Duration;

use crate::document::decode::{Decode, KeyPath, wrong_type};
use crate::document::diag::Diagnostics;
use crate::document::yaml::Node;

/// A duration written in Go syntax. Negative durations are rejected: no timeout sluice
/// knows has a meaning for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative durations are not allowed")]
    Negative,
    #[error("a number needs a unit (ns, us, ms, s, m or h), as in `30s`")]
    MissingUnit,
    #[error("unknown unit `{0}` (use ns, us, ms, s, m or h)")]
    UnknownUnit(String),
    #[error("not a duration; write it like `30s`, `1h30m` or `500ms`")]
    Invalid,
    #[error("the duration is too long")]
    Overflow,
}

impl GoDuration {
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let text = text.trim();
        let rest = match text.as_bytes().first() {
            None => return Err(DurationError::Empty),
            Some(b'-') => return Err(DurationError::Negative),
            Some(b'+') => &text[1..],
            Some(_) => text,
        };
        if rest == "0" {
            return Ok(GoDuration(Duration::ZERO));
        }
        if rest.is_empty() {
            return Err(DurationError::Invalid);
        }
        let mut total_nanos: u128 = 0;
        let mut s = rest;
        while !s.is_empty() {
            let number_len = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(s.len());
            let (number, after) = s.split_at(number_len);
            if number.is_empty() || number == "." || number.matches('.').count() > 1 {
                return Err(DurationError::Invalid);
            }
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_len);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "" => return Err(DurationError::MissingUnit),
                other => return Err(DurationError::UnknownUnit(other.trim().to_string())),
            };
            let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| DurationError::Overflow)?
            };
            let mut nanos = whole.checked_mul(scale).ok_or(DurationError::Overflow)?;
            // Fractions are exact to the nanosecond, as in Go; extra digits are dropped.
            let mut place = scale;
            for digit in frac.bytes().map(|b| u128::from(b - b'0')) {
                place /= 10;
                nanos += digit * place;
            }
            total_nanos = total_nanos
                .checked_add(nanos)
                .ok_or(DurationError::Overflow)?;
            s = next;
        }
        // Go durations are int64 nanoseconds (about 292 years).
        if total_nanos > i64::MAX as u128 {
            return Err(DurationError::Overflow);
        }
        Ok(GoDuration(Duration::from_nanos(total_nanos as u64)))
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl fmt::Display for GoDuration {
    /// Prints like Go's `time.Duration.String()` (`1h30m0s`, `500ms`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000_000_000 {
            let (value, unit) = if nanos < 1_000 {
                (nanos as f64, "ns")
            } else if nanos < 1_000_000 {
                (nanos as f64 / 1e3, "µs")
            } else {
                (nanos as f64 / 1e6, "ms")
            };
            return write!(f, "{value}{unit}");
        }
        let secs = self.0.as_secs();
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let sub = self.0.subsec_nanos();
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        if sub == 0 {
            write!(f, "{s}s")
        } else {
            let frac = format!("{sub:09}");
            write!(f, "{s}.{}s", frac.trim_end_matches('0'))
        }
    }
}

impl Decode for GoDuration {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        let Some(scalar) = node.as_scalar() else {
            wrong_type(&node, path, diags, "a duration such as `30s`");
            return None;
        };
        match GoDuration::parse(&scalar.text) {
            Ok(d) => Some(d),
            Err(e) => {
                diags.error(
                    node.span,
                    path,
                    format!("`{}` is not a valid duration: {e}", scalar.text),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        GoDuration::parse(s).unwrap().0
    }

    #[test]
    fn parses_go_syntax() {
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("0s"), Duration::ZERO);
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("2h45m10.5s"), Duration::from_millis(9_910_500));
        assert_eq!(d("10us"), Duration::from_micros(10));
        assert_eq!(d("7ns"), Duration::from_nanos(7));
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(GoDuration::parse("30"), Err(DurationError::MissingUnit));
        assert_eq!(GoDuration::parse("-5s"), Err(DurationError::Negative));
        assert!(matches!(
            GoDuration::parse("5d"),
            Err(DurationError::UnknownUnit(_))
        ));
        assert_eq!(GoDuration::parse(""), Err(DurationError::Empty));
        assert_eq!(GoDuration::parse("s"), Err(DurationError::Invalid));
        assert_eq!(GoDuration::parse("1..5s"), Err(DurationError::Invalid));
        assert_eq!(
            GoDuration::parse("99999999999999h"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn prints_like_go() {
        for (text, printed) in [
            ("1h30m", "1h30m0s"),
            ("30s", "30s"),
            ("0s", "0s"),
            ("500ms", "500ms"),
            ("5m", "5m0s"),
            ("1.5s", "1.5s"),
        ] {
            assert_eq!(GoDuration::parse(text).unwrap().to_string(), printed);
        }
    }
}
