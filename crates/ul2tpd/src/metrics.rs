//! Prometheus / OpenMetrics endpoint: the ten counters of every tunnel and session
//! (docs/reference/kernel.md §3.1) and object counts, read from the registry at each scrape,
//! and the control plane's and PPP endpoints' counters ([`Ops`]), published by their tasks.
//!
//! Served on the address of the `[metrics]` section as `GET /metrics` over plain HTTP/1.1, in
//! the Prometheus text format 0.0.4 or, when the scraper's Accept header asks for it,
//! OpenMetrics 1.0; nothing is counted twice and nothing is logged per packet. The metrics
//! are listed in docs/operations.md.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as PromRegistry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use ul2tp_api::Stats;
use ul2tp_core::Registry;

/// A counter: its name, help text and how to read it.
type CounterDef = (&'static str, &'static str, fn(&Stats) -> u64);

/// The counters of `ul2tp_api::Stats`, with their help texts.
const COUNTERS: [CounterDef; 10] = [
    ("tx_packets", "L2TP packets transmitted", |s| s.tx_packets),
    (
        "tx_bytes",
        "L2TP bytes transmitted (header included)",
        |s| s.tx_bytes,
    ),
    ("tx_errors", "transmit failures", |s| s.tx_errors),
    ("rx_packets", "packets delivered to the pseudowire", |s| {
        s.rx_packets
    }),
    ("rx_bytes", "L2TP bytes received (header included)", |s| {
        s.rx_bytes
    }),
    (
        "rx_seq_discards",
        "packets discarded by sequence number checks",
        |s| s.rx_seq_discards,
    ),
    (
        "rx_cookie_discards",
        "packets discarded for a cookie mismatch",
        |s| s.rx_cookie_discards,
    ),
    (
        "rx_oos_packets",
        "out-of-sequence packets queued for reordering",
        |s| s.rx_oos_packets,
    ),
    ("rx_errors", "receive discards", |s| s.rx_errors),
    (
        "rx_invalid",
        "invalid packets (version mismatch, missing fields)",
        |s| s.rx_invalid,
    ),
];

/// Label set of one object.
type Labels = Vec<(&'static str, String)>;

/// Tunnel states of the control engine (`TunnelStats::state`).
pub(crate) const TUNNEL_STATES: [&str; 5] = [
    "wait-ctl-reply",
    "wait-ctl-conn",
    "established",
    "closing",
    "held",
];

/// Why a dynamic tunnel or session went down (`ul2tp_control::DownReason`, by variant).
pub(crate) const DOWN_REASONS: [&str; 7] = [
    "local",
    "peer",
    "timeout",
    "auth_failed",
    "tie_break_lost",
    "protocol",
    "tunnel_down",
];

/// The label of a control-plane down reason.
pub(crate) fn down_reason(r: &ul2tp_control::DownReason) -> &'static str {
    use ul2tp_control::DownReason as R;
    match r {
        R::Local => "local",
        R::Peer { .. } => "peer",
        R::Timeout => "timeout",
        R::AuthFailed => "auth_failed",
        R::TieBreakLost => "tie_break_lost",
        R::Protocol { .. } => "protocol",
        R::TunnelDown => "tunnel_down",
    }
}

/// Why a PPP link went down (`ul2tp_ppp::DownReason`), in its declaration order.
const PPP_DOWN_REASONS: [&str; 8] = [
    "admin_close",
    "peer_terminated",
    "echo_timeout",
    "auth_failed",
    "negotiation_failed",
    "no_network_protocols",
    "lower_layer_down",
    "no_address",
];

/// Message types always exported (`MessageType::name`), others once seen.
const MESSAGE_TYPES: [&str; 12] = [
    "SCCRQ", "SCCRP", "SCCCN", "StopCCN", "HELLO", "ICRQ", "ICRP", "ICCN", "OCRQ", "OCRP", "OCCN",
    "CDN",
];

/// PPP authentication protocols as labels.
const AUTH_PROTOCOLS: [&str; 3] = ["pap", "chap", "other"];

/// Direction of an authentication failure: we rejected the peer, or the peer rejected us.
const AUTH_CAUSES: [&str; 2] = ["peer_rejected", "rejected_by_peer"];

/// Why the data path dropped a datagram that arrived on a tunnel socket (`reason` label of
/// `ul2tp_rx_dropped_total` and `ul2tp_socket_rx_dropped_total`), with the help text of each.
pub(crate) const RX_DROP_REASONS: [(&str, &str); 14] = [
    ("truncated", "larger than the receive buffer"),
    ("malformed", "header fields missing or inconsistent"),
    (
        "unknown_session",
        "data message for no session on the socket",
    ),
    ("short", "too short for an L2TP header"),
    ("cookie_mismatch", "wrong cookie"),
    ("seq_required", "no sequence number where one is required"),
    (
        "outside_window",
        "sequence number outside the receive window",
    ),
    ("out_of_sequence", "out of sequence in in-order mode"),
    ("vlan_mismatch", "ETH_VLAN frame without the session's tag"),
    ("session_dead", "session being deleted"),
    (
        "control_unclaimed",
        "control message on a socket without a control plane",
    ),
    (
        "owner_queue_full",
        "the socket owner's queue (control plane, application) full",
    ),
    ("no_pseudowire", "session without a pseudowire device (yet)"),
    (
        "pseudowire_full",
        "pseudowire device or session socket queue full",
    ),
];

/// A data-path drop reason: the index into [`RX_DROP_REASONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RxDrop {
    Truncated,
    Malformed,
    UnknownSession,
    Short,
    CookieMismatch,
    SeqRequired,
    OutsideWindow,
    OutOfSequence,
    VlanMismatch,
    SessionDead,
    ControlUnclaimed,
    OwnerQueueFull,
    NoPseudowire,
    PseudowireFull,
}

impl From<ul2tp_core::DropReason> for RxDrop {
    fn from(r: ul2tp_core::DropReason) -> RxDrop {
        use ul2tp_core::DropReason as D;
        match r {
            D::Malformed => RxDrop::Malformed,
            D::UnknownSession => RxDrop::UnknownSession,
            D::CookieMismatch => RxDrop::CookieMismatch,
            D::SeqRequired => RxDrop::SeqRequired,
            D::OutsideWindow => RxDrop::OutsideWindow,
            D::OutOfSequence => RxDrop::OutOfSequence,
            D::VlanMismatch => RxDrop::VlanMismatch,
            D::SessionDead => RxDrop::SessionDead,
        }
    }
}

/// ICMP errors on tunnel sockets, by `reason` (`ul2tp_sys::errqueue::ErrorKind`).
pub(crate) const ICMP_REASONS: [&str; 9] = [
    "port_unreachable",
    "host_unreachable",
    "net_unreachable",
    "protocol_unreachable",
    "frag_needed",
    "admin_prohibited",
    "time_exceeded",
    "local",
    "other",
];

/// The index into [`ICMP_REASONS`] of an error.
pub(crate) fn icmp_reason(k: ul2tp_sys::errqueue::ErrorKind) -> usize {
    use ul2tp_sys::errqueue::ErrorKind as K;
    match k {
        K::PortUnreachable => 0,
        K::HostUnreachable => 1,
        K::NetUnreachable => 2,
        K::ProtocolUnreachable => 3,
        K::FragNeeded { .. } => 4,
        K::AdminProhibited => 5,
        K::TimeExceeded => 6,
        K::Local => 7,
        K::Other => 8,
    }
}

/// Totals over every tunnel socket the daemon ever had.
#[derive(Debug, Default)]
pub(crate) struct SocketTotals {
    rx_dropped: [AtomicU64; RX_DROP_REASONS.len()],
    icmp: [AtomicU64; ICMP_REASONS.len()],
}

/// The counters of one tunnel socket (or the control endpoint's listening socket): what
/// the data path dropped and the ICMP errors the socket received. Bumped by its receive and
/// error tasks, read by the scrape.
#[derive(Debug)]
pub(crate) struct SocketCounters {
    /// The data-path socket id (`None`: the control endpoint's listener).
    pub(crate) id: Option<ul2tp_core::SocketId>,
    /// `udp` or `ip`.
    pub(crate) encap: &'static str,
    /// Local address.
    pub(crate) local: String,
    /// Peer address (`*` when unconnected).
    pub(crate) peer: String,
    rx_dropped: [AtomicU64; RX_DROP_REASONS.len()],
    icmp: [AtomicU64; ICMP_REASONS.len()],
    /// Last path MTU an ICMP "fragmentation needed" / "packet too big" reported (0: none).
    path_mtu: AtomicU64,
    totals: Arc<SocketTotals>,
}

impl SocketCounters {
    /// A datagram dropped.
    pub(crate) fn rx_drop(&self, r: RxDrop) {
        self.rx_dropped[r as usize].fetch_add(1, Ordering::Relaxed);
        self.totals.rx_dropped[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// An ICMP error (or local error) read from the error queue; returns its reason label.
    pub(crate) fn icmp(&self, e: &ul2tp_sys::errqueue::SockError) -> &'static str {
        let k = e.kind();
        let i = icmp_reason(k);
        self.icmp[i].fetch_add(1, Ordering::Relaxed);
        self.totals.icmp[i].fetch_add(1, Ordering::Relaxed);
        if let ul2tp_sys::errqueue::ErrorKind::FragNeeded { mtu } = k {
            if mtu > 0 {
                self.path_mtu.store(u64::from(mtu), Ordering::Relaxed);
            }
        }
        ICMP_REASONS[i]
    }

    /// The count of one drop reason.
    #[cfg(test)]
    pub(crate) fn dropped(&self, r: RxDrop) -> u64 {
        self.rx_dropped[r as usize].load(Ordering::Relaxed)
    }
}

/// What the control task publishes after each batch of events: a value the scrape reads
/// without touching the engine.
#[derive(Debug, Clone, Default)]
pub(crate) struct ControlSnapshot {
    /// Endpoint-wide counters.
    pub(crate) endpoint: ul2tp_control::EndpointStats,
    /// Tunnels held by the engine, by state name.
    pub(crate) tunnel_states: BTreeMap<&'static str, u64>,
    /// Ids of the tunnels the engine holds (the dynamic ones).
    pub(crate) tunnel_ids: BTreeSet<u32>,
    /// Sessions the engine holds: (established, being set up).
    pub(crate) sessions: [u64; 2],
    /// Reliable-delivery counters of every tunnel the endpoint ever held.
    pub(crate) channel: ul2tp_control::channel::ChannelStats,
    /// Control messages by type.
    pub(crate) messages: ul2tp_control::MessageStats,
    /// Tunnels down, by reason label.
    pub(crate) tunnels_down: BTreeMap<&'static str, u64>,
    /// Sessions down, by reason label.
    pub(crate) sessions_down: BTreeMap<&'static str, u64>,
    /// LNS address pools of every profile: (size, leased).
    pub(crate) pool: Option<(u64, u64)>,
    /// Tunnels held half-open (SCCRQ received or sent, not established).
    pub(crate) half_open: u64,
    /// Tunnels whose timers the last timeout pass looked at.
    pub(crate) timeout_work: u64,
    /// Datagrams the control task dropped before the engine: not control messages.
    pub(crate) not_control: u64,
}

/// PPP endpoint counters, bumped by the link tasks (a handful of events per link).
#[derive(Debug, Default)]
pub(crate) struct PppCounters {
    /// Authentication failures by cause and protocol (`AUTH_CAUSES` × `AUTH_PROTOCOLS`).
    auth_failures: [[AtomicU64; 3]; 2],
    /// Links down by reason (`PPP_DOWN_REASONS`).
    links_down: [AtomicU64; 8],
    /// Invalid Router Solicitations / Advertisements dropped (`ppp_ipv6.rs`).
    pub(crate) nd_invalid: AtomicU64,
    /// PPP links that found the IPv6 prefix pool exhausted.
    pub(crate) ipv6_pool_exhausted: AtomicU64,
    /// PPP calls ended for want of an IPv4 address (`DownReason::NoAddress`).
    pub(crate) pool_exhausted: AtomicU64,
    /// Packets from calls on a shared PPP device with a source not theirs (`ppp_shared.rs`).
    pub(crate) shared_spoofed: AtomicU64,
    /// Packets read from a shared PPP device that no call owns (or whose queue was full).
    pub(crate) shared_unrouted: AtomicU64,
    /// Calls with IPCP up on shared PPP devices.
    pub(crate) shared_calls: AtomicU64,
}

impl PppCounters {
    /// An authentication failure: `we_rejected` the peer (or it rejected us), `proto` the
    /// PPP protocol number of the authentication (PAP, CHAP, 0 if unknown).
    pub(crate) fn auth_failure(&self, we_rejected: bool, proto: u16) {
        let p = match proto {
            ul2tp_wire::ppp::proto::PAP => 0,
            ul2tp_wire::ppp::proto::CHAP => 1,
            _ => 2,
        };
        self.auth_failures[usize::from(!we_rejected)][p].fetch_add(1, Ordering::Relaxed);
    }

    /// A link went down.
    pub(crate) fn link_down(&self, reason: ul2tp_ppp::DownReason) {
        use ul2tp_ppp::DownReason as R;
        let i = match reason {
            R::AdminClose => 0,
            R::PeerTerminated => 1,
            R::EchoTimeout => 2,
            R::AuthFailed => 3,
            R::NegotiationFailed => 4,
            R::NoNetworkProtocols => 5,
            R::LowerLayerDown => 6,
            R::NoAddress => {
                self.pool_exhausted.fetch_add(1, Ordering::Relaxed);
                7
            }
        };
        self.links_down[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// The daemon's operational counters beyond the data path's.
#[derive(Debug, Default)]
pub struct Ops {
    /// The control plane's last snapshot (`None`: no `[control]` section).
    pub(crate) control: ArcSwapOption<ControlSnapshot>,
    /// PPP endpoints.
    pub(crate) ppp: PppCounters,
    /// The management API's connections.
    pub api: ApiCounters,
    /// The RADIUS client (`None`: no `[radius]` table): its counters, and its sessions for
    /// `ul2tp show session`.
    pub radius: ArcSwapOption<crate::radius::Radius>,
    /// Totals of the tunnel sockets' counters.
    socket_totals: Arc<SocketTotals>,
    /// The counters of the sockets open now (pruned as they go).
    sockets: std::sync::Mutex<Vec<std::sync::Weak<SocketCounters>>>,
    /// Per data-path worker (queue) totals (`workers.rs`).
    pub(crate) workers: Arc<crate::workers::WorkerCounters>,
}

impl Ops {
    /// New counters for a socket, listed in the scrape while the returned value lives.
    pub(crate) fn socket_counters(
        &self,
        id: Option<ul2tp_core::SocketId>,
        encap: &'static str,
        local: Option<std::net::SocketAddr>,
        peer: Option<std::net::SocketAddr>,
    ) -> Arc<SocketCounters> {
        let c = Arc::new(SocketCounters {
            id,
            encap,
            local: local.map_or_else(|| "*".to_string(), |a| addr_label(encap, a)),
            peer: peer.map_or_else(|| "*".to_string(), |a| addr_label(encap, a)),
            rx_dropped: Default::default(),
            icmp: Default::default(),
            path_mtu: AtomicU64::new(0),
            totals: self.socket_totals.clone(),
        });
        if let Ok(mut l) = self.sockets.lock() {
            l.retain(|w| w.strong_count() > 0);
            l.push(Arc::downgrade(&c));
        }
        c
    }

    fn live_sockets(&self) -> Vec<Arc<SocketCounters>> {
        self.sockets
            .lock()
            .map(|l| l.iter().filter_map(std::sync::Weak::upgrade).collect())
            .unwrap_or_default()
    }
}

/// An address as a label: `ip:port` for UDP, the address alone for IP encapsulation.
fn addr_label(encap: &str, a: std::net::SocketAddr) -> String {
    if encap == "ip" {
        a.ip().to_string()
    } else {
        a.to_string()
    }
}

/// The management API's connection counters (server.rs).
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections refused over `[api] max_connections` / `max_connections_per_uid`.
    pub rejected: AtomicU64,
}

#[derive(Debug)]
struct L2tpCollector {
    registry: Arc<Registry>,
    ops: Arc<Ops>,
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstGauge::new(v as i64).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// One family, one label, one value per label value.
fn family<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> std::fmt::Result {
    let mut f = enc.encode_descriptor(name, help, None, ty)?;
    for (l, v) in values {
        let labels = [(label, l)];
        match ty {
            MetricType::Counter => ConstCounter::new(v).encode(f.encode_family(&labels)?)?,
            _ => ConstGauge::new(v as i64).encode(f.encode_family(&labels)?)?,
        }
    }
    Ok(())
}

/// The RADIUS client's counters (docs/radius.md).
fn encode_radius(enc: &mut DescriptorEncoder, r: &crate::radius::Counters) -> std::fmt::Result {
    let v = |c: &AtomicU64| c.load(Ordering::Relaxed);
    for (name, help, n) in [
        (
            "ul2tp_radius_access_requests",
            "Access-Requests sent (first transmissions)",
            v(&r.requests),
        ),
        (
            "ul2tp_radius_access_accepts",
            "Access-Accepts received",
            v(&r.accepts),
        ),
        (
            "ul2tp_radius_access_rejects",
            "Access-Rejects received",
            v(&r.rejects),
        ),
        (
            "ul2tp_radius_timeouts",
            "Access-Requests no server answered",
            v(&r.timeouts),
        ),
        (
            "ul2tp_radius_retransmits",
            "RADIUS requests retransmitted (access and accounting)",
            v(&r.retransmits),
        ),
        (
            "ul2tp_radius_bad_replies",
            "RADIUS replies dropped: authenticator or Message-Authenticator did not verify",
            v(&r.bad_replies),
        ),
        (
            "ul2tp_radius_acct_responses",
            "Accounting-Requests answered",
            v(&r.acct_responses),
        ),
        (
            "ul2tp_radius_acct_dropped",
            "accounting records dropped: the queue was full",
            v(&r.acct_dropped),
        ),
        (
            "ul2tp_radius_dae_requests",
            "Disconnect- and CoA-Requests verified and handled",
            v(&r.dae_requests),
        ),
        (
            "ul2tp_radius_dae_acks",
            "Disconnect- and CoA-Requests answered ACK",
            v(&r.dae_acks),
        ),
        (
            "ul2tp_radius_dae_naks",
            "Disconnect- and CoA-Requests answered NAK",
            v(&r.dae_naks),
        ),
        (
            "ul2tp_radius_dae_dropped",
            "DAE requests dropped: unknown client, bad authenticator, wrong code, malformed",
            v(&r.dae_dropped),
        ),
    ] {
        counter(enc, name, help, n)?;
    }
    gauge(
        enc,
        "ul2tp_radius_acct_pending",
        "accounting records waiting for a server's answer",
        v(&r.acct_pending),
    )
}

/// Each RADIUS server's requests and timeouts (label `server`: its address).
fn encode_radius_servers(
    enc: &mut DescriptorEncoder,
    stats: &[(std::net::IpAddr, crate::radius::ServerStats)],
) -> std::fmt::Result {
    let names: Vec<String> = stats.iter().map(|(a, _)| a.to_string()).collect();
    family(
        enc,
        "ul2tp_radius_server_requests",
        "RADIUS requests sent to each server (first transmissions; access and accounting)",
        MetricType::Counter,
        "server",
        names
            .iter()
            .zip(stats)
            .map(|(n, (_, s))| (n.as_str(), s.requests)),
    )?;
    family(
        enc,
        "ul2tp_radius_server_timeouts",
        "RADIUS requests a server did not answer (after every retry)",
        MetricType::Counter,
        "server",
        names
            .iter()
            .zip(stats)
            .map(|(n, (_, s))| (n.as_str(), s.timeouts)),
    )
}

impl L2tpCollector {
    /// The data path's drops and the ICMP errors of tunnel sockets: totals by reason, and
    /// the non-zero counts of each open socket (sockets with the same addresses summed).
    fn encode_sockets(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let t = &self.ops.socket_totals;
        let help = format!(
            "datagrams received on tunnel sockets and dropped by the data path, by reason: {}",
            RX_DROP_REASONS
                .iter()
                .map(|(r, h)| format!("{r} ({h})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        family(
            enc,
            "ul2tp_rx_dropped",
            &help,
            MetricType::Counter,
            "reason",
            RX_DROP_REASONS
                .iter()
                .zip(&t.rx_dropped)
                .map(|((r, _), v)| (*r, load(v))),
        )?;
        family(
            enc,
            "ul2tp_icmp_errors",
            "ICMP errors received on tunnel sockets and the control endpoint's socket, by reason",
            MetricType::Counter,
            "reason",
            ICMP_REASONS.iter().zip(&t.icmp).map(|(r, v)| (*r, load(v))),
        )?;
        let socks = self.ops.live_sockets();
        type Key = (&'static str, String, String, &'static str);
        let mut drops: BTreeMap<Key, u64> = BTreeMap::new();
        let mut icmp: BTreeMap<Key, u64> = BTreeMap::new();
        // Per tunnel: the ICMP errors and path MTU of its socket.
        let mut by_id: BTreeMap<ul2tp_core::SocketId, Arc<SocketCounters>> = BTreeMap::new();
        for c in &socks {
            let key = |r: &'static str| (c.encap, c.local.clone(), c.peer.clone(), r);
            for ((r, _), v) in RX_DROP_REASONS.iter().zip(&c.rx_dropped) {
                let v = load(v);
                if v > 0 {
                    *drops.entry(key(r)).or_default() += v;
                }
            }
            for (r, v) in ICMP_REASONS.iter().zip(&c.icmp) {
                let v = load(v);
                if v > 0 {
                    *icmp.entry(key(r)).or_default() += v;
                }
            }
            if let Some(id) = c.id {
                by_id.insert(id, c.clone());
            }
        }
        for (name, help, map) in [
            (
                "ul2tp_socket_rx_dropped",
                "datagrams dropped by the data path on one open tunnel socket, by reason (non-zero only)",
                &drops,
            ),
            (
                "ul2tp_socket_icmp_errors",
                "ICMP errors received on one open tunnel socket, by reason (non-zero only)",
                &icmp,
            ),
        ] {
            let mut f = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for ((encap, local, peer, r), v) in map {
                let labels = [
                    ("encap", *encap),
                    ("local", local.as_str()),
                    ("peer", peer.as_str()),
                    ("reason", *r),
                ];
                ConstCounter::new(*v).encode(f.encode_family(&labels)?)?;
            }
        }
        let tunnels: Vec<(String, Arc<SocketCounters>)> = self
            .registry
            .tunnels()
            .iter()
            .filter_map(|t| {
                let c = by_id.get(&t.socket())?;
                Some((t.tunnel_id().to_string(), c.clone()))
            })
            .collect();
        let mut f = enc.encode_descriptor(
            "ul2tp_tunnel_icmp_errors",
            "ICMP errors received on the tunnel's socket, by reason (non-zero only; tunnels sharing a socket show the same counts)",
            None,
            MetricType::Counter,
        )?;
        for (tid, c) in &tunnels {
            for (r, v) in ICMP_REASONS.iter().zip(&c.icmp) {
                let v = load(v);
                if v > 0 {
                    let labels = [("tunnel_id", tid.as_str()), ("reason", *r)];
                    ConstCounter::new(v).encode(f.encode_family(&labels)?)?;
                }
            }
        }
        let mut f = enc.encode_descriptor(
            "ul2tp_tunnel_icmp_path_mtu",
            "path MTU towards the peer last reported by an ICMP fragmentation-needed / packet-too-big error",
            None,
            MetricType::Gauge,
        )?;
        for (tid, c) in &tunnels {
            let v = load(&c.path_mtu);
            if v > 0 {
                ConstGauge::new(v as i64)
                    .encode(f.encode_family(&[("tunnel_id", tid.as_str())])?)?;
            }
        }
        Ok(())
    }

    /// The data-path workers' counters (`workers.rs`), one sample per worker.
    fn encode_workers(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        let w = self.ops.workers.snapshot(1);
        let names: Vec<String> = (0..w.len()).map(|i| i.to_string()).collect();
        family(
            enc,
            "ul2tp_datapath_worker_tx_datagrams",
            "datagrams sent by each data-path worker's transmit loops (TAP queue N of every Ethernet pseudowire)",
            MetricType::Counter,
            "worker",
            names.iter().map(String::as_str).zip(w.iter().map(|v| v.0)),
        )?;
        family(
            enc,
            "ul2tp_datapath_worker_rx_writes",
            "frames and coalesced super-frames written through each data-path worker's TAP queue",
            MetricType::Counter,
            "worker",
            names.iter().map(String::as_str).zip(w.iter().map(|v| v.1)),
        )
    }

    fn encode_ops(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        gauge(
            enc,
            "ul2tp_api_connections",
            "open management API connections",
            self.ops.api.open.load(Ordering::Relaxed),
        )?;
        counter(
            enc,
            "ul2tp_api_connections_rejected",
            "management API connections refused over the [api] connection limits",
            self.ops.api.rejected.load(Ordering::Relaxed),
        )?;
        self.encode_sockets(enc)?;
        self.encode_workers(enc)?;
        let snap = self.ops.control.load_full();
        let dynamic = |tid: u32| snap.as_ref().is_some_and(|s| s.tunnel_ids.contains(&tid));
        let kinds = |n: [u64; 2]| [("static", n[0]), ("dynamic", n[1])];
        let mut tunnels = [0u64; 2];
        for t in self.registry.tunnels().iter() {
            tunnels[usize::from(dynamic(t.tunnel_id()))] += 1;
        }
        let mut sessions = [0u64; 2];
        for s in self.registry.sessions().iter() {
            sessions[usize::from(dynamic(s.tunnel_id()))] += 1;
        }
        family(
            enc,
            "ul2tp_tunnels_up",
            "data-path tunnels, static (API, configuration) or dynamic (control protocol)",
            MetricType::Gauge,
            "kind",
            kinds(tunnels),
        )?;
        family(
            enc,
            "ul2tp_sessions_up",
            "data-path sessions, static or dynamic (in a dynamic tunnel)",
            MetricType::Gauge,
            "kind",
            kinds(sessions),
        )?;
        let p = &self.ops.ppp;
        let mut f = enc.encode_descriptor(
            "ul2tp_ppp_auth_failures",
            "PPP authentication failures: the peer failed ours (peer_rejected) or rejected ours",
            None,
            MetricType::Counter,
        )?;
        for (c, cause) in AUTH_CAUSES.iter().enumerate() {
            for (i, proto) in AUTH_PROTOCOLS.iter().enumerate() {
                let v = p.auth_failures[c][i].load(Ordering::Relaxed);
                let labels = [("cause", *cause), ("protocol", *proto)];
                ConstCounter::new(v).encode(f.encode_family(&labels)?)?;
            }
        }
        let down = |i: usize| p.links_down[i].load(Ordering::Relaxed);
        family(
            enc,
            "ul2tp_ppp_links_down",
            "PPP links down, by reason",
            MetricType::Counter,
            "reason",
            PPP_DOWN_REASONS
                .iter()
                .enumerate()
                .map(|(i, r)| (*r, down(i))),
        )?;
        counter(
            enc,
            "ul2tp_ppp_lcp_echo_failures",
            "PPP links declared dead after unanswered LCP Echo-Requests",
            down(2),
        )?;
        if let Some(r) = self.ops.radius.load_full() {
            encode_radius(enc, &r.counters)?;
            encode_radius_servers(enc, &r.server_stats())?;
        }
        counter(
            enc,
            "ul2tp_ppp_nd_invalid",
            "invalid IPv6 Router Solicitations / Advertisements dropped on PPP links",
            p.nd_invalid.load(Ordering::Relaxed),
        )?;
        counter(
            enc,
            "ul2tp_ppp_pool_exhausted",
            "PPP calls ended (LCP Terminate, CDN 2) at IPCP: no address left in the pools of their profile",
            p.pool_exhausted.load(Ordering::Relaxed),
        )?;
        counter(
            enc,
            "ul2tp_ppp_ipv6_pool_exhausted",
            "PPP links that got no IPv6 /64: ppp_ipv6_pool exhausted",
            p.ipv6_pool_exhausted.load(Ordering::Relaxed),
        )?;
        gauge(
            enc,
            "ul2tp_ppp_shared_calls",
            "PPP calls with IPCP up on shared PPP devices (ppp_device = \"shared\")",
            p.shared_calls.load(Ordering::Relaxed),
        )?;
        counter(
            enc,
            "ul2tp_ppp_shared_spoofed",
            "packets from PPP calls on a shared device dropped: source address not the call's",
            p.shared_spoofed.load(Ordering::Relaxed),
        )?;
        counter(
            enc,
            "ul2tp_ppp_shared_unrouted",
            "packets read from a shared PPP device dropped: no call owns the destination",
            p.shared_unrouted.load(Ordering::Relaxed),
        )?;
        let Some(s) = snap else { return Ok(()) };
        family(
            enc,
            "ul2tp_control_tunnels",
            "control connections held by the control endpoint, by state",
            MetricType::Gauge,
            "state",
            TUNNEL_STATES
                .iter()
                .map(|st| (*st, s.tunnel_states.get(st).copied().unwrap_or(0))),
        )?;
        family(
            enc,
            "ul2tp_control_sessions",
            "sessions (calls) held by the control endpoint: established or being set up",
            MetricType::Gauge,
            "state",
            [
                ("established", s.sessions[0]),
                ("connecting", s.sessions[1]),
            ],
        )?;
        gauge(
            enc,
            "ul2tp_control_half_open",
            "control connections held half-open (SCCRQ received or sent, not yet established)",
            s.half_open,
        )?;
        gauge(
            enc,
            "ul2tp_control_timeout_work",
            "tunnels whose timers the last timeout pass of the control endpoint looked at",
            s.timeout_work,
        )?;
        for (name, help, map) in [
            (
                "ul2tp_control_tunnels_down",
                "control connections closed or lost, by reason",
                &s.tunnels_down,
            ),
            (
                "ul2tp_control_sessions_down",
                "dynamic sessions closed or lost, by reason",
                &s.sessions_down,
            ),
        ] {
            family(
                enc,
                name,
                help,
                MetricType::Counter,
                "reason",
                DOWN_REASONS
                    .iter()
                    .map(|r| (*r, map.get(r).copied().unwrap_or(0))),
            )?;
        }
        let e = &s.endpoint;
        let c = &s.channel;
        for (name, help, v) in [
            (
                "ul2tp_control_rx_datagrams",
                "datagrams handed to the control endpoint",
                e.rx_datagrams,
            ),
            (
                "ul2tp_control_rx_malformed",
                "control datagrams dropped: malformed header or body",
                e.rx_malformed,
            ),
            (
                "ul2tp_control_rx_unknown_tunnel",
                "control datagrams dropped: no such tunnel",
                e.rx_unknown_tunnel,
            ),
            (
                "ul2tp_control_orphan_stopccn_acks",
                "of those, StopCCNs acknowledged after the tunnel's hold-down (the peer missed our acknowledgements)",
                e.orphan_stopccn_acks,
            ),
            (
                "ul2tp_control_rx_auth_failures",
                "control datagrams dropped: message digest check failed (L2TPv3)",
                e.rx_auth_failures,
            ),
            (
                "ul2tp_control_sccrq_refused",
                "SCCRQs answered with StopCCN: no [[lns]] profile admits the peer, or it holds max_tunnels",
                e.sccrq_refused,
            ),
            (
                "ul2tp_control_tie_breaks_won",
                "SCCRQs ignored because we won the tie-break",
                e.tie_breaks_won,
            ),
            (
                "ul2tp_control_sccrq_dropped_half_open",
                "new SCCRQs dropped unanswered: the global or per-source half-open tunnel limit was reached",
                e.sccrq_dropped_half_open,
            ),
            (
                "ul2tp_control_sccrq_rate_limited",
                "new SCCRQs dropped unanswered: the source exceeded its new-tunnel rate",
                e.sccrq_rate_limited,
            ),
            (
                "ul2tp_control_rx_not_control",
                "datagrams dropped by the control endpoint's socket: not a control message (data or too short)",
                s.not_control,
            ),
            (
                "ul2tp_control_messages_sent_all",
                "control messages sent for the first time, all types (ZLB / ACK excluded)",
                c.tx_msgs,
            ),
            (
                "ul2tp_control_messages_delivered",
                "control messages delivered in order to the state machines, all types",
                c.delivered,
            ),
            (
                "ul2tp_control_acks_sent",
                "pure acknowledgements (ZLB) sent",
                c.tx_acks,
            ),
            (
                "ul2tp_control_fast_retransmits",
                "control message retransmissions sent on acknowledgements that showed a loss, before the retransmission timer",
                c.fast_retransmits,
            ),
            (
                "ul2tp_control_rx_duplicates",
                "duplicate control messages received",
                c.duplicates,
            ),
            (
                "ul2tp_control_rx_out_of_order",
                "control messages received out of order and held",
                c.out_of_order,
            ),
            (
                "ul2tp_control_rx_dropped",
                "control messages dropped: beyond the window or with an invalid Nr",
                c.dropped,
            ),
        ] {
            counter(enc, name, help, v)?;
        }
        // By Message Type: the common ones always (at zero), any other once seen.
        let mut types: BTreeMap<String, ul2tp_control::MessageCounts> = MESSAGE_TYPES
            .iter()
            .map(|t| (t.to_string(), Default::default()))
            .collect();
        for (t, n) in s.messages.iter() {
            types.insert(
                t.name().map_or_else(|| t.get().to_string(), str::to_string),
                n,
            );
        }
        type Get = fn(&ul2tp_control::MessageCounts) -> u64;
        let by_type: [(&str, &str, Get); 3] = [
            (
                "ul2tp_control_messages_sent",
                "control messages sent (first transmissions), by Message Type",
                |n| n.sent,
            ),
            (
                "ul2tp_control_retransmits",
                "control message retransmissions, by Message Type",
                |n| n.retransmitted,
            ),
            (
                "ul2tp_control_messages_received",
                "control messages received and delivered in order, by Message Type",
                |n| n.received,
            ),
        ];
        for (name, help, get) in by_type {
            family(
                enc,
                name,
                help,
                MetricType::Counter,
                "type",
                types.iter().map(|(t, n)| (t.as_str(), get(n))),
            )?;
        }
        if let Some((size, leased)) = s.pool {
            gauge(
                enc,
                "ul2tp_ppp_pool_addresses",
                "addresses in the LNS PPP address pools of every profile",
                size,
            )?;
            gauge(
                enc,
                "ul2tp_ppp_pool_leased",
                "pool addresses leased to PPP peers",
                leased,
            )?;
        }
        Ok(())
    }
}

impl Collector for L2tpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_ops(&mut encoder)?;
        let tunnels: Vec<(Labels, Stats)> = self
            .registry
            .tunnels()
            .iter()
            .map(|t| (vec![("tunnel_id", t.tunnel_id().to_string())], t.stats()))
            .collect();
        let sessions: Vec<(Labels, Stats)> = self
            .registry
            .sessions()
            .iter()
            .map(|s| {
                let mut l = vec![
                    ("tunnel_id", s.tunnel_id().to_string()),
                    ("session_id", s.session_id().to_string()),
                ];
                if let Some(name) = s.ifname() {
                    l.push(("ifname", name.to_string()));
                }
                (l, s.stats())
            })
            .collect();
        for (kind, objects) in [("tunnel", &tunnels), ("session", &sessions)] {
            let count = ConstGauge::new(objects.len() as i64);
            let name = format!("ul2tp_{kind}s");
            let help = format!("number of {kind}s");
            count.encode(encoder.encode_descriptor(&name, &help, None, MetricType::Gauge)?)?;
            for (counter, help, get) in COUNTERS {
                let name = format!("ul2tp_{kind}_{counter}");
                let mut family =
                    encoder.encode_descriptor(&name, help, None, MetricType::Counter)?;
                for (labels, stats) in objects {
                    ConstCounter::new(get(stats)).encode(family.encode_family(labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// The format an Accept header asks for: OpenMetrics if it names it, text otherwise.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a)
                if a.to_ascii_lowercase()
                    .contains("application/openmetrics-text") =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }

    /// The Content-Type of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The exposition text of all metrics in OpenMetrics.
pub fn render(registry: &Arc<Registry>, ops: &Arc<Ops>) -> String {
    let mut reg = PromRegistry::default();
    reg.register_collector(Box::new(L2tpCollector {
        registry: registry.clone(),
        ops: ops.clone(),
    }));
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

/// The exposition text in `format`.
pub fn render_as(registry: &Arc<Registry>, ops: &Arc<Ops>, format: Format) -> String {
    let om = render(registry, ops);
    match format {
        Format::OpenMetrics => om,
        Format::Text => openmetrics_to_text(&om),
    }
}

/// OpenMetrics as prometheus-client writes it, in the text format 0.0.4: a counter family is
/// named after its samples (`…_total`), `# UNIT` and `# EOF` lines go (the collector writes
/// no `_created` samples, exemplars or info metrics).
pub fn openmetrics_to_text(om: &str) -> String {
    let mut counters = BTreeSet::new();
    for l in om.lines() {
        if let Some(name) = l
            .strip_prefix("# TYPE ")
            .and_then(|r| r.strip_suffix(" counter"))
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(om.len() + counters.len() * 12);
    for l in om.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| l.strip_prefix(p).map(|r| (p, r)));
        match meta {
            Some((p, rest)) => {
                let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{p}{name}_total {text}\n"));
                } else {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// The response to one request head: status, content type, body (empty for HEAD).
pub fn respond(head: &str, registry: &Arc<Registry>, ops: &Arc<Ops>) -> (String, String) {
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let accept = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("accept").then(|| v.trim())
    });
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let f = Format::from_accept(accept);
            ("200 OK", f.content_type(), render_as(registry, ops, f))
        }
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/html; charset=utf-8",
            "<html><head><title>ul2tpd</title></head><body><h1>ul2tpd</h1>\
             <p><a href=\"/metrics\">Metrics</a></p></body></html>\n"
                .to_string(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_string(),
        ),
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    (
        head,
        if method == "HEAD" {
            String::new()
        } else {
            body
        },
    )
}

/// Serve `GET /metrics` on `listener` forever.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, ops: Arc<Ops>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let registry = registry.clone();
        let ops = ops.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            // Read the request head (bounded); the body of a GET is empty.
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                match tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let (head, body) = respond(&String::from_utf8_lossy(&req), &registry, &ops);
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_after_their_samples() {
        let om = "# HELP a_b help me\n# TYPE a_b counter\n# UNIT a_b bytes\na_b_total{x=\"1\"} 3\n\
                  # HELP g gauge\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP a_b_total help me\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 3\n\
             # HELP g gauge\n# TYPE g gauge\ng 1\n"
        );
    }

    #[test]
    fn accept_header_picks_the_format() {
        assert_eq!(Format::from_accept(None), Format::Text);
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
    }

    #[test]
    fn socket_drops_and_icmp_errors_appear_in_a_scrape() {
        let reg = Arc::new(Registry::new());
        let ops = Arc::new(Ops::default());
        let l = "192.0.2.1:1701".parse().ok();
        let p = "192.0.2.2:1701".parse().ok();
        let a = ops.socket_counters(Some(ul2tp_core::SocketId(1)), "udp", l, p);
        // A second socket with the same addresses is summed into the same series.
        let b = ops.socket_counters(Some(ul2tp_core::SocketId(2)), "udp", l, p);
        a.rx_drop(RxDrop::UnknownSession);
        b.rx_drop(RxDrop::UnknownSession);
        a.rx_drop(RxDrop::Short);
        assert_eq!(a.dropped(RxDrop::UnknownSession), 1);
        let t = render_as(&reg, &ops, Format::Text);
        assert!(
            t.contains("ul2tp_rx_dropped_total{reason=\"unknown_session\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("ul2tp_rx_dropped_total{reason=\"truncated\"} 0"),
            "{t}"
        );
        assert!(
            t.contains(
                "ul2tp_socket_rx_dropped_total{encap=\"udp\",local=\"192.0.2.1:1701\",peer=\"192.0.2.2:1701\",reason=\"unknown_session\"} 2"
            ),
            "{t}"
        );
        assert!(
            !t.contains("reason=\"cookie_mismatch\"} 0\nul2tp_socket"),
            "{t}"
        );
        // Sockets that are gone leave the per-socket series, not the totals.
        drop((a, b));
        let t = render_as(&reg, &ops, Format::Text);
        assert!(!t.contains("ul2tp_socket_rx_dropped_total{"), "{t}");
        assert!(
            t.contains("ul2tp_rx_dropped_total{reason=\"unknown_session\"} 2"),
            "{t}"
        );
        assert!(t.contains("# HELP ul2tp_rx_dropped_total datagrams"), "{t}");
        assert!(t.contains("ul2tp_icmp_errors_total{reason=\"port_unreachable\"} 0"));
    }

    #[test]
    fn ppp_counters_appear_in_a_scrape() {
        let reg = Arc::new(Registry::new());
        let ops = Arc::new(Ops::default());
        ops.ppp.auth_failure(true, ul2tp_wire::ppp::proto::CHAP);
        ops.ppp.link_down(ul2tp_ppp::DownReason::EchoTimeout);
        let t = render_as(&reg, &ops, Format::Text);
        assert!(
            t.contains(
                "ul2tp_ppp_auth_failures_total{cause=\"peer_rejected\",protocol=\"chap\"} 1"
            ),
            "{t}"
        );
        assert!(t.contains("ul2tp_ppp_lcp_echo_failures_total 1"), "{t}");
        assert!(t.contains("ul2tp_ppp_nd_invalid_total 0"), "{t}");
        assert!(t.contains("ul2tp_ppp_ipv6_pool_exhausted_total 0"), "{t}");
        assert!(!t.contains("# EOF"));
        let (head, body) = respond("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &reg, &ops);
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(body.is_empty());
        let (head, _) = respond("GET /nope HTTP/1.1\r\n\r\n", &reg, &ops);
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    }
}
