//! The file store's promises with real `switchyard` processes: a `kill -9` under load loses
//! no accepted event, retries resume with their attempts and times, a torn write is cut off
//! with a warning, a second process on the same directory is refused, a full disk is
//! answered 503 without losing what was accepted, and a backup starts on its own.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config_for;
use crate::support::{eventually, skipped, wait_for, Receiver, Switchyard, TestStore, DEADLINE};

/// The incident id of each delivered event, with how many times it arrived.
fn arrivals(rx: &Receiver) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in rx.delivered() {
        let id = r.json()["data"]["incident"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *out.entry(id).or_default() += 1;
    }
    out
}

/// Posts distinct alerts to `base` until a request fails (the process was killed); the
/// incident ids of those answered 202.
async fn sender(base: String, who: usize, accepted: Arc<Mutex<Vec<String>>>) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    for i in 0.. {
        let body = format!(r#"{{"title": "Load {who}-{i}", "id": "load-{who}-{i}"}}"#);
        let sent = client
            .post(format!("{base}/ingest/open"))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body)
            .await;
        let Ok(mut resp) = sent else { return };
        let Ok(bytes) = resp.body().await else { return };
        if resp.status().as_u16() != 202 {
            continue;
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(id) = json["events"][0]["incident_id"].as_str() {
            accepted.lock().unwrap().push(id.to_string());
        }
    }
}

#[actix_rt::test]
async fn kill_9_under_load_then_restart_delivers_every_accepted_event() {
    let store = TestStore::file();
    let rx = Receiver::start();
    // Slow answers: deliveries are out (and queued) when the process dies.
    rx.delay_answers(Some(Duration::from_millis(20)));
    let cfg = config_for(&store, &rx.url, "");
    let mut sy = Switchyard::start(&cfg);
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..8)
        .map(|who| actix_rt::spawn(sender(sy.base.clone(), who, accepted.clone())))
        .collect();
    wait_for("300 alerts accepted", || {
        (accepted.lock().unwrap().len() >= 300).then_some(())
    })
    .await;
    sy.kill();
    for s in senders {
        let _ = s.await;
    }
    let accepted = accepted.lock().unwrap().clone();
    let at_kill = rx.delivered().len();
    rx.delay_answers(None);

    let sy = Switchyard::start(&cfg);
    eventually("every accepted event delivered", || async {
        let got = arrivals(&rx);
        accepted.iter().all(|id| got.contains_key(id))
    })
    .await;
    // What is delivered now stays delivered (no late resend).
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let got = arrivals(&rx);
    let twice: usize = got.values().map(|n| n - 1).sum();
    eprintln!(
        "kill -9 under load: {} accepted, {at_kill} delivered before the kill, {} events delivered in all, {twice} sent again after the restart",
        accepted.len(),
        got.len()
    );
    assert!(
        twice <= 8 * 64,
        "at most the deliveries out at the kill are sent again: {twice}"
    );
    assert!(got.values().all(|n| *n <= 2), "never more than twice");
    drop(sy);
}

/// A config whose deliveries all fail with `rx` answering 503, retried 10 s apart.
fn slow_retry_config(store: &TestStore, url: &str) -> String {
    config_for(store, url, "  admin_token: adm1n\n").replace(
        "retry: { schedule: [50ms, 100ms] }",
        "retry: { schedule: [10s] }",
    )
}

#[actix_rt::test]
async fn after_a_kill_9_retries_resume_with_their_attempts_and_times() {
    let store = TestStore::file();
    let rx = Receiver::start();
    rx.fail_with(Some(503));
    let cfg = slow_retry_config(&store, &rx.url);
    assert!(cfg.contains("[10s]"), "{cfg}");
    let mut sy = Switchyard::start(&cfg);
    let (s, b) = sy
        .ingest("open", br#"{"title": "Retry me", "id": "r-1"}"#, &[])
        .await;
    assert_eq!(s, 202, "{b}");
    let list = |sy: &Switchyard| {
        let url = sy.url("/api/v1/deliveries?endpoint=hook");
        async move {
            let mut resp = awc::Client::default()
                .get(url)
                .insert_header(("Authorization", "Bearer adm1n"))
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = resp.json().await.unwrap();
            v["deliveries"][0].clone()
        }
    };
    let before = {
        let mut got = serde_json::Value::Null;
        for _ in 0..1000 {
            got = list(&sy).await;
            if got["state"] == "failed" {
                break;
            }
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        got
    };
    assert_eq!(before["state"], "failed", "{before}");
    // A settle is written after the admin API can see it; a record call's 202 comes after
    // everything before it is written and synced: the same alert again (a repeat) waits
    // for the failed attempt's frame.
    let (s, b) = sy
        .ingest("open", br#"{"title": "Retry me", "id": "r-1"}"#, &[])
        .await;
    assert_eq!(s, 202, "{b}");
    sy.kill();
    let sy = Switchyard::start(&cfg);
    let after = list(&sy).await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["state"], "failed");
    assert_eq!(after["attempts"], before["attempts"], "attempts kept");
    assert_eq!(
        after["next_attempt_at"].as_str().map(|t| &t[..19]),
        before["next_attempt_at"].as_str().map(|t| &t[..19]),
        "the retry time is kept"
    );
    assert_eq!(
        rx.received().len(),
        1,
        "not sent again before its retry time"
    );
}

#[actix_rt::test]
async fn a_torn_write_is_cut_off_with_a_warning() {
    let store = TestStore::file();
    let rx = Receiver::start();
    let cfg = config_for(&store, &rx.url, "  admin_token: adm1n\n");
    let mut sy = Switchyard::start(&cfg);
    for id in ["t-1", "t-2"] {
        let body = format!(r#"{{"title": "Torn {id}", "id": "{id}"}}"#);
        assert_eq!(sy.ingest("open", body.as_bytes(), &[]).await.0, 202);
    }
    rx.wait_delivered(2).await;
    assert_eq!(sy.terminate(), Some(0));
    let dir = store.file_dir.as_ref().unwrap().path();
    let journal = dir.join("journal-0000000000000000.log");
    let len = std::fs::metadata(&journal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let sy = Switchyard::start(&cfg);
    let logs = sy.logs();
    assert!(logs.contains("torn write"), "{logs}");
    assert!(
        std::fs::read_dir(dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".torn-")),
        "the torn bytes are kept aside"
    );
    // Both incidents were recorded before the cut frame (the last settle).
    let mut resp = awc::Client::default()
        .get(sy.url("/api/v1/incidents?limit=10"))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["incidents"].as_array().unwrap().len(), 2, "{v}");
}

#[actix_rt::test]
async fn a_second_process_on_the_same_directory_refuses_to_start() {
    let store = TestStore::file();
    let rx = Receiver::start();
    let cfg = config_for(&store, &rx.url, "");
    let sy = Switchyard::start(&cfg);
    let other = tempfile::tempdir().unwrap();
    let path = other.path().join("routes.yaml");
    std::fs::write(&path, &cfg).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "-c"])
        .arg(&path)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is in use by another switchyard process")
            && stderr.contains(&format!("pid {}", sy.pid())),
        "{stderr}"
    );
}

#[actix_rt::test]
async fn a_backup_starts_as_a_store_of_its_own() {
    let store = TestStore::file();
    let rx = Receiver::start();
    let cfg = config_for(&store, &rx.url, "  admin_token: adm1n\n");
    let sy = Switchyard::start(&cfg);
    let (s, _) = sy
        .ingest("open", br#"{"title": "Backed up", "id": "b-1"}"#, &[])
        .await;
    assert_eq!(s, 202);
    let mut resp = awc::Client::default()
        .post(sy.url("/api/v1/store/backup"))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let backup = std::path::PathBuf::from(v["dir"].as_str().unwrap());
    let restored_cfg = config_for(&TestStore::memory(), &rx.url, "  admin_token: adm1n\n")
        .replace("store:\n  kind: memory\n", &TestStore::file_in(&backup));
    let restored = Switchyard::start(&restored_cfg);
    let mut resp = awc::Client::default()
        .get(restored.url("/api/v1/incidents"))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["incidents"][0]["dedup_key"], "b-1", "{v}");
}

/// A size-limited tmpfs, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: usize) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[actix_rt::test]
async fn a_full_disk_is_answered_503_and_loses_nothing_accepted() {
    let Some(disk) = SmallDisk::mount(1 << 20) else {
        skipped(
            "a_full_disk_is_answered_503_and_loses_nothing_accepted",
            "cannot mount a size-limited tmpfs here (needs root)",
        );
        return;
    };
    let data = disk.dir.path().join("data");
    let rx = Receiver::start();
    let cfg = config_for(&TestStore::memory(), &rx.url, "  admin_token: adm1n\n")
        .replace("store:\n  kind: memory\n", &TestStore::file_in(&data));
    let mut sy = Switchyard::start(&cfg);
    // Fill most of the disk, then post alerts of 20 KB until one is refused.
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 700 << 10]).unwrap();
    let text = "x".repeat(20_000);
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..100 {
        let body = format!(r#"{{"title": "Full {i}", "id": "full-{i}", "description": "{text}"}}"#);
        let (s, b) = sy.ingest("open", body.as_bytes(), &[]).await;
        match s {
            202 => accepted.push(format!("full-{i}")),
            503 => {
                refused = Some(b);
                break;
            }
            other => panic!("{other}: {b}"),
        }
    }
    let refused = refused.expect("a full disk is answered 503");
    assert!(!accepted.is_empty());
    assert_eq!(
        sy.get("/readyz").await.0,
        503,
        "not ready while the disk is full"
    );
    let (s, _) = sy
        .ingest("open", br#"{"title": "Still full", "id": "still"}"#, &[])
        .await;
    assert_eq!(s, 503, "{refused}");
    // Room again: the journal catches up and ingest goes on.
    std::fs::remove_file(&filler).unwrap();
    let (s, b) = sy
        .ingest("open", br#"{"title": "Room again", "id": "room"}"#, &[])
        .await;
    assert_eq!(s, 202, "{b}");
    accepted.push("room".into());
    sy.kill();

    let sy = Switchyard::start(&cfg);
    let mut resp = awc::Client::default()
        .get(sy.url("/api/v1/incidents?limit=1000"))
        .insert_header(("Authorization", "Bearer adm1n"))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    let kept: Vec<&str> = v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["dedup_key"].as_str())
        .collect();
    for key in &accepted {
        assert!(
            kept.contains(&key.as_str()),
            "{key} was accepted and is kept"
        );
    }
    let titles = |rx: &Receiver| -> Vec<String> {
        rx.delivered()
            .iter()
            .filter_map(|r| {
                r.json()["data"]["incident"]["dedup_key"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    };
    let start = std::time::Instant::now();
    while !accepted.iter().all(|k| titles(&rx).contains(k)) {
        assert!(start.elapsed() < DEADLINE, "every accepted event delivered");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    drop(sy);
}
