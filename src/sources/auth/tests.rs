//! The authenticators' tests: the Standard Webhooks vector, bearer, basic, HMAC schemes.

use super::*;
use crate::config::types::{HmacConfig, Secret};
use crate::signing::{hmac_sha256_hex, standard_webhooks_signature};
use actix_web::http::header::HeaderValue;
use base64::Engine as _;

// The Standard Webhooks specification's published test vector.
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID_VAL: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TS: i64 = 1614265330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn at(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap()
}

fn hmac_cfg(secret: &str) -> HmacConfig {
    HmacConfig {
        secret: Secret::new(secret),
        previous_secret: None,
        message: None,
        header: None,
        encoding: None,
        prefix: None,
        timestamp_header: None,
        tolerance: None,
    }
}

fn build(cfg: AuthConfig, kind: SourceKind) -> Authenticator {
    Authenticator::build(&cfg, kind).unwrap()
}

fn sw() -> Authenticator {
    build(
        AuthConfig::StandardWebhooks {
            secret: Secret::new(SW_SECRET),
        },
        SourceKind::Generic,
    )
}

fn sw_headers(sig: &str) -> HeaderMap {
    headers(&[
        ("webhook-id", SW_ID_VAL),
        ("webhook-timestamp", &SW_TS.to_string()),
        ("webhook-signature", sig),
    ])
}

#[test]
fn standard_webhooks_vector_signs() {
    let key = standard_webhooks_key(SW_SECRET);
    assert_eq!(
        standard_webhooks_signature(&key, SW_ID_VAL, SW_TS, SW_BODY),
        SW_SIG
    );
}

#[test]
fn standard_webhooks_vector_verifies() {
    let now = at(SW_TS);
    assert_eq!(sw().verify(&sw_headers(SW_SIG), SW_BODY, now), Ok(()));
    // Any one of several signatures is enough; unknown versions are ignored.
    let list = format!("v1a,abcd v1,AAAA {SW_SIG}");
    assert_eq!(sw().verify(&sw_headers(&list), SW_BODY, now), Ok(()));
    // Svix' header names are accepted too.
    let svix = headers(&[
        ("svix-id", SW_ID_VAL),
        ("svix-timestamp", &SW_TS.to_string()),
        ("svix-signature", SW_SIG),
    ]);
    assert_eq!(sw().verify(&svix, SW_BODY, now), Ok(()));
    // Within the 5 minute tolerance on both sides.
    assert_eq!(
        sw().verify(&sw_headers(SW_SIG), SW_BODY, at(SW_TS + 300)),
        Ok(())
    );
    assert_eq!(
        sw().verify(&sw_headers(SW_SIG), SW_BODY, at(SW_TS - 300)),
        Ok(())
    );
}

#[test]
fn standard_webhooks_refusals() {
    let now = at(SW_TS);
    // Tampered body.
    assert_eq!(
        sw().verify(&sw_headers(SW_SIG), br#"{"test": 2432232315}"#, now),
        Err(AuthError::Mismatch)
    );
    // Wrong secret.
    let other = build(
        AuthConfig::StandardWebhooks {
            secret: Secret::new("whsec_bm90IHRoZSBzYW1lIHNlY3JldA=="),
        },
        SourceKind::Generic,
    );
    assert_eq!(
        other.verify(&sw_headers(SW_SIG), SW_BODY, now),
        Err(AuthError::Mismatch)
    );
    // Stale and future timestamps.
    for t in [SW_TS + 301, SW_TS - 301] {
        assert!(matches!(
            sw().verify(&sw_headers(SW_SIG), SW_BODY, at(t)),
            Err(AuthError::TimestampOutOfTolerance { .. })
        ));
    }
    // A different id changes the signed message.
    let h = headers(&[
        ("webhook-id", "msg_other"),
        ("webhook-timestamp", &SW_TS.to_string()),
        ("webhook-signature", SW_SIG),
    ]);
    assert_eq!(sw().verify(&h, SW_BODY, now), Err(AuthError::Mismatch));
    // Missing headers, each named.
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut h = sw_headers(SW_SIG);
        h.remove(missing);
        assert_eq!(
            sw().verify(&h, SW_BODY, now),
            Err(AuthError::Missing(vec![missing.to_string()]))
        );
    }
    // Unreadable.
    assert!(matches!(
        sw().verify(&sw_headers("g0hM9SsE+OTPJTGt"), SW_BODY, now),
        Err(AuthError::Malformed { .. })
    ));
    let mut h = sw_headers(SW_SIG);
    h.insert(
        HeaderName::from_static("webhook-timestamp"),
        HeaderValue::from_static("yesterday"),
    );
    assert!(matches!(
        sw().verify(&h, SW_BODY, now),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn standard_webhooks_keys() {
    assert_eq!(standard_webhooks_key("whsec_c2VjcmV0"), b"secret".to_vec());
    assert_eq!(standard_webhooks_key("plain"), b"plain".to_vec());
    // A plain (non-whsec) secret signs with its bytes.
    let a = build(
        AuthConfig::StandardWebhooks {
            secret: Secret::new("plain"),
        },
        SourceKind::Generic,
    );
    let sig = standard_webhooks_signature(b"plain", "m1", SW_TS, b"x");
    let h = headers(&[
        ("webhook-id", "m1"),
        ("webhook-timestamp", &SW_TS.to_string()),
        ("webhook-signature", &sig),
    ]);
    assert_eq!(a.verify(&h, b"x", at(SW_TS)), Ok(()));
    assert_eq!(
        Authenticator::build(
            &AuthConfig::StandardWebhooks {
                secret: Secret::new("whsec_***")
            },
            SourceKind::Generic
        )
        .unwrap_err(),
        AuthConfigError::WhsecBase64
    );
}

#[test]
fn bearer() {
    let a = build(
        AuthConfig::Bearer(Secret::new("s3cret-token")),
        SourceKind::Alertmanager,
    );
    let now = Utc::now();
    let ok = headers(&[("Authorization", "Bearer s3cret-token")]);
    assert_eq!(a.verify(&ok, b"", now), Ok(()));
    let lower = headers(&[("authorization", "bearer s3cret-token")]);
    assert_eq!(a.verify(&lower, b"", now), Ok(()));
    for wrong in ["Bearer s3cret-toke", "Bearer s3cret-token2", "Bearer x"] {
        assert_eq!(
            a.verify(&headers(&[("Authorization", wrong)]), b"", now),
            Err(AuthError::BadCredentials)
        );
    }
    assert_eq!(
        a.verify(&HeaderMap::new(), b"", now),
        Err(AuthError::Missing(vec!["Authorization".into()]))
    );
    for malformed in ["s3cret-token", "Basic s3cret-token", "Bearer "] {
        assert!(matches!(
            a.verify(&headers(&[("Authorization", malformed)]), b"", now),
            Err(AuthError::Malformed { .. })
        ));
    }
}

#[test]
fn basic() {
    let a = build(
        AuthConfig::Basic {
            username: "am".into(),
            password: Secret::new("pa:ss"),
        },
        SourceKind::Alertmanager,
    );
    let now = Utc::now();
    let enc = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    assert_eq!(
        a.verify(&headers(&[("Authorization", &enc("am:pa:ss"))]), b"", now),
        Ok(())
    );
    for wrong in ["am:pa:sS", "AM:pa:ss", "am:", ":pa:ss"] {
        assert_eq!(
            a.verify(&headers(&[("Authorization", &enc(wrong))]), b"", now),
            Err(AuthError::BadCredentials),
            "{wrong}"
        );
    }
    assert_eq!(
        a.verify(&HeaderMap::new(), b"", now),
        Err(AuthError::Missing(vec!["Authorization".into()]))
    );
    assert!(matches!(
        a.verify(&headers(&[("Authorization", "Basic %%%")]), b"", now),
        Err(AuthError::Malformed { .. })
    ));
    assert!(matches!(
        a.verify(&headers(&[("Authorization", "Bearer am:pa:ss")]), b"", now),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn hmac_generic_defaults() {
    let a = build(AuthConfig::Hmac(hmac_cfg("topsecret")), SourceKind::Generic);
    let body = br#"{"title":"x"}"#;
    let sig = hmac_sha256_hex(b"topsecret", body);
    let now = Utc::now();
    for (h, v) in [
        ("X-Signature", format!("sha256={sig}")),
        ("X-Webhook-Signature", format!("sha256={sig}")),
        ("X-Signature", sig.clone()),
        ("X-Signature", format!("sha256={}", sig.to_uppercase())),
        ("X-Signature", format!("SHA256={sig}")),
    ] {
        assert_eq!(
            a.verify(&headers(&[(h, &v)]), body, now),
            Ok(()),
            "{h}: {v}"
        );
    }
    // Tampered body, wrong secret.
    let good = headers(&[("X-Signature", &format!("sha256={sig}"))]);
    assert_eq!(
        a.verify(&good, br#"{"title":"y"}"#, now),
        Err(AuthError::Mismatch)
    );
    let other = build(
        AuthConfig::Hmac(hmac_cfg("othersecret")),
        SourceKind::Generic,
    );
    assert_eq!(other.verify(&good, body, now), Err(AuthError::Mismatch));
    // Missing: both accepted names are listed.
    let err = a.verify(&HeaderMap::new(), body, now).unwrap_err();
    assert_eq!(
        err,
        AuthError::Missing(vec!["X-Signature".into(), "X-Webhook-Signature".into()])
    );
    assert_eq!(
        err.to_string(),
        "missing header `X-Signature` or `X-Webhook-Signature`"
    );
    // Not hex; wrong length.
    for bad in ["sha256=zz", "sha256=abcd", "sha256="] {
        assert!(matches!(
            a.verify(&headers(&[("X-Signature", bad)]), body, now),
            Err(AuthError::Malformed { .. })
        ));
    }
    // Alertmanager sources have the same defaults.
    let am = build(
        AuthConfig::Hmac(hmac_cfg("topsecret")),
        SourceKind::Alertmanager,
    );
    assert_eq!(am.verify(&good, body, now), Ok(()));
}

#[test]
fn hmac_sentry_defaults() {
    let a = build(
        AuthConfig::Hmac(hmac_cfg("client-secret")),
        SourceKind::Sentry,
    );
    let body = br#"{"action":"created"}"#;
    let sig = hmac_sha256_hex(b"client-secret", body);
    let now = Utc::now();
    assert_eq!(
        a.verify(&headers(&[("Sentry-Hook-Signature", &sig)]), body, now),
        Ok(())
    );
    assert_eq!(
        a.verify(&headers(&[("X-Signature", &sig)]), body, now),
        Err(AuthError::Missing(vec!["Sentry-Hook-Signature".into()]))
    );
    assert_eq!(
        a.verify(&headers(&[("Sentry-Hook-Signature", &sig)]), b"{}", now),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn hmac_grafana_with_timestamp() {
    let mut cfg = hmac_cfg("grafana-secret");
    cfg.timestamp_header = Some("X-Grafana-Alerting-Timestamp".into());
    let a = build(AuthConfig::Hmac(cfg), SourceKind::Grafana);
    let body = br#"{"receiver":"x","status":"firing","alerts":[]}"#;
    let ts = 1_700_000_000i64;
    // Grafana signs "<unix seconds>:<body>".
    let mut msg = format!("{ts}:").into_bytes();
    msg.extend_from_slice(body);
    let sig = hmac_sha256_hex(b"grafana-secret", &msg);
    for header in ["X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature"] {
        let h = headers(&[
            (header, &sig),
            ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
        ]);
        assert_eq!(a.verify(&h, body, at(ts + 10)), Ok(()), "{header}");
    }
    let h = headers(&[
        ("X-Grafana-Alerting-Signature", &sig),
        ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
    ]);
    // The signature of the bare body is not enough.
    let bare = headers(&[
        (
            "X-Grafana-Alerting-Signature",
            &hmac_sha256_hex(b"grafana-secret", body),
        ),
        ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
    ]);
    assert_eq!(a.verify(&bare, body, at(ts)), Err(AuthError::Mismatch));
    // Stale (default tolerance 5m).
    assert_eq!(
        a.verify(&h, body, at(ts + 301)),
        Err(AuthError::TimestampOutOfTolerance {
            header: "X-Grafana-Alerting-Timestamp".into(),
            skew_secs: 301,
            tolerance_secs: 300
        })
    );
    // A replayed signature with a fresh timestamp does not match.
    let replay = headers(&[
        ("X-Grafana-Alerting-Signature", &sig),
        ("X-Grafana-Alerting-Timestamp", &(ts + 400).to_string()),
    ]);
    assert_eq!(
        a.verify(&replay, body, at(ts + 400)),
        Err(AuthError::Mismatch)
    );
    // Tampered body, missing timestamp.
    assert_eq!(a.verify(&h, b"{}", at(ts)), Err(AuthError::Mismatch));
    let no_ts = headers(&[("X-Grafana-Alerting-Signature", &sig)]);
    assert_eq!(
        a.verify(&no_ts, body, at(ts)),
        Err(AuthError::Missing(vec![
            "X-Grafana-Alerting-Timestamp".into()
        ]))
    );
    // Grafana has no prefix by default: `sha256=` is not stripped.
    let prefixed = headers(&[
        ("X-Grafana-Alerting-Signature", &format!("sha256={sig}")),
        ("X-Grafana-Alerting-Timestamp", &ts.to_string()),
    ]);
    assert!(matches!(
        a.verify(&prefixed, body, at(ts)),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn hmac_custom_header_base64_prefix_and_tolerance() {
    let cfg = HmacConfig {
        secret: Secret::new("k"),
        previous_secret: None,
        message: None,
        header: Some("X-Hub-Sig".into()),
        encoding: Some("base64".into()),
        prefix: Some("v0=".into()),
        timestamp_header: Some("X-Ts".into()),
        tolerance: Some("1m".into()),
    };
    let a = build(AuthConfig::Hmac(cfg), SourceKind::Generic);
    let body = b"payload";
    let ts = 1_800_000_000i64;
    let mut mac = new_mac(b"k");
    mac.update(format!("{ts}:").as_bytes());
    mac.update(body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let h = headers(&[
        ("x-hub-sig", &format!("v0={b64}")),
        ("X-Ts", &ts.to_string()),
    ]);
    assert_eq!(a.verify(&h, body, at(ts - 60)), Ok(()));
    assert!(matches!(
        a.verify(&h, body, at(ts + 61)),
        Err(AuthError::TimestampOutOfTolerance { .. })
    ));
    // The default headers are not consulted when `header` is set.
    let other = headers(&[
        ("X-Signature", &format!("v0={b64}")),
        ("X-Ts", &ts.to_string()),
    ]);
    assert_eq!(
        a.verify(&other, body, at(ts)),
        Err(AuthError::Missing(vec!["X-Hub-Sig".into()]))
    );
    let not_b64 = headers(&[("X-Hub-Sig", "v0=###"), ("X-Ts", &ts.to_string())]);
    assert!(matches!(
        a.verify(&not_b64, body, at(ts)),
        Err(AuthError::Malformed { .. })
    ));
}

#[test]
fn config_errors() {
    let mut c = hmac_cfg("s");
    c.encoding = Some("base32".into());
    assert_eq!(
        Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic).unwrap_err(),
        AuthConfigError::Encoding("base32".into())
    );
    let mut c = hmac_cfg("s");
    c.tolerance = Some("5 minutes".into());
    assert!(matches!(
        Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic),
        Err(AuthConfigError::Tolerance(_))
    ));
    let mut c = hmac_cfg("s");
    c.header = Some("Bad Header".into());
    assert!(matches!(
        Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic),
        Err(AuthConfigError::HeaderName { .. })
    ));
    assert_eq!(
        Authenticator::build(&AuthConfig::Hmac(hmac_cfg("")), SourceKind::Generic).unwrap_err(),
        AuthConfigError::EmptySecret("hmac.secret")
    );
}

#[test]
fn secrets_never_show() {
    let secret = "do-not-print-me";
    let all = [
        build(AuthConfig::Bearer(Secret::new(secret)), SourceKind::Generic),
        build(
            AuthConfig::Basic {
                username: "u".into(),
                password: Secret::new(secret),
            },
            SourceKind::Generic,
        ),
        build(AuthConfig::Hmac(hmac_cfg(secret)), SourceKind::Generic),
        build(
            AuthConfig::StandardWebhooks {
                secret: Secret::new(secret),
            },
            SourceKind::Generic,
        ),
    ];
    let now = Utc::now();
    let requests = [
        HeaderMap::new(),
        headers(&[
            ("Authorization", "Bearer nope"),
            ("X-Signature", "sha256=00"),
        ]),
        headers(&[
            ("webhook-id", "m"),
            ("webhook-timestamp", &now.timestamp().to_string()),
            ("webhook-signature", "v1,AAAA"),
        ]),
    ];
    for a in &all {
        assert!(!format!("{a:?}").contains(secret), "{a:?}");
        for h in &requests {
            if let Err(e) = a.verify(h, b"body", now) {
                assert!(!e.to_string().contains(secret), "{e}");
            }
        }
    }
}

// ---- the schemes real senders use (published vectors where the sender publishes one) ----

fn hmac_with(f: impl FnOnce(&mut HmacConfig)) -> Authenticator {
    let mut c = hmac_cfg("unused");
    f(&mut c);
    build(AuthConfig::Hmac(c), SourceKind::Generic)
}

#[test]
fn github_published_vector() {
    // docs.github.com "Validating webhook deliveries".
    let a = hmac_with(|c| {
        c.secret = Secret::new("It's a Secret to Everybody");
        c.header = Some("X-Hub-Signature-256".into());
        c.prefix = Some("sha256=".into());
    });
    let h = headers(&[(
        "X-Hub-Signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    )]);
    assert_eq!(a.verify(&h, b"Hello, World!", Utc::now()), Ok(()));
    assert_eq!(
        a.verify(&h, b"Hello, World?", Utc::now()),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn slack_published_vector_with_a_message_template() {
    // api.slack.com "Verifying requests from Slack": v0:{timestamp}:{body}, prefix v0=.
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let a = hmac_with(|c| {
        c.secret = Secret::new("8f742231b10e8888abcd99yyyzzz85a5");
        c.header = Some("X-Slack-Signature".into());
        c.prefix = Some("v0=".into());
        c.timestamp_header = Some("X-Slack-Request-Timestamp".into());
        c.message = Some("v0:{timestamp}:{body}".into());
    });
    let h = headers(&[
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
        ("X-Slack-Request-Timestamp", "1531420618"),
    ]);
    assert_eq!(a.verify(&h, BODY.as_bytes(), at(1531420618 + 60)), Ok(()));
    assert!(matches!(
        a.verify(&h, BODY.as_bytes(), at(1531420618 + 301)),
        Err(AuthError::TimestampOutOfTolerance { .. })
    ));
}

#[test]
fn timestamp_dot_body_and_colon_body() {
    let ts = 1_700_000_000i64;
    let body = br#"{"x":1}"#;
    for (template, sep) in [("{timestamp}.{body}", "."), ("{timestamp}:{body}", ":")] {
        let a = hmac_with(|c| {
            c.secret = Secret::new("k");
            c.header = Some("X-Sig".into());
            c.prefix = Some(String::new());
            c.timestamp_header = Some("X-Ts".into());
            c.message = Some(template.into());
        });
        let sig = hmac_sha256_hex(b"k", &[format!("{ts}{sep}").as_bytes(), body].concat());
        let h = headers(&[("X-Sig", &sig), ("X-Ts", &ts.to_string())]);
        assert_eq!(a.verify(&h, body, at(ts)), Ok(()), "{template}");
        // The other separator's signature does not verify.
        let other = if sep == "." { ":" } else { "." };
        let wrong = hmac_sha256_hex(b"k", &[format!("{ts}{other}").as_bytes(), body].concat());
        let h = headers(&[("X-Sig", &wrong), ("X-Ts", &ts.to_string())]);
        assert_eq!(
            a.verify(&h, body, at(ts)),
            Err(AuthError::Mismatch),
            "{template}"
        );
    }
    // Milliseconds in the timestamp header are read as such.
    let ms = ts * 1000;
    let a = hmac_with(|c| {
        c.secret = Secret::new("k");
        c.header = Some("X-Sig".into());
        c.timestamp_header = Some("X-Ts".into());
        c.message = Some("{timestamp}.{body}".into());
    });
    let sig = hmac_sha256_hex(b"k", &[format!("{ms}.").as_bytes(), body].concat());
    let h = headers(&[("X-Sig", &sig), ("X-Ts", &ms.to_string())]);
    assert_eq!(a.verify(&h, body, at(ts + 10)), Ok(()));
    assert!(matches!(
        a.verify(&h, body, at(ts + 3600)),
        Err(AuthError::TimestampOutOfTolerance { .. })
    ));
}

#[test]
fn two_secrets_during_a_rotation() {
    let a = hmac_with(|c| {
        c.secret = Secret::new("new-secret");
        c.previous_secret = Some(Secret::new("old-secret"));
    });
    let body = b"payload";
    for key in ["new-secret", "old-secret"] {
        let h = headers(&[(
            "X-Signature",
            &format!("sha256={}", hmac_sha256_hex(key.as_bytes(), body)),
        )]);
        assert_eq!(a.verify(&h, body, Utc::now()), Ok(()), "{key}");
    }
    let h = headers(&[(
        "X-Signature",
        &format!("sha256={}", hmac_sha256_hex(b"third-secret", body)),
    )]);
    assert_eq!(a.verify(&h, body, Utc::now()), Err(AuthError::Mismatch));
    // Neither secret shows in Debug.
    let shown = format!("{a:?}");
    assert!(
        !shown.contains("new-secret") && !shown.contains("old-secret"),
        "{shown}"
    );
}

#[test]
fn message_templates_are_checked_at_build() {
    for (template, ts, says) in [
        ("{timestamp}.{body}", None, "needs `timestamp_header`"),
        ("{body}.{timestamp}", Some("X-Ts"), "must end with `{body}`"),
        ("v0:{body}", Some("X-Ts"), "needs a `{timestamp}`"),
        ("{timestamp}{timestamp}{body}", Some("X-Ts"), "once"),
        ("{body}{body}", None, "once"),
    ] {
        let mut c = hmac_cfg("s");
        c.message = Some(template.into());
        c.timestamp_header = ts.map(str::to_string);
        let err = Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic).unwrap_err();
        assert!(err.to_string().contains(says), "{template}: {err}");
    }
    let mut c = hmac_cfg("s");
    c.previous_secret = Some(Secret::new(""));
    assert_eq!(
        Authenticator::build(&AuthConfig::Hmac(c), SourceKind::Generic).unwrap_err(),
        AuthConfigError::EmptySecret("hmac.previous_secret")
    );
}

#[test]
fn a_token_in_a_named_header() {
    let a = build(
        AuthConfig::Header {
            name: "X-Honeycomb-Webhook-Token".into(),
            value: Secret::new("would you like to play a game"),
        },
        SourceKind::Generic,
    );
    let now = Utc::now();
    let ok = headers(&[("x-honeycomb-webhook-token", "would you like to play a game")]);
    assert_eq!(a.verify_headers(&ok, now).map(|_| ()), Ok(()));
    assert_eq!(a.verify(&ok, b"", now), Ok(()));
    let wrong = headers(&[("X-Honeycomb-Webhook-Token", "would you like to play")]);
    assert_eq!(a.verify(&wrong, b"", now), Err(AuthError::BadCredentials));
    assert_eq!(
        a.verify(&HeaderMap::new(), b"", now),
        Err(AuthError::Missing(vec!["X-Honeycomb-Webhook-Token".into()]))
    );
    assert!(!format!("{a:?}").contains("play a game"));
}
