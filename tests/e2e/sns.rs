//! AWS CloudWatch alarms through SNS end to end: the real SNS bodies with the headers SNS sends
//! (`text/plain`, `x-amz-sns-*`), a subscription confirmation logged, an alarm that fires and
//! then resolves, INSUFFICIENT_DATA ignored; certificates and confirmations never fetched from
//! anywhere but SNS (signature checks themselves are unit-tested with a local certificate).

use serde_json::Value;

use crate::support::{fixture, wait_for, Receiver, Switchyard};

fn config(url: &str) -> String {
    format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
sources:
  - name: aws
    kind: sns
    labels: {{ team: cloud }}
    sns: {{ verify_signatures: false, confirm_subscriptions: false }}
  - name: aws-confirm
    kind: sns
    sns: {{ verify_signatures: false }}
  - name: aws-signed
    kind: sns
endpoints:
  - name: hook
    kind: webhook
    url: {url}
    retry: {{ schedule: [50ms] }}
routes:
  - matchers: []
    to: [hook]
"#
    )
}

/// POSTs an SNS body as SNS does.
async fn post(sy: &Switchyard, source: &str, body: &[u8]) -> (u16, Value) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = v["Type"].as_str().unwrap_or("Notification").to_string();
    let id = v["MessageId"].as_str().unwrap_or("").to_string();
    let topic = v["TopicArn"].as_str().unwrap_or("").to_string();
    sy.ingest(
        source,
        body,
        &[
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("User-Agent", "Amazon Simple Notification Service Agent"),
            ("x-amz-sns-message-type", &kind),
            ("x-amz-sns-message-id", &id),
            ("x-amz-sns-topic-arn", &topic),
        ],
    )
    .await
}

/// The alarm fixture with its state changed (SNS sends the same shape for each state).
fn with_state(name: &str, state: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    let mut alarm: Value = serde_json::from_str(v["Message"].as_str().unwrap()).unwrap();
    alarm["OldStateValue"] = alarm["NewStateValue"].clone();
    alarm["NewStateValue"] = state.into();
    v["Message"] = alarm.to_string().into();
    serde_json::to_vec(&v).unwrap()
}

#[actix_rt::test]
async fn cloudwatch_alarm_fires_then_resolves_through_sns() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));

    let (s, b) = post(
        &sy,
        "aws",
        &fixture("aws-sns-subscription-confirmation.json"),
    )
    .await;
    assert_eq!((s, &b["accepted"]), (202, &Value::from(0)), "{b}");
    let logged = wait_for("the SubscribeURL in the log", || {
        let logs = sy.logs();
        logs.contains("Action=ConfirmSubscription").then_some(logs)
    })
    .await;
    assert!(
        logged.contains("sns.confirm_subscriptions is off"),
        "{logged}"
    );

    let (s, b) = post(
        &sy,
        "aws",
        &fixture("aws-sns-cloudwatch-alarm-notification.json"),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["events"][0]["type"], "incident.created", "{b}");
    let created = rx.wait_delivered(1).await.remove(0).json();
    let incident = &created["data"]["incident"];
    assert_eq!(incident["title"], "bucketbytesAlarm");
    assert_eq!(
        incident["dedup_key"],
        "arn:aws:cloudwatch:eu-west-1:1234567890:alarm:bucketbytesAlarm"
    );
    assert_eq!(incident["labels"]["BucketName"], "try.alerta.io");
    assert_eq!(incident["labels"]["team"], "cloud");
    assert_eq!(created["source"]["kind"], "sns");

    let ok = with_state("aws-sns-cloudwatch-alarm-notification.json", "OK");
    let (s, b) = post(&sy, "aws", &ok).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["events"][0]["type"], "incident.resolved", "{b}");
    let resolved = rx.wait_delivered(2).await.remove(1).json();
    assert_eq!(resolved["type"], "incident.resolved");
    assert_eq!(resolved["data"]["incident"]["id"], incident["id"]);

    // INSUFFICIENT_DATA is ignored by default: accepted, nothing recorded.
    let (s, b) = post(
        &sy,
        "aws",
        &fixture("aws-sns-cloudwatch-insufficient-data.json"),
    )
    .await;
    assert_eq!((s, &b["accepted"]), (202, &Value::from(0)), "{b}");
}

#[actix_rt::test]
async fn nothing_is_fetched_from_hosts_that_are_not_sns() {
    let rx = Receiver::start();
    let sy = Switchyard::start(&config(&rx.url));
    let elsewhere = rx.url.replace("/hook", "/SimpleNotificationService-x.pem");

    // A signed source: a certificate URL off SNS is refused before anything is fetched.
    let mut v: Value =
        serde_json::from_slice(&fixture("aws-sns-cloudwatch-alarm-notification.json")).unwrap();
    v["SigningCertURL"] = elsewhere.clone().into();
    let (s, b) = post(&sy, "aws-signed", &serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(s, 401, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or("")
            .contains("SigningCertURL"),
        "{b}"
    );

    // A confirmation whose SubscribeURL is off SNS is refused, not fetched.
    let mut v: Value =
        serde_json::from_slice(&fixture("aws-sns-subscription-confirmation.json")).unwrap();
    v["SubscribeURL"] = elsewhere.into();
    let (s, b) = post(&sy, "aws-confirm", &serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["detail"].as_str().unwrap_or("").contains("not fetched"),
        "{b}"
    );

    // Nothing reached the receiver, and no incident was made.
    assert!(rx.received().is_empty(), "{:?}", rx.received());
}
