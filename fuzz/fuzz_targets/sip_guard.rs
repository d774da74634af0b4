//! `guard::inspect` on any datagram: deliver, answer 400 or drop, never a panic. A 400 it
//! writes is a complete response, from its status line to `Content-Length: 0` and the blank
//! line, and, being a response, is never answered itself (RFC 3261 §8.2.6); oversized
//! datagrams are never delivered.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_gateway::guard::{Inspection, inspect, too_large};

fn check_reply(datagram: &[u8], inspection: &Inspection) {
    let Inspection::Reply(reply) = inspection else {
        return;
    };
    let text = std::str::from_utf8(reply).unwrap_or_else(|_| panic!("a 400 that is not UTF-8"));
    assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"), "{text:?}");
    assert!(text.ends_with("\r\nContent-Length: 0\r\n\r\n"), "{text:?}");
    assert!(
        !matches!(inspect(reply), Inspection::Reply(_)),
        "a 400 would be answered with a 400: {text:?} for {:?}",
        String::from_utf8_lossy(datagram)
    );
}

fuzz_target!(|datagram: &[u8]| {
    let inspection = inspect(datagram);
    check_reply(datagram, &inspection);
    let oversized = too_large(datagram);
    assert_ne!(oversized, Inspection::Deliver);
    check_reply(datagram, &oversized);
});
