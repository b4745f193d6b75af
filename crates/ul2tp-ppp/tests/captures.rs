//! PPP frames from real L2TPv2 captures: parse and re-emit byte-exactly, and replay the
//! l2tpns LNS side against a client endpoint.

use std::net::{IpAddr, Ipv4Addr};

use ul2tp_ppp::packet::{self, emit_options, parse_options, Chap, Packet, Pap};
use ul2tp_ppp::{Config, Endpoint, Timestamp};
use ul2tp_wire::data::V2DataHeader;
use ul2tp_wire::pcap::{extract, records};
use ul2tp_wire::ppp::{proto, strip_address_control};
use ul2tp_wire::Encap;

/// An endpoint with a fixed 32-byte seed derived from `n` (reproducible runs).
fn new_ep(cfg: Config, n: u64) -> Endpoint {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    Endpoint::new(cfg, seed)
}

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/captures");

/// (source address, PPP frame without FF 03) for every PPP frame in an L2TPv2 capture.
fn ppp_frames(name: &str) -> Vec<(IpAddr, Vec<u8>)> {
    let file = std::fs::read(format!("{DIR}/{name}")).unwrap();
    let mut out = Vec::new();
    for r in records(&file).unwrap() {
        let r = r.unwrap();
        let Some(d) = extract(r.frame) else { continue };
        if d.transport != Encap::Udp || (d.src.port() != 1701 && d.dst.port() != 1701) {
            continue;
        }
        let Ok((_, off)) = V2DataHeader::parse(d.payload) else {
            continue;
        };
        let Some(ppp) = d.payload.get(off..) else {
            continue;
        };
        out.push((d.src.ip(), strip_address_control(ppp).to_vec()));
    }
    out
}

fn v2_captures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("v2-") && n.ends_with(".pcap"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_captured_control_packet_parses_and_reemits_byte_exactly() {
    let (mut lcp, mut pap, mut chap, mut ipcp, mut ipv6cp) = (0, 0, 0, 0, 0);
    for name in v2_captures() {
        for (_, f) in ppp_frames(&name) {
            let (protocol, info) = packet::split_frame(&f).unwrap();
            if ![
                proto::LCP,
                proto::PAP,
                proto::CHAP,
                proto::IPCP,
                proto::IPV6CP,
            ]
            .contains(&protocol)
            {
                continue;
            }
            let p = Packet::parse(info).unwrap_or_else(|e| panic!("{name}: {e} {f:02x?}"));
            assert_eq!(p.emit().unwrap(), info[..p.len()], "{name}");
            match protocol {
                proto::PAP => {
                    pap += 1;
                    let b = Pap::parse(p.code, p.data).unwrap();
                    assert_eq!(b.emit_body(), p.data, "{name}");
                }
                proto::CHAP => {
                    chap += 1;
                    let b = Chap::parse(p.code, p.data).unwrap();
                    assert_eq!(b.emit_body(), p.data, "{name}");
                }
                _ => {
                    match protocol {
                        proto::LCP => lcp += 1,
                        proto::IPCP => ipcp += 1,
                        _ => ipv6cp += 1,
                    }
                    if (1..=4).contains(&p.code) {
                        let o = parse_options(p.data).unwrap();
                        assert_eq!(emit_options(&o), p.data, "{name}");
                    }
                }
            }
        }
    }
    eprintln!("lcp {lcp} pap {pap} chap {chap} ipcp {ipcp} ipv6cp {ipv6cp}");
    assert!(lcp >= 20 && pap >= 2 && ipcp >= 8 && ipv6cp >= 1);
}

fn hdr(f: &[u8]) -> Option<(u16, u8, u8)> {
    let (p, info) = packet::split_frame(f).ok()?;
    let pk = Packet::parse(info).ok()?;
    Some((p, pk.code, pk.identifier))
}

/// Replay the l2tpns LNS side of v2-guest-xl2tpd-lac-vs-l2tpns.pcap into a client endpoint
/// configured like the captured pppd client (user lab/lab, MRU 1400, ACCM 0, IPv6CP on) and
/// check that it answers every LNS Configure-Request with the same code (Ack/Nak/Reject) as
/// the captured client. LNS Configure-Acks and -Naks of the *client's* requests are re-aimed
/// at our own requests (our magic number differs): an Ack carries our last request's options,
/// a Nak keeps its options but takes our last request's identifier.
#[test]
fn l2tpns_lns_side_replayed_into_client_gets_same_answer_types() {
    let frames = ppp_frames("v2-guest-xl2tpd-lac-vs-l2tpns.pcap");
    let lns: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let cfg = Config {
        user: Some((b"lab".to_vec(), b"lab".to_vec())),
        mru: 1400,
        accm: Some(0),
        ipv6cp: true,
        ..Config::default()
    };
    let mut ep = new_ep(cfg, 99);
    ep.open(Timestamp(0));
    let mut sent: Vec<Vec<u8>> = Vec::new();
    while let Some(f) = ep.poll_transmit() {
        sent.push(f);
    }
    let last_req = |sent: &[Vec<u8>], p: u16| -> Option<Vec<u8>> {
        sent.iter()
            .rev()
            .find(|f| hdr(f).is_some_and(|h| h.0 == p && h.1 == 1))
            .cloned()
    };
    let mut compared = 0;
    for (i, (src, f)) in frames.iter().enumerate() {
        if *src != lns {
            continue;
        }
        let Some((p, c, id)) = hdr(f) else { continue };
        if p == proto::IPV4 {
            continue;
        }
        let mut feed = f.clone();
        if (p == proto::LCP || p == proto::IPCP) && (c == 2 || c == 3) {
            let ours = last_req(&sent, p).expect("a request to answer");
            let (_, info) = packet::split_frame(&ours).unwrap();
            let our = Packet::parse(info).unwrap();
            let (_, finfo) = packet::split_frame(f).unwrap();
            let data = if c == 2 {
                our.data
            } else {
                Packet::parse(finfo).unwrap().data
            };
            feed = packet::frame(p, &packet::emit_packet(c, our.identifier, data).unwrap());
        }
        let start = sent.len();
        let _ = ep.handle_frame(Timestamp(1000 * i as u64), &feed);
        while let Some(f) = ep.poll_transmit() {
            sent.push(f);
        }
        if c == 1 {
            // The captured client's answer to this request.
            let want = frames[i + 1..]
                .iter()
                .filter(|(s, _)| *s != lns)
                .filter_map(|(_, f)| hdr(f))
                .find(|h| h.0 == p && (2..=4).contains(&h.1) && h.2 == id)
                .map(|h| h.1);
            let got = sent[start..]
                .iter()
                .filter_map(|f| hdr(f))
                .find(|h| h.0 == p && (2..=4).contains(&h.1) && h.2 == id)
                .map(|h| h.1);
            // pppd had not started when l2tpns sent its first request: no answer to compare.
            if want.is_none() {
                continue;
            }
            assert_eq!(
                got, want,
                "answer to LNS request {p:04x} id {id} (frame {i})"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 3, "two LCP and one IPCP request");
    // PAP went out with the configured credentials.
    let pap = sent
        .iter()
        .find(|f| hdr(f).is_some_and(|h| h.0 == proto::PAP))
        .unwrap();
    assert_eq!(
        &pap[2..],
        &[1, 1, 0, 12, 3, b'l', b'a', b'b', 3, b'l', b'a', b'b']
    );
    // The Nak'd address was adopted and the link came up as in the capture.
    let mut events = Vec::new();
    while let Some(e) = ep.poll_event() {
        events.push(e);
    }
    assert!(
        events.contains(&ul2tp_ppp::Event::NetworkUp {
            local: Ipv4Addr::new(198, 51, 100, 64),
            peer: Ipv4Addr::new(203, 0, 113, 1),
            dns: vec![],
        }),
        "{events:?}"
    );
    // IPv6CP was Protocol-Rejected by l2tpns: it stopped, the link stays up.
    assert_eq!(ep.ipv6cp_state(), ul2tp_ppp::fsm::State::Stopped);
    assert_eq!(ep.lcp_state(), ul2tp_ppp::fsm::State::Opened);
}
