//! The official account's message server (服务器配置): checks every request, turns what followers
//! send into tickets through the one intake, and answers within WeChat's 5-second bound.
//!
//! A request is answered from what is committed: the message is checked (signature, timestamp,
//! AppID), decided on ([`plan`], sans-IO), written (a new ticket or a supplement, keyed by the
//! message's [`Inbound::dedup_key`] in the same transaction, so WeChat's retries make nothing new),
//! and only then replied to. Slow work (downloading photos and voice) is left to workers.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use ticketing::model::{Attachment, AttachmentKind, Location, Reporter};
use ticketing::store::{Origin, ReporterKey, Supplement, Thread, TicketFilter};
use ticketing::{Actor, Channel, NewTicket, Role, Status, Ticket, TicketNumber, Tickets};

use super::crypto::{self, CryptoError, MessageCipher};
use super::xml::{self, Body, Event, Fields, Inbound, XmlError};

/// `[wechat]` in hotline.toml: the account's server settings as entered on the WeChat platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    /// The Token (令牌) configured on the platform; signs every request.
    pub token: String,
    /// The account's AppID; safe-mode messages must carry it.
    pub app_id: String,
    /// The 43-character EncodingAESKey (消息加解密密钥); needed for safe and compatible mode.
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    /// The AppSecret, for the API client (media download, notices).
    #[serde(default)]
    pub app_secret: Option<String>,
    /// Where WeChat's HTTP API is (a stand-in in tests).
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// The hotline that owns tickets from this account (the first one when absent).
    #[serde(default)]
    pub hotline: Option<String>,
    /// Messages a follower sends within this many minutes of their last one add to the same
    /// ticket (text, then a photo, then a location: one report).
    #[serde(default = "default_thread_minutes")]
    pub thread_minutes: u32,
    /// Requests whose timestamp is further than this from now are refused as replays.
    #[serde(default = "default_skew")]
    pub max_clock_skew_seconds: u32,
    /// The reply to a new follower; a standard text when absent.
    #[serde(default)]
    pub welcome: Option<String>,
}

fn default_api_base() -> String {
    "https://api.weixin.qq.com".into()
}
fn default_thread_minutes() -> u32 {
    10
}
fn default_skew() -> u32 {
    300
}

/// The query string WeChat puts on every request to the server URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    /// `sha1(sort(token, timestamp, nonce))`.
    pub signature: Option<String>,
    /// Unix seconds, as text.
    pub timestamp: Option<String>,
    /// A random string.
    pub nonce: Option<String>,
    /// The text to echo on the URL check (GET).
    pub echostr: Option<String>,
    /// `aes` in safe and compatible mode.
    pub encrypt_type: Option<String>,
    /// `sha1(sort(token, timestamp, nonce, Encrypt))` in safe mode.
    pub msg_signature: Option<String>,
    /// The follower's openid (also inside the message).
    pub openid: Option<String>,
}

/// Why a request was refused or could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    /// A signature is missing or wrong: forged, or the Token differs.
    #[error("signature check failed")]
    Signature,
    /// The timestamp is missing or too far from now: a replay or a broken clock.
    #[error("timestamp missing or more than {0} s from now")]
    Stale(u32),
    /// Safe mode failed (bad cipher text, another account's AppID).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Not a WeChat message.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The request is encrypted but no EncodingAESKey is configured.
    #[error("an encrypted message arrived but no encoding_aes_key is configured")]
    NoAesKey,
    /// The ticket service failed.
    #[error(transparent)]
    Tickets(#[from] ticketing::Error),
}

impl WechatError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            WechatError::Signature => "wechat_bad_signature",
            WechatError::Stale(_) => "wechat_stale_timestamp",
            WechatError::Crypto(e) => e.code(),
            WechatError::Xml(_) => "wechat_bad_message",
            WechatError::NoAesKey => "wechat_no_aes_key",
            WechatError::Tickets(e) => e.code(),
        }
    }

    /// A refusal of the request itself (forged, replayed, malformed), as opposed to a failure
    /// on our side that WeChat's retry may get past.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, WechatError::Tickets(_) | WechatError::NoAesKey)
    }
}

/// What to do with one message, decided from the message and the follower's thread alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Open a ticket.
    Open(Box<NewTicket>),
    /// Add to the thread's ticket.
    Add(TicketNumber, Box<Supplement>, &'static str),
    /// Tell the follower where this ticket stands.
    Status(TicketNumber),
    /// List the follower's tickets.
    MyTickets,
    /// Say this text and change nothing.
    Say(Reply),
    /// Answer `success` (nothing to say).
    Nothing,
    /// The follower left: forget their thread.
    Forget,
}

/// Fixed replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// To a new follower.
    Welcome,
    /// How to report.
    Help,
    /// A message type we do not take.
    Unsupported,
    /// An empty text.
    Empty,
}

/// Menu keys (菜单 CLICK) this server understands.
pub mod menu {
    /// 我的工单.
    pub const MY_TICKETS: &str = "my_tickets";
    /// 我要反映 / 使用说明.
    pub const HOW_TO_REPORT: &str = "how_to_report";
}

/// Decides what a message does (sans-IO): `thread` is the follower's current thread when it is
/// still open for additions (within the window, ticket not closed).
pub fn plan(inbound: &Inbound, thread: Option<&TicketNumber>, hotline: Option<&str>) -> Step {
    let reporter = Reporter {
        wechat_openid: Some(inbound.from.clone()),
        ..Reporter::default()
    };
    let open = |content: String, location: Location, attachments: Vec<Attachment>| {
        Step::Open(Box::new(NewTicket {
            hotline: hotline.map(str::to_owned),
            channel: Some(Channel::Wechat),
            reporter: reporter.clone(),
            content,
            location,
            attachments,
            ..NewTicket::default()
        }))
    };
    let add = |number: &TicketNumber, s: Supplement, what: &'static str| {
        Step::Add(number.clone(), Box::new(s), what)
    };
    match &inbound.body {
        Body::Text { content, .. } => {
            let text = content.trim();
            if text.is_empty() {
                return Step::Say(Reply::Empty);
            }
            if let Ok(number) = TicketNumber::parse(text) {
                return Step::Status(number);
            }
            if matches!(text, "我的工单" | "查询" | "进度" | "查询进度") {
                return Step::MyTickets;
            }
            match thread {
                Some(n) => add(
                    n,
                    Supplement {
                        content: Some(text.to_owned()),
                        ..Supplement::default()
                    },
                    "文字说明",
                ),
                None => open(text.to_owned(), Location::default(), Vec::new()),
            }
        }
        Body::Image {
            media_id, pic_url, ..
        } => {
            let photo = Attachment {
                kind: AttachmentKind::Photo,
                uri: media_uri(media_id),
                content_type: None,
                note: pic_url.clone(),
            };
            match thread {
                Some(n) => add(
                    n,
                    Supplement {
                        attachments: vec![photo],
                        ..Supplement::default()
                    },
                    "照片",
                ),
                None => open(
                    "（微信上报：现场照片，未附文字说明）".into(),
                    Location::default(),
                    vec![photo],
                ),
            }
        }
        Body::Voice {
            media_id,
            format,
            recognition,
            ..
        } => {
            let voice = Attachment {
                kind: AttachmentKind::Recording,
                uri: media_uri(media_id),
                content_type: format.as_deref().map(|f| format!("audio/{f}")),
                note: recognition.clone(),
            };
            let words = recognition
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| format!("（语音）{r}"));
            match thread {
                Some(n) => add(
                    n,
                    Supplement {
                        content: words,
                        attachments: vec![voice],
                        ..Supplement::default()
                    },
                    "语音",
                ),
                None => open(
                    words.unwrap_or_else(|| "（微信上报：语音留言）".into()),
                    Location::default(),
                    vec![voice],
                ),
            }
        }
        Body::Location {
            lat, lon, label, ..
        } => {
            let location = Location {
                address: label.clone(),
                lat: Some(*lat),
                lon: Some(*lon),
                grid_code: None,
            };
            let words = format!(
                "（位置）{}",
                label
                    .clone()
                    .unwrap_or_else(|| format!("{lat:.6}, {lon:.6}"))
            );
            match thread {
                Some(n) => add(
                    n,
                    Supplement {
                        content: Some(words),
                        location,
                        ..Supplement::default()
                    },
                    "位置",
                ),
                None => open(format!("（微信上报）{words}"), location, Vec::new()),
            }
        }
        Body::Other { .. } => Step::Say(Reply::Unsupported),
        Body::Event(Event::Subscribe) => Step::Say(Reply::Welcome),
        Body::Event(Event::Unsubscribe) => Step::Forget,
        Body::Event(Event::Click { key }) => match key.as_str() {
            menu::MY_TICKETS => Step::MyTickets,
            _ => Step::Say(Reply::Help),
        },
        Body::Event(Event::Other { .. }) => Step::Nothing,
    }
}

/// Where a follower's media is until a worker has downloaded it: `wechat-media:<media_id>`.
pub fn media_uri(media_id: &str) -> String {
    format!("wechat-media:{media_id}")
}

/// The official account's server: verification, decryption, the conversation, replies.
#[derive(Clone)]
pub struct OfficialAccount {
    cfg: Arc<WechatConfig>,
    cipher: Option<MessageCipher>,
    tickets: Tickets,
    locks: Arc<[tokio::sync::Mutex<()>]>,
}

const LOCK_STRIPES: usize = 64;

impl OfficialAccount {
    /// Checks the configuration (a bad EncodingAESKey is refused here, not at the first message).
    pub fn new(cfg: WechatConfig, tickets: Tickets) -> Result<Self, CryptoError> {
        let cipher = match cfg.encoding_aes_key.as_deref().map(str::trim) {
            Some(key) if !key.is_empty() => Some(MessageCipher::new(key, &cfg.app_id)?),
            _ => None,
        };
        Ok(OfficialAccount {
            cfg: Arc::new(cfg),
            cipher,
            tickets,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &WechatConfig {
        &self.cfg
    }

    /// The system actor channel tickets are opened by.
    pub fn actor() -> Actor {
        Actor {
            id: 0,
            name: "微信公众号".into(),
            role: Role::Agent,
            department: None,
        }
    }

    fn check_time(&self, q: &Query, now: Timestamp) -> Result<(), WechatError> {
        let skew = self.cfg.max_clock_skew_seconds;
        let ts = q
            .timestamp
            .as_deref()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .ok_or(WechatError::Stale(skew))?;
        if (now.as_second() - ts).abs() > i64::from(skew) {
            return Err(WechatError::Stale(skew));
        }
        Ok(())
    }

    fn check_signature(&self, q: &Query) -> Result<(), WechatError> {
        let (Some(sig), Some(ts), Some(nonce)) = (&q.signature, &q.timestamp, &q.nonce) else {
            return Err(WechatError::Signature);
        };
        crypto::verify(&[&self.cfg.token, ts, nonce], sig).map_err(|_| WechatError::Signature)
    }

    /// The URL check WeChat makes when the server is configured (GET): the `echostr` to send
    /// back when the signature is right.
    pub fn verify_url(&self, q: &Query, now: Timestamp) -> Result<String, WechatError> {
        self.check_signature(q)?;
        self.check_time(q, now)?;
        Ok(q.echostr.clone().unwrap_or_default())
    }

    /// Handles one POST: the body to answer with (a passive reply, or `success`).
    pub async fn receive(
        &self,
        q: &Query,
        body: &[u8],
        now: Timestamp,
    ) -> Result<String, WechatError> {
        self.check_signature(q)?;
        self.check_time(q, now)?;
        let encrypted = q
            .encrypt_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("aes"));
        let inbound = if encrypted {
            let cipher = self.cipher.as_ref().ok_or(WechatError::NoAesKey)?;
            let envelope = Fields::parse(body)?;
            let encrypt = envelope
                .get("Encrypt")
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .ok_or(XmlError::Missing("Encrypt"))?;
            let (Some(msg_sig), Some(ts), Some(nonce)) = (&q.msg_signature, &q.timestamp, &q.nonce)
            else {
                return Err(WechatError::Signature);
            };
            crypto::verify(&[&self.cfg.token, ts, nonce, encrypt], msg_sig)
                .map_err(|_| WechatError::Signature)?;
            Inbound::parse(&cipher.decrypt(encrypt)?)?
        } else {
            Inbound::parse(body)?
        };
        let text = self.converse(&inbound, now).await?;
        let Some(text) = text else {
            return Ok("success".into());
        };
        let reply = xml::text_reply(&inbound, now.as_second(), &text);
        if !encrypted {
            return Ok(reply);
        }
        let cipher = self.cipher.as_ref().ok_or(WechatError::NoAesKey)?;
        let sealed = cipher.encrypt(reply.as_bytes(), rand::random());
        let timestamp = now.as_second().to_string();
        let nonce = rand::random::<u32>().to_string();
        let signature = crypto::sign(&[&self.cfg.token, &timestamp, &nonce, &sealed]);
        Ok(xml::encrypted_reply(
            &sealed, &signature, &timestamp, &nonce,
        ))
    }

    /// Carries out one message; `None` when there is nothing to say.
    async fn converse(
        &self,
        inbound: &Inbound,
        now: Timestamp,
    ) -> Result<Option<String>, WechatError> {
        // One follower's messages are handled one at a time, so a text and a photo sent together
        // cannot both open a ticket.
        let stripe = stripe_of(&inbound.from);
        let _turn = self.locks[stripe].lock().await;
        let store = self.tickets.store();
        let thread = store
            .thread(Channel::Wechat, &inbound.from)
            .await
            .map_err(ticketing::Error::from)?;
        let live = match thread {
            Some(Thread { ticket, last_at })
                if now.duration_since(last_at)
                    <= SignedDuration::from_mins(i64::from(self.cfg.thread_minutes)) =>
            {
                // A ticket that was closed meanwhile takes no more: the next message is new. A
                // report merged into another ticket adds to that one.
                match self.tickets.get(ticket.as_str(), &Self::actor()).await {
                    Ok(t) if t.work.status.is_open() && t.merged_into.is_none() => Some(ticket),
                    Ok(t) => match t.merged_into {
                        Some(target) => {
                            match self.tickets.get(target.as_str(), &Self::actor()).await {
                                Ok(t) if t.work.status.is_open() => Some(target),
                                _ => None,
                            }
                        }
                        None => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        };
        let key = inbound.dedup_key();
        let origin = Origin {
            key: Some(&key),
            thread: Some((Channel::Wechat, &inbound.from)),
        };
        let actor = Self::actor();
        let step = plan(inbound, live.as_ref(), self.cfg.hotline.as_deref());
        let text = match step {
            Step::Open(new) => {
                let intake = self.tickets.intake_once(*new, &origin, &actor, now).await?;
                Some(self.opened_text(&intake.ticket))
            }
            Step::Add(number, add, what) => {
                let done = self
                    .tickets
                    .supplement(number.as_str(), *add, &origin, &actor, now)
                    .await?;
                Some(format!(
                    "已将{what}补充到工单 {}。\n还可以继续发送照片、语音或位置。",
                    done.ticket.number
                ))
            }
            Step::Status(number) => Some(self.status_text(&number, &inbound.from).await?),
            Step::MyTickets => Some(self.my_tickets_text(&inbound.from, now).await?),
            Step::Say(reply) => Some(self.fixed_text(reply)),
            Step::Nothing => None,
            Step::Forget => {
                store
                    .end_thread(Channel::Wechat, &inbound.from)
                    .await
                    .map_err(ticketing::Error::from)?;
                None
            }
        };
        Ok(text)
    }

    fn hotline_name(&self) -> String {
        let hotlines = self.tickets.hotlines();
        let h = match self.cfg.hotline.as_deref() {
            Some(n) => hotlines.iter().find(|h| h.number == n),
            None => hotlines.first(),
        };
        h.map(|h| format!("{}（{}）", h.name, h.number))
            .unwrap_or_else(|| "服务热线".into())
    }

    fn opened_text(&self, ticket: &Ticket) -> String {
        if let Some(target) = &ticket.merged_into {
            return format!(
                "您反映的问题已受理，工单号：{}。\n已有市民反映过同一问题，已并入工单 {target} 一并办理，办理进度会通知您。\n{} 分钟内继续发送的照片、语音或位置会补充到工单 {target}。",
                ticket.number, self.cfg.thread_minutes
            );
        }
        format!(
            "您反映的问题已受理，工单号：{}。\n{} 分钟内继续发送的照片、语音或位置会补充到这张工单。\n发送工单号可查询办理进度。",
            ticket.number, self.cfg.thread_minutes
        )
    }

    fn fixed_text(&self, reply: Reply) -> String {
        match reply {
            Reply::Welcome => self.cfg.welcome.clone().unwrap_or_else(|| {
                format!(
                    "欢迎关注{}！\n直接发送文字、照片、语音或位置即可反映问题，我们会生成工单并告诉您工单号。\n发送工单号可查询办理进度。",
                    self.hotline_name()
                )
            }),
            Reply::Help => "反映问题：直接发送文字说明，再发送现场照片和位置。\n查询进度：发送工单号，或发送“我的工单”。".into(),
            Reply::Unsupported => "暂不支持这类消息。请发送文字、照片、语音或位置。".into(),
            Reply::Empty => "请用文字说明您要反映的问题。".into(),
        }
    }

    async fn status_text(
        &self,
        number: &TicketNumber,
        openid: &str,
    ) -> Result<String, WechatError> {
        let not_found = format!(
            "未找到工单 {number}。请核对工单号；这里只能查询您本人通过本公众号反映的工单。"
        );
        let ticket = match self.tickets.get(number.as_str(), &Self::actor()).await {
            Ok(t) => t,
            Err(ticketing::Error::NotFound(_)) => return Ok(not_found),
            Err(e) => return Err(e.into()),
        };
        if !ticket
            .reporters
            .iter()
            .any(|r| r.wechat_openid.as_deref() == Some(openid))
        {
            return Ok(not_found);
        }
        let zone = self.tickets.sla().calendar().timezone().clone();
        let at = |t: Timestamp| {
            t.to_zoned(zone.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        };
        let mut text = format!(
            "工单 {}\n状态：{}\n受理时间：{}",
            ticket.number,
            status_for_citizens(ticket.work.status),
            at(ticket.created_at)
        );
        if let Some(dept) = ticket
            .work
            .department
            .as_deref()
            .and_then(|d| self.tickets.directory().get(d))
        {
            text.push_str(&format!("\n承办单位：{}", dept.name));
        }
        if let Some(target) = &ticket.merged_into {
            text.push_str(&format!("\n已与同一问题的工单 {target} 合并办理。"));
        }
        text.push_str(&format!("\n最近更新：{}", at(ticket.updated_at)));
        Ok(text)
    }

    async fn my_tickets_text(&self, openid: &str, now: Timestamp) -> Result<String, WechatError> {
        let page = self
            .tickets
            .list(
                TicketFilter {
                    reporter: Some(ReporterKey::Wechat(openid.to_owned())),
                    per_page: 5,
                    ..TicketFilter::default()
                },
                &Self::actor(),
                now,
            )
            .await?;
        if page.items.is_empty() {
            return Ok("您还没有通过本公众号反映过问题。直接发送文字、照片或位置即可反映。".into());
        }
        let mut text = String::from("您最近反映的问题：");
        for t in &page.items {
            let excerpt: String = t.excerpt.chars().take(16).collect();
            text.push_str(&format!(
                "\n{} {}：{excerpt}",
                t.number,
                status_for_citizens(t.status)
            ));
        }
        text.push_str("\n发送工单号可查看详情。");
        Ok(text)
    }
}

/// What a citizen is told about a status: the centre's internal steps read as plain words.
pub fn status_for_citizens(status: Status) -> &'static str {
    ticketing::citizens::status_for_citizens(status)
}

fn stripe_of(openid: &str) -> usize {
    // FNV-1a: stable and cheap; the lock only needs an even spread.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in openid.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % LOCK_STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: Body) -> Inbound {
        Inbound {
            to: "gh_1".into(),
            from: "oF1".into(),
            create_time: 1,
            body,
        }
    }

    #[test]
    fn text_opens_and_later_messages_add_to_the_thread() {
        let text = msg(Body::Text {
            msg_id: "1".into(),
            content: " 人民路井盖丢了 ".into(),
        });
        match plan(&text, None, Some("12319")) {
            Step::Open(new) => {
                assert_eq!(new.content, "人民路井盖丢了");
                assert_eq!(new.channel, Some(Channel::Wechat));
                assert_eq!(new.hotline.as_deref(), Some("12319"));
                assert_eq!(new.reporter.wechat_openid.as_deref(), Some("oF1"));
            }
            other => panic!("{other:?}"),
        }
        let n = TicketNumber::parse("12319-20261201-000001").unwrap();
        let photo = msg(Body::Image {
            msg_id: "2".into(),
            pic_url: Some("http://mmbiz/p.jpg".into()),
            media_id: "MEDIA".into(),
        });
        match plan(&photo, Some(&n), None) {
            Step::Add(number, add, what) => {
                assert_eq!(number, n);
                assert_eq!(what, "照片");
                assert_eq!(add.attachments[0].uri, "wechat-media:MEDIA");
                assert_eq!(add.attachments[0].kind, AttachmentKind::Photo);
            }
            other => panic!("{other:?}"),
        }
        let place = msg(Body::Location {
            msg_id: "3".into(),
            lat: 33.84,
            lon: 115.78,
            scale: None,
            label: Some("人民路88号".into()),
        });
        match plan(&place, Some(&n), None) {
            Step::Add(_, add, "位置") => {
                assert_eq!(add.location.lat, Some(33.84));
                assert_eq!(add.location.address.as_deref(), Some("人民路88号"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ticket_numbers_menus_and_events() {
        let q = msg(Body::Text {
            msg_id: "1".into(),
            content: "12319-20261201-000007".into(),
        });
        assert_eq!(
            plan(&q, None, None),
            Step::Status(TicketNumber::parse("12319-20261201-000007").unwrap())
        );
        assert_eq!(
            plan(&msg(Body::Event(Event::Subscribe)), None, None),
            Step::Say(Reply::Welcome)
        );
        assert_eq!(
            plan(&msg(Body::Event(Event::Unsubscribe)), None, None),
            Step::Forget
        );
        assert_eq!(
            plan(
                &msg(Body::Event(Event::Click {
                    key: "my_tickets".into()
                })),
                None,
                None
            ),
            Step::MyTickets
        );
        assert_eq!(
            plan(
                &msg(Body::Other {
                    msg_id: "5".into(),
                    msg_type: "video".into()
                }),
                None,
                None
            ),
            Step::Say(Reply::Unsupported)
        );
        let blank = msg(Body::Text {
            msg_id: "1".into(),
            content: "  ".into(),
        });
        assert_eq!(plan(&blank, None, None), Step::Say(Reply::Empty));
    }

    #[test]
    fn voice_uses_wechats_recognition_as_words() {
        let v = msg(Body::Voice {
            msg_id: "1".into(),
            media_id: "V".into(),
            format: Some("amr".into()),
            recognition: Some("路灯不亮".into()),
        });
        match plan(&v, None, None) {
            Step::Open(new) => {
                assert_eq!(new.content, "（语音）路灯不亮");
                assert_eq!(
                    new.attachments[0].content_type.as_deref(),
                    Some("audio/amr")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
