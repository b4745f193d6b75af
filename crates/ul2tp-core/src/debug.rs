//! Debug listings: the kernel's debugfs `l2tp/tunnels` file (docs/reference/kernel.md §9.1) and
//! `/proc/net/pppol2tp` (docs/reference/kernel.md §7.8). Pure formatting; what only the daemon knows
//! (socket addresses, PPP unit names) comes in through callbacks.
//!
//! Kernel quirks kept because they are harmless and tools may match them: the TX triple is
//! labelled "rx" and the refcount pair is "socket/tunnel" in the debugfs listing. Quirks fixed:
//! a tunnel without addresses still ends its first line with a newline; cookies of every
//! length print in full (the kernel prints 4 or 8 bytes); the pppol2tp tunnel line shows the
//! number of sessions (the kernel prints its refcount minus one there).

use core::fmt::Write;
use std::net::{SocketAddr, SocketAddrV4};

use ul2tp_api::Stats;
use ul2tp_wire::avp::PwType;

use crate::{Encap, L2SpecType, Registry, Session, Tunnel, Version};

/// Addresses of a tunnel's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelAddrs {
    /// Bound local address and port.
    pub local: SocketAddr,
    /// Connected peer address and port.
    pub peer: SocketAddr,
}

/// Daemon-side facts about an L2TPv2 PPP session for `/proc/net/pppol2tp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PppSessionInfo {
    /// Local IPv4 address and port of the tunnel socket.
    pub local: Option<SocketAddrV4>,
    /// PPPoX socket state (1 connected, 2 bound, ...).
    pub state: u32,
    /// Whether a session socket / channel is attached.
    pub attached: bool,
    /// PPP unit name (`pppN`) if one is attached.
    pub interface: Option<String>,
}

fn triple(s: &Stats) -> (String, String) {
    (
        format!("{}/{}/{}", s.tx_packets, s.tx_bytes, s.tx_errors),
        format!("{}/{}/{}", s.rx_packets, s.rx_bytes, s.rx_errors),
    )
}

const DEBUGFS_HEADER: &str = "TUNNEL ID, peer ID from IP to IP\n L2TPv2/L2TPv3, UDP/IP\n sessions session-count, refcnt refcnt/sk->refcnt\n debug tx-pkts/bytes/errs rx-pkts/bytes/errs\n  SESSION ID, peer ID, PWTYPE\n   refcnt cnt\n   offset OFFSET l2specific TYPE/LEN\n   [ cookie ]\n   [ peer cookie ]\n   config mtu/mru/rcvseq/sendseq/dataseq/lns debug reorderto\n   nr/ns tx-pkts/bytes/errs rx-pkts/bytes/errs\n";

fn flag(b: bool, c: &'static str) -> &'static str {
    if b {
        c
    } else {
        "-"
    }
}

fn lns(s: &Session) -> &'static str {
    if s.lns_mode() {
        "LNS"
    } else {
        "LAC"
    }
}

/// The debugfs `l2tp/tunnels` listing (docs/reference/kernel.md §9.1).
pub fn debug_tunnels(reg: &Registry, addrs: &dyn Fn(&Tunnel) -> Option<TunnelAddrs>) -> String {
    let mut o = String::from(DEBUGFS_HEADER);
    for t in reg.tunnels() {
        let sessions = reg.tunnel_sessions(t.tunnel_id());
        let _ = write!(o, "\nTUNNEL {} peer {}", t.tunnel_id(), t.peer_tunnel_id());
        let a = addrs(&t);
        if let Some(a) = a {
            let _ = write!(o, " from {} to {}", a.local.ip(), a.peer.ip());
        }
        o.push('\n');
        if t.encap() == Encap::Udp {
            if let Some(a) = a {
                let _ = writeln!(
                    o,
                    " source port {}, dest port {}",
                    a.local.port(),
                    a.peer.port()
                );
            }
        }
        let _ = writeln!(
            o,
            " L2TPv{}, {}",
            t.version().as_u8(),
            if t.encap() == Encap::Udp { "UDP" } else { "IP" }
        );
        // refcnt: the socket is held once by the tunnel; the tunnel by the registry and each
        // session.
        let _ = writeln!(
            o,
            " {} sessions, refcnt {}/{}",
            sessions.len(),
            1,
            1 + sessions.len()
        );
        let (tx, rx) = triple(&t.stats());
        let _ = writeln!(o, " 00000000 rx {tx} rx {rx}");
        for s in &sessions {
            let pw = match s.pw_type() {
                PwType::Ethernet => "ETH",
                PwType::Ppp => "PPP",
                _ => "",
            };
            let _ = writeln!(
                o,
                "  SESSION {}, peer {}, {pw}",
                s.session_id(),
                s.peer_session_id()
            );
            let (nr, ns) = s.nr_ns();
            if s.send_seq() || s.recv_seq() {
                let _ = writeln!(o, "   nr {nr}, ns {ns}");
            }
            let _ = writeln!(o, "   refcnt 1");
            let _ = writeln!(
                o,
                "   config 0/0/{}/{}/-/{} 00000000 {}",
                flag(s.recv_seq(), "R"),
                flag(s.send_seq(), "S"),
                lns(s),
                s.reorder_timeout_ms()
            );
            let spec = s.l2spec_type();
            let _ = writeln!(
                o,
                "   offset 0 l2specific {}/{}",
                u8::from(spec == L2SpecType::Default),
                spec.len()
            );
            if !s.cookie().is_empty() {
                let _ = writeln!(o, "   cookie {}", s.cookie().to_hex());
            }
            if !s.peer_cookie().is_empty() {
                let _ = writeln!(o, "   peer cookie {}", s.peer_cookie().to_hex());
            }
            let (tx, rx) = triple(&s.stats());
            let _ = writeln!(o, "   {nr}/{ns} tx {tx} rx {rx}");
            if let Some(n) = s.ifname() {
                let _ = writeln!(o, "   interface {n}");
            }
        }
    }
    o
}

const PPPOL2TP_HEADER: &str = "PPPoL2TP driver info, V2.0\nTUNNEL name, user-data-ok session-count\n debug tx-pkts/bytes/errs rx-pkts/bytes/errs\n  SESSION name, addr/port src-tid/sid dest-tid/sid state user-data-ok\n   mtu/mru/rcvseq/sendseq/lns debug reorderto\n   nr/ns tx-pkts/bytes/errs rx-pkts/bytes/errs\n";

/// The `/proc/net/pppol2tp` listing (docs/reference/kernel.md §7.8): L2TPv2 tunnels and their sessions
/// (session id 0 omitted).
pub fn proc_pppol2tp(reg: &Registry, info: &dyn Fn(&Session) -> PppSessionInfo) -> String {
    let mut o = String::from(PPPOL2TP_HEADER);
    for t in reg.tunnels() {
        if t.version() != Version::V2 {
            continue;
        }
        let sessions: Vec<_> = reg
            .tunnel_sessions(t.tunnel_id())
            .into_iter()
            .filter(|s| s.session_id() != 0)
            .collect();
        let (tx, rx) = triple(&t.stats());
        let _ = write!(
            o,
            "\nTUNNEL '{}', Y {}\n 00000000 {tx} {rx}\n",
            t.name(),
            sessions.len()
        );
        for s in &sessions {
            let i = info(s);
            let (ip, port) = i
                .local
                .map_or((0u32, 0u16), |a| (u32::from(*a.ip()), a.port()));
            let _ = writeln!(
                o,
                "  SESSION '{}' {ip:08X}/{port} {:04X}/{:04X} -> {:04X}/{:04X} {} {}",
                s.name(),
                s.tunnel_id(),
                s.session_id(),
                s.peer_tunnel_id(),
                s.peer_session_id(),
                i.state,
                if i.attached { "Y" } else { "N" }
            );
            let _ = writeln!(
                o,
                "   0/0/{}/{}/{} 00000000 {}",
                if s.recv_seq() { "R" } else { "-" },
                if s.send_seq() { "S" } else { "-" },
                lns(s),
                s.reorder_timeout_ms()
            );
            let (nr, ns) = s.nr_ns();
            let (tx, rx) = triple(&s.stats());
            let _ = writeln!(o, "   {nr}/{ns} {tx} {rx}");
            if let Some(n) = &i.interface {
                let _ = writeln!(o, "   interface {n}");
            }
        }
    }
    o
}
