use super::*;
use crate::signing::hmac_sha256_hex;

fn cfg(yaml: &str) -> SigningConfig {
    serde_yaml::from_str(yaml).unwrap()
}

fn header(headers: &[(HeaderName, HeaderValue)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.to_str().unwrap().to_string())
}

#[test]
fn hmac_profiles_sign_as_configured() {
    let secret = Secret::new("s3cret");
    let body = br#"{"a":1}"#;
    let s = Signer::build(
        Some(&secret),
        None,
        Some(&cfg(
            "{scheme: hmac, header: X-OneManage-Signature, id_header: ''}",
        )),
    )
    .unwrap();
    let h = s.headers("evt_1", "incident.created", 1700000000, body);
    assert_eq!(
        header(&h, "x-onemanage-signature"),
        Some(hmac_sha256_hex(b"s3cret", body))
    );
    assert_eq!(
        header(&h, "x-webhook-event").as_deref(),
        Some("incident.created")
    );
    assert_eq!(header(&h, "x-webhook-id"), None);

    let s = Signer::build(
        Some(&secret),
        None,
        Some(&cfg("{scheme: hmac, timestamp_header: X-Ts, message: '{timestamp}.{body}', encoding: base64, prefix: 'v1='}")),
    )
    .unwrap();
    let h = s.headers("evt_1", "incident.created", 1700000000, body);
    assert_eq!(header(&h, "x-ts").as_deref(), Some("1700000000"));
    let mut m = b"1700000000.".to_vec();
    m.extend_from_slice(body);
    let tag = hex::decode(hmac_sha256_hex(b"s3cret", &m)).unwrap();
    assert_eq!(
        header(&h, "x-webhook-signature"),
        Some(format!("v1={}", SignatureEncoding::Base64.encode(&tag)))
    );
    assert_eq!(header(&h, "x-webhook-id").as_deref(), Some("evt_1"));
}

#[test]
fn hmac_signs_with_the_newest_and_standard_webhooks_with_both() {
    let (new, old) = (Secret::new("new"), Secret::new("old"));
    let body = b"{}";
    let s = Signer::build(Some(&new), Some(&old), Some(&cfg("{scheme: hmac}"))).unwrap();
    let h = s.headers("e", "t", 1, body);
    assert_eq!(
        header(&h, "x-webhook-signature"),
        Some(hmac_sha256_hex(b"new", body))
    );
    let s = Signer::build(Some(&new), Some(&old), None).unwrap();
    let h = s.headers("e", "t", 1, body);
    let sig = header(&h, "webhook-signature").unwrap();
    assert_eq!(
        sig,
        format!(
            "{} {}",
            crate::signing::standard_webhooks_signature(b"new", "e", 1, body),
            crate::signing::standard_webhooks_signature(b"old", "e", 1, body)
        )
    );
}

#[test]
fn bad_profiles_are_refused_with_the_key_at_fault() {
    let secret = Secret::new("s");
    let e = |sec: Option<&Secret>, prev: Option<&Secret>, yaml: &str| {
        Signer::build(sec, prev, Some(&cfg(yaml)))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e(None, None, "{scheme: hmac}"),
        "secret: required by `scheme: hmac`"
    );
    assert!(e(Some(&secret), None, "{header: X-Sig}")
        .starts_with("signing.header: only for `scheme: hmac`"));
    assert!(e(
        Some(&secret),
        None,
        "{scheme: hmac, message: '{timestamp}.{body}'}"
    )
    .contains("needs `timestamp_header`"));
    assert!(
        e(Some(&secret), None, "{scheme: hmac, encoding: b32}").contains("unknown encoding `b32`")
    );
    assert!(
        e(Some(&secret), None, "{scheme: hmac, header: 'bad header'}")
            .contains("not a valid HTTP header name")
    );
    assert!(e(None, Some(&secret), "{}").starts_with("previous_secret: needs `secret`"));
    assert!(e(Some(&Secret::new("whsec_!!")), None, "{}").contains("not valid base64"));
    assert!(serde_yaml::from_str::<SigningConfig>("{scheme: nope}").is_err());
    assert!(serde_yaml::from_str::<SigningConfig>("{headr: x}").is_err());
}

#[test]
fn debug_never_shows_a_key() {
    let s = Signer::build(
        Some(&Secret::new("TOPSECRET")),
        None,
        Some(&cfg("{scheme: hmac}")),
    )
    .unwrap();
    let d = format!("{s:?}");
    assert!(!d.contains("TOPSECRET") && d.contains("***"), "{d}");
}
