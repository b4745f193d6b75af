//! The daemon's state: the object store under the request handlers.
//!
//! The store owns the `ul2tp-core` registry, the pseudowires the data path delivers to, the
//! tunnel sockets with their receive tasks, and the per-object runtime state (devices,
//! timers, attached session sockets). It registers and deletes objects, builds the reply
//! attributes of the kernel (docs/reference/kernel.md §4.8) and multicasts notifications to
//! monitors (docs/reference/kernel.md §4.9). Everything above it — the request handlers
//! (`handlers/`), the application descriptors (`apps.rs`, `l2tpip.rs`), the PPP endpoint
//! (`pppd.rs`) and the control plane (`control.rs`) — goes through it; it depends only on the
//! data path.
//!
//! Sockets: an unmanaged tunnel gets a socket the daemon opens (docs/reference/kernel.md §5.5); tunnels
//! with the same encapsulation, local and remote address (and ports) share one socket, which
//! the kernel cannot do (seed limitation 1). A managed tunnel uses the application's socket,
//! handed over with the request (§5.6).
//!
//! The control plane, when it runs, is known to the store only through [`ControlHandle`]:
//! deleting a dynamic tunnel or session through the store tells the peer (StopCCN / CDN).
//!
//! Control-side changes are serialised by one async mutex; the data path never takes it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};

use crate::workers::EthDev;
use arc_swap::ArcSwapOption;
use tokio::sync::{broadcast, Mutex};
use tokio::task::JoinHandle;
use ul2tp_api::{cookie_hex, encap_type, ApiError, Attrs, Command, Errno, ServerMessage};
use ul2tp_core::PwType;
use ul2tp_core::{Encap, Registry, Session, SocketId, TunnelParams};
use ul2tp_sys::ip::IpTunnelSocket;
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_sys::udp::{UdpOptions, UdpTunnelSocket};
use ul2tp_wire::avp::{CdnResult, PppDisconnectCause};

use crate::datapath::{self, DataPathConfig, Pseudowire, Pseudowires, RxContext, TunnelSocket};
use crate::names::Names;
use crate::reaper::Reaper;

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn einval(msg: impl Into<String>) -> ApiError {
    ApiError::new(Errno::EINVAL, msg)
}

pub(crate) fn io_err(what: &str, e: std::io::Error) -> ApiError {
    let errno = e
        .raw_os_error()
        .and_then(Errno::from_number)
        .unwrap_or(Errno::EIO);
    ApiError::new(errno, format!("{what}: {e}"))
}

/// A task aborted when dropped.
#[derive(Debug)]
pub(crate) struct Task(pub(crate) JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What makes two unmanaged tunnels' sockets the same socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SocketKey {
    encap: Encap,
    local: SocketAddr,
    remote: SocketAddr,
    opts: (bool, bool, bool),
}

/// A tunnel socket and its receive task.
#[derive(Debug)]
pub(crate) struct SocketRt {
    pub(crate) socket: Arc<TunnelSocket>,
    pub(crate) id: SocketId,
    /// The managed tunnel's application view, if any.
    pub(crate) upcall: Arc<ArcSwapOption<SeqPacket>>,
    /// The upcall is the control plane: only control messages go up.
    pub(crate) control_only: Arc<std::sync::atomic::AtomicBool>,
    /// Inode of an adopted application socket (to refuse reusing it: EBUSY).
    pub(crate) inode: Option<u64>,
    _rx: Task,
    /// Reads the socket's ICMP errors (sockets the daemon opened itself).
    _errors: Option<Task>,
}

/// Socket-level facts of a tunnel, reported in replies (docs/reference/kernel.md §4.8).
#[derive(Debug, Clone, Default)]
pub(crate) struct TunnelInfo {
    pub(crate) udp_csum: bool,
    pub(crate) zero_csum6_tx: bool,
    pub(crate) zero_csum6_rx: bool,
}

/// What the control plane learnt of a dynamic tunnel, reported in replies.
#[derive(Debug, Clone, Default)]
pub(crate) struct ControlFacts {
    /// The peer's Host Name.
    pub(crate) peer_host_name: String,
    /// The `[[lns]]` profile of a tunnel a LAC opened.
    pub(crate) lns_profile: Option<String>,
}

#[derive(Debug)]
pub(crate) struct TunnelRt {
    pub(crate) sock: Arc<SocketRt>,
    pub(crate) info: TunnelInfo,
    pub(crate) tasks: Vec<Task>,
    /// The emulated L2TP/IP socket a managed IP tunnel was created on.
    pub(crate) l2tpip: Option<u64>,
    /// A dynamic tunnel: what the control plane learnt of it.
    pub(crate) facts: Option<ControlFacts>,
}

#[derive(Debug, Default)]
pub(crate) struct SessionRt {
    pub(crate) tasks: Vec<Task>,
    /// A session socket is (or was) attached: a second connect is EEXIST (§7.3).
    pub(crate) had_socket: bool,
    /// The daemon's PPP endpoint on this session: what `show session` reports of it.
    pub(crate) ppp: Option<Arc<std::sync::Mutex<PppInfo>>>,
    /// The IPv6 /64 of the session's PPP link, kept current by its endpoint task
    /// (`ppp_ipv6.rs`).
    pub(crate) ppp_ipv6: Option<crate::ppp_ipv6::LinkPrefix>,
    /// A PPP pseudowire's peer reports its circuit inactive (Circuit Status, set by the
    /// control plane): the session's pppN has no carrier, now and whenever a new one comes
    /// (`pppd.rs`).
    pub(crate) peer_circuit_down: tokio::sync::watch::Sender<bool>,
}

/// What the PPP endpoint of a session reports to `show session` (kept up to date by its
/// task, read under the `Ctl` lock).
#[derive(Debug, Clone, Default)]
pub(crate) struct PppInfo {
    /// The authenticated peer (server side) or our user name (client side).
    pub(crate) user: Option<String>,
    /// The pppN device while IPCP is up.
    pub(crate) ifname: Option<String>,
    /// Our address and the peer's while IPCP is up.
    pub(crate) addrs: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
    /// When IPCP came up.
    pub(crate) up_since: Option<std::time::Instant>,
    /// The `[[lns]]` profile of the call.
    pub(crate) profile: Option<String>,
    /// The pool the peer's address came from.
    pub(crate) pool: Option<String>,
    /// The prefixes routed through the pppN (RADIUS Framed-Route / Framed-IP-Netmask).
    pub(crate) routes: Vec<(std::net::Ipv4Addr, u8)>,
}

#[derive(Debug, Default)]
pub(crate) struct Ctl {
    pub(crate) tunnels: BTreeMap<u32, TunnelRt>,
    pub(crate) sessions: HashMap<(u32, u32), SessionRt>,
    sockets: HashMap<SocketKey, Weak<SocketRt>>,
    next_socket: u64,
    /// Sessions with an attached session socket.
    pub(crate) attached: HashSet<(u32, u32)>,
    /// Tunnels the control plane negotiated: deleting them (or their sessions) through the
    /// API also tells the peer (StopCCN / CDN).
    pub(crate) dynamic: HashSet<u32>,
}

/// What the store tells the control plane about its tunnels (implemented by `control.rs`).
pub(crate) trait ControlHandle: Send + Sync + std::fmt::Debug {
    /// Tell the endpoint that the data path dropped a tunnel or session (API delete, session
    /// socket closed), without waiting: it clears it with the peer. An object the endpoint no
    /// longer knows (it reported it down itself) is ignored.
    fn close_later(&self, tid: u32, sid: Option<u32>);

    /// Clear a call whose PPP link went down, without waiting: CDN with `result_code`, the
    /// text as Error Message (with the generic error code) when given, and the RFC 3145 PPP
    /// Disconnect Cause Code. The endpoint then reports the session down, which deletes it.
    fn clear_ppp_call(
        &self,
        tid: u32,
        sid: u32,
        result: CdnResult,
        error: Option<String>,
        cause: PppDisconnectCause,
    );

    /// A PPP session's pppN came (`Some`) or went (`None`): its administrative state is the
    /// circuit reported to the peer (Circuit Status).
    fn ppp_unit(&self, tid: u32, sid: u32, unit: Option<PppUnit>);
}

/// A PPP session's pppN, watched for Circuit Status.
#[derive(Debug, Clone)]
pub(crate) struct PppUnit {
    pub(crate) name: String,
    pub(crate) ifindex: u32,
    /// Told when the device is up again after it was down (the kernel dropped its routes
    /// and IPv6 addresses meanwhile: the PPP task puts them back).
    pub(crate) back_up: Arc<tokio::sync::Notify>,
}

/// The daemon's objects and their runtime state.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) registry: Arc<Registry>,
    pub(crate) pseudowires: Arc<Pseudowires>,
    pub(crate) ctl: Mutex<Ctl>,
    events: broadcast::Sender<ServerMessage>,
    pub(crate) me: Weak<Store>,
    control: OnceLock<Arc<dyn ControlHandle>>,
    /// Control-plane and PPP counters for the metrics endpoint.
    pub(crate) ops: Arc<crate::metrics::Ops>,
    /// `[datapath] stable_mac`: give new Ethernet pseudowire devices [`stable_mac`] addresses.
    pub(crate) stable_mac: std::sync::atomic::AtomicBool,
    /// This daemon's data-path settings ([`DataPathConfig`]), read when a socket or session
    /// starts.
    pub(crate) datapath: std::sync::Mutex<DataPathConfig>,
    /// Deletes the devices of deleted sessions in batches (`reaper.rs`).
    pub(crate) reaper: Reaper,
    /// The numbers of the `l2tpethN` and `pppN` devices (`names.rs`).
    pub(crate) eth_names: Arc<Names>,
    pub(crate) ppp_names: Arc<Names>,
    /// The shared PPP devices (`ppp_shared.rs`).
    pub(crate) ppp_shared: crate::ppp_shared::SharedDevices,
}

impl Store {
    /// A store with no tunnels.
    pub(crate) fn new() -> Arc<Store> {
        let (events, _) = broadcast::channel(4096);
        let d = Arc::new_cyclic(|me| Store {
            registry: Arc::new(Registry::new()),
            pseudowires: Arc::new(Pseudowires::default()),
            ctl: Mutex::new(Ctl::default()),
            events,
            me: me.clone(),
            control: OnceLock::new(),
            ops: Arc::default(),
            stable_mac: std::sync::atomic::AtomicBool::new(false),
            datapath: std::sync::Mutex::new(DataPathConfig::default()),
            reaper: Reaper::start(),
            eth_names: Arc::new(Names::new("l2tpeth")),
            ppp_names: Arc::new(Names::new("ppp")),
            ppp_shared: Default::default(),
        });
        // Trace events (docs/reference/kernel.md §9.2) go to the log and to monitors, for the objects they
        // are switched on for.
        let ev = d.events.clone();
        d.registry
            .set_trace_sink(Some(Arc::new(move |e: &ul2tp_core::TraceEvent| {
                tracing::info!(target: "l2tp", "{}: {}", e.name(), e);
                let _ = ev.send(ServerMessage {
                    event: Some(Command::TraceSet),
                    text: Some(format!("{}: {}", e.name(), e)),
                    ..ServerMessage::default()
                });
            })));
        d
    }

    /// Connect the running control plane (once).
    pub(crate) fn set_control(&self, cp: Arc<dyn ControlHandle>) {
        let _ = self.control.set(cp);
    }

    /// The control plane, if it runs.
    pub(crate) fn control(&self) -> Option<&dyn ControlHandle> {
        self.control.get().map(|cp| &**cp)
    }

    /// Subscribe to notifications.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ServerMessage> {
        self.events.subscribe()
    }

    pub(crate) fn notify(&self, cmd: Command, attrs: Attrs) {
        // "No listeners" is not an error (docs/reference/kernel.md §4.9).
        let _ = self.events.send(ServerMessage::event(cmd, attrs));
    }

    pub(crate) fn tunnel_attrs(&self, ctl: &Ctl, tid: u32) -> Option<Attrs> {
        let t = self.registry.tunnel_get(tid)?;
        let rt = ctl.tunnels.get(&tid)?;
        let p = t.params();
        let mut a = Attrs {
            proto_version: Some(p.version.as_u8()),
            conn_id: Some(p.tunnel_id),
            peer_conn_id: Some(p.peer_tunnel_id),
            debug: Some(0),
            encap_type: Some(match p.encap {
                Encap::Udp => encap_type::UDP,
                Encap::Ip => encap_type::IP,
            }),
            stats: Some(t.stats()),
            ..Attrs::default()
        };
        // Addresses and ports are read from the live socket (docs/reference/kernel.md §4.8).
        let local = rt.sock.socket.local_addr().ok();
        let peer = rt.sock.socket.peer_addr().ok();
        let udp = p.encap == Encap::Udp;
        match (local, peer) {
            (Some(SocketAddr::V4(l)), Some(SocketAddr::V4(r))) => {
                if udp {
                    a.udp_csum = Some(u8::from(rt.info.udp_csum));
                    a.udp_sport = Some(l.port());
                    a.udp_dport = Some(r.port());
                }
                a.ip_saddr = Some(*l.ip());
                a.ip_daddr = Some(*r.ip());
            }
            (Some(SocketAddr::V6(l)), Some(SocketAddr::V6(r))) => {
                if udp {
                    if rt.info.zero_csum6_tx {
                        a.udp_zero_csum6_tx = Some(true);
                    }
                    if rt.info.zero_csum6_rx {
                        a.udp_zero_csum6_rx = Some(true);
                    }
                    a.udp_sport = Some(l.port());
                    a.udp_dport = Some(r.port());
                }
                a.ip6_saddr = Some(*l.ip());
                a.ip6_daddr = Some(*r.ip());
            }
            _ => {}
        }
        if let Some(f) = &rt.facts {
            a.peer_host_name = Some(f.peer_host_name.clone());
            a.lns_profile = f.lns_profile.clone();
        }
        Some(a)
    }

    /// Register a socket and start its receive task.
    pub(crate) fn add_socket(
        &self,
        ctl: &mut Ctl,
        socket: TunnelSocket,
        inode: Option<u64>,
    ) -> Arc<SocketRt> {
        ctl.next_socket += 1;
        let id = SocketId(ctl.next_socket);
        let socket = Arc::new(socket);
        let upcall = Arc::new(ArcSwapOption::empty());
        let control_only = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let encap = match socket.transport() {
            Encap::Udp => "udp",
            Encap::Ip => "ip",
        };
        let counters = self.ops.socket_counters(
            Some(id),
            encap,
            socket.local_addr().ok(),
            socket.peer_addr().ok(),
        );
        let ctx = RxContext {
            registry: self.registry.clone(),
            pseudowires: self.pseudowires.clone(),
            upcall: upcall.clone(),
            config: self.datapath_config(),
            control_only: control_only.clone(),
            counters: counters.clone(),
        };
        // An application's socket keeps its options: its error queue stays off (the
        // application reads its own errors).
        let errors = inode.is_none().then(|| {
            Task(tokio::spawn(datapath::tunnel_errors(
                socket.clone(),
                counters,
            )))
        });
        // An application's socket (it has an inode here and the application a copy) keeps
        // its socket options: no UDP_GRO.
        let rx = Task(tokio::spawn(datapath::tunnel_rx(
            ctx,
            socket.clone(),
            id,
            inode.is_none(),
        )));
        Arc::new(SocketRt {
            socket,
            id,
            upcall,
            control_only,
            inode,
            _rx: rx,
            _errors: errors,
        })
    }

    /// This daemon's data-path settings now.
    pub(crate) fn datapath_config(&self) -> DataPathConfig {
        *self
            .datapath
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The socket of an unmanaged tunnel from `l` to `r`: a new one, or the socket of a
    /// tunnel with the same encapsulation, addresses and checksum options.
    pub(crate) fn unmanaged_socket(
        &self,
        ctl: &mut Ctl,
        encap: Encap,
        l: SocketAddr,
        r: SocketAddr,
        info: &TunnelInfo,
    ) -> ApiResult<Arc<SocketRt>> {
        let key = SocketKey {
            encap,
            local: l,
            remote: r,
            opts: (info.udp_csum, info.zero_csum6_tx, info.zero_csum6_rx),
        };
        // Share the socket of a tunnel with the same addresses (beyond the kernel); a port 0
        // (ephemeral) socket is never shared.
        let shared = (l.port() != 0 || encap == Encap::Ip)
            .then(|| ctl.sockets.get(&key).and_then(Weak::upgrade))
            .flatten();
        let sock = match shared {
            Some(s) => s,
            None => {
                // docs/reference/kernel.md §5.5: the daemon creates the tunnel socket itself.
                let socket = match encap {
                    Encap::Udp => {
                        let opts = UdpOptions {
                            csum_tx_v4: info.udp_csum,
                            zero_csum6_tx: info.zero_csum6_tx,
                            zero_csum6_rx: info.zero_csum6_rx,
                        };
                        TunnelSocket::Udp(
                            UdpTunnelSocket::open(l, r, opts)
                                .map_err(|e| io_err("tunnel socket", e))?,
                        )
                    }
                    Encap::Ip => TunnelSocket::Ip(
                        IpTunnelSocket::open(l.ip(), r.ip())
                            .map_err(|e| io_err("tunnel socket", e))?,
                    ),
                };
                let s = self.add_socket(ctl, socket, None);
                ctl.sockets.retain(|_, w| w.strong_count() > 0);
                ctl.sockets.insert(key, Arc::downgrade(&s));
                s
            }
        };
        Ok(sock)
    }

    /// Register a tunnel on a socket (the common tail of every create path).
    pub(crate) fn register_tunnel(
        &self,
        ctl: &mut Ctl,
        p: TunnelParams,
        sock: Arc<SocketRt>,
        info: TunnelInfo,
    ) -> ApiResult<()> {
        let tid = p.tunnel_id;
        self.registry
            .tunnel_create(p)
            .map_err(|e| ApiError::new(e, format!("cannot create tunnel {tid}")))?;
        ctl.tunnels.insert(
            tid,
            TunnelRt {
                sock,
                info,
                tasks: Vec::new(),
                l2tpip: None,
                facts: None,
            },
        );
        if let Some(attrs) = self.tunnel_attrs(ctl, tid) {
            self.notify(Command::TunnelCreate, attrs);
        }
        Ok(())
    }

    pub(crate) fn tunnel_delete_locked(&self, ctl: &mut Ctl, tid: u32) -> ApiResult<()> {
        if ctl.dynamic.remove(&tid) {
            if let Some(cp) = self.control.get() {
                cp.close_later(tid, None);
            }
        }
        let attrs = self
            .tunnel_attrs(ctl, tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        // The notification goes out before the delete (docs/reference/kernel.md §4.2).
        self.notify(Command::TunnelDelete, attrs);
        let sessions = self
            .registry
            .tunnel_delete(tid)
            .map_err(|e| ApiError::new(e, format!("no tunnel {tid}")))?;
        for s in sessions {
            let key = (tid, s.session_id());
            self.retire_pseudowire(key);
            ctl.sessions.remove(&key);
            ctl.attached.remove(&key);
        }
        ctl.tunnels.remove(&tid);
        tracing::info!(tunnel_id = tid, "tunnel {tid} deleted");
        Ok(())
    }

    /// Detach a session's device; an Ethernet pseudowire's TAP goes to the reaper, which
    /// deletes it with others in one batch (rather than a 10 ms unregistration each here).
    pub(crate) fn retire_pseudowire(&self, key: (u32, u32)) {
        if let Some(pw) = self.pseudowires.remove(key) {
            if let Pseudowire::Eth(tap) = &*pw {
                let (ifindex, name) = (tap.ifindex(), tap.name().to_string());
                self.reaper
                    .reap(ifindex, &name, Box::new(pw), Some(self.eth_names.clone()));
            }
        }
    }

    /// A new Ethernet pseudowire device: named `name`, or the lowest free `l2tpethN`
    /// (`names.rs`; a name with `%d` is left to the kernel).
    /// It has one queue per data-path worker (`workers.rs`).
    pub(crate) fn create_tap(&self, name: Option<&str>) -> std::io::Result<EthDev> {
        let queues = crate::workers::queues(self.datapath_config().workers);
        let counters = self.ops.workers.clone();
        let create = |n: &str| {
            EthDev::create(
                n,
                ul2tp_sys::tap::L2TPETH_TEMPLATE,
                queues,
                counters.clone(),
            )
        };
        match name {
            Some(n) => create(n),
            None => self.eth_names.create(create),
        }
    }

    /// Drop a device [`Store::create_tap`] made that is not used after all.
    pub(crate) fn discard_tap(&self, tap: EthDev) {
        let name = tap.name().to_string();
        drop(tap);
        self.eth_names.release_name(&name);
    }

    pub(crate) fn find_session(&self, a: &Attrs) -> ApiResult<Arc<Session>> {
        // docs/reference/kernel.md §4.7: IFNAME wins; missing attributes or no match are ENODEV.
        let s = if let Some(name) = &a.ifname {
            self.registry.session_by_ifname(name)
        } else {
            match (a.conn_id, a.session_id) {
                (Some(t), Some(s)) => self.registry.session_get(t, s),
                _ => None,
            }
        };
        s.ok_or_else(|| ApiError::new(Errno::ENODEV, "no such session"))
    }

    /// Attach the data path of a newly registered session: its device and timers.
    pub(crate) fn start_session(
        &self,
        ctl: &mut Ctl,
        session: &Arc<Session>,
        tap: Option<EthDev>,
    ) -> ApiResult<()> {
        let (tid, sid) = (session.tunnel_id(), session.session_id());
        let rt = ctl
            .tunnels
            .get(&tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        let mut tasks = Vec::new();
        if let Some(tap) = tap {
            // docs/reference/kernel.md §6.2: MTU from the tunnel socket's path MTU and the header length.
            let mtu = session.eth_mtu(rt.sock.socket.is_ipv6(), rt.sock.socket.path_mtu());
            if let Err(e) = tap.set_mtu(mtu) {
                tracing::warn!("{}: cannot set MTU {mtu}: {e}", tap.name());
            }
            let queues = tap.queue_count();
            let pw = Arc::new(Pseudowire::Eth(tap));
            self.pseudowires.insert((tid, sid), pw.clone());
            // One transmit loop per queue (worker); with several, a lock keeps a sequenced
            // session's datagrams in Ns order.
            let seq_lock = (queues > 1).then(|| Arc::new(Mutex::new(())));
            for queue in 0..queues {
                tasks.push(Task(tokio::spawn(datapath::eth_tx(datapath::EthTx {
                    session: session.clone(),
                    pw: pw.clone(),
                    queue,
                    sock: rt.sock.socket.clone(),
                    config: self.datapath_config(),
                    seq_lock: seq_lock.clone(),
                }))));
            }
        }
        tasks.push(Task(datapath::start_reorder_timer(
            session,
            &self.pseudowires,
        )));
        ctl.sessions.insert(
            (tid, sid),
            SessionRt {
                tasks,
                had_socket: false,
                ppp: None,
                ppp_ipv6: None,
                peer_circuit_down: Default::default(),
            },
        );
        Ok(())
    }

    pub(crate) fn session_delete_locked(&self, ctl: &mut Ctl, s: &Arc<Session>) -> ApiResult<()> {
        let key = (s.tunnel_id(), s.session_id());
        if ctl.dynamic.contains(&key.0) {
            if let Some(cp) = self.control.get() {
                cp.close_later(key.0, Some(key.1));
            }
        }
        self.notify(Command::SessionDelete, session_attrs(s, ctl));
        self.registry
            .session_delete(key.0, key.1)
            .map_err(|e| ApiError::new(e, "no such session"))?;
        self.retire_pseudowire(key);
        ctl.sessions.remove(&key);
        ctl.attached.remove(&key);
        tracing::info!(
            tunnel_id = key.0,
            session_id = key.1,
            "session {} in tunnel {} deleted",
            key.1,
            key.0
        );
        Ok(())
    }
}

/// Session reply attributes (docs/reference/kernel.md §4.8).
pub(crate) fn session_attrs(s: &Session, ctl: &Ctl) -> Attrs {
    let mut a = base_session_attrs(s, ctl);
    let info = ctl
        .sessions
        .get(&(s.tunnel_id(), s.session_id()))
        .and_then(|rt| rt.ppp.as_ref())
        .map(|i| i.lock().unwrap_or_else(|e| e.into_inner()).clone());
    if let Some(i) = info {
        a.ppp_user = i.user;
        a.ppp_ifname = i.ifname;
        a.ppp_local = i.addrs.map(|x| x.0);
        a.ppp_peer = i.addrs.map(|x| x.1);
        a.ppp_online = i.up_since.map(|t| t.elapsed().as_secs());
        a.ppp_profile = i.profile;
        a.ppp_pool = i.pool;
        a.ppp_routes = (!i.routes.is_empty())
            .then(|| i.routes.iter().map(|(d, l)| format!("{d}/{l}")).collect());
    }
    a
}

fn base_session_attrs(s: &Session, ctl: &Ctl) -> Attrs {
    let p = s.params();
    let shown = ctl
        .sessions
        .get(&(s.tunnel_id(), p.session_id))
        .and_then(|r| r.ppp_ipv6.as_ref())
        .map(|l| l.get())
        .unwrap_or_default();
    let ppp_ipv6_prefix = shown.prefix.map(|a| format!("{a}/64"));
    let ppp_ipv6_delegated = shown.delegated.map(|(a, l)| format!("{a}/{l}"));
    // PPP sessions never report IFNAME (docs/reference/kernel.md §4.3).
    let ifname = if p.pw_type == PwType::Ppp {
        None
    } else {
        p.ifname.clone()
    };
    Attrs {
        conn_id: Some(s.tunnel_id()),
        session_id: Some(p.session_id),
        peer_conn_id: Some(s.peer_tunnel_id()),
        peer_session_id: Some(p.peer_session_id),
        debug: Some(0),
        pw_type: Some(u16::from(p.pw_type)),
        ifname,
        cookie: (!p.cookie.is_empty()).then(|| cookie_hex(p.cookie.as_bytes())),
        peer_cookie: (!p.peer_cookie.is_empty()).then(|| cookie_hex(p.peer_cookie.as_bytes())),
        recv_seq: Some(u8::from(p.recv_seq)),
        send_seq: Some(u8::from(p.send_seq)),
        lns_mode: Some(u8::from(p.lns_mode)),
        recv_timeout: (p.reorder_timeout_ms != 0).then_some(p.reorder_timeout_ms),
        vlan_id: p.vlan_id,
        stats: Some(s.stats()),
        ppp_ipv6_prefix,
        ppp_ipv6_delegated,
        ..Attrs::default()
    }
}

/// The stable MAC address of the Ethernet pseudowire of session `session_id` in tunnel
/// `tunnel_id` (`[datapath] stable_mac`, docs/config.md): `02` (locally administered,
/// unicast) followed by the low 40 bits of the 64-bit FNV-1a hash of the 8 bytes
/// `tunnel_id` (big-endian) then `session_id` (big-endian). A fixed function: the same ids give
/// the same address on every run, host and build.
pub fn stable_mac(tunnel_id: u32, session_id: u32) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tunnel_id
        .to_be_bytes()
        .into_iter()
        .chain(session_id.to_be_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

impl Store {
    /// Give the new Ethernet pseudowire device `dev` of (`tid`, `sid`) its stable address
    /// when `[datapath] stable_mac` is on (before anything brings it up).
    pub(crate) fn apply_stable_mac(&self, dev: &str, tid: u32, sid: u32) -> std::io::Result<()> {
        if self.stable_mac.load(std::sync::atomic::Ordering::Relaxed) {
            ul2tp_sys::link::set_hwaddr(dev, stable_mac(tid, sid))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod stable_mac_tests {
    use super::stable_mac;

    #[test]
    fn stable_macs_are_local_unicast_fixed_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for tid in [1u32, 2, 1000, 3000, u32::MAX] {
            for sid in [1u32, 2, 3, 100, u32::MAX] {
                let m = stable_mac(tid, sid);
                assert_eq!(m[0] & 0x03, 0x02, "{m:02x?}: locally administered unicast");
                assert_eq!(m, stable_mac(tid, sid));
                assert!(seen.insert(m), "{tid}/{sid} collides");
            }
        }
        // Swapped ids differ too.
        assert_ne!(stable_mac(1, 2), stable_mac(2, 1));
        // The documented function, pinned (FNV-1a 64 of 00 00 0b b8 00 00 00 01 and of
        // 00 00 00 01 00 00 00 01, as computed independently).
        assert_eq!(stable_mac(3000, 1), [0x02, 0x8a, 0xbe, 0x3a, 0x97, 0xb1]);
        assert_eq!(stable_mac(1, 1), [0x02, 0x07, 0xaa, 0xca, 0xd1, 0x15]);
    }
}
