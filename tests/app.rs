//! End to end: the city app's API (`/api/v1/app/`) of the real `hotline` binary, used the way a
//! phone app uses it — log in with a code sent to the phone (read from the development sender's
//! file), report with real photos carrying EXIF GPS, retry on a bad network, follow and rate the
//! report, earn points when staff file it — and checked through the staff API and the files on
//! disk. Runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Api;
use common::sip::{Hotline, PASSWORD};
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value as ExifValue};
use image::{ExtendedColorType, ImageEncoder};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use ticketing::testing::TestDb;

/// Where the photos were "taken": 33° 50′ 40.56″ N, 115° 46′ 44.4″ E (Bozhou).
const PHOTO_LAT: f64 = 33.8446;
const PHOTO_LON: f64 = 115.7790;
/// Points of the test's rule: on filing, on closing, a day.
const ON_FILE: i64 = 10;
const ON_VERIFY: i64 = 2;
const ON_CLOSE: i64 = 5;

/// The hotline with `[app]` on: the development sender appends codes to a file of the test's;
/// codes are valid 5 s, 3 wrong tries, 3 codes an hour and one a second per phone, and 15 code
/// requests from one address.
struct Started {
    h: Hotline,
    codes: PathBuf,
    _codes_dir: tempfile::TempDir,
}

fn start_app(database_url: Option<String>) -> Started {
    let codes_dir = tempfile::tempdir().unwrap();
    let codes = codes_dir.path().join("codes.txt");
    let h = Hotline::start(|s| {
        s.database_url = database_url;
        s.extra = format!(
            "[app]\nsender = \"log\"\ncode_file = {:?}\ncode_ttl_seconds = 5\ncode_attempts = 3\ncodes_per_hour = 3\ncode_interval_seconds = 1\ncodes_per_address_burst = 15\ncodes_per_address_per_hour = 1\npoints_every_ms = 200\n\n[app.points]\non_file = {ON_FILE}\non_verify = {ON_VERIFY}\non_close = {ON_CLOSE}\ndaily_cap = 100\n",
            codes.display().to_string()
        );
    });
    Started {
        h,
        codes,
        _codes_dir: codes_dir,
    }
}

/// The last code the development sender wrote for `phone`.
fn last_code(codes: &Path, phone: &str) -> String {
    let text = std::fs::read_to_string(codes).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(p, _)| *p == phone)
        .map(|(_, c)| c.to_owned())
        .next_back()
        .unwrap_or_else(|| panic!("no code for {phone} in {text:?}"))
}

/// A citizen's client.
struct App {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The status and body of a response; a client error must be a problem document with a detail.
async fn read(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    if status.is_client_error() {
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.is_client_error() {
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    (status, body)
}

async fn post_json(
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    read(req.send().await.unwrap()).await
}

impl App {
    /// Asks for a code and logs in with it.
    async fn login(h: &Hotline, codes: &Path, phone: &str) -> App {
        let (status, sent) = post_json(
            &h.http,
            "/api/v1/app/auth/code",
            None,
            json!({"phone": phone}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
        let code = last_code(codes, phone);
        let (status, login) = post_json(
            &h.http,
            "/api/v1/app/auth/login",
            None,
            json!({"phone": phone, "code": code}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let token = login["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("app_"));
        App {
            http: reqwest::Client::new(),
            base: h.http.clone(),
            token,
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
        read(res).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        post_json(&self.base, path, Some(&self.token), body).await
    }

    /// POSTs a report: text fields, photos `(file name, bytes)`, an optional Idempotency-Key.
    async fn report(
        &self,
        fields: &[(&str, &str)],
        photos: &[(&str, Vec<u8>)],
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut form = Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        for (file, bytes) in photos {
            form = form.part(
                "photo",
                Part::bytes(bytes.clone())
                    .file_name(file.to_string())
                    .mime_str("image/jpeg")
                    .unwrap(),
            );
        }
        let mut req = self
            .http
            .post(format!("{}/api/v1/app/reports", self.base))
            .bearer_auth(&self.token)
            .multipart(form);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        read(req.send().await.unwrap()).await
    }
}

/// The EXIF a phone writes: make, model and GPS.
fn phone_exif() -> Vec<u8> {
    let r = |num, denom| Rational { num, denom };
    let ascii = |s: &str| ExifValue::Ascii(vec![s.as_bytes().to_vec()]);
    let fields = [
        (Tag::Make, ascii("HUAWEI")),
        (Tag::Model, ascii("P60 Pro")),
        (Tag::GPSLatitudeRef, ascii("N")),
        (
            Tag::GPSLatitude,
            ExifValue::Rational(vec![r(33, 1), r(50, 1), r(4056, 100)]),
        ),
        (Tag::GPSLongitudeRef, ascii("E")),
        (
            Tag::GPSLongitude,
            ExifValue::Rational(vec![r(115, 1), r(46, 1), r(444, 10)]),
        ),
    ]
    .map(|(tag, value)| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    });
    let mut writer = Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).unwrap();
    out.into_inner()
}

/// A real 64×48 JPEG, with the phone's EXIF when `gps`.
fn jpeg(gps: bool, shade: u8) -> Vec<u8> {
    let pixels: Vec<u8> = (0..48u32)
        .flat_map(|y| (0..64u32).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, shade]))
        .collect();
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    if gps {
        enc.set_exif_metadata(phone_exif()).unwrap();
    }
    enc.write_image(&pixels, 64, 48, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// Every file under `data/media`.
fn media_files(h: &Hotline) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&h.data().join("media"), &mut out);
    out.sort();
    out
}

async fn app_tickets(staff: &Api) -> Vec<Value> {
    let (status, body) = staff.get("/api/v1/tickets?channel=app&per_page=200").await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().unwrap().clone()
}

async fn points_of(citizen: &App) -> Value {
    let (status, body) = citizen.get("/api/v1/app/points").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls the citizen's points until the balance is `want` (the worker runs every 200 ms).
async fn wait_for_points(citizen: &App, want: i64) -> Value {
    for _ in 0..100 {
        let p = points_of(citizen).await;
        if p["balance"] == want {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("points never reached {want}: {}", points_of(citizen).await);
}

#[tokio::test]
async fn citizen_logs_in_with_a_code_and_the_limits_hold() {
    let Started {
        h,
        codes,
        _codes_dir,
    } = start_app(None);
    let base = h.http.as_str();
    let phone = "13800000001";

    // A code, then a second one at once: too soon, with Retry-After.
    let (status, sent) =
        post_json(base, "/api/v1/app/auth/code", None, json!({"phone": phone})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["phone"], "138****0001");
    assert_eq!(sent["expires_in"], 5);
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/app/auth/code"))
        .json(&json!({"phone": phone}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    let (status, problem) = read(res).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("code_rate_limited"))
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("频繁"),
        "{problem}"
    );
    // The log marks the development sender and carries the code.
    let code = last_code(&codes, phone);
    let log = h.log();
    assert!(
        log.contains("DEVELOPMENT code sender") && log.contains(&code),
        "the development sender logs the code"
    );

    // Wrong codes count down, then the code is void even when right.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let login = |code: String| {
        post_json(
            base,
            "/api/v1/app/auth/login",
            None,
            json!({"phone": phone, "code": code}),
        )
    };
    let (status, problem) = login(wrong.into()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("code_wrong"))
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("还可尝试 2 次"),
        "{problem}"
    );
    let (status, _) = login(wrong.into()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, problem) = login(wrong.into()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("code_attempts_exhausted")
        )
    );
    let (status, problem) = login(code.clone()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("code_attempts_exhausted")
        ),
        "{problem}"
    );
    // Malformed input is a 400, not a try.
    let (status, problem) = login("12ab".into()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_code"))
    );
    let (status, problem) = post_json(
        base,
        "/api/v1/app/auth/code",
        None,
        json!({"phone": "call me"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_phone"))
    );

    // A new code works, once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = post_json(base, "/api/v1/app/auth/code", None, json!({"phone": phone})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = last_code(&codes, phone);
    let (status, body) = login(code.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["citizen"]["phone"], "138****0001");
    assert_eq!(body["citizen"]["points"], 0);
    let (status, problem) = login(code).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("no_code"))
    );
    let citizen = App {
        http: reqwest::Client::new(),
        base: base.to_owned(),
        token: token.clone(),
    };
    let (status, me) = citizen.get("/api/v1/app/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["phone"], "138****0001");

    // Three codes an hour: the fourth is refused until the first leaves the hour.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = post_json(base, "/api/v1/app/auth/code", None, json!({"phone": phone})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the third code of the hour");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, problem) =
        post_json(base, "/api/v1/app/auth/code", None, json!({"phone": phone})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("code_rate_limited")),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("一小时内"),
        "{problem}"
    );
    // Another phone is not limited by this one.
    let other = "13800000002";
    let (status, _) = post_json(base, "/api/v1/app/auth/code", None, json!({"phone": other})).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // An expired code is refused as such.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let (status, problem) = post_json(
        base,
        "/api/v1/app/auth/login",
        None,
        json!({"phone": other, "code": last_code(&codes, other)}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("code_expired"))
    );

    // Forged tokens and staff tokens open nothing here; the citizen's token opens no staff route.
    for forged in [
        "app_forged-token",
        "not-even-app",
        &token[..token.len() - 2],
    ] {
        let fake = App {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            token: forged.to_owned(),
        };
        let (status, problem) = fake.get("/api/v1/app/me").await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthenticated")),
            "{forged}"
        );
    }
    let staff = h.supervisor().await;
    let as_citizen = App {
        http: reqwest::Client::new(),
        base: base.to_owned(),
        token: staff.token.clone(),
    };
    assert_eq!(
        as_citizen.get("/api/v1/app/reports").await.0,
        StatusCode::UNAUTHORIZED
    );
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/tickets"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Logging out ends the token.
    let (status, _) = citizen.post("/api/v1/app/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        citizen.get("/api/v1/app/me").await.0,
        StatusCode::UNAUTHORIZED
    );

    // One address asking codes for number after number is stopped, whatever the numbers.
    let mut refused = None;
    for i in 0..20 {
        let phone = format!("137000000{i:02}");
        let (status, body) =
            post_json(base, "/api/v1/app/auth/code", None, json!({"phone": phone})).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, body));
            break;
        }
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let (i, problem) = refused.expect("the address limit holds");
    assert!(i < 15, "stopped after {i} fresh numbers");
    assert_eq!(problem["code"], "code_rate_limited");
    assert!(
        problem["detail"].as_str().unwrap().contains("此网络"),
        "{problem}"
    );
}

async fn citizen_reports_follows_rates_and_earns_points(database_url: Option<String>) {
    let Started {
        h,
        codes,
        _codes_dir,
    } = start_app(database_url);
    let out = h
        .command()
        .args([
            "user",
            "add",
            "drain",
            "--role",
            "department",
            "--department",
            "DRAIN",
        ])
        .env("HOTLINE_USER_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alice = App::login(&h, &codes, "13900000001").await;
    let bob = App::login(&h, &codes, "13900000002").await;
    let staff = h.supervisor().await;
    let agent = h.agent().await;

    // A report with two phone photos, no category and no location: the category is suggested
    // from the words and the location read from the first photo's EXIF.
    let content = "幸福路口的污水井盖不见了，晚上很危险";
    let photos = [
        ("IMG_0001.jpg", jpeg(true, 30)),
        ("IMG_0002.jpg", jpeg(true, 90)),
    ];
    let (status, created) = alice
        .report(
            &[
                ("content", content),
                ("address", "幸福路与长江路交口"),
                ("name", "王女士"),
            ],
            &photos,
            Some("3b8e2f4a-0001"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["replayed"], false);
    let number = created["number"].as_str().unwrap().to_owned();
    let t = &created["ticket"];
    assert_eq!(t["category"], "C0102", "{t}");
    assert_eq!(t["category_name"], "污水井盖");
    assert_eq!(t["status_text"], "已受理，待审核");
    assert_eq!(t["photos"], 2);
    assert!((t["lat"].as_f64().unwrap() - PHOTO_LAT).abs() < 1e-4, "{t}");
    assert!((t["lon"].as_f64().unwrap() - PHOTO_LON).abs() < 1e-4, "{t}");

    // Staff see an app ticket whose reporter is Alice's account, and two stripped photos on disk.
    let (status, ticket) = staff.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ticket["channel"], "app");
    assert_eq!(ticket["reporters"][0]["phone"], "13900000001");
    assert_eq!(ticket["reporters"][0]["name"], "王女士");
    assert!(ticket["reporters"][0]["app_user"].as_str().is_some());
    let attachments = ticket["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    let today = jiff::Timestamp::now()
        .in_tz("Asia/Shanghai")
        .unwrap()
        .date();
    let folder = format!(
        "media/{:04}/{:02}/{:02}/",
        today.year(),
        today.month(),
        today.day()
    );
    for a in attachments {
        assert_eq!(a["kind"], "photo");
        assert_eq!(a["content_type"], "image/jpeg");
        let uri = a["uri"].as_str().unwrap();
        let name = uri.strip_prefix(&folder).unwrap_or_else(|| panic!("{uri}"));
        assert!(name.ends_with(".jpg") && name.len() == 36, "{uri}");
        let stored = std::fs::read(h.data().join(uri)).unwrap();
        let p = channels::photo::inspect(&stored, &Default::default()).unwrap();
        assert_eq!(p.gps, None, "GPS stripped from {uri}");
        assert!(
            !stored.windows(6).any(|w| w == b"HUAWEI"),
            "EXIF stripped from {uri}"
        );
        assert_eq!(image::load_from_memory(&stored).unwrap().width(), 64);
    }
    assert_eq!(media_files(&h).len(), 2);

    // A retry with the same key: the same ticket (200), nothing new, no extra files.
    let (status, again) = alice
        .report(&[("content", content)], &photos, Some("3b8e2f4a-0001"))
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["number"].as_str(), again["replayed"].as_bool()),
        (Some(number.as_str()), Some(true))
    );
    assert_eq!(app_tickets(&staff).await.len(), 1);
    assert_eq!(media_files(&h).len(), 2, "the retry's photos are not kept");
    // The same key from another citizen is their own report.
    let (status, bobs) = bob
        .report(
            &[
                ("content", "小区门口路灯不亮已经一周"),
                ("lat", "33.8601"),
                ("lon", "115.7402"),
            ],
            &[],
            Some("3b8e2f4a-0001"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bobs}");
    let bobs_number = bobs["number"].as_str().unwrap().to_owned();
    assert_ne!(bobs_number, number);
    assert_eq!(bobs["ticket"]["lat"], 33.8601);

    // A text file named like a photo: 415, nothing created or stored.
    let (status, problem) = alice
        .report(
            &[("content", "垃圾桶满了没人清理")],
            &[("现场.jpg", b"this is not a photo at all".to_vec())],
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("photo_type")),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("第 1 张照片"),
        "{problem}"
    );
    // Ten photos: refused, nothing created or stored.
    let ten: Vec<(&str, Vec<u8>)> = (0..10).map(|i| ("p.jpg", jpeg(false, i * 20))).collect();
    let (status, problem) = alice
        .report(&[("content", "垃圾桶满了没人清理")], &ten, None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("photo_too_many")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("最多可上传 9 张"),
        "{problem}"
    );
    // No content: a 400 that says what is missing.
    let (status, problem) = alice.report(&[("address", "某处")], &[], None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("content_missing"))
    );
    assert_eq!(app_tickets(&staff).await.len(), 2);
    assert_eq!(media_files(&h).len(), 2);

    // Each citizen lists only their own reports and cannot open the other's.
    let (_, mine) = alice.get("/api/v1/app/reports").await;
    let numbers: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, [number.as_str()]);
    assert_eq!(mine["items"][0]["status_text"], "已受理，待审核");
    let (_, theirs) = bob.get("/api/v1/app/reports").await;
    assert_eq!(theirs["total"], 1);
    assert_eq!(theirs["items"][0]["number"], bobs_number.as_str());
    let (status, problem) = bob.get(&format!("/api/v1/app/reports/{number}")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ticket_not_found"))
    );

    // Rating before closure is refused, saying why.
    let rating = format!("/api/v1/app/reports/{number}/rating");
    let (status, problem) = alice.post(&rating, json!({"stars": 5})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_closed")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("办结后才能评价"),
        "{problem}"
    );
    assert_eq!(points_of(&alice).await["balance"], 0);

    // Staff file it (立案): Alice earns the filing points, Bob nothing.
    let path = format!("/api/v1/tickets/{number}/transitions");
    let (status, body) = agent.post(&path, json!({"action": "file"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let p = wait_for_points(&alice, ON_FILE).await;
    assert_eq!(p["ledger"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["ledger"][0]["ticket"], number.as_str());
    assert_eq!(p["ledger"][0]["reason"], "filed");
    assert_eq!(p["ledger"][0]["points"], ON_FILE);
    assert_eq!(points_of(&bob).await["balance"], 0);

    // The rest of the loop, then the citizen's view: steps in plain words, no staff notes.
    let drain = Api::login(&h.http, "drain", PASSWORD).await;
    let walk: [(&Api, Value); 6] = [
        (&agent, json!({"action": "dispatch", "department": "DRAIN"})),
        (&drain, json!({"action": "accept"})),
        (
            &drain,
            json!({"action": "complete", "note": "内部备注：已补装井盖，班组张三"}),
        ),
        (&staff, json!({"action": "verify", "passed": true})),
        (
            &agent,
            json!({"action": "callback", "result": "satisfied", "note": "回访员李四"}),
        ),
        (&staff, json!({"action": "close"})),
    ];
    for (client, action) in walk {
        let (status, body) = client.post(&path, action.clone()).await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let (status, view) = alice.get(&format!("/api/v1/app/reports/{number}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "closed");
    assert_eq!(view["may_rate"], true);
    let steps: Vec<&str> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "已受理您的反映",
            "经核实已立案",
            "已派遣至承办单位",
            "承办单位已签收，正在处置",
            "承办单位已处置完毕，待核查",
            "经核查已处置到位",
            "已回访",
            "已结案"
        ]
    );
    let text = view.to_string();
    for secret in ["内部备注", "张三", "李四", "supervisor", "drain"] {
        assert!(
            !text.contains(secret),
            "{secret} shown to the citizen: {text}"
        );
    }

    // Rating after closure: accepted once, audited; stars are checked.
    let (status, problem) = alice.post(&rating, json!({"stars": 6})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_rating"))
    );
    let (status, rated) = alice
        .post(&rating, json!({"stars": 4, "comment": "处理很及时"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rated}");
    assert_eq!(
        (rated["stars"].as_i64(), rated["comment"].as_str()),
        (Some(4), Some("处理很及时"))
    );
    let (status, problem) = alice.post(&rating, json!({"stars": 1})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_rated"))
    );
    let (_, view) = alice.get(&format!("/api/v1/app/reports/{number}")).await;
    assert_eq!(
        (view["rating"]["stars"].as_i64(), view["may_rate"].as_bool()),
        (Some(4), Some(false))
    );
    let (status, _) = bob.post(&rating, json!({"stars": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only the reporter rates");
    // Staff see the citizen's rating on the ticket.
    let (_, ticket) = staff.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(
        ticket["citizen_ratings"][0]["comment"], "处理很及时",
        "{ticket}"
    );
    assert_eq!(ticket["citizen_ratings"].as_array().unwrap().len(), 1);

    // Closing added the closing points, once.
    let p = wait_for_points(&alice, ON_FILE + ON_VERIFY + ON_CLOSE).await;
    let reasons: Vec<&str> = p["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["closed", "verified", "filed"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        points_of(&alice).await["balance"],
        ON_FILE + ON_VERIFY + ON_CLOSE
    );
    let (_, me) = alice.get("/api/v1/app/me").await;
    assert_eq!(me["points"], ON_FILE + ON_VERIFY + ON_CLOSE);

    // The routes are in the OpenAPI document.
    let (_, spec) = staff.get("/api/v1/openapi.json").await;
    for route in [
        "/api/v1/app/auth/code",
        "/api/v1/app/auth/login",
        "/api/v1/app/reports",
        "/api/v1/app/reports/{number}/rating",
        "/api/v1/app/points",
    ] {
        assert!(
            spec["paths"][route].is_object(),
            "{route} in the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn citizen_reports_follows_rates_and_earns_points_on_sqlite() {
    citizen_reports_follows_rates_and_earns_points(None).await;
}

#[tokio::test]
async fn citizen_reports_follows_rates_and_earns_points_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant not run");
        return;
    };
    citizen_reports_follows_rates_and_earns_points(Some(db.url.clone())).await;
    db.cleanup().await;
}
