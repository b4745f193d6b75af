//! ul2tp-cli: the `ul2tp` command, iproute2's `ip l2tp` rebuilt on ul2tpd's management API.
//!
//! Design: the command line is parsed completely ([`parse`]) into an [`parse::Action`] holding
//! the API requests, exactly as iproute2 maps its grammar onto generic-netlink messages
//! (docs/reference/kernel.md §11.3). Only then is the daemon contacted ([`run`]), and replies are
//! rendered by [`format`](mod@format) in iproute2's text layout or JSON ([`json`] mimics iproute2's JSON
//! writer byte for byte). Everything that decides output is a pure function of its input, so
//! the grammar and formatters are unit-tested without a daemon; the binary itself is tested
//! against a fake API server (tests/cli.rs).
//!
//! Exit status follows iproute2 (docs/reference/kernel.md §11.6): 0 success, 2 the daemon refused a
//! request (`RTNETLINK answers: <strerror>`), 1 for a failed dump (`Dump terminated`), a
//! bad address or an unreachable daemon, 255 for usage and argument errors.
//!
//! One deliberate difference: iproute2 opens its netlink socket before parsing; we parse
//! first, so argument errors are reported even when no daemon is running.
#![forbid(unsafe_code)]

pub mod batch;
pub mod format;
pub mod json;
pub mod lac;
pub mod num;
pub mod parse;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use ul2tp::{Client, ClientError};
use ul2tp_api::{Attrs, Command};

use parse::{Action, Invocation, ShowWhat};

/// Exit status when the daemon refuses a request (iproute2: `-(-2)`).
pub const EXIT_API_ERROR: i32 = 2;
/// Exit status for a failed dump, a bad address or an unreachable daemon.
pub const EXIT_FAILURE: i32 = 1;

/// Run the command line `args` (without the program name), writing to `out` and `err`.
/// Returns the process exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut warnings = Vec::new();
    let parsed = parse::parse(args, &mut warnings);
    for w in &warnings {
        let _ = err.write_all(w.as_bytes());
    }
    match parsed {
        Ok(inv) => execute(&inv, out, err),
        Err(e) => {
            let _ = err.write_all(e.stderr.as_bytes());
            e.code
        }
    }
}

/// `ip -n NAME`: join the network namespace bound at `/run/netns/NAME` (what `ip netns add`
/// creates), with ip's messages on failure.
fn enter_netns(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!(
            "Cannot open network namespace \"{name}\": Invalid argument\n"
        ));
    }
    let file = std::fs::File::open(Path::new("/run/netns").join(name)).map_err(|e| {
        format!(
            "Cannot open network namespace \"{name}\": {}\n",
            strerror_of(&e)
        )
    })?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        format!(
            "setting the network namespace \"{name}\" failed: {}\n",
            e.desc()
        )
    })
}

/// The C library's text for an I/O error (without Rust's " (os error N)" suffix).
fn strerror_of(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// Why talking to the daemon failed, rendered for the user.
fn transport_failure(err: &mut dyn Write, path: &Path, e: &ClientError) -> i32 {
    let _ = match e {
        ClientError::Io(io) => writeln!(
            err,
            "ul2tp: lost connection to ul2tpd at {}: {io}",
            path.display()
        ),
        ClientError::Protocol(p) => writeln!(
            err,
            "ul2tp: unexpected answer from ul2tpd at {}: {p}",
            path.display()
        ),
        ClientError::Api(a) => writeln!(err, "RTNETLINK answers: {}", a.errno.strerror()),
    };
    match e {
        ClientError::Api(_) => EXIT_API_ERROR,
        _ => EXIT_FAILURE,
    }
}

/// A request whose failure is reported the iproute2 way; returns the reply or the exit code.
fn request(
    client: &mut Client,
    path: &Path,
    err: &mut dyn Write,
    cmd: Command,
    attrs: Attrs,
    dump: bool,
) -> Result<ul2tp_api::ServerMessage, i32> {
    client
        .request(cmd, attrs, dump)
        .map_err(|e| transport_failure(err, path, &e))
}

fn execute(inv: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    if inv.action == Action::Version {
        let _ = writeln!(out, "ul2tp {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let path: PathBuf = match &inv.options.netns {
        Some(name) => {
            if let Err(msg) = enter_netns(name) {
                let _ = err.write_all(msg.as_bytes());
                return parse::EXIT_USAGE;
            }
            inv.options
                .socket
                .clone()
                // `$UL2TP_SOCKET` names the current namespace's daemon, so it is not used here.
                .unwrap_or_else(|| ul2tp_api::netns_socket_path(name))
        }
        None => ul2tp::socket_path(inv.options.socket.as_deref()),
    };
    // The batch input is opened before the daemon is contacted.
    let input = match inv.options.batch.as_deref().map(open_batch) {
        Some(Ok(i)) => Some(i),
        Some(Err(msg)) => {
            let _ = err.write_all(msg.as_bytes());
            return EXIT_FAILURE;
        }
        None => None,
    };
    let mut client = match Client::connect(&path) {
        Ok(c) => c,
        Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let _ = writeln!(
                err,
                "ul2tp: cannot connect to ul2tpd at {}: {e}\n(only root and the members of the daemon's [api] group or read_group may connect)",
                path.display(),
            );
            return EXIT_FAILURE;
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "ul2tp: cannot connect to ul2tpd at {}: {e}\n(is ul2tpd running? the socket can be set with --socket PATH or ${})",
                path.display(),
                ul2tp_api::SOCKET_ENV
            );
            return EXIT_FAILURE;
        }
    };
    if inv.action == Action::Batch {
        return match input {
            Some(input) => run_batch(&mut client, &path, inv, input, out, err),
            None => EXIT_FAILURE,
        };
    }
    perform(&mut client, &path, inv, &inv.action, out, err)
}

/// Open the `-batch` input: a file, or stdin for `-`.
fn open_batch(name: &str) -> Result<Box<dyn BufRead>, String> {
    if name == "-" {
        return Ok(Box::new(std::io::BufReader::new(std::io::stdin())));
    }
    std::fs::File::open(name)
        .map(|f| Box::new(std::io::BufReader::new(f)) as Box<dyn BufRead>)
        .map_err(|e| {
            format!(
                "Cannot open file \"{name}\" for reading: {}\n",
                strerror_of(&e)
            )
        })
}

/// `-batch`: every command of `input` over the one connection, in order. A failed command
/// is reported as `Command failed FILE:LINE` (iproute2's words) after its own message and
/// stops the batch, unless `-force`; the exit status is then 1. A lost connection stops it
/// in any case.
fn run_batch(
    client: &mut Client,
    path: &Path,
    inv: &Invocation,
    input: Box<dyn BufRead>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let name = inv.options.batch.as_deref().unwrap_or("-");
    let mut status = 0;
    for cmd in batch::BatchReader::new(input) {
        let cmd = match cmd {
            Ok(c) => c,
            Err(e) => {
                let _ = writeln!(err, "ul2tp: cannot read \"{name}\": {}", strerror_of(&e));
                return EXIT_FAILURE;
            }
        };
        let mut warnings = Vec::new();
        let code = match cmd
            .words
            .map_err(|e| format!("{e}\n"))
            .and_then(|w| parse::parse_command(&w, &mut warnings).map_err(|e| e.stderr))
        {
            Ok(Action::Version | Action::Batch) => 0,
            Ok(action) => {
                for w in &warnings {
                    let _ = err.write_all(w.as_bytes());
                }
                perform(client, path, inv, &action, out, err)
            }
            Err(text) => {
                for w in &warnings {
                    let _ = err.write_all(w.as_bytes());
                }
                let _ = err.write_all(text.as_bytes());
                parse::EXIT_USAGE
            }
        };
        if code != 0 {
            let _ = writeln!(err, "Command failed {name}:{}", cmd.line);
            status = EXIT_FAILURE;
            // A failed transport fails every later command too: stop, -force or not.
            let alive = code != EXIT_FAILURE
                || client
                    .request(Command::Noop, Attrs::default(), false)
                    .is_ok();
            if !inv.options.force || !alive {
                break;
            }
        }
    }
    let _ = out.flush();
    status
}

/// Carry out one parsed command over `client`; returns its exit status.
fn perform(
    client: &mut Client,
    path: &Path,
    inv: &Invocation,
    action: &Action,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let (json, pretty) = (inv.options.json, inv.options.pretty);
    match action {
        Action::Version | Action::Batch => 0,
        Action::Add { tunnel, session } => {
            // iproute2 do_add(): a failed tunnel create is reported and the session create
            // is still attempted; the status is that of the last request.
            let mut code = 0;
            if let Some(t) = tunnel {
                code = match request(
                    client,
                    path,
                    err,
                    Command::TunnelCreate,
                    (**t).clone(),
                    false,
                ) {
                    Ok(_) => 0,
                    Err(c) => c,
                };
                if code == EXIT_FAILURE {
                    return code;
                }
            }
            if let Some(s) = session {
                code = match request(
                    client,
                    path,
                    err,
                    Command::SessionCreate,
                    (**s).clone(),
                    false,
                ) {
                    Ok(_) => 0,
                    Err(c) => c,
                };
            }
            code
        }
        Action::Control(cmd, attrs) => {
            let waited = attrs.wait == Some(true);
            match client.request(*cmd, attrs.clone(), false) {
                Ok(reply) => {
                    // The ids the control plane assigned (the objects appear when negotiated,
                    // and are up when we waited).
                    let state = if waited { "up" } else { "requested" };
                    let profile = attrs.profile.as_deref().unwrap_or_default();
                    let a = reply.attrs.unwrap_or_default();
                    let text = match (*cmd, a.conn_id, a.session_id) {
                        (Command::Dial, Some(t), Some(s)) => {
                            format!("Call {profile} up: session {s} in tunnel {t}\n")
                        }
                        (Command::Dial, _, _) => format!("Call {profile} dialing\n"),
                        (Command::Hangup, _, _) => format!("Call {profile} hung up\n"),
                        (_, Some(t), Some(s)) => format!("Session {s} in tunnel {t} {state}\n"),
                        (_, Some(t), None) => format!("Tunnel {t} {state}\n"),
                        _ => String::new(),
                    };
                    let _ = out.write_all(text.as_bytes());
                    0
                }
                // The daemon's message with the errno text: a wait's failure names its cause
                // (the peer's result code, no answer, the PPP failure), a refused request
                // why (no listener for the address family, a tunnel that is not there, a
                // profile the daemon does not know), which the errno alone does not say.
                Err(ClientError::Api(a)) => {
                    let what = match cmd {
                        Command::Dial => "dial",
                        Command::Hangup => "hangup",
                        Command::ControlDisconnect => "disconnect",
                        _ => "connect",
                    };
                    let _ = writeln!(err, "ul2tp: {what}: {} ({})", a.message, a.errno.strerror());
                    EXIT_API_ERROR
                }
                Err(e) => transport_failure(err, path, &e),
            }
        }
        Action::Simple(Command::PppStart, attrs) => {
            // Answered once IPCP is up or the link failed: say why it failed.
            match client.request(Command::PppStart, attrs.clone(), false) {
                Ok(_) => 0,
                Err(ClientError::Api(a)) => {
                    let _ = writeln!(
                        err,
                        "ul2tp: ppp start: {} ({})",
                        a.message,
                        a.errno.strerror()
                    );
                    EXIT_API_ERROR
                }
                Err(e) => transport_failure(err, path, &e),
            }
        }
        Action::Simple(cmd, attrs) => {
            match request(client, path, err, *cmd, attrs.clone(), false) {
                Ok(_) => 0,
                Err(c) => c,
            }
        }
        Action::Show {
            what,
            request: attrs,
            tunnel_id,
            session_id,
        } => {
            let cmd = match what {
                ShowWhat::Tunnel => Command::TunnelGet,
                ShowWhat::Session | ShowWhat::Ppp => Command::SessionGet,
            };
            let reply = match client.request(cmd, attrs.clone(), true) {
                Ok(r) => r,
                Err(ClientError::Api(a)) => {
                    // iproute2: a dump error is perror()ed, then "Dump terminated", exit 1.
                    let _ = writeln!(
                        err,
                        "RTNETLINK answers: {}\nDump terminated",
                        a.errno.strerror()
                    );
                    return EXIT_FAILURE;
                }
                Err(e) => return transport_failure(err, path, &e),
            };
            // A dump answers with `entries`; accept a single `attrs` object too.
            let entries: Vec<Attrs> = reply
                .entries
                .or_else(|| reply.attrs.map(|a| vec![a]))
                .unwrap_or_default()
                .into_iter()
                .filter(|a| *tunnel_id == 0 || a.conn_id == Some(*tunnel_id))
                .filter(|a| *session_id == 0 || a.session_id == Some(*session_id))
                .collect();
            let text = match what {
                ShowWhat::Tunnel => format::show_tunnels(&entries, json, pretty, inv.options.stats),
                ShowWhat::Session => {
                    format::show_sessions(&entries, json, pretty, inv.options.stats)
                }
                ShowWhat::Ppp => format::show_ppp(&entries, json, pretty),
            };
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            0
        }
        Action::ShowLac(profile) => {
            let attrs = Attrs {
                profile: profile.clone(),
                ..Attrs::default()
            };
            match client.request(Command::LacGet, attrs, profile.is_none()) {
                Ok(reply) => {
                    let entries: Vec<Attrs> = reply
                        .entries
                        .or_else(|| reply.attrs.map(|a| vec![a]))
                        .unwrap_or_default();
                    let _ = out.write_all(lac::show(&entries, json, pretty).as_bytes());
                    0
                }
                Err(ClientError::Api(a)) => {
                    let _ = writeln!(
                        err,
                        "ul2tp: show lac: {} ({})",
                        a.message,
                        a.errno.strerror()
                    );
                    EXIT_API_ERROR
                }
                Err(e) => transport_failure(err, path, &e),
            }
        }
        Action::Debug(cmd) => match request(client, path, err, *cmd, Attrs::default(), false) {
            Ok(reply) => {
                let _ = out.write_all(reply.text.unwrap_or_default().as_bytes());
                let _ = out.flush();
                0
            }
            Err(c) => c,
        },
        Action::Monitor => monitor(client, path, json, pretty, out, err),
    }
}

/// `monitor`: subscribe, then print each event as it arrives.
fn monitor(
    client: &mut Client,
    path: &Path,
    json: bool,
    pretty: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    if let Err(c) = request(client, path, err, Command::Monitor, Attrs::default(), false) {
        return c;
    }
    loop {
        let msg = match client.next_message() {
            Ok(m) => m,
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                let _ = writeln!(
                    err,
                    "ul2tp: ul2tpd at {} closed the connection",
                    path.display()
                );
                return EXIT_FAILURE;
            }
            Err(e) => return transport_failure(err, path, &e),
        };
        let Some(cmd) = msg.event else {
            continue;
        };
        let text = format::event(cmd, msg.attrs.as_ref(), msg.text.as_deref(), json, pretty);
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // stdout closed (e.g. `ul2tp monitor | head`): stop quietly.
            return 0;
        }
    }
}
