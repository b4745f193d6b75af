//! Counters: [`EndpointStats`] for the whole endpoint, [`TunnelStats`] for one tunnel.

use crate::channel::ChannelStats;

/// Endpoint-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to the endpoint.
    pub rx_datagrams: u64,
    /// Datagrams with a malformed header or body.
    pub rx_malformed: u64,
    /// Datagrams for no known tunnel.
    pub rx_unknown_tunnel: u64,
    /// Datagrams failing v3 message authentication.
    pub rx_auth_failures: u64,
    /// SCCRQs ignored because we won the tie-break.
    pub tie_breaks_won: u64,
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
