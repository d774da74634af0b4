//! End to end: the real `hotline` binary as a WeChat official account's server, driven the way
//! WeChat's servers drive it: signed GET for the URL check, signed POSTs of follower messages in
//! plain and safe mode, retries of the same message, forged and replayed requests, and a burst.

mod common;

use std::time::{Duration, Instant};

use channels::wechat::crypto::{self, MessageCipher};
use channels::wechat::xml::Fields;
use common::sip::Hotline;
use reqwest::StatusCode;
use serde_json::Value;

const TOKEN: &str = "hotlineToken2026";
const APP_ID: &str = "wx5823bf96d3bd56c7";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const ACCOUNT: &str = "gh_9a3f1c2e7b10";

fn start() -> Hotline {
    start_with("")
}

/// With more `[wechat]` keys (the API's address and secret).
fn start_with(more: &str) -> Hotline {
    Hotline::start(|s| {
        s.extra = format!(
            "[wechat]\ntoken = \"{TOKEN}\"\napp_id = \"{APP_ID}\"\nencoding_aes_key = \"{AES_KEY}\"\nthread_minutes = 10\n{more}"
        );
    })
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The query WeChat signs a request with.
fn signed_query(timestamp: i64, nonce: &str) -> String {
    let ts = timestamp.to_string();
    let sig = crypto::sign(&[TOKEN, &ts, nonce]);
    format!("signature={sig}&timestamp={ts}&nonce={nonce}&openid=x")
}

fn text_xml(from: &str, msg_id: u64, content: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>",
        now_secs()
    )
}

struct Wechat {
    http: reqwest::Client,
    url: String,
}

impl Wechat {
    fn new(h: &Hotline) -> Wechat {
        Wechat {
            http: reqwest::Client::new(),
            url: format!("{}/api/v1/channels/wechat", h.http),
        }
    }

    /// POSTs a plain-mode message; the status and the body.
    async fn post(&self, xml: &str) -> (StatusCode, String) {
        self.post_with(&signed_query(now_secs(), "190238"), xml)
            .await
    }

    async fn post_with(&self, query: &str, body: &str) -> (StatusCode, String) {
        let res = self
            .http
            .post(format!("{}?{query}", self.url))
            .header("content-type", "text/xml")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// The `Content` of a plain passive reply.
    async fn say(&self, xml: &str) -> String {
        let (status, body) = self.post(xml).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let fields = Fields::parse(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(fields.get("MsgType"), Some("text"));
        assert_eq!(fields.get("FromUserName"), Some(ACCOUNT));
        fields.get("Content").unwrap().to_owned()
    }
}

fn ticket_number_in(text: &str) -> String {
    let start = text
        .find("12319-")
        .unwrap_or_else(|| panic!("no ticket number in {text:?}"));
    text[start..start + 21].to_owned()
}

async fn wechat_tickets(h: &Hotline) -> Vec<Value> {
    let api = h.supervisor().await;
    let (status, body) = api.get("/api/v1/tickets?channel=wechat&per_page=200").await;
    assert_eq!(status, StatusCode::OK);
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn url_check_echoes_only_a_signed_request() {
    let h = start();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/channels/wechat", h.http);
    let q = signed_query(now_secs(), "8741");
    let res = http
        .get(format!("{url}?{q}&echostr=5838479218127813673"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "5838479218127813673");
    // A wrong token's signature, and a signed request from 10 minutes ago (a replay).
    let ts = now_secs().to_string();
    let forged = crypto::sign(&["otherToken", &ts, "8741"]);
    let res = http
        .get(format!(
            "{url}?signature={forged}&timestamp={ts}&nonce=8741&echostr=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let stale = signed_query(now_secs() - 600, "8741");
    let res = http
        .get(format!("{url}?{stale}&echostr=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.text().await.unwrap(), "wechat_stale_timestamp");
    assert!(h.log().contains("WeChat request refused"));
}

#[tokio::test]
async fn text_photo_and_location_make_one_ticket_and_retries_make_none() {
    let h = start();
    let wx = Wechat::new(&h);
    let follower = "oPq3Tj_follower_A";
    let first = text_xml(
        follower,
        6054768590064713728,
        "人民路和光明路交叉口井盖丢了，晚上很危险",
    );
    let reply = wx.say(&first).await;
    assert!(reply.contains("已受理"), "{reply}");
    let number = ticket_number_in(&reply);
    // WeChat's three retries of the same message get the same answer and make nothing new.
    for _ in 0..3 {
        assert_eq!(ticket_number_in(&wx.say(&first).await), number);
    }
    let photo = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{follower}</FromUserName><CreateTime>{}</CreateTime><MsgType>image</MsgType><PicUrl>http://mmbiz.qpic.cn/mmbiz/abc/0</PicUrl><MediaId>media_photo_1</MediaId><MsgId>6054768590064713729</MsgId></xml>",
        now_secs()
    );
    let reply = wx.say(&photo).await;
    assert!(reply.contains("照片") && reply.contains(&number), "{reply}");
    assert!(wx.say(&photo).await.contains(&number));
    let place = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{follower}</FromUserName><CreateTime>{}</CreateTime><MsgType>location</MsgType><Location_X>33.844605</Location_X><Location_Y>115.779125</Location_Y><Scale>16</Scale><Label><![CDATA[安徽省亳州市谯城区人民中路]]></Label><MsgId>6054768590064713730</MsgId></xml>",
        now_secs()
    );
    let reply = wx.say(&place).await;
    assert!(reply.contains("位置") && reply.contains(&number), "{reply}");

    let tickets = wechat_tickets(&h).await;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let api = h.supervisor().await;
    let (status, t) = api.get(&format!("/api/v1/tickets/{number}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["channel"], "wechat");
    assert!(
        t["content"]
            .as_str()
            .unwrap()
            .starts_with("人民路和光明路交叉口井盖丢了"),
        "{t}"
    );
    assert_eq!(t["location"]["lat"], 33.844605);
    assert_eq!(t["location"]["address"], "安徽省亳州市谯城区人民中路");
    let attachments = t["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{t}");
    assert_eq!(attachments[0]["kind"], "photo");
    assert_eq!(attachments[0]["uri"], "wechat-media:media_photo_1");
    assert_eq!(t["reporters"][0]["wechat_openid"], follower);
    let (_, events) = api.get(&format!("/api/v1/tickets/{number}/events")).await;
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "supplement", "supplement"]);

    // The follower asks for the status by number; another follower is not told.
    let ask = wx
        .say(&text_xml(follower, 6054768590064713731, &number))
        .await;
    assert!(ask.contains("状态：已受理，待审核"), "{ask}");
    let other = wx.say(&text_xml("oOther_follower", 77, &number)).await;
    assert!(other.contains("未找到工单"), "{other}");
    assert_eq!(wechat_tickets(&h).await.len(), 1);

    // 我的工单 from the menu lists it.
    let click = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{follower}</FromUserName><CreateTime>{}</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>my_tickets</EventKey></xml>",
        now_secs()
    );
    assert!(wx.say(&click).await.contains(&number));
    // A new follower is welcomed; unfollowing answers `success` and ends the thread, so the
    // next text is a new report.
    let event = |name: &str, at: i64| {
        format!(
            "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{follower}</FromUserName><CreateTime>{at}</CreateTime><MsgType>event</MsgType><Event>{name}</Event></xml>"
        )
    };
    assert!(
        wx.say(&event("subscribe", now_secs()))
            .await
            .contains("欢迎关注")
    );
    let (status, body) = wx.post(&event("unsubscribe", now_secs() + 1)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "success"));
    let again = wx
        .say(&text_xml(follower, 6054768590064713740, "小区门口路灯不亮"))
        .await;
    assert_ne!(ticket_number_in(&again), number);
    assert_eq!(wechat_tickets(&h).await.len(), 2);
}

#[tokio::test]
async fn safe_mode_replies_are_encrypted_and_forgeries_are_refused() {
    let h = start();
    let wx = Wechat::new(&h);
    let cipher = MessageCipher::new(AES_KEY, APP_ID).unwrap();
    let post_encrypted = |inner: String, cipher: MessageCipher, sign_with: &'static str| {
        let wx = &wx;
        async move {
            let encrypt = cipher.encrypt(inner.as_bytes(), *b"0123456789abcdef");
            let ts = now_secs().to_string();
            let nonce = "1320562132";
            let sig = crypto::sign(&[TOKEN, &ts, nonce]);
            let msg_sig = crypto::sign(&[sign_with, &ts, nonce, &encrypt]);
            let body = format!(
                "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
            );
            wx.post_with(
                &format!("signature={sig}&timestamp={ts}&nonce={nonce}&openid=o&encrypt_type=aes&msg_signature={msg_sig}"),
                &body,
            )
            .await
        }
    };
    let inner = text_xml("oSafeMode_follower", 9001, "菜市场门口占道经营，堵住了路");
    let (status, body) = post_encrypted(inner.clone(), cipher.clone(), TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let envelope = Fields::parse(body.as_bytes()).unwrap();
    let (encrypt, sig, ts, nonce) = (
        envelope.get("Encrypt").unwrap(),
        envelope.get("MsgSignature").unwrap(),
        envelope.get("TimeStamp").unwrap(),
        envelope.get("Nonce").unwrap(),
    );
    crypto::verify(&[TOKEN, ts, nonce, encrypt], sig).expect("the reply is signed");
    assert!(
        !body.contains("已受理"),
        "the reply must not be readable: {body}"
    );
    let reply = String::from_utf8(cipher.decrypt(encrypt).unwrap()).unwrap();
    let fields = Fields::parse(reply.as_bytes()).unwrap();
    assert_eq!(fields.get("ToUserName"), Some("oSafeMode_follower"));
    assert!(fields.get("Content").unwrap().contains("已受理"), "{reply}");
    assert_eq!(wechat_tickets(&h).await.len(), 1);

    // Sealed for another account, signed with another token, garbage XML, unsigned: refused,
    // nothing created.
    let other_account = MessageCipher::new(AES_KEY, "wx0000000000000000").unwrap();
    let (status, body) = post_encrypted(
        text_xml("oSafeMode_follower", 9002, "别的账号"),
        other_account,
        TOKEN,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, "wechat_wrong_appid")
    );
    let (status, _) = post_encrypted(
        text_xml("oSafeMode_follower", 9003, "伪造"),
        cipher.clone(),
        "forgedToken",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = wx.post("<xml><ToUserName>x</ToUserName>").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "wechat_bad_message")
    );
    let (status, _) = wx
        .post_with("timestamp=1&nonce=2", &text_xml("oX", 9004, "无签名"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(wechat_tickets(&h).await.len(), 1);
    let log = h.log();
    assert!(log.contains("wechat_wrong_appid"), "refusals are logged");
    assert!(log.contains("wechat_bad_signature"));
}

#[tokio::test]
async fn a_burst_of_1000_messages_is_answered_within_five_seconds_each() {
    let h = start();
    let wx = std::sync::Arc::new(Wechat::new(&h));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..1000u64 {
        let wx = wx.clone();
        set.spawn(async move {
            let xml = text_xml(
                &format!("oBurst_{i:04}"),
                7_000_000_000_000_000_000 + i,
                &format!("暴雨后第{i}号路段积水，车辆无法通行"),
            );
            let sent = Instant::now();
            let (status, body) = wx.post(&xml).await;
            (status, body, sent.elapsed())
        });
    }
    let mut worst = Duration::ZERO;
    let mut numbers = std::collections::HashSet::new();
    while let Some(r) = set.join_next().await {
        let (status, body, took) = r.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        worst = worst.max(took);
        numbers.insert(ticket_number_in(&body));
    }
    let total = started.elapsed();
    eprintln!(
        "1000 WeChat messages: slowest answer {} ms, all answered in {} ms",
        worst.as_millis(),
        total.as_millis()
    );
    assert!(
        worst < Duration::from_secs(5),
        "slowest answer took {worst:?}"
    );
    assert_eq!(numbers.len(), 1000);
    assert_eq!(
        wechat_tickets(&h).await.len(),
        200,
        "the first page is full"
    );
    let api = h.supervisor().await;
    let (_, page) = api.get("/api/v1/tickets?channel=wechat&per_page=1").await;
    assert_eq!(page["total"], 1000, "{page}");
}

/// A phone photo: a real JPEG with an EXIF block carrying a camera make (to be stripped).
fn phone_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&img)
        .unwrap();
    // APP1 "Exif" with a little-endian TIFF holding one ASCII tag, Make = "HUAWEI".
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x010fu16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&7u32.to_le_bytes());
    tiff.extend_from_slice(&26u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(b"HUAWEI\0");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test]
async fn photos_are_fetched_from_the_api_and_followers_hear_of_progress() {
    let standin = channels::wechat::standin::StandIn::start(APP_ID, "s3cr3t-app-secret").await;
    let jpeg = phone_jpeg();
    assert!(jpeg.windows(6).any(|w| w == b"HUAWEI"));
    standin.add_media("media_photo_9", jpeg.clone(), "image/jpeg");
    let h = start_with(&format!(
        "app_secret = \"s3cr3t-app-secret\"\napi_base = \"{}\"\n",
        standin.base_url()
    ));
    let wx = Wechat::new(&h);
    let follower = "oPhoto_follower";
    let reply = wx
        .say(&text_xml(
            follower,
            8101,
            "北京路菜市场门口垃圾堆了好几天没人清理",
        ))
        .await;
    let number = ticket_number_in(&reply);
    let photo = format!(
        "<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>{follower}</FromUserName><CreateTime>{}</CreateTime><MsgType>image</MsgType><PicUrl>http://mmbiz.qpic.cn/x/0</PicUrl><MediaId>media_photo_9</MediaId><MsgId>8102</MsgId></xml>",
        now_secs()
    );
    assert!(wx.say(&photo).await.contains(&number));

    // The worker downloads it, checks it and stores it without its metadata.
    let api = h.supervisor().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let (_, t) = api.get(&format!("/api/v1/tickets/{number}")).await;
        let uri = t["attachments"][0]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if uri.starts_with("media/") {
            assert_eq!(t["attachments"][0]["content_type"], "image/jpeg");
            break uri;
        }
        assert!(
            Instant::now() < deadline,
            "the photo was not fetched: {t}\n{}",
            h.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(stored.ends_with(".jpg"), "{stored}");
    let bytes = std::fs::read(h.data().join(&stored)).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"HUAWEI"), "metadata kept");
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));

    // Rejected by a supervisor: the follower gets a customer-service message saying so.
    let (status, _) = api
        .post(
            &format!("/api/v1/tickets/{number}/transitions"),
            serde_json::json!({"action": "reject", "reason": "非城市管理职责"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(20);
    let notice = loop {
        if let Some(m) = standin.sent().into_iter().find(|m| m.touser == follower) {
            break m;
        }
        assert!(Instant::now() < deadline, "no notice sent\n{}", h.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = notice.text().unwrap();
    assert!(
        text.contains(&number) && text.contains("不予立案"),
        "{text}"
    );
    assert_eq!(standin.sent().len(), 1, "one change, one notice");
    assert!(
        !h.log().contains("s3cr3t-app-secret"),
        "the secret is never logged"
    );
}
