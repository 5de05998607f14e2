//! Property-based fuzzing (proptest) of everything that reads untrusted or hand-written text:
//! the built-in adapters (alertmanager, grafana, sentry, generic), the matcher parser, the
//! duration and rate parser, and the config loader with its validation.
//!
//! Inputs are arbitrary bytes and structure-aware mutations of the real payloads in
//! tests/fixtures/payloads/ and of real routes.yaml files: nodes replaced by values of other
//! types, keys dropped or added, bytes flipped, inserted, removed or cut off. The properties:
//! nothing panics, and every error is a clear one (a non-empty message; a JSON syntax error
//! has its line and column, a config error its place in the file).
//!
//! `cargo test` runs a few cases of each (128, a few seconds in all). Fuzz at length with
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test --release --lib fuzz_
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

use crate::config::duration::{parse_duration, parse_rate};
use crate::config::load::load_str;
use crate::config::matcher::{MatchOp, Matcher};
use crate::config::types::{MappingConfig, SourceKind};
use crate::sources::test_fixtures::{fixture, fixture_names, source_config};
use crate::sources::{NormalizeError, SourceSpec};

/// 128 cases per property unless `PROPTEST_CASES` says otherwise; no regression files (a case
/// found is turned into a named regression test instead).
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 128;
    }
    c.failure_persistence = None;
    c
}

mod adapters;
mod loader;
mod parsers;

/// One change to a JSON document, applied to the `at`-th node (in document order, modulo the
/// number of nodes).
#[derive(Debug, Clone)]
enum JsonMutation {
    Replace {
        at: usize,
        with: serde_json::Value,
    },
    RemoveKey {
        at: usize,
    },
    AddKey {
        at: usize,
        key: String,
        value: serde_json::Value,
    },
    Wrap {
        at: usize,
        in_array: bool,
    },
    Truncate {
        at: usize,
    },
}

fn arb_json_leaf() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as V;
    prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::from),
        any::<u64>().prop_map(V::from),
        any::<f64>().prop_map(V::from),
        ".{0,24}".prop_map(V::String),
        // Words the adapters look for, in the wrong places.
        prop::sample::select(vec![
            "firing",
            "resolved",
            "alerting",
            "ok",
            "critical",
            "triggered",
            "0001-01-01T00:00:00Z",
            "2026-13-45T99:99:99Z",
            "9999-12-31T23:59:59Z",
            "-1",
            "",
        ])
        .prop_map(|s| V::String(s.to_string())),
    ]
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    arb_json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,10}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_json_mutation() -> impl Strategy<Value = JsonMutation> {
    prop_oneof![
        4 => (any::<usize>(), arb_json()).prop_map(|(at, with)| JsonMutation::Replace { at, with }),
        3 => any::<usize>().prop_map(|at| JsonMutation::RemoveKey { at }),
        2 => (any::<usize>(), "[a-zA-Z_]{1,12}", arb_json())
            .prop_map(|(at, key, value)| JsonMutation::AddKey { at, key, value }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(at, in_array)| JsonMutation::Wrap { at, in_array }),
        1 => any::<usize>().prop_map(|at| JsonMutation::Truncate { at }),
    ]
}

fn count_nodes(v: &serde_json::Value) -> usize {
    1 + match v {
        serde_json::Value::Array(a) => a.iter().map(count_nodes).sum(),
        serde_json::Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The path (child positions) of the `n`-th node in document order (0 = the root).
fn nth_path(v: &serde_json::Value, n: &mut usize, path: &mut Vec<usize>) -> bool {
    if *n == 0 {
        return true;
    }
    *n -= 1;
    let children: Vec<&serde_json::Value> = match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Object(o) => o.values().collect(),
        _ => return false,
    };
    for (i, c) in children.into_iter().enumerate() {
        path.push(i);
        if nth_path(c, n, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn node_at(root: &mut serde_json::Value, at: usize) -> &mut serde_json::Value {
    let mut n = at % count_nodes(root);
    let mut path = Vec::new();
    assert!(
        nth_path(root, &mut n, &mut path),
        "n is below the node count"
    );
    let mut node = root;
    for i in path {
        node = match node {
            serde_json::Value::Array(a) => &mut a[i],
            serde_json::Value::Object(o) => o.values_mut().nth(i).expect("the path's child"),
            _ => unreachable!("a path goes through collections only"),
        };
    }
    node
}

fn apply(doc: &mut serde_json::Value, m: &JsonMutation) {
    use serde_json::Value as V;
    match m {
        JsonMutation::Replace { at, with } => *node_at(doc, *at) = with.clone(),
        JsonMutation::RemoveKey { at } => match node_at(doc, *at) {
            V::Object(o) if !o.is_empty() => {
                let k = o.keys().nth(at % o.len()).cloned().unwrap();
                o.remove(&k);
            }
            V::Array(a) if !a.is_empty() => {
                a.remove(at % a.len());
            }
            _ => {}
        },
        JsonMutation::AddKey { at, key, value } => {
            if let V::Object(o) = node_at(doc, *at) {
                o.insert(key.clone(), value.clone());
            }
        }
        JsonMutation::Wrap { at, in_array } => {
            let node = node_at(doc, *at);
            let inner = node.take();
            *node = if *in_array {
                V::Array(vec![inner])
            } else {
                serde_json::json!({ "value": inner })
            };
        }
        JsonMutation::Truncate { at } => match node_at(doc, *at) {
            V::Array(a) => a.truncate(at % (a.len() + 1)),
            V::String(s) => {
                let cut = s.char_indices().map(|(i, _)| i).nth(at % (s.len() + 1));
                if let Some(i) = cut {
                    s.truncate(i);
                }
            }
            _ => {}
        },
    }
}

/// One change to the bytes of a document.
#[derive(Debug, Clone)]
enum ByteMutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    Cut { at: usize },
}

fn arb_byte_mutation() -> impl Strategy<Value = ByteMutation> {
    let tokens: Vec<Vec<u8>> = [
        "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "null", "-", "1e999", "\n",
        "\u{0}", "\u{feff}", "\u{e9}", "${", "\t", "  ", "- ", "#", "&a", "*a", "!!str", "'",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect();
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| ByteMutation::Flip { at, bit }),
        3 => (any::<usize>(), prop_oneof![prop::sample::select(tokens), prop::collection::vec(any::<u8>(), 1..8)])
            .prop_map(|(at, bytes)| ByteMutation::Insert { at, bytes }),
        2 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| ByteMutation::Remove { at, len }),
        1 => any::<usize>().prop_map(|at| ByteMutation::Cut { at }),
    ]
}

fn apply_bytes(doc: &mut Vec<u8>, m: &ByteMutation) {
    let n = doc.len();
    match m {
        ByteMutation::Flip { at, bit } if n > 0 => doc[at % n] ^= 1 << bit,
        ByteMutation::Flip { .. } => {}
        ByteMutation::Insert { at, bytes } => {
            let i = at % (n + 1);
            doc.splice(i..i, bytes.iter().copied());
        }
        ByteMutation::Remove { at, len } if n > 0 => {
            let i = at % n;
            doc.drain(i..(i + len).min(n));
        }
        ByteMutation::Remove { .. } => {}
        ByteMutation::Cut { at } => doc.truncate(at % (n + 1)),
    }
}
