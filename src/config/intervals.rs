//! Time intervals (Alertmanager's `time_intervals`): parsing and the arithmetic, with the
//! clock always given (never read here), so it is tested at any moment, in any zone.
//!
//! A [`TimeInterval`] holds at an instant when any of its periods does; a period holds when
//! every field it names holds, each read in its `location` (default UTC): the day of the
//! week, of the month (negative: from the month's end, `-1` the last day), the month, the
//! year, and the time of day to the minute (`start_time` included, `end_time` not; `24:00`
//! the day's end). [`TimeInterval::next_change`] answers when that flips next, so a held
//! notification is released at the end of a mute interval (or the start of an active one).
//! Across a DST change, a local time that does not exist is read as the first instant after
//! the gap, and one that exists twice as its first occurrence.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::types::{TimeIntervalConfig, TimeIntervalSpec};

/// How far ahead [`TimeInterval::next_change`] looks (four years and a day: every
/// combination of weekday, month day and leap year comes round in that time).
pub const DEFAULT_INTERVAL_SCAN_DAYS: i64 = 4 * 366 + 1;

/// One period (an entry of a time interval's `time_intervals:`).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// Minutes of the day, [start, end).
    times: Vec<(u32, u32)>,
    /// Days of the week, 0 = Sunday, inclusive ranges.
    weekdays: Vec<(u32, u32)>,
    /// Days of the month, inclusive ranges, negative from the end.
    days_of_month: Vec<(i32, i32)>,
    /// Months 1-12, inclusive ranges.
    months: Vec<(u32, u32)>,
    years: Vec<(i32, i32)>,
    tz: Tz,
}

/// A named time interval.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeInterval {
    pub name: String,
    pub periods: Vec<Period>,
}

/// What is wrong with a time interval: the field (`times`, `weekdays`, ..., `location`), its
/// index in the period's list, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalError {
    pub period: usize,
    pub field: &'static str,
    pub message: String,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `a` or `a:b`, each parsed by `one`; `a:b` must not run backwards.
fn range<T: Copy + PartialOrd>(
    text: &str,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, T), String> {
    let (a, b) = match text.split_once(':') {
        Some((a, b)) => (one(a.trim())?, one(b.trim())?),
        None => {
            let a = one(text.trim())?;
            (a, a)
        }
    };
    if a > b {
        return Err(format!("`{text}`: the range runs backwards"));
    }
    Ok((a, b))
}

fn by_name(list: &[&str], what: &str, s: &str, first: u32) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = list.iter().position(|n| *n == lower) {
        return Ok(i as u32 + first);
    }
    match lower.parse::<u32>() {
        Ok(n) if what == "month" && (1..=12).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a {what} ({})", list.join(", "))),
    }
}

/// `HH:MM` as minutes of the day (`24:00` allowed as an end).
fn minutes(s: &str) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a time of day (HH:MM, 00:00 to 24:00)");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn day_of_month(s: &str) -> Result<i32, String> {
    match s.parse::<i32>() {
        Ok(d) if (1..=31).contains(&d) || (-31..=-1).contains(&d) => Ok(d),
        _ => Err(format!(
            "`{s}` is not a day of the month (1 to 31, or -31 to -1 from the end)"
        )),
    }
}

impl Period {
    /// Parses one period; the error names the field.
    pub fn build(spec: &TimeIntervalSpec) -> Result<Period, (&'static str, String)> {
        let mut times = Vec::new();
        for t in &spec.times {
            let (s, e) = (
                minutes(&t.start_time).map_err(|m| ("times", m))?,
                minutes(&t.end_time).map_err(|m| ("times", m))?,
            );
            if s >= e {
                return Err((
                    "times",
                    format!(
                        "start_time {} must be before end_time {}",
                        t.start_time, t.end_time
                    ),
                ));
            }
            if s == 24 * 60 {
                return Err(("times", "start_time cannot be 24:00".into()));
            }
            times.push((s, e));
        }
        let weekdays = spec
            .weekdays
            .iter()
            .map(|w| range(w, |s| by_name(&WEEKDAYS, "weekday", s, 0)))
            .collect::<Result<_, _>>()
            .map_err(|m| ("weekdays", m))?;
        let mut days_of_month = Vec::new();
        for d in &spec.days_of_month {
            let (a, b) = match d.split_once(':') {
                Some((a, b)) => (day_of_month(a.trim()), day_of_month(b.trim())),
                None => (day_of_month(d.trim()), day_of_month(d.trim())),
            };
            let (a, b) = (
                a.map_err(|m| ("days_of_month", m))?,
                b.map_err(|m| ("days_of_month", m))?,
            );
            if a.signum() == b.signum() && a > b {
                return Err(("days_of_month", format!("`{d}`: the range runs backwards")));
            }
            days_of_month.push((a, b));
        }
        let months = spec
            .months
            .iter()
            .map(|m| range(m, |s| by_name(&MONTHS, "month", s, 1)))
            .collect::<Result<_, _>>()
            .map_err(|m| ("months", m))?;
        let years = spec
            .years
            .iter()
            .map(|y| {
                range(y, |s| {
                    s.parse::<i32>()
                        .ok()
                        .filter(|y| (1..=9999).contains(y))
                        .ok_or_else(|| format!("`{s}` is not a year"))
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|m| ("years", m))?;
        let tz = match spec.location.as_deref().map(str::trim) {
            None | Some("") | Some("UTC") => Tz::UTC,
            Some("Local") => {
                return Err((
                    "location",
                    "`Local` depends on the host; name an IANA zone (e.g. Europe/Berlin)".into(),
                ))
            }
            Some(name) => name.parse::<Tz>().map_err(|_| {
                (
                    "location",
                    format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)"),
                )
            })?,
        };
        Ok(Period {
            times,
            weekdays,
            days_of_month,
            months,
            years,
            tz,
        })
    }

    /// Whether the local date `d` is one of this period's days.
    fn day_matches(&self, d: NaiveDate) -> bool {
        let wd = d.weekday().num_days_from_sunday();
        let days_in_month = days_in_month(d.year(), d.month()) as i32;
        let dom = d.day() as i32;
        let abs = |x: i32| if x < 0 { days_in_month + x + 1 } else { x };
        (self.weekdays.is_empty() || self.weekdays.iter().any(|(a, b)| (*a..=*b).contains(&wd)))
            && (self.days_of_month.is_empty()
                || self
                    .days_of_month
                    .iter()
                    .any(|(a, b)| (abs(*a)..=abs(*b).min(days_in_month)).contains(&dom)))
            && (self.months.is_empty()
                || self
                    .months
                    .iter()
                    .any(|(a, b)| (*a..=*b).contains(&d.month())))
            && (self.years.is_empty()
                || self
                    .years
                    .iter()
                    .any(|(a, b)| (*a..=*b).contains(&d.year())))
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&self.tz);
        if !self.day_matches(local.date_naive()) {
            return false;
        }
        let m = local.hour() * 60 + local.minute();
        self.times.is_empty() || self.times.iter().any(|(s, e)| (*s..*e).contains(&m))
    }

    /// The instants where this period may begin or end on local date `d`: its midnights,
    /// its times' starts and ends (both occurrences of a time that repeats), and the day's
    /// clock change, if any (local times repeat or are skipped from there).
    fn boundaries(&self, d: NaiveDate, out: &mut Vec<DateTime<Utc>>) {
        let mut push = |mins: u32| {
            let day = d + chrono::Days::new(u64::from(mins / (24 * 60)));
            let (h, m) = ((mins % (24 * 60)) / 60, mins % 60);
            if let Some(naive) = day.and_hms_opt(h, m, 0) {
                out.push(local_instant(self.tz, naive));
                if let Some(later) = self.tz.from_local_datetime(&naive).latest() {
                    out.push(later.with_timezone(&Utc));
                }
            }
        };
        push(0);
        push(24 * 60);
        for (s, e) in &self.times {
            push(*s);
            push(*e);
        }
        let (Some(start), Some(end)) = (
            d.and_hms_opt(0, 0, 0).map(|n| local_instant(self.tz, n)),
            (d + chrono::Days::new(1))
                .and_hms_opt(0, 0, 0)
                .map(|n| local_instant(self.tz, n)),
        ) else {
            return;
        };
        let offset = |t: DateTime<Utc>| t.with_timezone(&self.tz).offset().fix();
        if offset(start) != offset(end) {
            // Bisect to the minute at which the offset changes.
            let (mut lo, mut hi) = (start, end);
            while hi - lo > chrono::TimeDelta::minutes(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == offset(start) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(hi);
        }
    }
}

/// The instant of a local time in `tz`: its first occurrence, or, in a DST gap, the first
/// instant after the gap.
fn local_instant(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    let mut n = naive;
    for _ in 0..(4 * 60) {
        if let Some(t) = tz.from_local_datetime(&n).earliest() {
            return t.with_timezone(&Utc);
        }
        // No such local time: the clocks jumped over it. Its gap ends within hours.
        n += chrono::TimeDelta::minutes(1);
    }
    naive.and_utc()
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| d.day())
}

impl TimeInterval {
    /// Parses `time_intervals:` entry `c`.
    pub fn build(c: &TimeIntervalConfig) -> Result<TimeInterval, IntervalError> {
        let periods = c
            .time_intervals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Period::build(p).map_err(|(field, message)| IntervalError {
                    period: i,
                    field,
                    message,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TimeInterval {
            name: c.name.clone(),
            periods,
        })
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.periods.iter().any(|p| p.contains(t))
    }

    /// The first instant after `t` at which [`TimeInterval::contains`] differs from its
    /// value at `t`; None if it never changes (within [`DEFAULT_INTERVAL_SCAN_DAYS`]).
    pub fn next_change(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        next_flip(
            t,
            |x| self.contains(x),
            |d, out| {
                for p in &self.periods {
                    let local = (t.with_timezone(&p.tz).date_naive()) + chrono::Days::new(d as u64);
                    p.boundaries(local, out);
                }
            },
        )
    }
}

/// The first instant after `t` at which `holds` differs from `holds(t)`, looking at the
/// candidate instants `day(d, out)` adds for each day `d` from `t`'s (-1) on.
pub fn next_flip(
    t: DateTime<Utc>,
    holds: impl Fn(DateTime<Utc>) -> bool,
    day: impl Fn(i64, &mut Vec<DateTime<Utc>>),
) -> Option<DateTime<Utc>> {
    let now = holds(t);
    let mut pending: Vec<DateTime<Utc>> = Vec::new();
    for d in 0..=DEFAULT_INTERVAL_SCAN_DAYS {
        day(d, &mut pending);
        pending.retain(|c| *c > t);
        pending.sort();
        pending.dedup();
        // Candidates of later days are all after this (zones differ by at most 26 hours,
        // and a day's instants start at its local midnight).
        let cutoff = t + chrono::TimeDelta::days(d) - chrono::TimeDelta::hours(27);
        let mut keep = 0;
        for c in &pending {
            if *c > cutoff && d < DEFAULT_INTERVAL_SCAN_DAYS {
                break;
            }
            if holds(*c) != now {
                return Some(*c);
            }
            keep += 1;
        }
        pending.drain(..keep);
    }
    None
}

#[cfg(test)]
mod tests;
