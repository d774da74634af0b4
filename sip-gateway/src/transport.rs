//! The UDP socket the SIP stack reads through: every datagram passes [`crate::guard::inspect`]
//! first, so a malformed request gets its 400 here and never reaches (or upsets) the stack.

use std::net::SocketAddr;

use crate::guard::{self, Inspection};

/// A tokio UDP socket behind the guard.
pub struct GuardedUdp {
    socket: tokio::net::UdpSocket,
}

impl GuardedUdp {
    /// Wraps a bound socket.
    pub fn new(socket: tokio::net::UdpSocket) -> GuardedUdp {
        GuardedUdp { socket }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            let datagram = buf.get(..n).unwrap_or(&[]);
            // Keepalives (CRLF pings) go straight to the stack, which answers them.
            if datagram.iter().all(u8::is_ascii_whitespace) {
                return Ok((n, from));
            }
            match guard::inspect(datagram) {
                Inspection::Deliver => return Ok((n, from)),
                Inspection::Reply(bytes) => {
                    metrics::counter!("hotline_sip_malformed_total", "answer" => "400").increment(1);
                    tracing::info!(%from, "malformed SIP request answered 400");
                    let _ = self.socket.send_to(&bytes, from).await;
                }
                Inspection::Drop(why) => {
                    metrics::counter!("hotline_sip_malformed_total", "answer" => "dropped").increment(1);
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
