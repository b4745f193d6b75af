//! Seqpacket pairs: one frame per message.

use std::io::ErrorKind;
use std::time::Duration;

use ul2tp_sys::seqpacket::{self, SeqPacket};

#[test]
fn frames_keep_their_boundaries() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (daemon, handed) = SeqPacket::pair().unwrap();
        let app = SeqPacket::from_fd(handed).unwrap();
        let frames: [&[u8]; 3] = [b"\xff\x03\xc0\x21short", &[0x21; 1500], b"x"];
        for f in frames {
            daemon.send(f).await.unwrap();
        }
        let mut buf = vec![0u8; 2048];
        for f in frames {
            let n = tokio::time::timeout(Duration::from_secs(5), app.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&buf[..n], f);
        }
        // A message longer than the buffer is reported, not silently cut.
        app.send(&[1u8; 100]).await.unwrap();
        let mut small = [0u8; 10];
        let e = daemon.recv(&mut small).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidData);
        // Nothing more queued.
        assert_eq!(
            daemon.try_recv(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        // End of stream once the other end closes.
        drop(app);
        assert_eq!(daemon.recv(&mut buf).await.unwrap(), 0);
    });
}

#[test]
fn plain_pair_is_seqpacket() {
    use std::os::fd::AsFd;
    let (a, _b) = seqpacket::pair().unwrap();
    let t = nix::sys::socket::getsockopt(&a.as_fd(), nix::sys::socket::sockopt::SockType).unwrap();
    assert_eq!(t, nix::sys::socket::SockType::SeqPacket);
}
