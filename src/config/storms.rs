//! The storm-control keys of routes.yaml (Alertmanager's, so its files carry over):
//! `inhibit_rules`, `time_intervals` and `silences` at the top level. The route keys
//! (`group_by`, `mute_time_intervals`, ...) are in [`super::types::RouteConfig`].

use serde::Deserialize;

/// One entry of `inhibit_rules:`. While an open incident matches `source_matchers`, open
/// incidents matching `target_matchers` whose values of every `equal` label are the same as
/// the source's are inhibited: recorded and shown (`inhibited_by`) but not notified. When the
/// last such source resolves, the targets still open are notified.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// Matchers (Alertmanager syntax) an incident must satisfy to inhibit others.
    #[serde(default)]
    pub source_matchers: Vec<String>,
    /// Matchers an incident must satisfy to be inhibited.
    #[serde(default)]
    pub target_matchers: Vec<String>,
    /// Labels whose values must be equal in the source and the target (a label missing on
    /// both counts as equal, as in Alertmanager).
    #[serde(default)]
    pub equal: Vec<String>,
}

/// One entry of `time_intervals:`: a named set of times, referenced by routes'
/// `mute_time_intervals` and `active_time_intervals`. It holds when any of its
/// `time_intervals` holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    /// The name routes use.
    pub name: String,
    /// The periods; empty: never.
    #[serde(default)]
    pub time_intervals: Vec<TimeIntervalSpec>,
}

/// One period of a time interval (Alertmanager's syntax). Every field given must hold; a
/// field left out holds always.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalSpec {
    /// Times of day, `{start_time: "09:00", end_time: "17:00"}` (start included, end not;
    /// `24:00` is the end of the day).
    #[serde(default)]
    pub times: Vec<TimeRangeConfig>,
    /// Days of the week or ranges of them: `monday`, `monday:friday`.
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// Days of the month or ranges: `1`, `1:5`, `-1` (the last day), `-7:-1`.
    #[serde(default)]
    pub days_of_month: Vec<String>,
    /// Months by name or number, or ranges: `january`, `1:3`, `november:december`.
    #[serde(default)]
    pub months: Vec<String>,
    /// Years or ranges: `2026`, `2026:2027`.
    #[serde(default)]
    pub years: Vec<String>,
    /// The IANA time zone the fields are read in (`Europe/Berlin`, `Local` is not accepted).
    /// Default `UTC`.
    #[serde(default)]
    pub location: Option<String>,
}

/// `times:` of a time interval.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeConfig {
    /// `HH:MM`, from `00:00`.
    pub start_time: String,
    /// `HH:MM`, up to `24:00`; after `start_time`.
    pub end_time: String,
}

/// One entry of `silences:`: a silence kept in the file (shown by the silences API beside
/// those created through it, and not expired by it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    /// Matchers (Alertmanager syntax) an incident must satisfy to be silenced.
    pub matchers: Vec<String>,
    /// RFC 3339 time the silence begins. Default: always began.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339 time the silence ends.
    pub ends_at: String,
    /// Why.
    #[serde(default)]
    pub comment: Option<String>,
    /// Who. Default `routes.yaml`.
    #[serde(default)]
    pub created_by: Option<String>,
}
