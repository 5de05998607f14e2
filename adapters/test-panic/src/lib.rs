//! A test-only plugin (`plugin: test-panic`) for switchyard's end-to-end tests: it panics
//! when the body has `"panic": true`, sleeps `"sleep_ms"` milliseconds when given, and
//! otherwise returns one firing alert keyed by the body's `"id"`.

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
        let id = body["id"].as_str().unwrap_or("test").to_string();
        Ok(vec![Alert::new(id, Status::Firing, "test-panic alert")])
    }
}

export_adapter!(TestPanic);
