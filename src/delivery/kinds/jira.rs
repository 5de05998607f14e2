//! `kind: jira`: Jira Cloud REST API v3 (<https://developer.atlassian.com/cloud/jira/platform/rest/v3/>),
//! basic auth with the account's email (`username`) and an API token (`token`). `url` is the
//! site (`https://your-domain.atlassian.net`); there is no default.
//!
//! created: `POST /rest/api/3/issue` (summary cut to 255, an Atlassian Document Format
//! description, labels `switchyard` and `switchyard-<dedup key>`); the answer's issue `key` is
//! remembered for the incident (when it is not, e.g. after a restart with the memory store, it
//! is found with `GET /rest/api/3/search/jql` by project and dedup label). updated and
//! acknowledged: a comment on that issue.
//! resolved: `GET .../transitions`, then `POST .../transitions` with the id of the one named
//! `resolve_transition` (default `Done`, compared without case, by transition or target
//! status name). When no issue is found for the incident, nothing is sent (said in the
//! attempt). A `ping` reads `GET /rest/api/3/myself` (checks the credentials, creates nothing).

use actix_web::http::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use actix_web::http::Method;
use serde_json::{json, Value};

use super::{
    base, basic_auth, body_or_template, changes_text, encode_component, omitted, title, truncate,
    Exchange, OutboundRequest, Steps,
};
use crate::config::types::Secret;
use crate::delivery::endpoint::EndpointSpec;
use crate::model::{Event, EventType};
use crate::store::refs::ExternalRefs;

/// Issue type when the endpoint names none.
pub const DEFAULT_ISSUE_TYPE: &str = "Bug";
/// Transition applied on resolve when the endpoint names none.
pub const DEFAULT_RESOLVE_TRANSITION: &str = "Done";

/// A jira endpoint's settings.
#[derive(Debug, Clone)]
pub struct JiraSpec {
    pub username: String,
    pub token: Secret,
    pub project: String,
    pub issue_type: String,
    pub resolve_transition: String,
}

/// The label that carries the dedup key (labels may not contain spaces; at most 255).
pub fn dedup_label(dedup_key: &str) -> String {
    let clean: String = dedup_key
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    super::bounded_key(&format!("switchyard-{clean}"), 255)
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn paragraph(content: Vec<Value>) -> Value {
    json!({"type": "paragraph", "content": content})
}

/// Labels listed in the description; the rest are counted.
pub const MAX_LABELS: usize = 50;

/// The issue description as an Atlassian Document Format document: within Jira's 32,767
/// characters (description 20,000, the facts and up to [`MAX_LABELS`] labels of 200, ten links).
pub fn description(event: &Event) -> Value {
    let inc = &event.incident;
    let mut content = Vec::new();
    if !inc.description.trim().is_empty() {
        content.push(paragraph(vec![text(&truncate(&inc.description, 20_000))]));
    }
    let mut items = vec![
        format!("Severity: {}", inc.severity),
        format!("Source: {} ({})", event.source.name, event.source.kind),
        format!("Incident: {}", inc.id),
        format!("Dedup key: {}", inc.dedup_key),
    ];
    items.extend(
        inc.labels
            .iter()
            .take(MAX_LABELS)
            .map(|(k, v)| truncate(&format!("{k}: {v}"), 200)),
    );
    items.extend(omitted(inc.labels.len(), MAX_LABELS));
    content.push(json!({
        "type": "bulletList",
        "content": items.iter().filter(|i| !i.trim().is_empty()).map(|i| json!({
            "type": "listItem", "content": [paragraph(vec![text(&truncate(i, 1000))])]
        })).collect::<Vec<_>>()
    }));
    let links: Vec<Value> = inc
        .links
        .iter()
        .filter(|l| !l.url.is_empty())
        .take(10)
        .map(|l| {
            json!({"type": "text", "text": truncate(if l.label.is_empty() { &l.url } else { &l.label }, 200),
                   "marks": [{"type": "link", "attrs": {"href": l.url}}]})
        })
        .collect();
    if !links.is_empty() {
        let mut with_sep = Vec::new();
        for (i, l) in links.into_iter().enumerate() {
            if i > 0 {
                with_sep.push(text(" · "));
            }
            with_sep.push(l);
        }
        content.push(paragraph(with_sep));
    }
    json!({"type": "doc", "version": 1, "content": content})
}

/// `POST /rest/api/3/issue` body.
pub fn create_body(spec: &JiraSpec, event: &Event) -> Value {
    json!({
        "fields": {
            "project": {"key": spec.project},
            "issuetype": {"name": spec.issue_type},
            "summary": truncate(title(event), 255),
            "description": description(event),
            "labels": ["switchyard", dedup_label(&event.incident.dedup_key)],
        }
    })
}

/// `GET /rest/api/3/search/jql`: the newest issue of the project carrying the dedup label.
pub fn search_url(site: &str, jira: &JiraSpec, event: &Event) -> String {
    let jql = format!(
        "project = \"{}\" AND labels = \"{}\" ORDER BY created DESC",
        jira.project.replace('"', "\\\""),
        dedup_label(&event.incident.dedup_key).replace('"', "\\\"")
    );
    format!(
        "{site}/rest/api/3/search/jql?jql={}&fields=summary&maxResults=1",
        encode_component(&jql)
    )
}

/// A comment body (ADF).
pub fn comment_body(message: &str) -> Value {
    json!({"body": {"type": "doc", "version": 1, "content": [paragraph(vec![text(message)])]}})
}

/// The id of the transition named `name` (or leading to a status named `name`).
pub fn pick_transition(transitions: &Value, name: &str) -> Option<String> {
    let list = transitions["transitions"].as_array()?;
    let matches = |t: &&Value, field: &Value| {
        field.as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)) && t["id"].is_string()
    };
    list.iter()
        .find(|t| matches(t, &t["name"]))
        .or_else(|| list.iter().find(|t| matches(t, &t["to"]["name"])))
        .and_then(|t| t["id"].as_str().map(str::to_string))
}

fn authed(spec: &JiraSpec, req: OutboundRequest) -> OutboundRequest {
    req.header(AUTHORIZATION, basic_auth(&spec.username, &spec.token))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
}

pub(crate) async fn deliver(
    mut steps: Steps<'_>,
    spec: &EndpointSpec,
    jira: &JiraSpec,
    refs: &dyn ExternalRefs,
    event: &Event,
) -> Exchange {
    let site = base(&spec.url);
    let run = async {
        if event.kind == EventType::Ping {
            steps
                .send(authed(
                    jira,
                    OutboundRequest::get(format!("{site}/rest/api/3/myself")),
                ))
                .await?;
            return Ok(None);
        }
        if event.kind == EventType::Created {
            let body = body_or_template(spec, event, || create_body(jira, event))
                .await
                .map_err(|e| Exchange::fatal(e, None, 0))?;
            let mut req = OutboundRequest::get(format!("{site}/rest/api/3/issue"));
            req.method = Method::POST;
            req.body = Some(body);
            let resp = steps.send(authed(jira, req)).await?;
            let created: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let Some(key) = created["key"].as_str() else {
                return Err(Exchange::fatal(
                    "Jira answered without an issue key".into(),
                    Some(resp),
                    1,
                ));
            };
            if let Err(e) = refs.put(&spec.name, &event.incident.id, key).await {
                tracing::warn!(endpoint = &*spec.name, issue = key, error = %e, "could not remember the Jira issue key");
            }
            return Ok(None);
        }
        let key = match refs.get(&spec.name, &event.incident.id).await {
            Ok(Some(k)) => k,
            Ok(None) => {
                // Not remembered (e.g. a restart with the memory store): find it by its label.
                let resp = steps
                    .send(authed(
                        jira,
                        OutboundRequest::get(search_url(site, jira, event)),
                    ))
                    .await?;
                let found: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                match found["issues"][0]["key"].as_str() {
                    Some(k) => {
                        let _ = refs.put(&spec.name, &event.incident.id, k).await;
                        k.to_string()
                    }
                    None => {
                        return Ok(Some(format!(
                            "no Jira issue found for incident {}; nothing sent",
                            event.incident.id
                        )))
                    }
                }
            }
            Err(e) => {
                return Err(Exchange {
                    verdict: super::Verdict::Retry { retry_after: None },
                    response: None,
                    error: Some(format!("issue key lookup failed: {e}")),
                    requests: 0,
                })
            }
        };
        let issue = format!("{site}/rest/api/3/issue/{}", encode_component(&key));
        match event.kind {
            EventType::Updated
            | EventType::Acknowledged
            | EventType::GroupNotification
            | EventType::Reminder => {
                let msg = match event.kind {
                    EventType::Updated => format!(
                        "switchyard: updated: {}",
                        changes_text(event).unwrap_or_default()
                    ),
                    EventType::Acknowledged => "switchyard: acknowledged".to_string(),
                    EventType::Reminder => "switchyard: reminder: still open".to_string(),
                    _ => "switchyard: group notified".to_string(),
                };
                let req = OutboundRequest::json(
                    Method::POST,
                    format!("{issue}/comment"),
                    &comment_body(&msg),
                );
                steps.send(authed(jira, req)).await?;
            }
            EventType::Resolved => {
                let resp = steps
                    .send(authed(
                        jira,
                        OutboundRequest::get(format!("{issue}/transitions")),
                    ))
                    .await?;
                let list: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                let Some(id) = pick_transition(&list, &jira.resolve_transition) else {
                    let names: Vec<&str> = list["transitions"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
                        .unwrap_or_default();
                    return Err(Exchange::fatal(
                        format!(
                            "Jira issue {key} has no transition `{}` (available: {})",
                            jira.resolve_transition,
                            names.join(", ")
                        ),
                        Some(resp),
                        1,
                    ));
                };
                let req = OutboundRequest::json(
                    Method::POST,
                    format!("{issue}/transitions"),
                    &json!({"transition": {"id": id}}),
                );
                steps.send(authed(jira, req)).await?;
            }
            EventType::Created
            | EventType::Ping
            | EventType::DeliveryDead
            | EventType::EndpointDisabled => {}
        }
        Ok(None)
    };
    let result = run.await;
    steps.finish(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::endpoint::{EndpointSpec, KindSpec};
    use crate::delivery::kinds::tests::{attempt, event, Script};
    use crate::delivery::kinds::{deliver as run, Verdict};
    use crate::store::refs::MemoryRefs;

    fn spec() -> JiraSpec {
        JiraSpec {
            username: "ops@example.com".into(),
            token: Secret::new("t0k"),
            project: "OPS".into(),
            issue_type: "Bug".into(),
            resolve_transition: "Done".into(),
        }
    }

    #[test]
    fn create_issue_has_adf_and_the_dedup_label() {
        let b = create_body(&spec(), &event(EventType::Created));
        let f = &b["fields"];
        assert_eq!(f["project"], json!({"key": "OPS"}));
        assert_eq!(f["issuetype"], json!({"name": "Bug"}));
        assert_eq!(f["summary"], "Disk full on db-1");
        assert_eq!(f["labels"], json!(["switchyard", "switchyard-fp-abc"]));
        let d = &f["description"];
        assert_eq!(d["type"], "doc");
        assert_eq!(d["version"], 1);
        assert_eq!(d["content"][0]["type"], "paragraph");
        assert_eq!(d["content"][1]["type"], "bulletList");
        assert_eq!(
            d["content"][2]["content"][0]["marks"][0]["attrs"]["href"],
            "https://runbooks.example.com/disk"
        );
        assert_eq!(dedup_label("a b"), "switchyard-a_b");
    }

    #[test]
    fn transitions_are_picked_by_name_or_target_status() {
        let list = json!({"transitions": [
            {"id": "11", "name": "To Do", "to": {"name": "To Do"}},
            {"id": "31", "name": "Close it", "to": {"name": "Done"}},
            {"id": "41", "name": "Resolve", "to": {"name": "Resolved"}}
        ]});
        assert_eq!(pick_transition(&list, "resolve").as_deref(), Some("41"));
        assert_eq!(pick_transition(&list, "Done").as_deref(), Some("31"));
        assert_eq!(pick_transition(&list, "Nope"), None);
    }

    #[actix_rt::test]
    async fn create_then_resolve_remembers_and_transitions_the_issue() {
        let mut endpoint = EndpointSpec::for_tests("https://acme.atlassian.net/");
        endpoint.kind_spec = KindSpec::Jira(spec());
        let refs = MemoryRefs::default();
        let t = Script::answering(&[
            (201, r#"{"id":"10001","key":"OPS-7","self":"x"}"#),
            (
                200,
                r#"{"transitions":[{"id":"31","name":"Done","to":{"name":"Done"}}]}"#,
            ),
            (204, ""),
        ]);
        for kind in [EventType::Created, EventType::Resolved] {
            let e = event(kind);
            let o = run(attempt(&endpoint, &e, &refs, &t)).await;
            assert_eq!(o.verdict, Verdict::Success, "{o:?}");
        }
        let sent = t.sent.borrow().clone();
        let urls: Vec<_> = sent
            .iter()
            .map(|r| (r.method.as_str(), r.url.as_str()))
            .collect();
        assert_eq!(
            urls,
            [
                ("POST", "https://acme.atlassian.net/rest/api/3/issue"),
                (
                    "GET",
                    "https://acme.atlassian.net/rest/api/3/issue/OPS-7/transitions"
                ),
                (
                    "POST",
                    "https://acme.atlassian.net/rest/api/3/issue/OPS-7/transitions"
                ),
            ]
        );
        assert_eq!(sent[2].body_json(), json!({"transition": {"id": "31"}}));
        let auth = sent[0]
            .headers
            .iter()
            .find(|(k, _)| k == AUTHORIZATION)
            .unwrap();
        assert_eq!(
            auth.1.to_str().unwrap(),
            "Basic b3BzQGV4YW1wbGUuY29tOnQwaw=="
        );
    }

    #[actix_rt::test]
    async fn an_unremembered_issue_is_found_by_its_label() {
        let mut endpoint = EndpointSpec::for_tests("https://acme.atlassian.net");
        endpoint.kind_spec = KindSpec::Jira(spec());
        let refs = MemoryRefs::default();
        let t = Script::answering(&[(200, r#"{"issues":[{"id":"10001","key":"OPS-9"}]}"#)]);
        let e = event(EventType::Acknowledged);
        let o = run(attempt(&endpoint, &e, &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Success, "{o:?}");
        let sent = t.sent.borrow().clone();
        assert_eq!(
            sent[0].url,
            "https://acme.atlassian.net/rest/api/3/search/jql?jql=project%20%3D%20%22OPS%22%20AND%20labels%20%3D%20%22switchyard-fp-abc%22%20ORDER%20BY%20created%20DESC&fields=summary&maxResults=1"
        );
        assert_eq!(
            sent[1].url,
            "https://acme.atlassian.net/rest/api/3/issue/OPS-9/comment"
        );
        assert_eq!(
            refs.get("test", "inc_1").await.unwrap().as_deref(),
            Some("OPS-9")
        );
    }

    #[actix_rt::test]
    async fn ping_only_reads_myself() {
        let mut endpoint = EndpointSpec::for_tests("https://acme.atlassian.net");
        endpoint.kind_spec = KindSpec::Jira(spec());
        let refs = MemoryRefs::default();
        let t = Script::default();
        let e = event(EventType::Ping);
        let o = run(attempt(&endpoint, &e, &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Success);
        let sent = t.sent.borrow().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (sent[0].method.as_str(), sent[0].url.as_str()),
            ("GET", "https://acme.atlassian.net/rest/api/3/myself")
        );
    }

    #[actix_rt::test]
    async fn a_missing_transition_is_fatal_with_the_names() {
        let mut endpoint = EndpointSpec::for_tests("https://acme.atlassian.net");
        endpoint.kind_spec = KindSpec::Jira(spec());
        let refs = MemoryRefs::default();
        refs.put(&endpoint.name, "inc_1", "OPS-7").await.unwrap();
        let t = Script::answering(&[(200, r#"{"transitions":[{"id":"5","name":"Start"}]}"#)]);
        let e = event(EventType::Resolved);
        let o = run(attempt(&endpoint, &e, &refs, &t)).await;
        assert_eq!(o.verdict, Verdict::Fatal);
        assert!(o.error.unwrap().contains("available: Start"));
    }
}
