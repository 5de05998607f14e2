//! The switchyard adapter plugin SDK.
//!
//! A plugin is a `cdylib` that turns one webhook request of a monitoring tool into alerts.
//! switchyard loads it at start-up from `plugins.dir` and calls it for every request to a
//! `kind: plugin` source whose `plugin:` is the plugin's [`Adapter::NAME`].
//!
//! Write a type implementing [`Adapter`] and export it with [`export_adapter!`]:
//!
//! ```
//! use switchyard_adapter_sdk::{export_adapter, Adapter, AdapterError, Alert, Request, Status};
//!
//! struct Echo;
//!
//! impl Adapter for Echo {
//!     const NAME: &'static str = "echo";
//!     const VERSION: &'static str = "0.1.0";
//!
//!     fn normalize(req: &Request) -> Result<Vec<Alert>, AdapterError> {
//!         let body: serde_json::Value = req.json()?;
//!         let title = body["title"].as_str().unwrap_or("echo").to_string();
//!         Ok(vec![Alert::new(title.clone(), Status::Firing, title)])
//!     }
//! }
//!
//! export_adapter!(Echo);
//! ```
//!
//! # The ABI (what the macro writes for you)
//!
//! Four `extern "C"` functions, looked up by name when the library is loaded:
//!
//! | symbol | signature | |
//! |---|---|---|
//! | [`SYMBOL_ABI_VERSION`] | `fn() -> u32` | must return [`ABI_VERSION`], checked first |
//! | [`SYMBOL_INFO`] | `fn() -> PluginInfo` | name and version, static UTF-8 |
//! | [`SYMBOL_NORMALIZE`] | `fn(*const u8, usize) -> Buffer` | JSON [`Request`] in, JSON [`Output`] out |
//! | [`SYMBOL_FREE`] | `fn(Buffer)` | frees a `Buffer` that `normalize` returned |
//!
//! Memory is freed by the side that allocated it: switchyard owns the input bytes (valid only
//! during the call), the plugin owns the returned [`Buffer`] until switchyard hands it back to
//! the plugin's free function. Every export catches panics: a panicking plugin answers an
//! [`Output::Error`] of kind `panic` instead of unwinding into switchyard.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub use serde_json;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of the ABI below. switchyard refuses a library that reports another one.
pub const ABI_VERSION: u32 = 1;

/// `extern "C" fn() -> u32`: the library's [`ABI_VERSION`].
pub const SYMBOL_ABI_VERSION: &str = "switchyard_adapter_abi_version";
/// `extern "C" fn() -> PluginInfo`.
pub const SYMBOL_INFO: &str = "switchyard_adapter_info";
/// `extern "C" fn(input: *const u8, len: usize) -> Buffer`.
pub const SYMBOL_NORMALIZE: &str = "switchyard_adapter_normalize";
/// `extern "C" fn(Buffer)`.
pub const SYMBOL_FREE: &str = "switchyard_adapter_free";

/// A plugin's name and version: pointers to static UTF-8 text inside the library.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginInfo {
    pub name_ptr: *const u8,
    pub name_len: usize,
    pub version_ptr: *const u8,
    pub version_len: usize,
}

/// Bytes allocated by the plugin (a `Vec<u8>` taken apart), returned to switchyard and given
/// back to the plugin's free function.
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    /// Takes a `Vec` apart without freeing it.
    pub fn from_vec(v: Vec<u8>) -> Buffer {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buffer {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Puts the `Vec` back together, to drop it.
    ///
    /// # Safety
    /// `self` must come from [`Buffer::from_vec`] in this same library, and be used once.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        // SAFETY: the caller guarantees the parts came from `from_vec` (same allocator).
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }
}

/// One request, as switchyard gives it to the plugin (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// The configured source's name.
    pub source: String,
    /// Request headers, names lowercased (several values of one header joined with `, `).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The raw request body (UTF-8).
    #[serde(default)]
    pub body: String,
    /// The source's `config:` from routes.yaml (`null` when none).
    #[serde(default)]
    pub config: serde_json::Value,
}

impl Request {
    /// A header's value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body parsed as JSON into `T`; a parse error is an [`AdapterError::InvalidPayload`]
    /// with the parser's line and column.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, AdapterError> {
        serde_json::from_str(&self.body).map_err(|e| AdapterError::InvalidPayload(e.to_string()))
    }
}

/// What an alert says about its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
    Acknowledged,
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

/// A link shown with an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub label: String,
    pub url: String,
}

/// One alert the plugin found in the request. switchyard adds the source's name and kind and
/// its configured labels; a missing `severity` becomes the source's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Alerts with the same key fold into one incident.
    pub dedup_key: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub links: Vec<Link>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
}

impl Alert {
    /// An alert with the required fields; set the others directly.
    pub fn new(dedup_key: impl Into<String>, status: Status, title: impl Into<String>) -> Alert {
        Alert {
            dedup_key: dedup_key.into(),
            status,
            severity: None,
            title: title.into(),
            description: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            links: Vec::new(),
            started_at: None,
            ended_at: None,
        }
    }
}

/// Why a plugin could not normalize a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum AdapterError {
    /// The request is not in the tool's format (switchyard answers 400).
    InvalidPayload(String),
    /// The plugin failed (switchyard answers 502).
    Failed(String),
    /// The plugin panicked (switchyard answers 500); written by the export wrapper.
    Panic(String),
}

impl std::fmt::Display for AdapterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdapterError::InvalidPayload(m) => write!(f, "invalid payload: {m}"),
            AdapterError::Failed(m) => write!(f, "failed: {m}"),
            AdapterError::Panic(m) => write!(f, "panicked: {m}"),
        }
    }
}

impl std::error::Error for AdapterError {}

/// What `normalize` returns (JSON): `{"alerts": [...]}` or `{"error": {"kind", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Alerts(Vec<Alert>),
    Error(AdapterError),
}

/// A plugin: a name, a version and one function.
pub trait Adapter {
    /// The name sources use in `plugin:`; unique among the loaded plugins.
    const NAME: &'static str;
    /// The plugin's version, shown by `switchyard plugins`.
    const VERSION: &'static str;
    /// The alerts one request carries (possibly none).
    fn normalize(req: &Request) -> Result<Vec<Alert>, AdapterError>;
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

fn encode(output: &Output) -> Vec<u8> {
    serde_json::to_vec(output).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"kind":"failed","message":"cannot encode the output: {e}"}}}}"#)
            .into_bytes()
    })
}

/// The bodies of the exported functions; use [`export_adapter!`] rather than these.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn abi_version() -> u32 {
        catch_unwind(|| ABI_VERSION).unwrap_or(0)
    }

    pub fn info<A: Adapter>() -> PluginInfo {
        let info = || PluginInfo {
            name_ptr: A::NAME.as_ptr(),
            name_len: A::NAME.len(),
            version_ptr: A::VERSION.as_ptr(),
            version_len: A::VERSION.len(),
        };
        catch_unwind(info).unwrap_or(PluginInfo {
            name_ptr: std::ptr::null(),
            name_len: 0,
            version_ptr: std::ptr::null(),
            version_len: 0,
        })
    }

    /// # Safety
    /// `input` must point to `len` readable bytes for the duration of the call.
    pub unsafe fn normalize<A: Adapter>(input: *const u8, len: usize) -> Buffer {
        let run = AssertUnwindSafe(|| {
            let bytes: &[u8] = if input.is_null() || len == 0 {
                &[]
            } else {
                // SAFETY: the caller guarantees `input` points to `len` readable bytes.
                unsafe { std::slice::from_raw_parts(input, len) }
            };
            let output = match serde_json::from_slice::<Request>(bytes) {
                Ok(req) => match A::normalize(&req) {
                    Ok(alerts) => Output::Alerts(alerts),
                    Err(e) => Output::Error(e),
                },
                Err(e) => Output::Error(AdapterError::Failed(format!(
                    "switchyard sent a request the plugin cannot read: {e}"
                ))),
            };
            encode(&output)
        });
        let bytes = catch_unwind(run).unwrap_or_else(|payload| {
            encode(&Output::Error(AdapterError::Panic(panic_message(
                payload.as_ref(),
            ))))
        });
        Buffer::from_vec(bytes)
    }

    /// # Safety
    /// `buf` must be a `Buffer` this library's `normalize` returned, freed once.
    pub unsafe fn free(buf: Buffer) {
        if buf.ptr.is_null() {
            return;
        }
        // SAFETY: the caller guarantees `buf` came from `normalize` here, used once.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { buf.into_vec() })));
    }
}

/// Exports an [`Adapter`] as a switchyard plugin: writes the four `extern "C"` functions of
/// the ABI. Use it once, in a crate built with `crate-type = ["cdylib"]`.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ty) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn switchyard_adapter_abi_version() -> u32 {
            $crate::__private::abi_version()
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn switchyard_adapter_info() -> $crate::PluginInfo {
            $crate::__private::info::<$adapter>()
        }

        /// # Safety
        /// `input` must point to `len` readable bytes for the duration of the call.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn switchyard_adapter_normalize(
            input: *const u8,
            len: usize,
        ) -> $crate::Buffer {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::__private::normalize::<$adapter>(input, len) }
        }

        /// # Safety
        /// `buf` must come from `switchyard_adapter_normalize` of this library, freed once.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn switchyard_adapter_free(buf: $crate::Buffer) {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::__private::free(buf) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Boom;
    impl Adapter for Boom {
        const NAME: &'static str = "boom";
        const VERSION: &'static str = "1.0.0";
        fn normalize(req: &Request) -> Result<Vec<Alert>, AdapterError> {
            if req.body == "panic" {
                panic!("boom on purpose");
            }
            if req.body == "bad" {
                return Err(AdapterError::InvalidPayload("bad body".into()));
            }
            Ok(vec![Alert::new("k", Status::Firing, req.body.clone())])
        }
    }

    fn call(body: &str) -> Output {
        let input = serde_json::to_vec(&Request {
            source: "s".into(),
            body: body.into(),
            ..Request::default()
        })
        .unwrap();
        // SAFETY: `input` lives for the call; the buffer is freed once, below.
        let buf = unsafe { __private::normalize::<Boom>(input.as_ptr(), input.len()) };
        // SAFETY: `buf` came from `normalize` above.
        let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
        // SAFETY: `buf` came from `normalize` above and is freed once.
        unsafe { __private::free(buf) };
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn outputs_alerts_errors_and_panics_as_json() {
        match call("hello") {
            Output::Alerts(a) => assert_eq!(a[0].title, "hello"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            call("bad"),
            Output::Error(AdapterError::InvalidPayload("bad body".into()))
        );
        assert_eq!(
            call("panic"),
            Output::Error(AdapterError::Panic("boom on purpose".into()))
        );
    }

    #[test]
    fn wire_format_is_stable() {
        let out = Output::Error(AdapterError::Failed("x".into()));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"error":{"kind":"failed","message":"x"}}"#
        );
        let out = Output::Alerts(vec![Alert::new("k", Status::Resolved, "t")]);
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"alerts":[{"dedup_key":"k","status":"resolved","title":"t","description":"","labels":{},"annotations":{},"links":[]}]}"#
        );
        assert_eq!(abi_version_of_this_sdk(), ABI_VERSION);
    }

    fn abi_version_of_this_sdk() -> u32 {
        __private::abi_version()
    }
}
