//! The RFC 1661 §4 option negotiation automaton (docs/reference/rfc.md §4.3, §4.4).
//!
//! [`transition`] is the pure transition table: a (state, event) pair maps to a list of
//! actions and the next state, or `None` for an illegal event. [`Fsm`] adds the restart
//! counter and timer; the protocol using it (LCP, IPCP, IPv6CP) performs the actions.
//! Options used: neither the `[p]` passive nor the `[r]` restart option (an Open in Opened,
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

    /// Whether the restart timer runs in this state (docs/reference/rfc.md §4.3).
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

/// The RFC 1661 §4.1 transition table (transcribed in docs/reference/rfc.md §4.3). `None` = illegal event.
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

/// Restart timer and counter configuration (docs/reference/rfc.md §4.4).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1661 §4.1 state transition table, transcribed independently as text:
    /// one row per event, one cell per state 0..9; "-" = illegal.
    const TABLE: &str = "
Up       | 2 | irc,scr/6 | - | - | - | - | - | - | - | -
Down     | - | - | 0 | tls/1 | 0 | 1 | 1 | 1 | 1 | tld/1
Open     | tls/1 | 1 | irc,scr/6 | 3 | 5 | 5 | 6 | 7 | 8 | 9
Close    | 0 | tlf/0 | 2 | 2 | 4 | 4 | irc,str/4 | irc,str/4 | irc,str/4 | tld,irc,str/4
TO+      | - | - | - | - | str/4 | str/5 | scr/6 | scr/6 | scr/8 | -
TO-      | - | - | - | - | tlf/2 | tlf/3 | tlf/3 | tlf/3 | tlf/3 | -
RCR+     | - | - | sta/2 | irc,scr,sca/8 | 4 | 5 | sca/8 | sca,tlu/9 | sca/8 | tld,scr,sca/8
RCR-     | - | - | sta/2 | irc,scr,scn/6 | 4 | 5 | scn/6 | scn/7 | scn/6 | tld,scr,scn/6
RCA      | - | - | sta/2 | sta/3 | 4 | 5 | irc/7 | scr/6 | irc,tlu/9 | tld,scr/6
RCN      | - | - | sta/2 | sta/3 | 4 | 5 | irc,scr/6 | scr/6 | irc,scr/8 | tld,scr/6
RTR      | - | - | sta/2 | sta/3 | sta/4 | sta/5 | sta/6 | sta/6 | sta/6 | tld,zrc,sta/5
RTA      | - | - | 2 | 3 | tlf/2 | tlf/3 | 6 | 6 | 8 | tld,scr/6
RUC      | - | - | scj/2 | scj/3 | scj/4 | scj/5 | scj/6 | scj/7 | scj/8 | scj/9
RXJ+     | - | - | 2 | 3 | 4 | 5 | 6 | 6 | 8 | 9
RXJ-     | - | - | tlf/2 | tlf/3 | tlf/2 | tlf/3 | tlf/3 | tlf/3 | tlf/3 | tld,irc,str/5
RXR      | - | - | 2 | 3 | 4 | 5 | 6 | 7 | 8 | ser/9
";

    fn action(s: &str) -> Action {
        match s {
            "tlu" => Action::Tlu,
            "tld" => Action::Tld,
            "tls" => Action::Tls,
            "tlf" => Action::Tlf,
            "irc" => Action::Irc,
            "zrc" => Action::Zrc,
            "scr" => Action::Scr,
            "sca" => Action::Sca,
            "scn" => Action::Scn,
            "str" => Action::Str,
            "sta" => Action::Sta,
            "scj" => Action::Scj,
            "ser" => Action::Ser,
            other => panic!("unknown action {other}"),
        }
    }

    #[test]
    fn transition_table_matches_rfc1661_for_every_state_and_event() {
        let rows: Vec<&str> = TABLE.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(rows.len(), Event::ALL.len());
        let mut checked = 0;
        for (row, event) in rows.iter().zip(Event::ALL) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 11, "row {row}");
            for (cell, state) in cells[1..].iter().zip(State::ALL) {
                let got = transition(state, event);
                if *cell == "-" {
                    assert_eq!(got, None, "{event:?} in {state:?}");
                } else {
                    let (acts, next) = cell.rsplit_once('/').unwrap_or(("", cell));
                    let want_acts: Vec<Action> = acts
                        .split(',')
                        .filter(|a| !a.is_empty())
                        .map(action)
                        .collect();
                    let want_next = State::ALL[next.parse::<usize>().unwrap()];
                    let (got_acts, got_next) =
                        got.unwrap_or_else(|| panic!("{event:?} in {state:?}"));
                    assert_eq!(got_acts, want_acts.as_slice(), "{event:?} in {state:?}");
                    assert_eq!(got_next, want_next, "{event:?} in {state:?}");
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 160);
    }

    #[test]
    fn counters_and_timer() {
        let cfg = FsmConfig {
            restart_us: 1000,
            max_configure: 3,
            max_terminate: 2,
            max_failure: 5,
        };
        let mut f = Fsm::new(cfg);
        let t0 = Timestamp(0);
        assert!(f.step(t0, Event::Open).contains(&Action::Tls));
        assert_eq!(f.deadline, None);
        f.step(t0, Event::Up);
        assert_eq!(f.state, State::ReqSent);
        // irc = 3, first scr consumed one.
        assert_eq!(f.restart_count, 2);
        assert_eq!(f.deadline, Some(Timestamp(1000)));
        assert_eq!(f.timeout_event(Timestamp(999)), None);
        let mut t = 1000;
        let mut sends = 1;
        loop {
            let ev = f.timeout_event(Timestamp(t)).unwrap();
            let acts = f.step(Timestamp(t), ev);
            if ev == Event::ToMinus {
                assert_eq!(acts, &[Action::Tlf]);
                break;
            }
            sends += 1;
            t += 1000;
        }
        // Max-Configure transmissions in total, then TO− to Stopped without timer.
        assert_eq!(sends, 3);
        assert_eq!(f.state, State::Stopped);
        assert_eq!(f.deadline, None);
        // Close from Opened uses Max-Terminate.
        let mut g = Fsm::new(cfg);
        g.state = State::Opened;
        g.step(t0, Event::Close);
        assert_eq!((g.state, g.restart_count), (State::Closing, 1));
        // zrc: counter 0, timer still runs once.
        let mut h = Fsm::new(cfg);
        h.state = State::Opened;
        h.step(t0, Event::Rtr);
        assert_eq!((h.state, h.restart_count), (State::Stopping, 0));
        assert_eq!(h.timeout_event(Timestamp(1000)), Some(Event::ToMinus));
    }
}
