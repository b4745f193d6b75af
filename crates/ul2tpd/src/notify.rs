//! The service manager's readiness protocol (sd_notify(3)) without libsystemd: when
//! `NOTIFY_SOCKET` names a Unix datagram socket (a path, or an abstract address written with a
//! leading `@`), the daemon sends `READY=1` once it serves its API and the configured objects
//! and listeners are up, `RELOADING=1` / `READY=1` around a SIGHUP reload and `STOPPING=1` on
//! shutdown. Without `NOTIFY_SOCKET` every call does nothing.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Parse the value of `NOTIFY_SOCKET`: an absolute path, or `@name` for the abstract address
/// `name`. Anything else (empty, relative) is refused like libsystemd does.
pub fn parse_address(value: &OsStr) -> io::Result<SocketAddr> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(value),
        Some(b'@') if bytes.len() > 1 => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(&bytes[1..])
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{NOTIFY_SOCKET_ENV} {value:?} is neither an absolute path nor @abstract"),
        )),
    }
}

/// The `READY=1` message with the object counts and our PID.
pub fn ready_message(tunnels: usize, sessions: usize, pid: u32) -> String {
    format!(
        "READY=1\nSTATUS={}\nMAINPID={pid}\n",
        status_text(tunnels, sessions)
    )
}

/// The `STATUS=` text: what `systemctl status` shows.
pub fn status_text(tunnels: usize, sessions: usize) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    format!(
        "serving: {}, {}",
        plural(tunnels, "tunnel"),
        plural(sessions, "session")
    )
}

/// The `RELOADING=1` message; `MONOTONIC_USEC` is what `Type=notify-reload` (systemd ≥ 253)
/// wants to match the reload with the signal.
pub fn reloading_message(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC={monotonic_usec}\n")
}

/// The `STOPPING=1` message.
pub const STOPPING: &str = "STOPPING=1\nSTATUS=stopping\n";

/// CLOCK_MONOTONIC in microseconds (0 if the clock cannot be read).
pub fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let us = i128::from(t.tv_sec()) * 1_000_000 + i128::from(t.tv_nsec()) / 1000;
            u64::try_from(us).unwrap_or(0)
        }
        Err(_) => 0,
    }
}

/// A connection to the service manager's notification socket, or nothing.
#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`; a notifier that does nothing when it is unset. A malformed value
    /// or a socket that cannot be created is logged once and ignored: readiness is a courtesy
    /// to the service manager, not a reason to fail.
    pub fn from_env() -> Notifier {
        let Some(value) = std::env::var_os(NOTIFY_SOCKET_ENV).filter(|v| !v.is_empty()) else {
            return Notifier::default();
        };
        match parse_address(&value).and_then(|a| UnixDatagram::unbound().map(|s| (s, a))) {
            Ok(target) => Notifier {
                target: Some(target),
            },
            Err(e) => {
                tracing::warn!("{NOTIFY_SOCKET_ENV}: {e}; not notifying the service manager");
                Notifier::default()
            }
        }
    }

    /// Whether messages go anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Send one message (newline-separated `KEY=VALUE` assignments); errors are logged.
    pub fn send(&self, message: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(message.as_bytes(), addr) {
                tracing::warn!("{NOTIFY_SOCKET_ENV}: cannot notify the service manager: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        let a = parse_address(OsStr::new("/run/systemd/notify")).unwrap();
        assert_eq!(
            a.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let a = parse_address(OsStr::new("@/org/freedesktop/systemd1/notify/42")).unwrap();
        assert_eq!(
            a.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify/42"[..])
        );
        assert!(a.as_pathname().is_none());
        for bad in ["", "@", "relative/path", "notify"] {
            assert!(parse_address(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_are_newline_separated_assignments() {
        assert_eq!(
            ready_message(1, 2, 77),
            "READY=1\nSTATUS=serving: 1 tunnel, 2 sessions\nMAINPID=77\n"
        );
        assert_eq!(status_text(0, 1), "serving: 0 tunnels, 1 session");
        assert_eq!(
            reloading_message(123),
            "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=123\n"
        );
        assert!(STOPPING.starts_with("STOPPING=1\n"));
        assert!(monotonic_usec() > 0);
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("ul2tpd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier {
            target: Some((UnixDatagram::unbound().unwrap(), addr)),
        };
        assert!(n.enabled());
        n.send(STOPPING);
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], STOPPING.as_bytes());
        // Without a target nothing happens.
        Notifier::default().send(STOPPING);
    }
}
