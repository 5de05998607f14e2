//! `template:` of an endpoint: a minijinja template that replaces the request body. It is
//! compiled when the config is loaded (a syntax error is a config error with the template's
//! line and column) and rendered per attempt with strict undefined variables, so a typo in a
//! variable name fails the delivery with a message instead of sending an empty field.
//!
//! The context is the webhook body of the event (`id`, `type`, `timestamp`, `source`, `data`)
//! plus the shortcuts `incident` (= `data.incident`) and `changes` (= `data.changes`, or none).
//! The `tojson` filter writes a value as JSON.

use std::sync::Arc;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use thiserror::Error;

use crate::model::Event;

const NAME: &str = "body";

/// A template that failed to compile or render.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("template line {line} column {col}: {message}")]
    Syntax {
        line: usize,
        col: usize,
        message: String,
    },
    #[error("template rendering failed{}: {message}", line.map(|l| format!(" at template line {l}")).unwrap_or_default())]
    Render {
        line: Option<usize>,
        message: String,
    },
}

/// A compiled body template.
#[derive(Clone)]
pub struct BodyTemplate {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for BodyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyTemplate")
    }
}

fn message(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    }
}

impl BodyTemplate {
    /// Compiles `source`; a syntax error names its line and column in the template.
    pub fn compile(source: &str) -> Result<BodyTemplate, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Bodies are JSON or text, never HTML: no auto-escaping.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| {
                let line = e.line().unwrap_or(1);
                let col = e
                    .range()
                    .map(|r| {
                        let start = r.start.min(source.len());
                        let before = &source[..start];
                        start - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1
                    })
                    .unwrap_or(1);
                TemplateError::Syntax {
                    line,
                    col,
                    message: message(&e),
                }
            })?;
        Ok(BodyTemplate { env: Arc::new(env) })
    }

    /// Renders the body of `event`.
    pub fn render(&self, event: &Event) -> Result<String, TemplateError> {
        let body: serde_json::Value =
            serde_json::from_slice(&super::webhook::body(event)).unwrap_or_default();
        let incident = body["data"]["incident"].clone();
        let changes = body["data"]
            .get("changes")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let mut ctx = match body {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        ctx.insert("incident".into(), incident);
        ctx.insert("changes".into(), changes);
        let render_err = |e: minijinja::Error| TemplateError::Render {
            line: e.line(),
            message: message(&e),
        };
        let tmpl = self.env.get_template(NAME).map_err(render_err)?;
        tmpl.render(Value::from(Serde(ctx))).map_err(render_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;
    use crate::model::EventType;

    #[test]
    fn renders_the_event_fields() {
        let t = BodyTemplate::compile(
            r#"{"text": {{ (incident.title ~ " is " ~ type) | tojson }}, "sev": "{{ incident.severity }}", "src": "{{ source.name }}"}"#,
        )
        .unwrap();
        let out = t.render(&event(EventType::Created)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"text": "Disk full on db-1 is incident.created", "sev": "critical", "src": "prometheus"})
        );
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = BodyTemplate::compile("line one\n  {{ incident.title }\n").unwrap_err();
        match err {
            TemplateError::Syntax { line, col, .. } => {
                assert_eq!(line, 2);
                assert!(col > 1, "column points into the line: {col}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn undefined_variables_fail_the_render() {
        let t = BodyTemplate::compile("{{ incident.titel }}").unwrap();
        let err = t.render(&event(EventType::Created)).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Render { message, .. } if message.contains("undefined")),
            "{err}"
        );
    }
}
