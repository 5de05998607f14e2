//! A real headless browser for the console's tests: Debian's `chromium` driven through
//! `chromedriver` (WebDriver) by fantoccini, with a fresh profile per session; screenshots
//! under `target/ui-screenshots/`, and axe-core (installed by scripts/test.sh under
//! `target/axe-core/`, or at `SWITCHYARD_AXE_JS`) injected into pages to check accessibility.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::support::DEADLINE;

/// Where the test run writes screenshots.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots")
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// The axe-core script, if it is installed.
pub fn axe_source() -> Option<String> {
    let path = std::env::var_os("SWITCHYARD_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/axe-core/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(path).ok()
}

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// What is missing on this machine for browser tests (scripts/test.sh installs them).
pub fn missing() -> Option<String> {
    let mut missing = Vec::new();
    if find_program(&["chromium", "chromium-browser"]).is_none() {
        missing.push("chromium");
    }
    if find_program(&["chromedriver"]).is_none() {
        missing.push("chromium-driver (chromedriver)");
    }
    if axe_source().is_none() {
        missing.push("axe-core (npm)");
    }
    (!missing.is_empty()).then(|| format!("{} not installed", missing.join(", ")))
}

impl Browser {
    /// Starts chromedriver on a free port and a headless chromium session `width` pixels
    /// wide, in dark mode when `dark`.
    pub async fn start(width: u32, dark: bool) -> Browser {
        let chromium = find_program(&["chromium", "chromium-browser"]).expect("chromium");
        let chromedriver = find_program(&["chromedriver"]).expect("chromedriver");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // A process group of its own: the browsers it starts end with it (see Drop).
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},1000"),
        ];
        if dark {
            // prefers-color-scheme: dark.
            args.push("--force-dark-mode".into());
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium.to_string_lossy(), "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        start.elapsed() < DEADLINE,
                        "no WebDriver session from chromedriver: {e}"
                    );
                    actix_rt::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        client
            .set_window_size(width, 1000)
            .await
            .expect("window size");
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_string()
    }

    /// The page's visible text ("" while a page is loading: read by script, so a navigation
    /// between finding an element and reading it cannot fail the read).
    pub async fn text(&self) -> String {
        match self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
        {
            Ok(Value::String(s)) => s,
            _ => String::new(),
        }
    }

    /// Waits until the page's text contains `what` (the live parts update by themselves).
    pub async fn wait_text(&self, what: &str) -> String {
        let start = Instant::now();
        loop {
            let text = self.text().await;
            if text.contains(what) {
                return text;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for `{what}` on {}:\n{text}",
                self.path().await
            );
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"));
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    /// Writes a PNG of the page at `width` pixels (the window is set to it) as
    /// `target/ui-screenshots/{name}-{width}{-dark}.png`.
    pub async fn screenshot(&self, name: &str, width: u32, dark: bool) -> PathBuf {
        self.client
            .set_window_size(width, if width < 600 { 844 } else { 1000 })
            .await
            .expect("window size");
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!(
            "{name}-{width}{}.png",
            if dark { "-dark" } else { "" }
        ));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Runs axe-core on the page; the serious and critical violations, one line each.
    pub async fn axe_violations(&self) -> Vec<String> {
        let axe = axe_source().expect("axe-core");
        self.client.execute(&axe, vec![]).await.expect("inject axe");
        let found = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   axe.run(document, {resultTypes: ['violations']}).then(r => done(
                     r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                       .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
                            v.nodes.slice(0, 5).map(n => n.target.join(' ')).join(' | '))));"#,
                vec![],
            )
            .await
            .expect("axe.run");
        match found {
            Value::Array(list) => list
                .into_iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect(),
            other => vec![format!("unexpected axe answer: {other}")],
        }
    }

    /// The screenshots of the page at 1280 and 390 pixels, and no serious accessibility
    /// violation at either width.
    pub async fn capture(&self, name: &str, dark: bool) {
        for width in [1280, 390] {
            self.screenshot(name, width, dark).await;
            let violations = self.axe_violations().await;
            assert!(
                violations.is_empty(),
                "{name} at {width} px{}: {violations:#?}",
                if dark { " (dark)" } else { "" }
            );
        }
        self.client
            .set_window_size(1280, 1000)
            .await
            .expect("window size");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver's process group: chromedriver and any browser it started.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        // The driver itself in any case, so that waiting for it cannot hang.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
