//! RTP/RTCP port pairs from the configured range: an even port for RTP and the odd one above it
//! for RTCP (RFC 3550 §11). A pair goes back to the pool when its [`PortPair`] is dropped.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

/// The pool of free even ports.
#[derive(Debug, Clone)]
pub struct PortPool {
    free: Arc<Mutex<VecDeque<u16>>>,
}

/// Two bound sockets and the lease that keeps their port taken.
#[derive(Debug)]
pub struct PortPair {
    /// RTP socket (even port).
    pub rtp: UdpSocket,
    /// RTCP socket (RTP port + 1).
    pub rtcp: UdpSocket,
    /// Returns the port to the pool when dropped (after the sockets are closed).
    pub lease: PortLease,
}

impl PortPair {
    /// The RTP port.
    pub fn port(&self) -> u16 {
        self.lease.port
    }
}

/// A taken port pair; dropping it frees the pair for the next call.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    pool: Arc<Mutex<VecDeque<u16>>>,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.lock() {
            free.push_back(self.port);
        }
    }
}

impl PortPool {
    /// A pool over `range` (only even starting ports with room for their RTCP port are used).
    pub fn new(range: RangeInclusive<u16>) -> PortPool {
        let start = range.start() + range.start() % 2;
        let free = (start..*range.end()).step_by(2).collect();
        PortPool {
            free: Arc::new(Mutex::new(free)),
        }
    }

    /// How many pairs are free now.
    pub fn available(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Binds the next free pair on `ip`, skipping ports another program holds.
    pub fn allocate(&self, ip: IpAddr) -> std::io::Result<PortPair> {
        let mut tries = self.available();
        while tries > 0 {
            tries -= 1;
            let Some(port) = self.free.lock().ok().and_then(|mut f| f.pop_front()) else {
                break;
            };
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port));
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1));
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => {
                    rtp.set_nonblocking(true)?;
                    rtcp.set_nonblocking(true)?;
                    return Ok(PortPair {
                        rtp,
                        rtcp,
                        lease: PortLease {
                            port,
                            pool: self.free.clone(),
                        },
                    });
                }
                _ => {
                    // Taken by someone else: put it at the back and try the next one.
                    if let Ok(mut f) = self.free.lock() {
                        f.push_back(port);
                    }
                }
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free RTP port pair in sip.rtp_ports",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_odd_and_return_on_drop() {
        let pool = PortPool::new(41001..=41010);
        assert_eq!(pool.available(), 4); // 41002, 41004, 41006, 41008
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = pool.allocate(ip).unwrap();
        assert_eq!(a.port() % 2, 0);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), a.port() + 1);
        let b = pool.allocate(ip).unwrap();
        assert_ne!(a.port(), b.port());
        assert_eq!(pool.available(), 2);
        drop(a);
        assert_eq!(pool.available(), 3);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_panic() {
        let pool = PortPool::new(41101..=41104);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let _a = pool.allocate(ip).unwrap();
        assert!(pool.allocate(ip).is_err());
    }
}
