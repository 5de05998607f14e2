//! Inhibition (Alertmanager's `inhibit_rules`): while an open incident matches a rule's
//! `source_matchers`, open incidents matching its `target_matchers` with equal values of the
//! `equal` labels are held (cause [`Cause::Inhibition`], by the source's incident id).
//!
//! The sources are kept in the store (collection [`INHIBIT_SOURCES`], one document per rule,
//! `equal` values and source incident: shared by every instance), written after each record
//! call for the incidents that match a rule's source matchers (open: added; resolved:
//! removed, and the holds it caused are looked at again at once). Record calls read them
//! from a cache refreshed with the silences ([`super::DEFAULT_SILENCE_REFRESH`]) and at once
//! after this instance's changes; sources of the batch being recorded count as soon as their
//! event is decided.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Cause, Holding};
use crate::config::matcher::Matcher;
use crate::config::types::InhibitRuleConfig;
use crate::model::Event;
use crate::router::table::field;
use crate::store::StoreError;

/// The store collection of inhibiting incidents.
pub const INHIBIT_SOURCES: &str = "inhibit";
/// Most inhibiting incidents read at once.
pub const DEFAULT_MAX_INHIBIT_SOURCES: usize = 100_000;

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    /// A digest of the rule as written: sources recorded under a rule a reload changed are
    /// not taken for the new one's.
    pub id: String,
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Compiles `inhibit_rules:`; `Err((index, field, message))` for the first problem.
    pub fn build(
        configs: &[InhibitRuleConfig],
    ) -> Result<Vec<InhibitRule>, (usize, &'static str, String)> {
        let mut out = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let parse = |field: &'static str, list: &[String]| {
                list.iter()
                    .map(|m| Matcher::parse(m).map_err(|e| (i, field, e.to_string())))
                    .collect::<Result<Vec<_>, _>>()
            };
            let source = parse("source_matchers", &c.source_matchers)?;
            let target = parse("target_matchers", &c.target_matchers)?;
            use sha2::Digest as _;
            let written = format!(
                "{:?}\n{:?}\n{:?}",
                c.source_matchers, c.target_matchers, c.equal
            );
            let id = hex::encode(sha2::Sha256::digest(written.as_bytes()))[..16].to_string();
            out.push(InhibitRule {
                id,
                source,
                target,
                equal: c.equal.clone(),
            });
        }
        Ok(out)
    }

    fn all(matchers: &[Matcher], event: &Event) -> bool {
        matchers.iter().all(|m| m.matches(field(event, &m.name)))
    }

    pub fn is_source(&self, event: &Event) -> bool {
        Self::all(&self.source, event)
    }

    pub fn is_target(&self, event: &Event) -> bool {
        Self::all(&self.target, event)
    }

    /// The values of the `equal` labels, as one key.
    pub fn equal_key(&self, event: &Event) -> String {
        let values: Vec<&str> = self.equal.iter().map(|l| field(event, l)).collect();
        serde_json::to_string(&values).unwrap_or_default()
    }
}

/// One inhibiting incident (a document of [`INHIBIT_SOURCES`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InhibitSource {
    pub rule: String,
    pub equal: String,
    pub incident_id: String,
}

impl InhibitSource {
    fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}",
            self.rule, self.equal, self.incident_id
        )
    }
}

/// The inhibiting incidents by (rule id, equal key).
pub type SourceIndex = HashMap<(String, String), Vec<String>>;

/// Builds the index of sources.
pub fn index(sources: impl IntoIterator<Item = InhibitSource>) -> SourceIndex {
    let mut idx = SourceIndex::new();
    for s in sources {
        idx.entry((s.rule, s.equal))
            .or_default()
            .push(s.incident_id);
    }
    idx
}

/// The incidents that inhibit `event` under `rules` with `sources` (never itself).
pub fn inhibitors(rules: &[InhibitRule], sources: &SourceIndex, event: &Event) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rules {
        if !r.is_target(event) {
            continue;
        }
        let Some(ids) = sources.get(&(r.id.clone(), r.equal_key(event))) else {
            continue;
        };
        for id in ids {
            if *id != event.incident.id && !out.contains(id) {
                out.push(id.clone());
            }
        }
    }
    out
}

impl Holding {
    /// The inhibit rules of routes.yaml (at start and on reload).
    pub fn set_inhibit_rules(&self, rules: Vec<InhibitRule>) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    pub fn inhibit_rules(&self) -> Arc<Vec<InhibitRule>> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the inhibiting incidents again if the store's changed since the last read.
    pub async fn refresh_inhibitions(&self) -> Result<(), StoreError> {
        if self.inhibit_rules().is_empty() {
            return Ok(());
        }
        let version = self.docs.version(INHIBIT_SOURCES).await?;
        if self.cached_sources().0 == Some(version) {
            return Ok(());
        }
        let all = self
            .docs
            .list(INHIBIT_SOURCES, DEFAULT_MAX_INHIBIT_SOURCES)
            .await?;
        let sources = all
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_str::<InhibitSource>(&v).ok());
        self.set_cached_sources(version, index(sources));
        Ok(())
    }

    /// Keeps the inhibiting incidents up to date with these recorded events: an open
    /// incident matching a rule's sources is added, a resolved one removed (and the holds
    /// it caused are looked at again at `now`).
    pub async fn track_sources(
        &self,
        events: &[Arc<Event>],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let rules = self.inhibit_rules();
        if rules.is_empty() {
            return Ok(());
        }
        let mut add = Vec::new();
        let mut remove = Vec::new();
        let mut ended = Vec::new();
        for e in events {
            for r in rules.iter().filter(|r| r.is_source(e)) {
                let s = InhibitSource {
                    rule: r.id.clone(),
                    equal: r.equal_key(e),
                    incident_id: e.incident.id.clone(),
                };
                if e.incident.status.is_open() {
                    let json = serde_json::to_string(&s).unwrap_or_default();
                    add.push((s.key(), json));
                } else {
                    remove.push(s.key());
                    if !ended.contains(&e.incident.id) {
                        ended.push(e.incident.id.clone());
                    }
                }
            }
        }
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        // Only what is new: most events of a source are repeats of what is stored.
        let cached = self.cached_sources().1;
        add.retain(|(_, json)| {
            serde_json::from_str::<InhibitSource>(json).is_ok_and(|s| {
                !cached
                    .get(&(s.rule, s.equal))
                    .is_some_and(|ids| ids.contains(&s.incident_id))
            })
        });
        if !add.is_empty() {
            self.docs.put(INHIBIT_SOURCES, &add).await?;
        }
        if !remove.is_empty() {
            self.docs.remove(INHIBIT_SOURCES, &remove).await?;
        }
        self.refresh_inhibitions().await?;
        for id in ended {
            self.recheck(&Cause::Inhibition(id), now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{test_event, EventType};

    fn rule() -> InhibitRule {
        InhibitRule::build(&[InhibitRuleConfig {
            source_matchers: vec!["alertname=\"ClusterDown\"".into()],
            target_matchers: vec!["severity=~\"warning|info\"".into()],
            equal: vec!["cluster".into()],
        }])
        .unwrap()
        .remove(0)
    }

    fn event(id: &str, alertname: &str, cluster: &str) -> Event {
        let mut e = test_event(id, EventType::Created);
        e.incident
            .labels
            .insert("alertname".into(), alertname.into());
        e.incident.labels.insert("cluster".into(), cluster.into());
        e
    }

    #[test]
    fn a_source_inhibits_targets_with_equal_labels_only() {
        let r = rule();
        let down = event("inc_src", "ClusterDown", "a");
        assert!(r.is_source(&down));
        let sources = index([InhibitSource {
            rule: r.id.clone(),
            equal: r.equal_key(&down),
            incident_id: "inc_src".into(),
        }]);
        let rules = [r];
        // test_event's severity is info: a target.
        assert_eq!(
            inhibitors(&rules, &sources, &event("inc_t", "DiskFull", "a")),
            vec!["inc_src".to_string()]
        );
        assert!(inhibitors(&rules, &sources, &event("inc_t", "DiskFull", "b")).is_empty());
        let mut critical = event("inc_t", "DiskFull", "a");
        critical.incident.severity = crate::model::Severity::Critical;
        assert!(inhibitors(&rules, &sources, &critical).is_empty());
        // Never itself.
        assert!(inhibitors(&rules, &sources, &down).is_empty());
    }

    #[test]
    fn a_missing_equal_label_on_both_sides_counts_as_equal() {
        let r = rule();
        let mut a = test_event("inc_1", EventType::Created);
        a.incident
            .labels
            .insert("alertname".into(), "ClusterDown".into());
        let b = test_event("inc_2", EventType::Created);
        assert_eq!(r.equal_key(&a), r.equal_key(&b));
    }

    #[test]
    fn rules_are_checked_and_named_by_what_they_say() {
        let c = InhibitRuleConfig {
            source_matchers: vec!["a=\"1\"".into()],
            target_matchers: vec!["b=~\"(\"".into()],
            equal: vec![],
        };
        assert_eq!(
            InhibitRule::build(std::slice::from_ref(&c)).unwrap_err().1,
            "target_matchers"
        );
        let mut ok = c;
        ok.target_matchers = vec!["b=\"2\"".into()];
        let a = InhibitRule::build(&[ok.clone()]).unwrap();
        let b = InhibitRule::build(&[ok]).unwrap();
        assert_eq!(a[0].id, b[0].id);
    }
}
