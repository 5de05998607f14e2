//! Endpoint kinds end to end: the real binary delivers to a local receiver standing in for
//! each service (`url` override), and the test checks the exact requests (method, path,
//! headers, JSON body), the acknowledge / resolve flow, and the retry on 429 / 5xx. Also body
//! templates, the rate limit and the circuit breaker.

use crate::support::check_yaml;
use std::time::Duration;

use serde_json::{json, Value};

use crate::both_stores;
use crate::support::{Received, Receiver, Switchyard, TestStore};

pub const ADMIN: &str = "adm1n";

/// A config with the generic source `open` (no auth), the admin token `adm1n`, one endpoint
/// `ep` (its kind-specific lines given, indented by four spaces) taking everything, and the
/// `store:` section of `store`.
pub fn config(store: &TestStore, endpoint: &str) -> String {
    let store = store.section();
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  admin_token: {ADMIN}
sources:
  - name: open
    kind: generic
endpoints:
  - name: ep
{endpoint}
    timeout: 2s
routes:
  - matchers: []
    to: [ep]
{store}"#
    )
}

/// Calls the admin API; returns (status, JSON body).
pub async fn admin_call(
    sy: &Switchyard,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let client = awc::Client::default();
    let mut req = client.request(method.parse().unwrap(), sy.url(path));
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    let mut resp = req.send().await.expect("admin request");
    let body = resp.body().limit(8 << 20).await.expect("admin body");
    (
        resp.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// Polls an admin GET until `done` holds for its body (or the deadline passes).
pub async fn admin_until(
    sy: &Switchyard,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = std::time::Instant::now();
    loop {
        let (_, v) = admin_call(sy, "GET", path, Some(ADMIN)).await;
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < crate::support::DEADLINE,
            "timed out waiting for {what}: {v}"
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Ingests one generic alert; returns the incident id of its first event.
pub async fn alert(sy: &Switchyard, body: Value) -> Option<String> {
    let (s, resp) = sy.ingest("open", body.to_string().as_bytes(), &[]).await;
    assert_eq!(s, 202, "{resp}");
    resp["events"][0]["incident_id"]
        .as_str()
        .map(str::to_string)
}

fn base(rx: &Receiver) -> String {
    rx.url.trim_end_matches("/hook").to_string()
}

fn ua_ok(r: &Received) -> bool {
    r.header("user-agent")
        .is_some_and(|u| u.starts_with("switchyard/"))
}

both_stores!(slack_sends_text_and_blocks_retries_429_and_paces_one_per_second);
async fn slack_sends_text_and_blocks_retries_429_and_paces_one_per_second(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(429, &[("Retry-After", "1")])]);
    let sy = Switchyard::start(&config(
        &store,
        &format!(
            "    kind: slack\n    url: {}\n    retry: {{ schedule: [50ms, 50ms] }}",
            rx.url
        ),
    ));
    alert(&sy, json!({"title": "Disk full", "id": "s-1", "severity": "critical", "description": "a <b> & c"})).await;
    alert(
        &sy,
        json!({"title": "Disk full", "id": "s-1", "status": "resolved"}),
    )
    .await;
    let got = rx.wait_delivered(2).await;
    let all = rx.received();
    assert_eq!(all.len(), 3, "429, then created, then resolved");
    for r in &all {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(ua_ok(r));
    }
    let created = got[0].json();
    assert_eq!(created["text"], "[CRITICAL] Disk full (open)");
    assert_eq!(created["blocks"][0]["type"], "header");
    assert_eq!(
        created["blocks"][0]["text"],
        json!({"type": "plain_text", "text": "[CRITICAL] Disk full", "emoji": true})
    );
    assert_eq!(
        created["blocks"][1]["fields"][0],
        json!({"type": "mrkdwn", "text": "*Severity*\ncritical"})
    );
    assert_eq!(created["blocks"][2]["text"]["text"], "a &lt;b&gt; &amp; c");
    let resolved = got[1].json();
    assert_eq!(
        resolved["blocks"][0]["text"]["text"],
        "[RESOLVED] Disk full"
    );
    assert_eq!(
        resolved["blocks"][1]["fields"][1]["text"],
        "*Status*\nresolved"
    );
    // 1/s per webhook: the retry came after Retry-After (1s), and resolved a token later.
    let gap = all[2].at - all[1].at;
    eprintln!(
        "measured: slack retry after 429 waited {:?}; next message {gap:?} later",
        all[1].at - all[0].at
    );
    assert!(
        gap >= Duration::from_millis(900),
        "resolved waited for the rate limit: {gap:?}"
    );
}

both_stores!(teams_sends_an_adaptive_card_and_retries_5xx);
async fn teams_sends_an_adaptive_card_and_retries_5xx(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(500, &[])]);
    let sy = Switchyard::start(&config(
        &store,
        &format!(
            "    kind: teams\n    url: {}\n    retry: {{ schedule: [50ms] }}",
            rx.url
        ),
    ));
    let id = alert(&sy, json!({"title": "API slow", "id": "t-1", "severity": "warning", "url": "https://grafana.example.com/d/1"})).await.unwrap();
    rx.wait_delivered(1).await;
    let resolve = format!("/api/v1/incidents/{id}/resolve");
    assert_eq!(admin_call(&sy, "POST", &resolve, Some(ADMIN)).await.0, 200);
    let got = rx.wait_delivered(2).await;
    assert_eq!(rx.received().len(), 3);
    assert_eq!(
        got[1].json()["attachments"][0]["content"]["body"][0]["text"],
        "[RESOLVED] API slow",
        "resolved through the admin API"
    );
    let card = got[0].json();
    assert_eq!(card["type"], "message");
    let att = &card["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    assert_eq!(
        att["content"]["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(att["content"]["body"][0]["text"], "[WARNING] API slow");
    assert_eq!(att["content"]["body"][0]["color"], "Warning");
    assert_eq!(
        att["content"]["actions"][0]["url"],
        "https://grafana.example.com/d/1"
    );
    assert_eq!(
        got[1].json()["attachments"][0]["content"]["body"][0]["color"],
        "Good"
    );
}

#[test]
fn check_refuses_retired_teams_connector_urls() {
    let c = check_yaml(&config(&TestStore::memory(), "    kind: teams\n    url: https://contoso.webhook.office.com/webhookb2/x@y/IncomingWebhook/a/b"));
    let (path, err) = (&c.path, &c.err);
    assert_eq!(c.code, 1, "{err}");
    assert!(
        err.contains(&format!("{}:11:", path)),
        "located at the url: {err}"
    );
    assert!(err.contains("Office 365 connector"), "{err}");
}

both_stores!(discord_sends_an_embed_without_mentions_and_retries_5xx);
async fn discord_sends_an_embed_without_mentions_and_retries_5xx(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(503, &[])]);
    let sy = Switchyard::start(&config(
        &store,
        &format!(
            "    kind: discord\n    url: {}\n    retry: {{ schedule: [50ms] }}",
            rx.url
        ),
    ));
    let id = alert(
        &sy,
        json!({"title": "@everyone DB down", "id": "d-1", "severity": "critical"}),
    )
    .await
    .unwrap();
    rx.wait_delivered(1).await;
    let ack = format!("/api/v1/incidents/{id}/acknowledge");
    assert_eq!(admin_call(&sy, "POST", &ack, Some(ADMIN)).await.0, 200);
    rx.wait_delivered(2).await;
    alert(
        &sy,
        json!({"id": "d-1", "title": "@everyone DB down", "status": "resolved"}),
    )
    .await;
    let got = rx.wait_delivered(3).await;
    assert_eq!(rx.received().len(), 4);
    let acked = &got[1].json()["embeds"][0];
    assert_eq!(acked["title"], "[ACKNOWLEDGED] @everyone DB down");
    assert_eq!(acked["color"], 0x95A5A6);
    assert_eq!(got[2].json()["embeds"][0]["color"], 0x2EB67D);
    let b = got[0].json();
    assert_eq!(b["allowed_mentions"], json!({"parse": []}));
    let e = &b["embeds"][0];
    assert_eq!(e["title"], "[CRITICAL] @everyone DB down");
    assert_eq!(e["color"], 0xE01E5A);
    assert_eq!(
        e["fields"][0],
        json!({"name": "Severity", "value": "critical", "inline": true})
    );
}

both_stores!(pagerduty_triggers_acknowledges_and_resolves_with_the_dedup_key);
async fn pagerduty_triggers_acknowledges_and_resolves_with_the_dedup_key(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(429, &[])]);
    let sy = Switchyard::start_with_env(
        &config(
        &store,
        &format!(
            "    kind: pagerduty\n    url: {}\n    routing_key: ${{PD_KEY}}\n    retry: {{ schedule: [50ms] }}",
            rx.url
        )),
        &[("PD_KEY", "pd-r0uting-key-secret")],
    );
    let id = alert(
        &sy,
        json!({"title": "Checkout errors", "id": "pd-1", "severity": "error"}),
    )
    .await
    .unwrap();
    rx.wait_delivered(1).await;
    let (s, inc) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/incidents/{id}/acknowledge"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 200, "{inc}");
    rx.wait_delivered(2).await;
    alert(
        &sy,
        json!({"title": "Checkout errors", "id": "pd-1", "status": "resolved"}),
    )
    .await;
    let got = rx.wait_delivered(3).await;
    assert_eq!(rx.received().len(), 4, "one 429 retried");
    let trigger = got[0].json();
    assert_eq!(got[0].path, "/hook");
    assert_eq!(trigger["routing_key"], "pd-r0uting-key-secret");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "pd-1");
    assert_eq!(trigger["payload"]["summary"], "Checkout errors");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["payload"]["source"], "open");
    assert!(trigger["payload"]["timestamp"].is_string());
    assert_eq!(
        got[1].json(),
        json!({"routing_key": "pd-r0uting-key-secret", "event_action": "acknowledge", "dedup_key": "pd-1"})
    );
    assert_eq!(
        got[2].json(),
        json!({"routing_key": "pd-r0uting-key-secret", "event_action": "resolve", "dedup_key": "pd-1"})
    );
    assert!(
        !sy.logs().contains("pd-r0uting-key-secret"),
        "the routing key is never logged"
    );
}

both_stores!(opsgenie_creates_updates_acknowledges_and_closes_by_alias);
async fn opsgenie_creates_updates_acknowledges_and_closes_by_alias(store: TestStore) {
    let rx = Receiver::start();
    rx.answer(&[(502, &[])]);
    let sy = Switchyard::start_with_env(
        &config(
        &store,
        &format!(
            "    kind: opsgenie\n    url: {}\n    api_key: ${{OG_KEY}}\n    retry: {{ schedule: [50ms] }}",
            base(&rx)
        )),
        &[("OG_KEY", "og-key-123")],
    );
    let first = json!({"title": "Queue backlog", "id": "og 1", "severity": "warning", "labels": {"team": "ops"}});
    let id = alert(&sy, first).await.unwrap();
    rx.wait_delivered(1).await;
    let worse = json!({"title": "Queue backlog", "id": "og 1", "severity": "critical", "labels": {"team": "ops"}});
    alert(&sy, worse).await;
    rx.wait_delivered(3).await;
    let ack = format!("/api/v1/incidents/{id}/acknowledge");
    assert_eq!(admin_call(&sy, "POST", &ack, Some(ADMIN)).await.0, 200);
    rx.wait_delivered(4).await;
    alert(
        &sy,
        json!({"title": "Queue backlog", "id": "og 1", "status": "resolved"}),
    )
    .await;
    let got = rx.wait_delivered(5).await;
    assert_eq!(rx.received().len(), 6, "one 502 retried");
    let calls: Vec<_> = got
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/v2/alerts", ""),
            ("PUT", "/v2/alerts/og%201/priority", "identifierType=alias"),
            ("POST", "/v2/alerts/og%201/notes", "identifierType=alias"),
            (
                "POST",
                "/v2/alerts/og%201/acknowledge",
                "identifierType=alias"
            ),
            ("POST", "/v2/alerts/og%201/close", "identifierType=alias"),
        ]
    );
    assert!(got
        .iter()
        .all(|r| r.header("authorization") == Some("GenieKey og-key-123")));
    let b = got[0].json();
    assert_eq!(b["message"], "Queue backlog");
    assert_eq!(b["alias"], "og 1");
    assert_eq!(b["priority"], "P3");
    assert_eq!(b["tags"], json!(["team:ops"]));
    assert_eq!(b["source"], "switchyard/open");
    assert_eq!(got[1].json(), json!({"priority": "P1"}));
    assert_eq!(
        got[2].json()["note"],
        "Updated: severity: warning → critical"
    );
    assert_eq!(got[4].json()["source"], "switchyard");
}

both_stores!(jira_creates_an_issue_remembers_its_key_and_transitions_it);
async fn jira_creates_an_issue_remembers_its_key_and_transitions_it(store: TestStore) {
    let rx = Receiver::start();
    rx.answer_json(&[
        (503, "{}"),
        (201, r#"{"id": "10001", "key": "OPS-42", "self": "x"}"#),
        (201, r#"{"id": "100"}"#),
        (200, r#"{"transitions": [{"id": "11", "name": "In Progress"}, {"id": "31", "name": "Close", "to": {"name": "Closed"}}]}"#),
        (204, ""),
    ]);
    let sy = Switchyard::start_with_env(
        &config(
        &store,
        &format!(
            "    kind: jira\n    url: {}\n    username: ops@example.com\n    token: ${{JIRA_TOKEN}}\n    project: OPS\n    issue_type: Incident\n    resolve_transition: close\n    retry: {{ schedule: [50ms] }}",
            base(&rx)
        )),
        &[("JIRA_TOKEN", "jira-t0ken")],
    );
    let id = alert(&sy, json!({"title": "Payments failing", "id": "j-1", "severity": "critical", "description": "5xx from psp"})).await.unwrap();
    rx.wait_delivered(1).await;
    let ack = format!("/api/v1/incidents/{id}/acknowledge");
    assert_eq!(admin_call(&sy, "POST", &ack, Some(ADMIN)).await.0, 200);
    rx.wait_delivered(2).await;
    alert(
        &sy,
        json!({"title": "Payments failing", "id": "j-1", "status": "resolved"}),
    )
    .await;
    let got = rx.wait_delivered(4).await;
    let all = rx.received();
    let calls: Vec<_> = all
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.answered))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST", "/rest/api/3/issue", 503),
            ("POST", "/rest/api/3/issue", 201),
            ("POST", "/rest/api/3/issue/OPS-42/comment", 201),
            ("GET", "/rest/api/3/issue/OPS-42/transitions", 200),
            ("POST", "/rest/api/3/issue/OPS-42/transitions", 204),
        ]
    );
    // basic auth: base64("ops@example.com:jira-t0ken")
    assert!(all
        .iter()
        .all(|r| r.header("authorization") == Some("Basic b3BzQGV4YW1wbGUuY29tOmppcmEtdDBrZW4=")));
    let f = &got[0].json()["fields"];
    assert_eq!(f["project"], json!({"key": "OPS"}));
    assert_eq!(f["issuetype"], json!({"name": "Incident"}));
    assert_eq!(f["summary"], "Payments failing");
    assert_eq!(f["labels"], json!(["switchyard", "switchyard-j-1"]));
    assert_eq!(f["description"]["type"], "doc");
    assert_eq!(
        f["description"]["content"][0]["content"][0]["text"],
        "5xx from psp"
    );
    let comment = got[1].json();
    assert_eq!(comment["body"]["type"], "doc");
    assert_eq!(
        comment["body"]["content"][0]["content"][0]["text"],
        "switchyard: acknowledged"
    );
    assert_eq!(got[3].json(), json!({"transition": {"id": "31"}}));
    assert_remembered(&store, &id, "OPS-42").await;
}

/// On redis, the remembered record of `ep` for the incident is in the store.
async fn assert_remembered(store: &TestStore, incident_id: &str, want: &str) {
    if store.redis_url.is_none() {
        return;
    }
    use deadpool_redis::redis::AsyncCommands;
    let mut conn = store.redis_conn().await;
    let got: Option<String> = conn
        .get(format!("{}:ref:ep:{incident_id}", store.key_prefix))
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(want), "remembered in redis");
}

both_stores!(servicenow_creates_updates_on_acknowledge_and_resolves);
async fn servicenow_creates_updates_on_acknowledge_and_resolves(store: TestStore) {
    let rx = Receiver::start();
    rx.answer_json(&[
        (
            201,
            r#"{"result": {"sys_id": "9d385017c611228701d22104cc95c371", "number": "INC0010001"}}"#,
        ),
        (500, "{}"),
    ]);
    let sy = Switchyard::start_with_env(
        &config(
        &store,
        &format!(
            "    kind: servicenow\n    url: {}\n    username: svc\n    token: ${{SNOW_PW}}\n    close_code: Resolved by request\n    retry: {{ schedule: [50ms] }}",
            base(&rx)
        )),
        &[("SNOW_PW", "snow-pw")],
    );
    let id = alert(
        &sy,
        json!({"title": "VPN down", "id": "sn-1", "severity": "critical"}),
    )
    .await
    .unwrap();
    rx.wait_delivered(1).await;
    let (s, _) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/incidents/{id}/acknowledge"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 200);
    rx.wait_delivered(2).await;
    let (s, _) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/incidents/{id}/resolve"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(s, 200);
    let got = rx.wait_delivered(3).await;
    let all = rx.received();
    assert_eq!(all.len(), 4, "the first PATCH got 500 and was retried");
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("POST", "/api/now/table/incident")
    );
    assert_eq!(got[0].header("accept"), Some("application/json"));
    assert_eq!(
        got[0].header("authorization"),
        Some("Basic c3ZjOnNub3ctcHc=")
    );
    let c = got[0].json();
    assert_eq!(c["short_description"], "VPN down");
    assert_eq!(c["correlation_id"], "sn-1");
    assert_eq!(
        (c["impact"].as_str(), c["urgency"].as_str()),
        (Some("1"), Some("1"))
    );
    let sys = "/api/now/table/incident/9d385017c611228701d22104cc95c371";
    assert_eq!(
        (got[1].method.as_str(), got[1].path.as_str()),
        ("PATCH", sys)
    );
    assert_eq!(got[1].json()["state"], "2");
    assert_eq!(
        (got[2].method.as_str(), got[2].path.as_str()),
        ("PATCH", sys)
    );
    let r = got[2].json();
    assert_eq!(
        (r["state"].as_str(), r["close_code"].as_str()),
        (Some("6"), Some("Resolved by request"))
    );
    assert!(r["close_notes"].is_string());
    assert_remembered(&store, &id, "9d385017c611228701d22104cc95c371").await;
}

both_stores!(templates_replace_the_body_and_a_render_failure_is_dead_with_its_message);
async fn templates_replace_the_body_and_a_render_failure_is_dead_with_its_message(
    store: TestStore,
) {
    let rx = Receiver::start();
    let yaml = format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  admin_token: {ADMIN}
sources:
  - name: open
    kind: generic
endpoints:
  - name: good
    kind: webhook
    url: {url}
    template: |
      {{"msg": {{{{ (incident.title ~ " is " ~ incident.status) | tojson }}}}, "event": "{{{{ type }}}}"}}
  - name: typo
    kind: webhook
    url: {url}
    template: '{{{{ incident.titel }}}}'
routes:
  - matchers: []
    to: [good, typo]
{store}"#,
        url = rx.url,
        store = store.section()
    );
    let sy = Switchyard::start(&yaml);
    alert(&sy, json!({"title": "Cache cold", "id": "tp-1"})).await;
    let got = rx.wait_delivered(1).await;
    assert_eq!(
        got[0].json(),
        json!({"msg": "Cache cold is triggered", "event": "incident.created"})
    );
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=typo&state=dead",
        "the typo delivery to be dead",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let err = dead["deliveries"][0]["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("template rendering failed") && err.contains("undefined"),
        "{err}"
    );
    assert_eq!(
        rx.received().len(),
        1,
        "nothing was sent for the broken template"
    );
}

#[test]
fn check_reports_template_syntax_errors_with_line_and_column() {
    let c = check_yaml(&config(&TestStore::memory(), "    kind: webhook\n    url: http://127.0.0.1:9/x\n    template: |\n      {\"a\": 1,\n       \"b\": {{ incident.title }\n      }"));
    let (path, err) = (&c.path, &c.err);
    assert_eq!(c.code, 1, "{err}");
    assert!(err.contains(&format!("{}:13:", path)), "{err}");
    // ` "b": {{ incident.title }`: the lone `}` at column 25 of the template's line 2.
    assert!(
        err.contains("template line 2 column 25: syntax error: unexpected `}`"),
        "{err}"
    );
}

both_stores!(the_circuit_opens_after_repeated_failures_then_probes_and_drains_in_order);
async fn the_circuit_opens_after_repeated_failures_then_probes_and_drains_in_order(
    store: TestStore,
) {
    let rx = Receiver::start();
    rx.answer(&[(500, &[]), (500, &[])]);
    let sy = Switchyard::start(&config(
        &store,
        &format!(
        "    kind: webhook\n    url: {}\n    retry: {{ schedule: [50ms, 50ms, 50ms, 50ms, 50ms, 50ms] }}\n    circuit_breaker: {{ failures: 2, open_for: 700ms }}",
        rx.url
    )));
    alert(&sy, json!({"title": "Flappy", "id": "cb-1"})).await;
    crate::support::wait_for("two failures", || (rx.received().len() >= 2).then_some(())).await;
    crate::support::eventually("the circuit is reported open", || async {
        sy.metric("switchyard_endpoint_circuit_open{endpoint=\"ep\"}")
            .await
            == Some(1.0)
    })
    .await;
    // The circuit is open: these wait in the queue.
    alert(
        &sy,
        json!({"title": "Flappy", "id": "cb-1", "status": "resolved"}),
    )
    .await;
    alert(&sy, json!({"title": "Other", "id": "cb-2"})).await;
    let got = rx.wait_delivered(3).await;
    let all = rx.received();
    assert_eq!(all.len(), 5, "two failures, one probe, then the rest");
    let paused = all[2].at - all[1].at;
    eprintln!(
        "measured: circuit open for {paused:?} (open_for 700ms); drained 3 in {:?}",
        all[4].at - all[2].at
    );
    assert!(
        paused >= Duration::from_millis(600),
        "no attempt while open: {paused:?}"
    );
    let order: Vec<_> = got
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["data"]["incident"]["dedup_key"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                v["type"].as_str().unwrap().to_string(),
            )
        })
        .filter(|(k, _)| k == "cb-1")
        .map(|(_, t)| t)
        .collect();
    assert_eq!(order, ["incident.created", "incident.resolved"]);
    assert_eq!(
        sy.metric("switchyard_endpoint_circuit_open{endpoint=\"ep\"}")
            .await,
        Some(0.0)
    );
}

both_stores!(a_runaway_template_fails_its_delivery_fast_and_the_others_go_on);
async fn a_runaway_template_fails_its_delivery_fast_and_the_others_go_on(store: TestStore) {
    let rx = Receiver::start();
    let runaway = Receiver::start();
    // `ep` renders nested loops of 10^10 iterations; `plain` is an ordinary webhook.
    let cfg = config(
        &store,
        &format!(
            "    kind: webhook\n    url: {}\n    template: '{{% for a in range(100000) %}}{{% for b in range(100000) %}}x{{% endfor %}}{{% endfor %}}'",
            runaway.url
        ),
    )
    .replace(
        "routes:\n  - matchers: []\n    to: [ep]",
        &format!("  - name: plain\n    kind: webhook\n    url: {}\nroutes:\n  - matchers: []\n    to: [ep, plain]", rx.url),
    );
    assert!(cfg.contains("to: [ep, plain]"), "{cfg}");
    let sy = Switchyard::start(&cfg);
    for i in 0..3 {
        alert(
            &sy,
            json!({"title": format!("Loop {i}"), "id": format!("loop-{i}")}),
        )
        .await;
    }
    rx.wait_delivered(3).await;
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=ep&state=dead",
        "the runaway template's deliveries to be dead",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 3),
    )
    .await;
    let error = dead["deliveries"][0]["attempts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("template rendering stopped") && error.contains("budget of 500000 units"),
        "{dead}"
    );
    assert!(runaway.received().is_empty(), "nothing sent for it");
    // The admin API still answers at once.
    let (s, _) = admin_call(&sy, "GET", "/api/v1/incidents", Some(ADMIN)).await;
    assert_eq!(s, 200);
}
