//! The duration syntax of routes.yaml (`250ms`, `10s`, `5m`, `1h`, `1d`, `1h30m`) and the rate
//! syntax of `rate_limit` (`1/s`, `30/m`, `100/h`).

use std::time::Duration;

use thiserror::Error;

/// A duration or rate that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration (expected e.g. `250ms`, `10s`, `5m`, `1h`, `1h30m`)")]
    Duration(String),
    #[error("`{0}` is not a rate (expected `N/s`, `N/m` or `N/h` with N at least 1, e.g. `1/s`, `30/m`)")]
    Rate(String),
}

/// Parses one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError::Duration(text.to_string());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let millis: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = n.checked_mul(millis).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// A request rate: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

/// Parses `N/s`, `N/m` or `N/h` (also `N/sec`, `N/min`, `N/hour`).
pub fn parse_rate(text: &str) -> Result<Rate, DurationError> {
    let bad = || DurationError::Rate(text.to_string());
    let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(bad());
    }
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    Ok(Rate { count, per })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 5m "), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "1.5s",
            "-1s",
            "5 m",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("1/s"),
            Ok(Rate {
                count: 1,
                per: Duration::from_secs(1)
            })
        );
        assert_eq!(
            parse_rate("30/m").map(|r| r.per),
            Ok(Duration::from_secs(60))
        );
        for bad in ["0/s", "1", "1/d", "x/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
