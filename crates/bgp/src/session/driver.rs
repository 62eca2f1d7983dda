//! The async side of a session: one task per peer that owns the TCP connection and the timers,
//! feeds the [`Fsm`] and carries out its [`Action`]s, and turns changes of the wanted
//! [`Announcements`] into minimal UPDATE deltas.
//!
//! ```text
//!   Session::spawn ──> task: select! { stop | timer | connect done | bytes in | routes changed }
//!                        │  events ─> Fsm::handle ─> actions ─> socket / timers / AdjRibOut
//!                        └─> watch<SessionStatus> + Arc<SessionStats> (for the metrics)
//! ```
//!
//! With [`PeerConfig::bfd`] set the session follows a BFD session (RFC 5882 §4.3, as FRR's
//! `neighbor X bfd`): when BFD goes down after having been up, the session is closed at once
//! (Cease) and stays closed until BFD is up again. A BFD session that never came up does not
//! hold BGP back.
//!
//! Only outgoing connections are made (as MetalLB's native speaker), so connection collisions
//! cannot happen here; [`crate::session::fsm::resolve_collision`] is what a listener would use.

use crate::packet::DecodeContext;
use crate::packet::error::DecodeError;
use crate::packet::message::Message;
use crate::rib::{AdjRibOut, Announcements, SessionParams};
use crate::session::fsm::{
    Action, DownReason, Event, Fsm, FsmConfig, Negotiated, PeerAs, State, Timer,
};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Everything one session needs: where the peer is, how to reach it, and the FSM settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's address.
    pub peer_address: IpAddr,
    /// The peer's TCP port (`peerPort`, default 179).
    pub peer_port: u16,
    /// Local address to connect from (`sourceAddress`).
    pub source_address: Option<IpAddr>,
    /// `ebgpMultiHop`: send with TTL 255. Without it an eBGP session is single-hop and sends
    /// with TTL 1 (as routers do), so it cannot reach a peer behind a router; iBGP keeps the
    /// system default.
    pub ebgp_multihop: bool,
    /// TCP MD5 password (`password` / `passwordSecret`, RFC 2385): every segment of the
    /// session is signed with it, and segments without the right signature are dropped.
    pub password: Option<String>,
    /// Next hop for IPv4 prefixes; default: the session's local address if it is IPv4.
    pub ipv4_next_hop: Option<Ipv4Addr>,
    /// Next hop for IPv6 prefixes; default: the session's local address if it is IPv6.
    pub ipv6_next_hop: Option<Ipv6Addr>,
    /// State machine settings.
    pub fsm: FsmConfig,
    /// The BFD session this session follows, if any.
    pub bfd: Option<BfdGate>,
}

/// A BFD session's liveness as a BGP session sees it: `true` while the BFD session is Up (for
/// example `ironlb_bfd::BfdHandle::up()`). A closed channel means "no BFD" from then on.
#[derive(Debug, Clone)]
pub struct BfdGate(pub watch::Receiver<bool>);

/// Two gates are equal when they watch the same channel.
impl PartialEq for BfdGate {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl Eq for BfdGate {}

impl PeerConfig {
    /// A peer on port 179 with the given FSM settings.
    pub fn new(peer_address: IpAddr, fsm: FsmConfig) -> Self {
        PeerConfig {
            peer_address,
            peer_port: 179,
            source_address: None,
            ebgp_multihop: false,
            password: None,
            ipv4_next_hop: None,
            ipv6_next_hop: None,
            fsm,
            bfd: None,
        }
    }
}

/// The session as the rest of the speaker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// FSM state.
    pub state: State,
    /// What was negotiated, while Established.
    pub negotiated: Option<Negotiated>,
    /// Why the session last went down.
    pub last_down: Option<DownReason>,
    /// Prefixes the peer has from us now.
    pub announced: usize,
    /// Wanted prefixes not (yet) sent: session down, family not negotiated or no next hop.
    pub pending: usize,
}

/// Counters since the session was spawned (for `metallb_bgp_*` style metrics).
#[derive(Debug, Default)]
pub struct SessionStats {
    /// UPDATE messages sent (End-of-RIB included).
    pub updates_sent: AtomicU64,
    /// Prefix announcements sent (a prefix re-announced counts again).
    pub prefixes_announced: AtomicU64,
    /// Prefix withdrawals sent.
    pub prefixes_withdrawn: AtomicU64,
    /// UPDATE messages received.
    pub updates_received: AtomicU64,
    /// NOTIFICATIONs sent.
    pub notifications_sent: AtomicU64,
    /// NOTIFICATIONs received.
    pub notifications_received: AtomicU64,
    /// KEEPALIVEs sent.
    pub keepalives_sent: AtomicU64,
    /// Times the session became Established.
    pub established: AtomicU64,
}

impl SessionStats {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A running session task.
#[derive(Debug)]
pub struct Session {
    status: watch::Receiver<SessionStatus>,
    stats: Arc<SessionStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Starts the session on the current tokio runtime; it announces whatever `routes` holds,
    /// and follows its changes.
    pub fn spawn(config: PeerConfig, routes: watch::Receiver<Announcements>) -> Session {
        let initial = SessionStatus {
            state: State::Idle,
            negotiated: None,
            last_down: None,
            announced: 0,
            pending: routes.borrow().len(),
        };
        let (status_tx, status) = watch::channel(initial);
        let stats = Arc::new(SessionStats::default());
        let (stop, stop_rx) = oneshot::channel();
        let mut bfd = config.bfd.clone().map(|g| g.0);
        let bfd_was_up = bfd.as_mut().is_some_and(|rx| *rx.borrow_and_update());
        let driver = Driver {
            bfd,
            bfd_was_up,
            bfd_blocked: false,
            fsm: Fsm::new(config.fsm.clone()),
            config,
            rib: AdjRibOut::new(),
            routes,
            routes_open: true,
            timers: BTreeMap::new(),
            conn: None,
            connecting: None,
            params: None,
            ctx: DecodeContext::default(),
            events: VecDeque::new(),
            stopping: false,
            status: status_tx,
            stats: stats.clone(),
        };
        let task = tokio::spawn(driver.run(stop_rx));
        Session {
            status,
            stats,
            stop: Some(stop),
            task,
        }
    }

    /// The session's status, updated on every change.
    pub fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// The counters.
    pub fn stats(&self) -> Arc<SessionStats> {
        self.stats.clone()
    }

    /// Stops the session: a Cease NOTIFICATION if connected, then close. The peer drops our
    /// routes (unless it keeps them for graceful restart).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

struct Connection {
    stream: TcpStream,
    local: SocketAddr,
    buf: Vec<u8>,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

struct Driver {
    /// The BFD session followed (None: none, or its channel closed).
    bfd: Option<watch::Receiver<bool>>,
    /// BFD has been up at least once.
    bfd_was_up: bool,
    /// BFD went down after being up: the session is stopped until it is up again.
    bfd_blocked: bool,
    config: PeerConfig,
    fsm: Fsm,
    rib: AdjRibOut,
    routes: watch::Receiver<Announcements>,
    routes_open: bool,
    timers: BTreeMap<Timer, Instant>,
    conn: Option<Connection>,
    connecting: Option<Connecting>,
    params: Option<SessionParams>,
    ctx: DecodeContext,
    events: VecDeque<Event>,
    /// Stop was asked for: closes happen inline so the Cease is delivered before the task ends.
    stopping: bool,
    status: watch::Sender<SessionStatus>,
    stats: Arc<SessionStats>,
}

/// The TTL (hop limit) a session sends with: 255 for multi-hop eBGP, 1 for single-hop eBGP,
/// `None` (the system default) for iBGP.
pub fn session_ttl(config: &PeerConfig) -> Option<u32> {
    let ebgp = match config.fsm.peer_as {
        PeerAs::Fixed(asn) => asn != config.fsm.local_as,
        PeerAs::External => true,
        PeerAs::Internal => false,
    };
    if config.ebgp_multihop {
        Some(255)
    } else if ebgp {
        Some(1)
    } else {
        None
    }
}

/// Opens the TCP connection: source address, TTL ([`session_ttl`]).
async fn connect(config: PeerConfig) -> io::Result<TcpStream> {
    let peer = SocketAddr::new(config.peer_address, config.peer_port);
    let socket = match peer {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ttl) = session_ttl(&config) {
        let s = socket2::SockRef::from(&socket);
        match peer {
            SocketAddr::V4(_) => s.set_ttl_v4(ttl)?,
            SocketAddr::V6(_) => s.set_unicast_hops_v6(ttl)?,
        }
    }
    socket.set_nodelay(true)?;
    if let Some(password) = &config.password {
        ironlb_sys::md5::set_tcp_md5sig(&socket, config.peer_address, password.as_bytes())?;
    }
    if let Some(src) = config.source_address {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    socket.connect(peer).await
}

impl Driver {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        self.events.push_back(Event::Start);
        self.process().await;
        let mut readbuf = vec![0u8; 64 * 1024];
        loop {
            let next_timer = self
                .timers
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(t, at)| (*t, *at));
            let established = self.fsm.state() == State::Established;
            tokio::select! {
                _ = &mut stop => {
                    self.stopping = true;
                    self.events.push_back(Event::Stop);
                    self.process().await;
                    self.close(true).await;
                    return;
                }
                _ = sleep_until(next_timer.map(|(_, at)| at)) => {
                    if let Some((timer, _)) = next_timer {
                        self.timers.remove(&timer);
                        // No reconnecting while BFD holds the session down.
                        if !(self.bfd_blocked && timer == Timer::ConnectRetry) {
                            self.events.push_back(Event::TimerExpired(timer));
                        }
                    }
                }
                up = bfd_changed(&mut self.bfd) => self.on_bfd(up),
                result = poll_connecting(&mut self.connecting) => {
                    self.connecting = None;
                    match result.and_then(|s| Ok((s.local_addr()?, s))) {
                        Ok((local, stream)) => {
                            tracing::debug!(peer = %self.config.peer_address, %local, "connected");
                            self.conn = Some(Connection { stream, local, buf: Vec::new() });
                            self.events.push_back(Event::TcpConnected);
                        }
                        Err(e) => {
                            tracing::debug!(peer = %self.config.peer_address, error = %e, "connect failed");
                            self.events.push_back(Event::TcpFailed);
                        }
                    }
                }
                n = read_some(&mut self.conn, &mut readbuf) => match n {
                    Ok(0) | Err(_) => self.events.push_back(Event::TcpFailed),
                    Ok(n) => {
                        if let Some(c) = self.conn.as_mut() {
                            c.buf.extend_from_slice(&readbuf[..n]);
                        }
                        self.frames();
                    }
                },
                changed = self.routes.changed(), if self.routes_open => {
                    if changed.is_err() {
                        self.routes_open = false;
                    } else if established {
                        self.send_delta().await;
                    } else {
                        self.publish();
                    }
                }
            }
            self.process().await;
        }
    }

    /// Follows the BFD session: down after up stops the session (Cease, close), up again
    /// restarts it.
    fn on_bfd(&mut self, up: Option<bool>) {
        let peer = self.config.peer_address;
        match up {
            Some(false) if self.bfd_was_up && !self.bfd_blocked => {
                tracing::info!(%peer, "BFD down: closing the BGP session until BFD is up again");
                self.bfd_blocked = true;
                self.timers.remove(&Timer::ConnectRetry);
                self.events.push_back(Event::Stop);
            }
            Some(false) => {}
            Some(true) | None => {
                if up.is_none() {
                    self.bfd = None;
                } else {
                    self.bfd_was_up = true;
                }
                if self.bfd_blocked {
                    tracing::info!(%peer, "BFD up: BGP session restarting");
                    self.bfd_blocked = false;
                    self.events.push_back(Event::Start);
                }
            }
        }
    }

    /// Splits the receive buffer into messages (events); a bad one ends the stream.
    fn frames(&mut self) {
        let Some(c) = self.conn.as_mut() else { return };
        let mut used = 0;
        loop {
            match Message::decode(&c.buf[used..], &self.ctx) {
                Ok((m, n)) => {
                    used += n;
                    // UPDATEs must be decoded with the context negotiated before them, which
                    // is set when the FSM reaches Established: until then, hand over one
                    // message at a time.
                    let update = matches!(m, Message::Update(_));
                    self.events.push_back(Event::Received(m));
                    if !update && self.fsm.state() != State::Established {
                        break;
                    }
                }
                Err(DecodeError::Incomplete) => break,
                Err(e) => {
                    tracing::info!(peer = %self.config.peer_address, error = %e, "bad message");
                    self.events.push_back(Event::ReceivedInvalid(e));
                    used = c.buf.len();
                    break;
                }
            }
        }
        c.buf.drain(..used);
    }

    async fn process(&mut self) {
        while let Some(event) = self.events.pop_front() {
            if let Event::Received(m) = &event {
                match m {
                    Message::Notification(n) => {
                        tracing::info!(peer = %self.config.peer_address, notification = %n, "NOTIFICATION received");
                        bump(&self.stats.notifications_received, 1);
                    }
                    Message::Update(_) => bump(&self.stats.updates_received, 1),
                    _ => {}
                }
            }
            let before = self.fsm.state();
            let actions = self.fsm.handle(event);
            for action in actions {
                self.apply(action).await;
            }
            if self.fsm.state() != before {
                tracing::info!(peer = %self.config.peer_address, from = %before, to = %self.fsm.state(), "BGP state");
                self.publish();
            }
            // Bytes that arrived after an OPEN wait for the negotiated context.
            if self.events.is_empty() && self.conn.as_ref().is_some_and(|c| !c.buf.is_empty()) {
                self.frames();
            }
        }
    }

    async fn apply(&mut self, action: Action) {
        match action {
            Action::Connect => {
                self.connecting = Some(Box::pin(connect(self.config.clone())));
            }
            // On stop the loop ends right after, so the close there must finish first.
            Action::Disconnect => self.close(self.stopping).await,
            Action::Send(m) => self.send(&m).await,
            Action::StartTimer(t, d) => {
                self.timers.insert(t, Instant::now() + d);
            }
            Action::StopTimer(t) => {
                self.timers.remove(&t);
            }
            Action::Established(n) => {
                let local = self.conn.as_ref().map(|c| c.local.ip());
                self.ctx = DecodeContext {
                    four_octet_as: n.four_octet_as,
                    ebgp: n.ebgp,
                };
                self.params = Some(SessionParams {
                    local_as: self.config.fsm.local_as,
                    ebgp: n.ebgp,
                    four_octet_as: n.four_octet_as,
                    families: n.families.clone(),
                    ipv4_next_hop: self.config.ipv4_next_hop.or(match local {
                        Some(IpAddr::V4(a)) => Some(a),
                        _ => None,
                    }),
                    ipv6_next_hop: self.config.ipv6_next_hop.or(match local {
                        Some(IpAddr::V6(a)) => Some(a),
                        _ => None,
                    }),
                });
                bump(&self.stats.established, 1);
                // Full table, then End-of-RIB for every family (RFC 4724 §2).
                self.rib.clear();
                self.send_delta().await;
                if let Some(params) = &self.params {
                    for eor in params.end_of_rib() {
                        self.send(&Message::Update(eor)).await;
                    }
                }
            }
            Action::Down(reason) => {
                tracing::info!(peer = %self.config.peer_address, ?reason, "session down");
                self.rib.clear();
                self.params = None;
                self.ctx = DecodeContext::default();
                self.status.send_modify(|s| s.last_down = Some(reason));
                self.publish();
            }
            Action::ResendRoutes(_) => {
                // The whole table, every family: a peer replaces what it has, so resending
                // more than asked is harmless and keeps one code path.
                self.rib.clear();
                self.send_delta().await;
            }
            Action::UpdateReceived(_) => {}
        }
    }

    async fn send_delta(&mut self) {
        let Some(params) = self.params.clone() else {
            return;
        };
        let wanted = self.routes.borrow_and_update().clone();
        let delta = self.rib.update_to(&wanted, &params);
        bump(&self.stats.prefixes_announced, delta.announced as u64);
        bump(&self.stats.prefixes_withdrawn, delta.withdrawn as u64);
        let mut bytes = Vec::new();
        for u in &delta.updates {
            Message::Update(u.clone()).encode_into(&self.ctx, &mut bytes);
        }
        bump(&self.stats.updates_sent, delta.updates.len() as u64);
        self.write(&bytes).await;
        self.publish();
    }

    async fn send(&mut self, m: &Message) {
        match m {
            Message::Notification(n) => {
                tracing::info!(peer = %self.config.peer_address, notification = %n, "NOTIFICATION sent");
                bump(&self.stats.notifications_sent, 1);
            }
            Message::Keepalive => bump(&self.stats.keepalives_sent, 1),
            Message::Update(_) => bump(&self.stats.updates_sent, 1),
            _ => {}
        }
        let bytes = m.encode(&self.ctx);
        self.write(&bytes).await;
    }

    /// Writes all of `bytes`; a failure or a peer that takes no data for the hold time ends
    /// the connection (the send side of the hold timer).
    async fn write(&mut self, bytes: &[u8]) {
        let Some(c) = self.conn.as_mut() else { return };
        let limit = Duration::from_secs(
            self.fsm
                .negotiated()
                .map_or(90, |n| n.hold_time.max(3) as u64),
        );
        let ok = matches!(
            tokio::time::timeout(limit, c.stream.write_all(bytes)).await,
            Ok(Ok(()))
        );
        if !ok {
            // Reset rather than leave unsent data to an orphaned socket.
            if let Some(c) = self.conn.take() {
                let _ = c.stream.set_zero_linger();
            }
            self.events.push_back(Event::TcpFailed);
        }
    }

    /// Closes the connection without leaving an orphaned socket behind: a zero linger makes
    /// the final close a reset, so a peer that vanished (or filters us) cannot keep a socket
    /// retransmitting, and its network namespace alive, for minutes. Before that, what was
    /// sent (a NOTIFICATION) gets up to a second to be delivered: FIN, then wait for the
    /// peer's. `wait` does that inline (stop); otherwise in the background so the session
    /// goes on at once.
    async fn close(&mut self, wait: bool) {
        self.connecting = None;
        if let Some(c) = self.conn.take() {
            let _ = c.stream.set_zero_linger();
            let drain = async move {
                let mut stream = c.stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.shutdown().await;
                    let mut sink = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            };
            if wait {
                drain.await;
            } else {
                tokio::spawn(drain);
            }
        }
    }

    fn publish(&self) {
        let announced = self.rib.routes().len();
        let wanted = self.routes.borrow().len();
        let state = self.fsm.state();
        let negotiated = self.fsm.negotiated().cloned();
        self.status.send_if_modified(|s| {
            let new = SessionStatus {
                state,
                negotiated: negotiated.clone(),
                last_down: s.last_down.clone(),
                announced,
                pending: wanted.saturating_sub(announced),
            };
            let changed = *s != new;
            *s = new;
            changed
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The BFD gate's next value; None once its channel is closed.
async fn bfd_changed(rx: &mut Option<watch::Receiver<bool>>) -> Option<bool> {
    match rx.as_mut() {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(*rx.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

async fn poll_connecting(c: &mut Option<Connecting>) -> io::Result<TcpStream> {
    match c.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn read_some(conn: &mut Option<Connection>, buf: &mut [u8]) -> io::Result<usize> {
    match conn.as_mut() {
        Some(c) => c.stream.read(buf).await,
        None => std::future::pending().await,
    }
}
