//! The model against real captures (tests/data/captures): configured like the Linux kernel side,
//! a session accepts every data packet the peer sent, delivers exactly the pseudowire frame,
//! and re-encapsulating the frames the kernel sent reproduces the kernel's datagrams byte for
//! byte (L2TP header, cookie, sublayer, FF 03).

use std::path::PathBuf;
use ul2tp_core::Timestamp;

use ul2tp_core::PwType;
use ul2tp_core::{
    Cookie, Encap, L2SpecType, Registry, RxOutcome, SessionParams, SocketId, TunnelParams, Version,
};
use ul2tp_wire::pcap;

fn datagrams(file: &str) -> Vec<(String, Encap, Vec<u8>)> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/captures"
    ))
    .join(file);
    let bytes = std::fs::read(path).expect("capture");
    pcap::records(&bytes)
        .expect("pcap")
        .filter_map(|r| {
            let r = r.expect("record");
            pcap::extract(r.frame)
                .map(|d| (d.src.ip().to_string(), d.transport, d.payload.to_vec()))
        })
        .collect()
}

struct Case {
    file: &'static str,
    encap: Encap,
    cookie: &'static [u8],
    peer_cookie: &'static [u8],
    l2spec: L2SpecType,
}

const C8: &[u8] = &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
const P8: &[u8] = &[0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];

const V3: &[Case] = &[
    Case {
        file: "v3-udp4-nocookie.pcap",
        encap: Encap::Udp,
        cookie: &[],
        peer_cookie: &[],
        l2spec: L2SpecType::None,
    },
    Case {
        file: "v3-udp6-nocookie.pcap",
        encap: Encap::Udp,
        cookie: &[],
        peer_cookie: &[],
        l2spec: L2SpecType::None,
    },
    Case {
        file: "v3-udp4-cookie8-l2spec.pcap",
        encap: Encap::Udp,
        cookie: C8,
        peer_cookie: P8,
        l2spec: L2SpecType::Default,
    },
    Case {
        file: "v3-ip4-cookie4.pcap",
        encap: Encap::Ip,
        cookie: &[0x00, 0x11, 0x22, 0x33],
        peer_cookie: &[0x44, 0x55, 0x66, 0x77],
        l2spec: L2SpecType::None,
    },
    Case {
        file: "v3-ip6-cookie8-l2spec.pcap",
        encap: Encap::Ip,
        cookie: C8,
        peer_cookie: P8,
        l2spec: L2SpecType::Default,
    },
];

fn is_kernel(ip: &str) -> bool {
    ip == "192.0.2.2" || ip == "fd00::2"
}

const HEADROOM: usize = 64;

#[test]
fn v3_kernel_side() {
    for c in V3 {
        // captures/README.md: tunnel 1000 -> 2000, session 0x1001 -> 0x2001.
        let r = Registry::new();
        r.tunnel_create(TunnelParams {
            tunnel_id: 1000,
            peer_tunnel_id: 2000,
            version: Version::V3,
            encap: c.encap,
            socket: SocketId(1),
        })
        .unwrap();
        let mut p = SessionParams::new(0x1001, 0x2001, PwType::Ethernet);
        p.cookie = Cookie::new(c.cookie).unwrap();
        p.peer_cookie = Cookie::new(c.peer_cookie).unwrap();
        p.l2spec_type = c.l2spec;
        let s = r.session_create(1000, p).unwrap();
        let hdr = s.hdr_len();
        let (mut rx, mut rx_bytes, mut tx) = (0u64, 0u64, 0);
        for (src, t, payload) in datagrams(c.file) {
            if t != c.encap {
                continue;
            }
            if is_kernel(&src) {
                // Re-encapsulate the kernel's frame.
                let frame = &payload[hdr..];
                let mut buf = vec![0u8; HEADROOM + frame.len()];
                buf[HEADROOM..].copy_from_slice(frame);
                let (a, b) = s.encap(&mut buf, HEADROOM, frame.len()).unwrap();
                assert_eq!(&buf[a..b], &payload[..], "{}", c.file);
                s.tx_done(b - a, true);
                tx += 1;
            } else {
                let mut got = Vec::new();
                let o = r.receive(
                    SocketId(1),
                    c.encap,
                    &payload,
                    Timestamp::from_millis(1),
                    &mut |_, f| got.push(f.to_vec()),
                );
                assert_eq!(o, RxOutcome::Consumed, "{}", c.file);
                assert_eq!(got, [payload[hdr..].to_vec()], "{}", c.file);
                rx += 1;
                rx_bytes += payload.len() as u64;
            }
        }
        assert!(rx >= 5 && tx >= 10, "{}: rx {rx} tx {tx}", c.file);
        let st = s.stats();
        assert_eq!(
            (st.rx_packets, st.rx_bytes, st.rx_errors),
            (rx, rx_bytes, 0),
            "{}",
            c.file
        );
        assert_eq!(st.tx_packets, tx as u64);
    }
}

#[test]
fn v3_cookie_mismatch_on_capture() {
    // The same capture, but expecting the wrong cookie: every peer packet is a cookie discard.
    let r = Registry::new();
    r.tunnel_create(TunnelParams {
        tunnel_id: 1000,
        peer_tunnel_id: 2000,
        version: Version::V3,
        encap: Encap::Udp,
        socket: SocketId(1),
    })
    .unwrap();
    let mut p = SessionParams::new(0x1001, 0x2001, PwType::Ethernet);
    p.peer_cookie = Cookie::new(C8).unwrap();
    let s = r.session_create(1000, p).unwrap();
    let mut n = 0;
    for (src, _, payload) in datagrams("v3-udp4-cookie8-l2spec.pcap") {
        if src == "192.0.2.1" {
            let o = r.receive(
                SocketId(1),
                Encap::Udp,
                &payload,
                Timestamp::from_millis(1),
                &mut |_, _| panic!(),
            );
            assert_eq!(
                o,
                RxOutcome::Dropped(ul2tp_core::DropReason::CookieMismatch)
            );
            n += 1;
        }
    }
    let st = s.stats();
    assert_eq!(
        (st.rx_cookie_discards, st.rx_errors, st.rx_packets),
        (n, n, 0)
    );
    assert_eq!(
        s.tunnel().stats().rx_errors,
        0,
        "tunnel rx_errors never move (§3.1)"
    );
}

/// (file, kernel address, local tunnel/session, peer tunnel/session) of the kernel PPP side.
type V2Case = (&'static str, &'static str, (u32, u32), (u32, u32));

const V2: &[V2Case] = &[
    (
        "v2-guest-xl2tpd-lac-vs-l2tpns.pcap",
        "192.0.2.2",
        (32313, 30702),
        (2, 1),
    ),
    (
        "v2-guest-kl2tpd-lac-vs-l2tpns.pcap",
        "192.0.2.2",
        (18523, 2276),
        (2, 1),
    ),
    (
        "v2-guest-xl2tpd-lac-vs-host-xl2tpd-fakepppd.pcap",
        "192.0.2.2",
        (23390, 40190),
        (30580, 20426),
    ),
    (
        "v2-guest-xl2tpd-lac-vs-guest-xl2tpd-lns.pcap",
        "192.0.2.2",
        (13727, 60007),
        (32718, 28981),
    ),
];

#[test]
fn v2_kernel_ppp_side() {
    for &(file, kernel, (tid, sid), (ptid, psid)) in V2 {
        let r = Registry::new();
        r.tunnel_create(TunnelParams {
            tunnel_id: tid,
            peer_tunnel_id: ptid,
            version: Version::V2,
            encap: Encap::Udp,
            socket: SocketId(7),
        })
        .unwrap();
        let s = r
            .session_create(tid, SessionParams::new(sid, psid, PwType::Ppp))
            .unwrap();
        let (mut rx, mut tx) = (0, 0);
        for (src, _, payload) in datagrams(file) {
            if payload.first().is_none_or(|b| b & 0x80 != 0) {
                continue; // control
            }
            if src == kernel {
                // Kernel TX: 6-byte header, then FF 03, then the PPP protocol + information.
                let ppp = &payload[8..];
                let mut buf = vec![0u8; HEADROOM + ppp.len()];
                buf[HEADROOM..].copy_from_slice(ppp);
                let (a, b) = s.encap(&mut buf, HEADROOM, ppp.len()).unwrap();
                assert_eq!(&buf[a..b], &payload[..], "{file}");
                tx += 1;
            } else {
                let mut got = Vec::new();
                let o = r.receive(
                    SocketId(7),
                    Encap::Udp,
                    &payload,
                    Timestamp::from_millis(1),
                    &mut |_, f| got.push(f.to_vec()),
                );
                assert_eq!(o, RxOutcome::Consumed, "{file}");
                // FF 03 stripped; the frame starts with the protocol field.
                assert_eq!(got.len(), 1);
                let end = &payload[payload.len() - got[0].len()..];
                assert_eq!(got[0], end, "{file}");
                assert!(ul2tp_wire::ppp::ppp_protocol(&got[0]).is_some());
                assert_ne!(&got[0][..2], &[0xff, 0x03]);
                rx += 1;
            }
        }
        assert!(rx >= 5 && tx >= 5, "{file}: rx {rx} tx {tx}");
        assert_eq!(s.stats().rx_packets, rx);
    }
}
