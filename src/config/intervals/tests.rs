//! Interval arithmetic with an injected clock: zones, DST changes, `24:00`, month day `-1`.

use super::*;
use crate::config::types::TimeRangeConfig;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn interval(spec: TimeIntervalSpec) -> TimeInterval {
    TimeInterval::build(&TimeIntervalConfig {
        name: "i".into(),
        time_intervals: vec![spec],
    })
    .unwrap()
}

fn times(start: &str, end: &str) -> Vec<TimeRangeConfig> {
    vec![TimeRangeConfig {
        start_time: start.into(),
        end_time: end.into(),
    }]
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn evenings_to_midnight_in_a_zone() {
    let i = interval(TimeIntervalSpec {
        times: times("17:00", "24:00"),
        location: Some("Europe/Berlin".into()),
        ..Default::default()
    });
    // 2026-01-15: Berlin is UTC+1.
    assert!(!i.contains(utc("2026-01-15T15:59:00Z")));
    assert!(i.contains(utc("2026-01-15T16:00:00Z")), "17:00 Berlin");
    assert!(i.contains(utc("2026-01-15T22:59:59Z")), "23:59 Berlin");
    assert!(
        !i.contains(utc("2026-01-15T23:00:00Z")),
        "24:00 Berlin is not in"
    );
    assert_eq!(
        i.next_change(utc("2026-01-15T10:00:00Z")),
        Some(utc("2026-01-15T16:00:00Z"))
    );
    assert_eq!(
        i.next_change(utc("2026-01-15T18:00:00Z")),
        Some(utc("2026-01-15T23:00:00Z")),
        "muted until Berlin's midnight"
    );
}

#[test]
fn the_last_day_of_the_month_and_ranges_from_the_end() {
    let last = interval(TimeIntervalSpec {
        days_of_month: strings(&["-1"]),
        ..Default::default()
    });
    assert!(last.contains(utc("2028-02-29T12:00:00Z")), "leap year");
    assert!(!last.contains(utc("2028-02-28T12:00:00Z")));
    assert!(last.contains(utc("2027-02-28T00:00:00Z")));
    assert!(last.contains(utc("2026-04-30T23:59:00Z")));
    assert_eq!(
        last.next_change(utc("2026-04-15T00:00:00Z")),
        Some(utc("2026-04-30T00:00:00Z"))
    );
    assert_eq!(
        last.next_change(utc("2026-04-30T08:00:00Z")),
        Some(utc("2026-05-01T00:00:00Z"))
    );
    let last_week = interval(TimeIntervalSpec {
        days_of_month: strings(&["-7:-1"]),
        ..Default::default()
    });
    assert!(last_week.contains(utc("2026-02-22T00:00:00Z")));
    assert!(!last_week.contains(utc("2026-02-21T23:59:00Z")));
}

#[test]
fn weekdays_months_and_years() {
    let i = interval(TimeIntervalSpec {
        weekdays: strings(&["monday:friday"]),
        months: strings(&["december", "1:2"]),
        years: strings(&["2026:2027"]),
        ..Default::default()
    });
    // 2026-12-05 is a Saturday.
    assert!(!i.contains(utc("2026-12-05T12:00:00Z")));
    assert!(i.contains(utc("2026-12-07T00:00:00Z")));
    assert!(i.contains(utc("2027-01-04T00:00:00Z")));
    assert!(!i.contains(utc("2027-03-01T00:00:00Z")), "March");
    assert!(!i.contains(utc("2028-01-03T00:00:00Z")), "2028");
    assert_eq!(
        i.next_change(utc("2026-12-05T12:00:00Z")),
        Some(utc("2026-12-07T00:00:00Z"))
    );
    // After its last day nothing changes any more.
    assert_eq!(i.next_change(utc("2028-06-01T00:00:00Z")), None);
}

#[test]
fn dst_changes_move_the_utc_instants() {
    let i = interval(TimeIntervalSpec {
        times: times("01:30", "03:30"),
        location: Some("Europe/Berlin".into()),
        ..Default::default()
    });
    // 2026-03-29 02:00 Berlin skips to 03:00 (UTC+1 -> UTC+2).
    assert!(i.contains(utc("2026-03-29T00:30:00Z")), "01:30 CET");
    assert!(i.contains(utc("2026-03-29T01:00:00Z")), "03:00 CEST");
    assert!(!i.contains(utc("2026-03-29T01:30:00Z")), "03:30 CEST");
    assert_eq!(
        i.next_change(utc("2026-03-29T00:40:00Z")),
        Some(utc("2026-03-29T01:30:00Z")),
        "an hour earlier in UTC than the day before"
    );
    assert_eq!(
        i.next_change(utc("2026-03-28T03:00:00Z")),
        Some(utc("2026-03-29T00:30:00Z"))
    );
    // 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:xx happens twice.
    assert!(i.contains(utc("2026-10-25T00:00:00Z")), "02:00 CEST");
    assert!(i.contains(utc("2026-10-25T01:00:00Z")), "02:00 CET");
    assert_eq!(
        i.next_change(utc("2026-10-25T00:00:00Z")),
        Some(utc("2026-10-25T02:30:00Z")),
        "03:30 CET"
    );
    // A time that repeats: 02:15-02:45 holds in both occurrences.
    let twice = interval(TimeIntervalSpec {
        times: times("02:15", "02:45"),
        location: Some("Europe/Berlin".into()),
        ..Default::default()
    });
    let after_first = utc("2026-10-25T00:50:00Z");
    assert!(!twice.contains(after_first));
    assert_eq!(
        twice.next_change(after_first),
        Some(utc("2026-10-25T01:15:00Z")),
        "its second occurrence"
    );
}

#[test]
fn bad_fields_are_named() {
    let err = |spec: TimeIntervalSpec| {
        TimeInterval::build(&TimeIntervalConfig {
            name: "i".into(),
            time_intervals: vec![spec],
        })
        .unwrap_err()
    };
    let e = err(TimeIntervalSpec {
        times: times("18:00", "17:00"),
        ..Default::default()
    });
    assert_eq!(e.field, "times");
    assert!(err(TimeIntervalSpec {
        times: times("25:00", "26:00"),
        ..Default::default()
    })
    .message
    .contains("time of day"));
    assert_eq!(
        err(TimeIntervalSpec {
            weekdays: strings(&["friday:monday"]),
            ..Default::default()
        })
        .field,
        "weekdays"
    );
    assert_eq!(
        err(TimeIntervalSpec {
            weekdays: strings(&["funday"]),
            ..Default::default()
        })
        .field,
        "weekdays"
    );
    assert_eq!(
        err(TimeIntervalSpec {
            days_of_month: strings(&["0"]),
            ..Default::default()
        })
        .field,
        "days_of_month"
    );
    assert_eq!(
        err(TimeIntervalSpec {
            days_of_month: strings(&["-1:-3"]),
            ..Default::default()
        })
        .field,
        "days_of_month"
    );
    assert_eq!(
        err(TimeIntervalSpec {
            months: strings(&["13"]),
            ..Default::default()
        })
        .field,
        "months"
    );
    let zone = err(TimeIntervalSpec {
        location: Some("Mars/Olympus".into()),
        ..Default::default()
    });
    assert_eq!(zone.field, "location");
    assert!(zone.message.contains("IANA"));
}
