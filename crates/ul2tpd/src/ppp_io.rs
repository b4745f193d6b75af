//! The pppN TUN's packet I/O for a PPP session's endpoint (`pppd.rs`).
//!
//! Simple path (`[datapath] offload = false`, `--no-offload`): a plain TUN, one IP packet per
//! read and per write, as before.
//!
//! Offload path (the default), the same treatment as the Ethernet pseudowire's TAP
//! (docs/PERFORMANCE.md): the TUN is opened with `IFF_VNET_HDR` and switched to
//! `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`, so the local stack hands over TCP super-packets of
//! up to 64 KB and packets whose checksum is still to be done.
//!
//! * Transmit: every read is finished ([`gso::complete_checksum`]) or cut into MTU-sized IP
//!   packets ([`gso::TcpSegmenter`] with [`Link::Ip`], exactly what the kernel's own GSO
//!   would put on a wire), and each packet goes to the PPP endpoint on its own: it becomes
//!   one PPP frame with the endpoint's framing (protocol field compression, ...) and, in the
//!   daemon's transmit batch, one L2TPv2 datagram with its own header and Ns. The TUN is
//!   drained up to [`TX_DRAIN`] reads per wake-up, so the frames of several super-packets
//!   leave in one batch (`datapath::TxBatch`: UDP GSO or `sendmmsg`).
//! * Receive: IP packets the endpoint delivers go through a [`Coalescer`] with [`Link::Ip`]:
//!   consecutive in-order TCP segments of one flow within one wake-up are written as one
//!   super-packet (vnet header `GSO_TCPV4/6`), anything else packet by packet.

use std::io;

use ul2tp_core::gso::{self, Coalescer, Link, TcpSegmenter, VnetHdr, VNET_HDR_LEN};
use ul2tp_core::Session;
use ul2tp_ppp::Endpoint;
use ul2tp_sys::tap::{Tun, PPP_TEMPLATE, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6};

use crate::datapath::{MAX_DATAGRAM, TX_DRAIN};

/// The TUN side of one PPP link: its buffers and which path it takes.
#[derive(Debug)]
pub(crate) struct TunIo {
    offload: bool,
    /// What one read returns (vnet header first on the offload path); allocated on the
    /// first read, so that a link whose device never carries a packet costs no buffer.
    buf: Vec<u8>,
    /// One segment of a super-packet.
    seg: Vec<u8>,
    /// Receive-side coalescing (offload path, allocated on first use).
    rx: Option<Coalescer>,
}

impl TunIo {
    /// The I/O of a link on the offload path or the simple one.
    pub(crate) fn new(offload: bool) -> Self {
        Self {
            offload,
            buf: Vec::new(),
            seg: Vec::new(),
            rx: None,
        }
    }

    /// Create the pppN unit `name` (or from [`PPP_TEMPLATE`]): with a vnet header on the
    /// offload path.
    pub(crate) fn open(&self, name: Option<&str>) -> io::Result<Tun> {
        if self.offload {
            Tun::create_vnet(name, PPP_TEMPLATE)
        } else {
            Tun::create(name, PPP_TEMPLATE)
        }
    }

    /// Turn on the offloads of a unit from [`open`](Self::open) (once per unit). If the
    /// driver refuses, no super-packets arrive and reads stay single packets.
    pub(crate) fn attach(&mut self, tun: &Tun, session: &str) {
        if !self.offload {
            return;
        }
        match tun.set_offload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) {
            Ok(()) => tracing::info!(
                "{session}: {}: TUN offloads on (csum, tso4, tso6)",
                tun.name()
            ),
            Err(e) => tracing::warn!("{session}: {}: no TUN offloads ({e})", tun.name()),
        }
    }

    /// Wait for the next read from the TUN; returns its length for [`send`](Self::send).
    pub(crate) async fn recv(&mut self, tun: &Tun) -> io::Result<usize> {
        self.alloc();
        if self.offload {
            tun.recv_vnet(&mut self.buf).await
        } else {
            tun.recv(&mut self.buf).await
        }
    }

    /// Hand the read of `n` bytes to the endpoint, then drain the TUN (up to [`TX_DRAIN`]
    /// reads) the same way. Returns how many IP packets the endpoint accepted.
    pub(crate) fn send(
        &mut self,
        n: usize,
        tun: &Tun,
        session: &Session,
        ep: &mut Endpoint,
    ) -> usize {
        let mut sent = self.hand_over(n, session, ep);
        for _ in 1..TX_DRAIN {
            let r = if self.offload {
                tun.try_recv_vnet(&mut self.buf)
            } else {
                tun.try_recv(&mut self.buf)
            };
            match r {
                Ok(n) => sent += self.hand_over(n, session, ep),
                // WouldBlock: drained. Anything else: the next waiting read reports it.
                Err(_) => break,
            }
        }
        sent
    }

    fn alloc(&mut self) {
        if self.buf.is_empty() {
            self.buf = vec![0u8; VNET_HDR_LEN + MAX_DATAGRAM];
        }
    }

    /// One read: a packet, or on the offload path a vnet header and a packet or super-packet.
    fn hand_over(&mut self, n: usize, session: &Session, ep: &mut Endpoint) -> usize {
        let Some(data) = self.buf.get_mut(..n) else {
            return 0;
        };
        if !self.offload {
            return usize::from(ep.send_ip(data).is_ok());
        }
        let Ok(hdr) = VnetHdr::parse(data) else {
            return 0;
        };
        let packet = &mut data[VNET_HDR_LEN..];
        if !hdr.is_gso() {
            if hdr.flags & gso::F_NEEDS_CSUM != 0 && gso::complete_checksum(packet, &hdr).is_err() {
                session.tx_done(0, false);
                return 0;
            }
            return usize::from(ep.send_ip(packet).is_ok());
        }
        let seg = match TcpSegmenter::with_link(Link::Ip, &hdr, packet) {
            Ok(s) => s,
            Err(e) => {
                // Not something the TUN produces with the offloads we asked for.
                tracing::debug!("{}: cannot segment a GSO packet: {e}", session.name());
                session.tx_done(0, false);
                return 0;
            }
        };
        if self.seg.len() < seg.full_segment_len() {
            self.seg.resize(seg.full_segment_len(), 0);
        }
        let mut sent = 0;
        for i in 0..seg.count() {
            match seg.write_segment(i, &mut self.seg) {
                Ok(len) => sent += usize::from(ep.send_ip(&self.seg[..len]).is_ok()),
                Err(_) => session.tx_done(0, false),
            }
        }
        sent
    }

    /// Write an IP packet from the peer to the TUN (or hold it to join the next ones, on the
    /// offload path). Call [`flush`](Self::flush) before waiting.
    pub(crate) fn deliver(&mut self, tun: &Tun, packet: &[u8]) {
        if !self.offload {
            let _ = tun.try_send(packet);
            return;
        }
        let c = self
            .rx
            .get_or_insert_with(|| Coalescer::with_link(Link::Ip));
        if c.try_append(packet) {
            return;
        }
        if let Some(b) = c.take() {
            let _ = tun.try_send_vnet(b);
        }
        if !c.start(packet) {
            let _ = tun.try_send(packet);
        }
    }

    /// Write out the held run, if any.
    pub(crate) fn flush(&mut self, tun: &Tun) {
        if let Some(b) = self.rx.as_mut().and_then(Coalescer::take) {
            let _ = tun.try_send_vnet(b);
        }
    }
}
