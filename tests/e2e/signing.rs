//! Outbound signing profiles, checked with reference code rather than switchyard's own: the
//! `standardwebhooks` package from PyPI (scripts/test.sh installs it) and Python's `hmac` for
//! the plain forms, on the README's examples (`signing:` and secret rotation).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{skipped, Received, Receiver, Switchyard};

/// Whether python3 with `standardwebhooks` is here; says SKIPPED for `test` when not.
fn python_ready(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import standardwebhooks.webhooks"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        skipped(
            test,
            "python3 with the `standardwebhooks` package is not installed (scripts/test.sh installs it: pip install standardwebhooks)",
        );
    }
    ok
}

/// Runs tests/e2e/verify_signature.py on `r` with `spec` (the receiver's settings).
fn python_verifies(r: &Received, mut spec: serde_json::Value) -> Result<(), String> {
    spec["headers"] = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    spec["body"] = json!(String::from_utf8_lossy(&r.body));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/verify_signature.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim() == "ok" {
        Ok(())
    } else {
        Err(said)
    }
}

/// A config with the generic source `open` routing everything to `endpoints` (YAML list
/// items, indented by two).
fn config(endpoints: &str, to: &str) -> String {
    format!(
        "version: 1\nserver: {{ listen: 127.0.0.1:0 }}\nsources:\n  - {{ name: open, kind: generic }}\nendpoints:\n{endpoints}\nroutes:\n  - {{ matchers: [], to: [{to}] }}\n"
    )
}

#[actix_rt::test]
async fn standard_webhooks_reference_verifies_both_secrets_during_a_rotation() {
    if !python_ready("standard_webhooks_reference_verifies_both_secrets_during_a_rotation") {
        return;
    }
    let (new, old) = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    );
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(
        &format!(
            "  - {{ name: hook, kind: webhook, url: '{}', secret: {new}, previous_secret: '{old}' }}",
            rx.url
        ),
        "hook",
    ));
    let (s, _) = sy
        .ingest("open", br#"{"title": "Rotate", "id": "r-1"}"#, &[])
        .await;
    assert_eq!(s, 202);
    let got = rx.wait_delivered(1).await;
    let r = &got[0];
    assert_eq!(
        r.header("webhook-signature").unwrap().split(' ').count(),
        2,
        "one signature per secret"
    );
    for secret in [new, old] {
        python_verifies(r, json!({"scheme": "standard_webhooks", "secret": secret}))
            .unwrap_or_else(|e| panic!("standardwebhooks refused the signature of {secret}: {e}"));
    }
    let other = "whsec_dGhpcyBpcyBub3QgdGhlIGtleSBhdCBhbGw=";
    assert!(
        python_verifies(r, json!({"scheme": "standard_webhooks", "secret": other})).is_err(),
        "a third secret does not verify"
    );
    let mut tampered = r.clone();
    tampered.body = bytes::Bytes::from(format!("{} ", String::from_utf8_lossy(&r.body)));
    assert!(python_verifies(
        &tampered,
        json!({"scheme": "standard_webhooks", "secret": new})
    )
    .is_err());
}

/// The ```yaml blocks of README.md's "Signing profiles" section.
fn readme_signing_examples() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("### Signing profiles")
        .expect("README has a Signing profiles section");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n##").map_or(section.len(), |i| i + 4)];
    section
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split_once("```").map(|(yaml, _)| yaml.to_string()))
        .collect()
}

#[actix_rt::test]
async fn the_readme_signing_examples_verify() {
    let examples = readme_signing_examples();
    assert_eq!(examples.len(), 4, "the four examples of issue 18");
    // What each receiver checks, written as the receiver's documentation would say it.
    let receivers = [
        (
            "onemanage",
            json!({"scheme": "hmac", "header": "X-OneManage-Signature", "message": "body"}),
            None,
        ),
        (
            "onplana",
            json!({"scheme": "hmac", "header": "X-Onplana-Signature", "message": "body"}),
            Some("X-Onplana-Event"),
        ),
        (
            "timestamped",
            json!({"scheme": "hmac", "header": "X-Signature", "message": "ts.body", "timestamp_header": "X-Timestamp"}),
            None,
        ),
        (
            "generic",
            json!({"scheme": "hmac", "header": "X-Webhook-Signature", "prefix": "sha256=", "message": "body"}),
            Some("X-Webhook-Event"),
        ),
    ];
    for (example, (name, mut spec, event_header)) in examples.iter().zip(receivers) {
        assert!(example.contains(&format!("name: {name}")), "{example}");
        let rx = Receiver::start();
        let secret = format!("{name}-secret-1");
        // The example as written, pointed at the local receiver.
        let endpoint: String = example
            .lines()
            .skip(1)
            .map(|l| {
                if l.trim_start().starts_with("url:") {
                    format!("    url: '{}'", rx.url)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let var = format!("{}_SECRET", name.to_ascii_uppercase());
        let sy = Switchyard::start_with_env(&config(&endpoint, name), &[(&var, &secret)]);
        let (s, _) = sy
            .ingest(
                "open",
                br#"{"title": "Signed <&> \u00e9", "id": "s-1"}"#,
                &[],
            )
            .await;
        assert_eq!(s, 202);
        let got = rx.wait_delivered(1).await;
        spec["secret"] = json!(secret);
        python_verifies(&got[0], spec.clone())
            .unwrap_or_else(|e| panic!("{name}: the receiver refused: {e}\n{:?}", got[0].headers));
        spec["secret"] = json!("another secret");
        assert!(
            python_verifies(&got[0], spec).is_err(),
            "{name}: a wrong secret verifies"
        );
        if let Some(h) = event_header {
            assert_eq!(got[0].header(h), Some("incident.created"), "{name}");
        }
    }
}
