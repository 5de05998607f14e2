//! The OpenAPI 3.1 document of the whole HTTP API, served at `GET /api/v1/openapi.json`. A
//! test keeps it true: its operations are exactly [`super::ROUTES`].

use actix_web::HttpResponse;
use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn admin_errors(mut responses: Value) -> Value {
    responses["401"] = error_response("Missing or wrong bearer token");
    responses["404"] = error_response("Not found, or the admin API is off (no admin_token)");
    responses
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn query_param(name: &str, description: &str, values: Option<&[&str]>) -> Value {
    let mut schema = json!({"type": "string"});
    if let Some(v) = values {
        schema["enum"] = json!(v);
    }
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The document.
pub fn document() -> Value {
    let mut doc = paths_v1();
    add_silences(&mut doc);
    doc
}

/// Alertmanager's v2 silences API and status (what amtool uses).
fn add_silences(doc: &mut Value) {
    let admin = json!([{"bearerAuth": []}]);
    let silence = json!({"$ref": "#/components/schemas/Silence"});
    let id = path_param("id", "Silence id");
    let paths = &mut doc["paths"];
    paths["/api/v2/silences"] = json!({
        "get": {
            "summary": "Silences (Alertmanager v2): the API's and routes.yaml's, expired ones for 5 days", "security": admin,
            "parameters": [query_param("filter", "Alertmanager matchers the silence's matchers (as labels) must satisfy; repeatable", None)],
            "responses": admin_errors(json!({
                "200": ok_json("Silences", json!({"type": "array", "items": silence.clone()})),
                "400": error_response("Bad filter")}))
        },
        "post": {
            "summary": "Create a silence, or update the one its id names (Alertmanager v2)", "security": admin,
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PostableSilence"}}}},
            "responses": admin_errors(json!({
                "200": ok_json("Saved", json!({"type": "object", "properties": {"silenceID": {"type": "string"}}})),
                "400": error_response("Invalid silence, or one of routes.yaml, or expired")}))
        }
    });
    paths["/api/v2/silence/{id}"] = json!({
        "get": {"summary": "One silence", "security": admin, "parameters": [id.clone()],
            "responses": admin_errors(json!({"200": ok_json("The silence", silence)}))},
        "delete": {"summary": "Expire a silence now: the open incidents it held are notified", "security": admin,
            "parameters": [id],
            "responses": admin_errors(json!({"200": {"description": "Expired"},
                "400": error_response("Expired already, or a silence of routes.yaml")}))}
    });
    paths["/api/v2/status"] = json!({"get": {
        "summary": "Alertmanager's status, as amtool reads it (no cluster)", "security": admin,
        "responses": admin_errors(json!({"200": ok_json("Status", json!({"type": "object"}))}))
    }});
    let matcher = json!({"type": "object", "required": ["name", "value", "isRegex"], "properties": {
        "name": {"type": "string"}, "value": {"type": "string"}, "isRegex": {"type": "boolean"},
        "isEqual": {"type": "boolean", "default": true}}});
    let postable = json!({"type": "object", "required": ["matchers", "startsAt", "endsAt", "createdBy", "comment"], "properties": {
        "id": {"type": "string"},
        "matchers": {"type": "array", "items": matcher},
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time"},
        "createdBy": {"type": "string"}, "comment": {"type": "string"}}});
    let mut gettable = postable.clone();
    gettable["properties"]["updatedAt"] = json!({"type": "string", "format": "date-time"});
    gettable["properties"]["status"] = json!({"type": "object", "properties": {
        "state": {"type": "string", "enum": ["active", "pending", "expired"]}}});
    let schemas = &mut doc["components"]["schemas"];
    schemas["PostableSilence"] = postable;
    schemas["Silence"] = gettable;
    let held = &mut schemas["Incident"]["properties"];
    held["silenced_by"] = json!({"type": "array", "items": {"type": "string"}, "description": "Ids of the silences holding its events"});
    held["inhibited_by"] = json!({"type": "array", "items": {"type": "string"}, "description": "Ids of the incidents inhibiting it"});
    held["muted_by"] = json!({"type": "array", "items": {"type": "string"}, "description": "Names of the time intervals holding its events"});
}

/// The ingest, health and `/api/v1` paths.
fn paths_v1() -> Value {
    let admin = json!([{"bearerAuth": []}]);
    let incident_ref = json!({"$ref": "#/components/schemas/Incident"});
    let last_hour = json!({"type": "object", "properties": {
        "attempts": {"type": "integer"}, "succeeded": {"type": "integer"},
        "success_rate": {"type": ["number", "null"]}, "mean_ms": {"type": ["integer", "null"]},
        "max_ms": {"type": ["integer", "null"]}}});
    let endpoint = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "kind": {"type": "string"},
        "state": {"type": "string", "enum": ["ok", "circuit_open", "circuit_half_open", "disabled", "retired"]},
        "queue_depth": {"type": "integer"},
        "last_hour": last_hour}});
    let endpoints_schema = json!({"type": "object", "properties": {
        "endpoints": {"type": "array", "items": endpoint}}});
    // Built apart: one json! of the whole document exceeds the macro recursion limit.
    let recover = json!({"post": {
        "summary": "Send every dead delivery of the endpoint again, oldest event first (each as a new delivery; one already replayed is left out)", "security": admin,
        "parameters": [path_param("name", "Endpoint name"),
            {"name": "since", "in": "query", "required": false, "description": "RFC 3339: only deliveries of events at or after this time",
             "schema": {"type": "string", "format": "date-time"}}],
        "responses": admin_errors(json!({
            "202": ok_json("Queued", json!({"type": "object", "properties": {
                "endpoint": {"type": "string"}, "replayed": {"type": "integer"},
                "replays": {"type": "array", "items": {"type": "object", "properties": {
                    "replay_of": {"type": "string"}, "delivery_id": {"type": "string"}}}}}})),
            "400": error_response("`since` is not an RFC 3339 time")}))
    }});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "switchyard",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Self-hosted alert router: ingest, health, metrics and the admin API."
        },
        "paths": {
            "/ingest/{source}": {"post": {
                "summary": "Send a monitoring tool's alert payload to a configured source",
                "parameters": [path_param("source", "The source's name in routes.yaml")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {}}}},
                "responses": {
                    "202": ok_json("Recorded; the events it emitted", json!({"type": "object", "properties": {
                        "accepted": {"type": "integer"},
                        "events": {"type": "array", "items": {"type": "object", "properties": {
                            "type": {"type": "string"}, "incident_id": {"type": "string"}}}}}})),
                    "400": error_response("Malformed or invalid body (with line and column)"),
                    "401": error_response("Bad credentials or signature"),
                    "403": error_response("The sender's address is not in the source's allow_from"),
                    "404": error_response("Unknown source"),
                    "413": error_response("Body too large"),
                    "415": error_response("Not JSON"),
                    "503": error_response("Saturated; retry after Retry-After seconds")
                }
            }},
            "/ingest/{source}/api/v2/alerts": {"post": {
                "summary": "Prometheus' Alertmanager API (a `kind: alertmanager` source): set `path_prefix: /ingest/{source}` in Prometheus' `alerting.alertmanagers`; `/api/v1/alerts` is served too",
                "parameters": [path_param("source", "The name of a `kind: alertmanager` source")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "array"}}}},
                "responses": {
                    "202": ok_json("Recorded; the events it emitted", json!({"type": "object"})),
                    "400": error_response("Malformed or invalid body (with line and column)"),
                    "401": error_response("Bad credentials"),
                    "404": error_response("Unknown source, or not a `kind: alertmanager` source"),
                    "413": error_response("Body too large"),
                    "503": error_response("Saturated; retry after Retry-After seconds")
                }
            }},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": ok_json("Running", json!({"type": "object"}))}}},
            "/readyz": {"get": {"summary": "Readiness (config loaded, store answers)", "responses": {
                "200": ok_json("Ready", json!({"type": "object"})), "503": error_response("Not ready")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "OpenMetrics text", "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok_json("OpenAPI 3.1", json!({"type": "object"}))}}},
            "/api/v1/incidents": {"get": {
                "summary": "List incidents: open ones first, then most recently started first",
                "security": admin,
                "parameters": [
                    query_param("status", "Only incidents in this status", Some(&["triggered", "acknowledged", "resolved"])),
                    query_param("source", "Only incidents of this source", None),
                    query_param("severity", "Only incidents of this severity", Some(&["critical", "error", "warning", "info"])),
                    query_param("matchers", "Label matchers in Alertmanager's syntax, all of which must hold: {team=\"db\", env=~\"prod|staging\"} (over the newest 1000 incidents)", None),
                    query_param("q", "Words that must all be in the title, any case (over the newest 1000 incidents)", None),
                    query_param("limit", "At most this many (default 100, max 1000)", None)
                ],
                "responses": admin_errors(json!({
                    "200": ok_json("Incidents", json!({"type": "object", "properties": {"incidents": {"type": "array", "items": incident_ref.clone()}}})),
                    "400": error_response("Bad filter")}))
            }},
            "/api/v1/groups": {"get": {
                "summary": "Notification groups of grouped routes (group_by): their incidents and next notification",
                "security": admin,
                "responses": admin_errors(json!({
                    "200": ok_json("Groups", json!({"type": "object", "properties": {"groups": {"type": "array", "items": {
                        "type": "object", "properties": {
                            "key": {"type": "string", "description": "route:{label=\"value\",...}"},
                            "route": {"type": "string"},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "endpoints": {"type": "array", "items": {"type": "string"}},
                            "incident_ids": {"type": "array", "items": {"type": "string"}},
                            "changed": {"type": "array", "items": {"type": "string"}, "description": "Incidents changed since the last notification"},
                            "notified_at": {"type": ["string", "null"], "format": "date-time"},
                            "next_notification_at": {"type": ["string", "null"], "format": "date-time"}}}}}}))}))
            }},
            "/api/v1/incidents/{id}": {"get": {
                "summary": "One incident", "security": admin,
                "parameters": [path_param("id", "Incident id (inc_...)")],
                "responses": admin_errors(json!({"200": ok_json("The incident", incident_ref.clone())}))
            }},
            "/api/v1/incidents/{id}/acknowledge": {"post": {
                "summary": "Acknowledge a triggered incident (emits incident.acknowledged)", "security": admin,
                "parameters": [path_param("id", "Incident id")],
                "responses": admin_errors(json!({"200": ok_json("The acknowledged incident", incident_ref.clone()),
                    "409": error_response("Not triggered")}))
            }},
            "/api/v1/incidents/{id}/resolve": {"post": {
                "summary": "Resolve an open incident (emits incident.resolved)", "security": admin,
                "parameters": [path_param("id", "Incident id")],
                "responses": admin_errors(json!({"200": ok_json("The resolved incident", incident_ref.clone()),
                    "409": error_response("Already resolved")}))
            }},
            "/api/v1/deliveries": {"get": {
                "summary": "Deliveries of every endpoint with every attempt", "security": admin,
                "parameters": [
                    query_param("endpoint", "Only this endpoint's", None),
                    query_param("state", "Only deliveries in this state", Some(&["pending", "delivered", "failed", "dead"])),
                    query_param("incident", "Only this incident's (its id)", None)
                ],
                "responses": admin_errors(json!({
                    "200": ok_json("Deliveries", json!({"type": "object", "properties": {
                        "endpoints": {"type": "array", "items": {"type": "object", "properties": {
                            "name": {"type": "string"}, "circuit": {"type": "string", "enum": ["closed", "open", "half_open"]},
                            "disabled": {"type": "boolean"},
                            "last_ping": {"$ref": "#/components/schemas/PingReport"}}}},
                        "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}}})),
                    "400": error_response("Bad filter")}))
            }},
            "/api/v1/deliveries/{id}/replay": {"post": {
                "summary": "Send a delivered or dead delivery's event again (as a new delivery)", "security": admin,
                "parameters": [path_param("id", "Delivery id (dlv_...)")],
                "responses": admin_errors(json!({"202": ok_json("Queued", json!({"type": "object", "properties": {
                    "replay_of": {"type": "string"}, "delivery_id": {"type": "string"}, "endpoint": {"type": "string"}}}))}))
            }},
            "/api/v1/endpoints": {"get": {
                "summary": "Every endpoint: kind, state, queue depth and this process's attempts over the last hour", "security": admin,
                "responses": admin_errors(json!({"200": ok_json("Endpoints", endpoints_schema)}))
            }},
            "/api/v1/route-test": {"post": {
                "summary": "Run a payload through a source and the running routes without sending anything (what `switchyard route-test` prints)", "security": admin,
                "parameters": [{"name": "source", "in": "query", "required": true, "description": "The source's name", "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {}}}},
                "responses": admin_errors(json!({
                    "200": ok_json("Each alert's event and endpoints", json!({"type": "object", "properties": {
                        "text": {"type": "string"}, "endpoints": {"type": "array", "items": {"type": "string"}}}})),
                    "400": error_response("Unknown source, or the adapter refused the payload")}))
            }},
            "/api/v1/endpoints/{name}/test": {"post": {
                "summary": "Send a ping event to the endpoint now and report its answer", "security": admin,
                "parameters": [path_param("name", "Endpoint name")],
                "responses": admin_errors(json!({"200": ok_json("What the endpoint answered", json!({"$ref": "#/components/schemas/PingReport"}))}))
            }},
            "/api/v1/endpoints/{name}/recover": recover,
            "/api/v1/reload": {"post": {
                "summary": "Reload routes.yaml (as SIGHUP does); an invalid file keeps the running config", "security": admin,
                "responses": admin_errors(json!({
                    "200": ok_json("Reloaded", json!({"type": "object", "properties": {
                        "config": {"type": "string"}, "sources": {"type": "integer"}, "endpoints": {"type": "integer"},
                        "retired_endpoints": {"type": "array", "items": {"type": "string"}}}})),
                    "400": error_response("The file is invalid: every error as file:line:col")}))
            }},
            "/api/v1/store/backup": {"post": {
                "summary": "Write a consistent snapshot of the file store to <store.path>/backups/<time>/ (a data directory of its own: copy it away, start switchyard on it to restore)", "security": admin,
                "responses": admin_errors(json!({
                    "200": ok_json("Written", json!({"type": "object", "properties": {
                        "dir": {"type": "string"}, "generation": {"type": "integer"}, "bytes": {"type": "integer"}}})),
                    "409": error_response("The instance runs another store than `file`")}))
            }}
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "PingReport": {"type": "object", "description": "A ping's answer (a test ping, or ping_on_load)", "properties": {
                    "endpoint": {"type": "string"}, "ok": {"type": "boolean"}, "requests": {"type": "integer"},
                    "attempt": {"$ref": "#/components/schemas/Attempt"}}},
                "Error": {"type": "object", "required": ["error", "detail"], "properties": {
                    "error": {"type": "string"}, "detail": {"type": "string"}}},
                "Incident": {"type": "object", "properties": {
                    "id": {"type": "string"}, "dedup_key": {"type": "string"},
                    "status": {"type": "string", "enum": ["triggered", "acknowledged", "resolved"]},
                    "severity": {"type": "string", "enum": ["critical", "error", "warning", "info"]},
                    "title": {"type": "string"}, "description": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "links": {"type": "array", "items": {"type": "object", "properties": {"label": {"type": "string"}, "url": {"type": "string"}}}},
                    "started_at": {"type": "string", "format": "date-time"},
                    "resolved_at": {"type": ["string", "null"], "format": "date-time"},
                    "last_seen_at": {"type": "string", "format": "date-time"},
                    "occurrences": {"type": "integer"},
                    "source": {"type": "object", "properties": {"name": {"type": "string"}, "kind": {"type": "string"}}}}},
                "Attempt": {"type": "object", "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "status": {"type": ["integer", "null"]},
                    "duration_ms": {"type": "integer"},
                    "error": {"type": ["string", "null"]},
                    "response": {"type": "string", "description": "First 1 KiB of the response body"}}},
                "Delivery": {"type": "object", "properties": {
                    "id": {"type": "string"}, "endpoint": {"type": "string"}, "event_id": {"type": "string"},
                    "event_type": {"type": "string"}, "event_at": {"type": "string", "format": "date-time"},
                    "incident_id": {"type": "string"},
                    "state": {"type": "string", "enum": ["pending", "delivered", "failed", "dead"]},
                    "replay_of": {"type": "string"},
                    "next_attempt_at": {"type": "string", "format": "date-time", "description": "A failed delivery's next attempt"},
                    "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}}}}
            }
        }
    })
}

/// `GET /api/v1/openapi.json`
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::http::ROUTES;

    #[test]
    fn the_document_lists_exactly_the_registered_routes() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let registered: BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, registered);
    }

    #[test]
    fn every_reference_resolves_and_path_parameters_are_declared() {
        let doc = document();
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"").skip(1) {
            let name = r.split('"').next().unwrap();
            let key = name.trim_start_matches("#/components/schemas/");
            assert!(doc["components"]["schemas"].get(key).is_some(), "{name}");
        }
        for (path, ops) in doc["paths"].as_object().unwrap() {
            let params: Vec<&str> = path
                .split('{')
                .skip(1)
                .map(|p| p.split('}').next().unwrap())
                .collect();
            for op in ops.as_object().unwrap().values() {
                for p in &params {
                    let declared = op["parameters"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x["name"] == *p && x["in"] == "path"));
                    assert!(declared, "{path}: {p}");
                }
            }
        }
    }
}
