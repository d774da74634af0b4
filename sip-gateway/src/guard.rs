//! The first look at every SIP datagram, before the stack sees it: a message that is malformed
//! or hostile is answered `400 Bad Request` when it carries enough to route a response (Via,
//! From, To, Call-ID, CSeq), and dropped silently otherwise. Nothing else is disturbed.
//!
//! Sans-IO: [`inspect`] takes the bytes and says what to do; the socket wrapper in
//! [`crate::transport`] does it. The stack below drops unparseable datagrams without a word,
//! which leaves a misbehaving peer retransmitting for 32 seconds; a 400 tells it at once.

/// What to do with one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Inspection {
    /// Well-formed enough for the stack: pass it on.
    Deliver,
    /// Malformed request: send these bytes back to the source, do not deliver.
    Reply(Vec<u8>),
    /// Not answerable (a broken response, an ACK, garbage without headers): drop it.
    Drop(&'static str),
}

/// Requests longer than this are refused (a SIP request over UDP fits in one datagram; 64 KiB
/// bodies are an attack, not a call).
pub const MAX_MESSAGE: usize = 65_000;

/// Decides whether a datagram goes to the stack, gets a 400, or is dropped.
pub fn inspect(datagram: &[u8]) -> Inspection {
    if datagram.len() > MAX_MESSAGE {
        return reply_or_drop(datagram, "message too large");
    }
    match problem(datagram) {
        None => Inspection::Deliver,
        Some(why) => reply_or_drop(datagram, why),
    }
}

/// For a datagram longer than the receiver can take whole: never delivered (cut to fit, it
/// would be another message), answered 400 like an oversized request when it can be.
pub fn too_large(datagram: &[u8]) -> Inspection {
    reply_or_drop(datagram, "message too large")
}

/// The first thing wrong with a message, or None when it may go to the stack.
fn problem(datagram: &[u8]) -> Option<&'static str> {
    let text = match std::str::from_utf8(datagram) {
        Ok(t) => t,
        Err(_) => return Some("message is not UTF-8"),
    };
    let (head, body) = split_head(text)?;
    let mut lines = head.split("\r\n").flat_map(|l| l.split('\n'));
    let start = lines.next().unwrap_or("");
    let is_request = !start.starts_with("SIP/");
    let method = if is_request {
        let mut parts = start.split(' ');
        let method = parts.next().unwrap_or("");
        let uri = parts.next().unwrap_or("");
        let version = parts.next().unwrap_or("");
        if parts.next().is_some() || version != "SIP/2.0" || uri.is_empty() {
            return Some("bad request line");
        }
        if !uri.contains(':') {
            return Some("bad Request-URI");
        }
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Some("bad method");
        }
        Some(method)
    } else {
        let code = start.split(' ').nth(1).unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Some("bad status line");
        }
        None
    };
    let headers = Headers::collect(head);
    for (name, value) in [
        ("Via", &headers.via),
        ("From", &headers.from),
        ("To", &headers.to),
        ("Call-ID", &headers.call_id),
        ("CSeq", &headers.cseq),
    ] {
        match value {
            None => return Some(missing(name)),
            Some(v) if v.trim().is_empty() => return Some(missing(name)),
            _ => {}
        }
    }
    let cseq = headers.cseq.unwrap_or("");
    let mut parts = cseq.split_whitespace();
    let number = parts.next().unwrap_or("");
    let cseq_method = parts.next().unwrap_or("");
    if number.parse::<u32>().is_err() || parts.next().is_some() {
        return Some("bad CSeq");
    }
    if let Some(method) = method
        && cseq_method != method
    {
        return Some("CSeq method does not match the request");
    }
    if headers
        .from
        .is_some_and(|v| !v.contains(':') || v.contains('\0'))
    {
        return Some("bad From");
    }
    if headers.to.is_some_and(|v| !v.contains(':')) {
        return Some("bad To");
    }
    if !headers
        .via
        .is_some_and(|v| v.trim_start().to_ascii_uppercase().starts_with("SIP/2.0/"))
    {
        return Some("bad Via");
    }
    if let Some(len) = headers.content_length {
        match len.trim().parse::<usize>() {
            Ok(n) if n <= body.len() => {}
            Ok(_) => return Some("Content-Length is larger than the body"),
            Err(_) => return Some("bad Content-Length"),
        }
    }
    if let Some(mf) = headers.max_forwards
        && mf.trim().parse::<u8>().is_err()
    {
        return Some("bad Max-Forwards");
    }
    // Finally the stack's own parser must accept it, or it would be dropped below us.
    if rsipstack::sip::SipMessage::try_from(datagram).is_err() {
        return Some("unparseable message");
    }
    None
}

fn missing(name: &str) -> &'static str {
    match name {
        "Via" => "missing Via",
        "From" => "missing From",
        "To" => "missing To",
        "Call-ID" => "missing Call-ID",
        _ => "missing CSeq",
    }
}

fn split_head(text: &str) -> Option<(&str, &str)> {
    if let Some(i) = text.find("\r\n\r\n") {
        Some((&text[..i], &text[i + 4..]))
    } else if let Some(i) = text.find("\n\n") {
        Some((&text[..i], &text[i + 2..]))
    } else {
        // A datagram without the blank line: headers only, empty body.
        Some((text.trim_end(), ""))
    }
}

/// The headers a response needs, as raw text (first occurrence; all Via lines kept).
#[derive(Default)]
struct Headers<'a> {
    via: Option<&'a str>,
    vias: Vec<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    call_id: Option<&'a str>,
    cseq: Option<&'a str>,
    content_length: Option<&'a str>,
    max_forwards: Option<&'a str>,
}

impl<'a> Headers<'a> {
    fn collect(head: &'a str) -> Headers<'a> {
        let mut h = Headers::default();
        for line in head.split('\n').skip(1) {
            let line = line.trim_end_matches('\r');
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let name = name.trim();
            let slot = if name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v") {
                h.vias.push(value);
                &mut h.via
            } else if name.eq_ignore_ascii_case("from") || name.eq_ignore_ascii_case("f") {
                &mut h.from
            } else if name.eq_ignore_ascii_case("to") || name.eq_ignore_ascii_case("t") {
                &mut h.to
            } else if name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i") {
                &mut h.call_id
            } else if name.eq_ignore_ascii_case("cseq") {
                &mut h.cseq
            } else if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")
            {
                &mut h.content_length
            } else if name.eq_ignore_ascii_case("max-forwards") {
                &mut h.max_forwards
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        h
    }
}

/// Builds the 400 when the request can be answered, else drops it.
fn reply_or_drop(datagram: &[u8], why: &'static str) -> Inspection {
    let text = String::from_utf8_lossy(&datagram[..datagram.len().min(MAX_MESSAGE)]);
    let Some((head, _)) = split_head(&text) else {
        return Inspection::Drop(why);
    };
    let start = head.lines().next().unwrap_or("");
    if start.starts_with("SIP/") {
        return Inspection::Drop(why);
    }
    let method = start.split(' ').next().unwrap_or("");
    if method == "ACK" {
        // RFC 3261: an ACK is never answered.
        return Inspection::Drop(why);
    }
    let h = Headers::collect(head);
    let (Some(from), Some(to), Some(call_id), Some(cseq)) = (h.from, h.to, h.call_id, h.cseq)
    else {
        return Inspection::Drop(why);
    };
    if h.vias.is_empty() || h.vias.iter().any(|v| v.contains(['\r', '\n'])) {
        return Inspection::Drop(why);
    }
    let mut out = String::with_capacity(512);
    out.push_str("SIP/2.0 400 Bad Request\r\n");
    for via in &h.vias {
        out.push_str("Via: ");
        out.push_str(via);
        out.push_str("\r\n");
    }
    out.push_str("From: ");
    out.push_str(from);
    out.push_str("\r\nTo: ");
    out.push_str(to);
    if !to.contains(";tag=") {
        out.push_str(";tag=hl400");
    }
    out.push_str("\r\nCall-ID: ");
    out.push_str(call_id);
    out.push_str("\r\nCSeq: ");
    out.push_str(cseq);
    out.push_str("\r\nWarning: 399 hotline \"");
    out.push_str(why);
    out.push_str("\"\r\nContent-Length: 0\r\n\r\n");
    Inspection::Reply(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "OPTIONS sip:12319@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
        From: <sip:probe@127.0.0.1>;tag=1\r\n\
        To: <sip:12319@127.0.0.1>\r\n\
        Call-ID: abc@127.0.0.1\r\n\
        CSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\n\
        Content-Length: 0\r\n\r\n";

    fn replaced(from: &str, to: &str) -> Vec<u8> {
        GOOD.replacen(from, to, 1).into_bytes()
    }

    fn reply_text(i: Inspection) -> String {
        match i {
            Inspection::Reply(b) => String::from_utf8(b).unwrap(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_is_delivered() {
        assert_eq!(inspect(GOOD.as_bytes()), Inspection::Deliver);
    }

    #[test]
    fn a_request_without_call_id_cannot_be_answered_and_is_dropped() {
        let msg = GOOD.replace("Call-ID: abc@127.0.0.1\r\n", "");
        // Without a Call-ID a response cannot be matched: dropped.
        assert_eq!(inspect(msg.as_bytes()), Inspection::Drop("missing Call-ID"));
    }

    #[test]
    fn a_bad_cseq_gets_400_with_the_headers_echoed() {
        let r = reply_text(inspect(&replaced("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")));
        assert!(r.starts_with("SIP/2.0 400 Bad Request\r\n"), "{r}");
        assert!(r.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"));
        assert!(r.contains("Call-ID: abc@127.0.0.1\r\n"));
        assert!(r.contains("To: <sip:12319@127.0.0.1>;tag=hl400\r\n"));
        assert!(r.contains("Warning: 399 hotline \"bad CSeq\""));
    }

    #[test]
    fn mismatched_cseq_method_is_refused() {
        let r = reply_text(inspect(&replaced("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")));
        assert!(r.contains("does not match"), "{r}");
    }

    #[test]
    fn content_length_beyond_the_body_is_refused() {
        let r = reply_text(inspect(&replaced(
            "Content-Length: 0",
            "Content-Length: 900",
        )));
        assert!(r.contains("Content-Length"), "{r}");
    }

    #[test]
    fn bad_request_line_and_version() {
        let r = reply_text(inspect(&replaced("SIP/2.0\r\n", "SIP/3.0\r\n")));
        assert!(r.contains("bad request line"), "{r}");
    }

    #[test]
    fn acks_and_responses_are_never_answered() {
        let ack = GOOD
            .replace("OPTIONS sip", "ACK sip")
            .replace("1 OPTIONS", "x ACK");
        assert!(matches!(inspect(ack.as_bytes()), Inspection::Drop(_)));
        let resp = "SIP/2.0 2000 OK\r\nVia: SIP/2.0/UDP x\r\n\r\n";
        assert!(matches!(inspect(resp.as_bytes()), Inspection::Drop(_)));
    }

    #[test]
    fn garbage_is_dropped() {
        for g in [
            &b""[..],
            b"\x00\x01\x02",
            b"hello",
            b"\r\n\r\n",
            &[0xff; 300],
        ] {
            assert!(matches!(inspect(g), Inspection::Drop(_)), "{g:?}");
        }
    }

    #[test]
    fn header_injection_in_via_is_not_echoed() {
        // Bare LF line endings: each line parsed on its own, nothing smuggled into the reply.
        let msg = GOOD
            .replace("\r\n", "\n")
            .replace("CSeq: 1 OPTIONS", "CSeq: x");
        let r = reply_text(inspect(msg.as_bytes()));
        assert_eq!(r.matches("Via:").count(), 1, "{r}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_mutations(pos in 0usize..400, byte in proptest::prelude::any::<u8>(), cut in 0usize..400) {
            let mut m = GOOD.as_bytes().to_vec();
            if pos < m.len() { m[pos] = byte; }
            m.truncate(cut.max(1));
            let _ = inspect(&m);
        }

        #[test]
        fn never_panics_on_noise(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = inspect(&bytes);
        }
    }
}
