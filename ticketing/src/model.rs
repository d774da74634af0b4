//! The ticket (工单) and the values it is made of.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::workflow::WorkState;

/// Where a report came in: every channel ends in the same kind of ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 电话: a call to 12319/12345, taken by an agent or left as voicemail.
    Phone,
    /// 微信公众号.
    Wechat,
    /// The city app (e.g. 我家亳州).
    App,
    /// The public web form.
    Web,
    /// 监督员上报: a field inspector's report.
    Inspector,
    /// 视频监控: spotted on a camera.
    Video,
}

impl Channel {
    /// Every channel, in the order the UI lists them.
    pub const ALL: [Channel; 6] = [
        Channel::Phone,
        Channel::Wechat,
        Channel::App,
        Channel::Web,
        Channel::Inspector,
        Channel::Video,
    ];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Wechat => "wechat",
            Channel::App => "app",
            Channel::Web => "web",
            Channel::Inspector => "inspector",
            Channel::Video => "video",
        }
    }
}

impl FromStr for Channel {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode::new("channel", s))
    }
}

/// 紧急 or 一般: urgent tickets run on shorter time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// 一般.
    #[default]
    Normal,
    /// 紧急.
    Urgent,
}

impl Priority {
    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "normal" => Ok(Priority::Normal),
            "urgent" => Ok(Priority::Urgent),
            _ => Err(UnknownCode::new("priority", s)),
        }
    }
}

/// A stored code that names no known variant (a corrupt row or a typo in a request).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} `{value}` is not known")]
pub struct UnknownCode {
    /// What kind of code it was meant to be ("status", "channel"...).
    pub kind: &'static str,
    /// The text that was given.
    pub value: String,
}

impl UnknownCode {
    pub(crate) fn new(kind: &'static str, value: &str) -> Self {
        UnknownCode {
            kind,
            value: value.chars().take(64).collect(),
        }
    }
}

/// A phone number. Its `Display` and `Debug` are masked (`138****5678`) so a number never lands
/// in a log or a list by accident; the full number is read with [`PhoneNumber::full`] only where a
/// role needs it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl TryFrom<String> for PhoneNumber {
    type Error = InvalidPhone;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&raw)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

impl PhoneNumber {
    /// Accepts digits with an optional leading `+` and the separators people type (spaces, dashes).
    pub fn parse(raw: &str) -> Result<Self, InvalidPhone> {
        let mut digits = String::with_capacity(raw.len());
        for (i, ch) in raw.trim().chars().enumerate() {
            match ch {
                '0'..='9' => digits.push(ch),
                '+' if i == 0 => digits.push(ch),
                ' ' | '-' | '(' | ')' => {}
                _ => return Err(InvalidPhone(raw.chars().take(32).collect())),
            }
        }
        let count = digits.chars().filter(char::is_ascii_digit).count();
        if !(3..=20).contains(&count) {
            return Err(InvalidPhone(raw.chars().take(32).collect()));
        }
        Ok(PhoneNumber(digits))
    }

    /// The whole number, for roles that call citizens back.
    pub fn full(&self) -> &str {
        &self.0
    }

    /// The number with its middle hidden: first 3 and last 4 digits kept for 11-digit mobiles,
    /// proportionally less for short numbers.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let n = chars.len();
        let (head, tail) = match n {
            0..=4 => (0, 1.min(n)),
            5..=7 => (1, 2),
            _ => (3, 4),
        };
        let mut out: String = chars[..head].iter().collect();
        out.extend(std::iter::repeat_n('*', n - head - tail));
        out.extend(&chars[n - tail..]);
        out
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

/// A phone number that is not one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{0}` is not a phone number (digits, an optional leading +, spaces or dashes)")]
pub struct InvalidPhone(pub String);

/// Who reported the problem. A merged ticket has several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reporter {
    /// The name the citizen gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone number; masked for roles that do not call back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "13812345678")]
    pub phone: Option<PhoneNumber>,
    /// WeChat openid when the report came through the official account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_openid: Option<String>,
    /// The city app's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_user: Option<String>,
}

impl Reporter {
    /// A copy with the phone number masked, for lists and for roles that must not see it.
    pub fn masked(&self) -> Reporter {
        Reporter {
            phone: self.phone.as_ref().map(|p| PhoneNumber(p.masked())),
            ..self.clone()
        }
    }
}

/// Where the problem is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Location {
    /// Street address as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// WGS-84 latitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// WGS-84 longitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// 单元网格 code (15 digits: county 6 + street 3 + community 3 + grid 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_code: Option<String>,
}

/// What an attachment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A photo of the problem or of the finished work.
    Photo,
    /// A call recording or voicemail.
    Recording,
    /// Any other document.
    Document,
}

impl AttachmentKind {
    /// The stable code stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Photo => "photo",
            AttachmentKind::Recording => "recording",
            AttachmentKind::Document => "document",
        }
    }
}

impl FromStr for AttachmentKind {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "photo" => Ok(AttachmentKind::Photo),
            "recording" => Ok(AttachmentKind::Recording),
            "document" => Ok(AttachmentKind::Document),
            _ => Err(UnknownCode::new("attachment kind", s)),
        }
    }
}

/// A file that belongs to a ticket, referenced by where the service stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    /// Photo, recording or document.
    pub kind: AttachmentKind,
    /// Path under the data directory, or a URL.
    pub uri: String,
    /// MIME type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// What the attachment shows, if said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A ticket's public number: `<hotline>-<YYYYMMDD>-<sequence of the day, 6 digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "12319-20261123-000042")]
pub struct TicketNumber(String);

impl TicketNumber {
    /// Builds the number for the `sequence`-th ticket of `day` on `hotline`.
    pub fn new(hotline: &str, day: jiff::civil::Date, sequence: i64) -> Self {
        TicketNumber(format!(
            "{hotline}-{:04}{:02}{:02}-{sequence:06}",
            day.year(),
            day.month(),
            day.day()
        ))
    }

    /// Checks the shape of a number given by a user (it may still name no ticket).
    pub fn parse(raw: &str) -> Result<Self, UnknownCode> {
        let raw = raw.trim();
        let mut parts = raw.split('-');
        let ok = matches!(
            (parts.next(), parts.next(), parts.next(), parts.next()),
            (Some(h), Some(d), Some(s), None)
                if !h.is_empty() && h.len() <= 16 && h.bytes().all(|b| b.is_ascii_alphanumeric())
                && d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())
                && (6..=9).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        );
        if ok {
            Ok(TicketNumber(raw.to_owned()))
        } else {
            Err(UnknownCode::new("ticket number", raw))
        }
    }

    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an intake needs to open a ticket (受理): the same for every channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewTicket {
    /// The hotline that owns the ticket (`12319`); the first configured one when absent.
    #[serde(default)]
    pub hotline: Option<String>,
    /// Where it came in.
    pub channel: Option<Channel>,
    /// Who reported it.
    #[serde(default)]
    pub reporter: Reporter,
    /// What the citizen said, in their words.
    pub content: String,
    /// Category ID such as `C0101`; may be set later, but is needed to file.
    #[serde(default)]
    pub category: Option<String>,
    /// Where.
    #[serde(default)]
    pub location: Location,
    /// 紧急 or 一般.
    #[serde(default)]
    pub priority: Priority,
    /// Photos, recordings.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// A ticket as stored: what was reported plus where it stands in the workflow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    /// Database id; internal.
    #[serde(skip)]
    pub id: i64,
    /// The public number.
    pub number: TicketNumber,
    /// Owning hotline.
    pub hotline: String,
    /// Where it came in.
    pub channel: Channel,
    /// Everyone who reported it (more than one after a merge).
    pub reporters: Vec<Reporter>,
    /// What was reported.
    pub content: String,
    /// Where.
    pub location: Location,
    /// Photos and recordings.
    pub attachments: Vec<Attachment>,
    /// Status, department, clocks and counters, owned by the workflow.
    #[serde(flatten)]
    pub work: WorkState,
    /// The ticket this one was merged into, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<TicketNumber>,
    /// When it was received.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl Ticket {
    /// A copy fit for a role that must not see citizens' phone numbers.
    pub fn masked(&self) -> Ticket {
        Ticket {
            reporters: self.reporters.iter().map(Reporter::masked).collect(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_masked_in_display_and_debug() {
        let p = PhoneNumber::parse("138-1234-5678").unwrap();
        assert_eq!(p.full(), "13812345678");
        assert_eq!(p.to_string(), "138****5678");
        assert_eq!(format!("{p:?}"), "PhoneNumber(138****5678)");
        assert_eq!(PhoneNumber::parse("12319").unwrap().masked(), "1**19");
        assert!(PhoneNumber::parse("call me").is_err());
        assert!(PhoneNumber::parse("1+2").is_err());
    }

    #[test]
    fn ticket_numbers_have_a_fixed_shape() {
        let day = jiff::civil::date(2026, 11, 23);
        let n = TicketNumber::new("12319", day, 42);
        assert_eq!(n.as_str(), "12319-20261123-000042");
        assert_eq!(TicketNumber::parse(" 12319-20261123-000042 ").unwrap(), n);
        for bad in [
            "",
            "12319",
            "12319-2026-000042",
            "12319-20261123-42",
            "a b-20261123-000001",
        ] {
            assert!(TicketNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>().unwrap(), c);
        }
        assert!("fax".parse::<Channel>().is_err());
        assert_eq!("urgent".parse::<Priority>().unwrap(), Priority::Urgent);
    }
}
