//! Deployment features end to end: the TLS listener (with its certificate read again on
//! SIGHUP) and the separate admin listener.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{eventually, fixture, Receiver, Switchyard};

/// A self-signed certificate for 127.0.0.1, written as PEM files; its DER for clients.
fn certificate(dir: &std::path::Path, name: &str) -> (String, String, Vec<u8>) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    (
        cert.display().to_string(),
        key.display().to_string(),
        c.cert.der().to_vec(),
    )
}

/// An HTTPS client that trusts only `der`.
fn client_trusting(der: &[u8]) -> awc::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .timeout(Duration::from_secs(5))
        .finish()
}

async fn status(req: awc::ClientRequest, body: Option<Vec<u8>>) -> Result<u16, String> {
    let sent = match body {
        Some(b) => req.send_body(b).await,
        None => req.send().await,
    };
    sent.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
}

#[actix_rt::test]
async fn tls_listener_serves_ingest_renews_its_certificate_on_sighup_and_admin_listens_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = certificate(dir.path(), "first");
    let rx = Receiver::start();
    let config = crate::base_config(
        &rx.url,
        &format!(
            "  admin_token: adm1n\n  admin_listen: 127.0.0.1:0\n  tls: {{ cert_file: {cert}, key_file: {key} }}"
        ),
    );
    let sy = Switchyard::start(&config);
    assert!(sy.base.starts_with("https://"), "{}", sy.base);
    let admin = sy.admin_base.clone().expect("an admin listener");
    assert!(admin.starts_with("https://"), "{admin}");

    // Ingest over HTTPS, trusting the configured certificate.
    let trusts_first = client_trusting(&first);
    let ingest = || {
        trusts_first
            .post(sy.url("/ingest/prometheus"))
            .insert_header(("Authorization", "Bearer t0ken"))
            .insert_header(("Content-Type", "application/json"))
    };
    let body = fixture("alertmanager-webhook-firing-alertmanager-bot.json");
    assert_eq!(status(ingest(), Some(body.clone())).await, Ok(202));
    rx.wait_delivered(1).await;

    // The admin API answers on its own listener only.
    let on_admin = trusts_first
        .get(format!("{admin}/api/v1/incidents"))
        .insert_header(("Authorization", "Bearer adm1n"));
    assert_eq!(status(on_admin, None).await, Ok(200));
    let on_public = trusts_first
        .get(sy.url("/api/v1/incidents"))
        .insert_header(("Authorization", "Bearer adm1n"));
    assert_eq!(status(on_public, None).await, Ok(404));
    let ingest_on_admin = trusts_first
        .post(format!("{admin}/ingest/prometheus"))
        .insert_header(("Authorization", "Bearer t0ken"));
    assert_eq!(status(ingest_on_admin, Some(body.clone())).await, Ok(404));

    // A renewed certificate at the same paths is served after SIGHUP, without a restart.
    let (new_cert, new_key, second) = certificate(dir.path(), "second");
    {
        let early = client_trusting(&second);
        let req = early
            .post(sy.url("/ingest/prometheus"))
            .insert_header(("Authorization", "Bearer t0ken"))
            .insert_header(("Content-Type", "application/json"));
        let got = status(req, Some(body.clone())).await;
        assert!(
            got.is_err(),
            "a client that trusts only the next certificate is refused now: {got:?}"
        );
    }
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &sy.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let trusts_second = client_trusting(&second);
    eventually("the renewed certificate is served", || async {
        let req = trusts_second
            .post(sy.url("/ingest/prometheus"))
            .insert_header(("Authorization", "Bearer t0ken"))
            .insert_header(("Content-Type", "application/json"));
        status(req, Some(body.clone())).await == Ok(202)
    })
    .await;
    // A new connection that trusts only the old certificate is refused.
    let fresh = client_trusting(&first);
    let req = fresh
        .post(sy.url("/ingest/prometheus"))
        .insert_header(("Authorization", "Bearer t0ken"))
        .insert_header(("Content-Type", "application/json"));
    let old = status(req, Some(body.clone())).await;
    assert!(
        old.is_err(),
        "the old certificate is no longer served: {old:?}"
    );
}
