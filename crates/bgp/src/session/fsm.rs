//! The session state machine of RFC 4271 §8, pure: [`Fsm::handle`] takes an [`Event`] and
//! returns [`Action`]s for the driver to carry out (send, connect, close, start or stop a
//! timer). It owns no socket and reads no clock, so every behaviour replays in tests.
//!
//! ```text
//!   Idle ─start─> Connect ─tcp up─> OpenSent ─OPEN ok─> OpenConfirm ─KEEPALIVE─> Established
//!     ^             │ fail            │ error / hold expiry / NOTIFICATION ... │
//!     │             v                 v                                        v
//!     │           Active <─retry── (backoff 1 s, doubling to 2 min) <──────── Idle
//! ```
//!
//! Differences from the letter of RFC 4271, on purpose: after a failure the machine restarts by
//! itself (automatic start with peer-oscillation damping, §8.1.1) using the ConnectRetry timer
//! with exponential backoff as the idle hold time; the receive hold timer is enforced in every
//! state from OpenSent on (MetalLB's native speaker never expires it).

use crate::packet::capability::{Capability, Family, GracefulRestart, GracefulRestartFamily};
use crate::packet::error::{
    CeaseSubcode, DecodeError, FsmErrorSubcode, OpenErrorSubcode, code as error_code,
};
use crate::packet::message::{Message, NotificationMessage, OpenMessage, UpdateMessage};
use std::net::Ipv4Addr;
use std::time::Duration;

/// First connect-retry delay.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest connect-retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(120);
/// The hold timer while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// Session states (RFC 4271 §8.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not trying; waiting for start (or for the retry timer after a failure).
    Idle,
    /// A TCP connection attempt is in progress.
    Connect,
    /// Waiting before the next connection attempt.
    Active,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged; waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// Routes may be exchanged.
    Established,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// The session's timers; the driver runs them and feeds back [`Event::TimerExpired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Connection attempt timeout in Connect; retry delay in Active and Idle.
    ConnectRetry,
    /// Receive hold timer: no message from the peer for this long ends the session.
    Hold,
    /// When to send the next KEEPALIVE.
    Keepalive,
}

/// Inputs to the state machine.
#[allow(clippy::large_enum_variant)] // see `Message`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start the session (ManualStart).
    Start,
    /// Stop the session, telling the peer (ManualStop; Cease / administrative shutdown).
    Stop,
    /// A timer fired.
    TimerExpired(Timer),
    /// The TCP connection is up.
    TcpConnected,
    /// The connection attempt failed, or the connection closed.
    TcpFailed,
    /// A message arrived.
    Received(Message),
    /// A message arrived that cannot be decoded; the session must end with its NOTIFICATION.
    ReceivedInvalid(DecodeError),
    /// Another connection to the same peer won collision resolution (RFC 4271 §6.8).
    OpenCollisionDump,
}

/// Why a session left Established or failed to get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// We stopped it.
    Stopped,
    /// We sent this NOTIFICATION.
    NotificationSent(NotificationMessage),
    /// The peer sent this NOTIFICATION.
    NotificationReceived(NotificationMessage),
    /// The TCP connection failed or closed.
    ConnectionLost,
}

/// What the session agreed on when it became Established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's ASN.
    pub peer_as: u32,
    /// The peer's BGP identifier.
    pub peer_id: Ipv4Addr,
    /// The peer is in another AS.
    pub ebgp: bool,
    /// Hold time in seconds (0: no hold timer and no keepalives).
    pub hold_time: u16,
    /// Keepalive interval in seconds (0: none).
    pub keepalive: u16,
    /// 4-octet ASNs on the wire.
    pub four_octet_as: bool,
    /// Families both sides support.
    pub families: Vec<Family>,
    /// The peer supports route refresh.
    pub route_refresh: bool,
    /// The peer's graceful restart capability, if announced.
    pub peer_graceful_restart: Option<GracefulRestart>,
}

/// Outputs of the state machine, carried out by the driver in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer.
    Connect,
    /// Close the TCP connection (after sending what was queued before).
    Disconnect,
    /// Send a message.
    Send(Message),
    /// (Re)start a timer.
    StartTimer(Timer, Duration),
    /// Stop a timer.
    StopTimer(Timer),
    /// The session is Established: send the full table, then End-of-RIB.
    Established(Negotiated),
    /// The session ended (from OpenSent or later), or a start failed.
    Down(DownReason),
    /// The peer asked for our routes again (ROUTE-REFRESH).
    ResendRoutes(Family),
    /// The peer sent an UPDATE (in Established); this speaker announces only, so it is counted.
    UpdateReceived(UpdateMessage),
}

/// How the peer's ASN is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAs {
    /// Exactly this ASN (`peerASN`).
    Fixed(u32),
    /// Same as ours (`dynamicASN: internal`).
    Internal,
    /// Any other than ours (`dynamicASN: external`).
    External,
}

/// Graceful restart settings (RFC 4724), as a restarting speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Seconds the peer should keep our routes after the session drops (at most 4095).
    pub restart_time: u16,
    /// This is the first session after our process restarted: the OPEN carries the R bit and
    /// the forwarding-state bit for each family.
    pub restarting: bool,
}

/// What the state machine needs to know; no addresses or sockets (those are the driver's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    /// Our ASN.
    pub local_as: u32,
    /// The expected peer ASN.
    pub peer_as: PeerAs,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0 = none; otherwise at least 3).
    pub hold_time: u16,
    /// Keepalive interval; `None` is a third of the negotiated hold time.
    pub keepalive_time: Option<u16>,
    /// How long a TCP connection attempt may take.
    pub connect_time: Duration,
    /// Families to announce (multiprotocol capability).
    pub families: Vec<Family>,
    /// Graceful restart, if enabled.
    pub graceful_restart: Option<GracefulRestartConfig>,
}

impl FsmConfig {
    /// Defaults as MetalLB's: hold 90 s, keepalive hold/3, 10 s connect timeout, IPv4 and IPv6.
    pub fn new(local_as: u32, peer_as: PeerAs, router_id: Ipv4Addr) -> Self {
        FsmConfig {
            local_as,
            peer_as,
            router_id,
            hold_time: 90,
            keepalive_time: None,
            connect_time: Duration::from_secs(10),
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            graceful_restart: None,
        }
    }
}

/// Which of two colliding connections survives (RFC 4271 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionWinner {
    /// The connection we initiated.
    LocallyInitiated,
    /// The connection the peer initiated.
    RemotelyInitiated,
}

/// RFC 4271 §6.8: the connection initiated by the speaker with the higher BGP identifier
/// (compared as 32-bit unsigned integers) is kept; the other is closed with Cease 7.
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> CollisionWinner {
    if u32::from(local_id) > u32::from(remote_id) {
        CollisionWinner::LocallyInitiated
    } else {
        CollisionWinner::RemotelyInitiated
    }
}

/// The session state machine.
#[derive(Debug, Clone)]
pub struct Fsm {
    config: FsmConfig,
    state: State,
    backoff: Duration,
    /// Started and not stopped: failures lead to a retry.
    running: bool,
    restarting: bool,
    pending: Option<Negotiated>,
    negotiated: Option<Negotiated>,
}

impl Fsm {
    /// A machine in Idle.
    pub fn new(config: FsmConfig) -> Self {
        let restarting = config.graceful_restart.is_some_and(|g| g.restarting);
        Fsm {
            config,
            state: State::Idle,
            backoff: INITIAL_BACKOFF,
            running: false,
            restarting,
            pending: None,
            negotiated: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// What was negotiated, while Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The delay before the next connection attempt after a failure.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    /// The configuration.
    pub fn config(&self) -> &FsmConfig {
        &self.config
    }

    /// The OPEN this speaker sends.
    pub fn open_message(&self) -> OpenMessage {
        let mut caps: Vec<Capability> = self
            .config
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        if let Some(gr) = self.config.graceful_restart {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restart_state: self.restarting,
                notification: false,
                restart_time: gr.restart_time.min(0x0fff),
                families: self
                    .config
                    .families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        family: *f,
                        // Our forwarding state is the nodes' (kube-proxy), which survives a
                        // speaker restart.
                        forwarding_state: self.restarting,
                    })
                    .collect(),
            }));
        }
        OpenMessage::new(
            self.config.local_as,
            self.config.hold_time,
            self.config.router_id,
            caps,
        )
    }

    /// Checks the peer's OPEN against the configuration and negotiates (RFC 4271 §6.2,
    /// RFC 5492, RFC 6286, RFC 6793).
    pub fn negotiate(&self, open: &OpenMessage) -> Result<Negotiated, NotificationMessage> {
        let notify =
            |s: OpenErrorSubcode| NotificationMessage::new(error_code::OPEN_MESSAGE, s as u8);
        let peer_as = open.asn();
        let local = self.config.local_as;
        let as_ok = match self.config.peer_as {
            PeerAs::Fixed(x) => peer_as == x,
            PeerAs::Internal => peer_as == local,
            PeerAs::External => peer_as != local,
        };
        if !as_ok {
            return Err(notify(OpenErrorSubcode::BadPeerAs));
        }
        let ebgp = peer_as != local;
        if open.identifier.is_unspecified() || (!ebgp && open.identifier == self.config.router_id) {
            return Err(notify(OpenErrorSubcode::BadBgpIdentifier));
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(notify(OpenErrorSubcode::UnacceptableHoldTime));
        }
        let hold_time = open.hold_time.min(self.config.hold_time);
        let keepalive = if hold_time == 0 {
            0
        } else {
            let third = (hold_time / 3).max(1);
            self.config
                .keepalive_time
                .map_or(third, |k| k.clamp(1, third))
        };
        let mut theirs = open.families();
        if theirs.is_empty() {
            // RFC 4760 §8: without the capability, IPv4 unicast only.
            theirs.push(Family::IPV4_UNICAST);
        }
        let families: Vec<Family> = self
            .config
            .families
            .iter()
            .filter(|f| theirs.contains(f))
            .copied()
            .collect();
        if families.is_empty() {
            let mut data = Vec::new();
            for f in &self.config.families {
                Capability::Multiprotocol(*f).encode(&mut data);
            }
            return Err(NotificationMessage {
                code: error_code::OPEN_MESSAGE,
                subcode: OpenErrorSubcode::UnsupportedCapability as u8,
                data,
            });
        }
        let has = |code: u8| open.capabilities.iter().any(|c| c.code() == code);
        Ok(Negotiated {
            peer_as,
            peer_id: open.identifier,
            ebgp,
            hold_time,
            keepalive,
            four_octet_as: open.four_octet_as().is_some(),
            families,
            route_refresh: has(crate::packet::capability::code::ROUTE_REFRESH),
            peer_graceful_restart: open.capabilities.iter().find_map(|c| match c {
                Capability::GracefulRestart(g) => Some(g.clone()),
                _ => None,
            }),
        })
    }

    fn connect(&mut self, out: &mut Vec<Action>) {
        out.push(Action::Connect);
        out.push(Action::StartTimer(
            Timer::ConnectRetry,
            self.config.connect_time,
        ));
        self.state = State::Connect;
    }

    /// Waits `backoff` before the next attempt, and doubles it (to at most 2 minutes).
    fn schedule_retry(&mut self, out: &mut Vec<Action>) {
        out.push(Action::StartTimer(Timer::ConnectRetry, self.backoff));
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Ends a connection that got as far as OpenSent: stop timers, close, back to Idle, and
    /// retry later if still running.
    fn fail(&mut self, reason: DownReason, out: &mut Vec<Action>) {
        if let DownReason::NotificationSent(n) = &reason {
            out.push(Action::Send(Message::Notification(n.clone())));
        }
        out.push(Action::StopTimer(Timer::Hold));
        out.push(Action::StopTimer(Timer::Keepalive));
        out.push(Action::Disconnect);
        self.negotiated = None;
        self.pending = None;
        self.state = State::Idle;
        out.push(Action::Down(reason));
        if self.running {
            self.schedule_retry(out);
        } else {
            out.push(Action::StopTimer(Timer::ConnectRetry));
        }
    }

    fn fsm_error(&self) -> NotificationMessage {
        let sub = match self.state {
            State::OpenSent => FsmErrorSubcode::UnexpectedMessageInOpenSent,
            State::OpenConfirm => FsmErrorSubcode::UnexpectedMessageInOpenConfirm,
            _ => FsmErrorSubcode::UnexpectedMessageInEstablished,
        };
        NotificationMessage::new(error_code::FSM, sub as u8)
    }

    fn restart_hold(&self, out: &mut Vec<Action>) {
        if let Some(n) = self.negotiated.as_ref().or(self.pending.as_ref())
            && n.hold_time > 0
        {
            out.push(Action::StartTimer(
                Timer::Hold,
                Duration::from_secs(n.hold_time as u64),
            ));
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match self.state {
            State::Idle => self.handle_idle(event, &mut out),
            State::Connect | State::Active => self.handle_connecting(event, &mut out),
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.handle_connected(event, &mut out);
            }
        }
        out
    }

    /// Idle: only a start, or the retry timer after a failure, leads anywhere.
    fn handle_idle(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::Start => {
                self.running = true;
                self.connect(out);
            }
            Event::TimerExpired(Timer::ConnectRetry) if self.running => self.connect(out),
            _ => {}
        }
    }

    /// Connect and Active: no TCP connection yet.
    fn handle_connecting(&mut self, event: Event, out: &mut Vec<Action>) {
        use State::*;
        match (self.state, event) {
            (_, Event::Stop) => {
                self.running = false;
                out.push(Action::StopTimer(Timer::ConnectRetry));
                out.push(Action::Disconnect);
                self.state = Idle;
                out.push(Action::Down(DownReason::Stopped));
            }
            (_, Event::TcpConnected) => {
                out.push(Action::StopTimer(Timer::ConnectRetry));
                out.push(Action::Send(Message::Open(self.open_message())));
                out.push(Action::StartTimer(Timer::Hold, OPEN_HOLD_TIME));
                self.state = OpenSent;
            }
            (Connect, Event::TcpFailed | Event::TimerExpired(Timer::ConnectRetry)) => {
                out.push(Action::Disconnect);
                self.schedule_retry(out);
                self.state = Active;
            }
            (Active, Event::TimerExpired(Timer::ConnectRetry)) => self.connect(out),
            _ => {}
        }
    }

    /// OpenSent, OpenConfirm and Established: a TCP connection is up.
    fn handle_connected(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::Start => {}
            // A second connection is the driver's to resolve (see [`resolve_collision`]).
            Event::TcpConnected => {}
            Event::Stop => {
                self.running = false;
                let n = NotificationMessage::new(
                    error_code::CEASE,
                    CeaseSubcode::AdministrativeShutdown as u8,
                );
                out.push(Action::Send(Message::Notification(n)));
                self.fail(DownReason::Stopped, out);
            }
            Event::TcpFailed => self.fail(DownReason::ConnectionLost, out),
            Event::TimerExpired(timer) => self.timer_expired(timer, out),
            Event::ReceivedInvalid(e) => {
                if let Some(n) = e.notification() {
                    self.fail(DownReason::NotificationSent(n), out);
                }
            }
            Event::OpenCollisionDump => {
                let n = NotificationMessage::new(
                    error_code::CEASE,
                    CeaseSubcode::ConnectionCollisionResolution as u8,
                );
                self.fail(DownReason::NotificationSent(n), out);
            }
            Event::Received(message) => self.received(message, out),
        }
    }

    /// A timer fired while connected.
    fn timer_expired(&mut self, timer: Timer, out: &mut Vec<Action>) {
        match timer {
            Timer::Hold => {
                let n = NotificationMessage::new(error_code::HOLD_TIMER_EXPIRED, 0);
                self.fail(DownReason::NotificationSent(n), out);
            }
            Timer::ConnectRetry => {}
            Timer::Keepalive if self.state == State::OpenSent => {}
            Timer::Keepalive => {
                out.push(Action::Send(Message::Keepalive));
                if let Some(n) = self.negotiated.as_ref().or(self.pending.as_ref())
                    && n.keepalive > 0
                {
                    out.push(Action::StartTimer(
                        Timer::Keepalive,
                        Duration::from_secs(n.keepalive as u64),
                    ));
                }
            }
        }
    }

    /// A message arrived while connected: anything but what the state expects is an FSM error.
    fn received(&mut self, message: Message, out: &mut Vec<Action>) {
        use State::*;
        match (self.state, message) {
            (_, Message::Notification(n)) => {
                self.fail(DownReason::NotificationReceived(n), out);
            }
            (OpenSent, Message::Open(open)) => self.received_open(&open, out),
            (OpenConfirm, Message::Keepalive) => {
                self.restart_hold(out);
                let n = self.pending.take();
                if let Some(n) = n {
                    self.negotiated = Some(n.clone());
                    self.state = Established;
                    self.backoff = INITIAL_BACKOFF;
                    // The R bit is only for the first session after the restart.
                    self.restarting = false;
                    out.push(Action::Established(n));
                }
            }
            (Established, Message::Keepalive) => self.restart_hold(out),
            (Established, Message::Update(u)) => {
                self.restart_hold(out);
                out.push(Action::UpdateReceived(u));
            }
            (Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(out);
                if self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.families.contains(&rr.family))
                {
                    out.push(Action::ResendRoutes(rr.family));
                }
            }
            _ => {
                let n = self.fsm_error();
                self.fail(DownReason::NotificationSent(n), out);
            }
        }
    }

    /// The peer's OPEN in OpenSent: negotiate, then KEEPALIVE and the negotiated timers, or
    /// the NOTIFICATION that says why not.
    fn received_open(&mut self, open: &OpenMessage, out: &mut Vec<Action>) {
        match self.negotiate(open) {
            Ok(n) => {
                out.push(Action::Send(Message::Keepalive));
                if n.keepalive > 0 {
                    out.push(Action::StartTimer(
                        Timer::Keepalive,
                        Duration::from_secs(n.keepalive as u64),
                    ));
                }
                if n.hold_time > 0 {
                    out.push(Action::StartTimer(
                        Timer::Hold,
                        Duration::from_secs(n.hold_time as u64),
                    ));
                } else {
                    out.push(Action::StopTimer(Timer::Hold));
                }
                self.pending = Some(n);
                self.state = State::OpenConfirm;
            }
            Err(notification) => {
                self.fail(DownReason::NotificationSent(notification), out);
            }
        }
    }
}
