//! The Amazon SNS adapter (`kind: sns`): CloudWatch alarms through an SNS topic's HTTP(S)
//! subscription.
//!
//! SNS POSTs a JSON envelope (with `Content-Type: text/plain`). Its `Type` is
//! - `SubscriptionConfirmation`: switchyard confirms by fetching its `SubscribeURL`, only when
//!   that is `https://sns.<region>.amazonaws.com/...` (or logs the URL for the operator when
//!   `sns.confirm_subscriptions` is false);
//! - `Notification`: its `Message` is the CloudWatch alarm, as a JSON *string*: `ALARM`
//!   fires, `OK` resolves, `INSUFFICIENT_DATA` does what `sns.insufficient_data` says;
//! - `UnsubscribeConfirmation`: logged.
//!
//! Every message is signed by SNS (RSA, [`signature`]); the signature is checked unless
//! `sns.verify_signatures` is false. Checking it fetches SNS' certificate over https, so it
//! runs asynchronously ([`SnsReceiver::receive`]); [`normalize`] is the offline part
//! (`route-test`, fuzzing).

pub mod signature;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{NormalizeError, SourceSpec};
use crate::config::types::SnsConfig;
use crate::model::{Alert, AlertStatus, Labels, Link};
use signature::{is_sns_host_url, CertFetcher, HttpsFetcher, SignatureChecker, SignatureError};

/// The SNS envelope (HTTP/S delivery format). Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, rename = "MessageId")]
    pub message_id: Option<String>,
    #[serde(default, rename = "Token")]
    pub token: Option<String>,
    #[serde(default, rename = "TopicArn")]
    pub topic_arn: Option<String>,
    #[serde(default, rename = "Subject")]
    pub subject: Option<String>,
    #[serde(default, rename = "Message")]
    pub message: Option<String>,
    #[serde(default, rename = "SubscribeURL", alias = "SubscribeUrl")]
    pub subscribe_url: Option<String>,
    #[serde(default, rename = "Timestamp")]
    pub timestamp: Option<String>,
    #[serde(default, rename = "SignatureVersion")]
    pub signature_version: Option<String>,
    #[serde(default, rename = "Signature")]
    pub signature: Option<String>,
    #[serde(default, rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub signing_cert_url: Option<String>,
}

/// What `INSUFFICIENT_DATA` means for a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsufficientData {
    Ignore,
    Firing,
    Resolved,
}

/// A `kind: sns` source's options, and its signature checker.
pub struct SnsReceiver {
    verify_signatures: bool,
    confirm_subscriptions: bool,
    insufficient_data: InsufficientData,
    topic_arns: Vec<String>,
    checker: SignatureChecker,
    /// Fetches `SubscribeURL` to confirm a subscription.
    confirmer: Box<dyn CertFetcher + Send + Sync>,
}

/// The `sns:` options with their defaults: (verify_signatures, confirm_subscriptions,
/// insufficient_data, topic_arns), or which one cannot be used.
type Options = (bool, bool, InsufficientData, Vec<String>);

fn options(cfg: Option<&SnsConfig>) -> Result<Options, String> {
    let d = SnsConfig::default();
    let cfg = cfg.unwrap_or(&d);
    let insufficient = match cfg.insufficient_data.as_deref().map(str::trim) {
        None | Some("ignore") => InsufficientData::Ignore,
        Some("firing") => InsufficientData::Firing,
        Some("resolved") => InsufficientData::Resolved,
        Some(other) => {
            return Err(format!(
                "insufficient_data: `{other}` (expected ignore, firing or resolved)"
            ))
        }
    };
    Ok((
        cfg.verify_signatures.unwrap_or(true),
        cfg.confirm_subscriptions.unwrap_or(true),
        insufficient,
        cfg.topic_arns.clone(),
    ))
}

impl std::fmt::Debug for SnsReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsReceiver")
            .field("verify_signatures", &self.verify_signatures)
            .field("confirm_subscriptions", &self.confirm_subscriptions)
            .field("insufficient_data", &self.insufficient_data)
            .field("topic_arns", &self.topic_arns)
            .finish_non_exhaustive()
    }
}

impl SnsReceiver {
    /// The receiver of a source, fetching certificates and confirmations with `fetcher`.
    pub fn build(
        cfg: Option<&SnsConfig>,
        fetcher: fn() -> Box<dyn CertFetcher + Send + Sync>,
    ) -> Result<SnsReceiver, String> {
        let (verify_signatures, confirm_subscriptions, insufficient_data, topic_arns) =
            options(cfg)?;
        Ok(SnsReceiver {
            verify_signatures,
            confirm_subscriptions,
            insufficient_data,
            topic_arns,
            checker: SignatureChecker::new(fetcher()),
            confirmer: fetcher(),
        })
    }

    /// The receiver switchyard uses: certificates and confirmations over https.
    pub fn https(cfg: Option<&SnsConfig>) -> Result<SnsReceiver, String> {
        Self::build(cfg, || Box::new(HttpsFetcher))
    }

    /// Checks, and acts on, one SNS request: the signature, the topic, then a subscription is
    /// confirmed and a notification normalized.
    pub async fn receive(&self, spec: &SourceSpec, body: &[u8]) -> Result<Vec<Alert>, SnsError> {
        let envelope = parse_envelope(body)?;
        if self.verify_signatures {
            self.checker.verify(&envelope).await?;
        }
        if !self.topic_arns.is_empty()
            && !envelope
                .topic_arn
                .as_ref()
                .is_some_and(|t| self.topic_arns.contains(t))
        {
            return Err(SnsError::Topic(
                envelope.topic_arn.clone().unwrap_or_default(),
            ));
        }
        match envelope.kind.as_str() {
            "SubscriptionConfirmation" => {
                self.confirm(spec, &envelope).await?;
                Ok(Vec::new())
            }
            _ => Ok(alerts_of(spec, &envelope, self.insufficient_data)?),
        }
    }

    async fn confirm(&self, spec: &SourceSpec, e: &Envelope) -> Result<(), SnsError> {
        let url = e.subscribe_url.as_deref().unwrap_or("");
        let topic = e.topic_arn.as_deref().unwrap_or("");
        if !self.confirm_subscriptions {
            tracing::warn!(source = %spec.name, topic = %topic, subscribe_url = %url,
                "SNS subscription confirmation received; open the SubscribeURL to confirm it (sns.confirm_subscriptions is off)");
            return Ok(());
        }
        if !is_sns_host_url(url) {
            return Err(SnsError::Normalize(NormalizeError::Shape(format!(
                "SubscribeURL `{}` is not an https URL on an sns.<region>.amazonaws.com host; not fetched",
                shorten(url)
            ))));
        }
        self.confirmer.fetch(url).await.map_err(|e| {
            SnsError::Normalize(NormalizeError::Upstream(format!(
                "confirming the SNS subscription failed: {e}"
            )))
        })?;
        tracing::info!(source = %spec.name, topic = %topic, "SNS subscription confirmed");
        Ok(())
    }
}

/// Why an SNS request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("topic `{0}` is not one of this source's sns.topic_arns")]
    Topic(String),
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
}

fn shorten(s: &str) -> String {
    s.chars().take(200).collect()
}

fn parse_envelope(body: &[u8]) -> Result<Envelope, NormalizeError> {
    serde_json::from_slice(body).map_err(NormalizeError::from_json)
}

/// The alerts of a request, without checking its signature (offline: `route-test`).
pub fn normalize(spec: &SourceSpec, body: &[u8]) -> Result<Vec<Alert>, NormalizeError> {
    let envelope = parse_envelope(body)?;
    let insufficient = spec
        .sns
        .as_ref()
        .map(|s| s.insufficient_data)
        .unwrap_or(InsufficientData::Ignore);
    alerts_of(spec, &envelope, insufficient)
}

/// CloudWatch's `StateChangeTime` (`2019-02-15T23:53:45.093+0000`) or RFC 3339.
fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    let s = s?.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.to_utc())
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The region code (`eu-west-1`) of an ARN.
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

fn alerts_of(
    spec: &SourceSpec,
    e: &Envelope,
    insufficient: InsufficientData,
) -> Result<Vec<Alert>, NormalizeError> {
    match e.kind.as_str() {
        "Notification" => {}
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => return Ok(Vec::new()),
        other => {
            return Err(NormalizeError::Shape(format!(
                "SNS message type `{}` is not one of Notification, SubscriptionConfirmation, UnsubscribeConfirmation",
                shorten(other)
            )))
        }
    }
    let message = e
        .message
        .as_deref()
        .ok_or_else(|| NormalizeError::Shape("the SNS notification has no `Message`".into()))?;
    let alarm: Value = serde_json::from_str(message).map_err(|err| {
        NormalizeError::Shape(format!(
            "the SNS notification's `Message` is not a CloudWatch alarm (JSON): {err}"
        ))
    })?;
    let name = text(&alarm, "AlarmName").ok_or_else(|| {
        NormalizeError::Shape(
            "the SNS notification's `Message` has no `AlarmName`: not a CloudWatch alarm".into(),
        )
    })?;
    let state = text(&alarm, "NewStateValue").unwrap_or_default();
    let status = match state.as_str() {
        "ALARM" => AlertStatus::Firing,
        "OK" => AlertStatus::Resolved,
        "INSUFFICIENT_DATA" => match insufficient {
            InsufficientData::Ignore => return Ok(Vec::new()),
            InsufficientData::Firing => AlertStatus::Firing,
            InsufficientData::Resolved => AlertStatus::Resolved,
        },
        other => {
            return Err(NormalizeError::Shape(format!(
                "CloudWatch NewStateValue `{}` (expected ALARM, OK or INSUFFICIENT_DATA)",
                shorten(other)
            )))
        }
    };
    let account = text(&alarm, "AWSAccountId").unwrap_or_default();
    let alarm_arn = text(&alarm, "AlarmArn");
    let region_code = alarm_arn
        .as_deref()
        .and_then(arn_region)
        .or_else(|| e.topic_arn.as_deref().and_then(arn_region))
        .map(str::to_string);
    let dedup_key = alarm_arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:cloudwatch:{}:{account}:alarm:{name}",
            region_code.as_deref().unwrap_or("")
        )
    });

    let mut labels = Labels::new();
    labels.insert("alertname".into(), name.clone());
    if !account.is_empty() {
        labels.insert("aws_account_id".into(), account);
    }
    if let Some(r) = &region_code {
        labels.insert("region".into(), r.clone());
    }
    let trigger = alarm.get("Trigger").cloned().unwrap_or(Value::Null);
    // A single-metric alarm names its metric in `Trigger`; a metric-math or anomaly alarm in
    // `Trigger.Metrics[].MetricStat.Metric`.
    let metric = if trigger.get("MetricName").is_some_and(|m| !m.is_null()) {
        Some(trigger.clone())
    } else {
        trigger
            .get("Metrics")
            .and_then(Value::as_array)
            .and_then(|ms| {
                ms.iter()
                    .find_map(|m| m.pointer("/MetricStat/Metric").cloned())
            })
    };
    if let Some(m) = &metric {
        if let Some(ns) = text(m, "Namespace") {
            labels.insert("namespace".into(), ns);
        }
        if let Some(mn) = text(m, "MetricName") {
            labels.insert("metric_name".into(), mn);
        }
        for d in m
            .get("Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // `{name, value}` in notifications (lowercase), `{Name, Value}` elsewhere.
            let n = text(d, "name").or_else(|| text(d, "Name"));
            let v = text(d, "value").or_else(|| text(d, "Value"));
            if let (Some(n), Some(v)) = (n, v) {
                labels.entry(n).or_insert(v);
            }
        }
    }
    spec.add_source_labels(&mut labels);

    let mut annotations = Labels::new();
    for (key, from) in [
        ("new_state_reason", "NewStateReason"),
        ("old_state", "OldStateValue"),
        ("new_state", "NewStateValue"),
        ("region_name", "Region"),
    ] {
        if let Some(v) = text(&alarm, from) {
            annotations.insert(key.into(), v);
        }
    }
    if let Some(s) = &e.subject {
        annotations.insert("subject".into(), s.clone());
    }
    let description = match (
        text(&alarm, "AlarmDescription"),
        text(&alarm, "NewStateReason"),
    ) {
        (Some(d), Some(r)) => format!("{d}\n\n{r}"),
        (Some(d), None) => d,
        (None, Some(r)) => r,
        (None, None) => String::new(),
    };
    let links = region_code
        .map(|r| Link {
            label: "CloudWatch alarm".into(),
            url: format!(
                "https://console.aws.amazon.com/cloudwatch/home?region={r}#alarmsV2:alarm/{}",
                percent_encode(&name)
            ),
        })
        .into_iter()
        .collect();
    let changed = parse_time(text(&alarm, "StateChangeTime").as_deref());
    Ok(vec![Alert {
        dedup_key,
        status,
        severity: spec.default_severity,
        title: name,
        description,
        labels,
        annotations,
        links,
        started_at: (status == AlertStatus::Firing).then_some(changed).flatten(),
        ended_at: (status == AlertStatus::Resolved)
            .then_some(changed)
            .flatten(),
        expires_at: None,
        source: spec.source_ref(),
    }])
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
