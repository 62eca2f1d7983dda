//! The async side: one [`BfdManager`] per process owns the receive sockets and every session,
//! feeds the pure [`Session`]s and carries out their actions.
//!
//! ```text
//!   BfdManager::add(BfdPeer) ──command──> task: select! { command | rx v4 | rx v6 | deadline }
//!        │                                  │ decode ─> demux (Your Discriminator, else source)
//!        └─> BfdHandle                      │ ─> TTL check ─> Session::handle ─> tx socket
//!              state(): watch<BfdState>  <──┤
//!              up():    watch<bool>      <──┘   (dropping the handle removes the session,
//!              counters(): Arc<BfdCounters>      after telling the peer AdminDown)
//! ```

use crate::echo::Echo;
use crate::network::{self, CONTROL_PORT, EchoPath, Received};
use crate::packet::{ControlPacket, DecodeError, Diag, State};
use crate::params::BfdParams;
use crate::session::{Action, Event, Session};
use ironlb_sys::packet::{AsyncPacketSocket, PacketType, Protocol};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Where the manager listens and sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagerConfig {
    /// Local port of the receive sockets (3784).
    pub port: u16,
    /// Port packets are sent to (3784).
    pub peer_port: u16,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            port: CONTROL_PORT,
            peer_port: CONTROL_PORT,
        }
    }
}

/// One session to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdPeer {
    /// Address to send from (the BGP session's source address); None: the kernel's choice.
    pub local: Option<IpAddr>,
    /// The peer.
    pub peer: IpAddr,
    /// Timers, multiplier, passive, minimum TTL.
    pub params: BfdParams,
}

/// A session as the rest of the speaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdState {
    /// Local state.
    pub state: State,
    /// Local diagnostic: why it last went down (None once Up again).
    pub diag: Diag,
    /// The peer's last reported state.
    pub remote_state: State,
    /// The peer's last reported diagnostic.
    pub remote_diag: Diag,
    /// Transmit interval before jitter.
    pub tx_interval: Duration,
    /// Detection time (None until the peer is heard).
    pub detection_time: Option<Duration>,
    /// Our discriminator.
    pub local_discriminator: u32,
    /// The peer's (0 while unknown).
    pub remote_discriminator: u32,
    /// The Echo function runs (configured, Up, and the peer accepts echoes).
    pub echo_active: bool,
    /// The echo transmit interval while [`BfdState::echo_active`].
    pub echo_interval: Option<Duration>,
}

impl BfdState {
    /// The session is Up (`metallb_bfd_session_up`).
    pub fn is_up(&self) -> bool {
        self.state == State::Up
    }
}

/// Per-session counters (MetalLB's `metallb_bfd_*` metrics).
#[derive(Debug, Default)]
pub struct BfdCounters {
    /// Control packets received and accepted for this session.
    pub control_packet_input: AtomicU64,
    /// Control packets sent.
    pub control_packet_output: AtomicU64,
    /// Our Echo packets that came back.
    pub echo_packet_input: AtomicU64,
    /// Echo packets sent.
    pub echo_packet_output: AtomicU64,
    /// Times the session went Up.
    pub session_up_events: AtomicU64,
    /// Times the session left Up.
    pub session_down_events: AtomicU64,
}

impl BfdCounters {
    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Why a received datagram was dropped before reaching a session, besides
/// [`DecodeError::reason`].
pub mod drop_reason {
    /// No session for its Your Discriminator (or, with 0, for its source address).
    pub const NO_SESSION: &str = "no_session";
    /// TTL / hop limit below the session's `minimumTtl` (or not reported).
    pub const TTL: &str = "ttl";
}

/// Manager-wide counters of dropped datagrams, by reason.
#[derive(Debug, Default)]
pub struct DropCounters {
    counts: std::sync::Mutex<HashMap<&'static str, u64>>,
}

impl DropCounters {
    fn add(&self, reason: &'static str) {
        if let Ok(mut m) = self.counts.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Datagrams dropped for `reason` (a [`DecodeError::reason`] or a [`drop_reason`]).
    pub fn get(&self, reason: &str) -> u64 {
        self.counts
            .lock()
            .map(|m| m.get(reason).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Every reason seen so far with its count, sorted by reason.
    pub fn all(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .counts
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Why a session could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The transmit socket could not be opened.
    #[error("transmit socket: {0}")]
    Socket(#[from] io::Error),
    /// The manager's task has ended.
    #[error("the BFD manager has stopped")]
    Stopped,
}

enum Command {
    Add(BfdPeer, oneshot::Sender<Result<Added, AddError>>),
    Remove(u32),
    SetParams(u32, BfdParams),
    AdminDown(u32, bool),
}

struct Added {
    discriminator: u32,
    state: watch::Receiver<BfdState>,
    up: watch::Receiver<bool>,
    counters: Arc<BfdCounters>,
}

/// The process's BFD: receive sockets, sessions, and their task.
#[derive(Debug)]
pub struct BfdManager {
    commands: mpsc::UnboundedSender<Command>,
    drops: Arc<DropCounters>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl BfdManager {
    /// Opens the receive sockets (IPv4, and IPv6 where the host has it) and starts the task on
    /// the current tokio runtime (in the current network namespace).
    pub fn new(config: ManagerConfig) -> io::Result<BfdManager> {
        let v4 = network::receive_socket(false, config.port)?;
        let v6 = match network::receive_socket(true, config.port) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "BFD: no IPv6 receive socket; IPv4 peers only");
                None
            }
        };
        let (commands, rx) = mpsc::unbounded_channel();
        let drops = Arc::new(DropCounters::default());
        let hasher = RandomState::new();
        let (echo_back, echo_in) = mpsc::unbounded_channel();
        let task = Task {
            echo_back,
            echo_in,
            config,
            v4,
            v6,
            sessions: HashMap::new(),
            by_peer: HashMap::new(),
            drops: drops.clone(),
            seed: hasher.hash_one(std::process::id()),
        };
        let task = tokio::spawn(task.run(rx));
        Ok(BfdManager {
            commands,
            drops,
            task,
        })
    }

    /// Starts a session; it runs until the handle is dropped or removed. A second `add` for a
    /// peer address that has a session shares that session (its parameters become the new
    /// ones): the session ends when the last of its handles is gone, so a BGP session can be
    /// replaced (new handle first, old one dropped after) without the BFD session flapping.
    pub async fn add(&self, peer: BfdPeer) -> Result<BfdHandle, AddError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Add(peer, tx))
            .map_err(|_| AddError::Stopped)?;
        let added = rx.await.map_err(|_| AddError::Stopped)??;
        Ok(BfdHandle {
            discriminator: added.discriminator,
            peer: peer.peer,
            state: added.state,
            up: added.up,
            counters: added.counters,
            commands: self.commands.clone(),
        })
    }

    /// Datagrams dropped before reaching a session, by reason.
    pub fn drops(&self) -> Arc<DropCounters> {
        self.drops.clone()
    }
}

impl Drop for BfdManager {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One running session. Dropping it removes the session (the peer is first told AdminDown,
/// so it does not take the end for a failure, RFC 5882 §3.2).
#[derive(Debug)]
pub struct BfdHandle {
    discriminator: u32,
    peer: IpAddr,
    state: watch::Receiver<BfdState>,
    up: watch::Receiver<bool>,
    counters: Arc<BfdCounters>,
    commands: mpsc::UnboundedSender<Command>,
}

impl BfdHandle {
    /// The session's state, updated on every change.
    pub fn state(&self) -> watch::Receiver<BfdState> {
        self.state.clone()
    }

    /// true while Up: what a BGP session follows (`PeerConfig::bfd`). The channel closes when
    /// the session is removed.
    pub fn up(&self) -> watch::Receiver<bool> {
        self.up.clone()
    }

    /// The counters.
    pub fn counters(&self) -> Arc<BfdCounters> {
        self.counters.clone()
    }

    /// Our discriminator.
    pub fn local_discriminator(&self) -> u32 {
        self.discriminator
    }

    /// The peer's address.
    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// New parameters (a Poll Sequence while Up).
    pub fn set_params(&self, params: BfdParams) {
        let _ = self
            .commands
            .send(Command::SetParams(self.discriminator, params));
    }

    /// Holds the session administratively down (true) or releases it (false).
    pub fn set_admin_down(&self, down: bool) {
        let _ = self
            .commands
            .send(Command::AdminDown(self.discriminator, down));
    }

    /// Removes the session (the same as dropping the handle).
    pub fn remove(self) {}
}

impl Drop for BfdHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Remove(self.discriminator));
    }
}

struct Entry {
    /// Handles alive.
    refs: usize,
    fsm: Session,
    peer: SocketAddr,
    socket: UdpSocket,
    remote_diag: Diag,
    state: watch::Sender<BfdState>,
    up: watch::Sender<bool>,
    counters: Arc<BfdCounters>,
    /// Our address toward the peer, if configured.
    local: Option<IpAddr>,
    /// While the Echo function runs: the packet socket and where echoes go.
    echo: Option<EchoIo>,
}

/// A session's echo socket, with the task reading it (aborted on drop).
struct EchoIo {
    socket: Arc<AsyncPacketSocket>,
    path: EchoPath,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for EchoIo {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl EchoIo {
    /// Opens the packet socket toward the peer (in the calling thread's namespace) and starts
    /// the task that reports this session's echoes coming back.
    fn open(
        d: u32,
        peer: IpAddr,
        local: Option<IpAddr>,
        back: mpsc::UnboundedSender<(u32, u64)>,
    ) -> io::Result<EchoIo> {
        let IpAddr::V4(peer) = peer else {
            return Err(io::Error::other("the Echo function is IPv4 only"));
        };
        let local = match local {
            Some(IpAddr::V4(l)) => Some(l),
            _ => None,
        };
        let path = network::echo_path(peer, local)?;
        let socket = Arc::new(AsyncPacketSocket::open(path.ifindex, Protocol::BfdEcho)?);
        let (rx, ip) = (socket.clone(), path.local);
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let (n, kind) = match rx.recv(&mut buf).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(error = %e, "BFD echo receive");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                if kind == PacketType::Outgoing {
                    continue;
                }
                if let Some((echo, src, dst)) = Echo::parse_frame(&buf[..n])
                    && echo.discriminator == d
                    && src == ip
                    && dst == ip
                    && back.send((d, echo.seq)).is_err()
                {
                    return;
                }
            }
        });
        Ok(EchoIo {
            socket,
            path,
            reader,
        })
    }
}

impl Entry {
    fn snapshot(&self) -> BfdState {
        BfdState {
            state: self.fsm.state(),
            diag: self.fsm.local_diag(),
            remote_state: self.fsm.remote_state(),
            remote_diag: self.remote_diag,
            tx_interval: self.fsm.tx_interval(),
            detection_time: self.fsm.detection_time(),
            local_discriminator: self.fsm.local_discriminator(),
            remote_discriminator: self.fsm.remote_discriminator(),
            echo_active: self.fsm.echo_active(),
            echo_interval: self.fsm.echo_interval(),
        }
    }
}

struct Task {
    config: ManagerConfig,
    v4: UdpSocket,
    v6: Option<UdpSocket>,
    sessions: HashMap<u32, Entry>,
    by_peer: HashMap<IpAddr, u32>,
    drops: Arc<DropCounters>,
    seed: u64,
    echo_back: mpsc::UnboundedSender<(u32, u64)>,
    echo_in: mpsc::UnboundedReceiver<(u32, u64)>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buf4 = vec![0u8; 2048];
        let mut buf6 = vec![0u8; 2048];
        loop {
            let deadline = self
                .sessions
                .values()
                .flat_map(|e| {
                    [
                        e.fsm.next_tx(),
                        e.fsm.detect_deadline(),
                        e.fsm.echo_tx_deadline(),
                        e.fsm.echo_detect_deadline(),
                    ]
                })
                .flatten()
                .min();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => {
                        let all: Vec<u32> = self.sessions.keys().copied().collect();
                        for d in all {
                            self.remove(d).await;
                        }
                        return;
                    }
                },
                r = network::receive(&self.v4, &mut buf4) => self.datagram(r, &buf4).await,
                r = receive_opt(&self.v6, &mut buf6) => self.datagram(r, &buf6).await,
                Some((d, seq)) = self.echo_in.recv() => self.echo_received(d, seq).await,
                _ = sleep_until(deadline) => {
                    // Packets that arrived while this task was not running (a busy machine)
                    // count before any detection time is judged expired.
                    self.drain(&mut buf4).await;
                    while let Ok((d, seq)) = self.echo_in.try_recv() {
                        self.echo_received(d, seq).await;
                    }
                    self.timers().await;
                }
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Add(peer, reply) => {
                let _ = reply.send(self.add(peer).await);
            }
            Command::Remove(d) => self.remove(d).await,
            Command::SetParams(d, p) => {
                let Some(peer) = self.sessions.get(&d).map(|e| e.peer.ip()) else {
                    return;
                };
                self.event(d, Event::SetParams(effective(peer, p))).await
            }
            Command::AdminDown(d, down) => {
                let e = if down {
                    Event::AdminDown
                } else {
                    Event::AdminUp
                };
                self.event(d, e).await
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        self.seed = RandomState::new().hash_one(self.seed);
        self.seed
    }

    async fn add(&mut self, peer: BfdPeer) -> Result<Added, AddError> {
        if let Some(&d) = self.by_peer.get(&peer.peer)
            && let Some(e) = self.sessions.get_mut(&d)
        {
            e.refs += 1;
            let added = Added {
                discriminator: d,
                state: e.state.subscribe(),
                up: e.up.subscribe(),
                counters: e.counters.clone(),
            };
            let params = effective(peer.peer, peer.params);
            if *e.fsm.params() != params {
                self.event(d, Event::SetParams(params)).await;
            }
            return Ok(added);
        }
        let discriminator = loop {
            let d = self.next_random() as u32;
            if d != 0 && !self.sessions.contains_key(&d) {
                break d;
            }
        };
        let first_port = self.next_random() as u16;
        let socket = network::transmit_socket(peer.peer, peer.local, first_port)?;
        let seed = self.next_random();
        let fsm = Session::new(effective(peer.peer, peer.params), discriminator, seed);
        let counters = Arc::new(BfdCounters::default());
        let (state_tx, state) = watch::channel(BfdState {
            state: fsm.state(),
            diag: fsm.local_diag(),
            remote_state: fsm.remote_state(),
            remote_diag: Diag::None,
            tx_interval: fsm.tx_interval(),
            detection_time: fsm.detection_time(),
            local_discriminator: discriminator,
            remote_discriminator: 0,
            echo_active: false,
            echo_interval: None,
        });
        let (up_tx, up) = watch::channel(false);
        tracing::info!(peer = %peer.peer, local = ?peer.local, discriminator, "BFD session added");
        self.sessions.insert(
            discriminator,
            Entry {
                refs: 1,
                fsm,
                peer: SocketAddr::new(peer.peer, self.config.peer_port),
                socket,
                remote_diag: Diag::None,
                state: state_tx,
                up: up_tx,
                counters: counters.clone(),
                local: peer.local,
                echo: None,
            },
        );
        self.by_peer.insert(peer.peer, discriminator);
        self.event(discriminator, Event::Start).await;
        Ok(Added {
            discriminator,
            state,
            up,
            counters,
        })
    }

    async fn remove(&mut self, d: u32) {
        if let Some(e) = self.sessions.get_mut(&d) {
            e.refs = e.refs.saturating_sub(1);
            if e.refs > 0 {
                return;
            }
            self.event(d, Event::AdminDown).await;
        }
        if let Some(e) = self.sessions.remove(&d) {
            tracing::info!(peer = %e.peer.ip(), discriminator = d, "BFD session removed");
            self.by_peer.remove(&e.peer.ip());
        }
    }

    async fn datagram(&mut self, r: io::Result<Received>, buf: &[u8]) {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "BFD receive");
                return;
            }
        };
        let p = match ControlPacket::decode(&buf[..r.len]) {
            Ok(p) => p,
            Err(e) => {
                self.drop_packet(e.reason(), &r, Some(&e));
                return;
            }
        };
        let d = if p.your_discriminator != 0 {
            Some(p.your_discriminator).filter(|d| {
                self.sessions
                    .get(d)
                    .is_some_and(|e| e.peer.ip() == r.from.ip())
            })
        } else {
            self.by_peer.get(&r.from.ip()).copied()
        };
        let Some(d) = d else {
            self.drop_packet(drop_reason::NO_SESSION, &r, None);
            return;
        };
        let Some(e) = self.sessions.get_mut(&d) else {
            return;
        };
        if r.ttl.is_none_or(|t| t < e.fsm.params().minimum_ttl) {
            self.drop_packet(drop_reason::TTL, &r, None);
            return;
        }
        bump(&e.counters.control_packet_input);
        e.remote_diag = p.diag;
        self.event(d, Event::Received(p)).await;
    }

    /// Handles the datagrams already queued on the receive sockets (at most 64 per socket).
    async fn drain(&mut self, buf: &mut [u8]) {
        for v6 in [false, true] {
            for _ in 0..64 {
                let socket = if v6 { self.v6.as_ref() } else { Some(&self.v4) };
                let Some(socket) = socket else { break };
                match network::try_receive(socket, buf) {
                    Ok(Some(r)) => self.datagram(Ok(r), buf).await,
                    Ok(None) => break,
                    Err(e) => {
                        self.datagram(Err(e), buf).await;
                        break;
                    }
                }
            }
        }
    }

    fn drop_packet(&self, reason: &'static str, r: &Received, e: Option<&DecodeError>) {
        tracing::debug!(from = %r.from, ttl = ?r.ttl, reason, error = ?e, "BFD packet dropped");
        self.drops.add(reason);
    }

    async fn echo_received(&mut self, d: u32, seq: u64) {
        let Some(e) = self.sessions.get(&d) else {
            return;
        };
        bump(&e.counters.echo_packet_input);
        self.event(d, Event::EchoReceived(seq)).await;
    }

    async fn timers(&mut self) {
        let now = Instant::now().into_std();
        let due = |t: Option<std::time::Instant>| t.is_some_and(|t| t <= now);
        let due: Vec<(u32, [bool; 4])> = self
            .sessions
            .iter()
            .map(|(d, e)| {
                (
                    *d,
                    [
                        due(e.fsm.detect_deadline()),
                        due(e.fsm.echo_detect_deadline()),
                        due(e.fsm.next_tx()),
                        due(e.fsm.echo_tx_deadline()),
                    ],
                )
            })
            .filter(|(_, flags)| flags.iter().any(|f| *f))
            .collect();
        for (d, [det, echo_det, tx, echo_tx]) in due {
            if det {
                self.event(d, Event::DetectTimer).await;
            }
            if echo_det {
                self.event(d, Event::EchoDetectTimer).await;
            }
            if tx {
                self.event(d, Event::TxTimer).await;
            }
            if echo_tx {
                self.event(d, Event::EchoTxTimer).await;
            }
        }
    }

    async fn event(&mut self, d: u32, event: Event) {
        let Some(e) = self.sessions.get_mut(&d) else {
            return;
        };
        let actions = e.fsm.handle(std::time::Instant::now(), event);
        for a in actions {
            match a {
                Action::Send(p) => match e.socket.send_to(&p.encode(), e.peer).await {
                    Ok(_) => bump(&e.counters.control_packet_output),
                    Err(err) => {
                        tracing::debug!(peer = %e.peer, error = %err, "BFD send failed")
                    }
                },
                Action::StateChanged { from, to, diag } => {
                    tracing::info!(peer = %e.peer.ip(), %from, %to, %diag, "BFD state");
                    if to == State::Up {
                        bump(&e.counters.session_up_events);
                    } else if from == State::Up {
                        bump(&e.counters.session_down_events);
                    }
                    e.up.send_if_modified(|u| {
                        let changed = *u != (to == State::Up);
                        *u = to == State::Up;
                        changed
                    });
                }
                Action::EchoActive(true) => {
                    match EchoIo::open(d, e.peer.ip(), e.local, self.echo_back.clone()) {
                        Ok(io) => {
                            tracing::info!(peer = %e.peer.ip(), interval = ?e.fsm.echo_interval(), "BFD echo started");
                            e.echo = Some(io);
                        }
                        Err(err) => {
                            // No echo goes out, so the echo detection time ends the session
                            // (Echo Function Failed), as for echoes that do not come back.
                            tracing::warn!(peer = %e.peer.ip(), error = %err, "BFD echo: cannot send echoes");
                            e.echo = None;
                        }
                    }
                }
                Action::EchoActive(false) => {
                    if e.echo.take().is_some() {
                        tracing::info!(peer = %e.peer.ip(), "BFD echo stopped");
                    }
                }
                Action::SendEcho(seq) => {
                    if let Some(io) = &e.echo {
                        let frame = Echo {
                            discriminator: d,
                            seq,
                        }
                        .frame(
                            io.path.peer_mac,
                            io.path.local_mac,
                            io.path.local,
                            seq as u16,
                        );
                        match io.socket.send(&frame).await {
                            Ok(_) => bump(&e.counters.echo_packet_output),
                            Err(err) => {
                                tracing::debug!(peer = %e.peer, error = %err, "BFD echo send failed")
                            }
                        }
                    }
                }
                Action::TxDeadline(_) | Action::DetectDeadline(_) => {}
            }
        }
        let snap = e.snapshot();
        e.state.send_if_modified(|s| {
            let changed = *s != snap;
            *s = snap;
            changed
        });
    }
}

/// The parameters a session to `peer` runs with: the Echo function is IPv4 only, so an IPv6
/// session runs without it (rather than failing for want of echoes).
fn effective(peer: IpAddr, mut params: BfdParams) -> BfdParams {
    if peer.is_ipv6() && params.echo_interval.take().is_some() {
        tracing::debug!(%peer, "BFD echo mode is IPv4 only; asynchronous mode alone");
    }
    params
}

async fn receive_opt(s: &Option<UdpSocket>, buf: &mut [u8]) -> io::Result<Received> {
    match s {
        Some(s) => network::receive(s, buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
