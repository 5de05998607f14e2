//! `template:` of an endpoint: a minijinja template that replaces the request body. It is
//! compiled when the config is loaded (a syntax error is a config error with the template's
//! line and column) and rendered per attempt with strict undefined variables, so a typo in a
//! variable name fails the delivery with a message instead of sending an empty field.
//!
//! The context is the webhook body of the event (`id`, `type`, `timestamp`, `source`, `data`)
//! plus the shortcuts `incident` (= `data.incident`), `changes` (= `data.changes`, or none) and
//! `group` (= `data.group` of a `group.notification`, or none).
//! The `tojson` filter writes a value as JSON.
//!
//! A render is bounded, because it runs where deliveries are made: it may spend at most
//! [`DEFAULT_FUEL`] units of minijinja's fuel (about one per instruction and per 64 bytes of
//! data made), so a runaway loop fails fast instead of holding the thread, and its output may
//! be at most [`DEFAULT_MAX_OUTPUT_BYTES`]. Either limit fails that delivery with a message
//! naming the limit; nothing else is affected.

use std::sync::Arc;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use thiserror::Error;

use crate::model::Event;

const NAME: &str = "body";

/// The work one render may do, in minijinja fuel (about one unit per instruction executed and
/// per 64 bytes of data the template makes): a body built from an event's fields and labels
/// uses a few thousand; nested loops over large ranges run out of it in well under a second.
pub const DEFAULT_FUEL: u64 = 500_000;

/// The largest body a template may render: 1 MiB. A render past it stops there and fails.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;

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
    #[error("template rendering stopped{}: it used up its budget of {fuel} units of work (a loop over too many items?)", line.map(|l| format!(" at template line {l}")).unwrap_or_default())]
    OutOfFuel { line: Option<usize>, fuel: u64 },
    #[error("template rendering stopped: the body would be larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// A compiled body template.
#[derive(Clone)]
pub struct BodyTemplate {
    env: Arc<Environment<'static>>,
    max_output: usize,
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
        Self::compile_with_limits(source, DEFAULT_FUEL, DEFAULT_MAX_OUTPUT_BYTES)
    }

    /// As [`compile`](Self::compile), with other limits of fuel and output size.
    pub fn compile_with_limits(
        source: &str,
        fuel: u64,
        max_output: usize,
    ) -> Result<BodyTemplate, TemplateError> {
        let mut env = Environment::new();
        env.set_fuel(Some(fuel));
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Bodies are JSON or text, never HTML: no auto-escaping.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| {
                let line = e.line().unwrap_or(1);
                let col = e
                    .range()
                    .and_then(|r| source.get(..r.start.min(source.len())))
                    .map(|before| {
                        // In characters, as the config's own columns are.
                        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
                        before[line_start..].chars().count() + 1
                    })
                    .unwrap_or(1);
                TemplateError::Syntax {
                    line,
                    col,
                    message: message(&e),
                }
            })?;
        Ok(BodyTemplate {
            env: Arc::new(env),
            max_output,
        })
    }

    /// Renders the body of `event`.
    pub fn render(&self, event: &Event) -> Result<String, TemplateError> {
        let body: serde_json::Value =
            serde_json::from_slice(&super::webhook::body(event, None)).unwrap_or_default();
        let incident = body["data"]["incident"].clone();
        let changes = body["data"]
            .get("changes")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let group = body["data"]
            .get("group")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let mut ctx = match body {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        ctx.insert("incident".into(), incident);
        ctx.insert("changes".into(), changes);
        ctx.insert("group".into(), group);
        let mut out = Limited {
            buf: Vec::new(),
            limit: self.max_output,
            over: false,
        };
        let render_err = |e: minijinja::Error, over: bool| {
            if over {
                TemplateError::TooLarge {
                    limit: self.max_output,
                }
            } else if e.kind() == minijinja::ErrorKind::OutOfFuel {
                TemplateError::OutOfFuel {
                    line: e.line(),
                    fuel: self.env.fuel().unwrap_or_default(),
                }
            } else {
                TemplateError::Render {
                    line: e.line(),
                    message: message(&e),
                }
            }
        };
        let tmpl = self
            .env
            .get_template(NAME)
            .map_err(|e| render_err(e, false))?;
        let result = tmpl.render_captured_to(Value::from(Serde(ctx)), &mut out);
        if let Err(e) = result {
            return Err(render_err(e, out.over));
        }
        String::from_utf8(out.buf).map_err(|e| TemplateError::Render {
            line: None,
            message: format!("the output is not UTF-8: {e}"),
        })
    }
}

/// The render's output, refused past `limit` bytes.
struct Limited {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl std::io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.over = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
                // `  {{ incident.title }`: the lone `}` is at column 21.
                assert_eq!((line, col), (2, 21));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_error_columns_count_characters_on_their_own_line() {
        // Regression: a two-byte character before the error moved the column one to the
        // right (it counted bytes). ` "\u{e9}": {{ x | }}`: the `}}` after the `|` is at 14.
        let err = BodyTemplate::compile("{\"a\": \"\u{e9}\u{e9}\",\n \"\u{e9}\": {{ x | }}\n")
            .unwrap_err();
        assert_eq!(
            err,
            TemplateError::Syntax {
                line: 2,
                col: 14,
                message: "syntax error: unexpected end of variable block, expected identifier"
                    .into()
            }
        );
        // `endfor` without a `for`: the column of the word.
        let err = BodyTemplate::compile("{{ a }} {% endfor %}").unwrap_err();
        assert_eq!(
            err,
            TemplateError::Syntax {
                line: 1,
                col: 12,
                message: "syntax error: unknown statement endfor".into()
            }
        );
    }

    #[test]
    fn nested_loops_run_out_of_fuel_fast_with_a_clear_error() {
        // 10^10 iterations unbounded; with the fuel it stops after a few hundred thousand.
        let t = BodyTemplate::compile(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = t.render(&event(EventType::Created)).unwrap_err();
        assert!(
            matches!(
                err,
                TemplateError::OutOfFuel {
                    fuel: DEFAULT_FUEL,
                    line: Some(1)
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("budget of 500000 units of work"), "{text}");
        // Generous for a slow machine; without the fuel this never ends.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn output_over_the_limit_fails_with_a_clear_error() {
        // Many small writes (a loop), and one large value.
        for source in [
            "{% for a in range(50000) %}{{ incident.title }} {{ a }}\n{% endfor %}",
            "{{ 'x' * 2000000 }}",
        ] {
            let t = BodyTemplate::compile(source).unwrap();
            let err = t.render(&event(EventType::Created)).unwrap_err();
            assert_eq!(
                err,
                TemplateError::TooLarge {
                    limit: DEFAULT_MAX_OUTPUT_BYTES
                },
                "{source}"
            );
            assert_eq!(
                err.to_string(),
                "template rendering stopped: the body would be larger than 1048576 bytes"
            );
        }
        // Up to the limit renders whole; one byte more does not.
        let t = BodyTemplate::compile_with_limits("{{ 'y' * 1000 }}", DEFAULT_FUEL, 1000).unwrap();
        assert_eq!(t.render(&event(EventType::Created)).unwrap().len(), 1000);
        let t = BodyTemplate::compile_with_limits("{{ 'y' * 1001 }}", DEFAULT_FUEL, 1000).unwrap();
        assert_eq!(
            t.render(&event(EventType::Created)).unwrap_err(),
            TemplateError::TooLarge { limit: 1000 }
        );
    }

    #[test]
    fn a_300_mb_body_is_refused_without_being_built() {
        let t = BodyTemplate::compile("{{ 'x' * 300000000 }}").unwrap();
        let err = t.render(&event(EventType::Created)).unwrap_err();
        assert!(
            matches!(
                err,
                TemplateError::OutOfFuel { .. }
                    | TemplateError::TooLarge { .. }
                    | TemplateError::Render { .. }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().is_empty());
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
