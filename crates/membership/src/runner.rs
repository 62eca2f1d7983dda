//! The membership task: one UDP socket, foca's timers and outputs, the desired set.
//!
//! ```text
//!   select! { shutdown | datagram | next timer | desired changed | announce tick }
//!        |          |           |             |                 |
//!        v          v           v             v                 v
//!      leave   open+replay   handle_timer  set_desired     announce to desired
//!              +handle_data                                   members not live
//!                         \        |            |              /
//!                          +--> flush: sends (sealed), timers, live set + events
//! ```

use crate::frame::{self, FrameKey};
use crate::replay::{ReplayGuard, SendClock};
use crate::{Error, NodeId, Settings, wall_clock_us};
use foca::{
    AccumulatingRuntime, Codec, Foca, Member, NoCustomBroadcast, OwnedNotification, PostcardCodec,
    Timer,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::num::NonZeroU8;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Who should be a member, as Kubernetes says: node name → address of its speaker's membership
/// socket. Our own node may be in it or not.
pub type DesiredMembers = BTreeMap<String, SocketAddr>;

/// How to run membership on this node.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// This node's name (`--node-name`).
    pub node_name: String,
    /// Where to listen (`--ml-bindaddr`:`--ml-bindport`, port 7946 by default); port 0 picks one.
    pub bind: SocketAddr,
    /// The shared secret's raw bytes (`secretkey` of the `memberlist` Secret).
    pub secret: Vec<u8>,
    /// Protocol timings.
    pub settings: Settings,
}

/// What happened to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// It became live.
    Joined,
    /// It stopped being live: declared down by probing, or it left.
    Failed,
    /// It is no longer in the desired set.
    Removed,
}

/// A change of the live set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// The node name.
    pub node: String,
    /// What happened.
    pub kind: EventKind,
    /// When this node noticed (wall clock).
    pub at: SystemTime,
    /// When this node noticed (monotonic, for measuring).
    pub instant: std::time::Instant,
}

/// Counters of the membership socket, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams handed to foca and accepted by it.
    pub accepted: u64,
    /// Dropped: too short, missing or wrong tag (no key, wrong key, tampered, truncated).
    pub dropped_unauthenticated: u64,
    /// Dropped: authentic but stale, too old for the window or a duplicate.
    pub dropped_replayed: u64,
    /// Dropped: authentic but from a node outside the desired set.
    pub dropped_not_member: u64,
    /// Dropped: authentic but malformed, or refused by foca.
    pub dropped_invalid: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// Probes of a member that got no `Ack`, directly or indirectly (each raises a suspicion).
    pub probes_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    accepted: AtomicU64,
    dropped_unauthenticated: AtomicU64,
    dropped_replayed: AtomicU64,
    dropped_not_member: AtomicU64,
    dropped_invalid: AtomicU64,
    sent: AtomicU64,
    send_errors: AtomicU64,
    probes_failed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            received: get(&self.received),
            accepted: get(&self.accepted),
            dropped_unauthenticated: get(&self.dropped_unauthenticated),
            dropped_replayed: get(&self.dropped_replayed),
            dropped_not_member: get(&self.dropped_not_member),
            dropped_invalid: get(&self.dropped_invalid),
            sent: get(&self.sent),
            send_errors: get(&self.send_errors),
            probes_failed: get(&self.probes_failed),
        }
    }
}

/// A running membership. Dropping it stops the task at once *without* leaving (peers detect
/// it by probing, as after `kill -9`); [`Membership::leave`] leaves gracefully.
#[derive(Debug)]
pub struct Membership {
    identity: NodeId,
    local_addr: SocketAddr,
    live: watch::Receiver<BTreeSet<String>>,
    events: broadcast::Sender<MemberEvent>,
    counters: Arc<Counters>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Membership {
    /// Binds the socket and starts probing the members of `desired` (and following its changes),
    /// on a thread and runtime of its own.
    pub async fn start(
        config: MembershipConfig,
        desired: watch::Receiver<DesiredMembers>,
    ) -> Result<Membership, Error> {
        if config.node_name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        let bind_error = |source| Error::Bind {
            addr: config.bind,
            source,
        };
        // Probing runs on a runtime of its own, in its own thread: whatever the caller's
        // runtime is busy with (the speaker recomputing thousands of Services after a change)
        // cannot delay an ack past the probe timeout and get this node declared dead, which
        // would move its addresses and make that work again (measured: a 10,000-Service
        // speaker on one shared runtime flapped 130 times in 20 minutes under load).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("membership")
            .build()
            .map_err(bind_error)?;
        let std_socket = std::net::UdpSocket::bind(config.bind).map_err(bind_error)?;
        std_socket.set_nonblocking(true).map_err(bind_error)?;
        let socket = {
            // Registered with the membership runtime's reactor, not the caller's.
            let _in_rt = rt.enter();
            UdpSocket::from_std(std_socket).map_err(bind_error)?
        };
        let local_addr = socket.local_addr().map_err(bind_error)?;
        let identity = NodeId {
            name: config.node_name.clone(),
            addr: local_addr,
            boot: wall_clock_us(),
            generation: 0,
        };
        let (live_tx, live) = watch::channel(BTreeSet::from([config.node_name.clone()]));
        let (events, _) = broadcast::channel(1024);
        let counters = Arc::new(Counters::default());
        let (shutdown_tx, shutdown_rx) = oneshot::channel();

        let mut desired = desired;
        let current = desired.borrow_and_update().clone();
        let seed = identity.boot ^ name_hash(&identity.name);
        let foca = Foca::new(
            identity.clone(),
            config.settings.foca_config(current.len()),
            SmallRng::seed_from_u64(seed),
            PostcardCodec,
        );
        let runner = Runner {
            name: config.node_name,
            foca,
            rt: AccumulatingRuntime::new(),
            socket,
            key: FrameKey::from_secret(&config.secret),
            replay: ReplayGuard::new(
                duration_us(config.settings.max_clock_skew),
                duration_us(config.settings.reorder_window),
            ),
            clock: SendClock::default(),
            desired: current,
            desired_rx: desired,
            timers: BTreeMap::new(),
            timer_seq: 0,
            live_tx,
            events: events.clone(),
            counters: counters.clone(),
            settings: config.settings,
            frame_buf: Vec::new(),
            changed: false,
        };
        // The thread runs until the task ends (shutdown) or is aborted (drop): either way the
        // future is dropped, and with it `stopped`.
        let (stopped, thread_done) = oneshot::channel::<()>();
        let task = rt.spawn(async move {
            let _stopped = stopped;
            runner.run(shutdown_rx).await;
        });
        std::thread::Builder::new()
            .name("membership".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = thread_done.await;
                });
            })
            .map_err(bind_error)?;
        Ok(Membership {
            identity,
            local_addr,
            live,
            events,
            counters,
            shutdown: Some(shutdown_tx),
            task: Some(task),
        })
    }

    /// The live members (node names, this node included), updated as probing decides.
    pub fn live(&self) -> watch::Receiver<BTreeSet<String>> {
        self.live.clone()
    }

    /// Joined / failed / removed events from now on (the live set is the state; this is the log).
    pub fn events(&self) -> broadcast::Receiver<MemberEvent> {
        self.events.subscribe()
    }

    /// Counters of the socket so far.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This speaker's identity at start (its generation grows if it ever has to rejoin).
    pub fn identity(&self) -> &NodeId {
        &self.identity
    }

    /// Leaves gracefully: tells the live members we are going (so they drop us at once), then
    /// stops.
    pub async fn leave(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn name_hash(name: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(name)
}

type Swim = Foca<NodeId, PostcardCodec, SmallRng, NoCustomBroadcast>;

struct Runner {
    name: String,
    foca: Swim,
    rt: AccumulatingRuntime<NodeId>,
    socket: UdpSocket,
    key: FrameKey,
    replay: ReplayGuard,
    clock: SendClock,
    desired: DesiredMembers,
    desired_rx: watch::Receiver<DesiredMembers>,
    timers: BTreeMap<(Instant, u64), Timer<NodeId>>,
    timer_seq: u64,
    live_tx: watch::Sender<BTreeSet<String>>,
    events: broadcast::Sender<MemberEvent>,
    counters: Arc<Counters>,
    settings: Settings,
    frame_buf: Vec<u8>,
    /// Membership or the desired set changed since the live set was last published.
    changed: bool,
}

/// Largest datagram read; anything longer is truncated by the kernel and fails authentication.
const RECV_BUF: usize = 4096;

impl Runner {
    async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        let mut buf = vec![0u8; RECV_BUF];
        let mut announce = tokio::time::interval(self.settings.announce_interval);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut desired_open = true;
        loop {
            let next_timer = self.timers.first_key_value().map(|((at, _), _)| *at);
            tokio::select! {
                biased;
                r = &mut shutdown => {
                    // Closed without a message: the handle was dropped (the task is being
                    // aborted); stop silently, like a killed process.
                    if r.is_ok() {
                        self.leave().await;
                    }
                    return;
                }
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, _from)) => {
                        self.on_datagram(buf.get(..n).unwrap_or_default()).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "membership recv"),
                },
                _ = tokio::time::sleep_until(next_timer.unwrap_or_else(Instant::now)), if next_timer.is_some() => {
                    self.fire_timers().await;
                }
                r = self.desired_rx.changed(), if desired_open => match r {
                    Ok(()) => {
                        let desired = self.desired_rx.borrow_and_update().clone();
                        self.set_desired(desired).await;
                    }
                    // The owner went away: keep the last set.
                    Err(_) => desired_open = false,
                },
                _ = announce.tick() => self.announce_missing().await,
            }
        }
    }

    fn is_desired(&self, name: &str) -> bool {
        name == self.name || self.desired.contains_key(name)
    }

    async fn on_datagram(&mut self, datagram: &[u8]) {
        bump(&self.counters.received);
        let opened = match frame::open(&self.key, datagram) {
            Ok(o) => o,
            Err(frame::FrameError::TooShort | frame::FrameError::BadTag) => {
                bump(&self.counters.dropped_unauthenticated);
                return;
            }
            Err(_) => {
                bump(&self.counters.dropped_invalid);
                return;
            }
        };
        if opened.sender == self.name || !self.desired.contains_key(opened.sender) {
            bump(&self.counters.dropped_not_member);
            return;
        }
        if self
            .replay
            .check(opened.sender, opened.sent_us, wall_clock_us())
            .is_err()
        {
            bump(&self.counters.dropped_replayed);
            return;
        }
        // The SWIM header must speak for the node the frame names: no relaying other identities.
        let header: Result<foca::Header<NodeId>, _> = PostcardCodec.decode_header(opened.payload);
        match header {
            Ok(h) if h.src.name == opened.sender => {}
            _ => {
                bump(&self.counters.dropped_invalid);
                return;
            }
        }
        match self.foca.handle_data(opened.payload, &mut self.rt) {
            Ok(()) => bump(&self.counters.accepted),
            Err(e) => {
                bump(&self.counters.dropped_invalid);
                tracing::debug!(error = %e, sender = opened.sender, "membership datagram refused");
            }
        }
        self.flush().await;
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            if let Err(e) = self.foca.handle_timer(timer, &mut self.rt) {
                tracing::debug!(error = %e, "membership timer");
            }
        }
        self.flush().await;
    }

    async fn set_desired(&mut self, desired: DesiredMembers) {
        let added: Vec<(String, SocketAddr)> = desired
            .iter()
            .filter(|(name, _)| !self.desired.contains_key(*name))
            .map(|(n, a)| (n.clone(), *a))
            .collect();
        self.desired = desired;
        self.changed = true;
        let _ = self
            .foca
            .set_config(self.settings.foca_config(self.desired.len()));
        let desired = &self.desired;
        let me = &self.name;
        self.replay
            .retain(|name| name == me || desired.contains_key(name));
        for (name, addr) in added {
            if name != self.name
                && let Err(e) = self
                    .foca
                    .announce(NodeId::placeholder(&name, addr), &mut self.rt)
            {
                tracing::debug!(error = %e, "membership announce");
            }
        }
        self.flush().await;
    }

    async fn announce_missing(&mut self) {
        let active: BTreeSet<&str> = self
            .foca
            .iter_members()
            .map(|m| m.id().name.as_str())
            .collect();
        let missing: Vec<NodeId> = self
            .desired
            .iter()
            .filter(|(name, _)| **name != self.name && !active.contains(name.as_str()))
            .map(|(name, addr)| NodeId::placeholder(name, *addr))
            .collect();
        for dst in missing {
            if let Err(e) = self.foca.announce(dst, &mut self.rt) {
                tracing::debug!(error = %e, "membership announce");
            }
        }
        self.flush().await;
    }

    /// Members foca learned from gossip that Kubernetes does not want are kept down locally,
    /// without telling anyone: never probed, never reported.
    fn suppress_undesired(&mut self) {
        let undesired: Vec<NodeId> = self
            .foca
            .iter_members()
            .filter(|m| !self.is_desired(&m.id().name))
            .map(|m| m.id().clone())
            .collect();
        if !undesired.is_empty()
            && let Err(e) =
                self.foca
                    .apply_many(undesired.into_iter().map(Member::down), false, &mut self.rt)
        {
            tracing::debug!(error = %e, "membership suppress");
        }
    }

    /// Carries out what foca asked for: sends, timers; then, if membership changed, keeps
    /// undesired members down and publishes the live set (O(members) only on changes, not per
    /// datagram).
    async fn flush(&mut self) {
        loop {
            while let Some(n) = self.rt.to_notify() {
                match n {
                    OwnedNotification::DataReceived(_) | OwnedNotification::DataSent(_) => {}
                    OwnedNotification::ProbeFailed(_, member) => {
                        bump(&self.counters.probes_failed);
                        tracing::debug!(node = %self.name, member = %member.name, "membership: probe failed");
                    }
                    n => {
                        tracing::debug!(node = %self.name, notification = ?n, "membership");
                        self.changed = true;
                    }
                }
            }
            if self.changed {
                self.suppress_undesired();
            }
            while let Some((to, data)) = self.rt.to_send() {
                self.send(&to, &data).await;
            }
            let now = Instant::now();
            while let Some((after, timer)) = self.rt.to_schedule() {
                self.timer_seq += 1;
                self.timers.insert((now + after, self.timer_seq), timer);
            }
            if self.rt.backlog() == 0 {
                break;
            }
        }
        if self.changed {
            self.changed = false;
            self.publish_live();
        }
    }

    async fn send(&mut self, to: &NodeId, payload: &[u8]) {
        // Kubernetes says where a member lives; nobody outside the desired set gets anything.
        let Some(addr) = self.desired.get(&to.name).copied() else {
            return;
        };
        let ts = self.clock.next(wall_clock_us());
        if frame::seal(&self.key, &self.name, ts, payload, &mut self.frame_buf).is_err() {
            return;
        }
        match self.socket.send_to(&self.frame_buf, addr).await {
            Ok(_) => bump(&self.counters.sent),
            Err(e) => {
                bump(&self.counters.send_errors);
                tracing::debug!(error = %e, %addr, "membership send");
            }
        }
    }

    fn publish_live(&mut self) {
        let mut live: BTreeSet<String> = self
            .foca
            .iter_members()
            .map(|m| m.id().name.clone())
            .filter(|n| self.desired.contains_key(n))
            .collect();
        live.insert(self.name.clone());
        let old = self.live_tx.borrow().clone();
        if live == old {
            return;
        }
        let at = SystemTime::now();
        let instant = std::time::Instant::now();
        for gone in old.difference(&live) {
            let kind = if self.desired.contains_key(gone) {
                EventKind::Failed
            } else {
                EventKind::Removed
            };
            tracing::info!(node = %self.name, member = %gone, ?kind, "membership");
            let _ = self.events.send(MemberEvent {
                node: gone.clone(),
                kind,
                at,
                instant,
            });
        }
        for new in live.difference(&old) {
            tracing::info!(node = %self.name, member = %new, "membership: joined");
            let _ = self.events.send(MemberEvent {
                node: new.clone(),
                kind: EventKind::Joined,
                at,
                instant,
            });
        }
        self.live_tx.send_replace(live);
    }

    async fn leave(&mut self) {
        // Let the "we are down" update ride on as many messages as needed to reach everyone.
        let members = self.foca.num_members();
        let mut config = self.settings.foca_config(self.desired.len());
        config.max_transmissions = NonZeroU8::MAX;
        let _ = self.foca.set_config(config);
        if let Err(e) = self.foca.leave_cluster(&mut self.rt) {
            tracing::debug!(error = %e, "membership leave");
        }
        let rounds = members / self.settings.indirect_probes.get() + 1;
        for _ in 0..rounds {
            let _ = self.foca.gossip(&mut self.rt);
        }
        let mut outgoing = Vec::new();
        while let Some((to, data)) = self.rt.to_send() {
            outgoing.push((to, data));
        }
        // Twice, a few milliseconds apart, so one lost datagram does not turn a leave into a
        // detection (each copy sealed with its own timestamp, so neither is a replay).
        for round in 0..2 {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            for (to, data) in &outgoing {
                self.send(to, data).await;
            }
        }
        tracing::info!(node = %self.name, "membership: left");
    }
}
