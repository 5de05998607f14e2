//! The checks of the storm-control keys: `time_intervals` (names, ranges, zones), the
//! intervals routes name, `inhibit_rules` matchers, and the warnings that do not make a file
//! invalid (an inhibit rule whose `equal` labels its matchers make unequal).

use std::collections::HashMap;

use crate::config::intervals::TimeInterval;
use crate::config::load::{LoadedConfig, PathSeg};
use crate::config::matcher::{MatchOp, Matcher};
use crate::config::types::{InhibitRuleConfig, RouteConfig};
use crate::config::validate::closest;
use crate::config::{ConfigError, ConfigErrors};

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

/// Every problem of the storm-control keys.
pub fn check(cfg: &LoadedConfig, errors: &mut ConfigErrors) {
    let raw = &cfg.raw;
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, t) in raw.time_intervals.iter().enumerate() {
        let at = |rest: &[PathSeg]| {
            let mut p = vec![key("time_intervals"), PathSeg::Index(i)];
            p.extend_from_slice(rest);
            p
        };
        if t.name.trim().is_empty() {
            errors.push(cfg.error_at(&at(&[key("name")]), "a time interval needs a name"));
        }
        if let Some(first) = names.insert(&t.name, i) {
            errors.push(cfg.error_at(
                &at(&[key("name")]),
                format!(
                    "duplicate time interval `{}` (also time_intervals[{first}])",
                    t.name
                ),
            ));
        }
        if let Err(e) = TimeInterval::build(t) {
            errors.push(cfg.error_at(
                &at(&[
                    key("time_intervals"),
                    PathSeg::Index(e.period),
                    key(e.field),
                ]),
                format!("time interval `{}`: {}", t.name, e.message),
            ));
        }
    }
    let known: Vec<&str> = raw.time_intervals.iter().map(|t| t.name.as_str()).collect();
    check_route_intervals(cfg, &raw.routes, vec![key("routes")], &known, errors);
    for (i, r) in raw.inhibit_rules.iter().enumerate() {
        for (field, list) in [
            ("source_matchers", &r.source_matchers),
            ("target_matchers", &r.target_matchers),
        ] {
            for (j, m) in list.iter().enumerate() {
                if let Err(e) = Matcher::parse(m) {
                    errors.push(cfg.error_at(
                        &[
                            key("inhibit_rules"),
                            PathSeg::Index(i),
                            key(field),
                            PathSeg::Index(j),
                        ],
                        e.to_string(),
                    ));
                }
            }
        }
    }
}

fn check_route_intervals(
    cfg: &LoadedConfig,
    routes: &[RouteConfig],
    path: Vec<PathSeg>,
    known: &[&str],
    errors: &mut ConfigErrors,
) {
    for (i, r) in routes.iter().enumerate() {
        let mut here = path.clone();
        here.push(PathSeg::Index(i));
        for (field, list) in [
            ("mute_time_intervals", &r.mute_time_intervals),
            ("active_time_intervals", &r.active_time_intervals),
        ] {
            for (j, name) in list.iter().flatten().enumerate() {
                if known.contains(&name.as_str()) {
                    continue;
                }
                let mut msg = format!("unknown time interval `{name}`");
                match closest(name, known) {
                    Some(c) => msg.push_str(&format!("; did you mean `{c}`?")),
                    None if known.is_empty() => msg.push_str(" (no time_intervals are defined)"),
                    None => msg.push_str(&format!(" (time_intervals: {})", known.join(", "))),
                }
                let mut p = here.clone();
                p.extend([key(field), PathSeg::Index(j)]);
                errors.push(cfg.error_at(&p, msg));
            }
        }
        let mut children = here.clone();
        children.push(key("routes"));
        check_route_intervals(cfg, &r.routes, children, known, errors);
    }
}

/// What is legal but surely not meant, each at its place.
pub fn warnings(cfg: &LoadedConfig) -> Vec<ConfigError> {
    let mut out = Vec::new();
    for (i, r) in cfg.raw.inhibit_rules.iter().enumerate() {
        for (j, label) in r.equal.iter().enumerate() {
            if let Some(why) = never_equal(r, label) {
                out.push(cfg.error_at(
                    &[
                        key("inhibit_rules"),
                        PathSeg::Index(i),
                        key("equal"),
                        PathSeg::Index(j),
                    ],
                    format!("`{label}`: {why}: this rule never inhibits anything"),
                ));
            }
        }
    }
    out
}

/// Why no source and target of `rule` can have equal values of `label`, if the matchers
/// fix it on one side to a value the other side's matchers refuse.
fn never_equal(rule: &InhibitRuleConfig, label: &str) -> Option<String> {
    let parse = |list: &[String]| -> Vec<Matcher> {
        list.iter()
            .filter_map(|m| Matcher::parse(m).ok())
            .filter(|m| m.name == label)
            .collect()
    };
    let (source, target) = (parse(&rule.source_matchers), parse(&rule.target_matchers));
    for (fixed, other, side) in [(&source, &target, "source"), (&target, &source, "target")] {
        for f in fixed.iter().filter(|m| m.op == MatchOp::Equal) {
            if let Some(o) = other.iter().find(|o| !o.matches(&f.value)) {
                return Some(format!(
                    "{side}_matchers fix it to `{}`, which `{o}` refuses",
                    f.value
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::config::load::load_str;

    const BASE: &str =
        "version: 1\nendpoints:\n  - { name: hook, kind: webhook, url: 'http://x' }\n";

    fn errors(text: &str) -> Vec<String> {
        load_str("r.yaml", &format!("{BASE}{text}"), &|_| None)
            .expect_err("should be refused")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn intervals_are_checked_at_their_place() {
        let e = errors(
            "time_intervals:
  - name: weekend
    time_intervals:
      - weekdays: [saturday, sunday]
        location: Mars/Base
  - name: nights
    time_intervals:
      - times: [{start_time: '18:00', end_time: '06:00'}]
routes:
  - to: [hook]
    mute_time_intervals: [weekand]
    active_time_intervals: [office]
",
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("r.yaml:8:19:") && m.contains("IANA")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("r.yaml:11:16:") && m.contains("before end_time")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("r.yaml:14:27:") && m.contains("did you mean `weekend`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("r.yaml:15:29:")
                    && m.contains("unknown time interval `office`")),
            "{e:?}"
        );
    }

    #[test]
    fn an_equal_label_the_matchers_make_unequal_is_a_warning() {
        let text = format!(
            "{BASE}inhibit_rules:
  - source_matchers: ['severity=\"critical\"']
    target_matchers: ['severity=\"warning\"']
    equal: [cluster, severity]
"
        );
        let cfg = load_str("r.yaml", &text, &|_| None).expect("valid");
        let w: Vec<String> = super::warnings(&cfg)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("r.yaml:7:22:"), "{w:?}");
        assert!(w[0].contains("never inhibits"), "{w:?}");
    }
}
