//! Test support: the real `switchyard` binary started on a free port with a routes.yaml written
//! by the test, a real HTTP receiver on 127.0.0.1 that records what it gets and answers from a
//! script, and waiting on conditions with a deadline (never a fixed sleep).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;

pub const DEADLINE: Duration = Duration::from_secs(20);

/// The payload fixtures copied from real tools (see tests/fixtures/payloads/SOURCES.md).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/payloads")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Says loudly that `test` checked nothing here and why: a `SKIPPED: test: why` line on the
/// real stderr (not the test harness's captured output), which scripts/test.sh counts in its
/// closing line. For a check this machine cannot make, never for a failure.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    // On a line of its own even when the harness is in the middle of one.
    let _ = writeln!(std::io::stderr(), "\nSKIPPED: {test}: {why}");
}

/// Runs the `switchyard` command in the crate's folder; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run switchyard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `switchyard check` said of a config file written by the test.
pub struct Checked {
    _dir: tempfile::TempDir,
    /// The file's path, as errors name it.
    pub path: String,
    pub code: i32,
    pub out: String,
    pub err: String,
}

/// Writes `yaml` to a temporary routes.yaml and runs `switchyard check -c` on it.
pub fn check_yaml(yaml: &str) -> Checked {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, yaml).expect("write routes.yaml");
    let path = path.to_string_lossy().into_owned();
    let (code, out, err) = run_cli(&["check", "-c", &path]);
    Checked {
        _dir: dir,
        path,
        code,
        out,
        err,
    }
}

/// Polls `check` until it returns Some or the deadline passes.
pub async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `check` until it is true or the deadline passes.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A running `switchyard serve`.
pub struct Switchyard {
    child: Child,
    pub base: String,
    /// The admin listener's base URL, with `server.admin_listen`.
    pub admin_base: Option<String>,
    _dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Switchyard {
    /// Writes `routes_yaml` (whose `listen` should be `127.0.0.1:0`) and starts the binary.
    pub fn start(routes_yaml: &str) -> Switchyard {
        Self::start_with_env(routes_yaml, &[])
    }

    pub fn start_with_env(routes_yaml: &str, env: &[(&str, &str)]) -> Switchyard {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("routes.yaml");
        std::fs::write(&config_path, routes_yaml).expect("write routes.yaml");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .arg("-c")
            .arg(&config_path)
            .envs(env.iter().copied())
            .env("RUST_LOG", "switchyard=debug,info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn switchyard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send((rest.contains("(admin API)"), url));
                }
            }
        });
        let mut base = None;
        let mut admin_base = None;
        let wants_admin = routes_yaml.contains("admin_listen:");
        while base.is_none() || (wants_admin && admin_base.is_none()) {
            match rx.recv_timeout(DEADLINE) {
                Ok((true, url)) => admin_base = Some(url),
                Ok((false, url)) => base = Some(url),
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("switchyard did not start:\n{log}");
                }
            }
        }
        let base = base.unwrap_or_default();
        Switchyard {
            child,
            base,
            admin_base,
            _dir: dir,
            stderr_path,
        }
    }

    /// The routes.yaml it runs (rewrite it, then reload).
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("routes.yaml")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// POSTs a JSON body to `/ingest/{source}` with extra headers; returns (status, body).
    pub async fn ingest(
        &self,
        source: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let client = awc::Client::default();
        let mut req = client
            .post(self.url(&format!("/ingest/{source}")))
            .insert_header(("Content-Type", "application/json"));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut resp = req.send_body(body.to_vec()).await.expect("ingest request");
        let status = resp.status().as_u16();
        let bytes = resp.body().limit(1 << 20).await.expect("ingest body");
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let client = awc::Client::default();
        let mut resp = client.get(self.url(path)).send().await.expect("GET");
        let body = resp.body().limit(8 << 20).await.expect("body");
        (
            resp.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// The value of one metric line (exact name with labels), e.g.
    /// `switchyard_deliveries_total{endpoint="hook",outcome="delivered"}`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await;
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
    }

    /// Sends SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (up to the deadline) for the process to exit; its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < DEADLINE,
                "switchyard did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Switchyard {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- switchyard stderr ---\n{}", self.logs());
        }
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The query string (without `?`).
    pub query: String,
    /// When it arrived.
    pub at: Instant,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
}

/// (status, headers, body): one scripted answer.
type ScriptedAnswer = (u16, Vec<(String, String)>, Option<String>);

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    /// Answers to give, in order (status, headers, body); after they run out, 200 "ok".
    script: VecDeque<ScriptedAnswer>,
    /// While set, every request is answered with this status (before the script).
    failing: Option<u16>,
    /// While set, every answer is held this long after the request is recorded.
    delay: Option<Duration>,
}

/// A real HTTP receiver on 127.0.0.1:{free port}.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    /// Starts on the current actix system (call from an `#[actix_rt::test]`).
    pub fn start() -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: Bytes| {
                let state = state.clone();
                async move {
                    let delay = state.lock().unwrap().delay;
                    let (status, headers, body_out) = {
                        let mut s = state.lock().unwrap();
                        let (status, headers, body_out) = match s.failing {
                            Some(status) => (status, vec![], None),
                            None => s.script.pop_front().unwrap_or((200, vec![], None)),
                        };
                        s.got.push(Received {
                            method: req.method().to_string(),
                            path: req.path().to_string(),
                            query: req.query_string().to_string(),
                            at: Instant::now(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect(),
                            body,
                            answered: status,
                        });
                        (status, headers, body_out)
                    };
                    if let Some(d) = delay {
                        actix_rt::time::sleep(d).await;
                    }
                    let mut resp = HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("status"),
                    );
                    for (k, v) in headers {
                        resp.insert_header((k, v));
                    }
                    match body_out {
                        Some(b) => resp.content_type("application/json").body(b),
                        None => resp.body("ok"),
                    }
                }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind receiver");
        let addr = server.addrs()[0];
        actix_rt::spawn(server.run());
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    /// Holds every answer this long after the request arrives (None: answer at once).
    pub fn delay_answers(&self, delay: Option<Duration>) {
        self.state.lock().unwrap().delay = delay;
    }

    /// The next answers, in order (status, headers).
    pub fn answer(&self, answers: &[(u16, &[(&str, &str)])]) {
        let mut s = self.state.lock().unwrap();
        for (status, headers) in answers {
            s.script.push_back((
                *status,
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                None,
            ));
        }
    }

    /// The next answers, in order, each a status and a JSON body.
    pub fn answer_json(&self, answers: &[(u16, &str)]) {
        let mut s = self.state.lock().unwrap();
        for (status, body) in answers {
            s.script
                .push_back((*status, vec![], Some(body.to_string())));
        }
    }

    /// Answers every request with `status` until called with `None`.
    pub fn fail_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().failing = status;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// The requests answered with 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits until `n` requests were answered with 2xx, and returns them.
    pub async fn wait_delivered(&self, n: usize) -> Vec<Received> {
        wait_for(&format!("{n} deliveries"), || {
            let d = self.delivered();
            (d.len() >= n).then_some(d)
        })
        .await
    }
}

/// A `redis-server` started by a test, on a free port, without persistence; stopped on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// With persistence: the directory of its append-only file.
    dir: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Starts a throwaway server on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        Self::start_in(None)
    }

    /// Like `start`, but every write is in an append-only file (fsync always), so that a
    /// `stop` (SIGKILL) and `restart` keep the data.
    pub fn start_persistent() -> RedisServer {
        Self::start_in(Some(tempfile::tempdir().expect("tempdir")))
    }

    fn start_in(dir: Option<tempfile::TempDir>) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            port,
            child: None,
            dir,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port (after `stop`).
    pub fn restart(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""]);
        match &self.dir {
            Some(dir) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir.path()),
            None => cmd.args(["--appendonly", "no"]),
        };
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed for the redis tests (scripts/test.sh installs it)");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            // Answers PING only once its data is loaded.
            let ready = std::net::TcpStream::connect(("127.0.0.1", self.port))
                .and_then(|mut s| {
                    use std::io::{Read, Write};
                    s.set_read_timeout(Some(Duration::from_secs(1)))?;
                    s.write_all(b"PING\r\n")?;
                    let mut buf = [0u8; 7];
                    s.read_exact(&mut buf)?;
                    Ok(&buf == b"+PONG\r\n")
                })
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, answers stop.
    pub fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("a running redis-server");
        let status = Command::new("kill")
            .arg(if frozen { "-STOP" } else { "-CONT" })
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Kills the server (SIGKILL): every connection to it breaks at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A frozen process dies on SIGKILL too; thaw it anyway so nothing lingers.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The store a test runs against: memory, or redis under a random key prefix (on the server in
/// `SWITCHYARD_TEST_REDIS_URL`, which scripts/test.sh starts, else on one of its own).
pub struct TestStore {
    pub redis_url: Option<String>,
    pub key_prefix: String,
    _own: Option<RedisServer>,
    /// The file store's data directory (outlives the switchyard processes run on it).
    pub file_dir: Option<tempfile::TempDir>,
}

impl TestStore {
    pub fn memory() -> TestStore {
        TestStore {
            redis_url: None,
            key_prefix: String::new(),
            _own: None,
            file_dir: None,
        }
    }

    /// The file store, in a directory of its own.
    pub fn file() -> TestStore {
        TestStore {
            file_dir: Some(tempfile::tempdir().expect("tempdir")),
            ..TestStore::memory()
        }
    }

    /// The file store in `dir` (a directory the test made, e.g. a size-limited mount).
    pub fn file_in(dir: &std::path::Path) -> String {
        format!("store:\n  kind: file\n  path: {}\n", dir.display())
    }

    pub fn redis() -> TestStore {
        let key_prefix = format!("sytest-{}", uuid::Uuid::now_v7().simple());
        match std::env::var("SWITCHYARD_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => TestStore {
                redis_url: Some(url),
                key_prefix,
                _own: None,
                file_dir: None,
            },
            _ => {
                let own = RedisServer::start();
                TestStore {
                    redis_url: Some(own.url()),
                    key_prefix,
                    _own: Some(own),
                    file_dir: None,
                }
            }
        }
    }

    /// On an existing server (a test that stops and restarts it).
    pub fn on(server: &RedisServer) -> TestStore {
        TestStore {
            redis_url: Some(server.url()),
            key_prefix: format!("sytest-{}", uuid::Uuid::now_v7().simple()),
            _own: None,
            file_dir: None,
        }
    }

    /// The `store:` section of routes.yaml.
    pub fn section(&self) -> String {
        if let Some(dir) = &self.file_dir {
            return Self::file_in(dir.path());
        }
        match &self.redis_url {
            None => "store:\n  kind: memory\n".to_string(),
            Some(url) => format!(
                "store:\n  kind: redis\n  url: {url}\n  key_prefix: {}\n",
                self.key_prefix
            ),
        }
    }

    /// A connection to the test's Redis, for looking at what the store wrote.
    pub async fn redis_conn(&self) -> deadpool_redis::redis::aio::MultiplexedConnection {
        let url = self.redis_url.as_deref().expect("a redis store");
        deadpool_redis::redis::Client::open(url)
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis")
    }

    /// Waits until the redis store holds no unfinished delivery of `endpoint` (its pending
    /// counter is 0): every result has been settled.
    pub async fn wait_queue_settled(&self, endpoint: &str) {
        use deadpool_redis::redis::AsyncCommands;
        let conn = self.redis_conn().await;
        let key = format!("{}:q:{endpoint}:pending", self.key_prefix);
        eventually("every delivery settled in the store", || {
            let mut conn = conn.clone();
            let key = key.clone();
            async move { conn.get::<_, Option<i64>>(&key).await.unwrap().unwrap_or(0) == 0 }
        })
        .await;
    }
}

/// Runs a test body once per store: `both_stores!(name);` after `async fn name(store: TestStore)`
/// makes the tests `name::memory`, `name::redis` and `name::file`.
#[macro_export]
macro_rules! both_stores {
    ($name:ident) => {
        mod $name {
            #[actix_rt::test]
            async fn memory() {
                super::$name($crate::support::TestStore::memory()).await
            }
            #[actix_rt::test]
            async fn redis() {
                super::$name($crate::support::TestStore::redis()).await
            }
            #[actix_rt::test]
            async fn file() {
                super::$name($crate::support::TestStore::file()).await
            }
        }
    };
}
