//! Trace events shaped like the kernel's `l2tp` tracepoints (docs/reference/kernel.md §9.2).
//!
//! Events are built only when tracing is on for the object concerned (one relaxed atomic load
//! otherwise) and handed to the registry's sink. [`TraceEvent`]'s `Display` prints the
//! kernel's `TP_printk` format; [`TraceEvent::name`] is the tracepoint name. Deliberate
//! difference: `register_session` prints the real tunnel ids in `tid=`/`ptid=` (the kernel
//! prints the session ids there).

use core::fmt;
use std::sync::Arc;

use crate::{Encap, Version};

/// Receives trace events.
pub type TraceSink = Arc<dyn Fn(&TraceEvent) + Send + Sync>;

/// One trace event; `name` is `"tunl <tid>"` or `"sess <tid>/<sid>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// A tunnel was registered.
    RegisterTunnel {
        /// Object name.
        name: String,
        /// Socket fd (0 or less = unmanaged).
        fd: i32,
        /// Tunnel id.
        tid: u32,
        /// Peer tunnel id.
        ptid: u32,
        /// L2TPv2 or L2TPv3.
        version: Version,
        /// Encapsulation.
        encap: Encap,
    },
    /// A tunnel delete started.
    DeleteTunnel {
        /// Object name.
        name: String,
    },
    /// A tunnel was freed.
    FreeTunnel {
        /// Object name.
        name: String,
    },
    /// A session was registered.
    RegisterSession {
        /// Object name.
        name: String,
        /// Tunnel id.
        tid: u32,
        /// Peer tunnel id.
        ptid: u32,
        /// Session id.
        sid: u32,
        /// Peer session id.
        psid: u32,
        /// Pseudowire type.
        pwtype: u16,
    },
    /// A session delete started.
    DeleteSession {
        /// Object name.
        name: String,
    },
    /// A session was freed.
    FreeSession {
        /// Object name.
        name: String,
    },
    /// LAC turned send_seq on because the peer sequences.
    SessionSeqnumLnsEnable {
        /// Object name.
        name: String,
    },
    /// LAC turned send_seq off because the peer stopped sequencing.
    SessionSeqnumLnsDisable {
        /// Object name.
        name: String,
    },
    /// Nr advanced after a delivery.
    SessionSeqnumUpdate {
        /// Object name.
        name: String,
        /// Next Ns to send.
        ns: u32,
        /// Next Ns expected.
        nr: u32,
    },
    /// Nr resynchronised to a packet's Ns.
    SessionSeqnumReset {
        /// Object name.
        name: String,
        /// Next Ns to send.
        ns: u32,
        /// Next Ns expected.
        nr: u32,
    },
    /// A held packet expired.
    SessionPktExpired {
        /// Object name.
        name: String,
        /// The packet's Ns.
        pkt_ns: u32,
        /// Session Nr.
        my_nr: u32,
        /// Reorder queue length.
        reorder_q_len: usize,
    },
    /// A packet outside the receive window was dropped.
    SessionPktOutsideRxWindow {
        /// Object name.
        name: String,
        /// The packet's Ns.
        pkt_ns: u32,
        /// Session Nr.
        my_nr: u32,
        /// Reorder queue length.
        reorder_q_len: usize,
    },
    /// An out-of-sequence packet was dropped.
    SessionPktOos {
        /// Object name.
        name: String,
        /// The packet's Ns.
        pkt_ns: u32,
        /// Session Nr.
        my_nr: u32,
        /// Reorder queue length.
        reorder_q_len: usize,
    },
}

/// Kernel pseudowire name for the register_session event.
fn pw_name(pw: u16) -> &'static str {
    match pw {
        0x0004 => "ETH_VLAN",
        0x0005 => "ETH",
        0x0007 => "PPP",
        0x0008 => "PPP_AC",
        0x000b => "IP",
        _ => "",
    }
}

impl TraceEvent {
    /// The kernel tracepoint name, e.g. `"session_seqnum_update"`.
    pub fn name(&self) -> &'static str {
        match self {
            TraceEvent::RegisterTunnel { .. } => "register_tunnel",
            TraceEvent::DeleteTunnel { .. } => "delete_tunnel",
            TraceEvent::FreeTunnel { .. } => "free_tunnel",
            TraceEvent::RegisterSession { .. } => "register_session",
            TraceEvent::DeleteSession { .. } => "delete_session",
            TraceEvent::FreeSession { .. } => "free_session",
            TraceEvent::SessionSeqnumLnsEnable { .. } => "session_seqnum_lns_enable",
            TraceEvent::SessionSeqnumLnsDisable { .. } => "session_seqnum_lns_disable",
            TraceEvent::SessionSeqnumUpdate { .. } => "session_seqnum_update",
            TraceEvent::SessionSeqnumReset { .. } => "session_seqnum_reset",
            TraceEvent::SessionPktExpired { .. } => "session_pkt_expired",
            TraceEvent::SessionPktOutsideRxWindow { .. } => "session_pkt_outside_rx_window",
            TraceEvent::SessionPktOos { .. } => "session_pkt_oos",
        }
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::RegisterTunnel {
                name,
                fd,
                tid,
                ptid,
                version,
                encap,
            } => write!(
                f,
                "{name}: type={} encap={} version={version} tid={tid} ptid={ptid} fd={fd}",
                if *fd > 0 { "managed" } else { "unmanaged" },
                match encap {
                    Encap::Udp => "UDP",
                    Encap::Ip => "IP",
                }
            ),
            TraceEvent::RegisterSession {
                name,
                tid,
                ptid,
                sid,
                psid,
                pwtype,
            } => write!(
                f,
                "{name}: pseudowire={} sid={sid} psid={psid} tid={tid} ptid={ptid}",
                pw_name(*pwtype)
            ),
            TraceEvent::DeleteTunnel { name }
            | TraceEvent::FreeTunnel { name }
            | TraceEvent::DeleteSession { name }
            | TraceEvent::FreeSession { name }
            | TraceEvent::SessionSeqnumLnsEnable { name }
            | TraceEvent::SessionSeqnumLnsDisable { name } => f.write_str(name),
            TraceEvent::SessionSeqnumUpdate { name, ns, nr }
            | TraceEvent::SessionSeqnumReset { name, ns, nr } => {
                write!(f, "{name}: ns={ns} nr={nr}")
            }
            TraceEvent::SessionPktExpired {
                name,
                pkt_ns,
                my_nr,
                reorder_q_len,
            }
            | TraceEvent::SessionPktOutsideRxWindow {
                name,
                pkt_ns,
                my_nr,
                reorder_q_len,
            }
            | TraceEvent::SessionPktOos {
                name,
                pkt_ns,
                my_nr,
                reorder_q_len,
            } => write!(
                f,
                "{name}: pkt_ns={pkt_ns} my_nr={my_nr} reorder_q_len={reorder_q_len}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_formats() {
        let e = TraceEvent::RegisterTunnel {
            name: "tunl 1000".into(),
            fd: 0,
            tid: 1000,
            ptid: 2000,
            version: Version::V3,
            encap: Encap::Udp,
        };
        assert_eq!(
            e.to_string(),
            "tunl 1000: type=unmanaged encap=UDP version=L2TPv3 tid=1000 ptid=2000 fd=0"
        );
        assert_eq!(e.name(), "register_tunnel");
        let e = TraceEvent::RegisterTunnel {
            name: "tunl 1000".into(),
            fd: 7,
            tid: 1000,
            ptid: 2000,
            version: Version::V2,
            encap: Encap::Ip,
        };
        assert_eq!(
            e.to_string(),
            "tunl 1000: type=managed encap=IP version=L2TPv2 tid=1000 ptid=2000 fd=7"
        );
        let e = TraceEvent::RegisterSession {
            name: "sess 1/2".into(),
            tid: 1,
            ptid: 3,
            sid: 2,
            psid: 4,
            pwtype: 5,
        };
        assert_eq!(
            e.to_string(),
            "sess 1/2: pseudowire=ETH sid=2 psid=4 tid=1 ptid=3"
        );
        let e = TraceEvent::SessionSeqnumUpdate {
            name: "sess 1/2".into(),
            ns: 3,
            nr: 9,
        };
        assert_eq!(e.to_string(), "sess 1/2: ns=3 nr=9");
        let e = TraceEvent::SessionPktOos {
            name: "sess 1/2".into(),
            pkt_ns: 5,
            my_nr: 1,
            reorder_q_len: 0,
        };
        assert_eq!(e.to_string(), "sess 1/2: pkt_ns=5 my_nr=1 reorder_q_len=0");
        assert_eq!(e.name(), "session_pkt_oos");
        assert_eq!(
            TraceEvent::FreeSession {
                name: "sess 1/2".into()
            }
            .to_string(),
            "sess 1/2"
        );
    }
}
