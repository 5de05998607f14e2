//! The checks of routes.yaml that serde cannot make: names (unique, well-formed, referenced
//! endpoints exist, with a "did you mean" for a misspelt one), matchers and their regexes,
//! durations, rates and event types. Every problem is reported, each at its place.
//!
//! Checks that need runtime parts (auth options, listen address, endpoint kinds) are made by
//! the `build()` steps, which report through [`LoadedConfig::error_at`] the same way.

use std::collections::HashMap;

use crate::config::duration::{parse_duration, parse_rate};
use crate::config::load::{LoadedConfig, PathSeg};
use crate::config::matcher::Matcher;
use crate::config::types::{RouteConfig, SmtpSecurity, SourceKind, StoreKind};
use crate::config::ConfigErrors;
use crate::model::EventType;

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

/// Every problem of `cfg` that serde did not already refuse.
pub fn validate(cfg: &LoadedConfig) -> ConfigErrors {
    let raw = &cfg.raw;
    let mut errors = ConfigErrors::default();
    let mut err = |path: Vec<PathSeg>, msg: String| errors.push(cfg.error_at(&path, msg));

    if raw.version != 1 {
        err(
            vec![key("version")],
            format!(
                "unsupported version {} (this switchyard reads version 1)",
                raw.version
            ),
        );
    }
    if raw.server.max_body_bytes == 0 {
        err(
            vec![key("server"), key("max_body_bytes")],
            "must be at least 1".into(),
        );
    }
    if raw.server.max_inflight_requests == Some(0) {
        err(
            vec![key("server"), key("max_inflight_requests")],
            "must be at least 1".into(),
        );
    }
    if raw.server.max_pending_deliveries == Some(0) {
        err(
            vec![key("server"), key("max_pending_deliveries")],
            "must be at least 1".into(),
        );
    }
    if let Some(t) = &raw.server.log_summary_every {
        if let Err(x) = parse_duration(t) {
            err(vec![key("server"), key("log_summary_every")], x.to_string());
        }
    }
    if let Some(t) = &raw.server.shutdown_grace {
        if let Err(x) = parse_duration(t) {
            err(vec![key("server"), key("shutdown_grace")], x.to_string());
        }
    }
    if let Some(t) = &raw.server.body_timeout {
        match parse_duration(t) {
            Ok(d) if d.is_zero() => err(
                vec![key("server"), key("body_timeout")],
                "must be more than 0".into(),
            ),
            Ok(_) => {}
            Err(x) => err(vec![key("server"), key("body_timeout")], x.to_string()),
        }
    }
    match (&raw.store.path, raw.store.kind) {
        (Some(p), StoreKind::File) if p.trim().is_empty() => err(
            vec![key("store"), key("path")],
            "must name a directory".into(),
        ),
        (Some(_), StoreKind::Memory | StoreKind::Redis) => err(
            vec![key("store"), key("path")],
            "`path` is for `kind: file`".into(),
        ),
        _ => {}
    }
    if raw.store.kind == StoreKind::Redis && raw.store.url.as_deref().is_none_or(str::is_empty) {
        err(
            vec![key("store"), key("kind")],
            "`kind: redis` needs `url`".into(),
        );
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let at = |k: &str| vec![key("sources"), PathSeg::Index(i), key(k)];
        if !valid_name(&s.name) {
            err(
                at("name"),
                format!("source name `{}`: use letters, digits, `-`, `_` and `.` (it is part of the URL)", s.name),
            );
        }
        if let Some(first) = seen.insert(&s.name, i) {
            err(
                at("name"),
                format!("duplicate source name `{}` (also sources[{first}])", s.name),
            );
        }
        match (s.kind, &s.plugin) {
            (SourceKind::Plugin, None) => err(
                at("kind"),
                "`kind: plugin` needs `plugin: NAME` (the name the plugin reports)".into(),
            ),
            (k, Some(_)) if k != SourceKind::Plugin => err(
                at("plugin"),
                format!(
                    "`plugin` is only for `kind: plugin` sources, this one is `{}`",
                    k.as_str()
                ),
            ),
            _ => {}
        }
    }

    let mut endpoint_names: Vec<&str> = raw.endpoints.iter().map(|e| e.name.as_str()).collect();
    endpoint_names.dedup();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, e) in raw.endpoints.iter().enumerate() {
        let at = |k: &str| vec![key("endpoints"), PathSeg::Index(i), key(k)];
        if !valid_name(&e.name) {
            err(
                at("name"),
                format!(
                    "endpoint name `{}`: use letters, digits, `-`, `_` and `.`",
                    e.name
                ),
            );
        }
        if let Some(first) = seen.insert(&e.name, i) {
            err(
                at("name"),
                format!(
                    "duplicate endpoint name `{}` (also endpoints[{first}])",
                    e.name
                ),
            );
        }
        if raw.server.endpoint_policy.require_https {
            if e.smtp
                .as_ref()
                .is_some_and(|s| s.security == SmtpSecurity::None)
            {
                err(
                    at("smtp"),
                    format!(
                        "endpoint `{}`: smtp.security none sends in the clear (server.endpoint_policy.require_https)",
                        e.name
                    ),
                );
            }
            if let Some(url) = &e.url {
                if !url.trim().to_ascii_lowercase().starts_with("https://") {
                    err(
                        at("url"),
                        format!(
                            "endpoint `{}`: not https (server.endpoint_policy.require_https)",
                            e.name
                        ),
                    );
                }
            }
        }
        if let Some(t) = &e.timeout {
            match parse_duration(t) {
                Ok(d) if d.is_zero() => err(at("timeout"), "timeout must be more than 0".into()),
                Ok(_) => {}
                Err(x) => err(at("timeout"), x.to_string()),
            }
        }
        if let Some(r) = &e.retry {
            for (j, d) in r.schedule.iter().enumerate() {
                if let Err(x) = parse_duration(d) {
                    let mut p = at("retry");
                    p.extend([key("schedule"), PathSeg::Index(j)]);
                    err(p, x.to_string());
                }
            }
        }
        if let Some(r) = &e.rate_limit {
            if let Err(x) = parse_rate(r) {
                err(at("rate_limit"), x.to_string());
            }
        }
        for (j, t) in e.events.iter().flatten().enumerate() {
            if let Err(x) = EventType::matching(t) {
                let mut p = at("events");
                p.push(PathSeg::Index(j));
                err(p, x);
            }
        }
    }

    let mut names = HashMap::new();
    check_routes(
        cfg,
        &raw.routes,
        vec![key("routes")],
        &endpoint_names,
        &mut names,
        &mut errors,
    );
    for (j, name) in raw.default.iter().enumerate() {
        if let Some(msg) = unknown_endpoint(name, &endpoint_names) {
            errors.push(cfg.error_at(&[key("default"), PathSeg::Index(j)], msg));
        }
    }
    for (j, name) in raw.on_dead.iter().enumerate() {
        let at = [key("on_dead"), PathSeg::Index(j)];
        if let Some(msg) = unknown_endpoint(name, &endpoint_names) {
            errors.push(cfg.error_at(&at, msg));
        } else if let Some(e) = raw.endpoints.iter().find(|e| &e.name == name) {
            if !e.kind.takes_notices() {
                errors.push(cfg.error_at(
                    &at,
                    format!(
                        "endpoint `{name}` is of kind `{}`, which cannot take `delivery.dead` notices (use a webhook or chat endpoint)",
                        e.kind.as_str()
                    ),
                ));
            }
        }
    }
    crate::config::storm_checks::check(cfg, &mut errors);
    errors
}

fn check_routes<'a>(
    cfg: &LoadedConfig,
    routes: &'a [RouteConfig],
    path: Vec<PathSeg>,
    endpoints: &[&str],
    names: &mut HashMap<&'a str, ()>,
    errors: &mut ConfigErrors,
) {
    for (i, r) in routes.iter().enumerate() {
        let mut here = path.clone();
        here.push(PathSeg::Index(i));
        let at = |k: &str, j: Option<usize>| {
            let mut p = here.clone();
            p.push(key(k));
            p.extend(j.map(PathSeg::Index));
            p
        };
        if let Some(n) = &r.name {
            if names.insert(n.as_str(), ()).is_some() {
                errors.push(cfg.error_at(&at("name", None), format!("duplicate route name `{n}`")));
            }
        }
        for (j, m) in r.matchers.iter().enumerate() {
            if let Err(e) = Matcher::parse(m) {
                errors.push(cfg.error_at(&at("matchers", Some(j)), e.to_string()));
            }
        }
        for (j, name) in r.to.iter().flatten().enumerate() {
            if let Some(msg) = unknown_endpoint(name, endpoints) {
                errors.push(cfg.error_at(&at("to", Some(j)), msg));
            }
        }
        for k in ["group_wait", "group_interval", "repeat_interval"] {
            let value = match k {
                "group_wait" => &r.group_wait,
                "group_interval" => &r.group_interval,
                _ => &r.repeat_interval,
            };
            if let Some(t) = value {
                match parse_duration(t) {
                    Ok(d) if d.is_zero() && k != "group_wait" => {
                        errors.push(cfg.error_at(&at(k, None), format!("{k} must be more than 0")))
                    }
                    Ok(_) => {}
                    Err(x) => errors.push(cfg.error_at(&at(k, None), x.to_string())),
                }
            }
        }
        for (j, g) in r.group_by.iter().flatten().enumerate() {
            if g.is_empty() || (g.contains("...") && g != "...") {
                errors.push(cfg.error_at(
                    &at("group_by", Some(j)),
                    format!("`{g}` is not a label name (`...` alone groups by every label)"),
                ));
            }
        }
        check_routes(cfg, &r.routes, at("routes", None), endpoints, names, errors);
    }
}

/// The message for a name that is not an endpoint, with the closest name when one is close.
fn unknown_endpoint(name: &str, endpoints: &[&str]) -> Option<String> {
    if endpoints.contains(&name) {
        return None;
    }
    let mut msg = format!("unknown endpoint `{name}`");
    match closest(name, endpoints) {
        Some(c) => msg.push_str(&format!("; did you mean `{c}`?")),
        None if endpoints.is_empty() => msg.push_str(" (no endpoints are defined)"),
        None => msg.push_str(&format!(" (endpoints: {})", endpoints.join(", "))),
    }
    Some(msg)
}

/// The candidate nearest to `name` by edit distance, when it is near enough to be a typo.
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Letters, digits, `-`, `_`, `.`; not empty.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use crate::config::load::load_str;

    fn errors(text: &str) -> Vec<String> {
        load_str("r.yaml", text, &|_| None)
            .expect_err("should be refused")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    const ENDPOINTS: &str = "endpoints:\n  - { name: ops-slack, kind: webhook, url: 'http://x' }\n";

    #[test]
    fn misspelt_endpoint_gets_a_suggestion_at_its_place() {
        let errs = errors(&format!(
            "version: 1\n{ENDPOINTS}routes:\n  - to: [ops-slak]\n"
        ));
        assert_eq!(
            errs,
            vec!["r.yaml:5:10: unknown endpoint `ops-slak`; did you mean `ops-slack`?"]
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let errs = errors(&format!(
            "version: 2\n{ENDPOINTS}  - {{ name: ops-slack, kind: webhook, timeout: 10 }}\nroutes:\n  - matchers: ['a=~\"(\"']\n    to: [nothing-like-it]\ndefault: [ops-slack, x]\n"
        ));
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(errs[0].starts_with("r.yaml:1:10: unsupported version 2"));
        assert!(errs[1].contains("duplicate endpoint name `ops-slack`"));
        assert!(
            errs[2].starts_with("r.yaml:4:48: `10` is not a duration"),
            "{errs:?}"
        );
        assert!(errs[3].starts_with("r.yaml:6:16: matcher"), "{errs:?}");
        assert!(errs[4].contains("unknown endpoint `nothing-like-it` (endpoints: ops-slack"));
        assert!(
            errs[5].starts_with("r.yaml:8:22: unknown endpoint `x`"),
            "{errs:?}"
        );
    }

    #[test]
    fn names_durations_rates_and_events_are_checked() {
        let errs = errors(
            "version: 1\nsources:\n  - { name: 'a b', kind: generic }\n  - { name: p, kind: plugin }\nendpoints:\n  - name: e\n    kind: webhook\n    rate_limit: fast\n    events: [incident.created, incident.exploded]\n    retry: { schedule: [1m, soon] }\n",
        );
        let all = errs.join("\n");
        assert!(all.contains("r.yaml:3:13: source name `a b`"), "{all}");
        assert!(
            all.contains("r.yaml:4:22: `kind: plugin` needs `plugin: NAME`"),
            "{all}"
        );
        assert!(all.contains("r.yaml:8:17: `fast` is not a rate"), "{all}");
        assert!(
            all.contains("r.yaml:9:32: unknown event type `incident.exploded`"),
            "{all}"
        );
        assert!(
            all.contains("r.yaml:10:29: `soon` is not a duration"),
            "{all}"
        );
    }
}
