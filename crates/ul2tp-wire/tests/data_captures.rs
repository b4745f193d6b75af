//! The data headers of every data packet in the captures (tests/data/captures) (real kernel, xl2tpd, l2tpns,
//! go-l2tp) parse with the parameters from captures/README.md, and the headers the Linux kernel
//! sent are reproduced byte for byte by our emitters.

use std::path::PathBuf;

use ul2tp_wire::data::{
    classify_ip, classify_udp, DefaultSublayer, IpClass, L2SpecType, UdpClass, V2DataHeader,
    V3SessionHeader,
};
use ul2tp_wire::pcap::{self, Datagram};
use ul2tp_wire::ppp;
use ul2tp_wire::Encap;

fn captures_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/captures"
    ))
}

fn datagrams(file: &str) -> Vec<(Vec<u8>, Datagram<'static>)> {
    let bytes: &'static [u8] = Box::leak(
        std::fs::read(captures_dir().join(file))
            .expect("capture")
            .into_boxed_slice(),
    );
    pcap::records(bytes)
        .expect("pcap header")
        .filter_map(|r| pcap::extract(r.expect("record").frame))
        .map(|d| (d.payload.to_vec(), d))
        .collect()
}

fn is_kernel_side(d: &Datagram<'_>) -> bool {
    let ip = d.src.ip().to_string();
    ip == "192.0.2.2" || ip == "fd00::2"
}

/// Parameters of one L2TPv3 capture (captures/README.md).
struct V3Case {
    file: &'static str,
    transport: Encap,
    /// Cookie the kernel (192.0.2.2) sends = the cookie it puts in front of 0x2001.
    kernel_cookie: &'static [u8],
    /// Cookie the other end sends (towards session 0x1001).
    other_cookie: &'static [u8],
    l2spec: L2SpecType,
}

const V3_CASES: &[V3Case] = &[
    V3Case {
        file: "v3-udp4-nocookie.pcap",
        transport: Encap::Udp,
        kernel_cookie: &[],
        other_cookie: &[],
        l2spec: L2SpecType::None,
    },
    V3Case {
        file: "v3-udp6-nocookie.pcap",
        transport: Encap::Udp,
        kernel_cookie: &[],
        other_cookie: &[],
        l2spec: L2SpecType::None,
    },
    V3Case {
        file: "v3-udp4-cookie8-l2spec.pcap",
        transport: Encap::Udp,
        kernel_cookie: &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77],
        other_cookie: &[0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
        l2spec: L2SpecType::Default,
    },
    V3Case {
        file: "v3-ip4-cookie4.pcap",
        transport: Encap::Ip,
        kernel_cookie: &[0x00, 0x11, 0x22, 0x33],
        other_cookie: &[0x44, 0x55, 0x66, 0x77],
        l2spec: L2SpecType::None,
    },
    V3Case {
        file: "v3-ip6-cookie8-l2spec.pcap",
        transport: Encap::Ip,
        kernel_cookie: &[0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77],
        other_cookie: &[0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
        l2spec: L2SpecType::Default,
    },
];

/// An Ethernet frame starts with two MAC addresses and an ethertype we know.
fn looks_like_ethernet(frame: &[u8]) -> bool {
    frame.len() >= 14
        && matches!(
            u16::from_be_bytes([frame[12], frame[13]]),
            0x0800 | 0x86dd | 0x0806
        )
}

#[test]
fn every_v3_data_packet_parses_and_kernel_headers_are_byte_exact() {
    for case in V3_CASES {
        let mut parsed = 0;
        let mut kernel_exact = 0;
        for (payload, d) in datagrams(case.file) {
            if d.transport != case.transport {
                continue;
            }
            let session_id = match case.transport {
                Encap::Udp => match classify_udp(&payload) {
                    UdpClass::DataV3 {
                        session_id,
                        version,
                    } => {
                        assert_eq!(version, 3, "{}", case.file);
                        session_id
                    }
                    other => panic!("{}: unexpected {other:?}", case.file),
                },
                Encap::Ip => match classify_ip(&payload) {
                    IpClass::Data { session_id } => session_id,
                    other => panic!("{}: unexpected {other:?}", case.file),
                },
            };
            let kernel = is_kernel_side(&d);
            // The kernel sends to the peer's session 0x2001; the other end to 0x1001.
            assert_eq!(
                session_id,
                if kernel { 0x2001 } else { 0x1001 },
                "{}",
                case.file
            );
            let cookie = if kernel {
                case.kernel_cookie
            } else {
                case.other_cookie
            };
            let (hdr, off) = match case.transport {
                Encap::Udp => V3SessionHeader::parse_udp(&payload, cookie.len(), case.l2spec),
                Encap::Ip => V3SessionHeader::parse_ip(&payload, cookie.len(), case.l2spec),
            }
            .unwrap_or_else(|e| panic!("{}: {e}", case.file));
            assert_eq!(hdr.session_id, session_id);
            assert_eq!(hdr.cookie, cookie, "{}", case.file);
            assert!(
                looks_like_ethernet(&payload[off..]),
                "{}: payload is not Ethernet",
                case.file
            );
            parsed += 1;
            if kernel {
                // Re-emit with the kernel's parameters: peer_session_id 0x2001, its cookie,
                // sublayer all zero (no send_seq), docs/reference/kernel.md §1.4–§1.6.
                let mine = V3SessionHeader {
                    session_id: 0x2001,
                    cookie: case.kernel_cookie,
                    sublayer: (case.l2spec == L2SpecType::Default)
                        .then_some(DefaultSublayer { seq: None }),
                };
                let mut out = [0u8; 32];
                let n = match case.transport {
                    Encap::Udp => mine.emit_udp(&mut out),
                    Encap::Ip => mine.emit_ip(&mut out),
                }
                .expect("emit");
                assert_eq!(n, off, "{}", case.file);
                assert_eq!(&out[..n], &payload[..n], "{}", case.file);
                kernel_exact += 1;
            }
        }
        assert!(parsed >= 20, "{}: only {parsed} data packets", case.file);
        assert!(
            kernel_exact >= 10,
            "{}: only {kernel_exact} kernel packets",
            case.file
        );
    }
}

#[test]
fn ql2tpd_capture_separates_control_and_data() {
    let mut control = 0;
    let mut data = 0;
    for (payload, _) in datagrams("v3-udp4-ql2tpd-hello.pcap") {
        match classify_udp(&payload) {
            UdpClass::Control => control += 1,
            UdpClass::DataV3 {
                session_id,
                version: 3,
            } => {
                assert!(session_id == 1001 || session_id == 2001);
                let (h, off) = V3SessionHeader::parse_udp(&payload, 0, L2SpecType::None).unwrap();
                assert_eq!(h.session_id, session_id);
                assert!(looks_like_ethernet(&payload[off..]));
                data += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((control, data), (6, 24));
}

const V2_FILES: &[&str] = &[
    "v2-guest-kl2tpd-lac-vs-l2tpns.pcap",
    "v2-guest-xl2tpd-lac-vs-guest-xl2tpd-lns.pcap",
    "v2-guest-xl2tpd-lac-vs-host-xl2tpd-fakepppd.pcap",
    "v2-guest-xl2tpd-lac-vs-l2tpns.pcap",
    "v2-host-kl2tpd-null-lac-vs-xl2tpd-lns.pcap",
    "v2-host-xl2tpd-fakepppd-lac-vs-l2tpns.pcap",
];

#[test]
fn every_v2_data_packet_parses() {
    let mut total = 0;
    let mut with_length = 0;
    for file in V2_FILES {
        for (payload, d) in datagrams(file) {
            if d.transport != Encap::Udp {
                continue;
            }
            let (tid, sid) = match classify_udp(&payload) {
                UdpClass::Control => continue,
                UdpClass::DataV2 {
                    tunnel_id,
                    session_id,
                } => (tunnel_id, session_id),
                other => panic!("{file}: unexpected {other:?}"),
            };
            let (h, off) = V2DataHeader::parse(&payload).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!((h.tunnel_id, h.session_id), (tid, sid));
            if let Some(l) = h.length {
                // Peers that set L (xl2tpd's userspace PPP path) fill it correctly.
                assert_eq!(usize::from(l), payload.len(), "{file}");
                with_length += 1;
            }
            // The payload is a PPP frame, with or without FF 03, and a valid protocol field.
            let frame = ppp::strip_address_control(&payload[off..]);
            let (proto, _) = ppp::ppp_protocol(frame).unwrap_or_else(|| panic!("{file}: bad PPP"));
            assert!(proto != 0);
            // Re-emitting the parsed header gives the captured bytes.
            let mut out = [0u8; 64];
            let n = h.emit(&mut out).unwrap();
            assert_eq!(n, off);
            if h.offset_size.is_none() {
                assert_eq!(&out[..n], &payload[..n], "{file}");
            }
            total += 1;
        }
    }
    assert!(total >= 80, "only {total} v2 data packets");
    assert!(with_length > 0, "no packet with the L bit");
}
