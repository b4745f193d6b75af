//! The management API server: a Unix stream socket, one JSON request per line, permission
//! checked with SO_PEERCRED (docs/reference/kernel.md §4.1: the kernel wants CAP_NET_ADMIN for everything but
//! NOOP; we want root, or membership of the configured groups).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use ul2tp_api::{decode_line, encode_line, ApiError, Command, Errno, Request, ServerMessage};

use crate::Daemon;

/// Who may do what, from the `[api]` table.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// gid whose members may change state.
    pub admin_gid: Option<u32>,
    /// gid whose members may read.
    pub read_gid: Option<u32>,
}

/// What a peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Privilege {
    /// Only NOOP.
    None,
    /// Reads: get, dump, monitor, debug listings.
    Read,
    /// Everything.
    Admin,
}

fn user_groups(uid: u32, gid: u32) -> Vec<u32> {
    let mut groups = vec![gid];
    if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        if let Ok(name) = std::ffi::CString::new(user.name) {
            if let Ok(list) = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid)) {
                groups.extend(list.into_iter().map(|g| g.as_raw()));
            }
        }
    }
    groups
}

impl Access {
    /// Resolve group names.
    pub fn from_names(group: Option<&str>, read_group: Option<&str>) -> anyhow::Result<Access> {
        let lookup = |name: &str| -> anyhow::Result<u32> {
            match nix::unistd::Group::from_name(name) {
                Ok(Some(g)) => Ok(g.gid.as_raw()),
                Ok(None) => anyhow::bail!("group {name:?} does not exist"),
                Err(e) => anyhow::bail!("cannot look up group {name:?}: {e}"),
            }
        };
        Ok(Access {
            admin_gid: group.map(lookup).transpose()?,
            read_gid: read_group.map(lookup).transpose()?,
        })
    }

    /// The group the API socket belongs to: `group`, or `read_group` when only that is set;
    /// none (socket mode 0600, root only) without either.
    pub fn socket_gid(&self) -> Option<u32> {
        self.admin_gid.or(self.read_gid)
    }

    /// The privilege of a peer with these credentials.
    pub fn privilege(&self, uid: u32, gid: u32) -> Privilege {
        if uid == 0 {
            return Privilege::Admin;
        }
        if self.admin_gid.is_none() && self.read_gid.is_none() {
            return Privilege::None;
        }
        let groups = user_groups(uid, gid);
        if self.admin_gid.is_some_and(|g| groups.contains(&g)) {
            Privilege::Admin
        } else if self.read_gid.is_some_and(|g| groups.contains(&g)) {
            Privilege::Read
        } else {
            Privilege::None
        }
    }
}

/// The privilege a command needs.
pub fn required(cmd: Command) -> Privilege {
    match cmd {
        Command::Noop => Privilege::None,
        Command::TunnelGet
        | Command::SessionGet
        | Command::Monitor
        | Command::DebugTunnels
        | Command::DebugPppol2tp
        | Command::LacGet => Privilege::Read,
        Command::TunnelCreate
        | Command::TunnelDelete
        | Command::TunnelModify
        | Command::SessionCreate
        | Command::SessionDelete
        | Command::SessionModify
        | Command::TraceSet
        | Command::Pppol2tpConnect
        | Command::L2tpipSocket
        | Command::ControlConnect
        | Command::ControlSession
        | Command::ControlDisconnect
        | Command::PppStart
        | Command::Dial
        | Command::Hangup => Privilege::Admin,
    }
}

/// Whether `path` is a stale API socket (left behind by a daemon that died, e.g. of SIGKILL:
/// connecting is refused) that [`bind`] may replace; `false` when nothing is there. An error,
/// naming the path, when a live daemon answers on it, or it is not a socket, or connecting
/// fails otherwise. main calls this before creating any static object, so a second daemon
/// started on a live one's socket exits without touching the first one's devices.
pub fn check_stale(path: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => anyhow::bail!("cannot inspect the API socket {}: {e}", path.display()),
    };
    if !meta.file_type().is_socket() {
        anyhow::bail!(
            "the API socket path {} exists and is not a socket; not replacing it",
            path.display()
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => anyhow::bail!(
            "another ul2tpd is already serving the API socket {}; refusing to start",
            path.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(true),
        Err(e) => anyhow::bail!(
            "cannot tell whether the API socket {} is stale: {e}",
            path.display()
        ),
    }
}

/// Bind the API socket: create its directory, replace a stale socket file, and let only its
/// owner (root) and the members of `gid` connect ([`set_socket_permissions`]); the permission
/// check is still per request.
pub fn bind(path: &Path, gid: Option<u32>) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
    }
    if check_stale(path)? {
        std::fs::remove_file(path)
            .map_err(|e| anyhow::anyhow!("cannot remove stale {}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", path.display()))?;
    set_socket_permissions(path, gid)?;
    Ok(l)
}

/// Who may connect to the API socket: mode 0660 and group `gid` when a group is configured
/// (`[api] group`, else `read_group`), mode 0600 (the owner, root, only) otherwise. Never
/// world-writable: connecting needs write permission on the socket file.
pub fn set_socket_permissions(path: &Path, gid: Option<u32>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match gid {
        Some(gid) => {
            std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
                anyhow::anyhow!("cannot give {} to group {gid}: {e}", path.display())
            })?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| anyhow::anyhow!("cannot set the mode of {}: {e}", path.display()))
}

/// Why the members of group `gid` cannot reach the socket at `path` through its directory (no
/// search permission for them), or `None` when they can. systemd's `RuntimeDirectoryMode=0750`
/// makes /run/ul2tp root's alone unless the unit sets `Group=` (docs/operations.md).
pub fn directory_blocks(path: &Path, gid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let meta = std::fs::metadata(dir).ok()?;
    let mode = meta.mode();
    if mode & 0o001 != 0 || (meta.gid() == gid && mode & 0o010 != 0) {
        return None;
    }
    Some(format!(
        "{} (mode {:03o}, group {}) does not let group {gid} reach the API socket; give the directory to that group (with systemd: Group= in the unit)",
        dir.display(),
        mode & 0o777,
        meta.gid()
    ))
}

/// The permissions in force; a reload (SIGHUP) may replace them. A connection's privilege is
/// decided when it is accepted.
pub type SharedAccess = Arc<arc_swap::ArcSwap<Access>>;

/// Connections root may open beyond `[api] max_connections`, so that root is never locked out.
pub const ROOT_RESERVE: usize = 4;

/// The `[api]` connection limits (docs/security.md "Local API limits").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Open connections at most (root: [`ROOT_RESERVE`] more).
    pub max_connections: usize,
    /// Open connections per non-root uid at most.
    pub max_per_uid: usize,
    /// Connections of users who may not change state are closed after this long without a
    /// request (monitors of readers excepted).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        crate::config::ApiConfig::default().limits()
    }
}

/// Open connections, in total and per uid.
#[derive(Debug, Default)]
struct Slots {
    total: usize,
    per_uid: HashMap<u32, usize>,
}

/// One admitted connection; frees its slot when dropped.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    ops: Arc<crate::metrics::Ops>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                s.per_uid.remove(&self.uid);
            }
        }
        self.ops.api.open.fetch_sub(1, Relaxed);
    }
}

/// Admit a connection of `uid`, or say why not.
fn admit(
    slots: &Arc<Mutex<Slots>>,
    ops: &Arc<crate::metrics::Ops>,
    limits: &Limits,
    uid: u32,
) -> Result<Slot, ApiError> {
    let mut s = slots.lock().unwrap_or_else(|e| e.into_inner());
    if uid == 0 {
        if s.total >= limits.max_connections + ROOT_RESERVE {
            return Err(ApiError::new(
                Errno::EMFILE,
                format!(
                    "too many API connections ({} open, [api] max_connections {} + {ROOT_RESERVE} for root)",
                    s.total, limits.max_connections
                ),
            ));
        }
    } else {
        let mine = s.per_uid.get(&uid).copied().unwrap_or(0);
        if mine >= limits.max_per_uid {
            return Err(ApiError::new(
                Errno::EUSERS,
                format!(
                    "too many API connections of uid {uid} ({mine} open, [api] max_connections_per_uid {})",
                    limits.max_per_uid
                ),
            ));
        }
        if s.total >= limits.max_connections {
            return Err(ApiError::new(
                Errno::EMFILE,
                format!(
                    "too many API connections ({} open, [api] max_connections {})",
                    s.total, limits.max_connections
                ),
            ));
        }
    }
    s.total += 1;
    *s.per_uid.entry(uid).or_insert(0) += 1;
    ops.api.open.fetch_add(1, Relaxed);
    Ok(Slot {
        slots: slots.clone(),
        ops: ops.clone(),
        uid,
    })
}

/// Log refusals at most once per [`REJECT_LOG_EVERY`], with the number left unlogged.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Accept connections forever.
pub async fn serve(
    listener: UnixListener,
    daemon: Arc<Daemon>,
    access: SharedAccess,
    path: PathBuf,
    limits: Limits,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    let mut last_log: Option<tokio::time::Instant> = None;
    let mut unlogged = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let uid = match stream.peer_cred() {
                    Ok(c) => c.uid(),
                    Err(e) => {
                        tracing::debug!("api connection without credentials: {e}");
                        continue;
                    }
                };
                let ops = daemon.ops().clone();
                let slot = match admit(&slots, &ops, &limits, uid) {
                    Ok(slot) => slot,
                    Err(e) => {
                        // The socket's buffer is empty: the line fits without waiting.
                        let _ = stream.try_write(&encode_line(&ServerMessage::err(0, e.clone())));
                        drop(stream);
                        // Counted once closed (tests wait for the count).
                        let total = ops.api.rejected.fetch_add(1, Relaxed) + 1;
                        let now = tokio::time::Instant::now();
                        if last_log.is_none_or(|t| now.duration_since(t) >= REJECT_LOG_EVERY) {
                            tracing::warn!(
                                "api connection of uid {uid} refused: {}; {total} refused so far ({unlogged} not logged since the last message)",
                                e.message
                            );
                            last_log = Some(now);
                            unlogged = 0;
                        } else {
                            unlogged += 1;
                        }
                        continue;
                    }
                };
                let (d, a) = (daemon.clone(), access.load_full());
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = connection(stream, d, a, limits.idle_timeout).await {
                        tracing::debug!("api connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                // EMFILE/ENFILE among them: wait for descriptors to be freed.
                tracing::warn!("accept on {}: {e}", path.display());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Longest request line accepted (a request is a few hundred bytes).
const MAX_LINE: usize = 64 * 1024;

async fn connection(
    stream: UnixStream,
    daemon: Arc<Daemon>,
    access: Arc<Access>,
    idle_timeout: Duration,
) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let privilege = access.privilege(cred.uid(), cred.gid());
    // Root and the members of `group` are trusted not to hoard connections.
    let idle = (privilege < Privilege::Admin).then_some(idle_timeout);
    serve_with_idle(stream, daemon, privilege, idle).await
}

/// Serve one API connection whose peer has `privilege` (also used for in-process clients).
pub async fn serve_connection(
    stream: UnixStream,
    daemon: Arc<Daemon>,
    privilege: Privilege,
) -> io::Result<()> {
    serve_with_idle(stream, daemon, privilege, None).await
}

/// Serve one connection; without a request for `idle` (when given) and no monitor
/// subscription, it is closed.
async fn serve_with_idle(
    stream: UnixStream,
    daemon: Arc<Daemon>,
    privilege: Privilege,
    idle: Option<Duration>,
) -> io::Result<()> {
    // Descriptors (managed tunnel sockets) arrive as SCM_RIGHTS with a request line, so the
    // reader side reads with recvmsg; replies and events are written by a task of their own so
    // that a slow reader never blocks the daemon.
    let std_stream = stream.into_std()?;
    let mut writer = UnixStream::from_std(std_stream.try_clone()?)?;
    let reader = UnixStream::from_std(std_stream)?;
    let (tx, mut rx) = mpsc::channel::<(ServerMessage, Vec<OwnedFd>)>(256);
    let writer_task = tokio::spawn(async move {
        while let Some((m, fds)) = rx.recv().await {
            let line = encode_line(&m);
            let r = if fds.is_empty() {
                writer.write_all(&line).await
            } else {
                // Descriptors travel with the first bytes of the reply line.
                let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
                send_line_with_fds(&writer, &line, &raw).await
            };
            if r.is_err() {
                break;
            }
        }
    });
    let mut lines = LineReader::new(reader);
    let mut monitor: Option<broadcast::Receiver<ServerMessage>> = None;
    let idle_at = |d: Duration| tokio::time::Instant::now() + d;
    let idle_sleep = tokio::time::sleep(idle.unwrap_or(Duration::from_secs(86400)));
    tokio::pin!(idle_sleep);
    let result = loop {
        tokio::select! {
            _ = &mut idle_sleep, if idle.is_some() && monitor.is_none() => {
                tracing::debug!("api connection idle for {:?}: closed", idle.unwrap_or_default());
                break Ok(());
            }
            line = lines.next_line() => {
                if let Some(d) = idle {
                    idle_sleep.as_mut().reset(idle_at(d));
                }
                let (line, fds) = match line {
                    Ok(Some(l)) => l,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                };
                let reply = match decode_line::<Request>(&line) {
                    Err(e) => (ServerMessage::err(0, e), Vec::new()),
                    Ok(req) => {
                        let seq = req.seq;
                        if privilege < required(req.cmd) {
                            (ServerMessage::err(seq, ApiError::new(Errno::EPERM, format!(
                                "{} needs root or membership of the configured API group",
                                command_name(req.cmd)))), Vec::new())
                        } else if req.cmd == Command::Monitor {
                            monitor = Some(daemon.subscribe());
                            (ServerMessage::ok(seq), Vec::new())
                        } else {
                            daemon.handle(req, fds).await
                        }
                    }
                };
                if tx.send(reply).await.is_err() { break Ok(()); }
            }
            ev = next_event(&mut monitor) => {
                match ev {
                    Ok(m) => { if tx.send((m, Vec::new())).await.is_err() { break Ok(()); } }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("monitor client lagged, {n} events lost");
                    }
                    Err(broadcast::error::RecvError::Closed) => monitor = None,
                }
            }
        }
    };
    drop(tx);
    let _ = writer_task.await;
    result
}

async fn send_line_with_fds(w: &UnixStream, line: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut sent = loop {
        w.writable().await?;
        match w.try_io(tokio::io::Interest::WRITABLE, || {
            ul2tp_sys::fdpass::send_with_fds(w, line, fds)
        }) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    };
    while sent < line.len() {
        w.writable().await?;
        match w.try_write(&line[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The command's wire name (`tunnel_create`).
pub fn command_name(cmd: Command) -> String {
    serde_json::to_value(cmd)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn next_event(
    m: &mut Option<broadcast::Receiver<ServerMessage>>,
) -> Result<ServerMessage, broadcast::error::RecvError> {
    match m {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Reads request lines together with any descriptors passed alongside them.
struct LineReader {
    stream: UnixStream,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl LineReader {
    fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            fds: Vec::new(),
        }
    }

    async fn next_line(&mut self) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(Some((line, std::mem::take(&mut self.fds))));
            }
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request line too long",
                ));
            }
            self.stream.readable().await?;
            let mut chunk = [0u8; 4096];
            match self.stream.try_io(tokio::io::Interest::READABLE, || {
                ul2tp_sys::fdpass::recv_with_fds(&self.stream, &mut chunk)
            }) {
                Ok((0, _)) => return Ok(None),
                Ok((n, fds)) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    self.fds.extend(fds);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ul2tpd-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn the_socket_is_never_world_writable() {
        let dir = temp_dir("sock");
        let path = dir.join("api.sock");
        let _l = bind(&path, None).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Our own group is one we may give the socket to without privilege.
        let gid = nix::unistd::getegid().as_raw();
        set_socket_permissions(&path, Some(gid)).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.permissions().mode() & 0o777, meta.gid()),
            (0o660, gid)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = temp_dir("stale");
        let path = dir.join("api.sock");
        assert!(!check_stale(&path).unwrap(), "nothing there");
        // A socket file nobody listens on (its listener closed): stale, replaced.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(check_stale(&path).unwrap());
        let live = bind(&path, None).unwrap();
        // Served: refused, naming the path.
        let e = check_stale(&path).unwrap_err().to_string();
        assert!(
            e.contains("already serving") && e.contains(&path.display().to_string()),
            "{e}"
        );
        let e = bind(&path, None).unwrap_err().to_string();
        assert!(e.contains("already serving"), "{e}");
        drop(live);
        // Not a socket: left alone.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "x").unwrap();
        let e = check_stale(&path).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn caps_per_uid_and_total_with_a_reserve_for_root() {
        let slots = Arc::new(Mutex::new(Slots::default()));
        let ops = Arc::new(crate::metrics::Ops::default());
        let limits = Limits {
            max_connections: 4,
            max_per_uid: 2,
            idle_timeout: Duration::from_secs(1),
        };
        let a: Vec<Slot> = (0..2)
            .map(|_| admit(&slots, &ops, &limits, 1000).unwrap())
            .collect();
        assert_eq!(
            admit(&slots, &ops, &limits, 1000).err().unwrap().errno,
            Errno::EUSERS
        );
        let b: Vec<Slot> = (0..2)
            .map(|_| admit(&slots, &ops, &limits, 1001).unwrap())
            .collect();
        assert_eq!(
            admit(&slots, &ops, &limits, 1002).err().unwrap().errno,
            Errno::EMFILE
        );
        let root: Vec<Slot> = (0..ROOT_RESERVE)
            .map(|_| admit(&slots, &ops, &limits, 0).unwrap())
            .collect();
        assert_eq!(
            admit(&slots, &ops, &limits, 0).err().unwrap().errno,
            Errno::EMFILE
        );
        assert_eq!(ops.api.open.load(Relaxed), 8);
        drop((a, root));
        assert_eq!(ops.api.open.load(Relaxed), 2);
        assert!(admit(&slots, &ops, &limits, 1000).is_ok());
        drop(b);
        let s = slots.lock().unwrap();
        assert_eq!((s.total, s.per_uid.len()), (0, 0));
    }

    #[test]
    fn a_closed_directory_is_reported() {
        let dir = temp_dir("dir");
        let path = dir.join("api.sock");
        let gid = nix::unistd::getegid().as_raw();
        let other = gid.wrapping_add(4242);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(directory_blocks(&path, gid), None, "own group may search");
        let why = directory_blocks(&path, other).unwrap();
        assert!(why.contains("mode 750") && why.contains("Group="), "{why}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(directory_blocks(&path, other), None, "world-searchable");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
