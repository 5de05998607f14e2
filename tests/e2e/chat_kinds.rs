//! The chat kinds added for issue 18 against local stand-ins of their services, each checking
//! the documented request format: Slack's Web API (bot token; threads and `chat.update`, the
//! message's ts kept per incident, across a restart with redis), Google Chat (cards v2, one
//! thread per incident), Telegram (`sendMessage`, HTML, a reply chain) and Mattermost.

use serde_json::json;

use crate::both_stores;
use crate::endpoints::{alert, config};
use crate::support::{Receiver, Switchyard, TestStore};

fn base(rx: &Receiver) -> String {
    rx.url.trim_end_matches("/hook").to_string()
}

both_stores!(slack_bot_posts_then_replies_in_the_thread_and_updates_the_first_message);
async fn slack_bot_posts_then_replies_in_the_thread_and_updates_the_first_message(
    store: TestStore,
) {
    let rx = Receiver::start();
    rx.answer_json(&[(
        200,
        r#"{"ok":true,"channel":"C0ID","ts":"1700000000.000100"}"#,
    )]);
    let yaml = config(
        &store,
        &format!(
            "    kind: slack\n    token: xoxb-test-token\n    channel: '#ops'\n    url: {}/api",
            base(&rx)
        ),
    );
    let mut sy = Switchyard::start(&yaml);
    alert(
        &sy,
        json!({"title": "Disk <full>", "id": "sb-1", "severity": "critical"}),
    )
    .await;
    let first = rx.wait_delivered(1).await;
    let p = &first[0];
    assert_eq!(
        (p.method.as_str(), p.path.as_str()),
        ("POST", "/api/chat.postMessage")
    );
    assert_eq!(p.header("authorization"), Some("Bearer xoxb-test-token"));
    assert_eq!(
        p.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v = p.json();
    assert_eq!(v["channel"], "#ops");
    assert_eq!(v["text"], "[CRITICAL] Disk &lt;full&gt; (open)");
    assert_eq!(v["blocks"][0]["type"], "header");
    assert!(v.get("thread_ts").is_none(), "{v}");
    if store.redis_url.is_some() {
        // The ts is in Redis: a restarted instance still threads. (Stored before the
        // delivery is settled.)
        crate::endpoints::admin_until(
            &sy,
            "/api/v1/deliveries?endpoint=ep&state=delivered",
            "the first message settled",
            |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
        )
        .await;
        sy.kill();
        sy = Switchyard::start(&yaml);
    }
    rx.answer_json(&[(200, r#"{"ok":true}"#), (200, r#"{"ok":true}"#)]);
    alert(
        &sy,
        json!({"title": "Disk <full>", "id": "sb-1", "status": "resolved"}),
    )
    .await;
    let all = rx.wait_delivered(3).await;
    let reply = all[1].json();
    assert_eq!(all[1].path, "/api/chat.postMessage");
    assert_eq!(reply["thread_ts"], "1700000000.000100");
    assert_eq!(reply["channel"], "#ops");
    assert_eq!(all[2].path, "/api/chat.update");
    let update = all[2].json();
    assert_eq!(
        (&update["channel"], &update["ts"]),
        (&json!("C0ID"), &json!("1700000000.000100"))
    );
    assert_eq!(
        update["blocks"][0]["text"]["text"],
        "[RESOLVED] Disk <full>"
    );
    assert_eq!(update["text"], "[RESOLVED] Disk &lt;full&gt; (open)");
}

#[actix_rt::test]
async fn slack_errors_answered_with_200_are_not_deliveries() {
    let rx = Receiver::start();
    rx.answer_json(&[(200, r#"{"ok":false,"error":"not_in_channel"}"#)]);
    let sy = Switchyard::start(&config(
        &TestStore::memory(),
        &format!(
            "    kind: slack\n    token: xoxb-t\n    channel: C1\n    url: {}/api",
            base(&rx)
        ),
    ));
    alert(&sy, json!({"title": "X", "id": "sb-2"})).await;
    let dead = crate::endpoints::admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=ep&state=dead",
        "the delivery dead with Slack's error",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    assert_eq!(
        dead["deliveries"][0]["attempts"][0]["error"],
        "Slack: not_in_channel"
    );
    assert_eq!(rx.received().len(), 1, "not retried");
}

both_stores!(google_chat_sends_a_card_v2_in_one_thread_per_incident);
async fn google_chat_sends_a_card_v2_in_one_thread_per_incident(store: TestStore) {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(
        &store,
        &format!(
            "    kind: google_chat\n    url: '{}/v1/spaces/AAA/messages?key=K&token=T'",
            base(&rx)
        ),
    ));
    let inc = alert(
        &sy,
        json!({"title": "Queue stuck", "id": "gc-1", "severity": "warning"}),
    )
    .await
    .unwrap();
    alert(
        &sy,
        json!({"title": "Queue stuck", "id": "gc-1", "status": "resolved"}),
    )
    .await;
    let got = rx.wait_delivered(2).await;
    for r in &got {
        assert_eq!(r.path, "/v1/spaces/AAA/messages");
        assert_eq!(
            r.query,
            "key=K&token=T&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        );
        let v = r.json();
        assert_eq!(v["thread"]["threadKey"], inc.as_str());
        let card = &v["cardsV2"][0];
        assert!(card["cardId"].is_string());
        assert!(card["card"]["header"]["title"].is_string());
        let widgets = card["card"]["sections"][0]["widgets"].as_array().unwrap();
        assert_eq!(widgets[0]["decoratedText"]["topLabel"], "Severity");
    }
    assert_eq!(
        got[0].json()["cardsV2"][0]["card"]["header"]["title"],
        "[WARNING] Queue stuck"
    );
    assert_eq!(
        got[1].json()["cardsV2"][0]["card"]["header"]["title"],
        "[RESOLVED] Queue stuck"
    );
}

both_stores!(telegram_sends_html_and_replies_to_the_incidents_first_message);
async fn telegram_sends_html_and_replies_to_the_incidents_first_message(store: TestStore) {
    let rx = Receiver::start();
    rx.answer_json(&[(
        200,
        r#"{"ok":true,"result":{"message_id":77,"chat":{"id":-1001}}}"#,
    )]);
    let sy = Switchyard::start(&config(
        &store,
        &format!(
            "    kind: telegram\n    token: '123456:ABC-def'\n    channel: '-1001'\n    url: {}",
            base(&rx)
        ),
    ));
    alert(
        &sy,
        json!({"title": "a < b & \"c\"", "id": "tg-1", "description": "<script>"}),
    )
    .await;
    alert(
        &sy,
        json!({"title": "a < b & \"c\"", "id": "tg-1", "status": "resolved"}),
    )
    .await;
    let got = rx.wait_delivered(2).await;
    for r in &got {
        assert_eq!(r.path, "/bot123456:ABC-def/sendMessage");
        let v = r.json();
        assert_eq!(v["chat_id"], "-1001");
        assert_eq!(v["parse_mode"], "HTML");
    }
    let first = got[0].json();
    let text = first["text"].as_str().unwrap();
    assert!(
        text.starts_with("<b>[WARNING] a &lt; b &amp; &quot;c&quot;</b>"),
        "{text}"
    );
    assert!(
        text.contains("&lt;script&gt;") && !text.contains("<script>"),
        "{text}"
    );
    assert!(first.get("reply_parameters").is_none());
    assert_eq!(got[1].json()["reply_parameters"]["message_id"], 77);
}

#[actix_rt::test]
async fn mattermost_gets_text_and_one_attachment() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(
        &TestStore::memory(),
        &format!("    kind: mattermost\n    url: {}/hooks/xyz", base(&rx)),
    ));
    alert(
        &sy,
        json!({"title": "Latency", "id": "mm-1", "severity": "error"}),
    )
    .await;
    let got = rx.wait_delivered(1).await;
    assert_eq!(got[0].path, "/hooks/xyz");
    let v = got[0].json();
    assert_eq!(v["text"], "**\\[ERROR\\] Latency**");
    let a = &v["attachments"][0];
    assert_eq!(a["color"], "#F2711C");
    assert_eq!(a["fields"][0]["title"], "Severity");
    assert!(a["fallback"].is_string());
}
