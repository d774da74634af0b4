//! End to end: the public web form (`/report`) of the real `hotline` binary, used by a citizen in
//! headless Chromium on a phone-sized screen — photos, location, the ticket number on the page, a
//! retry, errors in Chinese, the look-up, the rate limit — and checked through the staff API.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`bash scripts/setup-deps test`); the test
//! fails, saying so, when they are missing.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::Api;
use common::browser::Browser;
use common::sip::{Hotline, PASSWORD};
use image::{ExtendedColorType, ImageEncoder};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Burst of reports one address may send; after it, one an hour.
const BURST: usize = 6;
const PHONE: &str = "13912345678";
/// Where the citizen stands (Hefei): the browser's geolocation reports it.
const LAT: f64 = 31.820_591;
const LON: f64 = 117.227_219;
/// A comment a phone camera app left in the JPEG; it must not be stored.
const COMMENT: &[u8] = b"shot by citizen 13800138000 at home";

/// A hotline whose web form lets one address send `burst` reports, then one an hour.
fn start(burst: usize) -> Hotline {
    Hotline::start(|s| {
        s.extra = format!("[web_form]\nreport_burst = {burst}\nreports_per_hour = 1\n");
    })
}

fn pixels(w: u32, h: u32) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [(x * 4) as u8, (y * 5) as u8, ((x + y) * 3) as u8]))
        .collect()
}

/// A real JPEG (with a comment segment a stripper must drop) and a real PNG, and a text file
/// named like a photo.
fn write_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .write_image(&pixels(64, 48), 64, 48, ExtendedColorType::Rgb8)
        .unwrap();
    // COM segment right after SOI.
    let mut with_comment = jpeg[..2].to_vec();
    with_comment.extend_from_slice(&[0xFF, 0xFE]);
    with_comment.extend_from_slice(&u16::try_from(COMMENT.len() + 2).unwrap().to_be_bytes());
    with_comment.extend_from_slice(COMMENT);
    with_comment.extend_from_slice(&jpeg[2..]);
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels(40, 30), 40, 30, ExtendedColorType::Rgb8)
        .unwrap();
    let (a, b, c) = (
        dir.join("井盖.jpg"),
        dir.join("现场.png"),
        dir.join("notes.jpg"),
    );
    std::fs::write(&a, &with_comment).unwrap();
    std::fs::write(&b, &png).unwrap();
    std::fs::write(&c, "这不是照片，是一段文字。\nnot a photo at all\n").unwrap();
    (a, b, c)
}

/// Saves what the citizen sees under `$HOTLINE_TEST_SCREENSHOTS/<name>.png`, when that is set.
async fn shot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("HOTLINE_TEST_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        browser
            .screenshot(&Path::new(&dir).join(format!("{name}.png")))
            .await;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Fills the description and submits; waits for the ticket number or an error.
async fn report(browser: &Browser, content: &str) -> Result<String, String> {
    browser.fill("#content", content).await;
    browser.click("#submit").await;
    let outcome = browser
        .wait_until(
            "the report is answered",
            "(!document.getElementById('done').hidden && document.getElementById('ticket-number').textContent) || (!document.getElementById('form-error').hidden && 'error')",
        )
        .await;
    if outcome == "error" {
        Err(browser.text("#form-error").await)
    } else {
        Ok(browser.text("#ticket-number").await)
    }
}

async fn lookup(browser: &Browser, number: &str, phone: &str) -> Result<String, String> {
    browser.click("#tab-lookup").await;
    browser.fill("#lookup-number", number).await;
    browser.fill("#lookup-phone", phone).await;
    browser
        .execute(
            "document.getElementById('lookup-result').hidden = true; document.getElementById('lookup-error').hidden = true;",
            vec![],
        )
        .await;
    browser.click("#lookup-submit").await;
    let outcome = browser
        .wait_until(
            "the look-up is answered",
            "(!document.getElementById('lookup-result').hidden && 'result') || (!document.getElementById('lookup-error').hidden && 'error')",
        )
        .await;
    if outcome == "error" {
        Err(browser.text("#lookup-error").await)
    } else {
        Ok(browser.text("#result-status").await)
    }
}

/// The page has no sideways scrolling and its controls are finger-sized at this width.
async fn assert_fits(browser: &Browser, width: u32) {
    browser.set_viewport(width, 800).await;
    let layout = browser
        .execute(
            "const small = Array.from(document.querySelectorAll('button, .button, input:not([type=hidden]):not([type=file]), select, textarea, .tab')).filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44).map(e => e.id || e.className); return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth, small: small};",
            vec![],
        )
        .await;
    assert_eq!(layout["inner"], width, "{layout}");
    assert!(
        layout["scroll"].as_u64().unwrap() <= u64::from(width),
        "the page scrolls sideways at {width} px: {layout}"
    );
    assert_eq!(
        layout["small"],
        json!([]),
        "controls under 44 px at {width} px"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn citizen_reports_with_photos_and_location_then_looks_the_ticket_up() {
    let started = Instant::now();
    let hotline = start(BURST);
    let browser = Browser::start().await;
    let staff = Api::login(&hotline.http, "supervisor", PASSWORD).await;
    let files = tempfile::tempdir().unwrap();
    let (jpeg, png, text) = write_files(files.path());

    browser.goto(&format!("{}/report", hotline.http)).await;
    browser
        .wait_until(
            "the form has loaded its choices",
            "document.body.dataset.ready === 'true'",
        )
        .await;
    assert_eq!(
        browser
            .execute("return document.documentElement.lang;", vec![])
            .await,
        "zh-CN"
    );
    assert_eq!(browser.text("#hotline-name").await, "城市管理服务热线");
    assert!(browser.count("#category optgroup").await >= 5);
    assert_fits(&browser, 360).await;
    assert_fits(&browser, 390).await;

    // An empty description is caught on the page, in Chinese, before anything is sent.
    browser.fill("#phone", PHONE).await;
    browser.click("#submit").await;
    browser.wait_visible("#form-error").await;
    assert_eq!(browser.text("#form-error").await, "请填写问题描述。");
    assert_eq!(browser.text("#content-error").await, "请填写问题描述。");
    shot(&browser, "1-empty").await;

    // The report: words, a category, an address, the phone's location, a name, two photos.
    browser
        .fill(
            "#content",
            "芜湖路与徽州大道交口东北角的井盖缺失，晚上看不见，已经有行人踩空。",
        )
        .await;
    browser.click("#category option[value='C0101']").await;
    browser
        .fill("#address", "包河区芜湖路与徽州大道交口东北角")
        .await;
    browser.set_location(&hotline.http, LAT, LON, 12.0).await;
    browser.click("#locate").await;
    browser
        .wait_until(
            "the location is read",
            "document.getElementById('location-status').textContent.startsWith('已获取位置')",
        )
        .await;
    assert_eq!(
        browser.text("#location-status").await,
        "已获取位置：北纬 31.82059°，东经 117.22722°（误差约 12 米）"
    );
    browser.fill("#name", "王女士").await;
    browser.fill("#phone", "139 1234 5678").await;
    browser.choose_files("#photos", &[&jpeg, &png]).await;
    browser
        .wait_until(
            "both previews show",
            "Array.from(document.querySelectorAll('#previews img')).filter(i => i.complete && i.naturalWidth > 0).length === 2",
        )
        .await;
    shot(&browser, "2-filled").await;
    let number = report(
        &browser,
        "芜湖路与徽州大道交口东北角的井盖缺失，晚上看不见，已经有行人踩空。",
    )
    .await
    .expect("the report is accepted");
    assert!(
        number.starts_with("12319-") && number.len() == "12319-20261202-000001".len(),
        "{number}"
    );
    assert!(browser.visible("#done").await);
    assert!(!browser.visible("#done-replayed").await);
    shot(&browser, "3-done").await;
    let done = browser.text("#done").await;
    assert!(
        done.contains("提交成功") && done.contains("工单编号") && done.contains("查询进度"),
        "{done}"
    );

    // The staff API sees a web ticket with the reporter, the place and both photos.
    let (status, ticket) = staff.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["channel"], "web");
    assert_eq!(ticket["category"], "C0101");
    assert_eq!(ticket["reporters"].as_array().unwrap().len(), 1);
    assert_eq!(ticket["reporters"][0]["phone"], PHONE);
    assert_eq!(ticket["reporters"][0]["name"], "王女士");
    assert_eq!(
        ticket["location"]["address"],
        "包河区芜湖路与徽州大道交口东北角"
    );
    assert!((ticket["location"]["lat"].as_f64().unwrap() - LAT).abs() < 1e-5);
    assert!((ticket["location"]["lon"].as_f64().unwrap() - LON).abs() < 1e-5);
    let attachments = ticket["attachments"].as_array().unwrap();
    let types: Vec<&str> = attachments
        .iter()
        .map(|a| a["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["image/jpeg", "image/png"], "{ticket}");
    for a in attachments {
        assert_eq!(a["kind"], "photo");
        let stored = std::fs::read(hotline.data().join(a["uri"].as_str().unwrap())).unwrap();
        assert!(!contains(&stored, COMMENT), "metadata is stripped");
        image::load_from_memory(&stored).expect("the stored photo decodes");
    }

    // A retry with the same page state (the answer was lost, the citizen taps again) resends the
    // same Idempotency-Key: the same number, no second ticket.
    browser
        .execute(
            "document.getElementById('report-form').requestSubmit();",
            vec![],
        )
        .await;
    browser.wait_visible("#done-replayed").await;
    assert_eq!(browser.text("#ticket-number").await, number);
    let (_, page) = staff.get("/api/v1/tickets?channel=web").await;
    assert_eq!(page["total"], 1, "{page}");
    let media = walk(&hotline.data().join("media"));
    assert_eq!(media.len(), 2, "the retry's photos are not kept: {media:?}");

    // A text file named .jpg passes the page's check by name but not the server's by content;
    // the refusal is shown in Chinese.
    browser.click("#done-again").await;
    assert_eq!(browser.count("#previews .preview").await, 0);
    assert_eq!(
        browser
            .execute("return document.getElementById('phone').value;", vec![])
            .await,
        "139 1234 5678",
        "the phone is kept for the next report"
    );
    browser.choose_files("#photos", &[&text]).await;
    browser
        .wait_until(
            "the preview is marked broken",
            "document.querySelector('#previews .broken')",
        )
        .await;
    let refused = report(&browser, "人行道上的垃圾桶被撞倒了，垃圾散了一地。")
        .await
        .expect_err("a text file is not a photo");
    assert!(
        refused.starts_with("第 1 张照片不是可接受的图片"),
        "{refused}"
    );
    assert!(refused.contains("只接受 JPEG、PNG 或 WebP"), "{refused}");
    shot(&browser, "4-refused-photo").await;
    assert!(
        !refused.contains("the ") && !refused.contains("field"),
        "no English on the page: {refused}"
    );
    browser.click("#previews .preview button").await;
    assert_eq!(browser.count("#previews .preview").await, 0);

    // Look-up with the reporter's phone: the status in citizens' words and the time line.
    assert_eq!(
        lookup(&browser, &number, PHONE).await,
        Ok("已受理，待审核".to_owned())
    );
    assert_eq!(browser.text("#result-number").await, number);
    assert_eq!(
        browser.text("#result-timeline li span").await,
        "已受理您的反映"
    );
    // Staff file it with an internal note: the citizen sees the step, not the note.
    let (status, filed) = staff
        .post(
            &format!("/api/v1/tickets/{number}/transitions"),
            json!({"action": "file", "note": "内部：王女士来电两次，语气激动"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{filed}");
    assert_eq!(
        lookup(&browser, &number, PHONE).await,
        Ok("已立案，待派遣".to_owned())
    );
    let result = browser.text("#lookup-result").await;
    assert!(
        result.contains("已立案") && result.contains("上水井盖"),
        "{result}"
    );
    assert!(
        !result.contains("内部") && !result.contains("语气"),
        "{result}"
    );
    shot(&browser, "5-lookup").await;
    // A wrong phone and a number that does not exist get the same answer.
    let not_found = "未找到该工单：请核对工单编号和手机号码（须为反映问题时留下的号码）";
    assert_eq!(
        lookup(&browser, &number, "13800138000").await,
        Err(not_found.to_owned())
    );
    assert_eq!(
        lookup(&browser, "12319-20200101-000001", PHONE).await,
        Err(not_found.to_owned())
    );
    assert_eq!(
        lookup(&browser, &number, "12345").await,
        Err("手机号码格式不正确：请填写反映问题时留下的 11 位手机号码。".to_owned())
    );

    // Rate limit: three reports have been sent from this address (the first, its retry, the
    // refused one); the rest of the burst goes through, the next is refused with a message.
    browser.click("#tab-report").await;
    for i in 3..BURST {
        let n = report(
            &browser,
            &format!("第{i}处：小区门口路灯不亮，已经一个星期了，晚上很黑。"),
        )
        .await
        .unwrap_or_else(|e| panic!("report {i} of the burst: {e}"));
        assert_ne!(n, number);
        browser.click("#done-again").await;
    }
    let limited = report(&browser, "公园东门的公共厕所没有水，无法冲洗。")
        .await
        .expect_err("one more than the burst");
    assert!(
        limited.starts_with("提交过于频繁，请 ") && limited.contains("分钟后再试"),
        "{limited}"
    );
    shot(&browser, "6-rate-limited").await;
    // The same refusal over HTTP: 429, Retry-After, a problem document. A forged
    // X-Forwarded-For does not help: no proxy header is configured.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/web/reports", hotline.http))
        .header("x-forwarded-for", "198.51.100.77")
        .multipart(
            reqwest::multipart::Form::new()
                .text("content", "再试一次")
                .text("phone", PHONE),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    let (_, page) = staff.get("/api/v1/tickets?channel=web").await;
    assert_eq!(page["total"], BURST - 2, "{page}");

    browser.close().await;
    eprintln!(
        "web form in Chromium: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The page and its assets are served from the binary with the right types and caching, the
/// endpoints answer problem documents, and the OpenAPI document lists them (no browser).
#[tokio::test]
async fn the_page_is_served_from_the_binary_and_errors_are_problems() {
    let hotline = start(50);
    let http = reqwest::Client::new();
    let base = &hotline.http;
    for path in ["/report", "/report/lookup"] {
        let res = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["cache-control"], "no-cache");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        let etag = h["etag"].to_str().unwrap().to_owned();
        let html = res.text().await.unwrap();
        assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("问题描述"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing from outside"
        );
        let again = http
            .get(format!("{base}{path}"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        // Every asset the page names is served, versioned and cached for good.
        for (asset, kind) in [
            ("report.css", "text/css; charset=utf-8"),
            ("report.js", "text/javascript; charset=utf-8"),
            ("icon.svg", "image/svg+xml"),
        ] {
            let start = html
                .find(&format!("/report/assets/{asset}?v="))
                .unwrap_or_else(|| panic!("{asset} is linked"));
            let url: String = html[start..].chars().take_while(|c| *c != '"').collect();
            let res = http.get(format!("{base}{url}")).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{url}");
            assert_eq!(res.headers()["content-type"], kind);
            assert_eq!(
                res.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
            assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        }
    }
    let res = http
        .get(format!("{base}/report/assets/secret.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    let form: Value = http
        .get(format!("{base}/api/v1/web/form"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form["hotline"], "12319");
    assert_eq!(form["max_photos"], 9);
    assert!(
        form["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "C0101" && c["name"] == "上水井盖")
    );

    // Not multipart, no phone, a bad phone, a bad key: problem documents in Chinese.
    let post = |body: reqwest::multipart::Form| {
        http.post(format!("{base}/api/v1/web/reports"))
            .header("idempotency-key", "0b9c1f8e-5a1d-4c53-9d0e-3f6c2a7b8e41")
            .multipart(body)
            .send()
    };
    let cases = [
        (
            reqwest::multipart::Form::new().text("content", "路灯不亮好几天了"),
            "phone_missing",
        ),
        (
            reqwest::multipart::Form::new()
                .text("content", "路灯不亮好几天了")
                .text("phone", "010-12345678"),
            "invalid_phone",
        ),
        (
            reqwest::multipart::Form::new()
                .text("content", "灯坏")
                .text("phone", PHONE),
            "content_too_short",
        ),
        (
            reqwest::multipart::Form::new()
                .text("content", "路灯不亮好几天了")
                .text("phone", PHONE)
                .text("category", "X9999"),
            "invalid_category",
        ),
    ];
    for (body, code) in cases {
        let res = post(body).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{code}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], code, "{p}");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .chars()
                .any(|c| c > '\u{4e00}'),
            "{p}"
        );
    }
    // Ten photos: one more than the form takes.
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels(8, 8), 8, 8, ExtendedColorType::Rgb8)
        .unwrap();
    let mut ten = reqwest::multipart::Form::new()
        .text("content", "路灯不亮好几天了")
        .text("phone", PHONE);
    for i in 0..10 {
        ten = ten.part(
            "photo",
            reqwest::multipart::Part::bytes(png.clone()).file_name(format!("{i}.png")),
        );
    }
    let res = post(ten).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "photo_too_many", "{p}");
    assert_eq!(p["detail"], "最多可上传 9 张照片，请删去多余的照片");
    let (_, page) = Api::login(base, "supervisor", PASSWORD)
        .await
        .get("/api/v1/tickets?channel=web")
        .await;
    assert_eq!(page["total"], 0, "no refused report made a ticket: {page}");
    let res = http
        .post(format!("{base}/api/v1/web/reports"))
        .json(&json!({"content": "路灯不亮"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = http
        .post(format!("{base}/api/v1/web/reports"))
        .header("idempotency-key", "bad key!")
        .multipart(
            reqwest::multipart::Form::new()
                .text("content", "路灯不亮好几天了")
                .text("phone", PHONE),
        )
        .send()
        .await
        .unwrap();
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "invalid_idempotency_key", "{p}");

    // The look-up also takes an HTML form's urlencoded body; a malformed number is "not found".
    let res = http
        .post(format!("{base}/api/v1/web/lookup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("number=no-such-thing&phone={PHONE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["code"], "not_found");

    let spec: Value = http
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/web/form",
        "/api/v1/web/reports",
        "/api/v1/web/lookup",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    for schema in ["FormInfo", "Submitted", "LookupRequest", "Progress", "Step"] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "{schema} is in the document"
        );
    }
    assert!(
        spec["paths"]["/api/v1/web/reports"]["post"]["requestBody"]["content"]
            ["multipart/form-data"]
            .is_object()
    );
}
