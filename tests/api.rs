//! End to end: the real `hotline` binary, started as a user would, driven over HTTP.
//! Runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};
use ticketing::testing::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_hotline");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/hotline.toml");
const PASSWORD: &str = "correct horse battery";

struct Server {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hotline(data: &std::path::Path, database_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("HOTLINE_CONFIG", CONFIG)
        .env("HOTLINE_DATA_DIR", data)
        .env("HOTLINE_HTTP_LISTEN", "127.0.0.1:0")
        .env("HOTLINE_SIP_LISTEN", "127.0.0.1:0")
        .env("HOTLINE_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `hotline serve` on a free port after adding one user per role with the CLI.
fn start(database_url: &str) -> Server {
    let data = tempfile::tempdir().unwrap();
    let users: [(&str, &str, Option<&str>); 5] = [
        ("agent", "agent", None),
        ("dispatcher", "dispatcher", None),
        ("drain", "department", Some("DRAIN")),
        ("supervisor", "supervisor", None),
        ("admin", "admin", None),
    ];
    for (name, role, dept) in users {
        let mut cmd = hotline(data.path(), database_url);
        cmd.args(["user", "add", name, "--role", role])
            .env("HOTLINE_USER_PASSWORD", PASSWORD);
        if let Some(d) = dept {
            cmd.args(["--department", d]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("added user {name}")));
    }
    let mut cmd = hotline(data.path(), database_url);
    let mut child = cmd.arg("serve").stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // Keep reading what the server prints after its first line, so it never writes into a
    // closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = line
        .trim()
        .strip_prefix("hotline listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server {
        child,
        base,
        _data: data,
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn login(base: &str, user: &str) -> Client {
        let http = reqwest::Client::new();
        let res = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "login {user}");
        assert!(
            res.headers()
                .get("set-cookie")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("HttpOnly")
        );
        let body: Value = res.json().await.unwrap();
        Client {
            http,
            base: base.to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        if status.is_client_error() {
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

async fn a_ticket_goes_through_the_whole_loop_over_http(database_url: &str) {
    let server = start(database_url);
    let base = server.base.clone();
    let agent = Client::login(&base, "agent").await;
    let dispatcher = Client::login(&base, "dispatcher").await;
    let drain = Client::login(&base, "drain").await;
    let supervisor = Client::login(&base, "supervisor").await;
    let admin = Client::login(&base, "admin").await;

    let (status, created) = agent
        .post(
            "/api/v1/tickets",
            json!({
                "channel": "phone",
                "reporter": {"name": "李女士", "phone": "139-0000-1234"},
                "content": "幸福路32号门口污水井盖丢失，晚上很危险",
                "category": "C0102",
                "location": {"address": "幸福路32号", "lat": 31.86, "lon": 117.28},
                "priority": "urgent"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let number = created["number"].as_str().unwrap().to_owned();
    assert!(
        number.starts_with("12319-") && number.ends_with("-000001"),
        "{number}"
    );
    assert_eq!(created["status"], "received");
    assert_eq!(created["status_label"], "待立案");
    assert_eq!(created["category_name"], "公用设施/污水井盖");
    assert_eq!(created["reporters"][0]["phone"], "13900001234");
    assert_eq!(created["deadlines"][0]["stage"], "file");
    assert_eq!(
        created["available_actions"],
        json!(["file", "reject", "answer_on_spot"])
    );

    // A step out of order is a 409 problem with a stable code, and changes nothing.
    let path = format!("/api/v1/tickets/{number}/transitions");
    let (status, problem) = supervisor.post(&path, json!({"action": "close"})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("illegal_transition"))
    );
    let (status, problem) = agent.post(&path, json!({"action": "fly"})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_json")),
        "{problem}"
    );

    let walk: [(&Client, Value, &str); 7] = [
        (&agent, json!({"action": "file"}), "filed"),
        (
            &dispatcher,
            json!({"action": "dispatch", "department": "DRAIN"}),
            "dispatched",
        ),
        (&drain, json!({"action": "accept"}), "in_progress"),
        (
            &drain,
            json!({"action": "complete", "note": "已补装井盖", "photos": ["after.jpg"]}),
            "completed",
        ),
        (
            &supervisor,
            json!({"action": "verify", "passed": true}),
            "awaiting_callback",
        ),
        (
            &agent,
            json!({"action": "callback", "result": "satisfied", "note": "市民表示满意"}),
            "awaiting_close",
        ),
        (&supervisor, json!({"action": "close"}), "closed"),
    ];
    for (client, action, expected) in walk {
        let (status, body) = client.post(&path, action.clone()).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        assert_eq!(body["ticket"]["status"], expected);
        assert_eq!(body["event"]["to"], expected);
    }

    let (status, ticket) = drain.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["status_label"], "已结案");
    assert_eq!(
        ticket["reporters"][0]["phone"], "139****1234",
        "departments see masked numbers"
    );
    let deadlines = ticket["deadlines"].as_array().unwrap();
    assert_eq!(deadlines.len(), 6);
    assert!(
        deadlines.iter().all(|d| d["on_time"] == true),
        "{deadlines:?}"
    );

    let (status, events) = supervisor
        .get(&format!("/api/v1/tickets/{number}/events"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create", "file", "dispatch", "accept", "complete", "verify", "callback", "close"
        ]
    );
    assert_eq!(events[3]["actor_name"], "drain");
    assert_eq!(events[3]["role"], "department");
    assert_eq!(events[4]["note"], "已补装井盖");

    // Lists and search; a department sees only its own department.
    let (_, page) = agent.get("/api/v1/tickets?status=closed&q=井盖").await;
    assert_eq!(page["total"], 1);
    let (_, page) = agent.get("/api/v1/tickets?status=received").await;
    assert_eq!(page["total"], 0);
    let (status, problem) = agent.get("/api/v1/tickets?status=lost").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
    let (_, other) = agent
        .post(
            "/api/v1/tickets",
            json!({"content": "占道经营", "category": "E0514"}),
        )
        .await;
    let (_, page) = drain.get("/api/v1/tickets").await;
    assert_eq!(page["total"], 1, "{page}");
    let (status, _) = drain
        .get(&format!(
            "/api/v1/tickets/{}",
            other["number"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Roles per route.
    let (status, _) = drain.post("/api/v1/tickets", json!({"content": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = agent.get("/api/v1/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, users) = admin.get("/api/v1/users").await;
    assert_eq!(
        (status, users.as_array().unwrap().len()),
        (StatusCode::OK, 5)
    );
    assert!(users[0].get("password_hash").is_none());
    let (_, cats) = agent.get("/api/v1/categories").await;
    assert!(
        cats.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "C0101" && c["name"] == "上水井盖")
    );
    let (_, depts) = agent.get("/api/v1/departments").await;
    assert!(
        depts
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "DRAIN")
    );

    // Without a session: 401; OpenAPI, health and metrics are public.
    let anon = reqwest::Client::new();
    let res = anon
        .get(format!("{base}/api/v1/tickets"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let spec: Value = anon
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/v1/tickets/{number}/transitions"]["post"].is_object());
    assert!(spec["components"]["schemas"]["Action"].is_object());
    let health: Value = anon
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "ok");
    let metrics = anon
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hotline_tickets{status=\"closed\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hotline_tickets_overdue"));
    assert!(metrics.contains("hotline_http_requests_total"));

    // Logout ends the session.
    let res = agent
        .http
        .post(format!("{base}/api/v1/auth/logout"))
        .bearer_auth(&agent.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        agent.get("/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );

    // Failed logins are limited: after 5 failures even the right password waits.
    for _ in 0..5 {
        let res = anon
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "dispatcher", "password": "guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = anon
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "dispatcher", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));

    // SIGTERM shuts down cleanly.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
}

#[tokio::test]
async fn a_ticket_goes_through_the_whole_loop_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    a_ticket_goes_through_the_whole_loop_over_http(&url).await;
}

#[tokio::test]
async fn a_ticket_goes_through_the_whole_loop_over_http_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant not run");
        return;
    };
    let url = db.url.clone();
    a_ticket_goes_through_the_whole_loop_over_http(&url).await;
    db.cleanup().await;
}

#[test]
fn a_bad_config_stops_the_service_naming_the_key() {
    let data = tempfile::tempdir().unwrap();
    let out = hotline(data.path(), "")
        .env("HOTLINE_HTTP_LISTEN", "everywhere")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http.listen (from HOTLINE_HTTP_LISTEN)") && err.contains("everywhere"),
        "{err}"
    );
}

/// 并单 over HTTP: an automatic merge at intake, a suggestion the agent confirms, a refused merge,
/// and an unmerge, each visible in the ticket views and trails.
#[tokio::test]
async fn duplicates_are_merged_suggested_and_unmerged_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("api.db").display());
    let server = start(&url);
    let agent = Client::login(&server.base, "agent").await;
    let report = |phone: &str, content: &str, lat: f64, address: Option<&str>| {
        json!({
            "channel": "app",
            "reporter": {"phone": phone},
            "content": content,
            "location": {"lat": lat, "lon": 115.7790, "address": address},
        })
    };
    let (status, first) = agent
        .post(
            "/api/v1/tickets",
            report(
                "13800000001",
                "人民路光明路路口污水井盖丢了，很危险",
                33.8446,
                None,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_number = first["number"].as_str().unwrap().to_owned();
    // 20 m away, the same words: merged at once.
    let (status, second) = agent
        .post(
            "/api/v1/tickets",
            report(
                "13800000002",
                "光明路口的污水井盖不见了，有个大洞",
                33.8448,
                None,
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["merged_into"], first_number.as_str(), "{second}");
    assert_eq!(second["status"], "closed");
    let (_, target) = agent.get(&format!("/api/v1/tickets/{first_number}")).await;
    assert_eq!(target["reported_times"], 2, "{target}");
    assert_eq!(target["reporters"].as_array().unwrap().len(), 2);

    // Without coordinates, the same address: only a suggestion, which the agent confirms.
    let (_, placed) = agent
        .post(
            "/api/v1/tickets",
            json!({"channel": "app", "reporter": {"phone": "13800000011"},
                   "content": "北京路菜市场门口垃圾很多没人清理",
                   "location": {"address": "谯城区北京路菜市场"}}),
        )
        .await;
    let placed_number = placed["number"].as_str().unwrap().to_owned();
    let (_, third) = agent
        .post(
            "/api/v1/tickets",
            json!({"channel": "app", "reporter": {"phone": "13800000012"},
                   "content": "北京路菜市场门口垃圾堆积好几天了",
                   "location": {"address": "谯城区北京路菜市场"}}),
        )
        .await;
    let third_number = third["number"].as_str().unwrap().to_owned();
    assert!(third["merged_into"].is_null(), "{third}");
    assert_eq!(
        third["possible_duplicates"][0]["number"],
        placed_number.as_str(),
        "{third}"
    );
    let (status, listed) = agent
        .get(&format!("/api/v1/tickets/{third_number}/duplicates"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["number"], placed_number.as_str());

    // A merge into itself, or into a ticket that was itself merged, is refused.
    let (status, problem) = agent
        .post(
            &format!("/api/v1/tickets/{third_number}/merge"),
            json!({"into": third_number}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {problem}");
    let (status, problem) = agent
        .post(
            &format!("/api/v1/tickets/{third_number}/merge"),
            json!({"into": second["number"]}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {problem}");

    let (status, merged) = agent
        .post(
            &format!("/api/v1/tickets/{third_number}/merge"),
            json!({"into": placed_number}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["target"], placed_number.as_str());
    assert_eq!(merged["reported_times"], 2);
    assert_eq!(merged["ticket"]["merged_into"], placed_number.as_str());

    // Unmerge the automatic one: restored, and the first ticket has one reporter again.
    let (status, restored) = agent
        .post(
            &format!(
                "/api/v1/tickets/{}/unmerge",
                second["number"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{restored}");
    assert!(restored["ticket"]["merged_into"].is_null());
    assert_eq!(restored["ticket"]["status"], "received");
    let (_, target) = agent.get(&format!("/api/v1/tickets/{first_number}")).await;
    assert_eq!(target["reported_times"], 1, "{target}");
    let (_, trail) = agent
        .get(&format!("/api/v1/tickets/{first_number}/events"))
        .await;
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "merge", "unmerge"], "{trail}");
}
