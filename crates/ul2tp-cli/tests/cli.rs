//! End-to-end tests of the `ul2tp` binary against a fake ul2tpd: a thread serving the API
//! on a temporary Unix socket, recording every request and answering from a closure.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command as Proc, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use ul2tp_api::{
    decode_line, encode_line, ApiError, Attrs, Command, Errno, Request, ServerMessage, Stats,
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique_path(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!(
        "ul2tp-cli-test-{}-{n}-{tag}.sock",
        std::process::id()
    ))
}

/// A fake daemon for exactly one client connection.
struct Fake {
    path: PathBuf,
    handle: JoinHandle<Vec<Request>>,
}

/// Serve one connection: each request is recorded and answered with `respond`'s messages.
/// After answering `monitor` the server closes the connection (ending the client's loop).
fn fake<F>(respond: F) -> Fake
where
    F: Fn(&Request) -> Vec<ServerMessage> + Send + 'static,
{
    let path = unique_path("api");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind fake API socket");
    let p2 = path.clone();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let (stream, _) = listener.accept().expect("accept");
        let mut writer = stream.try_clone().expect("clone");
        let reader = BufReader::new(stream);
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let req: Request = decode_line(&line).expect("client sent a valid request");
            for m in respond(&req) {
                writer.write_all(&encode_line(&m)).expect("write reply");
            }
            let close = req.cmd == Command::Monitor;
            seen.push(req);
            if close {
                break;
            }
        }
        let _ = std::fs::remove_file(&p2);
        seen
    });
    Fake { path, handle }
}

/// Acknowledge everything.
fn ack(req: &Request) -> Vec<ServerMessage> {
    vec![ServerMessage::ok(req.seq)]
}

fn bin() -> Proc {
    Proc::new(env!("CARGO_BIN_EXE_ul2tp"))
}

fn run_with(path: &std::path::Path, args: &str) -> Output {
    bin()
        .args(args.split_whitespace())
        .env("UL2TP_SOCKET", path)
        .output()
        .expect("run ul2tp")
}

/// Run the binary against a fresh fake daemon; returns the output and the requests seen.
fn run_fake<F>(args: &str, respond: F) -> (Output, Vec<Request>)
where
    F: Fn(&Request) -> Vec<ServerMessage> + Send + 'static,
{
    let f = fake(respond);
    let out = run_with(&f.path, args);
    let reqs = f.handle.join().expect("fake server thread");
    (out, reqs)
}

/// Run with no daemon at all (for lines that must fail before connecting).
fn run_offline(args: &str) -> Output {
    run_with(&unique_path("absent"), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------- requests sent

#[test]
fn add_tunnel_udp4_request() {
    let (out, reqs) = run_fake(
        "add tunnel tunnel_id 3000 peer_tunnel_id 4000 encap udp local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 6000",
        ack,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(reqs.len(), 1);
    let line = String::from_utf8(encode_line(&reqs[0])).unwrap();
    assert_eq!(
        line,
        "{\"seq\":1,\"cmd\":\"tunnel_create\",\"attrs\":{\"encap_type\":0,\"proto_version\":3,\"conn_id\":3000,\"peer_conn_id\":4000,\"ip_saddr\":\"192.0.2.1\",\"ip_daddr\":\"192.0.2.2\",\"udp_sport\":5000,\"udp_dport\":6000}}\n"
    );
}

#[test]
fn add_tunnel_udp6_and_ip_requests() {
    let (out, reqs) = run_fake(
        "add tunnel tid 10 ptid 20 local 2001:db8::1 remote 2001:db8::2 udp_sport 1701 udp_dport 1701 udp6_csum_rx off",
        ack,
    );
    assert_eq!(out.status.code(), Some(0));
    let a = &reqs[0].attrs;
    assert_eq!(reqs[0].cmd, Command::TunnelCreate);
    assert_eq!(a.ip6_saddr, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(a.ip6_daddr, Some("2001:db8::2".parse().unwrap()));
    assert_eq!(a.udp_zero_csum6_rx, Some(true));
    assert_eq!(a.udp_zero_csum6_tx, None);

    let (out, reqs) = run_fake(
        "add tunnel tid 10 ptid 20 local 10.1.1.1 remote 10.1.1.2 encap ip",
        ack,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        reqs[0].attrs,
        Attrs {
            conn_id: Some(10),
            peer_conn_id: Some(20),
            proto_version: Some(3),
            encap_type: Some(1),
            ip_saddr: Some("10.1.1.1".parse().unwrap()),
            ip_daddr: Some("10.1.1.2".parse().unwrap()),
            ..Attrs::default()
        }
    );
}

#[test]
fn add_session_request_with_cookies_and_seq() {
    let (out, reqs) = run_fake(
        "add session name l2tpeth7 tunnel_id 3000 session_id 0x10 peer_session_id 017 cookie 01020304 peer_cookie A1A2A3A4A5A6A7A8 seq both l2spec_type none",
        ack,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].cmd, Command::SessionCreate);
    assert_eq!(
        reqs[0].attrs,
        Attrs {
            conn_id: Some(3000),
            peer_conn_id: Some(0),
            session_id: Some(16),
            peer_session_id: Some(15),
            pw_type: Some(5),
            l2spec_type: Some(0),
            l2spec_len: Some(0),
            recv_seq: Some(1),
            send_seq: Some(1),
            cookie: Some("01020304".into()),
            peer_cookie: Some("a1a2a3a4a5a6a7a8".into()),
            ifname: Some("l2tpeth7".into()),
            ..Attrs::default()
        }
    );
}

#[test]
fn add_session_extensions_request() {
    let (out, reqs) = run_fake(
        "add session tid 1 sid 2 psid 3 pw_type ppp reorder_timeout 250 lns_mode on",
        ack,
    );
    assert_eq!(out.status.code(), Some(0));
    let a = &reqs[0].attrs;
    assert_eq!(a.pw_type, Some(7));
    assert_eq!(a.recv_timeout, Some(250));
    assert_eq!(a.lns_mode, Some(1));
}

#[test]
fn add_tunnel_and_session_continue_after_tunnel_error() {
    // iproute2 reports the failed tunnel create and still sends the session create; the
    // exit status is the session's.
    let (out, reqs) = run_fake(
        "add tunnel session tid 5 ptid 6 sid 7 psid 8 local 1.1.1.1 remote 1.1.1.2 encap ip",
        |req| {
            if req.cmd == Command::TunnelCreate {
                vec![ServerMessage::err(
                    req.seq,
                    ApiError::new(Errno::EEXIST, "tunnel 5 exists"),
                )]
            } else {
                ack(req)
            }
        },
    );
    assert_eq!(
        reqs.iter().map(|r| r.cmd).collect::<Vec<_>>(),
        vec![Command::TunnelCreate, Command::SessionCreate]
    );
    assert_eq!(stderr(&out), "RTNETLINK answers: File exists\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(reqs[1].attrs.peer_conn_id, Some(6));
}

#[test]
fn delete_requests() {
    let (out, reqs) = run_fake("del tunnel tunnel_id 3000", ack);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(reqs[0].cmd, Command::TunnelDelete);
    assert_eq!(
        String::from_utf8(encode_line(&reqs[0])).unwrap(),
        "{\"seq\":1,\"cmd\":\"tunnel_delete\",\"attrs\":{\"conn_id\":3000}}\n"
    );
    let (out, reqs) = run_fake("d session tid 3000 sid 1", ack);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(encode_line(&reqs[0])).unwrap(),
        "{\"seq\":1,\"cmd\":\"session_delete\",\"attrs\":{\"conn_id\":3000,\"session_id\":1}}\n"
    );
}

#[test]
fn modify_trace_requests() {
    let (out, reqs) = run_fake(
        "modify session tunnel_id 1 session_id 2 seq recv lns_mode off reorder_timeout 40",
        ack,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(encode_line(&reqs[0])).unwrap(),
        "{\"seq\":1,\"cmd\":\"session_modify\",\"attrs\":{\"conn_id\":1,\"session_id\":2,\"recv_seq\":1,\"send_seq\":0,\"lns_mode\":0,\"recv_timeout\":40}}\n"
    );
    let (_, reqs) = run_fake("modify tunnel tunnel_id 9", ack);
    assert_eq!(reqs[0].cmd, Command::TunnelModify);
    assert_eq!(reqs[0].attrs.conn_id, Some(9));
    let (out, reqs) = run_fake("trace on tunnel_id 3 session_id 4", ack);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(encode_line(&reqs[0])).unwrap(),
        "{\"seq\":1,\"cmd\":\"trace_set\",\"attrs\":{\"conn_id\":3,\"session_id\":4,\"debug\":1}}\n"
    );
    let (_, reqs) = run_fake("trace off tid 3", ack);
    assert_eq!(reqs[0].attrs.debug, Some(0));
    assert_eq!(reqs[0].attrs.session_id, None);
}

#[test]
fn socket_option_overrides_environment() {
    let f = fake(ack);
    let out = bin()
        .args([
            "--socket",
            f.path.to_str().unwrap(),
            "del",
            "tunnel",
            "tid",
            "1",
        ])
        .env("UL2TP_SOCKET", unique_path("wrong"))
        .output()
        .unwrap();
    let reqs = f.handle.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(reqs.len(), 1);
}

// ---------------------------------------------------------------- show output

fn tunnels() -> Vec<Attrs> {
    vec![
        Attrs {
            proto_version: Some(3),
            conn_id: Some(1),
            peer_conn_id: Some(11),
            debug: Some(0),
            encap_type: Some(0),
            stats: Some(Stats::default()),
            udp_csum: Some(1),
            udp_sport: Some(5000),
            udp_dport: Some(6000),
            ip_saddr: Some("192.0.2.1".parse().unwrap()),
            ip_daddr: Some("192.0.2.2".parse().unwrap()),
            ..Attrs::default()
        },
        Attrs {
            proto_version: Some(3),
            conn_id: Some(2),
            peer_conn_id: Some(22),
            debug: Some(0),
            encap_type: Some(0),
            stats: Some(Stats::default()),
            udp_zero_csum6_tx: Some(true),
            udp_sport: Some(1701),
            udp_dport: Some(1702),
            ip6_saddr: Some("2001:db8::1".parse().unwrap()),
            ip6_daddr: Some("2001:db8::2".parse().unwrap()),
            ..Attrs::default()
        },
        Attrs {
            proto_version: Some(3),
            conn_id: Some(3),
            peer_conn_id: Some(33),
            debug: Some(0),
            encap_type: Some(1),
            stats: Some(Stats::default()),
            ip_saddr: Some("10.0.0.1".parse().unwrap()),
            ip_daddr: Some("10.0.0.2".parse().unwrap()),
            ..Attrs::default()
        },
    ]
}

fn sessions() -> Vec<Attrs> {
    let base = Attrs {
        conn_id: Some(1),
        session_id: Some(100),
        peer_conn_id: Some(11),
        peer_session_id: Some(200),
        debug: Some(0),
        pw_type: Some(5),
        recv_seq: Some(0),
        send_seq: Some(0),
        lns_mode: Some(0),
        stats: Some(Stats::default()),
        ..Attrs::default()
    };
    vec![
        Attrs {
            ifname: Some("l2tpeth0".into()),
            cookie: Some("0102030405060708".into()),
            peer_cookie: Some("a1b2c3d4".into()),
            recv_seq: Some(1),
            send_seq: Some(1),
            recv_timeout: Some(300),
            ..base.clone()
        },
        Attrs {
            session_id: Some(101),
            ifname: Some("l2tpeth1".into()),
            ..base.clone()
        },
        Attrs {
            conn_id: Some(2),
            session_id: Some(102),
            send_seq: Some(1),
            ..base.clone()
        },
        Attrs {
            conn_id: Some(2),
            session_id: Some(103),
            pw_type: Some(7),
            ..base
        },
    ]
}

fn dump_of(entries: Vec<Attrs>) -> impl Fn(&Request) -> Vec<ServerMessage> + Send + 'static {
    move |req| {
        let mut m = ServerMessage::ok(req.seq);
        m.entries = Some(entries.clone());
        vec![m]
    }
}

const TUNNELS_TEXT: &str = "\
Tunnel 1, encap UDP
  From 192.0.2.1 to 192.0.2.2
  Peer tunnel 11
  UDP source / dest ports: 5000/6000
  UDP checksum: enabled
Tunnel 2, encap UDP
  From 2001:db8::1 to 2001:db8::2
  Peer tunnel 22
  UDP source / dest ports: 1701/1702
  UDP checksum: rx
Tunnel 3, encap IP
  From 10.0.0.1 to 10.0.0.2
  Peer tunnel 33
";

#[test]
fn show_tunnel_text() {
    let (out, reqs) = run_fake("show tunnel", dump_of(tunnels()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), TUNNELS_TEXT);
    assert_eq!(reqs[0].cmd, Command::TunnelGet);
    assert!(reqs[0].dump);
    assert_eq!(reqs[0].attrs, Attrs::default());
}

#[test]
fn show_tunnel_json() {
    let (out, _) = run_fake("-j show tunnel", dump_of(tunnels()));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "[{\"tunnel_id\":1,\"encap\":\"UDP\",\"local\":\"192.0.2.1\",\"peer\":\"192.0.2.2\",\"peer_tunnel\":11,\"local_port\":5000,\"peer_port\":6000,\"checksum\":true},\
{\"tunnel_id\":2,\"encap\":\"UDP\",\"local\":\"2001:db8::1\",\"peer\":\"2001:db8::2\",\"peer_tunnel\":22,\"local_port\":1701,\"peer_port\":1702,\"checksum_tx\":false,\"checksum_rx\":true},\
{\"tunnel_id\":3,\"encap\":\"IP\",\"local\":\"10.0.0.1\",\"peer\":\"10.0.0.2\",\"peer_tunnel\":33}]\n"
    );
}

#[test]
fn show_tunnel_pretty_json() {
    let (out, _) = run_fake("-json -pretty show tunnel tunnel_id 3", dump_of(tunnels()));
    assert_eq!(
        stdout(&out),
        "[ {\n        \"tunnel_id\": 3,\n        \"encap\": \"IP\",\n        \"local\": \"10.0.0.1\",\n        \"peer\": \"10.0.0.2\",\n        \"peer_tunnel\": 33\n    } ]\n"
    );
}

#[test]
fn show_tunnel_filters_client_side() {
    let (out, reqs) = run_fake("show tunnel tunnel_id 2", dump_of(tunnels()));
    assert_eq!(reqs[0].attrs.conn_id, Some(2));
    assert!(reqs[0].dump);
    assert_eq!(
        stdout(&out),
        "Tunnel 2, encap UDP\n  From 2001:db8::1 to 2001:db8::2\n  Peer tunnel 22\n  UDP source / dest ports: 1701/1702\n  UDP checksum: rx\n"
    );
    let (out, _) = run_fake("show tunnel tunnel_id 99", dump_of(tunnels()));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
    let (out, _) = run_fake("-j show tunnel tunnel_id 99", dump_of(tunnels()));
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn show_session_text() {
    let (out, reqs) = run_fake("show session", dump_of(sessions()));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(reqs[0].cmd, Command::SessionGet);
    assert!(reqs[0].dump);
    assert_eq!(
        stdout(&out),
        "\
Session 100 in tunnel 1
  Peer session 200, tunnel 11
  interface name: l2tpeth0
  offset 0, peer offset 0
  cookie 0102030405060708  peer cookie a1b2c3d4  reorder timeout: 300
  sequence numbering: send recv
Session 101 in tunnel 1
  Peer session 200, tunnel 11
  interface name: l2tpeth1
  offset 0, peer offset 0

Session 102 in tunnel 2
  Peer session 200, tunnel 11
  offset 0, peer offset 0

  sequence numbering: send
Session 103 in tunnel 2
  Peer session 200, tunnel 11
  pseudowire type: ppp
  offset 0, peer offset 0

"
    );
}

#[test]
fn show_session_json_and_filters() {
    let (out, reqs) = run_fake("-j show session tunnel_id 1", dump_of(sessions()));
    // iproute2 only adds filter attributes when both ids are given.
    assert_eq!(reqs[0].attrs, Attrs::default());
    assert_eq!(
        stdout(&out),
        "[{\"session_id\":100,\"tunnel_id\":1,\"peer_session_id\":200,\"peer_tunnel_id\":11,\"interface\":\"l2tpeth0\",\"cookie\":\"0102030405060708\",\"peer_cookie\":\"a1b2c3d4\",\"reorder_timeout\":300,\"send_seq\":null,\"recv_seq\":null},\
{\"session_id\":101,\"tunnel_id\":1,\"peer_session_id\":200,\"peer_tunnel_id\":11,\"interface\":\"l2tpeth1\"}]\n"
    );
    let (out, reqs) = run_fake("-j show session tid 2 sid 103", dump_of(sessions()));
    assert_eq!(reqs[0].attrs.conn_id, Some(2));
    assert_eq!(reqs[0].attrs.session_id, Some(103));
    assert_eq!(
        stdout(&out),
        "[{\"session_id\":103,\"tunnel_id\":2,\"peer_session_id\":200,\"peer_tunnel_id\":11,\"pw_type\":\"ppp\"}]\n"
    );
    let (out, _) = run_fake("show session sid 102", dump_of(sessions()));
    assert_eq!(
        stdout(&out),
        "Session 102 in tunnel 2\n  Peer session 200, tunnel 11\n  offset 0, peer offset 0\n\n  sequence numbering: send\n"
    );
}

#[test]
fn show_error_is_dump_terminated() {
    let (out, _) = run_fake("show tunnel", |req| {
        vec![ServerMessage::err(
            req.seq,
            ApiError::new(Errno::EPERM, "not allowed"),
        )]
    });
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "RTNETLINK answers: Operation not permitted\nDump terminated\n"
    );
    assert_eq!(stdout(&out), "");
}

// ---------------------------------------------------------------- debug / monitor

#[test]
fn debug_listings_print_text() {
    let listing =
        "TUNNEL ID, peer ID from IP to IP\n\nTUNNEL 1 peer 11 from 192.0.2.1 to 192.0.2.2\n";
    let (out, reqs) = run_fake("debug tunnels", move |req| {
        let mut m = ServerMessage::ok(req.seq);
        m.text = Some(listing.to_string());
        vec![m]
    });
    assert_eq!(reqs[0].cmd, Command::DebugTunnels);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), listing);
    let (_, reqs) = run_fake("debug pppol2tp", ack);
    assert_eq!(reqs[0].cmd, Command::DebugPppol2tp);
}

fn monitor_responder(req: &Request) -> Vec<ServerMessage> {
    let t = tunnels().remove(2);
    let s = sessions().remove(1);
    vec![
        ServerMessage::ok(req.seq),
        ServerMessage::event(Command::TunnelCreate, t.clone()),
        ServerMessage::event(Command::SessionCreate, s),
        ServerMessage::event(Command::TunnelDelete, t),
    ]
}

#[test]
fn monitor_text() {
    let (out, reqs) = run_fake("monitor", monitor_responder);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].cmd, Command::Monitor);
    assert_eq!(
        stdout(&out),
        "\
[TUNNEL_CREATE] Tunnel 3, encap IP
  From 10.0.0.1 to 10.0.0.2
  Peer tunnel 33
[SESSION_CREATE] Session 101 in tunnel 1
  Peer session 200, tunnel 11
  interface name: l2tpeth1
  offset 0, peer offset 0

[TUNNEL_DELETE] Tunnel 3, encap IP
  From 10.0.0.1 to 10.0.0.2
  Peer tunnel 33
"
    );
    // The daemon went away: reported, status 1.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("closed the connection"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn monitor_json() {
    let (out, _) = run_fake("-j monitor", monitor_responder);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        "{\"event\":\"TUNNEL_CREATE\",\"tunnel_id\":3,\"encap\":\"IP\",\"local\":\"10.0.0.1\",\"peer\":\"10.0.0.2\",\"peer_tunnel\":33}"
    );
    assert_eq!(
        lines[1],
        "{\"event\":\"SESSION_CREATE\",\"session_id\":101,\"tunnel_id\":1,\"peer_session_id\":200,\"peer_tunnel_id\":11,\"interface\":\"l2tpeth1\"}"
    );
    for l in lines {
        serde_json::from_str::<serde_json::Value>(l).expect("each event line is JSON");
    }
}

// ---------------------------------------------------------------- errors and exit codes

#[test]
fn api_error_exits_2() {
    for (errno, text) in [
        (Errno::EEXIST, "File exists"),
        (Errno::ENODEV, "No such device"),
        (Errno::EINVAL, "Invalid argument"),
        (Errno::EPROTONOSUPPORT, "Protocol not supported"),
        (Errno::EPERM, "Operation not permitted"),
    ] {
        let (out, _) = run_fake("del session tid 1 sid 2", move |req| {
            vec![ServerMessage::err(req.seq, ApiError::new(errno, "detail"))]
        });
        assert_eq!(out.status.code(), Some(2), "{errno:?}");
        assert_eq!(stderr(&out), format!("RTNETLINK answers: {text}\n"));
    }
}

/// `connect` (with or without `wait`) and `disconnect` errors print the daemon's message
/// next to the errno text, which alone does not say what is wrong.
#[test]
fn control_errors_print_the_daemons_message() {
    let msg = "no UDP control listener for IPv6: add one with [control] listen / listen_udp";
    for line in [
        "connect remote 2001:db8::2",
        "connect remote 2001:db8::2 wait",
        "connect session tunnel_id 7 pw_type ppp",
    ] {
        let (out, reqs) = run_fake(line, move |req| {
            vec![ServerMessage::err(
                req.seq,
                ApiError::new(Errno::EAFNOSUPPORT, msg),
            )]
        });
        assert_eq!(out.status.code(), Some(2), "{line}");
        assert_eq!(
            stderr(&out),
            format!("ul2tp: connect: {msg} (Address family not supported by protocol)\n"),
            "{line}"
        );
        assert_eq!(stdout(&out), "", "{line}");
        assert_eq!(reqs.len(), 1, "{line}");
    }
    let (out, _) = run_fake("disconnect tunnel_id 7", |req| {
        vec![ServerMessage::err(
            req.seq,
            ApiError::new(Errno::ENODEV, "control protocol: UnknownTunnel(7)"),
        )]
    });
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "ul2tp: disconnect: control protocol: UnknownTunnel(7) (No such device)\n"
    );
}

#[test]
fn unreachable_daemon_exits_1_naming_the_socket() {
    let path = unique_path("nobody");
    let out = run_with(&path, "show tunnel");
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains(path.to_str().unwrap()), "{e}");
    assert!(e.contains("cannot connect to ul2tpd"), "{e}");
}

#[test]
fn validation_errors_do_not_contact_the_daemon() {
    let cases: &[(&str, &str, i32)] = &[
        (
            "add tunnel tunnel_id 1 peer_tunnel_id 2 local 1.1.1.1 remote 1.1.1.2 udp_sport 1",
            "Error: argument \"udp_dport\" is required\n",
            255,
        ),
        (
            "add session tunnel_id 1 session_id 2",
            "Error: argument \"peer_session_id\" is required\n",
            255,
        ),
        (
            "add session tunnel_id 1 session_id 2 peer_session_id 3 cookie 123",
            "Error: argument \"123\" is wrong: cookie must be either 8 or 16 hex digits\n\n",
            255,
        ),
        (
            "del session tid 1",
            "Error: argument \"session_id\" is required\n",
            255,
        ),
        ("show", "Usage: ul2tp add tunnel\n", 255),
        (
            "frob",
            "Command \"frob\" is unknown, try \"ul2tp help\".\n",
            255,
        ),
        (
            "add tunnel local 300.1.1.1",
            "Error: any valid address is expected rather than \"300.1.1.1\".\n",
            1,
        ),
        (
            "add tunnel tid 1 wibble",
            "Unknown command: wibble\nUsage: ul2tp add tunnel\n",
            255,
        ),
    ];
    for (line, text, code) in cases {
        let out = run_offline(line);
        assert_eq!(out.status.code(), Some(*code), "{line}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(text),
            "{line}: got {:?}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "");
    }
}

#[test]
fn help_prints_usage_with_extensions() {
    let out = run_offline("help");
    assert_eq!(out.status.code(), Some(255));
    let e = stderr(&out);
    for needle in [
        "ul2tp add tunnel",
        "[ version { 2 | 3 } ]",
        "[ pw_type PWTYPE ] [ vlan_id VLANID ]",
        "ul2tp modify session tunnel_id ID session_id ID",
        "ul2tp debug { tunnels | pppol2tp }",
        "ul2tp monitor",
        "ul2tp trace { on | off } tunnel_id ID [ session_id ID ]",
    ] {
        assert!(e.contains(needle), "missing {needle:?}");
    }
}

#[test]
fn offset_warning_then_request() {
    let (out, reqs) = run_fake("add session tid 1 sid 2 psid 3 offset 4 peer_offset 8", ack);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stderr(&out),
        "Ignoring option \"offset\"\nIgnoring option \"peer_offset\"\n"
    );
    assert_eq!(reqs.len(), 1);
}

#[test]
fn non_utf8_argument_is_refused_without_panic() {
    use std::os::unix::ffi::OsStrExt;
    let out = bin()
        .arg("add")
        .arg("session")
        .arg("name")
        .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe"))
        .arg("bogus")
        .env("UL2TP_SOCKET", unique_path("absent"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).starts_with("Unknown command: bogus"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn show_accepts_single_attrs_reply() {
    let (out, _) = run_fake("show tunnel tid 3", |req| {
        let mut m = ServerMessage::ok(req.seq);
        m.attrs = Some(tunnels().remove(2));
        vec![m]
    });
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "Tunnel 3, encap IP\n  From 10.0.0.1 to 10.0.0.2\n  Peer tunnel 33\n"
    );
}

// ---------------------------------------------------------------- ip options

/// `ip -s l2tp show` parses the counters but prints none; `ul2tp -s` (any spelling ip
/// accepts) prints each object's counters after it, and `-j -s` adds a `stats` object. Without
/// `-s` the output is exactly iproute2's.
#[test]
fn stats_option_prints_the_counters() {
    let mut t = tunnels();
    t.truncate(1);
    t[0].stats = Some(Stats {
        tx_packets: 3,
        tx_bytes: 294,
        rx_packets: 12345678,
        rx_bytes: 1,
        rx_seq_discards: 2,
        rx_errors: 2,
        ..Stats::default()
    });
    let first_tunnel = TUNNELS_TEXT.split("Tunnel 2,").next().unwrap();
    let expected = format!(
        "{first_tunnel}  RX: packets  bytes errors seq_discards cookie_discards oos_packets invalid\n      12345678 1     2      2            0               0           0\n  TX: packets bytes errors\n      3       294   0\n"
    );
    for opt in ["-s", "-stats", "-statistics", "--stats", "-st"] {
        let (out, reqs) = run_fake(&format!("{opt} show tunnel"), dump_of(t.clone()));
        assert_eq!(out.status.code(), Some(0), "{opt}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected, "{opt}");
        assert_eq!(reqs[0].cmd, Command::TunnelGet);
    }
    let (plain, _) = run_fake("show tunnel", dump_of(t.clone()));
    assert_eq!(stdout(&plain), first_tunnel);

    let (plain, _) = run_fake("-j show session", dump_of(sessions()));
    let (with_s, _) = run_fake("-j -s show session", dump_of(sessions()));
    assert_eq!(with_s.status.code(), Some(0));
    let plain: serde_json::Value = serde_json::from_str(&stdout(&plain)).unwrap();
    let with_s: serde_json::Value = serde_json::from_str(&stdout(&with_s)).unwrap();
    assert!(plain[0].get("stats").is_none());
    assert_eq!(with_s[0]["stats"]["rx_packets"], 0);
    assert_eq!(with_s[0]["stats"].as_object().unwrap().len(), 10);
    let mut stripped = with_s.clone();
    for o in stripped.as_array_mut().unwrap() {
        o.as_object_mut().unwrap().remove("stats");
    }
    assert_eq!(stripped, plain);
}

#[test]
fn version_options() {
    for opt in ["-V", "-Version", "--Version", "-Ver", "--version"] {
        let out = run_offline(opt);
        assert_eq!(out.status.code(), Some(0), "{opt}");
        assert_eq!(
            stdout(&out),
            format!("ul2tp {}\n", env!("CARGO_PKG_VERSION")),
            "{opt}"
        );
    }
}

#[test]
fn netns_option_errors_as_ip() {
    let out = run_offline("-n ul2tp-no-such-netns-here show tunnel");
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        stderr(&out),
        "Cannot open network namespace \"ul2tp-no-such-netns-here\": No such file or directory\n"
    );
    let out = run_offline("-netns ../x show tunnel");
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        stderr(&out),
        "Cannot open network namespace \"../x\": Invalid argument\n"
    );
    let out = run_offline("-n");
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        stderr(&out),
        "Command line is not complete. Try option \"help\"\n"
    );
}

#[test]
fn bad_address_message_of_iproute2_6_1() {
    for (line, arg) in [
        (
            "add tunnel tid 1 ptid 2 local 10.0.0.256 remote 10.0.0.2",
            "10.0.0.256",
        ),
        (
            "add tunnel tid 1 ptid 2 local 10.0.0.1 remote fe80::zz",
            "fe80::zz",
        ),
        ("add tunnel remote host.example", "host.example"),
    ] {
        let out = run_offline(line);
        assert_eq!(out.status.code(), Some(1), "{line}");
        assert_eq!(
            stderr(&out),
            format!("Error: any valid address is expected rather than \"{arg}\".\n"),
            "{line}"
        );
    }
}

// ---------------------------------------------------------------- -batch

/// A file under the temporary directory with `text`.
fn batch_file(text: &str) -> PathBuf {
    let p = unique_path("batch");
    std::fs::write(&p, text).expect("write batch file");
    p
}

/// Refuse session creates with session id 13 (EEXIST), acknowledge everything else.
fn refuse_13(req: &Request) -> Vec<ServerMessage> {
    if req.cmd == Command::SessionCreate && req.attrs.session_id == Some(13) {
        vec![ServerMessage::err(
            req.seq,
            ApiError::new(Errno::EEXIST, "session 13 exists"),
        )]
    } else {
        ack(req)
    }
}

const BATCH: &str = "\
# a tunnel and three sessions
add tunnel tunnel_id 1 peer_tunnel_id 1 encap ip local 10.0.0.1 remote 10.0.0.2

l2tp add session tunnel_id 1 session_id 12 peer_session_id 12
add session tunnel_id 1 session_id 13 \\
    peer_session_id 13
add session tunnel_id 1 session_id 14 peer_session_id 14  # the last
";

#[test]
fn batch_runs_every_line_over_one_connection() {
    // The fake daemon accepts exactly one connection: every request arriving proves it.
    let f = batch_file(&BATCH.replace("session_id 13", "session_id 15"));
    let (out, reqs) = run_fake(&format!("-batch {}", f.display()), ack);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let got: Vec<(Command, Option<u32>)> =
        reqs.iter().map(|r| (r.cmd, r.attrs.session_id)).collect();
    assert_eq!(
        got,
        vec![
            (Command::TunnelCreate, None),
            (Command::SessionCreate, Some(12)),
            (Command::SessionCreate, Some(15)),
            (Command::SessionCreate, Some(14)),
        ]
    );
    assert_eq!(reqs[2].attrs.peer_session_id, Some(15), "continued line");
    let _ = std::fs::remove_file(f);
}

#[test]
fn batch_stops_at_the_first_error_and_names_its_line() {
    let f = batch_file(BATCH);
    let name = f.display().to_string();
    let (out, reqs) = run_fake(&format!("-b {name}"), refuse_13);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("RTNETLINK answers: File exists\nCommand failed {name}:6\n")
    );
    assert_eq!(reqs.len(), 3, "nothing after the failed line 6");
    let _ = std::fs::remove_file(f);
}

#[test]
fn batch_force_goes_on_after_errors() {
    let f = batch_file(&format!(
        "{BATCH}add session tunnel_id\nshow tunnel tunnel_id 1\n"
    ));
    let name = f.display().to_string();
    let (out, reqs) = run_fake(&format!("-force -batch {name}"), |req| {
        if req.cmd == Command::TunnelGet {
            dump_of(tunnels())(req)
        } else {
            refuse_13(req)
        }
    });
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed command fails the batch"
    );
    assert_eq!(
        stderr(&out),
        format!(
            "RTNETLINK answers: File exists\nCommand failed {name}:6\n\
             Command line is not complete. Try option \"help\"\nCommand failed {name}:8\n"
        )
    );
    let cmds: Vec<Command> = reqs.iter().map(|r| r.cmd).collect();
    assert_eq!(
        cmds,
        vec![
            Command::TunnelCreate,
            Command::SessionCreate,
            Command::SessionCreate,
            Command::SessionCreate,
            Command::TunnelGet,
        ]
    );
    assert!(stdout(&out).starts_with("Tunnel 1,"), "{}", stdout(&out));
    let _ = std::fs::remove_file(f);
}

#[test]
fn batch_from_stdin() {
    let f = fake(refuse_13);
    let mut child = bin()
        .args(["-force", "-batch", "-"])
        .env("UL2TP_SOCKET", &f.path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ul2tp");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"del session tunnel_id 1 session_id 2\nadd session tunnel_id 1 session_id 13 peer_session_id 1\nfrobnicate\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let reqs = f.handle.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "RTNETLINK answers: File exists\nCommand failed -:2\n\
         Command \"frobnicate\" is unknown, try \"ul2tp help\".\nCommand failed -:3\n"
    );
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].cmd, Command::SessionDelete);
}

#[test]
fn batch_errors_before_connecting() {
    let out = run_offline("-batch /nonexistent/ul2tp.batch");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Cannot open file \"/nonexistent/ul2tp.batch\" for reading: No such file or directory\n"
    );
    let out = run_offline("-batch");
    assert_eq!(out.status.code(), Some(255));
    let out = run_offline("-batch - show tunnel");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("takes no command"),
        "{}",
        stderr(&out)
    );
}
