//! Option negotiation and packet handling of a single endpoint, driven with hand-made frames.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use ul2tp_ppp::fsm::State;
use ul2tp_ppp::packet::{self, emit_packet, frame, parse_options, push_option, Packet};
use ul2tp_ppp::{Config, Endpoint, Event, Phase, Timestamp};
use ul2tp_wire::ppp::proto;

/// An endpoint with a fixed 32-byte seed derived from `n` (reproducible runs).
fn new_ep(cfg: Config, n: u64) -> Endpoint {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    Endpoint::new(cfg, seed)
}

const T: Timestamp = Timestamp(0);

fn drain(ep: &mut Endpoint) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

/// (protocol, code, identifier, data) of a sent frame.
fn dec(f: &[u8]) -> (u16, u8, u8, Vec<u8>) {
    let (p, info) = packet::split_frame(f).unwrap();
    let pk = Packet::parse(info).unwrap();
    (p, pk.code, pk.identifier, pk.data.to_vec())
}

fn cp(p: u16, code: u8, id: u8, data: &[u8]) -> Vec<u8> {
    frame(p, &emit_packet(code, id, data).unwrap())
}

fn opt(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    push_option(&mut v, kind, data);
    v
}

/// Acknowledge the endpoint's last Configure-Request of protocol `p` in `sent`.
fn ack_last(ep: &mut Endpoint, sent: &[Vec<u8>], p: u16) {
    let (_, _, id, data) = sent
        .iter()
        .map(|f| dec(f))
        .rfind(|d| d.0 == p && d.1 == 1)
        .unwrap();
    ep.handle_frame(T, &cp(p, 2, id, &data)).unwrap();
}

/// An endpoint with LCP Opened (no authentication), now in the Network phase.
fn opened(cfg: Config) -> (Endpoint, Vec<Vec<u8>>) {
    let mut ep = new_ep(cfg, 5);
    ep.open(T);
    let sent = drain(&mut ep);
    ack_last(&mut ep, &sent, proto::LCP);
    ep.handle_frame(T, &cp(proto::LCP, 1, 40, &opt(5, &[1, 2, 3, 4])))
        .unwrap();
    assert_eq!(ep.lcp_state(), State::Opened);
    assert_eq!(ep.phase(), Phase::Network);
    let sent = drain(&mut ep);
    (ep, sent)
}

#[test]
fn lcp_nak_and_reject_rules() {
    let mut ep = new_ep(Config::default(), 1);
    ep.open(T);
    drain(&mut ep);
    // Magic 0 and MRU 100 are Nak'd with usable values.
    let mut req = opt(1, &100u16.to_be_bytes());
    req.extend(opt(5, &[0, 0, 0, 0]));
    ep.handle_frame(T, &cp(proto::LCP, 1, 7, &req)).unwrap();
    let (p, code, id, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((p, code, id), (proto::LCP, 3, 7));
    let o = parse_options(&data).unwrap();
    assert_eq!(o[0].kind, 1);
    assert_eq!(o[0].u16(), Some(1500));
    assert_eq!(o[1].kind, 5);
    assert_ne!(o[1].u32(), Some(0));
    // An unknown option (MRRU) and PFC (not configured) are rejected; rejects win over naks.
    let mut req = opt(5, &[0, 0, 0, 0]);
    req.extend(opt(17, &[6, 0x4e]));
    req.extend(opt(7, &[]));
    ep.handle_frame(T, &cp(proto::LCP, 1, 8, &req)).unwrap();
    let (_, code, id, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((code, id), (4, 8));
    let mut want = opt(17, &[6, 0x4e]);
    want.extend(opt(7, &[]));
    assert_eq!(data, want);
    // Authentication requested from a client without credentials: Reject.
    ep.handle_frame(T, &cp(proto::LCP, 1, 9, &opt(3, &[0xc0, 0x23])))
        .unwrap();
    assert_eq!(dec(&drain(&mut ep)[0]).1, 4);
}

#[test]
fn lcp_auth_nak_suggests_what_we_can_do() {
    let cfg = Config {
        user: Some((b"u".to_vec(), b"p".to_vec())),
        allow_auth: vec![ul2tp_ppp::AuthProtocol::Pap],
        ..Config::default()
    };
    let mut ep = new_ep(cfg, 1);
    ep.open(T);
    drain(&mut ep);
    // CHAP-MD5 is not allowed: Nak with PAP.
    ep.handle_frame(T, &cp(proto::LCP, 1, 3, &opt(3, &[0xc2, 0x23, 5])))
        .unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((code, data), (3, opt(3, &[0xc0, 0x23])));
    ep.handle_frame(T, &cp(proto::LCP, 1, 4, &opt(3, &[0xc0, 0x23])))
        .unwrap();
    assert_eq!(dec(&drain(&mut ep)[0]).1, 2);
}

#[test]
fn max_failure_turns_naks_into_rejects() {
    let mut ep = new_ep(Config::default(), 1);
    ep.open(T);
    drain(&mut ep);
    let mut codes = Vec::new();
    for id in 0..7 {
        ep.handle_frame(T, &cp(proto::LCP, 1, id, &opt(5, &[0; 4])))
            .unwrap();
        codes.extend(drain(&mut ep).iter().map(|f| dec(f).1).filter(|c| *c != 1));
    }
    assert_eq!(codes, vec![3, 3, 3, 3, 3, 4, 4]);
}

#[test]
fn stale_or_altered_ack_is_discarded() {
    let mut ep = new_ep(Config::default(), 1);
    ep.open(T);
    let sent = drain(&mut ep);
    let (_, _, id, data) = dec(&sent[0]);
    assert!(ep
        .handle_frame(T, &cp(proto::LCP, 2, id.wrapping_add(1), &data))
        .is_err());
    let mut changed = data.clone();
    if let Some(last) = changed.last_mut() {
        *last ^= 1;
    }
    assert!(ep
        .handle_frame(T, &cp(proto::LCP, 2, id, &changed))
        .is_err());
    assert_eq!(ep.lcp_state(), State::ReqSent);
    ep.handle_frame(T, &cp(proto::LCP, 2, id, &data)).unwrap();
    assert_eq!(ep.lcp_state(), State::AckRcvd);
}

#[test]
fn echo_protocol_reject_and_code_reject_when_opened() {
    let (mut ep, _) = opened(Config::default());
    // Echo-Request ⇒ Echo-Reply with our magic, same id and data.
    ep.handle_frame(T, &cp(proto::LCP, 9, 77, &[1, 2, 3, 4, 0xaa, 0xbb]))
        .unwrap();
    let (p, code, id, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((p, code, id), (proto::LCP, 10, 77));
    assert_eq!(&data[4..], &[0xaa, 0xbb]);
    assert_ne!(&data[..4], &[0, 0, 0, 0]);
    // Echo-Reply and Discard-Request are RXR too but get no answer.
    ep.handle_frame(T, &cp(proto::LCP, 10, 78, &[1, 2, 3, 4]))
        .unwrap();
    ep.handle_frame(T, &cp(proto::LCP, 11, 79, &[1, 2, 3, 4]))
        .unwrap();
    assert!(drain(&mut ep).is_empty());
    // Unknown protocol ⇒ Protocol-Reject carrying the protocol and the information.
    ep.handle_frame(T, &[0x80, 0xfd, 1, 1, 0, 4]).unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    assert_eq!(code, 8);
    assert_eq!(data, vec![0x80, 0xfd, 1, 1, 0, 4]);
    // Unknown LCP code ⇒ Code-Reject with the packet.
    ep.handle_frame(T, &cp(proto::LCP, 42, 5, &[9])).unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((code, data), (7, vec![42, 5, 0, 5, 9]));
    // A disabled NCP (IPv6CP) is Protocol-Rejected too.
    ep.handle_frame(T, &cp(proto::IPV6CP, 1, 1, &opt(1, &[1; 8])))
        .unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((code, &data[..2]), (8, &[0x80u8, 0x57][..]));
}

#[test]
fn ncp_packets_before_network_phase_are_discarded() {
    let cfg = Config {
        ipv6cp: true,
        ..Config::default()
    };
    let mut ep = new_ep(cfg, 1);
    ep.open(T);
    drain(&mut ep);
    assert!(ep
        .handle_frame(T, &cp(proto::IPCP, 1, 1, &opt(3, &[10, 0, 0, 1])))
        .is_err());
    assert!(ep.handle_frame(T, &[0x00, 0x21, 0x45]).is_err());
    assert!(drain(&mut ep).is_empty());
}

#[test]
fn ipcp_server_assigns_address_and_dns() {
    let cfg = Config {
        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        peer_ip: Some(Ipv4Addr::new(10, 0, 0, 9)),
        dns: [Some(Ipv4Addr::new(9, 9, 9, 9)), None],
        ..Config::default()
    };
    let (mut ep, sent) = opened(cfg);
    // Our own IPCP request carries our address.
    let (_, _, _, data) = sent
        .iter()
        .map(|f| dec(f))
        .find(|d| d.0 == proto::IPCP)
        .unwrap();
    assert_eq!(data, opt(3, &[10, 0, 0, 1]));
    // Client asks for 0.0.0.0, primary and secondary DNS.
    let mut req = opt(3, &[0; 4]);
    req.extend(opt(129, &[0; 4]));
    req.extend(opt(131, &[0; 4]));
    ep.handle_frame(T, &cp(proto::IPCP, 1, 1, &req)).unwrap();
    // Secondary DNS is unconfigured: Reject first.
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((code, data), (4, opt(131, &[0; 4])));
    let mut req = opt(3, &[0; 4]);
    req.extend(opt(129, &[0; 4]));
    ep.handle_frame(T, &cp(proto::IPCP, 1, 2, &req)).unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    let mut want = opt(3, &[10, 0, 0, 9]);
    want.extend(opt(129, &[9, 9, 9, 9]));
    assert_eq!((code, data), (3, want.clone()));
    ep.handle_frame(T, &cp(proto::IPCP, 1, 3, &want)).unwrap();
    assert_eq!(dec(&drain(&mut ep)[0]).1, 2);
    ack_last(&mut ep, &sent, proto::IPCP);
    assert_eq!(ep.ipcp_state(), State::Opened);
    let ev: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
    assert!(ev.contains(&Event::NetworkUp {
        local: Ipv4Addr::new(10, 0, 0, 1),
        peer: Ipv4Addr::new(10, 0, 0, 9),
        dns: vec![]
    }));
}

#[test]
fn ipcp_server_hands_out_nbns_servers() {
    let cfg = Config {
        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        peer_ip: Some(Ipv4Addr::new(10, 0, 0, 9)),
        nbns: [Some(Ipv4Addr::new(10, 0, 0, 137)), None],
        ..Config::default()
    };
    let (mut ep, _) = opened(cfg);
    // Primary NBNS is configured: Nak with it; secondary NBNS and DNS are not: Reject.
    let mut req = opt(3, &[10, 0, 0, 9]);
    req.extend(opt(130, &[0; 4]));
    req.extend(opt(129, &[0; 4]));
    req.extend(opt(132, &[0; 4]));
    ep.handle_frame(T, &cp(proto::IPCP, 1, 1, &req)).unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    let mut rej = opt(129, &[0; 4]);
    rej.extend(opt(132, &[0; 4]));
    assert_eq!((code, data), (4, rej));
    let mut req = opt(3, &[10, 0, 0, 9]);
    req.extend(opt(130, &[0; 4]));
    ep.handle_frame(T, &cp(proto::IPCP, 1, 2, &req)).unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    assert_eq!((code, data), (3, opt(130, &[10, 0, 0, 137])));
}

#[test]
fn ipv6cp_interface_identifier_rules() {
    let cfg = Config {
        ipv6cp: true,
        ipcp: false,
        interface_id: Some(0x1111),
        ..Config::default()
    };
    let (mut ep, _) = opened(cfg);
    // R = 0 ⇒ Nak with a non-zero value different from ours.
    ep.handle_frame(T, &cp(proto::IPV6CP, 1, 1, &opt(1, &[0; 8])))
        .unwrap();
    let (_, code, _, data) = dec(&drain(&mut ep)[0]);
    let v = parse_options(&data).unwrap()[0].u64().unwrap();
    assert_eq!(code, 3);
    assert!(v != 0 && v != 0x1111);
    // R = ours ⇒ Nak.
    ep.handle_frame(
        T,
        &cp(proto::IPV6CP, 1, 2, &opt(1, &0x1111u64.to_be_bytes())),
    )
    .unwrap();
    assert_eq!(dec(&drain(&mut ep)[0]).1, 3);
    // R different and non-zero ⇒ Ack.
    ep.handle_frame(
        T,
        &cp(proto::IPV6CP, 1, 3, &opt(1, &0x2222u64.to_be_bytes())),
    )
    .unwrap();
    assert_eq!(dec(&drain(&mut ep)[0]).1, 2);
}

/// An assigned peer identifier (RADIUS Framed-Interface-Id): any other value, 0 included, is
/// Nak'ed with it; it is acknowledged.
#[test]
fn ipv6cp_assigned_peer_identifier() {
    let cfg = Config {
        ipv6cp: true,
        ipcp: false,
        interface_id: Some(0x1111),
        ..Config::default()
    };
    let (mut ep, _) = opened(cfg);
    ep.set_peer_interface_id(Some(0x4242));
    for (id, r) in [(1u8, 0u64), (2, 0x2222)] {
        ep.handle_frame(T, &cp(proto::IPV6CP, 1, id, &opt(1, &r.to_be_bytes())))
            .unwrap();
        let (_, code, _, data) = dec(&drain(&mut ep)[0]);
        assert_eq!(
            (code, data),
            (3, opt(1, &0x4242u64.to_be_bytes())),
            "R = {r:#x}"
        );
    }
    ep.handle_frame(
        T,
        &cp(proto::IPV6CP, 1, 3, &opt(1, &0x4242u64.to_be_bytes())),
    )
    .unwrap();
    assert_eq!(dec(&drain(&mut ep)[0]).1, 2);
}

#[test]
fn peer_terminate_request_is_acked_and_link_goes_down() {
    let (mut ep, _) = opened(Config::default());
    ep.handle_frame(T, &cp(proto::LCP, 5, 33, b"bye")).unwrap();
    let (_, code, id, _) = dec(&drain(&mut ep)[0]);
    assert_eq!((code, id), (6, 33));
    assert_eq!(ep.lcp_state(), State::Stopping);
    // zrc: one restart period, then finished.
    let t = ep.poll_timeout().unwrap();
    ep.handle_timeout(t);
    let ev: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
    assert!(ev.contains(&Event::LinkDown {
        reason: ul2tp_ppp::DownReason::PeerTerminated
    }));
    assert_eq!(ep.phase(), Phase::Dead);
}

proptest! {
    #[test]
    fn endpoint_never_panics_on_arbitrary_frames(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20),
        protos in proptest::collection::vec(prop_oneof![
            Just(proto::LCP), Just(proto::PAP), Just(proto::CHAP), Just(proto::IPCP),
            Just(proto::IPV6CP), Just(proto::IPV4), any::<u16>()], 20),
    ) {
        let cfg = Config { ipv6cp: true, ..Config::default() };
        let (mut ep, _) = opened(cfg);
        let mut now = 0u64;
        for (f, p) in frames.iter().zip(protos) {
            now += 500_000;
            let mut fr = p.to_be_bytes().to_vec();
            fr.extend_from_slice(f);
            let _ = ep.handle_frame(Timestamp(now), &fr);
            let _ = ep.handle_frame(Timestamp(now), f);
            ep.handle_timeout(Timestamp(now));
            drain(&mut ep);
            while ep.poll_event().is_some() {}
        }
    }
}

proptest! {
    #[test]
    fn authenticating_endpoints_never_panic(
        which in 0usize..3,
        client_side in any::<bool>(),
        frames in proptest::collection::vec(
            (prop_oneof![Just(proto::PAP), Just(proto::CHAP), Just(proto::LCP)],
             any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..80)),
            0..20),
    ) {
        let auth = [
            ul2tp_ppp::AuthProtocol::Pap,
            ul2tp_ppp::AuthProtocol::ChapMd5,
            ul2tp_ppp::AuthProtocol::MsChapV2,
        ][which];
        let cfg = if client_side {
            Config { user: Some((b"u".to_vec(), b"p".to_vec())), ..Config::default() }
        } else {
            Config { require_auth: vec![auth], ..Config::default() }
        };
        let mut ep = new_ep(cfg, 3);
        ep.set_credentials(Box::new(ul2tp_ppp::StaticCredentials(vec![(
            b"u".to_vec(),
            b"p".to_vec(),
        )])));
        ep.open(T);
        let sent = drain(&mut ep);
        ack_last(&mut ep, &sent, proto::LCP);
        let mut req = opt(5, &[1, 2, 3, 4]);
        if client_side {
            req.extend(opt(3, auth.option_data()));
        }
        ep.handle_frame(T, &cp(proto::LCP, 1, 40, &req)).unwrap();
        prop_assert_eq!(ep.phase(), Phase::Authenticate);
        drain(&mut ep);
        let mut now = 0u64;
        for (p, code, id, data) in frames {
            now += 700_000;
            let _ = ep.handle_frame(Timestamp(now), &cp(p, code % 6, id, &data));
            ep.handle_timeout(Timestamp(now));
            drain(&mut ep);
            while ep.poll_event().is_some() {}
        }
    }
}

#[test]
fn configure_request_in_opened_renegotiates_and_takes_ncps_down() {
    let cfg = Config {
        local_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        peer_ip: Some(Ipv4Addr::new(10, 0, 0, 9)),
        ..Config::default()
    };
    let (mut ep, sent) = opened(cfg);
    ack_last(&mut ep, &sent, proto::IPCP);
    ep.handle_frame(T, &cp(proto::IPCP, 1, 1, &opt(3, &[10, 0, 0, 9])))
        .unwrap();
    assert_eq!(ep.ipcp_state(), State::Opened);
    drain(&mut ep);
    while ep.poll_event().is_some() {}
    // The peer restarts LCP: tld (NCPs Down), scr, sca ⇒ Ack-Sent.
    ep.handle_frame(T, &cp(proto::LCP, 1, 90, &opt(5, &[5, 6, 7, 8])))
        .unwrap();
    assert_eq!(ep.lcp_state(), State::AckSent);
    assert_eq!(ep.ipcp_state(), State::Starting);
    let sent = drain(&mut ep);
    let codes: Vec<(u16, u8)> = sent.iter().map(|f| (dec(f).0, dec(f).1)).collect();
    assert_eq!(codes, vec![(proto::LCP, 1), (proto::LCP, 2)]);
    let ev: Vec<Event> = std::iter::from_fn(|| ep.poll_event()).collect();
    assert_eq!(ev, vec![Event::NetworkDown]);
    assert_eq!(ep.send_ip(&[0x45; 20]), Err(ul2tp_ppp::PppError::NotUp));
    // Our new request is acked ⇒ LinkUp again and IPCP restarts with a fresh request.
    ack_last(&mut ep, &sent, proto::LCP);
    assert_eq!(ep.lcp_state(), State::Opened);
    assert_eq!(ep.poll_event(), Some(Event::LinkUp));
    assert_eq!(ep.ipcp_state(), State::ReqSent);
    let again = drain(&mut ep);
    assert_eq!(dec(&again[0]).0, proto::IPCP);
    assert_eq!(dec(&again[0]).1, 1);
}

/// The Magic-Number of the first LCP Configure-Request and the CHAP Challenge (value, name) of
/// a CHAP-MD5 authenticator seeded with `seed`.
fn magic_and_challenge(seed: [u8; 32]) -> (u32, Vec<u8>, Vec<u8>) {
    let cfg = Config {
        require_auth: vec![ul2tp_ppp::AuthProtocol::ChapMd5],
        auth_name: b"lns.example".to_vec(),
        ..Config::default()
    };
    let mut ep = Endpoint::new(cfg, seed);
    ep.open(T);
    let sent = drain(&mut ep);
    let (p, code, _, data) = dec(&sent[0]);
    assert_eq!((p, code), (proto::LCP, 1));
    let magic = parse_options(&data)
        .unwrap()
        .iter()
        .find(|o| o.kind == 5)
        .and_then(|o| o.u32())
        .expect("magic number requested");
    ack_last(&mut ep, &sent, proto::LCP);
    ep.handle_frame(T, &cp(proto::LCP, 1, 40, &opt(5, &[1, 2, 3, 4])))
        .unwrap();
    let (_, _, _, body) = drain(&mut ep)
        .iter()
        .map(|f| dec(f))
        .find(|d| d.0 == proto::CHAP && d.1 == 1)
        .expect("CHAP Challenge once LCP is Opened");
    match packet::Chap::parse(1, &body).unwrap() {
        packet::Chap::Challenge { value, name } => (magic, value.to_vec(), name.to_vec()),
        other => panic!("{other:?}"),
    }
}

/// The 32-byte seed alone decides the random choices: the same seed gives the same magic
/// number and challenge, seeds that differ (even in the last byte, which a seed squeezed
/// through a u64 would lose) give different ones.
#[test]
fn seed_decides_magic_number_and_chap_challenge() {
    let a = [7u8; 32];
    let mut b = a;
    b[31] ^= 1;
    let (ma, ca, name) = magic_and_challenge(a);
    assert_eq!(name, b"lns.example");
    assert_eq!(ca.len(), 16);
    assert_eq!(magic_and_challenge(a), (ma, ca.clone(), name.clone()));
    let (mb, cb, _) = magic_and_challenge(b);
    assert_ne!(ma, mb, "magic numbers of different seeds");
    assert_ne!(ca, cb, "CHAP challenges of different seeds");
}
