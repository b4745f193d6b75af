//! Message formats of the descriptors the daemon hands to applications (docs/reference/kernel.md §7, §8).
//!
//! The kernel gives applications special sockets: PPPoL2TP session sockets (PPP frames plus
//! socket options and a statistics ioctl) and L2TP/IP sockets (control messages addressed by
//! connection id). ul2tpd gives them a `SOCK_SEQPACKET` Unix socket instead, one message per
//! datagram, whose first byte says what the message is:
//!
//! | tag | direction | body |
//! |---|---|---|
//! | `FRAME` (0x00) | both | session socket: one PPP frame (protocol field + information, no FF 03); tunnel socket: one L2TP message as the kernel would leave it on the tunnel socket |
//! | `SETOPT` (0x01) | app → daemon | option u32, value i32 (host order) |
//! | `GETOPT` (0x02) | app → daemon | option u32 |
//! | `STATS` (0x03) | app → daemon | session id u16 (tunnel management socket: 0 = tunnel) |
//! | `DGRAM` (0x04) | both | L2TP/IP and managed-tunnel sockets: address (family u8 = 4 or 6, 16 address bytes, conn id u32) then the message |
//! | `REPLY` (0x80) | daemon → app | errno i32 (0 = success) then the result: i32 for GETOPT, the 72-byte `pppol2tp_ioc_stats` for STATS, nothing for SETOPT |
//!
//! Socket options are the kernel's `PPPOL2TP_SO_*` with the same ids and semantics (§7.5).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Errno, Stats};

/// A PPP frame or an L2TP message.
pub const FRAME: u8 = 0x00;
/// Set a socket option.
pub const SETOPT: u8 = 0x01;
/// Get a socket option.
pub const GETOPT: u8 = 0x02;
/// Read statistics (PPPIOCGL2TPSTATS).
pub const STATS: u8 = 0x03;
/// An addressed datagram.
pub const DGRAM: u8 = 0x04;
/// Answer to SETOPT / GETOPT / STATS.
pub const REPLY: u8 = 0x80;

/// PPPOL2TP_SO_DEBUG: accepted, ignored, reads 0.
pub const SO_DEBUG: u32 = 1;
/// PPPOL2TP_SO_RECVSEQ.
pub const SO_RECVSEQ: u32 = 2;
/// PPPOL2TP_SO_SENDSEQ.
pub const SO_SENDSEQ: u32 = 3;
/// PPPOL2TP_SO_LNSMODE.
pub const SO_LNSMODE: u32 = 4;
/// PPPOL2TP_SO_REORDERTO (milliseconds).
pub const SO_REORDERTO: u32 = 5;

/// A message on an application descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockMsg {
    /// A frame or message.
    Frame(Vec<u8>),
    /// setsockopt(SOL_PPPOL2TP, option, value).
    SetOpt {
        /// Option id.
        option: u32,
        /// Value.
        value: i32,
    },
    /// getsockopt(SOL_PPPOL2TP, option).
    GetOpt {
        /// Option id.
        option: u32,
    },
    /// ioctl(PPPIOCGL2TPSTATS) with this session id.
    Stats {
        /// 0 on a tunnel management socket for the tunnel's statistics.
        session_id: u16,
    },
    /// An addressed datagram.
    Dgram {
        /// Peer address.
        addr: IpAddr,
        /// Connection id (L2TP/IP) or UDP port (managed UDP tunnels).
        conn_id: u32,
        /// The message.
        payload: Vec<u8>,
    },
    /// A reply.
    Reply {
        /// 0 or an errno number.
        errno: i32,
        /// The result bytes.
        data: Vec<u8>,
    },
}

impl SockMsg {
    /// Encode into one seqpacket message.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self {
            SockMsg::Frame(f) => {
                v.push(FRAME);
                v.extend_from_slice(f);
            }
            SockMsg::SetOpt { option, value } => {
                v.push(SETOPT);
                v.extend_from_slice(&option.to_ne_bytes());
                v.extend_from_slice(&value.to_ne_bytes());
            }
            SockMsg::GetOpt { option } => {
                v.push(GETOPT);
                v.extend_from_slice(&option.to_ne_bytes());
            }
            SockMsg::Stats { session_id } => {
                v.push(STATS);
                v.extend_from_slice(&session_id.to_ne_bytes());
            }
            SockMsg::Dgram {
                addr,
                conn_id,
                payload,
            } => {
                v.push(DGRAM);
                match addr {
                    IpAddr::V4(a) => {
                        v.push(4);
                        v.extend_from_slice(&a.octets());
                        v.extend_from_slice(&[0; 12]);
                    }
                    IpAddr::V6(a) => {
                        v.push(6);
                        v.extend_from_slice(&a.octets());
                    }
                }
                v.extend_from_slice(&conn_id.to_ne_bytes());
                v.extend_from_slice(payload);
            }
            SockMsg::Reply { errno, data } => {
                v.push(REPLY);
                v.extend_from_slice(&errno.to_ne_bytes());
                v.extend_from_slice(data);
            }
        }
        v
    }

    /// Decode one seqpacket message; `None` if it is malformed.
    pub fn decode(m: &[u8]) -> Option<SockMsg> {
        let (&tag, body) = m.split_first()?;
        let u32_at = |i: usize| {
            body.get(i..i + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        Some(match tag {
            FRAME => SockMsg::Frame(body.to_vec()),
            SETOPT if body.len() == 8 => SockMsg::SetOpt {
                option: u32_at(0)?,
                value: u32_at(4)? as i32,
            },
            GETOPT if body.len() == 4 => SockMsg::GetOpt { option: u32_at(0)? },
            STATS if body.len() == 2 => SockMsg::Stats {
                session_id: u16::from_ne_bytes([body[0], body[1]]),
            },
            DGRAM if body.len() >= 21 => {
                let addr = match body[0] {
                    4 => IpAddr::V4(Ipv4Addr::new(body[1], body[2], body[3], body[4])),
                    6 => {
                        let o: [u8; 16] = body[1..17].try_into().ok()?;
                        IpAddr::V6(Ipv6Addr::from(o))
                    }
                    _ => return None,
                };
                SockMsg::Dgram {
                    addr,
                    conn_id: u32_at(17)?,
                    payload: body[21..].to_vec(),
                }
            }
            REPLY if body.len() >= 4 => SockMsg::Reply {
                errno: u32_at(0)? as i32,
                data: body[4..].to_vec(),
            },
            _ => return None,
        })
    }

    /// A successful reply.
    pub fn ok(data: Vec<u8>) -> SockMsg {
        SockMsg::Reply { errno: 0, data }
    }

    /// A failed reply.
    pub fn fail(e: Errno) -> SockMsg {
        SockMsg::Reply {
            errno: e.number(),
            data: Vec::new(),
        }
    }
}

/// `struct pppol2tp_ioc_stats` (docs/reference/kernel.md §3.2): 72 bytes, host order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IocStats {
    /// Tunnel id (16 bits, as the kernel fills it).
    pub tunnel_id: u16,
    /// Session id (0 for tunnel statistics).
    pub session_id: u16,
    /// Bit 0: the tunnel socket has a per-socket IPsec policy.
    pub using_ipsec: bool,
    /// The eight counters the ioctl reports.
    pub stats: Stats,
}

impl IocStats {
    /// Size of the structure.
    pub const SIZE: usize = 72;

    /// Encode in the kernel's layout.
    pub fn to_bytes(&self) -> [u8; 72] {
        let mut b = [0u8; 72];
        b[0..2].copy_from_slice(&self.tunnel_id.to_ne_bytes());
        b[2..4].copy_from_slice(&self.session_id.to_ne_bytes());
        b[4..8].copy_from_slice(&u32::from(self.using_ipsec).to_ne_bytes());
        let s = &self.stats;
        for (i, v) in [
            s.tx_packets,
            s.tx_bytes,
            s.tx_errors,
            s.rx_packets,
            s.rx_bytes,
            s.rx_seq_discards,
            s.rx_oos_packets,
            s.rx_errors,
        ]
        .into_iter()
        .enumerate()
        {
            b[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }

    /// Decode the kernel's layout.
    pub fn from_bytes(b: &[u8]) -> Option<IocStats> {
        if b.len() != Self::SIZE {
            return None;
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_ne_bytes(a)
        };
        Some(IocStats {
            tunnel_id: u16::from_ne_bytes([b[0], b[1]]),
            session_id: u16::from_ne_bytes([b[2], b[3]]),
            using_ipsec: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]) & 1 == 1,
            stats: Stats {
                tx_packets: u64_at(8),
                tx_bytes: u64_at(16),
                tx_errors: u64_at(24),
                rx_packets: u64_at(32),
                rx_bytes: u64_at(40),
                rx_seq_discards: u64_at(48),
                rx_oos_packets: u64_at(56),
                rx_errors: u64_at(64),
                ..Stats::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_roundtrip() {
        let msgs = [
            SockMsg::Frame(vec![0xc0, 0x21, 1, 1, 0, 4]),
            SockMsg::SetOpt {
                option: SO_SENDSEQ,
                value: 1,
            },
            SockMsg::GetOpt {
                option: SO_REORDERTO,
            },
            SockMsg::Stats { session_id: 7 },
            SockMsg::Dgram {
                addr: "192.0.2.1".parse().unwrap(),
                conn_id: 0,
                payload: vec![0xc8, 3],
            },
            SockMsg::Dgram {
                addr: "fd00::1".parse().unwrap(),
                conn_id: 42,
                payload: vec![],
            },
            SockMsg::Reply {
                errno: 22,
                data: vec![],
            },
        ];
        for m in msgs {
            assert_eq!(SockMsg::decode(&m.encode()), Some(m));
        }
        assert_eq!(SockMsg::decode(&[]), None);
        assert_eq!(SockMsg::decode(&[SETOPT, 1, 2]), None);
        assert_eq!(SockMsg::decode(&[DGRAM, 5]), None);
        assert_eq!(SockMsg::decode(&[0x7f]), None);
    }

    #[test]
    fn ioc_stats_layout() {
        let s = IocStats {
            tunnel_id: 0x1234,
            session_id: 0x5678,
            using_ipsec: true,
            stats: Stats {
                tx_packets: 1,
                rx_errors: 8,
                ..Stats::default()
            },
        };
        let b = s.to_bytes();
        assert_eq!(&b[0..2], &0x1234u16.to_ne_bytes());
        assert_eq!(b[4], 1);
        assert_eq!(&b[8..16], &1u64.to_ne_bytes());
        assert_eq!(&b[64..72], &8u64.to_ne_bytes());
        assert_eq!(IocStats::from_bytes(&b), Some(s));
        assert_eq!(IocStats::from_bytes(&b[..71]), None);
    }
}
