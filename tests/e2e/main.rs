//! End-to-end tests: the real `switchyard` binary, real HTTP over loopback, real payloads.

mod adapters;
mod admin;
mod browser;
mod chat_kinds;
mod cli;
mod delivery;
mod deploy;
mod docs;
mod email;
mod endpoints;
mod expiry;
mod file_store;
mod hardening;
mod holds;
mod ingest;
mod integrations;
mod operator;
mod plugins;
mod prometheus;
mod recovery;
mod redis_admin;
mod redis_lease;
mod redis_settle;
mod redis_store;
mod signing;
mod smtp_sink;
mod sns;
mod storms;
mod support;
mod ui;

/// A routes.yaml for tests: one alertmanager source (bearer `t0ken`), one generic source
/// (HMAC secret `s3cret`), one webhook endpoint `hook` at `url` with a fast retry schedule.
#[allow(dead_code)] // for tests that only need the memory store
pub fn base_config(url: &str, extra_server: &str) -> String {
    config_for(&support::TestStore::memory(), url, extra_server)
}

/// [`base_config`] with the `store:` section of `store`.
pub fn config_for(store: &support::TestStore, url: &str, extra_server: &str) -> String {
    let store = store.section();
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  max_body_bytes: 65536
{extra_server}
sources:
  - name: prometheus
    kind: alertmanager
    auth: {{ bearer: t0ken }}
  - name: custom
    kind: generic
    labels: {{ team: platform }}
    auth: {{ hmac: {{ secret: s3cret }} }}
    mapping: {{ title: /alert/name, dedup_key: /alert/id }}
  - name: open
    kind: generic
endpoints:
  - name: hook
    kind: webhook
    url: {url}
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    headers: {{ X-Team: ops }}
    timeout: 2s
    retry: {{ schedule: [50ms, 100ms] }}
routes:
  - name: everything
    matchers: []
    to: [hook]
{store}"#
    )
}
