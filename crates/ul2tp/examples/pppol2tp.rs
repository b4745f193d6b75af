//! Open a PPPoL2TP session socket on a running ul2tpd and exchange one LCP frame.
//!
//! Creates an unmanaged L2TPv2 tunnel over UDP and a PPP session through the management API
//! (what `ip l2tp add tunnel ... encap udp` + `add session` would do), connects a session
//! socket to it (`connect(sockaddr_pppol2tp)`), turns on sequence numbers (`PPPOL2TP_SO_SENDSEQ`),
//! sends an LCP Configure-Request, prints whatever PPP frames come back within two seconds
//! and the session statistics (`PPPIOCGL2TPSTATS`), then deletes the tunnel.
//!
//! Usage: `cargo run -p ul2tp --example pppol2tp -- [LOCAL_IP PEER_IP [SPORT DPORT]]`
//! (defaults 127.0.0.1 127.0.0.1 1701 1702; `$UL2TP_SOCKET` selects the daemon).

use std::io;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ul2tp::api::{encap_type, pw_type, Attrs, Command};
use ul2tp::{socket_path, Client, PppoL2tpAddr, SessionOption, SessionSocket};

const TUNNEL_ID: u32 = 4001;
const PEER_TUNNEL_ID: u32 = 4002;
const SESSION_ID: u32 = 1;
const PEER_SESSION_ID: u32 = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let local: Ipv4Addr = arg(0, "127.0.0.1").parse()?;
    let peer: Ipv4Addr = arg(1, "127.0.0.1").parse()?;
    let sport: u16 = arg(2, "1701").parse()?;
    let dport: u16 = arg(3, "1702").parse()?;

    let mut client = Client::connect(&socket_path(None))?;

    // ip l2tp add tunnel tunnel_id 4001 peer_tunnel_id 4002 encap udp version 2 ...
    client.request(
        Command::TunnelCreate,
        Attrs {
            conn_id: Some(TUNNEL_ID),
            peer_conn_id: Some(PEER_TUNNEL_ID),
            proto_version: Some(2),
            encap_type: Some(encap_type::UDP),
            ip_saddr: Some(local),
            ip_daddr: Some(peer),
            udp_sport: Some(sport),
            udp_dport: Some(dport),
            ..Attrs::default()
        },
        false,
    )?;
    let result = run(&mut client);
    // Clean up whatever happened.
    let _ = client.request(
        Command::TunnelDelete,
        Attrs {
            conn_id: Some(TUNNEL_ID),
            ..Attrs::default()
        },
        false,
    );
    result
}

fn run(client: &mut Client) -> Result<(), Box<dyn std::error::Error>> {
    // The PPP session (pw_type 7) in that tunnel.
    client.request(
        Command::SessionCreate,
        Attrs {
            conn_id: Some(TUNNEL_ID),
            session_id: Some(SESSION_ID),
            peer_session_id: Some(PEER_SESSION_ID),
            pw_type: Some(pw_type::PPP),
            ..Attrs::default()
        },
        false,
    )?;

    // socket(AF_PPPOX, SOCK_DGRAM, PX_PROTO_OL2TP) + connect(sockaddr_pppol2tp).
    let mut sock = SessionSocket::connect(
        client,
        PppoL2tpAddr {
            tunnel_id: TUNNEL_ID,
            session_id: SESSION_ID,
            peer_tunnel_id: PEER_TUNNEL_ID,
            peer_session_id: PEER_SESSION_ID,
            version: 2,
            tunnel_fd: None,
        },
    )?;

    // setsockopt(SOL_PPPOL2TP, PPPOL2TP_SO_SENDSEQ, 1)
    sock.set_option(SessionOption::SendSeq, 1)?;
    println!("send_seq = {}", sock.get_option(SessionOption::SendSeq)?);

    // LCP Configure-Request (RFC 1661 §5.1): id 1, MRU 1500, Magic-Number 0x12345678.
    let lcp = [
        0xc0, 0x21, 0x01, 0x01, 0x00, 0x0e, 0x01, 0x04, 0x05, 0xdc, 0x05, 0x06, 0x12, 0x34, 0x56,
        0x78,
    ];
    sock.send_frame(&lcp)?;
    println!("sent LCP Configure-Request ({} bytes)", lcp.len());

    sock.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        match sock.recv_frame(&mut buf) {
            Ok(0) => {
                println!("session closed by the daemon");
                break;
            }
            Ok(n) => println!("received {n} bytes: {}", hex(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e.into()),
        }
    }

    // ioctl(PPPIOCGL2TPSTATS)
    let st = sock.stats()?;
    println!(
        "stats tunnel {} session {}: tx {} pkts {} bytes {} errs, rx {} pkts {} bytes {} errs, \
         seq discards {}, oos {}",
        st.tunnel_id,
        st.session_id,
        st.stats.tx_packets,
        st.stats.tx_bytes,
        st.stats.tx_errors,
        st.stats.rx_packets,
        st.stats.rx_bytes,
        st.stats.rx_errors,
        st.stats.rx_seq_discards,
        st.stats.rx_oos_packets
    );
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
