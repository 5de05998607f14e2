//! `kind: email` against a local SMTP sink (tests/e2e/smtp_sink.rs): STARTTLS with a login and
//! a certificate trusted through `smtp.ca_file`, TLS from the first byte, the plain-text and
//! HTML parts, and a refused message being dead at once.

use serde_json::json;

use crate::endpoints::{admin_until, alert, config};
use crate::smtp_sink::{unquote, Mode, SmtpSink};
use crate::support::{Switchyard, TestStore};

fn endpoint(sink: &SmtpSink, dir: &std::path::Path, security: &str, extra: &str) -> String {
    let ca = dir.join("relay-ca.pem");
    std::fs::write(&ca, &sink.ca_pem).unwrap();
    format!(
        "    kind: email\n    retry: {{ schedule: [50ms, 50ms] }}\n    smtp: {{ host: 127.0.0.1, port: {}, security: {security}, from: 'switchyard <alerts@example.com>', to: [oncall@example.com, 'Ops Lead <lead@example.com>'], ca_file: '{}'{extra} }}",
        sink.port,
        ca.display()
    )
}

#[actix_rt::test]
async fn email_over_starttls_with_a_login_sends_plain_text_and_html() {
    let sink = SmtpSink::start(Mode::Starttls);
    let dir = tempfile::tempdir().unwrap();
    let sy = Switchyard::start(&config(
        &TestStore::memory(),
        &endpoint(
            &sink,
            dir.path(),
            "starttls",
            ", username: relay-user, password: relay-pass",
        ),
    ));
    alert(&sy, json!({"title": "Disk full", "id": "em-1", "severity": "critical", "description": "a <b> & c", "labels": {"team": "db"}})).await;
    alert(
        &sy,
        json!({"title": "Disk full", "id": "em-1", "status": "resolved"}),
    )
    .await;
    let mails = sink.wait_mails(2).await;
    let m = &mails[0];
    assert!(m.tls, "STARTTLS before anything else");
    assert_eq!(m.auth.as_deref(), Some("relay-user:relay-pass"));
    assert_eq!(m.from, "<alerts@example.com>");
    assert_eq!(m.to, ["<oncall@example.com>", "<lead@example.com>"]);
    let data = &m.data;
    assert!(data.contains("Subject: [CRITICAL] Disk full\r\n"), "{data}");
    assert!(
        data.contains("From: switchyard <alerts@example.com>"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: multipart/alternative"),
        "{data}"
    );
    let body = unquote(data);
    let plain = body
        .find("Content-Type: text/plain")
        .expect("a text/plain part");
    let html = body
        .find("Content-Type: text/html")
        .expect("a text/html part");
    assert!(
        plain < html,
        "plain text first, as multipart/alternative wants"
    );
    assert!(body[plain..html].contains("Severity: critical"), "{body}");
    assert!(body[plain..html].contains("a <b> & c"), "{body}");
    assert!(body[html..].contains("a &lt;b&gt; &amp; c"), "{body}");
    assert!(body[html..].contains("<code>team=db</code>"), "{body}");
    assert!(mails[1].data.contains("Subject: [RESOLVED] Disk full"));
    // One thread per incident: the resolve answers the first message.
    let header = |data: &str, name: &str| {
        data.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let first_id = header(&mails[0].data, "Message-ID:").expect("a Message-ID");
    assert!(
        first_id.starts_with("<inc_") && first_id.ends_with("@example.com>"),
        "{first_id}"
    );
    assert_eq!(
        header(&mails[1].data, "In-Reply-To:"),
        Some(first_id.clone())
    );
    assert_eq!(header(&mails[1].data, "References:"), Some(first_id));
}

/// `deny_private` holds for email too: the relay's loopback address is refused before any
/// connection, and the message is not sent.
#[actix_rt::test]
async fn deny_private_refuses_a_relay_on_a_private_address() {
    let sink = SmtpSink::start(Mode::Tls);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &TestStore::memory(),
        &endpoint(&sink, dir.path(), "tls", ""),
    )
    .replace(
        "  admin_token:",
        "  endpoint_policy: { deny_private: true }\n  admin_token:",
    );
    let sy = Switchyard::start(&cfg);
    alert(&sy, json!({"title": "Private", "id": "em-p"})).await;
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=ep&state=dead",
        "the delivery dead after its retries",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let attempts = dead["deliveries"][0]["attempts"].as_array().unwrap();
    assert!(
        attempts.iter().all(|a| a["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused by the endpoint policy"))),
        "{dead}"
    );
    assert!(sink.mails().is_empty(), "nothing reached the relay");
}

#[actix_rt::test]
async fn email_over_tls_and_a_refused_message_is_dead_at_once() {
    let sink = SmtpSink::start(Mode::Tls);
    let dir = tempfile::tempdir().unwrap();
    sink.refuse_next("550 5.1.1 mailbox unavailable");
    let sy = Switchyard::start(&config(
        &TestStore::memory(),
        &endpoint(&sink, dir.path(), "tls", ""),
    ));
    alert(&sy, json!({"title": "Refused", "id": "em-2"})).await;
    let dead = admin_until(
        &sy,
        "/api/v1/deliveries?endpoint=ep&state=dead",
        "the refused message dead",
        |v| v["deliveries"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let attempts = dead["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "a 5xx is not retried: {dead}");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("mailbox unavailable"),
        "{dead}"
    );
    alert(&sy, json!({"title": "Taken", "id": "em-3"})).await;
    let mails = sink.wait_mails(1).await;
    assert!(mails[0].tls);
    assert!(
        mails[0].data.contains("Subject: [WARNING] Taken"),
        "{}",
        mails[0].data
    );
}

#[test]
fn email_settings_are_checked_by_switchyard_check() {
    let c = crate::support::check_yaml(
        "version: 1\nendpoints:\n  - { name: mail, kind: email, smtp: { host: relay, from: 'nobody', to: [a@example.com] } }\nroutes:\n  - { matchers: [], to: [mail] }\n",
    );
    assert!(c.err.contains("smtp.from: `nobody`"), "{}", c.err);
    let clear = crate::support::check_yaml(
        "version: 1\nserver: { endpoint_policy: { require_https: true } }\nendpoints:\n  - { name: mail, kind: email, smtp: { host: relay, security: none, from: a@example.com, to: [b@example.com] } }\nroutes:\n  - { matchers: [], to: [mail] }\n",
    );
    assert!(
        clear.err.contains("smtp.security none sends in the clear"),
        "{}",
        clear.err
    );
    let url = crate::support::check_yaml(
        "version: 1\nendpoints:\n  - { name: mail, kind: email, url: 'https://x', smtp: { host: relay, from: a@example.com, to: [b@example.com] } }\nroutes:\n  - { matchers: [], to: [mail] }\n",
    );
    assert!(
        url.err.contains("kind `email` sends through `smtp:`"),
        "{}",
        url.err
    );
}
