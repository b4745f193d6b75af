//! Configuration: [`Config`] of an endpoint or tunnel, [`SessionConfig`], [`CallType`],
//! [`DigestAlg`], and the checks that refuse values an AVP cannot carry.

use std::time::Duration;

use ul2tp_wire::avp::{DigestType, L2SpecType, PwType, AVP_MAX_VALUE_LEN};
use ul2tp_wire::control::Version;

use super::Error;
use crate::channel::ChannelParams;

/// Which call model a session uses (docs/reference/rfc.md §1.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallType {
    /// Incoming call: ICRQ / ICRP / ICCN (the usual LAC→LNS and L2TPv3 pseudowire case).
    Incoming,
    /// Outgoing call: OCRQ / OCRP / OCCN.
    Outgoing,
}

/// Parameters a local side proposes for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Call model (ignored for sessions the peer opens).
    pub call: CallType,
    /// Pseudowire type (v3 PW Type AVP; v2 sessions are always PPP, 7).
    pub pw_type: PwType,
    /// Length of the cookie we assign (0, 4 or 8 octets; v3 only).
    pub cookie_len: u8,
    /// L2-Specific Sublayer we want on packets we receive (0 none, 1 default; v3 only).
    pub l2spec_type: L2SpecType,
    /// Whether we want sequence numbers on packets we receive (v3 Data Sequencing 2, v2
    /// Sequencing Required).
    pub recv_seq: bool,
    /// Remote End ID (v3) / Called Number (v2 ICRQ and OCRQ; not sent in an ICRQ when empty).
    pub remote_end_id: Vec<u8>,
    /// v2 ICRQ: Calling Number (RFC 2661 §4.4.5); not sent when empty.
    pub calling_number: Vec<u8>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            call: CallType::Incoming,
            pw_type: PwType::Ethernet,
            cookie_len: 8,
            l2spec_type: L2SpecType::Default,
            recv_seq: false,
            remote_end_id: Vec::new(),
            calling_number: Vec::new(),
        }
    }
}

/// Configuration of an endpoint (defaults for tunnels the peer opens) or of one tunnel opened
/// with [`Endpoint::connect`](crate::Endpoint::connect). Defaults follow docs/reference/rfc.md §1.10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Protocol version for tunnels we open (incoming SCCRQs use their own version).
    pub version: Version,
    /// Host Name AVP.
    pub host_name: String,
    /// Router ID AVP (v3).
    pub router_id: u32,
    /// Shared secret: v2 challenge/hiding, v3 message authentication/hiding.
    pub secret: Option<Vec<u8>>,
    /// Hide the AVPs that may be hidden (needs a secret; v3 also needs authentication).
    pub hide_avps: bool,
    /// v2, with a `secret`: send a Challenge (in SCCRQ as initiator, SCCRP as responder) and
    /// refuse the tunnel with StopCCN 4 unless the peer's next message carries the right
    /// Challenge Response (docs/reference/rfc.md §1.9). On by default, so that a secret
    /// authenticates the peer; turn it off only for peers that cannot answer.
    pub send_challenge: bool,
    /// v2: answer a peer's Challenge (if false, a tunnel whose peer challenges us is refused).
    pub answer_challenge: bool,
    /// v3: digest algorithm when a secret is configured.
    pub digest: DigestAlg,
    /// Our Receive Window Size.
    pub rx_window: u16,
    /// Idle time before we send a HELLO (plus a random jitter of up to an eighth of it).
    pub hello_interval: Duration,
    /// Initial retransmission timeout.
    pub retransmit_initial: Duration,
    /// Cap of the exponential backoff (RFC: not below 8 s).
    pub retransmit_cap: Duration,
    /// Retransmissions before the tunnel is declared dead.
    pub max_retries: u32,
    /// Delay of a pure acknowledgement waiting for a message to piggyback on.
    pub ack_delay: Duration,
    /// How long state is kept after a StopCCN to re-acknowledge it (docs/reference/rfc.md §1.11: 31 s).
    pub stop_hold: Duration,
    /// Pseudowire types we accept and advertise (v3 PW Capabilities List).
    pub pw_types: Vec<PwType>,
    /// Send a Tie Breaker AVP in SCCRQ.
    pub tie_breaker: bool,
    /// Framing Capabilities (v2).
    pub framing_caps: u32,
    /// Bearer Capabilities (v2).
    pub bearer_caps: u32,
    /// What we propose for sessions the peer opens.
    pub session_defaults: SessionConfig,
    /// Endpoint only: most half-open tunnels (SCCRQ received, SCCCN not yet) held at once;
    /// an SCCRQ beyond it is dropped without an answer (docs/security.md).
    pub max_half_open: usize,
    /// Endpoint only: most half-open tunnels from one source IP address.
    pub max_half_open_per_peer: usize,
    /// Endpoint only: new tunnels per second one source IP address may open (token bucket
    /// refill rate; 0 turns the rate limit off).
    pub new_tunnels_per_second_per_peer: u32,
    /// Endpoint only: bucket size of that rate limit (new tunnels in a burst).
    pub new_tunnels_burst_per_peer: u32,
    /// Endpoint only: retransmissions of our SCCRP to a peer that has not answered with
    /// SCCCN (the tunnel is half-open); lower than `max_retries` to limit reflection. The
    /// effective value is `min(max_retries, max_retries_half_open)`.
    pub max_retries_half_open: u32,
    /// Sessions this tunnel holds at most; a call beyond it is refused with CDN Result Code 4
    /// (temporary lack of facilities). 0: no limit.
    pub max_sessions: usize,
    /// For tunnels the peer opens: tunnels one peer IP address may have opened and hold at
    /// once when a new one would get this configuration; an SCCRQ beyond it is answered with StopCCN Result Code 2, Error Code 4
    /// (insufficient resources). 0: no limit.
    pub max_tunnels_per_peer: usize,
    /// The name of the profile this configuration came from (the daemon's `[[lns]]` tables);
    /// not used by the engine, returned in [`TunnelInfo`](crate::TunnelInfo).
    pub profile: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: Version::V2,
            host_name: "ul2tp".to_string(),
            router_id: 1,
            secret: None,
            hide_avps: false,
            send_challenge: true,
            answer_challenge: true,
            digest: DigestAlg::HmacMd5,
            rx_window: 16,
            hello_interval: Duration::from_secs(60),
            retransmit_initial: Duration::from_secs(1),
            retransmit_cap: Duration::from_secs(16),
            max_retries: 5,
            ack_delay: Duration::from_millis(100),
            stop_hold: Duration::from_secs(31),
            pw_types: vec![PwType::Ethernet, PwType::EthernetVlan, PwType::Ppp],
            tie_breaker: true,
            framing_caps: 3,
            bearer_caps: 0,
            session_defaults: SessionConfig::default(),
            max_half_open: 1000,
            max_half_open_per_peer: 8,
            new_tunnels_per_second_per_peer: 4,
            new_tunnels_burst_per_peer: 8,
            max_retries_half_open: 3,
            max_sessions: 0,
            max_tunnels_per_peer: 0,
            profile: String::new(),
        }
    }
}

impl Config {
    pub(super) fn params(&self) -> ChannelParams {
        ChannelParams {
            rx_window: self.rx_window.max(1),
            rto_initial: self.retransmit_initial,
            rto_cap: self.retransmit_cap.max(self.retransmit_initial),
            max_retries: self.max_retries,
            ack_delay: self.ack_delay,
        }
    }

    /// How long the peer may go on retransmitting one message if its timers are ours: the
    /// initial timeout, doubled up to the cap, for the first transmission and every one of
    /// `max_retries` retransmissions (RFC 2661 §5.8).
    pub(super) fn retransmit_cycle(&self) -> Duration {
        let cap = self.retransmit_cap.max(self.retransmit_initial);
        let mut rto = self.retransmit_initial;
        let mut total = Duration::ZERO;
        // Past the cap every step is the cap: no need to loop over a huge retry count.
        for k in 0..=self.max_retries {
            if rto >= cap {
                let left = self.max_retries - k + 1;
                return total.saturating_add(cap.saturating_mul(left));
            }
            total = total.saturating_add(rto);
            rto = rto.saturating_mul(2).min(cap);
        }
        total
    }

    /// Refuse values an AVP cannot carry, so that every message the engine builds from this
    /// configuration fits the 10-bit AVP Length (RFC 2661 §4.1).
    pub(super) fn check(&self) -> Result<(), Error> {
        if !fits_avp(self.host_name.len()) {
            return Err(Error::BadConfig("host_name does not fit in an AVP"));
        }
        if !fits_avp(self.pw_types.len() * 2) {
            return Err(Error::BadConfig("too many pw_types for an AVP"));
        }
        self.session_defaults.check()
    }
}

impl SessionConfig {
    /// See [`Config::check`].
    pub(super) fn check(&self) -> Result<(), Error> {
        if !fits_avp(self.remote_end_id.len()) {
            return Err(Error::BadConfig("remote_end_id does not fit in an AVP"));
        }
        if !fits_avp(self.calling_number.len()) {
            return Err(Error::BadConfig("calling_number does not fit in an AVP"));
        }
        Ok(())
    }
}

/// Whether a value of `len` octets fits in an AVP, hidden or not (a hidden value carries a
/// 2-octet original-length field in front, docs/reference/rfc.md §1.8).
fn fits_avp(len: usize) -> bool {
    len + 2 <= AVP_MAX_VALUE_LEN
}

/// Message digest algorithm of L2TPv3 control message authentication (RFC 3931 §5.4.1): the
/// configuration-side name of the wire layer's [`DigestType`] without its unknown values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    /// HMAC-MD5, Digest Type 0 (MUST).
    HmacMd5,
    /// HMAC-SHA-1, Digest Type 1 (SHOULD).
    HmacSha1,
}

impl DigestAlg {
    /// The wire layer's Digest Type.
    pub const fn digest_type(self) -> DigestType {
        match self {
            DigestAlg::HmacMd5 => DigestType::HmacMd5,
            DigestAlg::HmacSha1 => DigestType::HmacSha1,
        }
    }
}

impl From<DigestAlg> for DigestType {
    fn from(a: DigestAlg) -> DigestType {
        a.digest_type()
    }
}
