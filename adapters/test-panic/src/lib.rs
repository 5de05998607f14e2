//! A test-only plugin (`plugin: test-panic`) for switchyard's end-to-end tests: it panics
//! when the body has `"panic": true`, sleeps `"sleep_ms"` milliseconds when given, waits (up
//! to 60 s) until the file `"wait_for_file"` exists when given, fails with `"fail": "message"`,
//! answers malformed alerts with `"bad": "empty_key"` or `"bad": "time"`, and otherwise
//! returns one firing alert keyed by the body's `"id"`.

use switchyard_adapter_sdk::serde_json::Value;
use switchyard_adapter_sdk::{export_adapter, Adapter, AdapterError, Alert, Request, Status};

pub struct TestPanic;

impl Adapter for TestPanic {
    const NAME: &'static str = "test-panic";
    const VERSION: &'static str = "0.0.1";

    fn normalize(req: &Request) -> Result<Vec<Alert>, AdapterError> {
        let body: Value = req.json()?;
        if body["panic"] == Value::Bool(true) {
            panic!("test-panic was asked to panic");
        }
        if let Some(ms) = body["sleep_ms"].as_u64() {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if let Some(path) = body["wait_for_file"].as_str() {
            let start = std::time::Instant::now();
            while !std::path::Path::new(path).exists()
                && start.elapsed() < std::time::Duration::from_secs(60)
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        if let Some(message) = body["fail"].as_str() {
            return Err(AdapterError::Failed(message.to_string()));
        }
        let id = body["id"].as_str().unwrap_or("test").to_string();
        let mut alert = Alert::new(id, Status::Firing, "test-panic alert");
        match body["bad"].as_str() {
            Some("empty_key") => alert.dedup_key = String::new(),
            Some("time") => alert.started_at = Some("yesterday at noon".into()),
            _ => {}
        }
        Ok(vec![alert])
    }
}

export_adapter!(TestPanic);
