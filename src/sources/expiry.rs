//! When a firing alert's incident is resolved without a word from its tool: the alert's
//! `expires_at`. Prometheus' `endsAt` on the Alertmanager API path sets it (see
//! `alertmanager`), a generic mapping's `resolve_after` pointer per alert, and a source's
//! `resolve_after` for every firing alert that has none. The incidents layer arms a durable
//! timer from it and resolves the incident when it passes without a renewal.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::duration::parse_duration;
use crate::model::{Alert, AlertStatus};

/// The longest `resolve_after` (a source's, or an alert's own): 365 days. Longer values are
/// refused, so a typo (`24d` for `24h` is fine, `2400d` is not) cannot arm a timer for ages.
pub const DEFAULT_MAX_RESOLVE_AFTER: Duration = Duration::from_secs(365 * 86_400);

/// A `resolve_after` as written in routes.yaml or a payload: a duration (`24h`, `1h30m`) or
/// a whole number of seconds; more than zero and at most [`DEFAULT_MAX_RESOLVE_AFTER`].
pub fn parse_resolve_after(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(t.parse::<u64>().map_err(|_| too_long(t))?)
    } else {
        parse_duration(t).map_err(|e| e.to_string())?
    };
    check(d, t)
}

/// An alert's own `resolve_after` as a JSON value: a duration string or a number of seconds.
/// `Ok(None)` for null (no value: the source's applies).
pub fn resolve_after_value(v: &Value) -> Result<Option<Duration>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_resolve_after(s).map(Some),
        Value::Number(n) => {
            let secs = n.as_f64().filter(|s| s.is_finite() && *s > 0.0);
            let secs = secs.ok_or_else(|| format!("`{n}` is not a positive number of seconds"))?;
            if secs > DEFAULT_MAX_RESOLVE_AFTER.as_secs_f64() {
                return Err(too_long(&n.to_string()));
            }
            check(Duration::from_secs_f64(secs), &n.to_string()).map(Some)
        }
        other => Err(format!(
            "expected a duration (`24h`) or a number of seconds, got {other}"
        )),
    }
}

fn check(d: Duration, text: &str) -> Result<Duration, String> {
    if d.is_zero() {
        return Err(format!(
            "`{text}` is no time; leave resolve_after out instead"
        ));
    }
    if d > DEFAULT_MAX_RESOLVE_AFTER {
        return Err(too_long(text));
    }
    Ok(d)
}

fn too_long(text: &str) -> String {
    format!(
        "`{text}` is longer than the longest resolve_after ({} days)",
        DEFAULT_MAX_RESOLVE_AFTER.as_secs() / 86_400
    )
}

/// `now + after`, in chrono's time (both bounded, so it cannot overflow).
pub fn after(now: DateTime<Utc>, after: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(after)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
}

/// Gives each firing alert without an expiry the source's `resolve_after` from `now`.
pub fn apply_default(alerts: &mut [Alert], resolve_after: Option<Duration>, now: DateTime<Utc>) {
    let Some(d) = resolve_after else { return };
    for a in alerts
        .iter_mut()
        .filter(|a| a.status == AlertStatus::Firing && a.expires_at.is_none())
    {
        a.expires_at = after(now, d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;
    use serde_json::json;

    #[test]
    fn durations_and_seconds_within_bounds() {
        assert_eq!(parse_resolve_after("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_resolve_after(" 90 "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_resolve_after("365d"), Ok(DEFAULT_MAX_RESOLVE_AFTER));
        for bad in [
            "",
            "0",
            "0s",
            "366d",
            "soon",
            "-5",
            "99999999999999999999999",
        ] {
            assert!(parse_resolve_after(bad).is_err(), "{bad:?}");
        }
        assert_eq!(resolve_after_value(&json!(null)), Ok(None));
        assert_eq!(
            resolve_after_value(&json!(1.5)),
            Ok(Some(Duration::from_millis(1500)))
        );
        assert_eq!(
            resolve_after_value(&json!("2h")),
            Ok(Some(Duration::from_secs(7200)))
        );
        for bad in [
            json!(0),
            json!(-1),
            json!(1e300),
            json!({"h": 1}),
            json!([1]),
            json!(true),
        ] {
            assert!(resolve_after_value(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_goes_to_firing_alerts_without_their_own() {
        let now = Utc::now();
        let own = now + chrono::Duration::minutes(5);
        let mut alerts = vec![
            Alert::for_tests("a", AlertStatus::Firing, Severity::Info),
            Alert::for_tests("b", AlertStatus::Firing, Severity::Info),
            Alert::for_tests("c", AlertStatus::Resolved, Severity::Info),
            Alert::for_tests("d", AlertStatus::Acknowledged, Severity::Info),
        ];
        alerts[1].expires_at = Some(own);
        apply_default(&mut alerts, Some(Duration::from_secs(3600)), now);
        assert_eq!(alerts[0].expires_at, Some(now + chrono::Duration::hours(1)));
        assert_eq!(alerts[1].expires_at, Some(own), "its own wins");
        assert_eq!(alerts[2].expires_at, None);
        assert_eq!(alerts[3].expires_at, None);
        apply_default(&mut alerts[2..3], None, now);
        assert_eq!(alerts[2].expires_at, None);
    }
}
