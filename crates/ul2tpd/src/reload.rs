//! The static tunnels and sessions of the configuration file: created at start-up, and made to
//! match the file again when it is re-read (SIGHUP).
//!
//! [`Statics`] remembers which running objects the file created (by identity, not only by
//! id: an object the API created, even under the same ids after the file's object was
//! deleted, is never touched). A reload checks the file with the same validation as start-up
//! ([`Config::check`]); a file that fails changes nothing. Otherwise:
//!
//! * objects no longer in the file are deleted (sessions, then tunnels);
//! * objects in the file that are not running (new, or deleted through the API since) are
//!   created, tunnels before their sessions; a session is only added to a tunnel the file
//!   created;
//! * for objects in both, what a SESSION_MODIFY can change (`seq`, `lns_mode`,
//!   `reorder_timeout`) is changed live; any other difference (addresses, ports, ids,
//!   cookies, names, pseudowire type, ...) is logged and left as it is;
//! * `[api] group` and `read_group` apply to connections accepted afterwards; changes to
//!   `[api] socket`, `[control]`, `[metrics]` and `[datapath]` are logged and take effect at the next start;
//! * `[radius]` is handed to the running RADIUS client (`radius.rs`: new requests use the new
//!   servers, secret and timeouts; the DAE listener moves with `dae_listen`); adding or
//!   removing the table takes effect at the next start;
//! * `[[lns]]` profiles apply to tunnels LACs open afterwards (established tunnels keep theirs);
//! * `[[lac]]` profiles are handed to the dialer (`dial.rs`: new ones start, changed ones apply
//!   from their next attempt, removed ones are hung up).
//!
//! Every change is one log line, followed by a summary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use ul2tp_api::{Attrs, Command, Request};
use ul2tp_core::{Session, Tunnel};

use crate::config::{Checked, Config, StaticObject};
use crate::Daemon;

/// A static object's identity: tunnels sort before sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Tunnel(u32),
    Session(u32, u32),
}

impl Key {
    fn of(o: &StaticObject) -> Key {
        let tid = o.attrs.conn_id.unwrap_or(0);
        match (o.is_session, o.attrs.session_id) {
            (true, Some(sid)) => Key::Session(tid, sid),
            _ => Key::Tunnel(tid),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Tunnel(t) => write!(f, "tunnel {t}"),
            Key::Session(t, s) => write!(f, "session {s} in tunnel {t}"),
        }
    }
}

/// The running object a file entry created.
#[derive(Debug, Clone)]
enum Handle {
    Tunnel(Weak<Tunnel>),
    Session(Weak<Session>),
}

#[derive(Debug, Clone)]
struct Owned {
    /// The create request as it is running (live changes applied).
    obj: StaticObject,
    handle: Handle,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects created.
    pub added: usize,
    /// Objects deleted.
    pub removed: usize,
    /// Sessions changed live.
    pub changed: usize,
    /// Objects or sections whose change cannot be made live (left as they are).
    pub kept: usize,
    /// Changes that failed (logged).
    pub failed: usize,
}

/// The static objects of the configuration file and the sections they were loaded with.
#[derive(Debug)]
pub struct Statics {
    path: PathBuf,
    config: Config,
    objects: BTreeMap<Key, Owned>,
    /// The API permissions to update when `[api]` groups change, and the API socket whose
    /// group and mode follow them.
    access: Option<(crate::server::SharedAccess, PathBuf)>,
}

/// The live-changeable attributes of a session (SESSION_MODIFY, docs/reference/kernel.md §4.7).
fn live(a: &Attrs) -> (bool, bool, bool, u64) {
    (
        a.send_seq.is_some_and(|v| v & 1 == 1),
        a.recv_seq.is_some_and(|v| v & 1 == 1),
        a.lns_mode.is_some_and(|v| v & 1 == 1),
        a.recv_timeout.unwrap_or(0),
    )
}

fn without_live(a: &Attrs) -> Attrs {
    Attrs {
        send_seq: None,
        recv_seq: None,
        lns_mode: None,
        recv_timeout: None,
        ..a.clone()
    }
}

fn seq_word(send: bool, recv: bool) -> &'static str {
    match (send, recv) {
        (false, false) => "none",
        (true, false) => "send",
        (false, true) => "recv",
        (true, true) => "both",
    }
}

/// The configuration keys whose values differ between two create requests.
fn differing_keys(a: &Attrs, b: &Attrs) -> Vec<&'static str> {
    let (Ok(serde_json::Value::Object(x)), Ok(serde_json::Value::Object(y))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return vec!["?"];
    };
    let names: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
    let out: BTreeSet<&'static str> = names
        .into_iter()
        .filter(|k| x.get(*k) != y.get(*k))
        .map(|k| match k.as_str() {
            "conn_id" => "tunnel_id",
            "peer_conn_id" => "peer_tunnel_id",
            "proto_version" => "version",
            "encap_type" => "encap",
            "ip_saddr" | "ip6_saddr" => "local",
            "ip_daddr" | "ip6_daddr" => "remote",
            "udp_sport" => "udp_sport",
            "udp_dport" => "udp_dport",
            "udp_csum" => "udp_csum",
            "udp_zero_csum6_tx" => "udp6_csum_tx",
            "udp_zero_csum6_rx" => "udp6_csum_rx",
            "peer_session_id" => "peer_session_id",
            "ifname" => "name",
            "cookie" => "cookie",
            "peer_cookie" => "peer_cookie",
            "pw_type" => "pw_type",
            "l2spec_type" | "l2spec_len" => "l2spec_type",
            "vlan_id" => "vlan_id",
            "send_seq" | "recv_seq" => "seq",
            "lns_mode" => "lns_mode",
            "recv_timeout" => "reorder_timeout",
            _ => "?",
        })
        .collect();
    out.into_iter().collect()
}

fn request(cmd: Command, attrs: Attrs) -> Request {
    Request {
        seq: 0,
        cmd,
        dump: false,
        attrs,
    }
}

impl Statics {
    /// Create the checked file's objects (start-up). The first failure is returned as
    /// `FILE:LINE: cannot create ...: reason`; what was created before it stays.
    pub async fn start(daemon: &Daemon, path: &Path, checked: Checked) -> Result<Statics, String> {
        let mut s = Statics {
            path: path.to_path_buf(),
            config: Config {
                tunnel: Vec::new(),
                ..checked.config
            },
            objects: BTreeMap::new(),
            access: None,
        };
        for obj in checked.statics {
            s.create(daemon, obj)
                .await
                .map_err(|e| format!("{}:{e}", path.display()))?;
        }
        Ok(s)
    }

    /// Let reloads change the API permissions (`[api] group`, `read_group`) of new
    /// connections, and the group and mode of the API socket at `socket`.
    pub fn set_access(&mut self, access: crate::server::SharedAccess, socket: PathBuf) {
        self.access = Some((access, socket));
    }

    /// The static objects known to be running (for tests and logs).
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the file declared nothing.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Create one object and remember it; the error reads `LINE: cannot create ...: reason`.
    async fn create(&mut self, daemon: &Daemon, obj: StaticObject) -> Result<(), String> {
        let key = Key::of(&obj);
        let fail = |e: &dyn std::fmt::Display| format!("{}: cannot create {key}: {e}", obj.line);
        if let Key::Session(tid, _) = key {
            // Never add a session to a tunnel the file did not create.
            if !self.running(daemon, Key::Tunnel(tid)) {
                return Err(fail(&format!(
                    "tunnel {tid} is not a tunnel of the configuration file"
                )));
            }
        }
        let cmd = if obj.is_session {
            Command::SessionCreate
        } else {
            Command::TunnelCreate
        };
        let reply = daemon
            .handle(request(cmd, obj.attrs.clone()), Vec::new())
            .await;
        if let Some(e) = reply.0.error {
            return Err(fail(&e));
        }
        let reg = daemon.registry();
        let handle = match key {
            Key::Tunnel(t) => reg
                .tunnel_get(t)
                .map(|t| Handle::Tunnel(Arc::downgrade(&t))),
            Key::Session(t, s) => reg
                .session_get(t, s)
                .map(|s| Handle::Session(Arc::downgrade(&s))),
        };
        let handle = handle.ok_or_else(|| fail(&"gone right after its creation"))?;
        self.objects.insert(key, Owned { obj, handle });
        Ok(())
    }

    /// Whether the object the file created under `key` is still the one registered.
    fn running(&self, daemon: &Daemon, key: Key) -> bool {
        let Some(o) = self.objects.get(&key) else {
            return false;
        };
        let reg = daemon.registry();
        match (&o.handle, key) {
            (Handle::Tunnel(w), Key::Tunnel(t)) => reg
                .tunnel_get(t)
                .is_some_and(|cur| std::ptr::eq(Arc::as_ptr(&cur), w.as_ptr())),
            (Handle::Session(w), Key::Session(t, s)) => reg
                .session_get(t, s)
                .is_some_and(|cur| std::ptr::eq(Arc::as_ptr(&cur), w.as_ptr())),
            _ => false,
        }
    }

    /// Re-read the file and apply it (SIGHUP). A file that fails its checks is logged with
    /// file, line and key and changes nothing (`Err` with the message).
    pub async fn reload(&mut self, daemon: &Daemon) -> Result<Summary, String> {
        let checked = Config::check_file(&self.path).map_err(|e| {
            let m = format!("reload: {e}; nothing changed");
            tracing::error!("{m}");
            m
        })?;
        let file = self.path.display().to_string();
        let mut sum = Summary::default();
        // [limits] first, so that they hold for the objects added below. Lower caps keep
        // the objects there are and only refuse new ones.
        if checked.config.limits != self.config.limits {
            daemon.registry().set_limits(checked.config.limits.into());
            tracing::info!("reload: [limits] now {:?}", checked.config.limits);
            self.config.limits = checked.config.limits;
            sum.changed += 1;
        }
        let wanted: BTreeMap<Key, StaticObject> = checked
            .statics
            .into_iter()
            .map(|o| (Key::of(&o), o))
            .collect();

        // Forget objects deleted through the API since; those still in the file are
        // created again below.
        let gone: Vec<Key> = self
            .objects
            .keys()
            .copied()
            .filter(|k| !self.running(daemon, *k))
            .collect();
        for k in gone {
            self.objects.remove(&k);
            if !wanted.contains_key(&k) {
                tracing::info!("reload: {k} was already deleted");
            }
        }

        // 1. Removed from the file: sessions first (keys sort tunnels first, so go in reverse).
        let removed: Vec<Key> = self
            .objects
            .keys()
            .rev()
            .copied()
            .filter(|k| !wanted.contains_key(k))
            .collect();
        for k in removed {
            if !self.running(daemon, k) {
                // Deleted through the API while this reload ran.
                self.objects.remove(&k);
                continue;
            }
            let (cmd, attrs) = match k {
                Key::Tunnel(t) => (
                    Command::TunnelDelete,
                    Attrs {
                        conn_id: Some(t),
                        ..Attrs::default()
                    },
                ),
                Key::Session(t, s) => (
                    Command::SessionDelete,
                    Attrs {
                        conn_id: Some(t),
                        session_id: Some(s),
                        ..Attrs::default()
                    },
                ),
            };
            let reply = daemon.handle(request(cmd, attrs), Vec::new()).await;
            match reply.0.error {
                None => {
                    tracing::info!("reload: {k} removed (no longer in {file})");
                    sum.removed += 1;
                    self.objects.remove(&k);
                }
                Some(e) => {
                    tracing::error!("reload: cannot remove {k}: {e}");
                    sum.failed += 1;
                }
            }
        }

        // 2. In both: change what can be changed live.
        for (k, new) in &wanted {
            let Some(old) = self.objects.get_mut(k) else {
                continue;
            };
            let line = new.line;
            old.obj.line = line;
            let fixed_diff =
                differing_keys(&without_live(&old.obj.attrs), &without_live(&new.attrs));
            if !new.is_session {
                let diff = differing_keys(&old.obj.attrs, &new.attrs);
                if !diff.is_empty() {
                    tracing::warn!(
                        "reload: {k} ({file}:{line}): {} changed in the file; a tunnel cannot change live, left as it is (remove it, reload, add it again)",
                        diff.join(", ")
                    );
                    sum.kept += 1;
                }
                continue;
            }
            if !fixed_diff.is_empty() {
                tracing::warn!(
                    "reload: {k} ({file}:{line}): {} changed in the file; cannot change live, left as it is (remove it, reload, add it again)",
                    fixed_diff.join(", ")
                );
                sum.kept += 1;
            }
            let (os, or, ol, ot) = live(&old.obj.attrs);
            let (ns, nr, nl, nt) = live(&new.attrs);
            if (os, or, ol, ot) == (ns, nr, nl, nt) {
                continue;
            }
            let mut what = Vec::new();
            let mut m = Attrs {
                conn_id: new.attrs.conn_id,
                session_id: new.attrs.session_id,
                ..Attrs::default()
            };
            if (os, or) != (ns, nr) {
                m.send_seq = Some(u8::from(ns));
                m.recv_seq = Some(u8::from(nr));
                what.push(format!("seq {} -> {}", seq_word(os, or), seq_word(ns, nr)));
            }
            if ol != nl {
                m.lns_mode = Some(u8::from(nl));
                what.push(format!("lns_mode {ol} -> {nl}"));
            }
            if ot != nt {
                m.recv_timeout = Some(nt);
                what.push(format!("reorder_timeout {ot} -> {nt}"));
            }
            let reply = daemon
                .handle(request(Command::SessionModify, m), Vec::new())
                .await;
            match reply.0.error {
                None => {
                    tracing::info!("reload: {k} ({file}:{line}): {}", what.join(", "));
                    for (dst, src) in [
                        (&mut old.obj.attrs.send_seq, new.attrs.send_seq),
                        (&mut old.obj.attrs.recv_seq, new.attrs.recv_seq),
                        (&mut old.obj.attrs.lns_mode, new.attrs.lns_mode),
                    ] {
                        *dst = src;
                    }
                    old.obj.attrs.recv_timeout = new.attrs.recv_timeout;
                    sum.changed += 1;
                }
                Some(e) => {
                    tracing::error!("reload: cannot change {k}: {e}");
                    sum.failed += 1;
                }
            }
        }

        // 3. New in the file (or deleted through the API since): tunnels, then sessions.
        for (k, new) in wanted {
            if self.objects.contains_key(&k) {
                continue;
            }
            let line = new.line;
            match self.create(daemon, new).await {
                Ok(()) => {
                    tracing::info!("reload: {k} added ({file}:{line})");
                    sum.added += 1;
                }
                Err(e) => {
                    tracing::error!("reload: {file}:{e}");
                    sum.failed += 1;
                }
            }
        }

        // 4. The single tables: the [api] groups apply to new connections; the rest at the
        // next start.
        let new_cfg = checked.config;
        // `[[lac]]`: new profiles start, changed ones apply from their next attempt, removed
        // ones are hung up (dial.rs).
        if self.config.lac != new_cfg.lac {
            match daemon.reload_lac(checked.lac).await {
                Some(s) => {
                    sum.added += s.added;
                    sum.removed += s.removed;
                    sum.changed += s.changed;
                }
                None => {
                    tracing::warn!(
                        "reload: [[lac]] changed in {file}; it takes effect when ul2tpd restarts (no [control] at start-up)"
                    );
                    sum.kept += 1;
                }
            }
            self.config.lac = new_cfg.lac.clone();
        }
        let (old_api, new_api) = (&self.config.api, &new_cfg.api);
        if (&old_api.group, &old_api.read_group) != (&new_api.group, &new_api.read_group) {
            if let Some((access, socket)) = &self.access {
                match crate::server::Access::from_names(
                    new_api.group.as_deref(),
                    new_api.read_group.as_deref(),
                ) {
                    Ok(a) => {
                        if let Err(e) =
                            crate::server::set_socket_permissions(socket, a.socket_gid())
                        {
                            tracing::error!("reload: [api]: {e:#}");
                        }
                        if let Some(why) = a
                            .socket_gid()
                            .and_then(|g| crate::server::directory_blocks(socket, g))
                        {
                            tracing::warn!("reload: {why}");
                        }
                        access.store(Arc::new(a));
                        let show = |g: &Option<String>| g.clone().unwrap_or_else(|| "none".into());
                        tracing::info!(
                            "reload: [api] group {} -> {}, read_group {} -> {} (for new connections)",
                            show(&old_api.group),
                            show(&new_api.group),
                            show(&old_api.read_group),
                            show(&new_api.read_group)
                        );
                        self.config.api.group = new_api.group.clone();
                        self.config.api.read_group = new_api.read_group.clone();
                        sum.changed += 1;
                    }
                    Err(e) => {
                        tracing::error!("reload: [api]: {e}");
                        sum.failed += 1;
                    }
                }
            }
        }
        // [[lns]] profiles: for tunnels opened from now on (established tunnels keep the
        // profile they came up with). A changed [control] is only applied at restart, so the
        // profiles are built on the running [control].
        if self.config.lns_changed(&new_cfg) {
            match self.config.control.as_ref().map(|c| c.settings()) {
                None => {
                    tracing::warn!(
                        "reload: [[lns]] changed in {file}, but the control plane is not running ([control] takes effect when ul2tpd restarts)"
                    );
                    sum.kept += 1;
                }
                Some(s) => match crate::profile::build_all(&new_cfg.lns, &s.config) {
                    Err((_, key, m)) => {
                        tracing::error!(
                            "reload: [[lns]] {key}: {m} (on the running [control]); profiles left as they are"
                        );
                        sum.failed += 1;
                    }
                    Ok(list) => {
                        let names: Vec<String> = list.iter().map(|p| p.name.clone()).collect();
                        let profiles = crate::profile::Profiles {
                            list,
                            default: s.profiles.default,
                        };
                        if daemon.set_lns_profiles(profiles) {
                            tracing::info!(
                                "reload: [[lns]] profiles now {names:?} (for tunnels opened from now on)"
                            );
                            self.config.lns = new_cfg.lns.clone();
                            sum.changed += 1;
                        } else {
                            tracing::error!(
                                "reload: [[lns]]: the control plane is busy; profiles left as they are"
                            );
                            sum.failed += 1;
                        }
                    }
                },
            }
        }
        for (name, changed) in [
            ("api", self.config.api != new_cfg.api),
            ("control", self.config.control != new_cfg.control),
            ("metrics", self.config.metrics != new_cfg.metrics),
            ("datapath", self.config.datapath != new_cfg.datapath),
        ] {
            if changed {
                tracing::warn!(
                    "reload: [{name}] changed in {file}; it takes effect when ul2tpd restarts"
                );
                sum.kept += 1;
            }
        }
        self.reload_radius(daemon, &new_cfg, &file, &mut sum);
        tracing::info!(
            "reloaded {file}: {} added, {} removed, {} changed, {} left as they are, {} failed",
            sum.added,
            sum.removed,
            sum.changed,
            sum.kept,
            sum.failed
        );
        Ok(sum)
    }
}

impl Statics {
    /// `[radius]`: the running client takes the new table (its servers, secret — a
    /// `secret_file` is read again —, timeouts, identity, DAE listener and clients; queued
    /// accounting stays queued). Adding or removing the table takes effect at restart.
    fn reload_radius(&mut self, daemon: &Daemon, new_cfg: &Config, file: &str, sum: &mut Summary) {
        let running = daemon.ops().radius.load_full();
        let host = self
            .config
            .control
            .as_ref()
            .map(|c| c.settings().config.host_name);
        match (running, &new_cfg.radius, host) {
            (Some(r), Some(c), Some(host)) => match r.reconfigure(c, &host) {
                Ok(changed) => {
                    if changed {
                        tracing::info!(
                            "reload: [radius] applied (servers {:?}, for requests from now on)",
                            c.server.list()
                        );
                        sum.changed += 1;
                    }
                    self.config.radius = new_cfg.radius.clone();
                }
                Err((key, m)) => {
                    tracing::error!("reload: [radius] {key}: {m}; the client is left as it was");
                    sum.failed += 1;
                }
            },
            _ if self.config.radius != new_cfg.radius => {
                tracing::warn!(
                    "reload: [radius] changed in {file}, but no RADIUS client runs (or the table was removed); it takes effect when ul2tpd restarts"
                );
                sum.kept += 1;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(text: &str) -> Vec<StaticObject> {
        Config::check(Path::new("t.toml"), text).unwrap().statics
    }

    const T: &str = "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nlocal = \"10.0.0.1\"\nremote = \"10.0.0.2\"\nudp_sport = 1\nudp_dport = 2\n[[tunnel.session]]\nsession_id = 3\npeer_session_id = 4\n";

    #[test]
    fn keys_and_differences_use_the_file_names() {
        let a = objects(T);
        assert_eq!(Key::of(&a[0]), Key::Tunnel(1));
        assert_eq!(Key::of(&a[1]), Key::Session(1, 3));
        assert!(Key::Tunnel(9) < Key::Session(1, 1), "tunnels sort first");
        let b = objects(
            &T.replace("remote = \"10.0.0.2\"", "remote = \"10.0.0.9\"")
                .replace("udp_dport = 2", "udp_dport = 5"),
        );
        assert_eq!(
            differing_keys(&a[0].attrs, &b[0].attrs),
            ["remote", "udp_dport"]
        );
        let c = objects(
            &(T.to_string() + "seq = \"both\"\nreorder_timeout = 50\ncookie = \"00112233\"\n"),
        );
        assert_eq!(
            differing_keys(&a[1].attrs, &c[1].attrs),
            ["cookie", "reorder_timeout", "seq"]
        );
        // Only the cookie cannot change live.
        assert_eq!(
            differing_keys(&without_live(&a[1].attrs), &without_live(&c[1].attrs)),
            ["cookie"]
        );
        assert_eq!(live(&c[1].attrs), (true, true, false, 50));
        assert_eq!(live(&a[1].attrs), (false, false, false, 0));
    }
}
