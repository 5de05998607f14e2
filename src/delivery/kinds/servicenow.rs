//! `kind: servicenow`: the Table API on the incident table
//! (<https://docs.servicenow.com/> "Table API"), basic auth (`username`, `token` = password).
//! `url` is the instance (`https://your-instance.service-now.com`); there is no default.
//!
//! created: `POST /api/now/table/incident` with `correlation_id` = the dedup key (cut to 100
//! with a hash), impact and urgency from the severity; the answer's `sys_id` is remembered.
//! updated: `PATCH /api/now/table/incident/{sys_id}` (short description, impact, urgency, a
//! work note). acknowledged: `state` 2 (In Progress). resolved: `state` = `resolve_state`
//! (default 6, Resolved), `close_code` (default `Solution provided`) and `close_notes`.
//! When no `sys_id` is remembered (e.g. after a restart with the memory store), the newest
//! incident with our `correlation_id` is looked up; when there is none, nothing is sent (said
//! in the attempt).
//! A `ping` reads one incident (`GET ...?sysparm_limit=1`): it checks the credentials.

use actix_web::http::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use actix_web::http::Method;
use serde_json::{json, Value};

use super::{
    base, basic_auth, body_or_template, bounded_key, changes_text, encode_component, title,
    truncate, Exchange, OutboundRequest, Steps, Verdict,
};
use crate::config::types::Secret;
use crate::delivery::endpoint::EndpointSpec;
use crate::model::{Event, EventType, Severity};
use crate::store::refs::ExternalRefs;

/// Incident state set on resolve when the endpoint names none (6 = Resolved).
pub const DEFAULT_RESOLVE_STATE: &str = "6";
/// Close code set on resolve when the endpoint names none.
pub const DEFAULT_CLOSE_CODE: &str = "Solution provided";

/// A servicenow endpoint's settings.
#[derive(Debug, Clone)]
pub struct ServicenowSpec {
    pub username: String,
    pub password: Secret,
    pub resolve_state: String,
    pub close_code: String,
}

/// (impact, urgency): critical 1/1 (P1), error 1/2 (P2), warning 2/2 (P3), info 3/3 (P5).
pub fn impact_urgency(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Critical => ("1", "1"),
        Severity::Error => ("1", "2"),
        Severity::Warning => ("2", "2"),
        Severity::Info => ("3", "3"),
    }
}

fn text_description(event: &Event) -> String {
    let inc = &event.incident;
    let mut out = inc.description.clone();
    out.push_str(&format!(
        "\n\nSeverity: {}\nSource: {} ({})\nIncident: {}\nDedup key: {}",
        inc.severity, event.source.name, event.source.kind, inc.id, inc.dedup_key
    ));
    for (k, v) in &inc.labels {
        out.push_str(&format!("\n{k}: {v}"));
    }
    for l in &inc.links {
        out.push_str(&format!("\n{}: {}", l.label, l.url));
    }
    truncate(out.trim(), 4000)
}

/// `POST /api/now/table/incident` body.
pub fn create_body(event: &Event) -> Value {
    let (impact, urgency) = impact_urgency(event.incident.severity);
    json!({
        "short_description": truncate(title(event), 160),
        "description": text_description(event),
        "correlation_id": bounded_key(&event.incident.dedup_key, 100),
        "correlation_display": "switchyard",
        "impact": impact,
        "urgency": urgency,
    })
}

/// `PATCH /api/now/table/incident/{sys_id}` body for an event after `created`.
pub fn update_body(spec: &ServicenowSpec, event: &Event) -> Value {
    match event.kind {
        EventType::Acknowledged => json!({"state": "2", "work_notes": "switchyard: acknowledged"}),
        EventType::Resolved => json!({
            "state": spec.resolve_state,
            "close_code": spec.close_code,
            "close_notes": format!("Resolved: {} reported the incident resolved (switchyard).", event.source.name),
        }),
        _ => {
            let (impact, urgency) = impact_urgency(event.incident.severity);
            json!({
                "short_description": truncate(title(event), 160),
                "impact": impact,
                "urgency": urgency,
                "work_notes": format!("switchyard: updated: {}", changes_text(event).unwrap_or_default()),
            })
        }
    }
}

/// `GET .../incident?sysparm_query=correlation_id=<key>^ORDERBYDESCsys_created_on`.
pub fn lookup_url(table: &str, event: &Event) -> String {
    let query = format!(
        "correlation_id={}^ORDERBYDESCsys_created_on",
        bounded_key(&event.incident.dedup_key, 100)
    );
    format!(
        "{table}?sysparm_query={}&sysparm_fields=sys_id&sysparm_limit=1",
        encode_component(&query)
    )
}

fn authed(spec: &ServicenowSpec, req: OutboundRequest) -> OutboundRequest {
    req.header(AUTHORIZATION, basic_auth(&spec.username, &spec.password))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
}

pub(crate) async fn deliver(
    mut steps: Steps<'_>,
    spec: &EndpointSpec,
    snow: &ServicenowSpec,
    refs: &dyn ExternalRefs,
    event: &Event,
) -> Exchange {
    let table = format!("{}/api/now/table/incident", base(&spec.url));
    let run = async {
        match event.kind {
            EventType::Ping => {
                let req =
                    OutboundRequest::get(format!("{table}?sysparm_limit=1&sysparm_fields=sys_id"));
                steps.send(authed(snow, req)).await?;
                Ok(None)
            }
            EventType::Created => {
                let body = body_or_template(spec, event, || create_body(event))
                    .await
                    .map_err(|e| Exchange::fatal(e, None, 0))?;
                let mut req = OutboundRequest::get(table.clone());
                req.method = Method::POST;
                req.body = Some(body);
                let resp = steps.send(authed(snow, req)).await?;
                let created: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                let Some(sys_id) = created["result"]["sys_id"].as_str() else {
                    return Err(Exchange::fatal(
                        "ServiceNow answered without result.sys_id".into(),
                        Some(resp),
                        1,
                    ));
                };
                if let Err(e) = refs.put(&spec.name, &event.incident.id, sys_id).await {
                    tracing::warn!(endpoint = &*spec.name, sys_id, error = %e, "could not remember the ServiceNow sys_id");
                }
                Ok(None)
            }
            _ => {
                let sys_id = match refs.get(&spec.name, &event.incident.id).await {
                    Ok(Some(s)) => s,
                    Ok(None) => {
                        // Not remembered (e.g. a restart with the memory store): find the
                        // newest record with our correlation_id.
                        let resp = steps
                            .send(authed(
                                snow,
                                OutboundRequest::get(lookup_url(&table, event)),
                            ))
                            .await?;
                        let found: Value =
                            serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                        match found["result"][0]["sys_id"].as_str() {
                            Some(id) => {
                                let _ = refs.put(&spec.name, &event.incident.id, id).await;
                                id.to_string()
                            }
                            None => {
                                return Ok(Some(format!(
                                    "no ServiceNow incident found for incident {}; nothing sent",
                                    event.incident.id
                                )))
                            }
                        }
                    }
                    Err(e) => {
                        return Err(Exchange {
                            verdict: Verdict::Retry { retry_after: None },
                            response: None,
                            error: Some(format!("sys_id lookup failed: {e}")),
                            requests: 0,
                        })
                    }
                };
                let req = OutboundRequest::json(
                    Method::PATCH,
                    format!("{table}/{}", encode_component(&sys_id)),
                    &update_body(snow, event),
                );
                steps.send(authed(snow, req)).await?;
                Ok(None)
            }
        }
    };
    let result = run.await;
    steps.finish(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::endpoint::KindSpec;
    use crate::delivery::kinds::deliver as run;
    use crate::delivery::kinds::tests::{attempt, event, Script};
    use crate::store::refs::MemoryRefs;

    fn spec() -> ServicenowSpec {
        ServicenowSpec {
            username: "admin".into(),
            password: Secret::new("pw"),
            resolve_state: "6".into(),
            close_code: "Solution provided".into(),
        }
    }

    #[test]
    fn create_body_uses_the_incident_table_fields() {
        let b = create_body(&event(EventType::Created));
        assert_eq!(b["short_description"], "Disk full on db-1");
        assert_eq!(b["correlation_id"], "fp-abc");
        assert_eq!(b["impact"], "1");
        assert_eq!(b["urgency"], "1");
        assert!(b["description"].as_str().unwrap().contains("team: ops"));
        let mut e = event(EventType::Created);
        e.incident.dedup_key = "k".repeat(400);
        assert_eq!(
            create_body(&e)["correlation_id"].as_str().unwrap().len(),
            100
        );
    }

    #[actix_rt::test]
    async fn an_unremembered_record_is_found_by_correlation_id() {
        let mut endpoint = EndpointSpec::for_tests("https://acme.service-now.com");
        endpoint.kind_spec = KindSpec::Servicenow(spec());
        let refs = MemoryRefs::default();
        let t = Script::answering(&[(200, r#"{"result":[{"sys_id":"s9"}]}"#)]);
        let e = event(EventType::Resolved);
        let o = run(attempt(&endpoint, &e, &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Success, "{o:?}");
        let sent = t.sent.borrow().clone();
        assert_eq!(
            sent[0].url,
            "https://acme.service-now.com/api/now/table/incident?sysparm_query=correlation_id%3Dfp-abc%5EORDERBYDESCsys_created_on&sysparm_fields=sys_id&sysparm_limit=1"
        );
        assert_eq!(
            sent[1].url,
            "https://acme.service-now.com/api/now/table/incident/s9"
        );
        let none = Script::answering(&[(200, r#"{"result":[]}"#)]);
        let refs2 = MemoryRefs::default();
        let o = run(attempt(&endpoint, &e, &refs2, &none)).await;
        assert_eq!(o.verdict, Verdict::Success);
        assert!(o.error.unwrap().contains("nothing sent"));
        assert_eq!(none.sent.borrow().len(), 1);
    }

    #[actix_rt::test]
    async fn ping_only_reads_one_incident() {
        let mut endpoint = EndpointSpec::for_tests("https://acme.service-now.com/");
        endpoint.kind_spec = KindSpec::Servicenow(spec());
        let refs = MemoryRefs::default();
        let t = Script::default();
        let e = event(EventType::Ping);
        let o = run(attempt(&endpoint, &e, &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Success);
        let sent = t.sent.borrow().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].method.as_str(), sent[0].url.as_str()),
            ("GET", "https://acme.service-now.com/api/now/table/incident?sysparm_limit=1&sysparm_fields=sys_id")
        );
    }

    #[actix_rt::test]
    async fn created_then_acknowledged_then_resolved() {
        let mut endpoint = EndpointSpec::for_tests("https://acme.service-now.com");
        endpoint.kind_spec = KindSpec::Servicenow(spec());
        let refs = MemoryRefs::default();
        let t = Script::answering(&[(
            201,
            r#"{"result":{"sys_id":"abc123","number":"INC0010001"}}"#,
        )]);
        for kind in [
            EventType::Created,
            EventType::Acknowledged,
            EventType::Resolved,
        ] {
            let e = event(kind);
            let o = run(attempt(&endpoint, &e, &refs, &t)).await;
            assert_eq!(o.verdict, Verdict::Success, "{o:?}");
            assert_eq!(o.error, None);
        }
        let sent = t.sent.borrow().clone();
        assert_eq!(
            sent[0].url,
            "https://acme.service-now.com/api/now/table/incident"
        );
        assert_eq!(sent[1].method, Method::PATCH);
        assert_eq!(
            sent[1].url,
            "https://acme.service-now.com/api/now/table/incident/abc123"
        );
        assert_eq!(sent[1].body_json()["state"], "2");
        assert_eq!(
            sent[2].body_json(),
            json!({"state": "6", "close_code": "Solution provided",
                   "close_notes": "Resolved: prometheus reported the incident resolved (switchyard)."})
        );
    }
}
