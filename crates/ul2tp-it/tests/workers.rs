//! Per-worker data path (`[datapath] workers`, `ul2tpd --workers`): with two workers each
//! Ethernet pseudowire's TAP has two queues, each read by its own transmit loop, and the
//! receive side writes every flow through the queue of its flow hash. Many TCP flows through
//! one pseudowire must arrive byte for byte, and both workers must have carried traffic
//! (`ul2tp_datapath_worker_*` in `/metrics`); with one worker the TAP has one queue and
//! worker 0 carries everything.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ul2tp_it::metrics::{scrape, value};
use ul2tp_it::{traffic_only, Netns, Pair};

/// Concurrent TCP connections a → b.
const FLOWS: usize = 16;
/// Bytes per connection.
const BYTES: usize = 512 << 10;

fn pattern(flow: usize, i: usize) -> u8 {
    (i.wrapping_add(flow * 7919).wrapping_mul(2_654_435_761) >> 13) as u8
}

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two daemons with `workers` data-path workers and a metrics endpoint, one L2TPv3 Ethernet
/// pseudowire pw0 between them (`tunnel_extra`: more `add tunnel` words).
fn pair(workers: usize, tunnel_extra: &str) -> (Pair, Dir) {
    let dir = Dir(std::env::temp_dir().join(ul2tp_it::unique("workers")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("ul2tpd.toml");
    std::fs::write(
        &conf,
        format!("[datapath]\nworkers = {workers}\n\n[metrics]\nlisten = \"127.0.0.1:9650\"\n"),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let p = Pair::with_daemon_args(false, &["--config", &conf]);
    p.ul2tp(
        &format!("add tunnel tunnel_id 1 peer_tunnel_id 2 encap udp local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 5000 {tunnel_extra}"),
        &format!("add tunnel tunnel_id 2 peer_tunnel_id 1 encap udp local 192.0.2.2 remote 192.0.2.1 udp_sport 5000 udp_dport 5000 {tunnel_extra}"),
    );
    p.ul2tp(
        "add session name pw0 tunnel_id 1 session_id 10 peer_session_id 20",
        "add session name pw0 tunnel_id 2 session_id 20 peer_session_id 10",
    );
    let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
    p.a.quiet_link("pw0", mac_a, "198.51.100.1/24", "198.51.100.2", mac_b);
    p.b.quiet_link("pw0", mac_b, "198.51.100.2/24", "198.51.100.1", mac_a);
    assert!(p.a.ping("198.51.100.2", &[]), "ping across pw0");
    (p, dir)
}

/// The TAP queues of `dev` in `ns` (`/sys/class/net/DEV/queues/tx-N`, read through `ip
/// netns exec`, which mounts the namespace's own sysfs).
fn tx_queues(ns: &Netns, dev: &str) -> usize {
    let out = ns
        .cmd("ls")
        .arg(format!("/sys/class/net/{dev}/queues"))
        .output()
        .expect("ls");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|q| q.starts_with("tx-"))
        .count()
}

/// [`FLOWS`] connections of [`BYTES`] each, a → b at the same time; every byte checked.
fn many_flows(p: &Pair) {
    let listener =
        p.b.run_in(|| TcpListener::bind("198.51.100.2:7600").expect("listen"));
    let rx = std::thread::spawn(move || {
        let mut readers = Vec::new();
        for _ in 0..FLOWS {
            let (mut s, _) = listener.accept().expect("accept");
            readers.push(std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut flow = [0u8; 1];
                s.read_exact(&mut flow).expect("flow number");
                let mut got = Vec::with_capacity(BYTES);
                s.read_to_end(&mut got).expect("read");
                (usize::from(flow[0]), got)
            }));
        }
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
    });
    let writers: Vec<_> = (0..FLOWS)
        .map(|f| {
            let s =
                p.a.run_in(|| TcpStream::connect("198.51.100.2:7600").expect("connect"));
            std::thread::spawn(move || {
                let mut s = s;
                s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut data = vec![f as u8];
                data.extend((0..BYTES).map(|i| pattern(f, i)));
                s.write_all(&data).expect("write");
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut seen = [false; FLOWS];
    for (f, got) in rx.join().unwrap() {
        assert!(f < FLOWS && !seen[f], "flow {f} twice or unknown");
        seen[f] = true;
        assert_eq!(got.len(), BYTES, "flow {f}: all bytes arrived");
        let bad = got
            .iter()
            .enumerate()
            .position(|(i, b)| *b != pattern(f, i));
        assert_eq!(bad, None, "flow {f}: first corrupted byte");
    }
}

/// `(tx datagrams, rx writes)` of `worker` in a scrape of `ns`'s daemon.
fn worker(ns: &Netns, w: usize) -> (f64, f64) {
    let body = scrape(ns);
    let get = |m: &str| value(&body, &format!("{m}{{worker=\"{w}\"}}")).unwrap_or(0.0);
    (
        get("ul2tp_datapath_worker_tx_datagrams_total"),
        get("ul2tp_datapath_worker_rx_writes_total"),
    )
}

fn check_two_workers(tunnel_extra: &str) {
    let (p, _dir) = pair(2, tunnel_extra);
    assert_eq!(
        tx_queues(&p.a, "pw0"),
        2,
        "a's pw0 has one queue per worker"
    );
    assert_eq!(
        tx_queues(&p.b, "pw0"),
        2,
        "b's pw0 has one queue per worker"
    );
    many_flows(&p);
    let (a0, a1) = (worker(&p.a, 0), worker(&p.a, 1));
    let (b0, b1) = (worker(&p.b, 0), worker(&p.b, 1));
    // a sends the data: both of its transmit loops did (the 16 flows spread by hash).
    assert!(
        a0.0 > 100.0 && a1.0 > 100.0,
        "a's workers sent {a0:?} {a1:?}"
    );
    // b writes the data through both queues, and its ACKs leave through both.
    assert!(b0.1 > 100.0 && b1.1 > 100.0, "b's queues got {b0:?} {b1:?}");
    assert!(b0.0 > 0.0 && b1.0 > 0.0, "b's workers sent {b0:?} {b1:?}");
    // Every datagram counted by a worker is a session packet (plus the ping before).
    let ta = p.da.session_stats(1, 10);
    let rb = p.db.session_stats(2, 20);
    assert_eq!(ta, traffic_only(&ta), "no errors on a");
    assert_eq!(rb, traffic_only(&rb), "no errors or sequence discards on b");
    assert_eq!(
        ta.tx_packets as f64,
        a0.0 + a1.0,
        "a: tx_packets = sum over workers"
    );
    assert_eq!(
        rb.tx_packets as f64,
        b0.0 + b1.0,
        "b: tx_packets = sum over workers"
    );
}

#[test]
fn two_workers_carry_many_flows() {
    check_two_workers("");
}

/// With send_seq on, the two transmit loops of a session still send in Ns order: the
/// receiver (recv_seq, no reorder queue) discards nothing.
#[test]
fn two_workers_keep_ns_order_with_send_seq() {
    let (p, _dir) = pair(2, "");
    p.ul2tp(
        "modify session tunnel_id 1 session_id 10 seq both",
        "modify session tunnel_id 2 session_id 20 seq both",
    );
    many_flows(&p);
    let ta = p.da.session_stats(1, 10);
    let rb = p.db.session_stats(2, 20);
    assert_eq!(ta, traffic_only(&ta), "no errors on a");
    assert_eq!(rb.rx_seq_discards, 0, "b: {rb:?}");
    assert_eq!(rb.rx_oos_packets, 0, "b: {rb:?}");
    assert_eq!(rb, traffic_only(&rb), "b: {rb:?}");
}

#[test]
fn one_worker_is_a_single_queue_tap() {
    let (p, _dir) = pair(1, "");
    assert_eq!(tx_queues(&p.a, "pw0"), 1);
    assert_eq!(tx_queues(&p.b, "pw0"), 1);
    many_flows(&p);
    let (a0, b0) = (worker(&p.a, 0), worker(&p.b, 0));
    assert!(a0.0 > 100.0 && b0.1 > 100.0, "{a0:?} {b0:?}");
    let ta = p.da.session_stats(1, 10);
    assert_eq!(ta.tx_packets as f64, a0.0, "worker 0 sent everything");
    let body = scrape(&p.a);
    assert!(
        !body.contains("ul2tp_datapath_worker_tx_datagrams_total{worker=\"1\"}"),
        "no second worker"
    );
}
