//! Every control message in the captures (tests/data/captures) (real xl2tpd, l2tpns, go-l2tp peers) parses,
//! has the message type tshark reports, and re-emits to the same bytes.

use ul2tp_wire::avp::{AttrType, AvpValue, MessageType};
use ul2tp_wire::control::{peek_version, Version};
use ul2tp_wire::message::Message;
use ul2tp_wire::pcap::{extract, records};
use ul2tp_wire::Encap;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/captures");

/// (frame number, message type; 0 = ZLB), from
/// `tshark -r F [-d udp.port==5000,l2tp] -Y l2tp.type==1 -T fields -e frame.number -e l2tp.avp.message_type`.
#[rustfmt::skip]
fn expected(file: &str) -> Vec<(usize, u16)> {
    match file {
        "v2-guest-kl2tpd-lac-vs-l2tpns.pcap" => vec![
            (1, 1), (2, 2), (3, 3), (4, 0), (5, 10), (6, 11), (7, 12), (8, 0), (30, 6), (31, 0),
            (34, 4), (35, 0),
        ],
        "v2-guest-xl2tpd-lac-vs-guest-xl2tpd-lns.pcap" => vec![
            (1, 1), (2, 1), (3, 2), (4, 0), (5, 3), (6, 0), (7, 10), (8, 11), (9, 0), (10, 12),
            (11, 0), (38, 4), (39, 0),
        ],
        "v2-guest-xl2tpd-lac-vs-host-xl2tpd-fakepppd.pcap" => vec![
            (1, 1), (2, 2), (3, 3), (4, 0), (5, 10), (6, 11), (7, 0), (8, 12), (9, 0), (30, 4),
            (31, 0),
        ],
        "v2-guest-xl2tpd-lac-vs-l2tpns.pcap" => vec![
            (1, 1), (2, 2), (3, 3), (4, 0), (5, 10), (6, 11), (7, 12), (8, 0), (34, 4), (35, 0),
        ],
        "v2-host-kl2tpd-null-lac-vs-xl2tpd-lns.pcap" => vec![
            (1, 1), (2, 2), (3, 3), (4, 0), (5, 10), (6, 11), (7, 0), (8, 12), (9, 0), (10, 14),
            (11, 0), (12, 6), (13, 0), (14, 6), (15, 0), (16, 6), (17, 0), (18, 4), (19, 0),
        ],
        "v2-host-xl2tpd-fakepppd-lac-vs-l2tpns.pcap" => vec![
            (1, 1), (2, 1), (3, 1), (4, 2), (5, 3), (6, 10), (7, 0), (8, 11), (9, 12), (10, 0),
            (30, 4), (31, 0),
        ],
        "v3-udp4-ql2tpd-hello.pcap" => vec![(21, 6), (22, 20), (23, 6), (25, 20), (29, 6), (30, 20)],
        _ => Vec::new(),
    }
}

const FILES: &[&str] = &[
    "v2-guest-kl2tpd-lac-vs-l2tpns.pcap",
    "v2-guest-xl2tpd-lac-vs-guest-xl2tpd-lns.pcap",
    "v2-guest-xl2tpd-lac-vs-host-xl2tpd-fakepppd.pcap",
    "v2-guest-xl2tpd-lac-vs-l2tpns.pcap",
    "v2-host-kl2tpd-null-lac-vs-xl2tpd-lns.pcap",
    "v2-host-xl2tpd-fakepppd-lac-vs-l2tpns.pcap",
    "v3-udp4-ql2tpd-hello.pcap",
];

/// Parse every control message of a capture: (frame number, message).
fn control_messages(file: &str) -> Vec<(usize, Message, Vec<u8>)> {
    let bytes = std::fs::read(format!("{DIR}/{file}")).expect("capture readable");
    let mut out = Vec::new();
    for (i, rec) in records(&bytes).expect("pcap header").enumerate() {
        let rec = rec.expect("pcap record");
        let Some(d) = extract(rec.frame) else {
            continue;
        };
        if d.transport != Encap::Udp || d.payload.first().is_none_or(|b| b & 0x80 == 0) {
            continue;
        }
        let version = match peek_version(d.payload) {
            Some(2) => Version::V2,
            Some(3) => Version::V3,
            _ => continue,
        };
        let m = Message::parse(d.payload, version, None)
            .unwrap_or_else(|e| panic!("{file} frame {}: {e}", i + 1));
        let len = usize::from(m.header.length);
        out.push((i + 1, m, d.payload[..len].to_vec()));
    }
    out
}

#[test]
fn captures_parse_with_tshark_message_types_and_reemit() {
    for file in FILES {
        let msgs = control_messages(file);
        let got: Vec<(usize, u16)> = msgs
            .iter()
            .map(|(n, m, _)| (*n, m.message_type.map_or(0, MessageType::get)))
            .collect();
        assert_eq!(got, expected(file), "{file}");
        for (n, m, wire) in &msgs {
            assert!(
                m.ignored.is_empty(),
                "{file} frame {n}: ignored {:?}",
                m.ignored
            );
            assert_eq!(
                &m.emit(None).unwrap(),
                wire,
                "{file} frame {n}: re-emit differs"
            );
        }
    }
}

#[test]
fn capture_contents_are_decoded() {
    // xl2tpd LAC vs xl2tpd LNS: the SCCRQ carries the v2 mandatory AVPs and the
    // StopCCN a Result Code.
    let msgs = control_messages("v2-guest-xl2tpd-lac-vs-guest-xl2tpd-lns.pcap");
    let (_, sccrq, _) = &msgs[0];
    assert_eq!(sccrq.header.tunnel_id, 0);
    assert!(matches!(
        sccrq.find(AttrType::ProtocolVersion),
        Some(AvpValue::ProtocolVersion {
            version: 1,
            revision: 0
        })
    ));
    let tid = sccrq.assigned_tunnel_id().expect("assigned tunnel id");
    assert_ne!(tid, 0);
    assert!(sccrq.host_name().is_some_and(|h| !h.is_empty()));
    // The SCCRP is addressed to the tunnel id the SCCRQ assigned.
    let (_, sccrp, _) = &msgs[2];
    assert_eq!(sccrp.message_type, Some(MessageType::Sccrp));
    assert_eq!(sccrp.header.tunnel_id, u32::from(tid));
    let (_, icrq, _) = &msgs[6];
    assert!(icrq.assigned_session_id().is_some());
    let (_, stop, _) = msgs.iter().rev().nth(1).expect("stopccn");
    assert_eq!(stop.message_type, Some(MessageType::StopCcn));
    assert!(stop.result_code().is_some());

    // go-l2tp v3 HELLO / ACK: control connection ids 100 / 200.
    let v3 = control_messages("v3-udp4-ql2tpd-hello.pcap");
    for (_, m, _) in &v3 {
        assert_eq!(m.header.version, Version::V3);
        assert!(
            m.header.tunnel_id == 100 || m.header.tunnel_id == 200,
            "{:?}",
            m.header
        );
    }
}
