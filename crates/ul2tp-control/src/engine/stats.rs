//! Counters: [`EndpointStats`] for the whole endpoint, [`MessageStats`] for its control
//! messages by type, [`TunnelStats`] for one tunnel.

use std::collections::BTreeMap;

use ul2tp_wire::avp::MessageType;

use crate::channel::ChannelStats;

/// Control messages of one Message Type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Sent for the first time.
    pub sent: u64,
    /// Retransmitted.
    pub retransmitted: u64,
    /// Received and delivered in order to the state machines (duplicates and messages
    /// dropped before delivery are not counted).
    pub received: u64,
}

/// Control messages by Message Type, over every tunnel the endpoint ever held (pure
/// acknowledgements, ZLBs and v3 ACKs the endpoint builds, are `ChannelStats::tx_acks`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageStats(BTreeMap<u16, MessageCounts>);

impl MessageStats {
    /// The counts of one type (zero if never seen).
    pub fn get(&self, t: MessageType) -> MessageCounts {
        self.0.get(&t.get()).copied().unwrap_or_default()
    }

    /// Every type seen, by type number.
    pub fn iter(&self) -> impl Iterator<Item = (MessageType, MessageCounts)> + '_ {
        self.0.iter().map(|(&t, &c)| (MessageType::from(t), c))
    }

    pub(crate) fn entry(&mut self, t: MessageType) -> &mut MessageCounts {
        self.0.entry(t.get()).or_default()
    }
}

/// Endpoint-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to the endpoint.
    pub rx_datagrams: u64,
    /// Datagrams with a malformed header or body.
    pub rx_malformed: u64,
    /// Datagrams for no known tunnel.
    pub rx_unknown_tunnel: u64,
    /// Of those, StopCCNs acknowledged without a tunnel (the hold-down after the peer's
    /// StopCCN ended before its retransmissions did; see `Endpoint::handle_datagram`).
    pub orphan_stopccn_acks: u64,
    /// Datagrams failing v3 message authentication.
    pub rx_auth_failures: u64,
    /// SCCRQs ignored because we won the tie-break.
    pub tie_breaks_won: u64,
    /// New SCCRQs dropped unanswered: the global or per-source half-open cap was reached.
    pub sccrq_dropped_half_open: u64,
    /// New SCCRQs dropped unanswered: the source exceeded its new-tunnel rate.
    pub sccrq_rate_limited: u64,
    /// New SCCRQs answered with StopCCN: the selector matched no configuration, or the
    /// peer holds `max_tunnels_per_peer` tunnels already.
    pub sccrq_refused: u64,
    /// Tunnels whose timers the last `handle_timeout` call looked at (a work counter: it
    /// grows with the tunnels that are due, not with the tunnels held).
    pub last_timeout_work: u64,
    /// Channel counters of the tunnels no longer held (added when a tunnel is forgotten), so
    /// that these plus every held tunnel's count everything the endpoint ever did.
    pub closed_channels: ChannelStats,
}

/// Per-tunnel view for tests and `show` commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelStats {
    /// State name.
    pub state: &'static str,
    /// Peer tunnel id.
    pub peer_tunnel_id: u32,
    /// Number of sessions.
    pub sessions: usize,
    /// Sessions established (the others are being set up).
    pub sessions_established: usize,
    /// Messages queued or in flight.
    pub unacked: usize,
    /// Ns the next message queued will get (queued messages not yet sent count; when the
    /// tunnel is cleared, the ones never sent are given back).
    pub next_ns: u16,
    /// Our Nr.
    pub nr: u16,
    /// Channel counters.
    pub channel: ChannelStats,
}
