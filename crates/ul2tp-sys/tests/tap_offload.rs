//! TAP offloads (`IFF_VNET_HDR` + `TUNSETOFFLOAD`) inside a private network namespace.

use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::Duration;

use ul2tp_sys::link;
use ul2tp_sys::netns::block_on_in_new_netns;
use ul2tp_sys::tap::{Tap, L2TPETH_TEMPLATE, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, VNET_HDR_LEN};

/// Start a TCP connection to 10.9.0.2 (in the background) and read its SYN from the TAP
/// with the vnet header; returns (header, frame).
async fn syn_through(t: &Tap, port: u16) -> (Vec<u8>, Vec<u8>) {
    std::thread::spawn(move || {
        let _ = TcpStream::connect_timeout(
            &(Ipv4Addr::new(10, 9, 0, 2), port).into(),
            Duration::from_secs(1),
        );
    });
    let mut buf = vec![0u8; 65536 + VNET_HDR_LEN];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), t.recv_vnet(&mut buf))
            .await
            .expect("timed out")
            .unwrap();
        assert!(n >= VNET_HDR_LEN);
        let f = &buf[VNET_HDR_LEN..n];
        // IPv4 / TCP with SYN towards our port.
        if f.len() >= 54
            && f[12..14] == [0x08, 0x00]
            && f[23] == 6
            && f[36..38] == port.to_be_bytes()
            && f[47] & 0x02 != 0
        {
            return (buf[..VNET_HDR_LEN].to_vec(), f.to_vec());
        }
    }
}

#[test]
fn offloads_leave_the_checksum_to_the_reader() {
    block_on_in_new_netns(|| async {
        let t = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        link::set_ipv4_addr(t.name(), Ipv4Addr::new(10, 9, 0, 1), 24).unwrap();
        t.set_up(true).unwrap();
        let ok = Command::new("ip")
            .args(["neigh", "add", "10.9.0.2", "lladdr", "02:00:00:00:00:02"])
            .args(["dev", t.name()])
            .status()
            .unwrap();
        assert!(ok.success());

        // No offloads: the header is all zero and the checksum is done.
        let (hdr, _) = syn_through(&t, 7001).await;
        assert_eq!(hdr, vec![0u8; VNET_HDR_LEN]);

        // With offloads the stack leaves the TCP checksum to us: NEEDS_CSUM, checksumming
        // from the TCP header (14 + 20), field at offset 16.
        t.set_offload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6).unwrap();
        let (hdr, frame) = syn_through(&t, 7002).await;
        assert_eq!(hdr[0] & 1, 1, "VIRTIO_NET_HDR_F_NEEDS_CSUM");
        assert_eq!(hdr[1], 0, "a SYN is not a GSO frame");
        assert_eq!(u16::from_le_bytes([hdr[6], hdr[7]]), 34, "csum_start");
        assert_eq!(u16::from_le_bytes([hdr[8], hdr[9]]), 16, "csum_offset");
        assert!(frame.len() >= 54);

        // Back off: checksums are complete again.
        t.set_offload(0).unwrap();
        let (hdr, _) = syn_through(&t, 7003).await;
        assert_eq!(hdr[0], 0);

        // The frame API still hides the header: a written frame is taken whole.
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&t.mac().unwrap());
        f.extend_from_slice(&[0x88, 0xb5]);
        f.extend_from_slice(&[0u8; 46]);
        assert_eq!(t.try_send(&f).unwrap(), f.len());
        let mut v = vec![0u8; VNET_HDR_LEN];
        v.extend_from_slice(&f);
        assert_eq!(t.try_send_vnet(&v).unwrap(), v.len());
    })
    .unwrap();
}
