//! No API request makes the daemon panic or stop answering: thousands of random requests
//! (random commands, random mixes of attributes with values drawn from small ranges so that
//! creates, deletes and lookups collide) against an embedded daemon in a fresh namespace.

use std::net::{Ipv4Addr, Ipv6Addr};

use ul2tp_api::{Attrs, Command, ServerMessage};
use ul2tp_it::Netns;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (self.below(3) == 0).then(|| f(self))
    }
}

const COMMANDS: [Command; 21] = [
    Command::Noop,
    Command::TunnelCreate,
    Command::TunnelDelete,
    Command::TunnelModify,
    Command::TunnelGet,
    Command::SessionCreate,
    Command::SessionDelete,
    Command::SessionModify,
    Command::SessionGet,
    Command::DebugTunnels,
    Command::DebugPppol2tp,
    Command::TraceSet,
    Command::Pppol2tpConnect,
    Command::L2tpipSocket,
    Command::ControlConnect,
    Command::ControlSession,
    Command::ControlDisconnect,
    Command::PppStart,
    Command::Dial,
    Command::Hangup,
    Command::LacGet,
];

fn random_attrs(r: &mut Rng) -> Attrs {
    let v4 = [
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 1),
    ];
    let v6 = [
        Ipv6Addr::LOCALHOST,
        Ipv6Addr::UNSPECIFIED,
        "ff02::1".parse().unwrap(),
        "::ffff:127.0.0.1".parse().unwrap(),
    ];
    let hex = [
        "",
        "00",
        "0011223344556677",
        "zz",
        "001122334455667788",
        "abc",
    ];
    Attrs {
        pw_type: r.maybe(|r| [0u16, 4, 5, 7, 8, 11, 12, 0xffff][r.below(8) as usize]),
        encap_type: r.maybe(|r| r.below(4) as u16),
        l2spec_type: r.maybe(|r| r.below(3) as u8),
        l2spec_len: r.maybe(|r| r.below(255) as u8),
        proto_version: r.maybe(|r| r.below(6) as u8),
        ifname: r.maybe(|r| {
            ["", "x", "l2tpeth0", "a/b", "0123456789abcdefg", "lo"][r.below(6) as usize].to_string()
        }),
        conn_id: r.maybe(|r| [0, 1, 2, 3, 65535, 65536, u32::MAX][r.below(7) as usize]),
        peer_conn_id: r.maybe(|r| r.below(4) as u32),
        session_id: r.maybe(|r| [0, 1, 2, 3, 65536, u32::MAX][r.below(6) as usize]),
        peer_session_id: r.maybe(|r| r.below(4) as u32),
        udp_csum: r.maybe(|r| r.below(3) as u8),
        vlan_id: r.maybe(|r| [0u16, 1, 10, 4094, 4095, 0xffff][r.below(6) as usize]),
        cookie: r.maybe(|r| hex[r.below(6) as usize].to_string()),
        peer_cookie: r.maybe(|r| hex[r.below(6) as usize].to_string()),
        debug: r.maybe(|r| r.below(3) as u32),
        recv_seq: r.maybe(|r| r.below(4) as u8),
        send_seq: r.maybe(|r| r.below(4) as u8),
        lns_mode: r.maybe(|r| r.below(4) as u8),
        using_ipsec: r.maybe(|r| r.below(2) as u8),
        recv_timeout: r.maybe(|r| [0u64, 1, 100, u64::MAX][r.below(4) as usize]),
        fd: r.maybe(|r| r.below(2) as i32),
        ip_saddr: r.maybe(|r| v4[r.below(5) as usize]),
        ip_daddr: r.maybe(|r| v4[r.below(5) as usize]),
        udp_sport: r.maybe(|r| [0u16, 7700, 7701][r.below(3) as usize]),
        udp_dport: r.maybe(|r| [0u16, 7700, 7701][r.below(3) as usize]),
        mtu: r.maybe(|r| r.below(2000) as u16),
        mru: None,
        stats: None,
        ip6_saddr: r.maybe(|r| v6[r.below(4) as usize]),
        ip6_daddr: r.maybe(|r| v6[r.below(4) as usize]),
        udp_zero_csum6_tx: r.maybe(|r| r.below(2) == 1),
        udp_zero_csum6_rx: r.maybe(|r| r.below(2) == 1),
        ppp_user: r.maybe(|r| ["", "alice", "\u{0}"][r.below(3) as usize].to_string()),
        ppp_password: r.maybe(|r| ["", "secret"][r.below(2) as usize].to_string()),
        // Reply-only attributes: requests carrying them must not matter.
        ppp_ifname: r.maybe(|r| ["", "ppp0", "lo"][r.below(3) as usize].to_string()),
        ppp_local: r.maybe(|r| v4[r.below(5) as usize]),
        ppp_peer: r.maybe(|r| v4[r.below(5) as usize]),
        ppp_online: r.maybe(|r| [0u64, u64::MAX][r.below(2) as usize]),
        ppp_profile: r.maybe(|r| ["", "default"][r.below(2) as usize].to_string()),
        ppp_pool: r.maybe(|r| ["", "p"][r.below(2) as usize].to_string()),
        ppp_routes: r.maybe(|r| vec!["10.0.0.0/8".to_string(); r.below(3) as usize]),
        acct_session_id: r.maybe(|r| ["", "0000abcd"][r.below(2) as usize].to_string()),
        peer_host_name: r.maybe(|r| ["", "lac"][r.below(2) as usize].to_string()),
        lns_profile: r.maybe(|r| ["", "default"][r.below(2) as usize].to_string()),
        profile: r.maybe(|r| ["", "isp", "\u{0}"][r.below(3) as usize].to_string()),
        // A waiting request blocks until its object is up or failed: not for a fuzzer.
        wait: None,
        call_state: None,
        call_cause: None,
        ppp_ipv6_prefix: r.maybe(|r| ["", "2001:db8::/64"][r.below(2) as usize].to_string()),
        ppp_ipv6_delegated: r.maybe(|r| ["", "2001:db8::/56"][r.below(2) as usize].to_string()),
    }
}

#[test]
fn random_requests_never_break_the_daemon() {
    let ns = Netns::new("fz");
    let (answered, errors) = ns.run_in(|| {
        let embedded = ul2tpd::Embedded::start(1).expect("embedded daemon");
        let mut client = ul2tp::Client::from_stream(embedded.connect().unwrap());
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut answered, mut errors) = (0, 0);
        let mut keep = Vec::new();
        for _ in 0..3000 {
            let cmd = COMMANDS[r.below(COMMANDS.len() as u64) as usize];
            let dump = r.below(4) == 0;
            match client.request_with_fds(cmd, random_attrs(&mut r), dump, &[]) {
                Ok((_, fds)) => {
                    answered += 1;
                    // Keep some descriptors open, close others: both paths run.
                    if r.below(2) == 0 {
                        keep.extend(fds);
                    }
                }
                Err(ul2tp::ClientError::Api(_)) => {
                    answered += 1;
                    errors += 1;
                }
                Err(e) => panic!("daemon stopped answering after {answered} requests: {e}"),
            }
        }
        // Still sane afterwards: a dump of every tunnel and session works.
        let t: ServerMessage = client
            .request(Command::TunnelGet, Attrs::default(), true)
            .expect("tunnel dump");
        let s: ServerMessage = client
            .request(Command::SessionGet, Attrs::default(), true)
            .expect("session dump");
        assert!(t.entries.is_some() && s.entries.is_some());
        drop(keep);
        (answered, errors)
    });
    assert_eq!(answered, 3000);
    assert!(
        errors > 100 && errors < 3000,
        "the mix should produce both successes and errors: {errors}"
    );
}
