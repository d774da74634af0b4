//! `Inbound::parse` on any body WeChat (or anyone) may POST: it returns a message or an error,
//! never panics. For every message that parses, the passive text reply to it must parse back
//! with the addressee swapped and the content intact (`]]>` in the content included).

#![no_main]

use channels::wechat::xml::{Body, Fields, Inbound, text_reply};
use libfuzzer_sys::fuzz_target;

/// Contains `]]>`, which `text_reply` must split across CDATA sections.
const REPLY: &str = "已受理，工单号 12319-20261201-000001 ]]> 请留意回复";

fuzz_target!(|body: &[u8]| {
    let Ok(message) = Inbound::parse(body) else {
        return;
    };
    let _ = message.dedup_key();
    // Echo the follower's own words when there are some: the fuzzer controls them fully.
    let content = match &message.body {
        Body::Text { content, .. } => content.as_str(),
        _ => REPLY,
    };
    let reply = text_reply(&message, message.create_time, content);
    let back = Fields::parse(reply.as_bytes())
        .unwrap_or_else(|e| panic!("the reply does not parse ({e}): {reply}"));
    assert_eq!(
        back.get("ToUserName"),
        Some(message.from.as_str()),
        "{reply}"
    );
    assert_eq!(
        back.get("FromUserName"),
        Some(message.to.as_str()),
        "{reply}"
    );
    assert_eq!(
        back.get("CreateTime"),
        Some(message.create_time.to_string().as_str()),
        "{reply}"
    );
    assert_eq!(back.get("MsgType"), Some("text"), "{reply}");
    assert_eq!(back.get("Content"), Some(content), "{reply}");
});
