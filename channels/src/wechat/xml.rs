//! The XML WeChat posts to an official account's server and the passive replies it accepts.
//!
//! Messages are one flat `<xml>` element whose children are text or CDATA. Parsing is strict about
//! size and shape (no DTD, a bounded number of fields, no entity expansion beyond XML's five) and
//! lenient about order and unknown fields, as WeChat adds fields over time.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event as XmlEvent;

/// The most fields a message may have; real ones have fewer than 20.
const MAX_FIELDS: usize = 64;
/// The longest message accepted (WeChat text messages are at most 2,048 bytes).
pub const MAX_BYTES: usize = 64 * 1024;

/// Why a body is not a WeChat message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML, or not the flat `<xml>` shape.
    #[error("not a WeChat message: {0}")]
    Malformed(String),
    /// A field WeChat always sends is missing or empty.
    #[error("the message has no {0}")]
    Missing(&'static str),
    /// A field has a value of the wrong form.
    #[error("{0} has a wrong value")]
    BadValue(&'static str),
    /// Larger than any message WeChat sends.
    #[error("the message is larger than {MAX_BYTES} bytes")]
    TooLarge,
}

/// The children of the top `<xml>` element, by name (nested elements such as `SendPicsInfo` are
/// skipped).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    /// Parses a body into its fields.
    pub fn parse(body: &[u8]) -> Result<Fields, XmlError> {
        if body.len() > MAX_BYTES {
            return Err(XmlError::TooLarge);
        }
        let text =
            std::str::from_utf8(body).map_err(|_| XmlError::Malformed("not UTF-8".into()))?;
        let mut reader = Reader::from_str(text);
        let mut fields = HashMap::new();
        let mut depth = 0usize;
        let mut seen_root = false;
        let mut current: Option<String> = None;
        let mut value = String::new();
        let bad = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
        loop {
            match reader.read_event().map_err(|e| bad(&e))? {
                XmlEvent::Start(start) => {
                    depth += 1;
                    match depth {
                        1 => {
                            if seen_root || start.name().as_ref() != b"xml" {
                                return Err(XmlError::Malformed("the root must be <xml>".into()));
                            }
                            seen_root = true;
                        }
                        2 => {
                            let name = std::str::from_utf8(start.name().as_ref())
                                .map_err(|e| bad(&e))?
                                .to_owned();
                            current = Some(name);
                            value.clear();
                        }
                        // A nested element: its parent is not a plain field.
                        _ => current = None,
                    }
                }
                XmlEvent::Empty(start) => {
                    if depth == 0 {
                        return Err(XmlError::Malformed("the root must be <xml>".into()));
                    }
                    if depth == 1 {
                        let name = std::str::from_utf8(start.name().as_ref())
                            .map_err(|e| bad(&e))?
                            .to_owned();
                        fields.insert(name, String::new());
                    }
                }
                XmlEvent::End(_) => {
                    if depth == 2
                        && let Some(name) = current.take()
                    {
                        if fields.len() >= MAX_FIELDS {
                            return Err(XmlError::Malformed("too many fields".into()));
                        }
                        fields.insert(name, std::mem::take(&mut value));
                    }
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                XmlEvent::Text(t) => {
                    if depth == 2 && current.is_some() {
                        value.push_str(&t.decode().map_err(|e| bad(&e))?);
                    } else if depth == 0 && !<[u8]>::iter(&t).all(u8::is_ascii_whitespace) {
                        return Err(XmlError::Malformed("text outside <xml>".into()));
                    }
                }
                XmlEvent::CData(c) => {
                    if depth == 2 && current.is_some() {
                        value.push_str(std::str::from_utf8(&c).map_err(|e| bad(&e))?);
                    }
                }
                XmlEvent::GeneralRef(r) => {
                    if depth == 2 && current.is_some() {
                        if let Some(ch) = r.resolve_char_ref().map_err(|e| bad(&e))? {
                            value.push(ch);
                        } else {
                            let name = std::str::from_utf8(&r).map_err(|e| bad(&e))?;
                            let resolved = quick_xml::escape::resolve_predefined_entity(name)
                                .ok_or_else(|| {
                                    XmlError::Malformed(format!("unknown entity &{name};"))
                                })?;
                            value.push_str(resolved);
                        }
                    }
                }
                XmlEvent::DocType(_) => {
                    return Err(XmlError::Malformed("a DTD is not allowed".into()));
                }
                XmlEvent::Eof => {
                    return Err(XmlError::Malformed("the message ends early".into()));
                }
                XmlEvent::Decl(_) | XmlEvent::Comment(_) | XmlEvent::PI(_) => {}
            }
        }
        if !seen_root {
            return Err(XmlError::Malformed("no <xml> element".into()));
        }
        Ok(Fields(fields))
    }

    /// A field's text, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn required(&self, name: &'static str) -> Result<&str, XmlError> {
        match self.get(name).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(XmlError::Missing(name)),
        }
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// A message or event from a follower (粉丝) of the official account.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The official account's original ID (`gh_…`).
    pub to: String,
    /// The follower's openid.
    pub from: String,
    /// When WeChat received it, Unix seconds.
    pub create_time: i64,
    /// What it says.
    pub body: Body,
}

/// What a follower sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Words typed.
    Text { msg_id: String, content: String },
    /// A photo: `pic_url` is WeChat's copy, `media_id` fetches it through the API.
    Image {
        msg_id: String,
        pic_url: Option<String>,
        media_id: String,
    },
    /// A voice note, with WeChat's recognition of it when the account has that enabled.
    Voice {
        msg_id: String,
        media_id: String,
        format: Option<String>,
        recognition: Option<String>,
    },
    /// A location chosen on the map.
    Location {
        msg_id: String,
        lat: f64,
        lon: f64,
        scale: Option<u32>,
        label: Option<String>,
    },
    /// A video, short video, link or a type this server does not handle.
    Other { msg_id: String, msg_type: String },
    /// Something the follower did rather than said.
    Event(Event),
}

/// An event (`MsgType` `event`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Followed the account (关注).
    Subscribe,
    /// Unfollowed.
    Unsubscribe,
    /// Pressed a menu button of type `click`.
    Click { key: String },
    /// Any other event (VIEW, LOCATION reports, SCAN...).
    Other { name: String },
}

impl Inbound {
    /// Reads a plain-mode message, or the decrypted inner message of safe mode.
    pub fn parse(body: &[u8]) -> Result<Inbound, XmlError> {
        Inbound::from_fields(&Fields::parse(body)?)
    }

    /// Reads a message from parsed fields.
    pub fn from_fields(f: &Fields) -> Result<Inbound, XmlError> {
        let to = f.required("ToUserName")?.to_owned();
        let from = f.required("FromUserName")?.to_owned();
        if from.len() > 128 || to.len() > 128 {
            return Err(XmlError::BadValue("FromUserName"));
        }
        let create_time = f
            .required("CreateTime")?
            .parse::<i64>()
            .map_err(|_| XmlError::BadValue("CreateTime"))?;
        let msg_type = f.required("MsgType")?;
        let msg_id = || -> Result<String, XmlError> {
            let id = f.required("MsgId")?;
            if id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(XmlError::BadValue("MsgId"));
            }
            Ok(id.to_owned())
        };
        let body = match msg_type {
            "text" => Body::Text {
                msg_id: msg_id()?,
                content: f.get("Content").unwrap_or_default().to_owned(),
            },
            "image" => Body::Image {
                msg_id: msg_id()?,
                pic_url: f.optional("PicUrl"),
                media_id: f.required("MediaId")?.to_owned(),
            },
            "voice" => Body::Voice {
                msg_id: msg_id()?,
                media_id: f.required("MediaId")?.to_owned(),
                format: f.optional("Format"),
                recognition: f.optional("Recognition"),
            },
            "location" => {
                let coord = |name: &'static str, limit: f64| -> Result<f64, XmlError> {
                    f.required(name)?
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && v.abs() <= limit)
                        .ok_or(XmlError::BadValue(name))
                };
                Body::Location {
                    msg_id: msg_id()?,
                    lat: coord("Location_X", 90.0)?,
                    lon: coord("Location_Y", 180.0)?,
                    scale: f.get("Scale").and_then(|s| s.trim().parse().ok()),
                    label: f.optional("Label"),
                }
            }
            "event" => Body::Event(match f.required("Event")? {
                "subscribe" => Event::Subscribe,
                "unsubscribe" => Event::Unsubscribe,
                e if e.eq_ignore_ascii_case("click") => Event::Click {
                    key: f.optional("EventKey").unwrap_or_default(),
                },
                other => Event::Other {
                    name: other.chars().take(32).collect(),
                },
            }),
            other => Body::Other {
                msg_id: f.optional("MsgId").unwrap_or_default(),
                msg_type: other.chars().take(32).collect(),
            },
        };
        Ok(Inbound {
            to,
            from,
            create_time,
            body,
        })
    }

    /// The key WeChat's retries of this message share: `MsgId` for messages, sender and
    /// `CreateTime` for events (which have no MsgId).
    pub fn dedup_key(&self) -> String {
        let msg_id = match &self.body {
            Body::Text { msg_id, .. }
            | Body::Image { msg_id, .. }
            | Body::Voice { msg_id, .. }
            | Body::Location { msg_id, .. }
            | Body::Other { msg_id, .. } => Some(msg_id.as_str()).filter(|m| !m.is_empty()),
            Body::Event(_) => None,
        };
        match msg_id {
            Some(id) => format!("wechat:msg:{id}"),
            None => format!("wechat:event:{}:{}", self.from, self.create_time),
        }
    }
}

/// Writes text as CDATA, splitting any `]]>` so the reply stays well-formed.
fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// A passive text reply (被动回复) to `inbound`, from the account to the follower.
pub fn text_reply(inbound: &Inbound, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
        cdata(&inbound.from),
        cdata(&inbound.to),
        cdata(content)
    )
}

/// The safe-mode envelope around an encrypted reply.
pub fn encrypted_reply(encrypt: &str, msg_signature: &str, timestamp: &str, nonce: &str) -> String {
    format!(
        "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature><TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
        cdata(encrypt),
        cdata(msg_signature),
        timestamp,
        cdata(nonce)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(content: &str) -> String {
        format!(
            "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>6054768590064713728</MsgId></xml>"
        )
    }

    #[test]
    fn reads_a_text_message() {
        let m = Inbound::parse(text("人民路井盖丢了").as_bytes()).unwrap();
        assert_eq!(m.from, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
        assert_eq!(m.to, "gh_10f6c3c3ac5a");
        assert_eq!(m.create_time, 1409735668);
        assert_eq!(
            m.body,
            Body::Text {
                msg_id: "6054768590064713728".into(),
                content: "人民路井盖丢了".into()
            }
        );
        assert_eq!(m.dedup_key(), "wechat:msg:6054768590064713728");
    }

    #[test]
    fn reads_image_voice_location_and_events() {
        let wrap = |inner: &str| {
            format!(
                "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>100</CreateTime>{inner}</xml>"
            )
        };
        let img = Inbound::parse(wrap("<MsgType>image</MsgType><PicUrl>http://x/p.jpg</PicUrl><MediaId>m1</MediaId><MsgId>1</MsgId>").as_bytes()).unwrap();
        assert!(matches!(img.body, Body::Image { ref media_id, .. } if media_id == "m1"));
        let voice = Inbound::parse(wrap("<MsgType>voice</MsgType><MediaId>m2</MediaId><Format>amr</Format><Recognition><![CDATA[路灯不亮]]></Recognition><MsgId>2</MsgId>").as_bytes()).unwrap();
        assert!(
            matches!(voice.body, Body::Voice { recognition: Some(ref r), .. } if r == "路灯不亮")
        );
        let loc = Inbound::parse(wrap("<MsgType>location</MsgType><Location_X>33.844</Location_X><Location_Y>115.779</Location_Y><Scale>15</Scale><Label><![CDATA[亳州市谯城区人民路]]></Label><MsgId>3</MsgId>").as_bytes()).unwrap();
        assert_eq!(
            loc.body,
            Body::Location {
                msg_id: "3".into(),
                lat: 33.844,
                lon: 115.779,
                scale: Some(15),
                label: Some("亳州市谯城区人民路".into())
            }
        );
        let sub = Inbound::parse(
            wrap("<MsgType>event</MsgType><Event>subscribe</Event><EventKey></EventKey>")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(sub.body, Body::Event(Event::Subscribe));
        assert_eq!(sub.dedup_key(), "wechat:event:o1:100");
        let click = Inbound::parse(
            wrap("<MsgType>event</MsgType><Event>CLICK</Event><EventKey>my_tickets</EventKey>")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            click.body,
            Body::Event(Event::Click {
                key: "my_tickets".into()
            })
        );
        // Nested containers are skipped, not mistaken for fields.
        let pics = Inbound::parse(wrap("<MsgType>event</MsgType><Event>pic_weixin</Event><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>x</PicMd5Sum></item></PicList></SendPicsInfo>").as_bytes()).unwrap();
        assert!(
            matches!(pics.body, Body::Event(Event::Other { ref name }) if name == "pic_weixin")
        );
    }

    #[test]
    fn refuses_what_is_not_a_message() {
        for bad in [
            "",
            "hello",
            "<html><body/></html>",
            "<xml><ToUserName>a</ToUserName>",
            "<xml><ToUserName>a</ToUserName></xml>",
            "<!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><Content>&e;</Content></xml>",
            "<xml></xml><xml></xml>",
        ] {
            assert!(Inbound::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let bad_id = text("x").replace("6054768590064713728", "12ab");
        assert_eq!(
            Inbound::parse(bad_id.as_bytes()),
            Err(XmlError::BadValue("MsgId"))
        );
        assert_eq!(
            Inbound::parse(&vec![b' '; MAX_BYTES + 1]),
            Err(XmlError::TooLarge)
        );
    }

    #[test]
    fn entities_and_cdata_in_replies_round_trip() {
        let m = Inbound::parse(text("a]]>b &amp; c").as_bytes());
        // `]]>` cannot appear inside CDATA; WeChat never sends it, the parser refuses or splits it.
        let _ = m;
        let plain = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>a &lt;b&gt; &amp; c</Content><MsgId>9</MsgId></xml>";
        let m = Inbound::parse(plain.as_bytes()).unwrap();
        assert!(matches!(m.body, Body::Text { ref content, .. } if content == "a <b> & c"));
        let reply = text_reply(&m, 5, "工单号 12319-20261201-000001 ]]> 完");
        let back = Fields::parse(reply.as_bytes()).unwrap();
        assert_eq!(back.get("ToUserName"), Some("o"));
        assert_eq!(back.get("FromUserName"), Some("gh"));
        assert_eq!(
            back.get("Content"),
            Some("工单号 12319-20261201-000001 ]]> 完")
        );
    }
}
