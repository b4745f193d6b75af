//! The RFC 1661 §4 option negotiation automaton (rfc-facts §4.3, §4.4).
//!
//! [`transition`] is the pure transition table: a (state, event) pair maps to a list of
//! actions and the next state, or `None` for an illegal event. [`Fsm`] adds the restart
//! counter and timer; the protocol using it (LCP, IPCP, IPv6CP) performs the actions.
//! Options used: neither the [p] passive nor the [r] restart option (an Open in Opened,
//! Stopped, Closing or Stopping only records the administrative state).

use crate::Timestamp;

/// The ten automaton states (RFC 1661 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, not opened.
    Initial,
    /// 1: opened, waiting for the lower layer.
    Starting,
    /// 2: lower layer up, administratively closed.
    Closed,
    /// 3: waiting passively after finishing (or for a peer's request).
    Stopped,
    /// 4: Terminate-Request sent after Close.
    Closing,
    /// 5: Terminate-Request sent, will go to Stopped.
    Stopping,
    /// 6: Configure-Request sent.
    ReqSent,
    /// 7: our request acknowledged.
    AckRcvd,
    /// 8: peer's request acknowledged.
    AckSent,
    /// 9: both directions acknowledged.
    Opened,
}

impl State {
    /// All states in RFC order.
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    /// Whether the restart timer runs in this state (rfc-facts §4.3).
    pub fn has_timer(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }
}

/// Automaton events (RFC 1661 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Lower layer up.
    Up,
    /// Lower layer down.
    Down,
    /// Administrative open.
    Open,
    /// Administrative close.
    Close,
    /// Restart timer expired, counter > 0.
    ToPlus,
    /// Restart timer expired, counter exhausted.
    ToMinus,
    /// Acceptable Configure-Request.
    RcrPlus,
    /// Unacceptable Configure-Request.
    RcrMinus,
    /// Configure-Ack.
    Rca,
    /// Configure-Nak or Configure-Reject.
    Rcn,
    /// Terminate-Request.
    Rtr,
    /// Terminate-Ack.
    Rta,
    /// Unknown code.
    Ruc,
    /// Permitted Code-Reject / Protocol-Reject.
    RxjPlus,
    /// Catastrophic Code-Reject / Protocol-Reject.
    RxjMinus,
    /// Echo-Request, Echo-Reply or Discard-Request.
    Rxr,
}

impl Event {
    /// All events in RFC order.
    pub const ALL: [Event; 16] = [
        Event::Up,
        Event::Down,
        Event::Open,
        Event::Close,
        Event::ToPlus,
        Event::ToMinus,
        Event::RcrPlus,
        Event::RcrMinus,
        Event::Rca,
        Event::Rcn,
        Event::Rtr,
        Event::Rta,
        Event::Ruc,
        Event::RxjPlus,
        Event::RxjMinus,
        Event::Rxr,
    ];
}

/// Automaton actions (RFC 1661 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// This-Layer-Up.
    Tlu,
    /// This-Layer-Down.
    Tld,
    /// This-Layer-Started.
    Tls,
    /// This-Layer-Finished.
    Tlf,
    /// Initialize-Restart-Count.
    Irc,
    /// Zero-Restart-Count.
    Zrc,
    /// Send Configure-Request.
    Scr,
    /// Send Configure-Ack.
    Sca,
    /// Send Configure-Nak or Configure-Reject.
    Scn,
    /// Send Terminate-Request.
    Str,
    /// Send Terminate-Ack.
    Sta,
    /// Send Code-Reject.
    Scj,
    /// Send Echo-Reply.
    Ser,
}

/// The RFC 1661 §4.1 transition table (transcribed in rfc-facts §4.3). `None` = illegal event.
pub fn transition(state: State, event: Event) -> Option<(&'static [Action], State)> {
    use Action::*;
    use Event as E;
    use State as S;
    let r: (&'static [Action], State) = match (event, state) {
        (E::Up, S::Initial) => (&[], S::Closed),
        (E::Up, S::Starting) => (&[Irc, Scr], S::ReqSent),
        (E::Up, _) => return None,

        (E::Down, S::Closed) => (&[], S::Initial),
        (E::Down, S::Stopped) => (&[Tls], S::Starting),
        (E::Down, S::Closing) => (&[], S::Initial),
        (E::Down, S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent) => (&[], S::Starting),
        (E::Down, S::Opened) => (&[Tld], S::Starting),
        (E::Down, _) => return None,

        (E::Open, S::Initial) => (&[Tls], S::Starting),
        (E::Open, S::Starting) => (&[], S::Starting),
        (E::Open, S::Closed) => (&[Irc, Scr], S::ReqSent),
        (E::Open, S::Stopped) => (&[], S::Stopped),
        (E::Open, S::Closing | S::Stopping) => (&[], S::Stopping),
        (E::Open, s) => (&[], s),

        (E::Close, S::Initial) => (&[], S::Initial),
        (E::Close, S::Starting) => (&[Tlf], S::Initial),
        (E::Close, S::Closed | S::Stopped) => (&[], S::Closed),
        (E::Close, S::Closing | S::Stopping) => (&[], S::Closing),
        (E::Close, S::ReqSent | S::AckRcvd | S::AckSent) => (&[Irc, Str], S::Closing),
        (E::Close, S::Opened) => (&[Tld, Irc, Str], S::Closing),

        (E::ToPlus, S::Closing) => (&[Str], S::Closing),
        (E::ToPlus, S::Stopping) => (&[Str], S::Stopping),
        (E::ToPlus, S::ReqSent | S::AckRcvd) => (&[Scr], S::ReqSent),
        (E::ToPlus, S::AckSent) => (&[Scr], S::AckSent),
        (E::ToPlus, _) => return None,

        (E::ToMinus, S::Closing) => (&[Tlf], S::Closed),
        (E::ToMinus, S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent) => (&[Tlf], S::Stopped),
        (E::ToMinus, _) => return None,

        (E::RcrPlus, S::Closed) => (&[Sta], S::Closed),
        (E::RcrPlus, S::Stopped) => (&[Irc, Scr, Sca], S::AckSent),
        (E::RcrPlus, S::Closing | S::Stopping) => (&[], state),
        (E::RcrPlus, S::ReqSent | S::AckSent) => (&[Sca], S::AckSent),
        (E::RcrPlus, S::AckRcvd) => (&[Sca, Tlu], S::Opened),
        (E::RcrPlus, S::Opened) => (&[Tld, Scr, Sca], S::AckSent),
        (E::RcrPlus, _) => return None,

        (E::RcrMinus, S::Closed) => (&[Sta], S::Closed),
        (E::RcrMinus, S::Stopped) => (&[Irc, Scr, Scn], S::ReqSent),
        (E::RcrMinus, S::Closing | S::Stopping) => (&[], state),
        (E::RcrMinus, S::ReqSent | S::AckSent) => (&[Scn], S::ReqSent),
        (E::RcrMinus, S::AckRcvd) => (&[Scn], S::AckRcvd),
        (E::RcrMinus, S::Opened) => (&[Tld, Scr, Scn], S::ReqSent),
        (E::RcrMinus, _) => return None,

        (E::Rca, S::Closed | S::Stopped) => (&[Sta], state),
        (E::Rca, S::Closing | S::Stopping) => (&[], state),
        (E::Rca, S::ReqSent) => (&[Irc], S::AckRcvd),
        (E::Rca, S::AckRcvd) => (&[Scr], S::ReqSent),
        (E::Rca, S::AckSent) => (&[Irc, Tlu], S::Opened),
        (E::Rca, S::Opened) => (&[Tld, Scr], S::ReqSent),
        (E::Rca, _) => return None,

        (E::Rcn, S::Closed | S::Stopped) => (&[Sta], state),
        (E::Rcn, S::Closing | S::Stopping) => (&[], state),
        (E::Rcn, S::ReqSent) => (&[Irc, Scr], S::ReqSent),
        (E::Rcn, S::AckRcvd) => (&[Scr], S::ReqSent),
        (E::Rcn, S::AckSent) => (&[Irc, Scr], S::AckSent),
        (E::Rcn, S::Opened) => (&[Tld, Scr], S::ReqSent),
        (E::Rcn, _) => return None,

        (E::Rtr, S::Closed | S::Stopped | S::Closing | S::Stopping) => (&[Sta], state),
        (E::Rtr, S::ReqSent | S::AckRcvd | S::AckSent) => (&[Sta], S::ReqSent),
        (E::Rtr, S::Opened) => (&[Tld, Zrc, Sta], S::Stopping),
        (E::Rtr, _) => return None,

        (E::Rta, S::Closed | S::Stopped) => (&[], state),
        (E::Rta, S::Closing) => (&[Tlf], S::Closed),
        (E::Rta, S::Stopping) => (&[Tlf], S::Stopped),
        (E::Rta, S::ReqSent | S::AckRcvd) => (&[], S::ReqSent),
        (E::Rta, S::AckSent) => (&[], S::AckSent),
        (E::Rta, S::Opened) => (&[Tld, Scr], S::ReqSent),
        (E::Rta, _) => return None,

        (E::Ruc, S::Initial | S::Starting) => return None,
        (E::Ruc, s) => (&[Scj], s),

        (E::RxjPlus, S::Initial | S::Starting) => return None,
        (E::RxjPlus, S::AckRcvd) => (&[], S::ReqSent),
        (E::RxjPlus, s) => (&[], s),

        (E::RxjMinus, S::Closed | S::Closing) => (&[Tlf], S::Closed),
        (E::RxjMinus, S::Stopped | S::Stopping | S::ReqSent | S::AckRcvd | S::AckSent) => {
            (&[Tlf], S::Stopped)
        }
        (E::RxjMinus, S::Opened) => (&[Tld, Irc, Str], S::Stopping),
        (E::RxjMinus, _) => return None,

        (E::Rxr, S::Initial | S::Starting) => return None,
        (E::Rxr, S::Opened) => (&[Ser], S::Opened),
        (E::Rxr, s) => (&[], s),
    };
    Some(r)
}

/// Restart timer and counter configuration (rfc-facts §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsmConfig {
    /// Restart timer in microseconds (default 3 s).
    pub restart_us: u64,
    /// Max-Configure (default 10).
    pub max_configure: u32,
    /// Max-Terminate (default 2).
    pub max_terminate: u32,
    /// Max-Failure (default 5).
    pub max_failure: u32,
}

impl Default for FsmConfig {
    fn default() -> Self {
        FsmConfig {
            restart_us: 3_000_000,
            max_configure: 10,
            max_terminate: 2,
            max_failure: 5,
        }
    }
}

/// One automaton instance: state, restart counter, restart timer deadline.
#[derive(Debug, Clone)]
pub struct Fsm {
    /// Current state.
    pub state: State,
    /// Restart counter.
    pub restart_count: u32,
    /// Restart timer deadline, when running.
    pub deadline: Option<Timestamp>,
    /// Configure-Naks sent since the last Configure-Ack we sent (Max-Failure).
    pub nak_count: u32,
    /// Timer and counter settings.
    pub config: FsmConfig,
}

impl Fsm {
    /// A new automaton in Initial.
    pub fn new(config: FsmConfig) -> Fsm {
        Fsm {
            state: State::Initial,
            restart_count: 0,
            deadline: None,
            nak_count: 0,
            config,
        }
    }

    /// Apply `event`: move to the next state and return the actions the caller must perform.
    /// Counter bookkeeping (irc, zrc, the decrement on scr/str) and the timer are done here;
    /// the caller sends the packets. Illegal events return an empty list and keep the state.
    pub fn step(&mut self, now: Timestamp, event: Event) -> &'static [Action] {
        let Some((actions, next)) = transition(self.state, event) else {
            return &[];
        };
        for a in actions {
            match a {
                Action::Irc => {
                    self.restart_count = if matches!(next, State::Closing | State::Stopping) {
                        self.config.max_terminate
                    } else {
                        self.config.max_configure
                    };
                    if next != State::Opened {
                        self.nak_count = 0;
                    }
                }
                Action::Zrc => {
                    self.restart_count = 0;
                    self.deadline = Some(now.plus_micros(self.config.restart_us));
                }
                Action::Scr | Action::Str => {
                    self.restart_count = self.restart_count.saturating_sub(1);
                    self.deadline = Some(now.plus_micros(self.config.restart_us));
                }
                _ => {}
            }
        }
        self.state = next;
        if !next.has_timer() {
            self.deadline = None;
        }
        actions
    }

    /// The timeout event due at `now`, if the restart timer has expired.
    pub fn timeout_event(&mut self, now: Timestamp) -> Option<Event> {
        let d = self.deadline?;
        if now < d {
            return None;
        }
        self.deadline = None;
        Some(if self.restart_count > 0 {
            Event::ToPlus
        } else {
            Event::ToMinus
        })
    }
}
