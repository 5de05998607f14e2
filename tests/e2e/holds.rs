//! Issue 15, held events, with the real binary on both stores: silences through
//! Alertmanager's v2 API driven by the real `amtool` (Debian package
//! `prometheus-alertmanager`, installed by scripts/test.sh): a silenced incident is recorded
//! and shown but not delivered, and notified when the silence is expired; a resolve of an
//! incident notified before the silence goes out. Inhibition, and a route's mute interval.

use std::process::Command;

use chrono::Timelike as _;

use crate::support::{eventually, skipped, Receiver, Switchyard, TestStore};

const BEARER: (&str, &str) = ("Authorization", "Bearer t0ken");

fn config(store: &TestStore, url: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  admin_token: adm1n
sources:
  - name: prometheus
    kind: alertmanager
    auth: {{ bearer: t0ken }}
endpoints:
  - {{ name: hook, kind: webhook, url: "{url}", retry: {{ schedule: [50ms] }} }}
routes:
  - to: [hook]
{}"#,
        store.section()
    )
}

/// An Alertmanager body of one alert (a new `summary` changes the incident's title).
fn alert(name: &str, status: &str, summary: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"version": "4", "status": status, "alerts": [{
        "status": status,
        "labels": {"alertname": name, "severity": "warning", "service": "batch"},
        "annotations": {"summary": summary},
        "startsAt": "2026-11-22T10:00:00Z",
        "endsAt": if status == "resolved" { "2026-11-22T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
    }]}))
    .unwrap()
}

/// `amtool` against `sy`, with the admin token as bearer credentials; (exit code, stdout,
/// stderr). None when amtool is not installed.
struct Amtool {
    dir: tempfile::TempDir,
    url: String,
}

impl Amtool {
    fn new(sy: &Switchyard) -> Option<Amtool> {
        if Command::new("amtool").arg("--version").output().is_err() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("http.yml"),
            "authorization:\n  type: Bearer\n  credentials: adm1n\n",
        )
        .unwrap();
        Some(Amtool {
            dir,
            url: sy.url(""),
        })
    }

    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new("amtool");
        cmd.args(args)
            .arg(format!("--alertmanager.url={}", self.url))
            .arg(format!(
                "--http.config.file={}",
                self.dir.path().join("http.yml").display()
            ));
        let out = actix_rt::task::spawn_blocking(move || cmd.output().expect("run amtool"))
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

async fn admin(sy: &Switchyard, method: &str, path: &str) -> (u16, serde_json::Value) {
    let client = awc::Client::default();
    let req = match method {
        "DELETE" => client.delete(sy.url(path)),
        _ => client.get(sy.url(path)),
    };
    let mut resp = req
        .insert_header(("Authorization", "Bearer adm1n"))
        .send()
        .await
        .expect("admin request");
    let body = resp.body().limit(8 << 20).await.expect("body");
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (resp.status().as_u16(), json)
}

fn types_of(rx: &Receiver, alertname: &str) -> Vec<String> {
    rx.delivered()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["data"]["incident"]["labels"]["alertname"] == alertname)
        .map(|b| b["type"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn amtool_silences_hold_then_release(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&store, &rx.url));
    let Some(am) = Amtool::new(&sy) else {
        skipped(
            "amtool_silences_hold_then_release",
            "amtool is not installed (Debian: apt-get install prometheus-alertmanager)",
        );
        return;
    };
    // An incident notified before any silence.
    let (s, b) = sy
        .ingest("prometheus", &alert("Before", "firing", "first"), &[BEARER])
        .await;
    assert_eq!(s, 202, "{b}");
    rx.wait_delivered(1).await;

    // amtool adds a silence for both alertnames.
    let (code, id, err) = am
        .run(&[
            "silence",
            "add",
            "alertname=~\"Batch|Before\"",
            "--comment=maintenance",
            "--author=ops",
            "--duration=1h",
        ])
        .await;
    assert_eq!(code, 0, "amtool silence add: {err}");
    assert!(!id.is_empty() && !id.contains(' '), "an id: {id}");
    // ... and queries it back, with Alertmanager's fields.
    let (code, out, err) = am.run(&["silence", "query", "-o", "json"]).await;
    assert_eq!(code, 0, "amtool silence query: {err}");
    let listed: serde_json::Value = serde_json::from_str(&out).expect(&out);
    let s = &listed[0];
    assert_eq!(s["id"], id.as_str(), "{listed}");
    assert_eq!(s["status"]["state"], "active");
    assert_eq!(s["createdBy"], "ops");
    assert_eq!(s["comment"], "maintenance");
    assert_eq!(s["matchers"][0]["name"], "alertname");
    assert_eq!(s["matchers"][0]["isRegex"], true);
    let (code, quiet, _) = am
        .run(&["silence", "query", "-q", "alertname=~Batch.*"])
        .await;
    assert_eq!((code, quiet.as_str()), (0, id.as_str()));
    // Without the token: refused.
    let client = awc::Client::default();
    let resp = client.get(sy.url("/api/v2/silences")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // A silenced alert: recorded and shown, not delivered (a later alert that no silence
    // matches is, so the silenced one had its chance).
    let (s, b) = sy
        .ingest("prometheus", &alert("Batch", "firing", "first"), &[BEARER])
        .await;
    assert_eq!(s, 202, "{b}");
    let batch_id = b["events"][0]["incident_id"].as_str().unwrap().to_string();
    // The incident notified before changes (held) and resolves (delivered: not left open).
    for body in [
        alert("Before", "firing", "second"),
        alert("Before", "resolved", "second"),
        alert("Control", "firing", "first"),
    ] {
        let (s, b) = sy.ingest("prometheus", &body, &[BEARER]).await;
        assert_eq!(s, 202, "{b}");
    }
    eventually("the control alert delivered", || async {
        !types_of(&rx, "Control").is_empty()
    })
    .await;
    eventually("the resolve of the incident notified before", || async {
        types_of(&rx, "Before") == ["incident.created", "incident.resolved"]
    })
    .await;
    assert!(types_of(&rx, "Batch").is_empty(), "silenced");
    let (code, inc) = admin(&sy, "GET", &format!("/api/v1/incidents/{batch_id}")).await;
    assert_eq!(code, 200, "{inc}");
    assert_eq!(inc["silenced_by"], serde_json::json!([id]), "{inc}");
    assert_eq!(inc["status"], "triggered");
    assert_eq!(
        sy.metric("switchyard_events_held_total{cause=\"silenced\"}")
            .await,
        Some(2.0),
        "Batch created and Before updated"
    );

    // amtool expires it: the silenced incident, still open, is notified now.
    let (code, _, err) = am.run(&["silence", "expire", &id]).await;
    assert_eq!(code, 0, "amtool silence expire: {err}");
    eventually("the silenced incident notified", || async {
        types_of(&rx, "Batch") == ["incident.created"]
    })
    .await;
    let (_, inc) = admin(&sy, "GET", &format!("/api/v1/incidents/{batch_id}")).await;
    assert_eq!(inc["silenced_by"], serde_json::json!([]), "{inc}");
    let (code, out, _) = am
        .run(&["silence", "query", "--expired", "-o", "json"])
        .await;
    assert_eq!(code, 0);
    assert!(out.contains("\"expired\""), "{out}");
    // Expiring it again is refused; an unknown id is 404.
    let (code, _, _) = am.run(&["silence", "expire", &id]).await;
    assert_ne!(code, 0);
    let (code, _) = admin(&sy, "DELETE", "/api/v2/silence/nope").await;
    assert_eq!(code, 404);
    // The resolved one stays resolved: nothing more of it.
    assert_eq!(types_of(&rx, "Before").len(), 2);
}
crate::both_stores!(amtool_silences_hold_then_release);

/// A silence that ends by itself releases what it held: the incident's latest state, once.
async fn a_silence_expires_by_itself(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&store, &rx.url));
    let now = chrono::Utc::now();
    let made = std::time::Instant::now();
    let body = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "Batch", "isRegex": false}],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::TimeDelta::seconds(3)).to_rfc3339(),
        "createdBy": "test", "comment": "short"
    });
    let client = awc::Client::default();
    let mut resp = client
        .post(sy.url("/api/v2/silences"))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send_json(&body)
        .await
        .unwrap();
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{answer}");
    // Bad input is refused and changes nothing.
    for bad in [
        serde_json::json!({"matchers": [], "startsAt": now, "endsAt": now, "createdBy": "x", "comment": ""}),
        serde_json::json!({"matchers": [{"name": "a", "value": ".*", "isRegex": true}], "startsAt": now.to_rfc3339(), "endsAt": (now + chrono::TimeDelta::hours(1)).to_rfc3339(), "createdBy": "x", "comment": ""}),
        serde_json::json!({"matchers": [{"name": "a", "value": "(", "isRegex": true}], "startsAt": now.to_rfc3339(), "endsAt": (now + chrono::TimeDelta::hours(1)).to_rfc3339(), "createdBy": "x", "comment": ""}),
        serde_json::json!({"nonsense": true}),
    ] {
        let resp = client
            .post(sy.url("/api/v2/silences"))
            .insert_header(("Authorization", "Bearer adm1n"))
            .send_json(&bad)
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{bad}");
    }
    let (_, all) = admin(&sy, "GET", "/api/v2/silences").await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");

    for summary in ["first", "second"] {
        let (s, b) = sy
            .ingest("prometheus", &alert("Batch", "firing", summary), &[BEARER])
            .await;
        assert_eq!(s, 202, "{b}");
    }
    let got = rx.wait_delivered(1).await;
    let b = got[0].json();
    assert_eq!(b["type"], "incident.created", "{b}");
    assert_eq!(b["data"]["incident"]["title"], "second", "its latest state");
    assert!(
        got[0].at.duration_since(made) >= std::time::Duration::from_millis(2500),
        "when the silence ended"
    );
    let (_, listed) = admin(&sy, "GET", "/api/v2/silences").await;
    assert_eq!(listed[0]["status"]["state"], "expired", "{listed}");
    assert_eq!(rx.delivered().len(), 1, "once");
}
crate::both_stores!(a_silence_expires_by_itself);

/// Inhibition: while ClusterDown is open, warnings of its cluster are recorded and shown
/// (`inhibited_by`) but not notified; when it resolves, those still open are notified.
async fn an_open_source_inhibits_its_targets_until_it_resolves(store: TestStore) {
    let rx = Receiver::start();
    let yaml = config(&store, &rx.url).replace(
        "routes:\n",
        r#"inhibit_rules:
  - source_matchers: ['alertname="ClusterDown"']
    target_matchers: ['severity=~"warning|info"']
    equal: [cluster]
routes:
"#,
    );
    let sy = Switchyard::start(&yaml);
    let body = |name: &str, cluster: &str, severity: &str, status: &str| {
        serde_json::to_vec(&serde_json::json!({"version": "4", "status": status, "alerts": [{
            "status": status,
            "labels": {"alertname": name, "severity": severity, "cluster": cluster},
            "startsAt": "2026-11-22T10:00:00Z",
            "endsAt": if status == "resolved" { "2026-11-22T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
        }]}))
        .unwrap()
    };
    let (s, b) = sy
        .ingest(
            "prometheus",
            &body("ClusterDown", "a", "critical", "firing"),
            &[BEARER],
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let source_id = b["events"][0]["incident_id"].as_str().unwrap().to_string();
    let (s, b) = sy
        .ingest(
            "prometheus",
            &body("DiskFull", "a", "warning", "firing"),
            &[BEARER],
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let target_id = b["events"][0]["incident_id"].as_str().unwrap().to_string();
    // Another cluster's warning, and a critical of the same cluster: not targets.
    for b in [
        body("DiskFull", "b", "warning", "firing"),
        body("NodeDown", "a", "critical", "firing"),
    ] {
        let (s, _) = sy.ingest("prometheus", &b, &[BEARER]).await;
        assert_eq!(s, 202);
    }
    rx.wait_delivered(3).await;
    let names: Vec<(String, String)> = rx
        .delivered()
        .iter()
        .map(|r| {
            let l = &r.json()["data"]["incident"]["labels"];
            (
                l["alertname"].as_str().unwrap().to_string(),
                l["cluster"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        !names.contains(&("DiskFull".into(), "a".into())),
        "inhibited: {names:?}"
    );
    let (code, inc) = admin(&sy, "GET", &format!("/api/v1/incidents/{target_id}")).await;
    assert_eq!(code, 200);
    assert_eq!(inc["inhibited_by"], serde_json::json!([source_id]), "{inc}");
    assert_eq!(
        sy.metric("switchyard_events_held_total{cause=\"inhibited\"}")
            .await,
        Some(1.0)
    );

    // The source resolves: its resolve goes out, and the target, still open, is notified.
    let (s, _) = sy
        .ingest(
            "prometheus",
            &body("ClusterDown", "a", "critical", "resolved"),
            &[BEARER],
        )
        .await;
    assert_eq!(s, 202);
    eventually("the inhibited incident notified", || async {
        types_of(&rx, "DiskFull").len() == 2
    })
    .await;
    let released = rx
        .delivered()
        .into_iter()
        .map(|r| r.json())
        .find(|b| b["data"]["incident"]["id"] == target_id.as_str())
        .expect("the target's notification");
    assert_eq!(released["type"], "incident.created", "{released}");
    assert_eq!(
        types_of(&rx, "ClusterDown"),
        ["incident.created", "incident.resolved"]
    );
    let (_, inc) = admin(&sy, "GET", &format!("/api/v1/incidents/{target_id}")).await;
    assert_eq!(inc["inhibited_by"], serde_json::json!([]), "{inc}");
}
crate::both_stores!(an_open_source_inhibits_its_targets_until_it_resolves);

/// A mute interval covering now holds a route's events (its other routes' go out); at the
/// interval's end the incident's latest state goes out once.
async fn a_mute_interval_holds_until_it_ends(store: TestStore) {
    // The interval is this minute (UTC); with too little of it left, the next one.
    let mut now = chrono::Utc::now();
    if chrono::Timelike::second(&now) > 45 {
        wait_until(
            now + chrono::TimeDelta::seconds(61 - i64::from(chrono::Timelike::second(&now))),
        )
        .await;
        now = chrono::Utc::now();
    }
    let end = now + chrono::TimeDelta::minutes(1);
    let hhmm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let end_text = if hhmm(end) == "00:00" {
        "24:00".to_string()
    } else {
        hhmm(end)
    };
    let ends_at = end
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap();
    let rx = Receiver::start();
    let yaml = config(&store, &rx.url).replace(
        "routes:\n  - to: [hook]\n",
        &format!(
            r#"time_intervals:
  - name: now
    time_intervals: [{{ times: [{{ start_time: '{}', end_time: '{end_text}' }}] }}]
routes:
  - matchers: ['alertname="Control"']
    to: [hook]
  - to: [hook]
    mute_time_intervals: [now]
"#,
            hhmm(now)
        ),
    );
    assert!(yaml.contains("mute_time_intervals"), "{yaml}");
    let sy = Switchyard::start(&yaml);
    let mut muted_id = String::new();
    for body in [
        alert("Batch", "firing", "first"),
        alert("Batch", "firing", "second"),
        alert("Control", "firing", "first"),
    ] {
        let (s, b) = sy.ingest("prometheus", &body, &[BEARER]).await;
        assert_eq!(s, 202, "{b}");
        if muted_id.is_empty() {
            muted_id = b["events"][0]["incident_id"].as_str().unwrap().to_string();
        }
    }
    eventually("the control alert delivered", || async {
        !types_of(&rx, "Control").is_empty()
    })
    .await;
    if chrono::Utc::now() < ends_at {
        assert!(types_of(&rx, "Batch").is_empty(), "muted");
        let (_, inc) = admin(&sy, "GET", &format!("/api/v1/incidents/{muted_id}")).await;
        assert_eq!(inc["muted_by"], serde_json::json!(["now"]), "{inc}");
    }
    assert_eq!(
        sy.metric("switchyard_events_held_total{cause=\"muted\"}")
            .await,
        Some(2.0)
    );
    wait_until(ends_at).await;
    eventually("the muted incident released", || async {
        !types_of(&rx, "Batch").is_empty()
    })
    .await;
    let got: Vec<serde_json::Value> = rx
        .delivered()
        .iter()
        .map(|r| r.json())
        .filter(|b| b["data"]["incident"]["labels"]["alertname"] == "Batch")
        .collect();
    assert_eq!(got.len(), 1, "once: {got:?}");
    assert_eq!(got[0]["type"], "incident.created");
    assert_eq!(
        got[0]["data"]["incident"]["title"], "second",
        "its latest state"
    );
    let at = chrono::DateTime::parse_from_rfc3339(got[0]["timestamp"].as_str().unwrap()).unwrap();
    assert!(at >= ends_at, "released at the interval's end: {at}");
}
crate::both_stores!(a_mute_interval_holds_until_it_ends);

/// Waits (polling the clock) until `t`.
async fn wait_until(t: chrono::DateTime<chrono::Utc>) {
    while chrono::Utc::now() < t {
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// redis: a silence made through one instance holds on another, and a hold outlives the
/// instance that made it: with that one killed, the other releases it at the silence's end,
/// once.
#[actix_rt::test]
async fn redis_silences_and_holds_are_shared_and_survive_a_kill() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let cfg = config(&store, &rx.url);
    let a = Switchyard::start(&cfg);
    let mut b = Switchyard::start(&cfg);
    let now = chrono::Utc::now();
    let client = awc::Client::default();
    let resp = client
        .post(a.url("/api/v2/silences"))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send_json(&serde_json::json!({
            "matchers": [{"name": "alertname", "value": "Batch", "isRegex": false}],
            "startsAt": now.to_rfc3339(),
            "endsAt": (now + chrono::TimeDelta::seconds(4)).to_rfc3339(),
            "createdBy": "test", "comment": "shared"
        }))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // B lists it (and holds by it from then on).
    let (code, listed) = admin(&b, "GET", "/api/v2/silences").await;
    assert_eq!(code, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let (s, body) = b
        .ingest("prometheus", &alert("Batch", "firing", "first"), &[BEARER])
        .await;
    assert_eq!(s, 202, "{body}");
    let id = body["events"][0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, inc) = admin(&a, "GET", &format!("/api/v1/incidents/{id}")).await;
    assert_eq!(
        inc["silenced_by"].as_array().map(Vec::len),
        Some(1),
        "{inc}"
    );
    b.kill();
    // A releases it when the silence ends.
    let got = rx.wait_delivered(1).await;
    assert_eq!(got[0].json()["type"], "incident.created");
    assert_eq!(got[0].json()["data"]["incident"]["id"], id.as_str());
    eventually("the hold removed", || async {
        admin(&a, "GET", &format!("/api/v1/incidents/{id}")).await.1["silenced_by"]
            == serde_json::json!([])
    })
    .await;
    store.wait_queue_settled("hook").await;
    assert_eq!(rx.delivered().len(), 1, "once");
}
