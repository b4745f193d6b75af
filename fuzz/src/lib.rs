//! What the fuzz targets share: the registry every data-path target runs against, and a
//! small driver for pairs of control engines.

use std::net::SocketAddr;

use ul2tp_core::PwType;
use ul2tp_core::{
    Cookie, Encap, L2SpecType, Registry, SessionParams, SocketId, TunnelParams, Version,
};

/// A registry with one tunnel of each kind and sessions that use every receive option:
/// v2 PPP with sequencing and a reorder queue; v3/UDP Ethernet with a 4-octet cookie and the
/// default sublayer; a VLAN pseudowire; v3/IP with an 8-octet cookie, LNS mode and
/// sequencing; a v3/UDP session without a sublayer on another socket.
pub fn busy_registry() -> Registry {
    let r = Registry::new();
    let t = |tid, version, encap, sock| TunnelParams {
        tunnel_id: tid,
        peer_tunnel_id: tid,
        version,
        encap,
        socket: SocketId(sock),
    };
    let _ = r.tunnel_create(t(1, Version::V2, Encap::Udp, 1));
    let _ = r.tunnel_create(t(2, Version::V3, Encap::Udp, 1));
    let _ = r.tunnel_create(t(3, Version::V3, Encap::Ip, 2));
    let _ = r.tunnel_create(t(4, Version::V3, Encap::Udp, 3));

    let mut p = SessionParams::new(1, 1, PwType::Ppp);
    p.recv_seq = true;
    p.send_seq = true;
    p.reorder_timeout_ms = 10;
    let _ = r.session_create(1, p);

    let mut p = SessionParams::new(1, 1, PwType::Ethernet);
    p.peer_cookie = Cookie::new(&[1, 2, 3, 4]).unwrap_or_default();
    let _ = r.session_create(2, p.clone());
    p.pw_type = PwType::EthernetVlan;
    p.vlan_id = Some(5);
    p.session_id = 2;
    let _ = r.session_create(2, p);

    let mut p = SessionParams::new(7, 7, PwType::Ethernet);
    p.peer_cookie = Cookie::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap_or_default();
    p.lns_mode = true;
    p.recv_seq = true;
    let _ = r.session_create(3, p);

    let mut p = SessionParams::new(1, 1, PwType::Ppp);
    p.l2spec_type = L2SpecType::None;
    let _ = r.session_create(4, p);
    r
}

/// Address of simulated control peer `i`.
pub fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, i], 1701))
}

pub use control::{Duo, Step};

mod control;

/// A PPP endpoint in one of the roles the daemon runs: client with credentials; server
/// requiring PAP, CHAP-MD5 or MS-CHAPv2 (with a user it knows); with or without IPv6CP.
pub fn ppp_role(role: u8) -> ul2tp_ppp::Endpoint {
    use std::net::Ipv4Addr;
    use ul2tp_ppp::{AuthProtocol, Config, StaticCredentials};
    let mut cfg = Config {
        ipv6cp: role & 8 != 0,
        pfc: role & 16 != 0,
        acfc: role & 16 != 0,
        ..Config::default()
    };
    match role & 7 {
        0 => cfg.user = Some((b"user".to_vec(), b"secret".to_vec())),
        1 => cfg.request_dns = true,
        n => {
            cfg.require_auth = match n {
                2 => vec![AuthProtocol::Pap],
                3 => vec![AuthProtocol::ChapMd5],
                4 => vec![AuthProtocol::MsChapV2],
                _ => vec![
                    AuthProtocol::ChapMd5,
                    AuthProtocol::MsChapV2,
                    AuthProtocol::Pap,
                ],
            };
            cfg.local_ip = Some(Ipv4Addr::new(198, 51, 100, 1));
            cfg.peer_ip = Some(Ipv4Addr::new(198, 51, 100, 2));
            cfg.dns = [Some(Ipv4Addr::new(198, 51, 100, 53)), None];
        }
    }
    let mut ep = ul2tp_ppp::Endpoint::new(cfg, [role; 32]);
    ep.set_credentials(Box::new(StaticCredentials(vec![(
        b"user".to_vec(),
        b"secret".to_vec(),
    )])));
    ep
}

/// Every PPP parser on one frame: framing, the control packet, options, PAP and CHAP bodies;
/// what parses must re-encode to what was parsed.
pub fn ppp_parsers(frame: &[u8]) {
    use ul2tp_ppp::packet::{self, Chap, Packet, Pap};
    let _ = ul2tp_wire::ppp::ppp_protocol(frame);
    let stripped = ul2tp_wire::ppp::strip_address_control(frame);
    let Ok((_, info)) = packet::split_frame(stripped) else {
        return;
    };
    let Ok(p) = Packet::parse(info) else {
        return;
    };
    if let Ok(bytes) = p.emit() {
        assert_eq!(Packet::parse(&bytes).ok().map(|q| q.data), Some(p.data));
    }
    if let Ok(opts) = packet::parse_options(p.data) {
        let again = packet::emit_options(&opts);
        assert_eq!(packet::parse_options(&again).ok(), Some(opts));
    }
    if let Ok(pap) = Pap::parse(p.code, p.data) {
        assert_eq!(Pap::parse(pap.code(), &pap.emit_body()).ok(), Some(pap));
    }
    if let Ok(chap) = Chap::parse(p.code, p.data) {
        assert_eq!(Chap::parse(chap.code(), &chap.emit_body()).ok(), Some(chap));
    }
}
