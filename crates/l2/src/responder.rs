//! The ARP and NDP responder: answers for the addresses this node owns, announces them when
//! it gains them, and notices other hosts claiming them.
//!
//! ```text
//!   watch::Receiver<Announcements> ----+--------------------------------------------+
//!                                      |                                            |
//!   run(): rescans interfaces (10 s) --+--> per eligible interface:                 |
//!          diffs announcements             arp task: recv ARP -> reply / conflict   |
//!            gained -> probe + burst       ndp task: recv NS/NA -> NA / conflict,   |
//!            lost   -> burst aborted                 joins solicited-node groups <--+
//!          periodic probes
//!          periodic gratuitous rounds (periodic_due)
//!                 |                          every task reads the *current* announcements
//!                 v                          at each frame: losing an address stops the
//!   Counters (atomics), mpsc::Sender<Conflict>   answers at once
//! ```
//!
//! MetalLB-compatible behaviour: replies come from the interface's MAC; NDP answers are
//! solicited NAs (S=1, O=0 unless [`ResponderConfig::solicited_override`]). They are sent from
//! the target address itself, as the Linux kernel does (MetalLB uses the link-local address,
//! and `ndisc6` ignores such answers); gaining an address sends a gratuitous ARP request and reply (IPv4) or an unsolicited
//! NA with O=1 to ff02::1 (IPv6) at once and then `gratuitous_count - 1` more times.
//! With [`ResponderConfig::periodic_interval`] (MetalLB's `--gratuitous-arp-interval`), every
//! answered address is announced the same way again at each interval for as long as it is
//! answered, except while its takeover burst runs or while another host claims it
//! ([`periodic_due`]).
//! Interfaces that are down, NOARP, loopback, ports of a bridge or bond, without a MAC, or
//! excluded by name are skipped.
//!
//! Address-conflict detection (MetalLB has none): when an address first appears in the
//! announcements, and every `probe_interval` after, three ARP probes (RFC 5227) or DAD
//! solicitations (RFC 4862) ask who has it; any ARP frame whose sender address is one of ours
//! from a MAC that is not ours, any NA for one of ours with a foreign MAC, and any NS sent from
//! one of ours by a foreign MAC is reported as a [`Conflict`]. The responder does not fight:
//! the gratuitous burst for that address stops, solicited answers go on (the speaker decides).

use crate::{ArpFrame, ArpOperation, DecodeError, MacAddr, NdpFrame, NdpMessage};
use ironlb_sys::link::Interface;
use ironlb_sys::multicast::Ipv6Memberships;
use ironlb_sys::packet::{AsyncPacketSocket, PacketType, Protocol};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How one address is announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announce {
    /// Interface names to announce on (an L2Advertisement's `interfaces`); empty = every
    /// eligible interface.
    pub interfaces: Vec<String>,
    /// Answer for it. `false`: about to own it: probe and watch for conflicts, but stay silent.
    pub answer: bool,
}

/// The addresses this node owns (or is about to own), as the speaker decides.
pub type Announcements = BTreeMap<IpAddr, Announce>;

/// Responder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderConfig {
    /// Only these interfaces (by name); empty = all.
    pub include_interfaces: Vec<String>,
    /// Never these interfaces: exact names, or prefixes written `name*`.
    pub exclude_interfaces: Vec<String>,
    /// Gratuitous announcements sent on gaining an address (the first at once).
    pub gratuitous_count: u32,
    /// Time between gratuitous announcements.
    pub gratuitous_interval: Duration,
    /// Announce every answered address again this often, for as long as it is answered
    /// (MetalLB's `--gratuitous-arp-interval`); `None`: only on gaining it.
    pub periodic_interval: Option<Duration>,
    /// Set the Override flag on solicited NAs (MetalLB does not).
    pub solicited_override: bool,
    /// How often interfaces are listed again.
    pub rescan_interval: Duration,
    /// How often owned addresses are probed for conflicts (`None`: only when first seen).
    pub probe_interval: Option<Duration>,
    /// A conflict for the same address and MAC is reported at most once per this time.
    pub conflict_report_interval: Duration,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            include_interfaces: Vec::new(),
            // MetalLB's default exclusions (its excludel2 list), as prefixes.
            exclude_interfaces: [
                "docker*",
                "cbr*",
                "dummy*",
                "virbr*",
                "lxcbr*",
                "veth*",
                "lo",
                "cali*",
                "tunl*",
                "flannel*",
                "kube-ipvs*",
                "cni*",
                "vxlan.calico*",
                "vxlan-v6.calico*",
                "nodelocaldns*",
            ]
            .map(String::from)
            .to_vec(),
            gratuitous_count: 5,
            gratuitous_interval: Duration::from_millis(1100),
            periodic_interval: None,
            solicited_override: false,
            rescan_interval: Duration::from_secs(10),
            probe_interval: Some(Duration::from_secs(30)),
            conflict_report_interval: Duration::from_secs(5),
        }
    }
}

/// Why an interface is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Administratively down.
    Down,
    /// ARP is off on it.
    NoArp,
    /// The loopback interface.
    Loopback,
    /// A port of a bridge or bond.
    Member,
    /// No Ethernet address.
    NoMac,
    /// Not in the include list, or in the exclude list.
    Excluded,
}

/// Whether the responder uses `iface`.
pub fn eligible(iface: &Interface, config: &ResponderConfig) -> Result<MacAddr, SkipReason> {
    let name_matches = |p: &String| match p.strip_suffix('*') {
        Some(prefix) => iface.name.starts_with(prefix),
        None => iface.name == *p,
    };
    if iface.loopback {
        return Err(SkipReason::Loopback);
    }
    if !iface.up {
        return Err(SkipReason::Down);
    }
    if iface.noarp {
        return Err(SkipReason::NoArp);
    }
    if iface.is_member() {
        return Err(SkipReason::Member);
    }
    if (!config.include_interfaces.is_empty()
        && !config.include_interfaces.iter().any(name_matches))
        || config.exclude_interfaces.iter().any(name_matches)
    {
        return Err(SkipReason::Excluded);
    }
    iface.mac.map(MacAddr).ok_or(SkipReason::NoMac)
}

/// Another host claims one of our addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The address.
    pub ip: IpAddr,
    /// The other host's MAC.
    pub mac: MacAddr,
    /// Where it was seen.
    pub interface: String,
    /// We were answering for the address at the time (otherwise only about to).
    pub while_answering: bool,
}

/// Per-address counts (the `ip` label of MetalLB's `metallb_layer2_*` metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressCounts {
    /// Requests (ARP requests, NS) received for the address while answering it.
    pub requests_received: u64,
    /// Answers sent.
    pub responses_sent: u64,
    /// Gratuitous ARP / unsolicited NA frames sent.
    pub gratuitous_sent: u64,
}

/// The responder's counters, shared with whoever exports them.
#[derive(Debug, Default)]
pub struct Counters {
    requests_received: AtomicU64,
    responses_sent: AtomicU64,
    gratuitous_sent: AtomicU64,
    probes_sent: AtomicU64,
    conflicts: AtomicU64,
    send_errors: AtomicU64,
    dropped: [AtomicU64; DecodeError::ALL.len()],
    by_address: Mutex<BTreeMap<IpAddr, AddressCounts>>,
}

impl Counters {
    /// Requests received for answered addresses.
    pub fn requests_received(&self) -> u64 {
        self.requests_received.load(Ordering::Relaxed)
    }
    /// Answers sent.
    pub fn responses_sent(&self) -> u64 {
        self.responses_sent.load(Ordering::Relaxed)
    }
    /// Gratuitous frames sent.
    pub fn gratuitous_sent(&self) -> u64 {
        self.gratuitous_sent.load(Ordering::Relaxed)
    }
    /// Conflict probes sent.
    pub fn probes_sent(&self) -> u64 {
        self.probes_sent.load(Ordering::Relaxed)
    }
    /// Conflicts reported.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
    /// Frames that could not be sent.
    pub fn send_errors(&self) -> u64 {
        self.send_errors.load(Ordering::Relaxed)
    }
    /// Malformed frames dropped for `reason`.
    pub fn dropped(&self, reason: DecodeError) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }
    /// Every drop reason with its count.
    pub fn dropped_by_reason(&self) -> Vec<(DecodeError, u64)> {
        DecodeError::ALL
            .iter()
            .map(|r| (*r, self.dropped(*r)))
            .collect()
    }
    /// Counts per address.
    pub fn by_address(&self) -> BTreeMap<IpAddr, AddressCounts> {
        self.by_address
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    fn drop_frame(&self, reason: DecodeError) {
        self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn add(&self, ip: IpAddr, f: impl FnOnce(&mut AddressCounts), total: &AtomicU64) {
        total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.by_address.lock() {
            f(m.entry(ip).or_default());
        }
    }
}

/// One interface in use.
#[derive(Debug)]
struct Link {
    name: String,
    index: u32,
    mac: MacAddr,
    arp: AsyncPacketSocket,
    ndp: AsyncPacketSocket,
}

impl Link {
    fn carries(&self, announce: &Announce) -> bool {
        announce.interfaces.is_empty() || announce.interfaces.contains(&self.name)
    }
}

struct Shared {
    config: ResponderConfig,
    counters: Arc<Counters>,
    conflicts: mpsc::Sender<Conflict>,
    local_macs: RwLock<HashSet<MacAddr>>,
    links: RwLock<BTreeMap<String, Arc<Link>>>,
    /// Last report per (address, MAC), and addresses in conflict (no more gratuitous).
    reported: Mutex<HashMap<(IpAddr, MacAddr), Instant>>,
}

impl Shared {
    fn is_local(&self, mac: MacAddr) -> bool {
        self.local_macs.read().is_ok_and(|m| m.contains(&mac))
    }

    fn in_conflict(&self, ip: IpAddr) -> bool {
        self.reported
            .lock()
            .is_ok_and(|r| r.keys().any(|(i, _)| *i == ip))
    }

    /// The addresses another host claims.
    fn conflicted(&self) -> HashSet<IpAddr> {
        self.reported
            .lock()
            .map(|r| r.keys().map(|(ip, _)| *ip).collect())
            .unwrap_or_default()
    }

    fn links(&self) -> Vec<Arc<Link>> {
        self.links
            .read()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default()
    }

    fn report_conflict(&self, ip: IpAddr, mac: MacAddr, link: &Link, while_answering: bool) {
        let now = Instant::now();
        let due = match self.reported.lock() {
            Ok(mut r) => {
                let due = r
                    .get(&(ip, mac))
                    .is_none_or(|t| now.duration_since(*t) >= self.config.conflict_report_interval);
                if due {
                    r.insert((ip, mac), now);
                }
                due
            }
            Err(_) => false,
        };
        if !due {
            return;
        }
        self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%ip, %mac, interface = %link.name, "another host claims this address");
        let _ = self.conflicts.try_send(Conflict {
            ip,
            mac,
            interface: link.name.clone(),
            while_answering,
        });
    }

    async fn send(&self, link: &Link, socket: &AsyncPacketSocket, frame: &[u8]) -> bool {
        match socket.send(frame).await {
            Ok(_) => true,
            Err(e) => {
                self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(interface = %link.name, error = %e, "sending a frame");
                false
            }
        }
    }

    async fn probe(&self, ip: IpAddr, announce: &Announce) {
        for link in self.links() {
            if !link.carries(announce) {
                continue;
            }
            let sent = match ip {
                IpAddr::V4(v4) => {
                    let frame = ArpFrame::probe(v4, link.mac).to_bytes();
                    self.send(&link, &link.arp, &frame).await
                }
                IpAddr::V6(v6) => {
                    let frame = NdpFrame::probe(v6, link.mac).to_bytes();
                    self.send(&link, &link.ndp, &frame).await
                }
            };
            if sent {
                self.counters.probes_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One round of gratuitous frames for `ip` on every link that carries it.
    async fn announce(&self, ip: IpAddr, announce: &Announce) {
        for link in self.links() {
            if !link.carries(announce) {
                continue;
            }
            let frames: Vec<(Vec<u8>, &AsyncPacketSocket)> = match ip {
                IpAddr::V4(v4) => vec![
                    (
                        ArpFrame::gratuitous_request(v4, link.mac).to_bytes(),
                        &link.arp,
                    ),
                    (
                        ArpFrame::gratuitous_reply(v4, link.mac).to_bytes(),
                        &link.arp,
                    ),
                ],
                IpAddr::V6(v6) => vec![(
                    NdpFrame::unsolicited_advertisement(v6, link.mac, v6).to_bytes(),
                    &link.ndp,
                )],
            };
            for (frame, socket) in frames {
                if self.send(&link, socket, &frame).await {
                    self.counters.add(
                        ip,
                        |c| c.gratuitous_sent += 1,
                        &self.counters.gratuitous_sent,
                    );
                }
            }
        }
    }
}

/// Probes sent for an address when it first appears (and at each periodic probe).
const PROBE_COUNT: u32 = 3;
/// Time between those probes.
const PROBE_SPACING: Duration = Duration::from_millis(200);

/// The addresses a periodic gratuitous round announces again: every answered one, except those
/// whose takeover burst still runs (the burst keeps its own rhythm) and those another host
/// claims (the responder does not fight over an address). In address order.
pub fn periodic_due(
    announcements: &Announcements,
    bursting: &HashSet<IpAddr>,
    conflicted: &HashSet<IpAddr>,
) -> Vec<IpAddr> {
    announcements
        .iter()
        .filter(|(ip, a)| a.answer && !bursting.contains(*ip) && !conflicted.contains(*ip))
        .map(|(ip, _)| *ip)
        .collect()
}

/// Runs the responder until the announcements' sender is dropped. Counters go to `counters`,
/// conflicts to `conflicts` (never blocks on it: a full channel loses reports, not answers).
pub async fn run(
    config: ResponderConfig,
    mut announcements: watch::Receiver<Announcements>,
    counters: Arc<Counters>,
    conflicts: mpsc::Sender<Conflict>,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        config: config.clone(),
        counters,
        conflicts,
        local_macs: RwLock::new(HashSet::new()),
        links: RwLock::new(BTreeMap::new()),
        reported: Mutex::new(HashMap::new()),
    });
    let mut link_tasks: HashMap<String, JoinSet<()>> = HashMap::new();
    let mut bursts: HashMap<IpAddr, tokio::task::AbortHandle> = HashMap::new();
    let mut burst_set = JoinSet::new();
    let mut previous = Announcements::new();
    let mut rescan = tokio::time::interval(config.rescan_interval);
    let probe_every = config
        .probe_interval
        .unwrap_or(Duration::from_secs(86400 * 365));
    let mut probe =
        tokio::time::interval_at(tokio::time::Instant::now() + probe_every, probe_every);
    let mut periodic = config.periodic_interval.map(|every| {
        let every = every.max(Duration::from_millis(1));
        tracing::info!(every = ?every, "periodic gratuitous announcements on");
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // A stalled loop sends one late round, not a catch-up burst.
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let mut probe_all = false;
        let mut periodic_round = false;
        tokio::select! {
            _ = rescan.tick() => {
                if let Err(e) = rescan_links(&shared, &announcements, &mut link_tasks) {
                    tracing::warn!(error = %e, "listing interfaces");
                }
            }
            _ = probe.tick(), if config.probe_interval.is_some() => probe_all = true,
            changed = announcements.changed() => if changed.is_err() { break },
            Some(_) = burst_set.join_next(), if !burst_set.is_empty() => continue,
            _ = async {
                match periodic.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            } => periodic_round = true,
        }
        if periodic_round {
            let bursting: HashSet<IpAddr> = bursts
                .iter()
                .filter(|(_, h)| !h.is_finished())
                .map(|(ip, _)| *ip)
                .collect();
            // From what this loop has handled: an address gained a moment ago whose burst has
            // not started yet is left to its burst.
            let due = periodic_due(&previous, &bursting, &shared.conflicted());
            if !due.is_empty() {
                let shared = shared.clone();
                let rx = announcements.clone();
                burst_set.spawn(async move { periodic_announce(shared, rx, due).await });
            }
            // Announcement changes, if any, are still pending on the receiver: the next turn
            // handles them.
            continue;
        }
        let current = announcements.borrow_and_update().clone();
        for (ip, announce) in &current {
            let before = previous.get(ip);
            if before.is_none() || probe_all {
                // RFC 5227 sends three probes: one lost frame must not hide a conflict.
                let shared = shared.clone();
                let (ip, announce) = (*ip, announce.clone());
                burst_set.spawn(async move {
                    for round in 0..PROBE_COUNT {
                        if round > 0 {
                            tokio::time::sleep(PROBE_SPACING).await;
                        }
                        shared.probe(ip, &announce).await;
                    }
                });
            }
            let gained = announce.answer && before.is_none_or(|b| !b.answer);
            if gained {
                if let Ok(mut r) = shared.reported.lock() {
                    r.retain(|(i, _), _| i != ip);
                }
                let shared = shared.clone();
                let rx = announcements.clone();
                let ip = *ip;
                let handle = burst_set.spawn(async move { burst(shared, rx, ip).await });
                if let Some(old) = bursts.insert(ip, handle) {
                    old.abort();
                }
            }
        }
        // Addresses no longer answered: their burst stops now.
        bursts.retain(|ip, handle| {
            let keep = current.get(ip).is_some_and(|a| a.answer) && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        previous = current;
    }
    Ok(())
}

async fn burst(shared: Arc<Shared>, rx: watch::Receiver<Announcements>, ip: IpAddr) {
    for round in 0..shared.config.gratuitous_count {
        if round > 0 {
            tokio::time::sleep(shared.config.gratuitous_interval).await;
        }
        let announce = match rx.borrow().get(&ip) {
            Some(a) if a.answer => a.clone(),
            _ => return,
        };
        if shared.in_conflict(ip) {
            return;
        }
        shared.announce(ip, &announce).await;
    }
}

/// One periodic round: each due address once, unless it stopped being answered meanwhile.
async fn periodic_announce(
    shared: Arc<Shared>,
    rx: watch::Receiver<Announcements>,
    due: Vec<IpAddr>,
) {
    for ip in due {
        let announce = match rx.borrow().get(&ip) {
            Some(a) if a.answer => a.clone(),
            _ => continue,
        };
        shared.announce(ip, &announce).await;
    }
}

fn rescan_links(
    shared: &Arc<Shared>,
    announcements: &watch::Receiver<Announcements>,
    tasks: &mut HashMap<String, JoinSet<()>>,
) -> io::Result<()> {
    let interfaces = ironlb_sys::link::interfaces()?;
    let mut wanted: BTreeMap<String, (u32, MacAddr)> = BTreeMap::new();
    let mut macs = HashSet::new();
    for iface in &interfaces {
        if let Some(mac) = iface.mac {
            macs.insert(MacAddr(mac));
        }
        match eligible(iface, &shared.config) {
            Ok(mac) => {
                wanted.insert(iface.name.clone(), (iface.index, mac));
            }
            Err(reason) => tracing::trace!(interface = %iface.name, ?reason, "skipped"),
        }
    }
    if let Ok(mut m) = shared.local_macs.write() {
        *m = macs;
    }
    let mut links = shared
        .links
        .write()
        .map_err(|_| io::Error::other("links lock poisoned"))?;
    // Gone or changed interfaces: their tasks stop (dropping a JoinSet aborts its tasks).
    links.retain(|name, link| {
        let keep = wanted.get(name) == Some(&(link.index, link.mac));
        if !keep {
            tasks.remove(name);
            tracing::info!(interface = %name, "stopped answering on interface");
        }
        keep
    });
    for (name, (index, mac)) in wanted {
        if links.contains_key(&name) {
            continue;
        }
        let link = match open_link(&name, index, mac) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                tracing::warn!(interface = %name, error = %e, "cannot open packet sockets");
                continue;
            }
        };
        let mut set = JoinSet::new();
        set.spawn(arp_loop(
            shared.clone(),
            link.clone(),
            announcements.clone(),
        ));
        set.spawn(ndp_loop(
            shared.clone(),
            link.clone(),
            announcements.clone(),
        ));
        tracing::info!(interface = %name, %mac, "answering on interface");
        tasks.insert(name.clone(), set);
        links.insert(name, link);
    }
    Ok(())
}

fn open_link(name: &str, index: u32, mac: MacAddr) -> io::Result<Link> {
    Ok(Link {
        name: name.to_string(),
        index,
        mac,
        arp: AsyncPacketSocket::open(index, Protocol::Arp)?,
        ndp: AsyncPacketSocket::open(index, Protocol::Ndp)?,
    })
}

/// What to do with one received frame, decided without holding the announcements.
enum Action {
    Nothing,
    Reply(IpAddr, Vec<u8>),
    Conflict(IpAddr, MacAddr, bool),
}

const FRAME_BUF: usize = 2048;

async fn arp_loop(shared: Arc<Shared>, link: Arc<Link>, rx: watch::Receiver<Announcements>) {
    let mut buf = vec![0u8; FRAME_BUF];
    loop {
        let (n, kind) = match link.arp.recv(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(interface = %link.name, error = %e, "receiving ARP");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if kind == PacketType::Outgoing {
            continue;
        }
        let frame = match ArpFrame::decode(&buf[..n]) {
            Ok(f) => f,
            Err(reason) => {
                shared.counters.drop_frame(reason);
                continue;
            }
        };
        let action = {
            let announcements = rx.borrow();
            arp_action(&shared, &link, &announcements, &frame)
        };
        act(&shared, &link, &link.arp, action).await;
    }
}

fn arp_action(shared: &Shared, link: &Link, announcements: &Announcements, f: &ArpFrame) -> Action {
    let sender = IpAddr::V4(f.sender_ip);
    if let Some(a) = announcements.get(&sender)
        && link.carries(a)
        && !shared.is_local(f.sender_mac)
    {
        return Action::Conflict(sender, f.sender_mac, a.answer);
    }
    if f.operation != ArpOperation::Request || f.is_gratuitous() {
        return Action::Nothing;
    }
    if f.eth_dst != MacAddr::BROADCAST && f.eth_dst != link.mac {
        return Action::Nothing;
    }
    let target = IpAddr::V4(f.target_ip);
    match announcements.get(&target) {
        Some(a) if a.answer && link.carries(a) => {
            shared.counters.add(
                target,
                |c| c.requests_received += 1,
                &shared.counters.requests_received,
            );
            Action::Reply(target, f.reply(link.mac).to_bytes())
        }
        _ => Action::Nothing,
    }
}

async fn act(shared: &Shared, link: &Link, socket: &AsyncPacketSocket, action: Action) {
    match action {
        Action::Nothing => {}
        Action::Reply(ip, frame) => {
            if shared.send(link, socket, &frame).await {
                shared.counters.add(
                    ip,
                    |c| c.responses_sent += 1,
                    &shared.counters.responses_sent,
                );
            }
        }
        Action::Conflict(ip, mac, answering) => shared.report_conflict(ip, mac, link, answering),
    }
}

async fn ndp_loop(shared: Arc<Shared>, link: Arc<Link>, mut rx: watch::Receiver<Announcements>) {
    let memberships = match Ipv6Memberships::new() {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(error = %e, "no IPv6 multicast memberships: NDP answers only to what reaches the interface");
            None
        }
    };
    let mut joined: BTreeSet<Ipv6Addr> = BTreeSet::new();
    let mut buf = vec![0u8; FRAME_BUF];
    loop {
        if let Some(m) = &memberships {
            let groups: BTreeSet<Ipv6Addr> = rx
                .borrow_and_update()
                .iter()
                .filter(|(_, a)| link.carries(a))
                .filter_map(|(ip, _)| match ip {
                    IpAddr::V6(v6) => Some(crate::ndp::solicited_node_multicast(*v6)),
                    IpAddr::V4(_) => None,
                })
                .collect();
            for g in groups.difference(&joined) {
                if let Err(e) = m.join(*g, link.index) {
                    tracing::warn!(group = %g, interface = %link.name, error = %e, "joining group");
                }
            }
            for g in joined.difference(&groups) {
                let _ = m.leave(*g, link.index);
            }
            joined = groups;
        }
        let received = tokio::select! {
            r = link.ndp.recv(&mut buf) => r,
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let (n, kind) = match received {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(interface = %link.name, error = %e, "receiving NDP");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if kind == PacketType::Outgoing {
            continue;
        }
        let frame = match NdpFrame::decode(&buf[..n]) {
            Ok(f) => f,
            Err(reason) => {
                shared.counters.drop_frame(reason);
                continue;
            }
        };
        let action = {
            let announcements = rx.borrow();
            ndp_action(&shared, &link, &announcements, &frame)
        };
        act(&shared, &link, &link.ndp, action).await;
    }
}

fn ndp_action(shared: &Shared, link: &Link, announcements: &Announcements, f: &NdpFrame) -> Action {
    match f.message {
        NdpMessage::NeighborAdvertisement {
            target, target_mac, ..
        } => {
            let mac = target_mac.unwrap_or(f.eth_src);
            match announcements.get(&IpAddr::V6(target)) {
                Some(a) if link.carries(a) && !shared.is_local(mac) => {
                    Action::Conflict(IpAddr::V6(target), mac, a.answer)
                }
                _ => Action::Nothing,
            }
        }
        NdpMessage::NeighborSolicitation { target, source_mac } => {
            let from = IpAddr::V6(f.ip_src);
            let mac = source_mac.unwrap_or(f.eth_src);
            if let Some(a) = announcements.get(&from)
                && link.carries(a)
                && !shared.is_local(mac)
            {
                return Action::Conflict(from, mac, a.answer);
            }
            if shared.is_local(f.eth_src) {
                return Action::Nothing;
            }
            let ip = IpAddr::V6(target);
            match announcements.get(&ip) {
                Some(a) if a.answer && link.carries(a) => {
                    shared.counters.add(
                        ip,
                        |c| c.requests_received += 1,
                        &shared.counters.requests_received,
                    );
                    match f.advertisement_for(link.mac, target, shared.config.solicited_override) {
                        Some(na) => Action::Reply(ip, na.to_bytes()),
                        None => Action::Nothing,
                    }
                }
                _ => Action::Nothing,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str) -> Interface {
        Interface {
            index: 2,
            name: name.into(),
            mac: Some([2, 0x1b, 0, 0, 0, 0xe7]),
            up: true,
            running: true,
            noarp: false,
            loopback: false,
            broadcast: true,
            master: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn a_periodic_round_announces_every_answered_address_outside_its_burst_and_conflicts() {
        let answered = |interfaces: &[&str]| Announce {
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            answer: true,
        };
        let announcements = Announcements::from([
            (ip("10.0.0.150"), answered(&[])),
            (ip("10.0.0.151"), answered(&["eth1"])),
            (ip("10.0.0.152"), answered(&[])),
            (ip("10.0.0.153"), answered(&[])),
            (
                ip("10.0.0.154"),
                Announce {
                    interfaces: vec![],
                    answer: false,
                },
            ),
            (ip("fd10::150"), answered(&[])),
        ]);
        let none = HashSet::new();
        assert_eq!(
            periodic_due(&announcements, &none, &none),
            vec![
                ip("10.0.0.150"),
                ip("10.0.0.151"),
                ip("10.0.0.152"),
                ip("10.0.0.153"),
                ip("fd10::150")
            ],
            "every answered address, IPv4 and IPv6; one about to be owned stays silent"
        );
        let bursting = HashSet::from([ip("10.0.0.152")]);
        let conflicted = HashSet::from([ip("10.0.0.153"), ip("10.0.0.199")]);
        assert_eq!(
            periodic_due(&announcements, &bursting, &conflicted),
            vec![ip("10.0.0.150"), ip("10.0.0.151"), ip("fd10::150")],
            "not during its takeover burst, not while another host claims it"
        );
        assert!(periodic_due(&Announcements::new(), &none, &none).is_empty());
    }

    #[test]
    fn periodic_announcements_are_off_by_default() {
        assert_eq!(ResponderConfig::default().periodic_interval, None);
    }

    #[test]
    fn interface_eligibility_follows_metallb() {
        let c = ResponderConfig::default();
        assert_eq!(
            eligible(&iface("eth0"), &c),
            Ok(MacAddr([2, 0x1b, 0, 0, 0, 0xe7]))
        );
        assert_eq!(
            eligible(
                &Interface {
                    up: false,
                    ..iface("eth0")
                },
                &c
            ),
            Err(SkipReason::Down)
        );
        assert_eq!(
            eligible(
                &Interface {
                    noarp: true,
                    ..iface("eth0")
                },
                &c
            ),
            Err(SkipReason::NoArp)
        );
        assert_eq!(
            eligible(
                &Interface {
                    loopback: true,
                    ..iface("lo")
                },
                &c
            ),
            Err(SkipReason::Loopback)
        );
        assert_eq!(
            eligible(
                &Interface {
                    master: Some(7),
                    ..iface("eth1")
                },
                &c
            ),
            Err(SkipReason::Member)
        );
        assert_eq!(
            eligible(
                &Interface {
                    mac: None,
                    ..iface("wg0")
                },
                &c
            ),
            Err(SkipReason::NoMac)
        );
        assert_eq!(eligible(&iface("veth12ab"), &c), Err(SkipReason::Excluded));
        assert_eq!(
            eligible(&iface("kube-ipvs0"), &c),
            Err(SkipReason::Excluded)
        );
        let only_eth0 = ResponderConfig {
            include_interfaces: vec!["eth0".into()],
            ..c
        };
        assert!(eligible(&iface("eth0"), &only_eth0).is_ok());
        assert_eq!(
            eligible(&iface("mgmt0"), &only_eth0),
            Err(SkipReason::Excluded)
        );
    }
}
