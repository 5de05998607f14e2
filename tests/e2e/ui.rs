//! The console (`/ui`) in a real headless chromium: sign in, an incident from a real POST,
//! its timeline, a dead delivery replayed to the receiver, an endpoint test, the route
//! tester, CSRF, sign out; screenshots of every page at 1280 and 390 px (light and dark) under
//! target/ui-screenshots/ and axe-core finding no serious or critical violation on any.

use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::json;

use crate::browser::{self, Browser};
use crate::endpoints::{admin_call, admin_until, alert, ADMIN};
use crate::support::{skipped, Receiver, Switchyard, TestStore};
use crate::{both_stores, config_for};

fn with_admin(store: &TestStore, url: &str) -> String {
    config_for(store, url, &format!("  admin_token: {ADMIN}"))
}

/// Signs in through the form; the browser lands on the incidents page.
async fn sign_in(b: &Browser, sy: &Switchyard) {
    b.goto(&sy.url("/ui")).await;
    assert_eq!(
        b.path().await,
        "/ui/login",
        "not signed in: the sign-in form"
    );
    b.type_into("input[name=token]", ADMIN).await;
    b.click("form[action='/ui/login'] button").await;
    b.wait_text("Incidents").await;
    assert_eq!(b.path().await, "/ui/incidents");
}

/// A POST from the page's own script, as a forged form would be; its status.
async fn post_from_page(b: &Browser, path: &str, csrf: Option<&str>) -> u16 {
    let v = b
        .client
        .execute_async(
            r#"const [path, csrf, done] = arguments;
               const body = new URLSearchParams();
               if (csrf !== null) body.set('csrf', csrf);
               fetch(path, {method: 'POST', body, credentials: 'same-origin', redirect: 'manual'})
                 .then(r => done(r.status), e => done(String(e)));"#,
            vec![json!(path), json!(csrf)],
        )
        .await
        .expect("fetch from page");
    v.as_u64().unwrap_or_else(|| panic!("fetch answered {v}")) as u16
}

both_stores!(an_operator_works_an_incident_in_the_console);
async fn an_operator_works_an_incident_in_the_console(store: TestStore) {
    if let Some(why) = browser::missing() {
        skipped("ui::an_operator_works_an_incident_in_the_console", &why);
        return;
    }
    let shots = store.redis_url.is_none();
    let rx = Receiver::start();
    // Every attempt fails until the delivery is dead.
    rx.fail_with(Some(500));
    let sy = Switchyard::start(&with_admin(&store, &rx.url));
    let b = Browser::start(1280, false).await;

    // A wrong token is refused and signs nobody in.
    b.goto(&sy.url("/ui/incidents")).await;
    assert_eq!(b.path().await, "/ui/login");
    if shots {
        b.capture("login", false).await;
    }
    b.type_into("input[name=token]", "not-the-token").await;
    b.click("form[action='/ui/login'] button").await;
    b.wait_text("Wrong token").await;
    b.goto(&sy.url("/ui/incidents")).await;
    assert_eq!(b.path().await, "/ui/login");

    sign_in(&b, &sy).await;
    // An incident from a real POST appears in the list by itself (the live part refreshes).
    let id = alert(
        &sy,
        json!({"title": "Disk full on db-1", "id": "ui-1", "severity": "critical",
               "labels": {"team": "db", "service": "postgres"}}),
    )
    .await
    .expect("an incident");
    b.wait_text("Disk full on db-1").await;
    // Filters: a label matcher that holds keeps it, one that does not hides it.
    b.goto(&sy.url("/ui/incidents?matchers=%7Bteam%3D%22db%22%7D&q=disk"))
        .await;
    b.wait_text("Disk full on db-1").await;
    b.goto(&sy.url("/ui/incidents?matchers=team%3D%22web%22"))
        .await;
    b.wait_text("No incidents match").await;
    b.goto(&sy.url("/ui/incidents")).await;
    b.wait_text("1 triggered").await;
    if shots {
        b.capture("incidents", false).await;
    }

    // Its page: labels, the timeline, and the event's delivery going dead.
    b.click(&format!("a[href='/ui/incidents/{id}']")).await;
    b.wait_text("Timeline").await;
    let text = b.wait_text("hook (dead)").await;
    assert!(text.contains("incident.created"), "{text}");
    assert!(text.contains("postgres"), "labels shown: {text}");
    assert!(text.contains("HTTP 500"), "attempts shown: {text}");
    if shots {
        b.capture("incident", false).await;
    }

    // Replay the dead delivery from the deliveries page: the receiver gets it.
    rx.fail_with(None);
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?state=dead",
        "a dead delivery",
        |v| v["deliveries"].as_array().is_some_and(|d| !d.is_empty()),
    )
    .await;
    let dead_id = dead["deliveries"][0]["id"].as_str().unwrap().to_string();
    let event_id = dead["deliveries"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    b.goto(&sy.url("/ui/deliveries?state=dead")).await;
    b.wait_text(&id).await;
    if shots {
        b.capture("deliveries", false).await;
    }
    b.click(&format!(
        "form[action='/ui/deliveries/{dead_id}/replay'] button"
    ))
    .await;
    b.wait_text("Replay queued").await;
    let got = rx.wait_delivered(1).await;
    let body = got[0].json();
    assert_eq!(
        body["id"],
        event_id.as_str(),
        "the dead delivery's event: {body}"
    );
    assert_eq!(body["type"], "incident.created");

    // "Recover dead" sends every dead delivery of the endpoint again (a second incident's).
    rx.fail_with(Some(500));
    let second = alert(&sy, json!({"title": "Second one", "id": "ui-2"}))
        .await
        .expect("a second incident");
    admin_until(
        &sy,
        &format!("/api/v1/deliveries?state=dead&incident={second}"),
        "the second incident's dead delivery",
        |v| v["deliveries"].as_array().is_some_and(|d| !d.is_empty()),
    )
    .await;
    rx.fail_with(None);
    b.goto(&sy.url("/ui/deliveries")).await;
    b.click("#recover summary").await;
    b.click("form[action='/ui/endpoints/hook/recover'] button")
        .await;
    b.wait_text("Recovered: 1 dead deliveries of hook").await;
    let got = rx.wait_delivered(2).await;
    assert_eq!(
        got[1].json()["data"]["incident"]["id"],
        second.as_str(),
        "{:?}",
        got[1].json()
    );

    b.goto(&sy.url(&format!("/ui/incidents/{id}"))).await;
    b.wait_text("Timeline").await;

    // A change without the CSRF token (or with a wrong one) is refused and changes nothing.
    assert_eq!(
        post_from_page(&b, &format!("/ui/incidents/{id}/acknowledge"), None).await,
        403
    );
    assert_eq!(
        post_from_page(&b, &format!("/ui/incidents/{id}/resolve"), Some("forged")).await,
        403
    );
    let (_, inc) = admin_call(&sy, "GET", &format!("/api/v1/incidents/{id}"), Some(ADMIN)).await;
    assert_eq!(inc["status"], "triggered", "nothing changed: {inc}");
    // The button (with its token) acknowledges it.
    b.click(&format!(
        "form[action='/ui/incidents/{id}/acknowledge'] button"
    ))
    .await;
    b.wait_text("Incident acknowledged").await;
    let (_, inc) = admin_call(&sy, "GET", &format!("/api/v1/incidents/{id}"), Some(ADMIN)).await;
    assert_eq!(inc["status"], "acknowledged", "{inc}");
    // Its event went out too (the receiver answers 200 now).
    let got = rx.wait_delivered(3).await;
    assert_eq!(got[2].json()["type"], "incident.acknowledged");

    // Test an endpoint: the answer is shown, and the receiver got the ping.
    let before = rx.received().len();
    b.goto(&sy.url("/ui/endpoints")).await;
    b.wait_text("webhook").await;
    b.click("form[action='/ui/endpoints/hook/test'] button")
        .await;
    let text = b.wait_text("Test of hook: answered HTTP 200").await;
    assert!(text.contains("ok"), "{text}");
    assert_eq!(rx.received().len(), before + 1, "one test request");
    // The last hour counts this process's attempts (3 failed, the replay, the acknowledgement,
    // the test).
    b.goto(&sy.url("/ui/endpoints")).await;
    b.wait_text("% of").await;
    if shots {
        b.capture("endpoints", false).await;
    }

    // The route tester shows where a payload would go, and sends nothing.
    let before = rx.received().len();
    b.goto(&sy.url("/ui/routes")).await;
    b.wait_text("everything").await;
    b.client
        .find(Locator::Css("select[name=source]"))
        .await
        .expect("source select")
        .select_by_value("open")
        .await
        .expect("pick source");
    b.type_into(
        "textarea[name=payload]",
        r#"{"title": "Tested only", "id": "rt-1"}"#,
    )
    .await;
    b.click("form[action='/ui/routes/test'] button").await;
    let text = b.wait_text("Endpoints reached").await;
    assert!(text.contains("incident.created"), "{text}");
    let reached = b
        .client
        .find(Locator::Css("#route-endpoints"))
        .await
        .expect("endpoints reached")
        .text()
        .await
        .unwrap();
    assert_eq!(reached, "hook");
    if shots {
        // The result, not only the form, in the picture.
        b.client
            .execute(
                "document.getElementById('route-result').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.capture("routes", false).await;
    }
    assert_eq!(rx.received().len(), before, "the route tester sent nothing");
    let (_, list) = admin_call(&sy, "GET", "/api/v1/incidents", Some(ADMIN)).await;
    assert_eq!(
        list["incidents"].as_array().unwrap().len(),
        2,
        "and recorded nothing: {list}"
    );

    // Sign out: the console asks for the token again, and the old cookie no longer works.
    let cookie = b
        .client
        .get_named_cookie("switchyard_console")
        .await
        .expect("session cookie")
        .value()
        .to_string();
    b.click("form[action='/ui/logout'] button").await;
    b.wait_text("Admin token").await;
    b.goto(&sy.url("/ui/incidents")).await;
    assert_eq!(b.path().await, "/ui/login");
    let resp = awc::Client::builder()
        .disable_redirects()
        .finish()
        .get(sy.url("/ui/incidents"))
        .insert_header(("Cookie", format!("switchyard_console={cookie}")))
        .send()
        .await
        .expect("old cookie");
    assert_eq!(
        resp.status().as_u16(),
        303,
        "the signed-out session is refused"
    );
}

/// Every page in dark mode: screenshots, and axe-core's contrast checks with dark colours.
#[actix_rt::test]
async fn every_page_is_readable_in_dark_mode() {
    if let Some(why) = browser::missing() {
        skipped("ui::every_page_is_readable_in_dark_mode", &why);
        return;
    }
    let rx = Receiver::start();
    let sy = Switchyard::start(&with_admin(&TestStore::memory(), &rx.url));
    let id = alert(
        &sy,
        json!({"title": "Latency high", "id": "dark-1", "severity": "warning"}),
    )
    .await
    .expect("an incident");
    rx.wait_delivered(1).await;
    let b = Browser::start(1280, true).await;
    b.goto(&sy.url("/ui/login")).await;
    b.capture("login", true).await;
    sign_in(&b, &sy).await;
    for (name, path) in [
        ("incidents", "/ui/incidents".to_string()),
        ("incident", format!("/ui/incidents/{id}")),
        ("deliveries", "/ui/deliveries".to_string()),
        ("endpoints", "/ui/endpoints".to_string()),
        ("routes", "/ui/routes".to_string()),
        ("groups", "/ui/groups".to_string()),
        (
            "silences",
            "/ui/silences?matchers=%7Bteam%3D%22db%22%7D".to_string(),
        ),
    ] {
        b.goto(&sy.url(&path)).await;
        b.wait_text("Sign out").await;
        b.capture(name, true).await;
    }
}

/// A grouped route's group in the console: its incidents, and when it is notified next; the
/// route tree shows the grouping.
#[actix_rt::test]
async fn groups_show_their_incidents_and_next_notification() {
    if let Some(why) = browser::missing() {
        skipped(
            "ui::groups_show_their_incidents_and_next_notification",
            &why,
        );
        return;
    }
    let rx = Receiver::start();
    let store = TestStore::memory();
    let sy = Switchyard::start(&format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  admin_token: {ADMIN}
sources:
  - name: open
    kind: generic
endpoints:
  - {{ name: hook, kind: webhook, url: "{}", retry: {{ schedule: [50ms] }} }}
routes:
  - name: by-cluster
    to: [hook]
    group_by: [cluster]
    group_wait: 1h
{}"#,
        rx.url,
        store.section()
    ));
    let id = alert(
        &sy,
        json!({"title": "Node down", "id": "g-1", "labels": {"cluster": "eu-1"}}),
    )
    .await
    .expect("an incident");
    let b = Browser::start(1280, false).await;
    sign_in(&b, &sy).await;
    // From the keyboard: the first Tab reaches the skip link, Enter moves into the page, and
    // the next Tab reaches the filters' first control.
    let key = |k: Key| k.to_string();
    let body = b.client.find(Locator::Css("body")).await.expect("body");
    body.send_keys(&key(Key::Tab)).await.expect("tab");
    let active = b.client.active_element().await.expect("focus");
    assert_eq!(active.text().await.unwrap(), "Skip to content");
    active.send_keys(&key(Key::Enter)).await.expect("enter");
    b.client
        .active_element()
        .await
        .expect("focus")
        .send_keys(&key(Key::Tab))
        .await
        .expect("tab");
    let active = b.client.active_element().await.expect("focus");
    assert_eq!(
        active.attr("name").await.unwrap().as_deref(),
        Some("status"),
        "the status filter after the skip link"
    );
    b.goto(&sy.url("/ui/groups")).await;
    let text = b.wait_text(&id).await;
    assert!(text.contains("by-cluster"), "{text}");
    assert!(text.contains("cluster=\"eu-1\""), "the group key: {text}");
    assert!(
        text.contains("not yet"),
        "not notified yet (group_wait 1h): {text}"
    );
    assert!(
        text.contains("in 59 min") || text.contains("in 1 h"),
        "next notification: {text}"
    );
    b.capture("groups", false).await;
    b.goto(&sy.url("/ui/routes")).await;
    b.wait_text("group_by [cluster], wait 3600s").await;
    assert!(rx.received().is_empty(), "nothing sent before group_wait");
}

/// A silence made from an incident's labels with a duration, then expired: the Alertmanager
/// v2 API (what amtool reads) shows the same silence each time.
#[actix_rt::test]
async fn a_silence_is_created_from_an_incident_and_expired() {
    if let Some(why) = browser::missing() {
        skipped(
            "ui::a_silence_is_created_from_an_incident_and_expired",
            &why,
        );
        return;
    }
    let rx = Receiver::start();
    let sy = Switchyard::start(&with_admin(&TestStore::memory(), &rx.url));
    let id = alert(
        &sy,
        json!({"title": "Replication lag", "id": "s-1", "labels": {"team": "db", "service": "pg"}}),
    )
    .await
    .expect("an incident");
    let b = Browser::start(1280, false).await;
    sign_in(&b, &sy).await;
    b.goto(&sy.url(&format!("/ui/incidents/{id}"))).await;
    b.click("a[href^='/ui/silences?matchers=']").await;
    b.wait_text("New silence").await;
    let prefilled = b
        .client
        .find(Locator::Css("input[name=matchers]"))
        .await
        .expect("matchers field")
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(prefilled, r#"{service="pg", team="db"}"#);
    b.client
        .find(Locator::Css("select[name=duration]"))
        .await
        .expect("duration")
        .select_by_value("1h")
        .await
        .expect("1 hour");
    b.type_into("input[name=comment]", "failover under way")
        .await;
    b.click("form[action='/ui/silences'] button").await;
    let text = b.wait_text("Silence created").await;
    assert!(
        text.contains("active") && text.contains("failover under way"),
        "{text}"
    );
    let (status, list) = admin_call(&sy, "GET", "/api/v2/silences", Some(ADMIN)).await;
    assert_eq!(status, 200, "{list}");
    let silences = list.as_array().expect("a list");
    assert_eq!(silences.len(), 1, "{list}");
    let s = &silences[0];
    assert_eq!(s["status"]["state"], "active", "{s}");
    assert_eq!(s["createdBy"], "console");
    let ends = chrono::DateTime::parse_from_rfc3339(s["endsAt"].as_str().unwrap()).unwrap();
    let starts = chrono::DateTime::parse_from_rfc3339(s["startsAt"].as_str().unwrap()).unwrap();
    assert_eq!((ends - starts).num_minutes(), 60, "one hour: {s}");
    let names: Vec<&str> = s["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["service", "team"]);
    b.capture("silences", false).await;
    let silence_id = s["id"].as_str().unwrap().to_string();
    b.click(&format!(
        "form[action='/ui/silences/{silence_id}/expire'] button"
    ))
    .await;
    b.wait_text("Silence expired").await;
    let (_, list) = admin_call(&sy, "GET", "/api/v2/silences", Some(ADMIN)).await;
    assert_eq!(list[0]["status"]["state"], "expired", "{list}");
    // A change without the CSRF token changes nothing here either.
    b.goto(&sy.url("/ui/silences")).await;
    assert_eq!(
        post_from_page(&b, &format!("/ui/silences/{silence_id}/expire"), None).await,
        403
    );
}

/// Without an admin token there is no console; the keyboard reaches every control first
/// through a skip link.
#[actix_rt::test]
async fn the_console_is_off_without_an_admin_token() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config_for(&TestStore::memory(), &rx.url, ""));
    for path in [
        "/ui",
        "/ui/login",
        "/ui/incidents",
        "/ui/assets/console.css",
    ] {
        let (status, _) = sy.get(path).await;
        assert_eq!(status, 404, "{path}");
    }
    let resp = awc::Client::default()
        .post(sy.url("/ui/login"))
        .send_form(&[("token", "anything")])
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 404);
}

/// Without a browser: a POST with a valid session but no CSRF token, or sent cross-site, is
/// refused; the token's sign-in sets an HttpOnly, SameSite=Strict cookie.
#[actix_rt::test]
async fn changes_need_the_session_and_its_csrf_token() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&with_admin(&TestStore::memory(), &rx.url));
    let id = alert(&sy, json!({"title": "CSRF target", "id": "c-1"}))
        .await
        .expect("an incident");
    let client = awc::Client::builder().disable_redirects().finish();
    let resp = client
        .post(sy.url("/ui/login"))
        .send_form(&[("token", ADMIN)])
        .await
        .expect("sign in");
    assert_eq!(resp.status().as_u16(), 303);
    let set = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let mut page = client
        .get(sy.url(&format!("/ui/incidents/{id}")))
        .insert_header(("Cookie", cookie.clone()))
        .send()
        .await
        .expect("page");
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a csrf field")
        .to_string();
    let path = format!("/ui/incidents/{id}/resolve");
    for (form, cross_site) in [
        (vec![], false),
        (vec![("csrf", "nope")], false),
        (vec![("csrf", csrf.as_str())], true),
    ] {
        let mut req = client
            .post(sy.url(&path))
            .insert_header(("Cookie", cookie.clone()));
        if cross_site {
            req = req.insert_header(("Sec-Fetch-Site", "cross-site"));
        }
        let resp = req.send_form(&form).await.expect("post");
        assert_eq!(
            resp.status().as_u16(),
            403,
            "{form:?} cross-site={cross_site}"
        );
    }
    // Without the cookie, the right token is not enough either.
    let resp = client
        .post(sy.url(&path))
        .send_form(&[("csrf", csrf.as_str())])
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 403);
    let (_, inc) = admin_call(&sy, "GET", &format!("/api/v1/incidents/{id}"), Some(ADMIN)).await;
    assert_eq!(inc["status"], "triggered", "nothing changed: {inc}");
    let resp = client
        .post(sy.url(&path))
        .insert_header(("Cookie", cookie))
        .send_form(&[("csrf", csrf.as_str())])
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 303);
    let (_, inc) = admin_call(&sy, "GET", &format!("/api/v1/incidents/{id}"), Some(ADMIN)).await;
    assert_eq!(inc["status"], "resolved", "{inc}");
}
