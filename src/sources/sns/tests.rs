//! The SNS adapter's tests: the real CloudWatch-via-SNS payloads (tests/fixtures/payloads),
//! their signatures made again with a locally made certificate (tests/fixtures/sns) that an
//! injected fetcher hands out, and subscription confirmation.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::Utc;
use serde_json::Value;

use super::signature::{
    is_sns_host_url, rsa_key_of_certificate, string_to_sign, CertFetcher, SignatureError,
};
use super::*;
use crate::config::types::{SnsConfig, SourceKind};
use crate::sources::test_fixtures::{fixture, fixture_names, source_config};
use crate::sources::SourceSpec;

fn sns_file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/sns/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Hands out the test certificate for any URL and remembers what was asked.
#[derive(Clone, Default)]
struct FakeFetcher {
    asked: Arc<Mutex<Vec<String>>>,
}

#[async_trait(?Send)]
impl CertFetcher for FakeFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self.asked.lock().unwrap().push(url.to_string());
        Ok(sns_file("test-signing-cert.pem"))
    }
}

thread_local! {
    static FAKE: std::cell::RefCell<FakeFetcher> = std::cell::RefCell::new(FakeFetcher::default());
}

/// A `kind: sns` source whose fetcher is the thread's [`FakeFetcher`].
fn spec_with(cfg: Option<SnsConfig>) -> (SourceSpec, FakeFetcher) {
    let fake = FakeFetcher::default();
    FAKE.with(|f| *f.borrow_mut() = fake.clone());
    let mut spec = SourceSpec::build(&source_config("aws", SourceKind::Sns)).unwrap();
    spec.sns = Some(
        SnsReceiver::build(cfg.as_ref(), || {
            Box::new(FAKE.with(|f| f.borrow().clone())) as Box<dyn CertFetcher + Send + Sync>
        })
        .unwrap(),
    );
    (spec, fake)
}

/// A fixture with `Signature` replaced: version 1 from tests/fixtures/sns, version 2 made
/// here with the test key.
fn signed(name: &str, version: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    let sig = match version {
        "1" => String::from_utf8(sns_file(&name.replace(".json", ".v1.sig")))
            .unwrap()
            .trim()
            .to_string(),
        _ => {
            let envelope: Envelope = serde_json::from_value(v.clone()).unwrap();
            let message = string_to_sign(&envelope).unwrap();
            let key =
                ring::signature::RsaKeyPair::from_pkcs8(&sns_file("test-signing-key.pk8")).unwrap();
            let mut sig = vec![0u8; key.public().modulus_len()];
            key.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut sig,
            )
            .unwrap();
            base64::engine::general_purpose::STANDARD.encode(sig)
        }
    };
    v["Signature"] = sig.into();
    v["SignatureVersion"] = version.into();
    serde_json::to_vec(&v).unwrap()
}

fn no_confirm() -> Option<SnsConfig> {
    Some(SnsConfig {
        confirm_subscriptions: Some(false),
        ..SnsConfig::default()
    })
}

#[test]
fn every_sns_fixture_is_covered() {
    assert_eq!(
        fixture_names("aws-sns-"),
        [
            "aws-sns-cloudwatch-alarm-notification.json",
            "aws-sns-cloudwatch-alarm-ok.json",
            "aws-sns-cloudwatch-insufficient-data.json",
            "aws-sns-subscription-confirmation.json",
        ]
    );
}

#[test]
fn alarm_fires_with_its_metric_and_dimensions() {
    let (spec, _) = spec_with(None);
    let alerts = spec
        .normalize(
            &fixture("aws-sns-cloudwatch-alarm-notification.json"),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.title, "bucketbytesAlarm");
    // No AlarmArn in this older message: the same ARN is made from the topic's region.
    assert_eq!(
        a.dedup_key,
        "arn:aws:cloudwatch:eu-west-1:1234567890:alarm:bucketbytesAlarm"
    );
    assert_eq!(a.labels["alertname"], "bucketbytesAlarm");
    assert_eq!(a.labels["region"], "eu-west-1");
    assert_eq!(a.labels["namespace"], "AWS/S3");
    assert_eq!(a.labels["metric_name"], "BucketSizeBytes");
    assert_eq!(a.labels["BucketName"], "try.alerta.io");
    assert_eq!(a.labels["StorageType"], "StandardStorage");
    assert_eq!(a.labels["aws_account_id"], "1234567890");
    assert!(a
        .description
        .starts_with("bucket bytes size exceeded\n\nThreshold Crossed"));
    assert_eq!(a.annotations["old_state"], "INSUFFICIENT_DATA");
    assert_eq!(
        a.annotations["subject"],
        "ALARM: \"bucketbytesAlarm\" in EU (Ireland)"
    );
    assert_eq!(
        a.links[0].url,
        "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/bucketbytesAlarm"
    );
    assert_eq!(
        a.started_at.map(|t| t.to_rfc3339()),
        Some("2019-02-15T23:53:45.093+00:00".into())
    );
    assert_eq!(&*a.source.kind, "sns");
}

#[test]
fn ok_resolves_an_anomaly_alarm_keyed_by_its_arn() {
    let (spec, _) = spec_with(None);
    let a = spec
        .normalize(&fixture("aws-sns-cloudwatch-alarm-ok.json"), Utc::now())
        .unwrap()
        .remove(0);
    assert_eq!(a.status, AlertStatus::Resolved);
    assert_eq!(
        a.dedup_key,
        "arn:aws:cloudwatch:ap-northeast-2:257706363616:alarm:ContainerInsight-pod_cpu_utilization"
    );
    // The metric of a metric-math alarm is under Trigger.Metrics[].MetricStat.
    assert_eq!(a.labels["metric_name"], "pod_cpu_utilization");
    assert_eq!(a.labels["namespace"], "ContainerInsights");
    assert_eq!(a.labels["ClusterName"], "cloudone-dev-v1-eks-cluster");
    assert!(a.ended_at.is_some());
    assert_eq!(a.started_at, None);
}

#[test]
fn insufficient_data_is_configurable() {
    let body = fixture("aws-sns-cloudwatch-insufficient-data.json");
    let (spec, _) = spec_with(None);
    assert_eq!(spec.normalize(&body, Utc::now()).unwrap(), vec![]);
    for (word, want) in [
        ("firing", AlertStatus::Firing),
        ("resolved", AlertStatus::Resolved),
    ] {
        let (spec, _) = spec_with(Some(SnsConfig {
            insufficient_data: Some(word.into()),
            ..SnsConfig::default()
        }));
        let a = spec.normalize(&body, Utc::now()).unwrap().remove(0);
        assert_eq!(a.status, want, "{word}");
        assert_eq!(a.title, "notificationCountAlarm");
    }
    let err = SnsReceiver::https(Some(&SnsConfig {
        insufficient_data: Some("maybe".into()),
        ..SnsConfig::default()
    }))
    .unwrap_err();
    assert!(err.contains("`maybe`"), "{err}");
}

#[test]
fn shapes_that_are_not_alarms_are_refused_clearly() {
    let (spec, _) = spec_with(None);
    for (body, says) in [
        (
            r#"{"Type":"Notification","Message":"plain text"}"#,
            "not a CloudWatch alarm",
        ),
        (
            r#"{"Type":"Notification","Message":"{\"x\":1}"}"#,
            "no `AlarmName`",
        ),
        (r#"{"Type":"Weird"}"#, "`Weird`"),
        (r#"{"Type":"Notification"}"#, "no `Message`"),
    ] {
        let err = spec.normalize(body.as_bytes(), Utc::now()).unwrap_err();
        assert!(err.to_string().contains(says), "{body}: {err}");
    }
    // Confirmations make no alerts offline.
    assert_eq!(
        spec.normalize(
            &fixture("aws-sns-subscription-confirmation.json"),
            Utc::now()
        ),
        Ok(vec![])
    );
}

#[test]
fn sns_hosts_only() {
    for ok in [
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-6aad.pem",
        "https://sns.us-gov-west-1.amazonaws.com/x.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
        "https://SNS.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
    ] {
        assert!(is_sns_host_url(ok), "{ok}");
    }
    for bad in [
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns..amazonaws.com/x.pem",
        "https://sns.eu_west.amazonaws.com/x.pem",
        "https://user@sns.eu-west-1.amazonaws.com/x.pem",
        "https://s3.eu-west-1.amazonaws.com/x.pem",
    ] {
        assert!(!is_sns_host_url(bad), "{bad}");
    }
}

#[test]
fn the_certificates_key_is_found() {
    let key = rsa_key_of_certificate(&sns_file("test-signing-cert.pem")).unwrap();
    // RSAPublicKey ::= SEQUENCE { modulus, exponent } of a 2048-bit key.
    assert_eq!(key[0], 0x30);
    assert!(key.len() > 256, "{}", key.len());
    assert!(
        rsa_key_of_certificate(b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----")
            .is_err()
    );
    assert!(rsa_key_of_certificate(b"\x30\x05\x01").is_err());
    assert!(rsa_key_of_certificate(b"").is_err());
}

#[actix_rt::test]
async fn signatures_of_both_versions_verify_and_tampering_does_not() {
    for version in ["1", "2"] {
        let (spec, fake) = spec_with(None);
        let sns = spec.sns().unwrap();
        for name in [
            "aws-sns-cloudwatch-alarm-notification.json",
            "aws-sns-cloudwatch-alarm-ok.json",
        ] {
            let body = signed(name, version);
            let alerts = sns.receive(&spec, &body).await.unwrap();
            assert_eq!(alerts.len(), 1, "{name} v{version}");
        }
        // Each region's certificate was fetched once, from the message's SigningCertURL.
        let asked = fake.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(asked.iter().all(|u| is_sns_host_url(u)), "{asked:?}");
        let again = signed("aws-sns-cloudwatch-alarm-notification.json", version);
        sns.receive(&spec, &again).await.unwrap();
        assert_eq!(fake.asked.lock().unwrap().len(), 2, "cached");

        // A changed field, the other version's algorithm, a foreign certificate URL.
        let mut v: Value = serde_json::from_slice(&again).unwrap();
        v["Message"] = v["Message"]
            .as_str()
            .unwrap()
            .replace("\"ALARM\"", "\"OK\"")
            .into();
        let tampered = serde_json::to_vec(&v).unwrap();
        assert_eq!(
            sns.receive(&spec, &tampered).await,
            Err(SnsError::Signature(SignatureError::Mismatch))
        );
        let mut v: Value = serde_json::from_slice(&again).unwrap();
        v["SignatureVersion"] = if version == "1" { "2" } else { "1" }.into();
        assert_eq!(
            sns.receive(&spec, &serde_json::to_vec(&v).unwrap()).await,
            Err(SnsError::Signature(SignatureError::Mismatch))
        );
        let mut v: Value = serde_json::from_slice(&again).unwrap();
        v["SigningCertURL"] = "https://evil.example/SimpleNotificationService.pem".into();
        assert!(matches!(
            sns.receive(&spec, &serde_json::to_vec(&v).unwrap()).await,
            Err(SnsError::Signature(SignatureError::CertUrl(_)))
        ));
        assert_eq!(
            fake.asked.lock().unwrap().len(),
            2,
            "nothing fetched from evil.example"
        );
        let mut v: Value = serde_json::from_slice(&again).unwrap();
        v["SignatureVersion"] = "3".into();
        assert!(matches!(
            sns.receive(&spec, &serde_json::to_vec(&v).unwrap()).await,
            Err(SnsError::Signature(SignatureError::Version(_)))
        ));
    }
    // The real payloads' own signatures were made with AWS' key, not the test one.
    let (spec, _) = spec_with(None);
    let real = fixture("aws-sns-cloudwatch-alarm-notification.json");
    assert_eq!(
        spec.sns().unwrap().receive(&spec, &real).await,
        Err(SnsError::Signature(SignatureError::Mismatch))
    );
}

#[actix_rt::test]
async fn subscriptions_are_confirmed_at_sns_hosts_only() {
    let body = signed("aws-sns-subscription-confirmation.json", "1");
    let (spec, fake) = spec_with(None);
    let sns = spec.sns().unwrap();
    assert_eq!(sns.receive(&spec, &body).await, Ok(vec![]));
    let asked = fake.asked.lock().unwrap().clone();
    assert_eq!(
        asked.len(),
        2,
        "the certificate, then the SubscribeURL: {asked:?}"
    );
    assert!(asked[1].starts_with(
        "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:eu-west-1:1234567890:alerta-test&Token="
    ));

    // Off: nothing fetched but the certificate; the URL is logged instead.
    let (spec, fake) = spec_with(no_confirm());
    assert_eq!(spec.sns().unwrap().receive(&spec, &body).await, Ok(vec![]));
    assert_eq!(fake.asked.lock().unwrap().len(), 1);

    // A SubscribeURL elsewhere is not fetched (signatures off to get that far).
    let mut v: Value =
        serde_json::from_slice(&fixture("aws-sns-subscription-confirmation.json")).unwrap();
    v["SubscribeURL"] = "https://attacker.example/?Action=ConfirmSubscription".into();
    let (spec, fake) = spec_with(Some(SnsConfig {
        verify_signatures: Some(false),
        ..SnsConfig::default()
    }));
    let err = spec
        .sns()
        .unwrap()
        .receive(&spec, &serde_json::to_vec(&v).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not fetched"), "{err}");
    assert!(fake.asked.lock().unwrap().is_empty());
}

#[actix_rt::test]
async fn topics_can_be_restricted() {
    let (spec, _) = spec_with(Some(SnsConfig {
        topic_arns: vec!["arn:aws:sns:eu-west-1:1234567890:other".into()],
        ..SnsConfig::default()
    }));
    let body = signed("aws-sns-cloudwatch-alarm-notification.json", "2");
    assert!(matches!(
        spec.sns().unwrap().receive(&spec, &body).await,
        Err(SnsError::Topic(t)) if t == "arn:aws:sns:eu-west-1:1234567890:alerta-test"
    ));
}
