//! Issue 15, storm control: grouped routes (`group_by`) send one `group.notification` per
//! group, paced by `group_wait` / `group_interval`, with the real binary on both stores.

use crate::support::{eventually, Received, Receiver, Switchyard, TestStore};

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
  - name: k8s
    matchers: ['cluster=~"c.*"']
    to: [hook]
    group_by: [cluster]
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h
  - name: plain
    to: [hook]
{}"#,
        store.section()
    )
}

/// An Alertmanager body of `n` alerts `alert-<first+i>` in cluster `c<i % 3>`.
fn storm(first: usize, n: usize, status: &str) -> Vec<u8> {
    let alerts: Vec<_> = (first..first + n)
        .map(|i| {
            serde_json::json!({
                "status": status,
                "labels": {"alertname": format!("alert-{i}"), "cluster": format!("c{}", i % 3), "severity": "warning"},
                "startsAt": "2026-11-22T10:00:00Z",
                "endsAt": if status == "resolved" { "2026-11-22T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"version": "4", "status": status, "alerts": alerts}))
        .unwrap()
}

fn group_of(r: &Received) -> serde_json::Value {
    let body = r.json();
    assert_eq!(body["type"], "group.notification", "{body}");
    body["data"]["group"].clone()
}

/// One value of each received group notification, sorted.
fn sorted_by_group<T: Ord>(got: &[Received], value: impl Fn(&serde_json::Value) -> T) -> Vec<T> {
    let mut out: Vec<T> = got.iter().map(|r| value(&group_of(r))).collect();
    out.sort();
    out
}

fn group_key(g: &serde_json::Value) -> String {
    g["key"].as_str().unwrap().to_string()
}

async fn a_storm_gives_one_notification_per_group(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&store, &rx.url));
    // 200 alerts in 3 groups, in 4 requests.
    for part in 0..4 {
        let (status, body) = sy
            .ingest("prometheus", &storm(part * 50, 50, "firing"), &[BEARER])
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let got = rx.wait_delivered(3).await;
    let mut sizes: Vec<(String, usize)> = got
        .iter()
        .map(|r| {
            let g = group_of(r);
            assert_eq!(g["status"], "firing");
            assert_eq!(g["route"], "k8s");
            let n = g["incidents"].as_array().unwrap().len();
            assert_eq!(g["counts"]["firing"], n);
            assert_eq!(g["changed"].as_array().unwrap().len(), n, "all new");
            (g["labels"]["cluster"].as_str().unwrap().to_string(), n)
        })
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        vec![("c0".into(), 67), ("c1".into(), 67), ("c2".into(), 66)]
    );
    // The admin API lists the groups, with their next notification (the repeat).
    let (code, groups) = sy.get("/api/v1/groups").await;
    assert_eq!(code, 401, "{groups}");
    let groups = admin_get(&sy, "/api/v1/groups").await;
    let listed = groups["groups"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{groups}");
    assert!(listed.iter().all(|g| !g["next_notification_at"].is_null()));

    // One alert of each cluster resolves: one more notification per group (each with its
    // one change), group_interval after the group's first.
    let (status, _) = sy
        .ingest("prometheus", &storm(0, 3, "resolved"), &[BEARER])
        .await;
    assert_eq!(status, 202);
    let got = rx.wait_delivered(6).await;
    let mut keys = std::collections::BTreeSet::new();
    for r in &got[3..] {
        let g = group_of(r);
        assert_eq!(g["changed"].as_array().unwrap().len(), 1, "{g}");
        assert_eq!(g["counts"]["resolved"], 1, "{g}");
        assert_eq!(g["status"], "firing", "{g}");
        let first = got[..3]
            .iter()
            .find(|f| group_of(f)["key"] == g["key"])
            .unwrap();
        // Flushes are group_interval (2s) apart; arrivals also differ by each delivery's
        // own time in the queue and on the wire.
        let apart = r.at.duration_since(first.at);
        assert!(
            apart >= std::time::Duration::from_millis(1500),
            "{apart:?} after {}",
            first.json()
        );
        keys.insert(g["key"].as_str().unwrap().to_string());
    }
    assert_eq!(keys.len(), 3, "one notification per changed group");
    assert_eq!(rx.delivered().len(), 6, "nothing more");
}
crate::both_stores!(a_storm_gives_one_notification_per_group);

async fn admin_get(sy: &Switchyard, path: &str) -> serde_json::Value {
    let client = awc::Client::default();
    let mut resp = client
        .get(sy.url(path))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send()
        .await
        .expect("GET");
    let body: serde_json::Value = resp.json().limit(8 << 20).await.expect("json");
    assert_eq!(resp.status().as_u16(), 200, "{body}");
    body
}

/// A group whose incidents all resolve sends one last notification and ends; a new incident
/// for it then begins a new group (group_wait again).
async fn a_resolved_group_ends(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&store, &rx.url));
    let (status, _) = sy
        .ingest("prometheus", &storm(0, 1, "firing"), &[BEARER])
        .await;
    assert_eq!(status, 202);
    let got = rx.wait_delivered(1).await;
    assert_eq!(group_of(&got[0])["status"], "firing");
    let (status, _) = sy
        .ingest("prometheus", &storm(0, 1, "resolved"), &[BEARER])
        .await;
    assert_eq!(status, 202);
    let got = rx.wait_delivered(2).await;
    let g = group_of(&got[1]);
    assert_eq!(g["status"], "resolved", "{g}");
    assert_eq!(g["counts"]["resolved"], 1);
    assert_eq!(got[1].json()["data"]["incident"]["status"], "resolved");
    eventually("the group ended", || async {
        admin_get(&sy, "/api/v1/groups").await["groups"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    })
    .await;
}
crate::both_stores!(a_resolved_group_ends);

/// `repeat_interval` on a route without `group_by`: an open, unacknowledged incident gets an
/// `incident.reminder` every interval until it is acknowledged.
async fn an_open_incident_is_reminded_until_acknowledged(store: TestStore) {
    let rx = Receiver::start();
    let yaml = config(&store, &rx.url).replace(
        "  - name: plain\n    to: [hook]\n",
        "  - name: plain\n    to: [hook]\n    repeat_interval: 1s\n",
    );
    assert!(yaml.contains("repeat_interval: 1s"), "{yaml}");
    let sy = Switchyard::start(&yaml);
    let alert = |name: &str| {
        serde_json::to_vec(
            &serde_json::json!({"version": "4", "status": "firing", "alerts": [{
            "status": "firing", "labels": {"alertname": name},
            "startsAt": "2026-11-22T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}),
        )
        .unwrap()
    };
    let (s, b) = sy.ingest("prometheus", &alert("Stuck"), &[BEARER]).await;
    assert_eq!(s, 202, "{b}");
    let id = b["events"][0]["incident_id"].as_str().unwrap().to_string();
    let of = |id: &str| -> Vec<(String, std::time::Instant)> {
        rx.delivered()
            .iter()
            .filter(|r| r.json()["data"]["incident"]["id"] == id)
            .map(|r| (r.json()["type"].as_str().unwrap().to_string(), r.at))
            .collect()
    };
    eventually("two reminders", || async { of(&id).len() >= 3 }).await;
    let got = of(&id);
    assert_eq!(got[0].0, "incident.created");
    assert_eq!(got[1].0, "incident.reminder");
    assert_eq!(got[2].0, "incident.reminder");
    // Two intervals after the first notification (arrivals also differ by each delivery's
    // own time in the queue).
    assert!(
        got[2].1.duration_since(got[0].1) >= std::time::Duration::from_millis(1500),
        "a repeat_interval apart: {:?}",
        got.iter()
            .map(|(t, at)| (t, at.duration_since(got[0].1)))
            .collect::<Vec<_>>()
    );
    // Acknowledged: no more reminders (while another incident's come in).
    let client = awc::Client::default();
    let resp = client
        .post(sy.url(&format!("/api/v1/incidents/{id}/acknowledge")))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    eventually("the acknowledge", || async {
        of(&id).iter().any(|(t, _)| t == "incident.acknowledged")
    })
    .await;
    let after_ack = of(&id).len();
    let (s, b) = sy.ingest("prometheus", &alert("Other"), &[BEARER]).await;
    assert_eq!(s, 202, "{b}");
    let other = b["events"][0]["incident_id"].as_str().unwrap().to_string();
    eventually("the other incident's two reminders", || async {
        of(&other).len() >= 3
    })
    .await;
    assert_eq!(
        of(&id).len(),
        after_ack,
        "no reminder after the acknowledge"
    );
}
crate::both_stores!(an_open_incident_is_reminded_until_acknowledged);

/// Waits until every group has been notified and has no change waiting, and the queue holds
/// no unfinished delivery: nothing more is on its way.
async fn wait_groups_quiet(sy: &Switchyard, store: &TestStore, groups: usize) {
    eventually("every group notified, nothing changed since", || async {
        let g = admin_get(sy, "/api/v1/groups").await;
        let list = g["groups"].as_array().cloned().unwrap_or_default();
        list.len() == groups
            && list.iter().all(|g| {
                !g["notified_at"].is_null() && g["changed"].as_array().is_some_and(|c| c.is_empty())
            })
    })
    .await;
    store.wait_queue_settled("hook").await;
}

/// redis: `kill -9` during `group_wait` loses nothing and doubles nothing: after the restart
/// each group is notified exactly once, with every incident recorded before the kill.
#[actix_rt::test]
async fn redis_kill_9_during_group_wait_gives_one_notification_per_group() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let cfg = config(&store, &rx.url).replace("group_wait: 1s", "group_wait: 3s");
    assert!(cfg.contains("group_wait: 3s"));
    let mut sy = Switchyard::start(&cfg);
    for part in 0..2 {
        let (status, body) = sy
            .ingest("prometheus", &storm(part * 30, 30, "firing"), &[BEARER])
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let groups = admin_get(&sy, "/api/v1/groups").await;
    assert_eq!(
        groups["groups"].as_array().map(Vec::len),
        Some(3),
        "{groups}"
    );
    sy.kill();
    assert!(rx.delivered().is_empty(), "nothing before group_wait");
    let sy = Switchyard::start(&cfg);
    let got = rx.wait_delivered(3).await;
    let sizes = sorted_by_group(&got, |g| g["incidents"].as_array().unwrap().len());
    assert_eq!(
        sizes,
        vec![20, 20, 20],
        "every incident recorded before the kill"
    );
    wait_groups_quiet(&sy, &store, 3).await;
    assert_eq!(
        rx.delivered().len(),
        3,
        "exactly one notification per group"
    );
}

/// redis: two instances sharing Redis notify each group flush once: the first notification
/// and the one of a later change, whichever instance recorded the alerts.
#[actix_rt::test]
async fn redis_two_instances_give_one_notification_per_group_flush() {
    let store = TestStore::redis();
    let rx = Receiver::start();
    let cfg = config(&store, &rx.url);
    let a = Switchyard::start(&cfg);
    let b = Switchyard::start(&cfg);
    // The storm split between the two instances, and each alert sent to both.
    for part in 0..2 {
        let body = storm(part * 30, 30, "firing");
        let (ra, rb) = futures_util::join!(
            a.ingest("prometheus", &body, &[BEARER]),
            b.ingest("prometheus", &body, &[BEARER])
        );
        assert_eq!(ra.0, 202, "{}", ra.1);
        assert_eq!(rb.0, 202, "{}", rb.1);
    }
    let got = rx.wait_delivered(3).await;
    let mut keys = sorted_by_group(&got, group_key);
    keys.dedup();
    assert_eq!(keys.len(), 3, "one per group");
    wait_groups_quiet(&a, &store, 3).await;
    assert_eq!(
        rx.delivered().len(),
        3,
        "one notification per group, not per instance"
    );
    // A change through each instance: one more flush per group.
    let (s, _) = a
        .ingest("prometheus", &storm(0, 3, "resolved"), &[BEARER])
        .await;
    assert_eq!(s, 202);
    let (s, _) = b
        .ingest("prometheus", &storm(30, 3, "resolved"), &[BEARER])
        .await;
    assert_eq!(s, 202);
    rx.wait_delivered(6).await;
    wait_groups_quiet(&b, &store, 3).await;
    // Each change is in exactly one notification (a flush made by both instances would
    // repeat it); the two batches may fall in one group_interval or two.
    let after: Vec<serde_json::Value> = rx.delivered()[3..].iter().map(group_of).collect();
    let mut changed: std::collections::BTreeMap<String, usize> = Default::default();
    for g in &after {
        *changed
            .entry(g["key"].as_str().unwrap().to_string())
            .or_default() += g["changed"].as_array().unwrap().len();
    }
    assert_eq!(changed.len(), 3, "{after:?}");
    assert!(
        changed.values().all(|n| *n == 2),
        "each change once: {after:?}"
    );
    let ids: std::collections::BTreeSet<String> = rx
        .delivered()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), rx.delivered().len(), "no event twice");
}

/// A reload keeps the groups of the routes that are still there, and their timers: the
/// notifications go out when they were due before it, once each (Alertmanager resets its
/// groups on a reload: prometheus/alertmanager#3407).
async fn a_reload_keeps_groups_and_their_timers(store: TestStore) {
    let rx = Receiver::start();
    let yaml = config(&store, &rx.url).replace("group_wait: 1s", "group_wait: 3s");
    let sy = Switchyard::start(&yaml);
    let (status, body) = sy
        .ingest("prometheus", &storm(0, 3, "firing"), &[BEARER])
        .await;
    assert_eq!(status, 202, "{body}");
    let due = |groups: serde_json::Value| -> Vec<(String, String)> {
        let mut due: Vec<_> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let at = g["next_notification_at"].as_str().unwrap_or_default();
                (g["key"].as_str().unwrap().to_string(), at.to_string())
            })
            .collect();
        due.sort();
        due
    };
    let before = due(admin_get(&sy, "/api/v1/groups").await);
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(before.iter().all(|(_, at)| !at.is_empty()), "{before:?}");

    // Another route and endpoint come; the grouped route stays as it was.
    let spare = format!(
        "endpoints:\n  - {{ name: spare, kind: webhook, url: \"{}\" }}\n",
        rx.url
    );
    let changed = yaml
        .replace(
            "  - name: plain\n    to: [hook]\n",
            "  - name: db\n    matchers: ['team=\"db\"']\n    to: [spare]\n  - name: plain\n    to: [hook]\n",
        )
        .replace("endpoints:\n", &spare);
    assert!(
        changed.contains("name: spare") && changed.contains("name: db"),
        "{changed}"
    );
    std::fs::write(sy.config_path(), &changed).unwrap();
    let (code, answer) =
        crate::endpoints::admin_call(&sy, "POST", "/api/v1/reload", Some("adm1n")).await;
    assert_eq!(code, 200, "{answer}");

    let after = due(admin_get(&sy, "/api/v1/groups").await);
    assert_eq!(after, before, "the groups and their due times are kept");
    let got = rx.wait_delivered(3).await;
    let keys = sorted_by_group(&got, group_key);
    let want: Vec<String> = before.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys, want,
        "one notification per group, as due before the reload"
    );
    // Each group's next notification is its repeat now (1h), not a second group_wait.
    eventually("the repeat armed", || async {
        due(admin_get(&sy, "/api/v1/groups").await)
            .iter()
            .zip(&before)
            .all(|((_, now), (_, was))| now > was)
    })
    .await;
    assert_eq!(rx.delivered().len(), 3, "nothing more");
}
crate::both_stores!(a_reload_keeps_groups_and_their_timers);
