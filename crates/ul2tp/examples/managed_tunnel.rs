//! Run a managed L2TPv3 tunnel on the application's own UDP socket.
//!
//! Binds and connects a UDP socket, registers it with ul2tpd as a managed tunnel
//! (`tunnel_create` with the socket attached, the kernel's `L2TP_ATTR_FD`), sends a HELLO
//! control message through the tunnel socket and prints the control messages that arrive
//! on it for five seconds. Dropping the tunnel socket at the end destroys the tunnel.
//!
//! Usage: `cargo run -p ul2tp --example managed_tunnel -- [LOCAL_ADDR PEER_ADDR]`
//! (defaults 127.0.0.1:1701 127.0.0.1:1702; `$UL2TP_SOCKET` selects the daemon).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ul2tp::api::{encap_type, Attrs};
use ul2tp::{socket_path, Client, TunnelSocket};

const TUNNEL_ID: u32 = 5001;
const PEER_TUNNEL_ID: u32 = 5002;

/// An L2TPv3 HELLO over UDP: the 12-octet control header (flags 0xC803, length, the
/// peer's Control Connection ID, Ns, Nr; RFC 3931 §3.2.1) and the Message Type AVP
/// (M bit, length 8, vendor 0, type 0, value 6 = HELLO; RFC 3931 §5.4.1, §3.1).
fn hello(peer_ccid: u32, ns: u16, nr: u16) -> Vec<u8> {
    let mut m = vec![0xc8, 0x03, 0, 20];
    m.extend_from_slice(&peer_ccid.to_be_bytes());
    m.extend_from_slice(&ns.to_be_bytes());
    m.extend_from_slice(&nr.to_be_bytes());
    m.extend_from_slice(&[0x80, 0x08, 0, 0, 0, 0, 0, 6]);
    m
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let local: SocketAddr = args.first().map_or("127.0.0.1:1701", |s| s).parse()?;
    let peer: SocketAddr = args.get(1).map_or("127.0.0.1:1702", |s| s).parse()?;

    let udp = UdpSocket::bind(local)?;
    udp.connect(peer)?;

    let mut client = Client::connect(&socket_path(None))?;
    let attrs = Attrs {
        conn_id: Some(TUNNEL_ID),
        peer_conn_id: Some(PEER_TUNNEL_ID),
        proto_version: Some(3),
        encap_type: Some(encap_type::UDP),
        ..Attrs::default()
    };
    // The socket moves into the tunnel: the daemon reads it from now on.
    let mut tunnel = TunnelSocket::create(&mut client, attrs, udp)?;
    println!("managed tunnel {TUNNEL_ID} on {local} -> {peer}");

    let msg = hello(PEER_TUNNEL_ID, 0, 0);
    tunnel.send(&msg)?;
    println!("sent HELLO ({} bytes)", msg.len());

    tunnel.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match tunnel.recv(&mut buf) {
            Ok((n, from)) => {
                let m = &buf[..n];
                // Message Type AVP value, if the message has the usual layout.
                let kind = match m.get(18..20) {
                    Some(&[a, b]) if m[0] & 0x80 != 0 => {
                        format!("type {}", u16::from_be_bytes([a, b]))
                    }
                    _ if m.len() == 12 => "ZLB".to_string(),
                    _ => "data or short".to_string(),
                };
                println!("from {}:{}: {n} bytes, {kind}", from.ip, from.conn_id);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => return Err(e.into()),
        }
    }
    drop(tunnel);
    println!("tunnel socket closed: tunnel {TUNNEL_ID} destroyed");
    Ok(())
}
