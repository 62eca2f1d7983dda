//! The session state machine (RFC 5880 §6.2, §6.8.1-6.8.7), pure: no sockets, no clock. Time
//! comes in with every event; what to do comes out as [`Action`]s, and the two deadlines the
//! driver must wake up for are [`Session::next_tx`] and [`Session::detect_deadline`].
//!
//! ```text
//!                      +--+
//!                      |  | UP, ADMIN DOWN, TIMER
//!                      |  V
//!              DOWN  +------+  INIT
//!       +------------|      |------------+
//!       |            | DOWN |            |
//!       |  +-------->|      |<--------+  |
//!       |  |         +------+         |  |
//!       |  |                          |  |
//!       |  |               ADMIN DOWN,|  |
//!       |  |ADMIN DOWN,          DOWN,|  |
//!       |  |TIMER                TIMER|  |
//!       V  |                          |  V
//!     +------+                      +------+
//! +---|      |                      |      |---+
//! |   | INIT |--------------------->|  UP  |   |
//! +-->|      | INIT, UP             |      |<--+
//!     +------+                      +------+
//! ```
//!
//! Choices where the RFC leaves room: a state change sends a packet at once (as BIRD and FRR
//! do) so the handshake takes one round trip, not one transmit interval per step; the local
//! diagnostic is cleared when the session comes Up. Demand mode is never asked for, but a peer
//! that asks for it is honoured (periodic transmission stops while both sides are Up).
//!
//! The Echo function (§6.4, §6.8.9): with `echo_interval` set, while the session is Up and
//! the peer advertises a non-zero Required Min Echo RX Interval, echoes go out every
//! max(our echo interval, the peer's Required Min Echo RX) ([`Action::SendEcho`], no jitter)
//! and the session goes Down with diagnostic 2 (Echo Function Failed) when none of them
//! comes back for our Detect Mult × that interval. While echoes run, our Required Min RX
//! Interval is raised to at least one second (§6.8.3), through a Poll Sequence, and lowered
//! again when they stop. We never loop the peer's echoes, so we advertise a Required Min
//! Echo RX Interval of 0.

use crate::packet::{ControlPacket, Diag, State, from_micros, micros};
use crate::params::BfdParams;
use std::time::{Duration, Instant};

/// While the session is not Up, packets go out at most once a second (§6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);
/// While the Echo function is active our Required Min RX Interval is at least this (§6.8.3).
pub const ECHO_SLOW_RX: Duration = Duration::from_secs(1);

/// What happens to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Begin: an active session sends its first packet now.
    Start,
    /// A Control packet for this session passed [`ControlPacket::decode`] (and the TTL check).
    Received(ControlPacket),
    /// [`Session::next_tx`] was reached.
    TxTimer,
    /// [`Session::detect_deadline`] was reached.
    DetectTimer,
    /// Hold the session administratively down (the peer is told with state AdminDown).
    AdminDown,
    /// Leave AdminDown.
    AdminUp,
    /// New parameters; while Up a Poll Sequence makes the peer confirm them.
    SetParams(BfdParams),
    /// [`Session::echo_tx_deadline`] was reached.
    EchoTxTimer,
    /// [`Session::echo_detect_deadline`] was reached.
    EchoDetectTimer,
    /// One of this session's echoes came back, with its sequence number.
    EchoReceived(u64),
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this packet now.
    Send(ControlPacket),
    /// The session changed state.
    StateChanged {
        /// Before.
        from: State,
        /// After.
        to: State,
        /// The local diagnostic after the change.
        diag: Diag,
    },
    /// The next periodic transmission is due then (None: none scheduled).
    TxDeadline(Option<Instant>),
    /// The session goes down unless a packet arrives before then (None: not armed).
    DetectDeadline(Option<Instant>),
    /// Send an Echo packet with this sequence number now.
    SendEcho(u64),
    /// The Echo function started (true) or stopped (false).
    EchoActive(bool),
}

/// One BFD session (the state variables of §6.8.1 plus the two timers).
#[derive(Debug, Clone)]
pub struct Session {
    params: BfdParams,
    state: State,
    local_diag: Diag,
    local_discr: u32,
    remote_discr: u32,
    remote_state: State,
    remote_demand: bool,
    remote_min_rx: Duration,
    remote_desired_min_tx: Duration,
    remote_detect_mult: u8,
    remote_min_echo_rx: Duration,
    echo_active: bool,
    echo_tx_at: Option<Instant>,
    echo_detect_at: Option<Instant>,
    /// The next echo's sequence number, and the first of the current run.
    echo_seq: u64,
    echo_first_seq: u64,
    /// bfd.DesiredMinTxInterval / bfd.RequiredMinRxInterval: what our packets say.
    desired_min_tx: Duration,
    required_min_rx: Duration,
    /// The values in force for our transmit interval and the detection time: during a Poll
    /// Sequence a slower transmit rate or a faster receive rate waits for the Final (§6.8.3).
    tx_in_force: Duration,
    rx_in_force: Duration,
    polling: bool,
    next_tx: Option<Instant>,
    detect_at: Option<Instant>,
    rng: u64,
}

impl Session {
    /// A session in state Down. `local_discriminator` must be non-zero and unique among the
    /// system's sessions; `seed` drives the transmit jitter.
    pub fn new(params: BfdParams, local_discriminator: u32, seed: u64) -> Session {
        let desired = slow(params.desired_min_tx);
        Session {
            params,
            state: State::Down,
            local_diag: Diag::None,
            local_discr: local_discriminator,
            remote_discr: 0,
            remote_state: State::Down,
            remote_demand: false,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_min_echo_rx: Duration::ZERO,
            echo_active: false,
            echo_tx_at: None,
            echo_detect_at: None,
            echo_seq: 1,
            echo_first_seq: 1,
            desired_min_tx: desired,
            required_min_rx: params.required_min_rx,
            tx_in_force: desired,
            rx_in_force: params.required_min_rx,
            polling: false,
            next_tx: None,
            detect_at: None,
            rng: seed | 1,
        }
    }

    /// Session state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Local diagnostic: why the session last went down (cleared when it comes Up).
    pub fn local_diag(&self) -> Diag {
        self.local_diag
    }

    /// Our discriminator.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discr
    }

    /// The peer's discriminator (0 until heard, and after a detection time of silence).
    pub fn remote_discriminator(&self) -> u32 {
        self.remote_discr
    }

    /// The state the peer last reported.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// The parameters in use.
    pub fn params(&self) -> &BfdParams {
        &self.params
    }

    /// Desired Min TX / Required Min RX as our packets advertise them now.
    pub fn advertised(&self) -> (Duration, Duration) {
        (self.desired_min_tx, self.required_min_rx)
    }

    /// A Poll Sequence is in progress.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The periodic transmit interval before jitter: max(our desired min TX in force, the
    /// peer's required min RX).
    pub fn tx_interval(&self) -> Duration {
        self.tx_in_force.max(self.remote_min_rx)
    }

    /// The detection time: the peer's Detect Mult × max(our required min RX in force, the
    /// peer's desired min TX); None until the peer is heard.
    pub fn detection_time(&self) -> Option<Duration> {
        if self.remote_detect_mult == 0 {
            return None;
        }
        Some(self.rx_in_force.max(self.remote_desired_min_tx) * self.remote_detect_mult as u32)
    }

    /// When the next periodic packet is due.
    pub fn next_tx(&self) -> Option<Instant> {
        self.next_tx
    }

    /// When the session goes down (or forgets the peer) without news from it.
    pub fn detect_deadline(&self) -> Option<Instant> {
        self.detect_at
    }

    /// The Echo function is running.
    pub fn echo_active(&self) -> bool {
        self.echo_active
    }

    /// The echo transmit interval: max(our echo interval, the peer's Required Min Echo RX
    /// Interval); None while the Echo function is not active.
    pub fn echo_interval(&self) -> Option<Duration> {
        if !self.echo_active {
            return None;
        }
        self.params
            .echo_interval
            .map(|i| i.max(self.remote_min_echo_rx))
    }

    /// The echo detection time: our Detect Mult × [`Session::echo_interval`].
    pub fn echo_detection_time(&self) -> Option<Duration> {
        self.echo_interval()
            .map(|i| i * self.params.detect_mult as u32)
    }

    /// When the next echo is due.
    pub fn echo_tx_deadline(&self) -> Option<Instant> {
        self.echo_tx_at
    }

    /// When the session goes down (Echo Function Failed) unless an echo comes back.
    pub fn echo_detect_deadline(&self) -> Option<Instant> {
        self.echo_detect_at
    }

    /// The packet we would send now (P while polling).
    pub fn packet(&self) -> ControlPacket {
        ControlPacket {
            diag: self.local_diag,
            state: self.state,
            poll: self.polling,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.params.detect_mult,
            my_discriminator: self.local_discr,
            your_discriminator: self.remote_discr,
            desired_min_tx: micros(self.desired_min_tx),
            required_min_rx: micros(self.required_min_rx),
            required_min_echo_rx: 0,
        }
    }

    /// Feeds one event that happened at `now`; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        let (tx_before, detect_before) = (self.next_tx, self.detect_at);
        let before = self.state;
        match event {
            Event::Start => {
                if self.may_send_periodic() {
                    self.send_now(now, &mut out);
                }
            }
            Event::Received(p) => self.receive(now, p, &mut out),
            Event::TxTimer => {
                if self.may_send_periodic() {
                    self.send_now(now, &mut out);
                } else {
                    self.next_tx = None;
                }
            }
            Event::DetectTimer => {
                if self.detect_at.is_some_and(|at| at <= now) {
                    self.detect_at = None;
                    self.remote_discr = 0;
                    if matches!(self.state, State::Init | State::Up) {
                        self.set_state(now, State::Down, Diag::ControlDetectionTimeExpired);
                    }
                    if !self.may_send_periodic() {
                        self.next_tx = None;
                    }
                }
            }
            Event::AdminDown => {
                if self.state != State::AdminDown {
                    self.set_state(now, State::AdminDown, Diag::AdministrativelyDown);
                    self.detect_at = None;
                }
            }
            Event::AdminUp => {
                if self.state == State::AdminDown {
                    self.set_state(now, State::Down, Diag::None);
                }
            }
            Event::SetParams(p) => {
                let echo_changed = p.echo_interval != self.params.echo_interval;
                self.params = p;
                if echo_changed && self.echo_active {
                    // Restart with the new interval (or stop, below).
                    self.stop_echo(&mut out);
                }
                self.update_timers(now);
                if self.next_tx.is_none() && self.may_send_periodic() {
                    self.send_now(now, &mut out);
                }
            }
            Event::EchoTxTimer => {
                if let (Some(at), Some(i)) = (self.echo_tx_at, self.echo_interval())
                    && at <= now
                {
                    out.push(Action::SendEcho(self.echo_seq));
                    self.echo_seq += 1;
                    // From the deadline, not from a late wake-up, so delays do not add up.
                    self.echo_tx_at = Some((at + i).max(now));
                }
            }
            Event::EchoDetectTimer => {
                if self.echo_active && self.echo_detect_at.is_some_and(|at| at <= now) {
                    self.set_state(now, State::Down, Diag::EchoFunctionFailed);
                }
            }
            Event::EchoReceived(seq) => {
                if self.echo_active
                    && (self.echo_first_seq..self.echo_seq).contains(&seq)
                    && let Some(d) = self.echo_detection_time()
                {
                    self.echo_detect_at = Some(now + d);
                }
            }
        }
        self.update_echo(now, &mut out);
        if self.state != before {
            out.push(Action::StateChanged {
                from: before,
                to: self.state,
                diag: self.local_diag,
            });
            // Tell the peer at once (a Final already carried the new state).
            if !out.iter().any(|a| matches!(a, Action::Send(_))) && self.may_send() {
                self.send_now(now, &mut out);
            }
        }
        if self.next_tx != tx_before {
            out.push(Action::TxDeadline(self.next_tx));
        }
        if self.detect_at != detect_before {
            out.push(Action::DetectDeadline(self.detect_at));
        }
        out
    }

    fn receive(&mut self, now: Instant, p: ControlPacket, out: &mut Vec<Action>) {
        if p.your_discriminator != 0 && p.your_discriminator != self.local_discr {
            return;
        }
        self.remote_discr = p.my_discriminator;
        self.remote_state = p.state;
        self.remote_demand = p.demand;
        self.remote_min_rx = from_micros(p.required_min_rx);
        self.remote_desired_min_tx = from_micros(p.desired_min_tx);
        self.remote_detect_mult = p.detect_mult;
        self.remote_min_echo_rx = from_micros(p.required_min_echo_rx);
        if p.final_ && self.polling {
            self.polling = false;
            self.tx_in_force = self.desired_min_tx;
            self.rx_in_force = self.required_min_rx;
        }
        if self.state == State::AdminDown {
            return;
        }
        self.detect_at = self.detection_time().map(|d| now + d);
        match (self.state, p.state) {
            (State::Init | State::Up, State::AdminDown) => {
                self.set_state(now, State::Down, Diag::NeighborSignaledSessionDown)
            }
            (_, State::AdminDown) => {}
            (State::Down, State::Down) => self.set_state(now, State::Init, self.local_diag),
            (State::Down, State::Init) => self.set_state(now, State::Up, Diag::None),
            (State::Init, State::Init | State::Up) => self.set_state(now, State::Up, Diag::None),
            (State::Up, State::Down) => {
                self.set_state(now, State::Down, Diag::NeighborSignaledSessionDown)
            }
            _ => {}
        }
        if p.poll {
            // The Final goes out at once, whatever the transmit timer says (§6.8.7).
            let mut f = self.packet();
            f.poll = false;
            f.final_ = true;
            out.push(Action::Send(f));
        }
        if self.next_tx.is_none() && self.may_send_periodic() {
            // A passive session's first packet, or the peer came back after being forgotten.
            self.send_now(now, out);
        } else if let Some(at) = self.next_tx {
            // A faster rate takes effect now rather than after the old, longer interval.
            let sooner = now + self.tx_interval();
            if sooner < at {
                self.next_tx = Some(now + self.jittered(self.tx_interval()));
            }
        }
    }

    fn set_state(&mut self, now: Instant, to: State, diag: Diag) {
        if to == self.state {
            return;
        }
        self.state = to;
        self.local_diag = diag;
        if to != State::Up {
            self.polling = false;
        }
        self.update_timers(now);
    }

    /// Applies the timer rules of §6.8.3 after a state or parameter change.
    fn update_timers(&mut self, now: Instant) {
        let tx = if self.state == State::Up {
            self.params.desired_min_tx
        } else {
            slow(self.params.desired_min_tx)
        };
        let rx = if self.echo_active {
            self.params.required_min_rx.max(ECHO_SLOW_RX)
        } else {
            self.params.required_min_rx
        };
        if (tx, rx) == (self.desired_min_tx, self.required_min_rx) {
            return;
        }
        self.desired_min_tx = tx;
        self.required_min_rx = rx;
        if self.state == State::Up {
            self.polling = true;
            // Faster sending and slower receiving are safe at once; the rest waits for the Final.
            self.tx_in_force = self.tx_in_force.min(tx);
            self.rx_in_force = self.rx_in_force.max(rx);
        } else {
            self.polling = false;
            self.tx_in_force = tx;
            self.rx_in_force = rx;
        }
        if let Some(at) = self.next_tx
            && now + self.tx_interval() < at
        {
            self.next_tx = Some(now + self.jittered(self.tx_interval()));
        }
    }

    /// Starts or stops the Echo function as §6.8.9 allows: only while Up, configured, and
    /// wanted by the peer (a non-zero Required Min Echo RX Interval).
    fn update_echo(&mut self, now: Instant, out: &mut Vec<Action>) {
        let wanted = self.params.echo_interval.is_some()
            && self.state == State::Up
            && !self.remote_min_echo_rx.is_zero();
        if wanted && !self.echo_active {
            self.echo_active = true;
            self.echo_first_seq = self.echo_seq;
            out.push(Action::EchoActive(true));
            out.push(Action::SendEcho(self.echo_seq));
            self.echo_seq += 1;
            self.echo_tx_at = self.echo_interval().map(|i| now + i);
            self.echo_detect_at = self.echo_detection_time().map(|d| now + d);
            self.update_timers(now);
        } else if !wanted && self.echo_active {
            self.stop_echo(out);
            self.update_timers(now);
        }
    }

    fn stop_echo(&mut self, out: &mut Vec<Action>) {
        self.echo_active = false;
        self.echo_tx_at = None;
        self.echo_detect_at = None;
        out.push(Action::EchoActive(false));
    }

    /// A passive session stays silent until it has heard the peer (§6.8.7).
    fn may_send(&self) -> bool {
        !(self.params.passive && self.remote_discr == 0)
    }

    fn may_send_periodic(&self) -> bool {
        self.may_send()
            && !self.remote_min_rx.is_zero()
            && !(self.remote_demand && self.state == State::Up && self.remote_state == State::Up)
    }

    fn send_now(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::Send(self.packet()));
        self.next_tx = if self.may_send_periodic() {
            Some(now + self.jittered(self.tx_interval()))
        } else {
            None
        };
    }

    /// 75-100 % of `interval` (75-90 % with a detect multiplier of 1), §6.8.7.
    fn jittered(&mut self, interval: Duration) -> Duration {
        // xorshift64*: plenty for jitter, and deterministic under a seed for tests.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        let span = if self.params.detect_mult == 1 {
            150
        } else {
            250
        };
        let permille = 750 + (r % (span + 1)) as u32;
        interval * permille / 1000
    }
}

fn slow(d: Duration) -> Duration {
    d.max(SLOW_TX)
}
