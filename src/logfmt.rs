//! How log fields are written in text logs: every value with its control characters escaped,
//! so that a payload value (a status, a dedup key, a receiver's answer) carrying a newline
//! cannot forge a log line. JSON logs escape by themselves.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::fmt::FormatFields;

/// `value` with control characters (newlines, carriage returns, escapes, ...) written as
/// `\n`, `\r`, `\u{1b}`; everything else as it is.
pub fn escape_controls(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The field formatter of text logs: `message` as it is, other fields as `name=value`, all
/// escaped by [`escape_controls`], separated by spaces.
pub fn text_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(
        |w: &mut Writer<'_>, field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
            let text = escape_controls(&format!("{value:?}"));
            if field.name() == "message" {
                w.write_str(&text)
            } else {
                write!(w, "{}={}", field.name(), text)
            }
        },
    )
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Regression (hardening item 9): a newline in a payload value forged a log line.
    #[test]
    fn a_newline_in_a_value_cannot_forge_a_log_line() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(text_fields())
            .with_writer(move || writer.clone())
            .finish();
        let status = "firing\n2026-12-02T00:00:00Z  INFO switchyard: admin token is hunter2";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(status = %status, key = ?"a\rb", "ingest refused: {}", "x\ny");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains(r"status=firing\n2026"), "{out}");
        assert!(out.contains(r"ingest refused: x\ny"), "{out}");
        assert!(out.contains(r#"key="a\rb""#), "{out}");
    }
}
