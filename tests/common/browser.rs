//! A real browser for end-to-end tests: Debian's `chromedriver` driving headless Chromium, spoken
//! to over the W3C WebDriver protocol with reqwest (the protocol is a handful of JSON calls, and
//! Chromium's DevTools commands — geolocation, viewport — go through the same connection, so no
//! WebDriver crate is needed).
//!
//! [`Browser::start`] fails the test, naming `bash scripts/setup-deps test`, when Chromium or
//! chromedriver is missing: a browser test never passes by not running. The window is a phone's
//! (390 × 844 CSS pixels, touch, device pixel ratio 3). Dropping the browser kills chromedriver
//! and the Chromium it started (their own process group).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long [`Browser::wait_until`] waits by default.
pub const WAIT: Duration = Duration::from_secs(15);

/// The flags that make Chromium work headless on a closed network: without the
/// background-networking ones its own connections are refused and it stalls.
const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=zh-CN",
];

/// One headless Chromium session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    driver: Child,
    dir: tempfile::TempDir,
}

fn find_binary(candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() {
            if p.exists() {
                return Some(p.to_owned());
            }
            continue;
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let full = dir.join(c);
                if full.exists() {
                    return Some(full);
                }
            }
        }
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, phone-sized.
    pub async fn start() -> Browser {
        let missing = "headless Chromium is needed for this test: run `bash scripts/setup-deps test` (it installs the Debian packages chromium and chromium-driver)";
        let chromium = find_binary(&["/usr/bin/chromium", "chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("chromium not found; {missing}"));
        let chromedriver = find_binary(&["/usr/bin/chromedriver", "chromedriver"])
            .unwrap_or_else(|| panic!("chromedriver not found; {missing}"));
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&profile).unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            http,
            session: String::new(),
            driver,
            dir,
        };
        let started = Instant::now();
        loop {
            let ready = browser
                .http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "chromedriver did not start on port {port}; see {}",
                browser.dir.path().join("chromedriver.log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push("--window-size=390,844".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "mobileEmulation": {
                    "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": true},
                    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36",
                },
            },
        }}});
        let res = browser
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers");
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session ({status}): {body}"));
        browser.session = format!("{base}/session/{id}");
        browser
    }

    /// Where chromedriver writes its log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("chromedriver.log")
    }

    /// One WebDriver command; its `value`, or a panic with the driver's error.
    pub async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "{method} {path}: {status} {}",
            body["value"]
        );
        body["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// A Chromium DevTools command (`Emulation.setGeolocationOverride`, ...).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
            .await
    }

    /// Waits until the JavaScript expression `condition` is truthy; panics after [`WAIT`] with
    /// `what` and the page's visible text.
    pub async fn wait_until(&self, what: &str, condition: &str) -> Value {
        let script = format!("return ({condition});");
        let started = Instant::now();
        loop {
            let v = self.execute(&script, vec![]).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            if started.elapsed() > WAIT {
                let text = self
                    .execute("return document.body.innerText;", vec![])
                    .await;
                panic!("timed out waiting until {what}; the page reads:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element matching the CSS `selector` (the first one).
    pub async fn find(&self, selector: &str) -> String {
        let v = self
            .post(
                "/element",
                json!({"using": "css selector", "value": selector}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {v}"))
            .to_owned()
    }

    /// How many elements match `selector`.
    pub async fn count(&self, selector: &str) -> usize {
        let v = self
            .post(
                "/elements",
                json!({"using": "css selector", "value": selector}),
            )
            .await;
        v.as_array().map_or(0, Vec::len)
    }

    /// Clicks `selector` the way a finger would (scrolled into view; refused if covered).
    pub async fn click(&self, selector: &str) {
        let id = self.find(selector).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Types `text` into `selector` after clearing it.
    pub async fn fill(&self, selector: &str, text: &str) {
        let id = self.find(selector).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({"text": text}))
            .await;
    }

    /// Chooses files in the file input `selector`, as the file picker would.
    pub async fn choose_files(&self, selector: &str, files: &[&Path]) {
        let id = self.find(selector).await;
        let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        self.post(
            &format!("/element/{id}/value"),
            json!({"text": paths.join("\n")}),
        )
        .await;
    }

    /// The rendered text of `selector` (empty when it is hidden).
    pub async fn text(&self, selector: &str) -> String {
        let id = self.find(selector).await;
        self.command(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Whether `selector` is displayed.
    pub async fn visible(&self, selector: &str) -> bool {
        let id = self.find(selector).await;
        self.command(
            reqwest::Method::GET,
            &format!("/element/{id}/displayed"),
            None,
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    /// Waits until `selector` is displayed.
    pub async fn wait_visible(&self, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        self.wait_until(
            &format!("{selector} is shown"),
            &format!(
                "(() => {{ const e = document.querySelector({sel}); return !!e && e.offsetParent !== null; }})()"
            ),
        )
        .await;
    }

    /// Lets the page read `lat`, `lon` from the geolocation API (permission granted).
    pub async fn set_location(&self, origin: &str, lat: f64, lon: f64, accuracy: f64) {
        self.cdp(
            "Browser.grantPermissions",
            json!({"origin": origin, "permissions": ["geolocation"]}),
        )
        .await;
        self.cdp(
            "Emulation.setGeolocationOverride",
            json!({"latitude": lat, "longitude": lon, "accuracy": accuracy}),
        )
        .await;
    }

    /// Makes the viewport `width` × `height` CSS pixels (a phone of that size).
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 3, "mobile": true}),
        )
        .await;
    }

    /// Saves a PNG of the viewport (for a failing test's report).
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        if let Some(b64) = v.as_str()
            && let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64)
        {
            let _ = std::fs::write(path, png);
        }
    }

    /// Ends the session (Chromium exits); chromedriver is stopped on drop.
    pub async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and the Chromium it started share the process group made at spawn.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
    }
}
