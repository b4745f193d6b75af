//! Deterministic simulation of two PPP endpoints over a lossy virtual link.

use std::net::Ipv4Addr;

use ul2tp_ppp::{
    AuthProtocol, Config, DownReason, Endpoint, Event, IpPacket, Phase, StaticCredentials,
    Timestamp,
};

/// An endpoint with a fixed 32-byte seed derived from `n` (reproducible runs).
fn new_ep(cfg: Config, n: u64) -> Endpoint {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    Endpoint::new(cfg, seed)
}

/// A tiny deterministic generator for the link's loss decisions (xorshift64*).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Sim {
    a: Endpoint,
    b: Endpoint,
    now: u64,
    /// Loss in percent.
    loss: u64,
    rng: Lcg,
    flight: Vec<(u64, bool, Vec<u8>)>,
    ev_a: Vec<Event>,
    ev_b: Vec<Event>,
    frames: u64,
    dropped: u64,
}

const DELAY: u64 = 5_000;

impl Sim {
    fn new(a: Endpoint, b: Endpoint, loss: u64, seed: u64) -> Sim {
        Sim {
            a,
            b,
            now: 0,
            loss,
            rng: Lcg(seed | 1),
            flight: Vec::new(),
            ev_a: Vec::new(),
            ev_b: Vec::new(),
            frames: 0,
            dropped: 0,
        }
    }

    fn pump(&mut self) {
        while let Some(f) = self.a.poll_transmit() {
            self.frames += 1;
            if self.rng.next() % 100 >= self.loss {
                self.flight.push((self.now + DELAY, true, f));
            } else {
                self.dropped += 1;
            }
        }
        while let Some(f) = self.b.poll_transmit() {
            self.frames += 1;
            if self.rng.next() % 100 >= self.loss {
                self.flight.push((self.now + DELAY, false, f));
            } else {
                self.dropped += 1;
            }
        }
        while let Some(e) = self.a.poll_event() {
            self.ev_a.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.ev_b.push(e);
        }
    }

    /// Run until `done` holds or `limit_us` of virtual time passes; returns whether `done` held.
    fn run(&mut self, limit_us: u64, done: impl Fn(&Sim) -> bool) -> bool {
        let end = self.now + limit_us;
        loop {
            self.pump();
            if done(self) {
                return true;
            }
            let next = self
                .flight
                .iter()
                .map(|f| f.0)
                .chain(self.a.poll_timeout().map(|t| t.0))
                .chain(self.b.poll_timeout().map(|t| t.0))
                .min();
            let Some(next) = next else { return false };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            let now = Timestamp(self.now);
            let due: Vec<_> = {
                let (d, keep) = std::mem::take(&mut self.flight)
                    .into_iter()
                    .partition(|f| f.0 <= self.now);
                self.flight = keep;
                d
            };
            for (_, to_b, f) in due {
                let _ = if to_b {
                    self.b.handle_frame(now, &f)
                } else {
                    self.a.handle_frame(now, &f)
                };
            }
            if self.a.poll_timeout().is_some_and(|t| t <= now) {
                self.a.handle_timeout(now);
            }
            if self.b.poll_timeout().is_some_and(|t| t <= now) {
                self.b.handle_timeout(now);
            }
        }
    }
}

fn server(auth: AuthProtocol, seed: u64) -> Endpoint {
    let cfg = Config {
        require_auth: vec![auth],
        auth_name: b"lns".to_vec(),
        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        peer_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
        dns: [
            Some(Ipv4Addr::new(192, 0, 2, 53)),
            Some(Ipv4Addr::new(192, 0, 2, 54)),
        ],
        ipv6cp: true,
        ..Config::default()
    };
    let mut e = new_ep(cfg, seed);
    e.set_credentials(Box::new(StaticCredentials(vec![(
        b"alice".to_vec(),
        b"wonderland-secret".to_vec(),
    )])));
    e
}

fn client(password: &[u8], seed: u64) -> Endpoint {
    let cfg = Config {
        user: Some((b"alice".to_vec(), password.to_vec())),
        request_dns: true,
        ipv6cp: true,
        ..Config::default()
    };
    new_ep(cfg, seed)
}

fn has(ev: &[Event], f: impl Fn(&Event) -> bool) -> bool {
    ev.iter().any(f)
}

fn all_up(s: &Sim) -> bool {
    let up = |ev: &[Event]| {
        has(ev, |e| matches!(e, Event::NetworkUp { .. }))
            && has(ev, |e| matches!(e, Event::Ipv6Up { .. }))
    };
    up(&s.ev_a) && up(&s.ev_b)
}

fn link_down(ev: &[Event]) -> Option<DownReason> {
    ev.iter().find_map(|e| match e {
        Event::LinkDown { reason } => Some(*reason),
        _ => None,
    })
}

fn bring_up(auth: AuthProtocol, loss: u64, seed: u64) -> Sim {
    let mut s = Sim::new(
        server(auth, seed),
        client(b"wonderland-secret", seed + 1),
        loss,
        seed,
    );
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    assert!(
        s.run(300_000_000, all_up),
        "seed {seed} loss {loss}: server {:?} {:?} client {:?} {:?}",
        s.a,
        s.ev_a,
        s.b,
        s.ev_b
    );
    s
}

fn check_up(s: &Sim) {
    let srv = s.ev_a.clone();
    let cli = s.ev_b.clone();
    assert!(has(&srv, |e| *e == Event::LinkUp));
    assert!(has(&srv, |e| *e
        == Event::AuthSuccess {
            peer_name: b"alice".to_vec()
        }));
    assert!(has(&cli, |e| *e == Event::Authenticated));
    assert!(has(&srv, |e| *e
        == Event::NetworkUp {
            local: Ipv4Addr::new(10, 0, 0, 1),
            peer: Ipv4Addr::new(10, 0, 0, 2),
            dns: vec![],
        }));
    assert!(has(&cli, |e| *e
        == Event::NetworkUp {
            local: Ipv4Addr::new(10, 0, 0, 2),
            peer: Ipv4Addr::new(10, 0, 0, 1),
            dns: vec![Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)],
        }));
    let iids = |ev: &[Event]| {
        ev.iter().find_map(|e| match e {
            Event::Ipv6Up {
                local_iid,
                peer_iid,
            } => Some((*local_iid, *peer_iid)),
            _ => None,
        })
    };
    let (sl, sp) = iids(&srv).unwrap();
    let (cl, cp) = iids(&cli).unwrap();
    assert_eq!((sl, sp), (cp, cl));
    assert_ne!(sl, cl);
    assert!(sl != 0 && cl != 0);
    assert_eq!(s.a.phase(), Phase::Network);
    assert_eq!(s.b.phase(), Phase::Network);
}

#[test]
fn pap_ipcp_ipv6cp_up_without_loss_and_ip_flows() {
    let mut s = bring_up(AuthProtocol::Pap, 0, 7);
    check_up(&s);
    // IP in both directions.
    let v4 = [
        0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
    ];
    s.b.send_ip(&v4).unwrap();
    let mut v6 = vec![0x60u8];
    v6.extend_from_slice(&[0; 39]);
    s.a.send_ip(&v6).unwrap();
    s.run(1_000_000, |_| false);
    assert_eq!(s.a.poll_ip(), Some(IpPacket::V4(v4.to_vec())));
    assert_eq!(s.b.poll_ip(), Some(IpPacket::V6(v6)));
    assert_eq!(s.a.send_ip(&[0x10]), Err(ul2tp_ppp::PppError::BadBody));
}

#[test]
fn pap_ipcp_ipv6cp_up_with_20_percent_loss() {
    let (mut dropped, mut frames) = (0, 0);
    for seed in 1..=12 {
        let s = bring_up(AuthProtocol::Pap, 20, seed * 1000 + 3);
        check_up(&s);
        dropped += s.dropped;
        frames += s.frames;
    }
    // The link really lost about a fifth of the frames.
    assert!(
        dropped * 100 / frames >= 12 && dropped * 100 / frames <= 28,
        "{dropped}/{frames}"
    );
}

#[test]
fn chap_md5_up_with_and_without_loss() {
    check_up(&bring_up(AuthProtocol::ChapMd5, 0, 11));
    for seed in 1..=12 {
        check_up(&bring_up(AuthProtocol::ChapMd5, 20, seed * 77));
    }
}

fn wrong_password(auth: AuthProtocol) {
    let mut s = Sim::new(server(auth, 5), client(b"guess", 6), 0, 9);
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    let both_down = |s: &Sim| link_down(&s.ev_a).is_some() && link_down(&s.ev_b).is_some();
    assert!(s.run(60_000_000, both_down), "{:?} {:?}", s.ev_a, s.ev_b);
    assert_eq!(link_down(&s.ev_a), Some(DownReason::AuthFailed));
    assert_eq!(link_down(&s.ev_b), Some(DownReason::AuthFailed));
    assert!(has(&s.ev_a, |e| *e
        == Event::AuthFailure {
            peer_name: b"alice".to_vec()
        }));
    assert!(has(&s.ev_b, |e| *e == Event::AuthRejected));
    assert!(!has(&s.ev_a, |e| matches!(e, Event::NetworkUp { .. })));
    assert_eq!(s.a.phase(), Phase::Dead);
}

#[test]
fn pap_wrong_credentials_take_the_link_down() {
    wrong_password(AuthProtocol::Pap);
}

#[test]
fn chap_md5_failure_takes_the_link_down() {
    wrong_password(AuthProtocol::ChapMd5);
}

#[test]
fn mschapv2_up_and_failure() {
    check_up(&bring_up(AuthProtocol::MsChapV2, 0, 61));
    for seed in 1..=12 {
        check_up(&bring_up(AuthProtocol::MsChapV2, 20, seed * 131));
    }
    wrong_password(AuthProtocol::MsChapV2);
}

#[test]
fn client_without_credentials_refuses_auth_and_link_goes_down() {
    let cfg = Config {
        ipv6cp: true,
        ..Config::default()
    };
    let mut s = Sim::new(server(AuthProtocol::Pap, 1), new_ep(cfg, 2), 0, 3);
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    assert!(s.run(60_000_000, |s| link_down(&s.ev_a).is_some()));
    assert_eq!(link_down(&s.ev_a), Some(DownReason::AuthFailed));
    assert!(!has(&s.ev_a, |e| *e == Event::LinkUp));
}

#[test]
fn peer_silence_is_detected_by_echo_and_link_goes_down() {
    let mut s = bring_up(AuthProtocol::Pap, 0, 21);
    let t_up = s.now;
    // Echoes are answered while the link works: nothing goes down for a minute.
    assert!(!s.run(60_000_000, |s| link_down(&s.ev_a).is_some()));
    s.loss = 100;
    assert!(s.run(120_000_000, |s| link_down(&s.ev_a).is_some()
        && link_down(&s.ev_b).is_some()));
    assert_eq!(link_down(&s.ev_a), Some(DownReason::EchoTimeout));
    assert_eq!(link_down(&s.ev_b), Some(DownReason::EchoTimeout));
    assert!(has(&s.ev_a, |e| *e == Event::NetworkDown));
    // echo_interval 10 s × (echo_failure 3 + 1) plus Max-Terminate × restart.
    assert!(s.now - t_up < 60_000_000 + 60_000_000);
}

#[test]
fn admin_close_terminates_both_sides() {
    let mut s = bring_up(AuthProtocol::ChapMd5, 0, 31);
    s.b.close(Timestamp(s.now));
    assert!(s.run(30_000_000, |s| link_down(&s.ev_a).is_some()
        && link_down(&s.ev_b).is_some()));
    assert_eq!(link_down(&s.ev_b), Some(DownReason::AdminClose));
    assert_eq!(link_down(&s.ev_a), Some(DownReason::PeerTerminated));
    assert!(has(&s.ev_b, |e| *e == Event::Ipv6Down));
    assert_eq!(s.a.send_ip(&[0x45; 20]), Err(ul2tp_ppp::PppError::NotUp));
}

#[test]
fn silent_peer_during_establish_gives_up_after_max_configure() {
    let mut e = client(b"x", 4);
    e.open(Timestamp(0));
    let mut sent = 0;
    let mut now = Timestamp(0);
    let mut down = None;
    for _ in 0..100 {
        while e.poll_transmit().is_some() {
            sent += 1;
        }
        while let Some(ev) = e.poll_event() {
            if let Event::LinkDown { reason } = ev {
                down = Some(reason);
            }
        }
        let Some(t) = e.poll_timeout() else { break };
        now = t;
        e.handle_timeout(now);
    }
    assert_eq!(sent, 10);
    assert_eq!(down, Some(DownReason::NegotiationFailed));
    assert_eq!(now, Timestamp(30_000_000));
}

#[test]
fn authenticator_falls_back_to_the_protocol_the_peer_naks_with() {
    // Preference list: CHAP-MD5 first, PAP acceptable.
    let cfg = Config {
        require_auth: vec![AuthProtocol::ChapMd5, AuthProtocol::Pap],
        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        peer_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
        ..Config::default()
    };
    let mut srv = new_ep(cfg, 41);
    srv.set_credentials(Box::new(StaticCredentials(vec![(
        b"alice".to_vec(),
        b"pw".to_vec(),
    )])));
    let cli = new_ep(
        Config {
            user: Some((b"alice".to_vec(), b"pw".to_vec())),
            allow_auth: vec![AuthProtocol::Pap],
            ..Config::default()
        },
        42,
    );
    let mut s = Sim::new(srv, cli, 0, 43);
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    let up = |s: &Sim| has(&s.ev_a, |e| matches!(e, Event::NetworkUp { .. }));
    assert!(s.run(30_000_000, up), "{:?} {:?}", s.ev_a, s.ev_b);
    assert!(has(&s.ev_a, |e| *e
        == Event::AuthSuccess {
            peer_name: b"alice".to_vec()
        }));
}

#[test]
fn peer_that_refuses_every_auth_protocol_is_dropped() {
    let cli = new_ep(
        Config {
            user: Some((b"alice".to_vec(), b"pw".to_vec())),
            allow_auth: vec![AuthProtocol::Pap],
            ..Config::default()
        },
        52,
    );
    // Server accepts only CHAP-MD5; the client Naks with PAP, which is not acceptable.
    let mut s = Sim::new(server(AuthProtocol::ChapMd5, 51), cli, 0, 53);
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    assert!(s.run(60_000_000, |s| link_down(&s.ev_a).is_some()));
    assert_eq!(link_down(&s.ev_a), Some(DownReason::AuthFailed));
    assert!(!has(&s.ev_a, |e| *e == Event::LinkUp));
}

#[test]
fn mutual_authentication_in_both_directions() {
    // The server demands CHAP-MD5 from the client; the client demands PAP from the server.
    for loss in [0, 20] {
        let mut s = Sim::new(
            {
                let mut e = new_ep(
                    Config {
                        require_auth: vec![AuthProtocol::ChapMd5],
                        user: Some((b"lns".to_vec(), b"lns-secret".to_vec())),
                        allow_auth: vec![AuthProtocol::Pap],
                        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
                        peer_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
                        ..Config::default()
                    },
                    71 + loss,
                );
                e.set_credentials(Box::new(StaticCredentials(vec![(
                    b"alice".to_vec(),
                    b"pw".to_vec(),
                )])));
                e
            },
            {
                let mut e = new_ep(
                    Config {
                        require_auth: vec![AuthProtocol::Pap],
                        user: Some((b"alice".to_vec(), b"pw".to_vec())),
                        ..Config::default()
                    },
                    72 + loss,
                );
                e.set_credentials(Box::new(StaticCredentials(vec![(
                    b"lns".to_vec(),
                    b"lns-secret".to_vec(),
                )])));
                e
            },
            loss,
            73,
        );
        s.a.open(Timestamp(0));
        s.b.open(Timestamp(0));
        let up = |s: &Sim| {
            has(&s.ev_a, |e| matches!(e, Event::NetworkUp { .. }))
                && has(&s.ev_b, |e| matches!(e, Event::NetworkUp { .. }))
        };
        assert!(s.run(120_000_000, up), "{:?} {:?}", s.ev_a, s.ev_b);
        for (ev, name) in [(&s.ev_a, &b"alice"[..]), (&s.ev_b, &b"lns"[..])] {
            assert!(has(ev, |e| *e
                == Event::AuthSuccess {
                    peer_name: name.to_vec()
                }));
            assert!(has(ev, |e| *e == Event::Authenticated));
        }
    }
}

/// `external_auth`: the server reports what the peer presented and waits; the owner checks
/// it (here with the secret, as a RADIUS server would) and its verdict decides. Over a lossy
/// link the peer's retransmissions while the owner checks produce no second request.
fn external(auth: AuthProtocol, password: &[u8], loss: u64, seed: u64) -> Sim {
    let cfg = Config {
        require_auth: vec![auth],
        external_auth: true,
        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        peer_ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
        ..Config::default()
    };
    let srv = new_ep(cfg, seed);
    let mut s = Sim::new(srv, client(password, seed + 1), loss, seed);
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    let asked = |s: &Sim| has(&s.ev_a, |e| matches!(e, Event::AuthRequest(_)));
    assert!(s.run(60_000_000, asked), "{:?}", s.ev_a);
    // The owner takes its time: the peer retransmits meanwhile.
    let later = s.now + 7_000_000;
    s.run(7_000_000, |s| s.now >= later);
    let requests: Vec<_> = s
        .ev_a
        .iter()
        .filter_map(|e| match e {
            Event::AuthRequest(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 1, "one request while pending: {requests:?}");
    let secret = b"wonderland-secret";
    let (ok, message) = match &requests[0] {
        ul2tp_ppp::AuthRequest::Pap {
            peer_name,
            password,
        } => (peer_name == b"alice" && password == secret, Vec::new()),
        ul2tp_ppp::AuthRequest::Chap {
            identifier,
            challenge,
            response,
            ..
        } => {
            let want = ul2tp_ppp::packet::chap_md5_response(*identifier, secret, challenge);
            (want[..] == response[..], Vec::new())
        }
        ul2tp_ppp::AuthRequest::MsChapV2 {
            peer_name,
            challenge,
            response,
            ..
        } => {
            let auth_ch: [u8; 16] = challenge[..].try_into().unwrap();
            let peer_ch: [u8; 16] = response[..16].try_into().unwrap();
            let pw = String::from_utf8_lossy(secret);
            let nt = ul2tp_ppp::mschapv2::nt_response(&auth_ch, &peer_ch, peer_name, &pw);
            let ok = nt[..] == response[24..48];
            let s = ul2tp_ppp::mschapv2::authenticator_response(
                &pw, &nt, &peer_ch, &auth_ch, peer_name,
            );
            (ok, if ok { s.into_bytes() } else { Vec::new() })
        }
    };
    assert_eq!(
        ok,
        password == secret,
        "the request carries what the peer sent"
    );
    s.a.auth_verdict(Timestamp(s.now), ok, &message);
    s
}

#[test]
fn external_authentication_decides() {
    for auth in [
        AuthProtocol::Pap,
        AuthProtocol::ChapMd5,
        AuthProtocol::MsChapV2,
    ] {
        for (loss, seed) in [(0, 3), (20, 41), (20, 97)] {
            let mut s = external(auth, b"wonderland-secret", loss, seed);
            let up = |s: &Sim| {
                has(&s.ev_a, |e| matches!(e, Event::NetworkUp { .. }))
                    && has(&s.ev_b, |e| matches!(e, Event::NetworkUp { .. }))
            };
            assert!(s.run(300_000_000, up), "{auth:?} {:?} {:?}", s.ev_a, s.ev_b);
            assert!(has(&s.ev_b, |e| *e == Event::Authenticated), "{auth:?}");

            let mut s = external(auth, b"guess", loss, seed);
            let down = |s: &Sim| link_down(&s.ev_a).is_some() && link_down(&s.ev_b).is_some();
            assert!(
                s.run(60_000_000, down),
                "{auth:?} {:?} {:?}",
                s.ev_a,
                s.ev_b
            );
            assert_eq!(link_down(&s.ev_a), Some(DownReason::AuthFailed));
            assert!(has(&s.ev_b, |e| *e == Event::AuthRejected), "{auth:?}");
        }
    }
}

/// `require_peer_ip` without an address for the peer (the LNS's pools are exhausted): the
/// server authenticates the peer, then closes the link instead of starting IPCP
/// (NoAddress); the client sees a Terminate-Request. With an address the link comes up.
#[test]
fn no_address_for_the_peer_terminates_after_authentication() {
    let cfg = Config {
        require_auth: vec![AuthProtocol::ChapMd5],
        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        require_peer_ip: true,
        ipv6cp: true,
        ..Config::default()
    };
    let mut srv = new_ep(cfg.clone(), 71);
    srv.set_credentials(Box::new(StaticCredentials(vec![(
        b"alice".to_vec(),
        b"wonderland-secret".to_vec(),
    )])));
    let mut s = Sim::new(srv, client(b"wonderland-secret", 72), 0, 71);
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    assert!(s.run(60_000_000, |s| link_down(&s.ev_a).is_some()
        && link_down(&s.ev_b).is_some()));
    assert_eq!(link_down(&s.ev_a), Some(DownReason::NoAddress));
    assert_eq!(link_down(&s.ev_b), Some(DownReason::PeerTerminated));
    assert!(has(&s.ev_a, |e| matches!(e, Event::AuthSuccess { .. })));
    for ev in [&s.ev_a, &s.ev_b] {
        assert!(!has(ev, |e| matches!(e, Event::NetworkUp { .. })));
    }
    // The same server with an address (as RADIUS would set it before the verdict).
    let mut srv = new_ep(cfg, 73);
    srv.set_credentials(Box::new(StaticCredentials(vec![(
        b"alice".to_vec(),
        b"wonderland-secret".to_vec(),
    )])));
    srv.set_peer_ip(Some(Ipv4Addr::new(10, 0, 0, 2)));
    let mut s = Sim::new(srv, client(b"wonderland-secret", 74), 0, 73);
    s.a.open(Timestamp(0));
    s.b.open(Timestamp(0));
    assert!(s.run(60_000_000, all_up), "{:?} {:?}", s.ev_a, s.ev_b);
}
