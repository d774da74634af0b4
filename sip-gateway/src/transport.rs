//! The UDP socket the SIP stack reads through: every datagram passes [`crate::guard::inspect`]
//! first, so a malformed request gets its 400 here and never reaches (or upsets) the stack.
//!
//! Datagrams are read whole into a 64 KiB buffer of our own: the stack reads into a smaller one
//! (8 KiB in rsipstack 0.7), and the kernel would silently cut a longer datagram to fit, which can
//! turn it into a different, well-formed message (an INVITE whose first 8 KiB end with the blank
//! line becomes an INVITE without its SDP offer). A datagram longer than the stack's buffer is
//! refused with [`crate::guard::too_large`] instead.

use std::net::SocketAddr;

use crate::guard::{self, Inspection};

/// The largest UDP payload (65,535 less the IPv4 and UDP headers, rounded up).
const MAX_DATAGRAM: usize = 65_536;

/// A tokio UDP socket behind the guard.
pub struct GuardedUdp {
    socket: tokio::net::UdpSocket,
    /// Where each datagram lands whole. Only the stack's one receive loop reads, so the lock is
    /// never contended.
    whole: tokio::sync::Mutex<Box<[u8]>>,
}

impl GuardedUdp {
    /// Wraps a bound socket.
    pub fn new(socket: tokio::net::UdpSocket) -> GuardedUdp {
        GuardedUdp {
            socket,
            whole: tokio::sync::Mutex::new(vec![0; MAX_DATAGRAM].into_boxed_slice()),
        }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut whole = self.whole.lock().await;
        loop {
            let (n, from) = self.socket.recv_from(&mut whole).await?;
            let datagram = whole.get(..n).unwrap_or(&[]);
            let fits = n <= buf.len();
            // Keepalives (CRLF pings) go straight to the stack, which answers them.
            let inspection = if !fits {
                guard::too_large(datagram)
            } else if datagram.iter().all(u8::is_ascii_whitespace) {
                Inspection::Deliver
            } else {
                guard::inspect(datagram)
            };
            match inspection {
                Inspection::Deliver => {
                    buf[..n].copy_from_slice(datagram);
                    return Ok((n, from));
                }
                Inspection::Reply(bytes) => {
                    metrics::counter!("hotline_sip_malformed_total", "answer" => "400")
                        .increment(1);
                    tracing::info!(%from, "malformed SIP request answered 400");
                    let _ = self.socket.send_to(&bytes, from).await;
                }
                Inspection::Drop(why) => {
                    metrics::counter!("hotline_sip_malformed_total", "answer" => "dropped")
                        .increment(1);
                    tracing::debug!(%from, why, "malformed SIP datagram dropped");
                }
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use rsipstack::platform::net::UdpSocket as _;

    use super::*;

    const OPTIONS: &str = "OPTIONS sip:12319@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
        From: <sip:probe@127.0.0.1>;tag=1\r\n\
        To: <sip:12319@127.0.0.1>\r\n\
        Call-ID: big@127.0.0.1\r\n\
        CSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\n";

    #[tokio::test]
    async fn a_datagram_longer_than_the_stack_reads_is_refused_not_cut() {
        let guarded = GuardedUdp::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = guarded.local_addr().unwrap();
        // Its first 1024 bytes are a complete request; cut there it would be delivered.
        let mut head = OPTIONS.to_string();
        head.push_str(&format!(
            "X-Pad: {}\r\n\r\n",
            "a".repeat(1024 - head.len() - 11)
        ));
        assert_eq!(head.len(), 1024);
        let long = format!("{head}{}", "b".repeat(3000));
        peer.send_to(long.as_bytes(), to).await.unwrap();
        let small = OPTIONS.replace("big@", "small@") + "Content-Length: 0\r\n\r\n";
        peer.send_to(small.as_bytes(), to).await.unwrap();

        let mut buf = [0u8; 1024];
        let (n, _) = guarded.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            &buf[..n],
            small.as_bytes(),
            "only the request that fits is delivered"
        );
        let mut reply = [0u8; 2048];
        let (n, _) = peer.recv_from(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply[..n]);
        assert!(reply.starts_with("SIP/2.0 400 Bad Request\r\n"), "{reply}");
        assert!(
            reply.contains("Call-ID: big@127.0.0.1\r\n") && reply.contains("message too large"),
            "{reply}"
        );
    }
}
