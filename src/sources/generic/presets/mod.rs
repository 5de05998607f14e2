//! Presets of the generic mapping: one YAML file per tool whose body is plain JSON, compiled
//! into the binary (data, not code). `preset: NAME` on a `kind: generic` source fills in the
//! preset's `mapping:`; each key the source sets itself wins (value maps word by word).
//!
//! A preset file is `{about: "...", mapping: {...}}`; `about` says which of the tool's
//! settings the mapping expects (docs/INTEGRATIONS.md has the step-by-step).

use serde::Deserialize;

use crate::config::types::MappingConfig;

/// Every preset: (name, its YAML).
const PRESETS: &[(&str, &str)] = &[
    ("appdynamics", include_str!("appdynamics.yaml")),
    ("azure-monitor", include_str!("azure-monitor.yaml")),
    ("betterstack", include_str!("betterstack.yaml")),
    (
        "bitbucket-pipelines",
        include_str!("bitbucket-pipelines.yaml"),
    ),
    ("datadog", include_str!("datadog.yaml")),
    ("dynatrace", include_str!("dynatrace.yaml")),
    ("elastic-kibana", include_str!("elastic-kibana.yaml")),
    ("gcp-monitoring", include_str!("gcp-monitoring.yaml")),
    ("github-actions", include_str!("github-actions.yaml")),
    ("honeycomb", include_str!("honeycomb.yaml")),
    ("newrelic", include_str!("newrelic.yaml")),
    ("pingdom", include_str!("pingdom.yaml")),
    ("splunk", include_str!("splunk.yaml")),
    ("uptimerobot", include_str!("uptimerobot.yaml")),
    ("zabbix", include_str!("zabbix.yaml")),
];

/// One preset file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// What the preset is for and which of the tool's settings it expects.
    pub about: String,
    /// The mapping it fills in.
    pub mapping: MappingConfig,
}

/// The names of every preset, sorted.
pub fn names() -> Vec<&'static str> {
    let mut n: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
    n.sort_unstable();
    n
}

/// The preset `name`, or why there is none (with the closest name when one is near).
pub fn get(name: &str) -> Result<Preset, String> {
    let Some((_, yaml)) = PRESETS.iter().find(|(n, _)| *n == name) else {
        let close = names()
            .into_iter()
            .map(|n| (strsim::levenshtein(&name.to_lowercase(), n), n))
            .filter(|(d, _)| *d <= (name.len() / 3).max(2))
            .min()
            .map(|(_, n)| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        return Err(format!(
            "unknown preset `{name}`{close}; presets: {}",
            names().join(", ")
        ));
    };
    serde_yaml::from_str(yaml).map_err(|e| format!("preset `{name}` does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::generic::Mapping;

    #[test]
    fn every_preset_parses_and_builds() {
        for name in names() {
            let p = get(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(!p.about.trim().is_empty(), "{name}");
            Mapping::build(&p.mapping).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_closest() {
        if let Some(first) = names().first() {
            let typo = format!("{first}x");
            let err = get(&typo).unwrap_err();
            assert!(err.contains(&format!("did you mean `{first}`")), "{err}");
        }
        assert!(get("no-such-tool-at-all")
            .unwrap_err()
            .contains("presets: "));
    }
}
