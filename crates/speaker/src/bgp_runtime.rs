//! The BGP side of the speaker: one [`Session`] per BGPPeer that selects this node, each fed
//! by a `watch` of the routes [`bgp_plan::plan`] gives it; ServiceBGPStatus objects, Events and
//! metrics from the same plan.
//!
//! ```text
//!   runtime (every publish) ──BgpSpeaker::update(&SpeakerState)──> bgp_plan::plan (pure)
//!                                   │
//!        ┌──────────────────────────┼───────────────────────────────┐
//!        v                          v                               v
//!   per peer: PeerConfig changed?  watch<Announcements> ──> Session (crates/bgp driver)
//!     stop + respawn                                          │ status / stats
//!                                                             v
//!   watch<DesiredStatuses> ─> StatusWriter (ServiceBGPStatus)  watcher task ─> metallb_bgp_*{peer}
//!   EventSink (nodeAssigned, protocol bgp); metallb_speaker_announced{protocol="bgp"}
//! ```
//!
//! A peer with a `bfdProfile` gets a BFD session too (one [`BfdManager`] per process, created
//! with the first such peer): its Up state gates the BGP session through
//! [`PeerConfig::bfd`] (BFD down after up closes the session at once), and it feeds
//! `metallb_bfd_*{peer}`.
//!
//! A session is respawned only when what it was started with changes (address, ASNs, timers,
//! password, ...); route changes go through the watch as UPDATE deltas. The first session to a
//! peer in this process carries graceful restart's R and F bits, so a router that kept the
//! routes of the previous process (stale) keeps forwarding until End-of-RIB.

use crate::args::Args;
use crate::bgp_plan::{self, AnnouncedService, BgpService, NodeView};
use crate::metrics::{AnnouncedLabels, BfdPeerFigures, BgpPeerFigures, SpeakerMetrics};
use crate::state::{SpeakerState, pool_of};
use crate::status::{DesiredStatuses, StatusWriter};
use ironlb_api::v1beta1::ServiceBgpStatus;
use ironlb_bfd::{BfdCounters, BfdManager, BfdParams, BfdPeer, ManagerConfig};
use ironlb_bgp::packet::capability::Family;
use ironlb_bgp::rib::Announcements;
use ironlb_bgp::session::driver::{BfdGate, PeerConfig, Session, SessionStats};
use ironlb_bgp::session::fsm::{FsmConfig, GracefulRestartConfig, PeerAs, State};
use ironlb_config::{BfdProfile, Config, Peer, PeerAsn, PeerTarget};
use ironlb_k8s::events::{EventSink, Kind, Pending, service_reference};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The Event reporter MetalLB's speaker uses.
const REPORTER: &str = "metallb-speaker";
/// `protocol` of the `nodeAssigned` Event and `metallb_speaker_announced`.
const PROTOCOL: &str = "bgp";
/// How long a router keeps our routes after the session drops, with graceful restart.
const RESTART_TIME: u16 = 120;

/// The session settings derived from a BGPPeer on this node.
pub fn peer_config(
    peer: &Peer,
    node: &str,
    node_ips: &[IpAddr],
    restarting: bool,
) -> Option<PeerConfig> {
    let PeerTarget::Address(address) = peer.target else {
        return None;
    };
    let v4 = node_ips.iter().find_map(|ip| match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    });
    let v6 = node_ips.iter().find_map(|ip| match ip {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    });
    let router_id = peer
        .router_id
        .or(match peer.source_address {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        })
        .or(v4)
        .unwrap_or_else(|| fallback_router_id(node));
    let peer_as = match peer.peer_asn {
        PeerAsn::Fixed(a) => PeerAs::Fixed(a),
        PeerAsn::DynamicInternal => PeerAs::Internal,
        PeerAsn::DynamicExternal => PeerAs::External,
    };
    let mut fsm = FsmConfig::new(peer.my_asn, peer_as, router_id);
    fsm.hold_time = u16::try_from(peer.hold_time.as_secs()).unwrap_or(u16::MAX);
    fsm.keepalive_time = Some(u16::try_from(peer.keepalive_time.as_secs()).unwrap_or(u16::MAX));
    if let Some(t) = peer.connect_time {
        fsm.connect_time = t;
    }
    let own = if address.is_ipv4() {
        Family::IPV4_UNICAST
    } else {
        Family::IPV6_UNICAST
    };
    fsm.families = vec![own];
    if peer.dual_stack_address_family {
        fsm.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    }
    fsm.graceful_restart = peer.graceful_restart.then_some(GracefulRestartConfig {
        restart_time: RESTART_TIME,
        restarting,
    });
    let mut config = PeerConfig::new(address, fsm);
    config.peer_port = peer.port;
    config.source_address = peer.source_address;
    config.ebgp_multihop = peer.ebgp_multihop;
    config.password = peer.password.clone();
    // The session's own family takes its local address as next hop; the other family (dual
    // stack) the node's address of that family.
    if peer.dual_stack_address_family {
        if address.is_ipv4() {
            config.ipv6_next_hop = v6;
        } else {
            config.ipv4_next_hop = v4;
        }
    }
    Some(config)
}

/// A stable router ID for a node without an IPv4 address (MetalLB hashes the node name too).
fn fallback_router_id(node: &str) -> Ipv4Addr {
    // FNV-1a, 32 bits.
    let mut h: u32 = 0x811c_9dc5;
    for b in node.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    Ipv4Addr::from(h)
}

/// The BFD session parameters of a validated BFDProfile (its values are in range and
/// defaulted by the configuration: nothing to check again).
pub fn bfd_params(profile: &BfdProfile) -> BfdParams {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    BfdParams {
        desired_min_tx: ms(profile.transmit_interval),
        required_min_rx: ms(profile.receive_interval),
        detect_mult: profile.detect_multiplier,
        passive: profile.passive_mode,
        minimum_ttl: profile.minimum_ttl,
        echo_interval: profile.echo_mode.then(|| ms(profile.echo_interval)),
    }
}

/// The BFD parameters `peer` asks for (`None`: no BFD; a profile that does not exist makes the
/// configuration invalid, so a valid one always has it).
fn wanted_bfd(peer: &Peer, config: &Config) -> Option<BfdParams> {
    let name = peer.bfd_profile.as_ref()?;
    let Some(profile) = config.bfd_profiles.get(name) else {
        tracing::warn!(peer = %peer.name, profile = %name, "BFD profile not found: no BFD");
        return None;
    };
    Some(bfd_params(profile))
}

/// MetalLB's `peer` label: `address:port`.
pub fn peer_label(config: &PeerConfig) -> String {
    SocketAddr::new(config.peer_address, config.peer_port).to_string()
}

/// The Services of `state` as planning sees them.
pub fn bgp_services(state: &SpeakerState) -> Vec<BgpService> {
    let node = state.node();
    let Some(config) = state.config() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, info) in state.services() {
        // As in Layer 2: a Service whose first address lies in no pool is not announced.
        if info
            .ips
            .first()
            .and_then(|ip| pool_of(&config.pools, *ip))
            .is_none()
        {
            continue;
        }
        out.push(BgpService {
            key: key.to_string(),
            uid: info.uid.to_string(),
            ips: info.ips.to_vec(),
            labels: info.labels.clone(),
            local_traffic_policy: info.traffic_policy_local,
            any_serving: state.any_serving(key),
            serving_here: state.serving_on(key, node),
        });
    }
    out
}

/// This node as planning sees it (`None` before its Node object is known).
pub fn node_view(state: &SpeakerState) -> Option<NodeView> {
    let info = state.node_info(state.node())?;
    Some(NodeView {
        name: state.node().to_string(),
        labels: info.labels.clone(),
        excluded: info.excluded(state.settings()),
    })
}

struct Running {
    config: PeerConfig,
    routes: watch::Sender<Announcements>,
    session: Option<Session>,
    generation: u64,
    /// The BFD parameters the session follows, and the task that runs the BFD session.
    bfd: Option<(BfdParams, BfdLink)>,
}

/// The task feeding a BGP session's gate from its BFD session; ending it (drop) removes the
/// BFD session (the peer is told AdminDown).
struct BfdLink(tokio::task::JoinHandle<()>);

impl Drop for BfdLink {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The BGP speaker of this node.
pub struct BgpSpeaker {
    node: String,
    node_ips: Vec<IpAddr>,
    metrics: SpeakerMetrics,
    events: EventSink,
    status_tx: watch::Sender<DesiredStatuses>,
    sessions: BTreeMap<String, Running>,
    /// Peers that had a session in this process (later sessions are not restarts).
    started: BTreeSet<String>,
    announced: BTreeMap<String, AnnouncedService>,
    /// The generation of the session behind each metrics label, so that a stopped session's
    /// watcher never removes its successor's figures.
    generations: Arc<Mutex<BTreeMap<String, u64>>>,
    next_generation: u64,
    /// The process's BFD, once a peer asked for it (`Err`: it could not start; logged once).
    bfd: Option<Result<Arc<BfdManager>, ()>>,
}

impl BgpSpeaker {
    /// Reads this node's addresses, starts the ServiceBGPStatus writer and the Event sink;
    /// sessions start with the first [`Self::update`].
    pub async fn start(
        client: &Client,
        args: &Args,
        owner: Option<OwnerReference>,
        metrics: &SpeakerMetrics,
    ) -> Self {
        let namespace = args.namespace.as_str();
        let node = args.node_name.as_str();
        let node_ips = match Api::<Node>::all(client.clone()).get_opt(node).await {
            Ok(Some(n)) => crate::runtime::internal_ips(&n),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read this Node: BGP router ID and next hops from the sessions");
                Vec::new()
            }
        };
        let events = EventSink::spawn(client.clone(), REPORTER, 10_000, 2);
        let (status_tx, status_rx) = watch::channel(DesiredStatuses::new());
        tokio::spawn(
            StatusWriter {
                client: client.clone(),
                namespace: namespace.to_string(),
                node: node.to_string(),
                owner,
                metrics: metrics.k8s.clone(),
            }
            .run_for::<ServiceBgpStatus>(status_rx),
        );
        BgpSpeaker {
            node: node.to_string(),
            node_ips,
            metrics: metrics.clone(),
            events,
            status_tx,
            sessions: BTreeMap::new(),
            started: BTreeSet::new(),
            announced: BTreeMap::new(),
            generations: Arc::default(),
            next_generation: 0,
            bfd: None,
        }
    }

    /// Brings sessions, routes, statuses, metrics and Events in line with `state`.
    pub fn update(&mut self, state: &SpeakerState) {
        let (Some(config), Some(node)) = (state.config(), node_view(state)) else {
            return;
        };
        // Layer 2 only: nothing to plan, and no copy of every Service to make on each change.
        if config.peers.is_empty() && self.sessions.is_empty() && self.announced.is_empty() {
            return;
        }
        let services = bgp_services(state);
        let plan = bgp_plan::plan(config, &node, &services);
        let peers: BTreeMap<&str, &Peer> =
            config.peers.iter().map(|p| (p.name.as_str(), p)).collect();

        // Sessions: stop what is no longer selected or changed, start what is new.
        let gone: Vec<String> = self
            .sessions
            .keys()
            .filter(|name| !plan.peers.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = self.sessions.remove(&name) {
                tracing::info!(peer = %name, "BGP peer no longer selected: stopping its session");
                stop(r);
            }
        }
        for (name, routes) in &plan.peers {
            let Some(peer) = peers.get(name.as_str()) else {
                continue;
            };
            let restarting = !self.started.contains(name);
            let Some(mut wanted) = peer_config(peer, &self.node, &self.node_ips, restarting) else {
                continue;
            };
            let bfd = wanted_bfd(peer, config);
            let same = self.sessions.get(name).is_some_and(|r| {
                same_session(&r.config, &wanted) && r.bfd.as_ref().map(|(p, _)| p) == bfd.as_ref()
            });
            if same {
                if let Some(r) = self.sessions.get(name) {
                    r.routes.send_if_modified(|cur| {
                        let changed = cur != routes;
                        if changed {
                            cur.clone_from(routes);
                        }
                        changed
                    });
                }
                continue;
            }
            if let Some(old) = self.sessions.remove(name) {
                tracing::info!(peer = %name, "BGP peer changed: restarting its session");
                stop(old);
            }
            let bfd = bfd.and_then(|params| {
                let link = self.start_bfd(&wanted, params)?;
                wanted.bfd = Some(link.0);
                Some((params, link.1))
            });
            tracing::info!(peer = %name, address = %wanted.peer_address, bfd = bfd.is_some(), "starting BGP session");
            self.started.insert(name.clone());
            let (tx, rx) = watch::channel(routes.clone());
            let session = Session::spawn(wanted.clone(), rx);
            self.next_generation += 1;
            let generation = self.next_generation;
            self.watch_figures(&session, peer_label(&wanted), generation);
            self.sessions.insert(
                name.clone(),
                Running {
                    config: wanted,
                    routes: tx,
                    session: Some(session),
                    generation,
                    bfd,
                },
            );
        }

        // Statuses, metrics and Events of the Services.
        if plan.services != self.announced {
            for (key, was) in &self.announced {
                if plan.services.get(key).map(|a| &a.ips) != Some(&was.ips) {
                    for ip in &was.ips {
                        self.metrics.announced.remove(&self.labels(key, *ip));
                    }
                }
            }
            for (key, now) in &plan.services {
                if self
                    .announced
                    .get(key)
                    .is_some_and(|a| a.ips == now.ips && a.uid == now.uid)
                {
                    continue;
                }
                for ip in &now.ips {
                    self.metrics
                        .announced
                        .get_or_create(&self.labels(key, *ip))
                        .set(1);
                }
                let (ns, name) = key.split_once('/').unwrap_or(("", key));
                tracing::info!(service = %key, ips = ?now.ips, peers = ?now.peers, "announcing over BGP");
                self.events.publish(Pending {
                    regarding: service_reference(ns, name, &now.uid),
                    type_: Kind::Normal,
                    reason: "nodeAssigned",
                    note: format!(
                        "announcing from node {:?} with protocol {PROTOCOL:?}",
                        self.node
                    ),
                });
            }
            let statuses: DesiredStatuses = plan
                .services
                .iter()
                .map(|(k, a)| (k.clone(), a.peers.clone()))
                .collect();
            self.status_tx.send_replace(statuses);
            self.announced = plan.services;
        }
    }

    /// Starts the BFD session for a BGP session to `config`'s peer: the gate to give the BGP
    /// session and the task that feeds it (and `metallb_bfd_*`). `None` when BFD cannot run.
    fn start_bfd(&mut self, config: &PeerConfig, params: BfdParams) -> Option<(BfdGate, BfdLink)> {
        let manager = match self.bfd.get_or_insert_with(|| {
            BfdManager::new(ManagerConfig::default())
                .map(Arc::new)
                .map_err(|e| tracing::error!(error = %e, "BFD cannot start: BGP sessions run without it"))
        }) {
            Ok(m) => m.clone(),
            Err(()) => return None,
        };
        let (gate_tx, gate_rx) = watch::channel(false);
        let peer = BfdPeer {
            local: config.source_address,
            peer: config.peer_address,
            params,
        };
        let label = config.peer_address.to_string();
        self.next_generation += 1;
        let owner = BfdFiguresOwner {
            figures: self.metrics.bfd.clone(),
            generations: self.generations.clone(),
            key: format!("bfd {label}"),
            label,
            generation: self.next_generation,
        };
        if let Ok(mut g) = owner.generations.lock() {
            g.insert(owner.key.clone(), owner.generation);
        }
        let task = tokio::spawn(async move {
            let handle = match manager.add(peer).await {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(peer = %peer.peer, error = %e, "BFD session not started");
                    return;
                }
            };
            let mut up = handle.up();
            let counters = handle.counters();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let is_up = *up.borrow_and_update();
                gate_tx.send_replace(is_up);
                owner.set(bfd_figures(is_up, &counters));
                tokio::select! {
                    changed = up.changed() => if changed.is_err() { break },
                    _ = tick.tick() => {}
                }
            }
        });
        Some((BfdGate(gate_rx), BfdLink(task)))
    }

    fn labels(&self, key: &str, ip: IpAddr) -> AnnouncedLabels {
        AnnouncedLabels {
            service: key.to_string(),
            protocol: PROTOCOL.into(),
            node: self.node.clone(),
            ip: ip.to_string(),
        }
    }

    /// Keeps `metallb_bgp_*{peer=label}` equal to the session's figures while it runs.
    fn watch_figures(&self, session: &Session, label: String, generation: u64) {
        let mut status = session.status();
        let stats = session.stats();
        let figures = self.metrics.bgp.clone();
        let generations = self.generations.clone();
        if let Ok(mut g) = generations.lock() {
            g.insert(label.clone(), generation);
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let current = generations
                    .lock()
                    .map(|g| g.get(&label) == Some(&generation))
                    .unwrap_or(false);
                if !current {
                    return;
                }
                let s = status.borrow_and_update().clone();
                let f = BgpPeerFigures {
                    session_up: s.state == State::Established,
                    updates_sent: SessionStats::get(&stats.updates_sent),
                    announced_prefixes: s.announced as u64,
                    pending_prefixes: s.pending as u64,
                };
                if let Ok(mut m) = figures.lock() {
                    m.insert(label.clone(), f);
                }
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { break },
                    _ = tick.tick() => {}
                }
            }
            // The session ended: its figures go, unless a successor took the label.
            if let (Ok(g), Ok(mut m)) = (generations.lock(), figures.lock())
                && g.get(&label) == Some(&generation)
            {
                m.remove(&label);
            }
        });
    }

    /// Stops every session (sending Cease), for shutdown.
    pub async fn stop_all(&mut self) {
        let sessions = std::mem::take(&mut self.sessions);
        for (_, mut r) in sessions {
            if let Some(s) = r.session.take() {
                s.stop().await;
            }
        }
    }

    /// The generation of each running session (for tests).
    pub fn generations(&self) -> BTreeMap<String, u64> {
        self.sessions
            .iter()
            .map(|(k, r)| (k.clone(), r.generation))
            .collect()
    }
}

/// Whether a running session started with `running` can stand for `wanted` (the R bit of
/// graceful restart is only for the first session, so it does not count; BFD is compared by
/// its parameters, not by its gate).
fn same_session(running: &PeerConfig, wanted: &PeerConfig) -> bool {
    let mut a = running.clone();
    let mut b = wanted.clone();
    for c in [&mut a, &mut b] {
        if let Some(gr) = c.fsm.graceful_restart.as_mut() {
            gr.restarting = false;
        }
        c.bfd = None;
    }
    a == b
}

/// Writes one BFD session's figures while its task runs and removes them when it ends
/// (aborted included), unless a successor session took the label meanwhile.
struct BfdFiguresOwner {
    figures: Arc<Mutex<BTreeMap<String, BfdPeerFigures>>>,
    generations: Arc<Mutex<BTreeMap<String, u64>>>,
    key: String,
    label: String,
    generation: u64,
}

impl BfdFiguresOwner {
    fn current(&self) -> bool {
        self.generations
            .lock()
            .map(|g| g.get(&self.key) == Some(&self.generation))
            .unwrap_or(false)
    }

    fn set(&self, f: BfdPeerFigures) {
        if self.current()
            && let Ok(mut m) = self.figures.lock()
        {
            m.insert(self.label.clone(), f);
        }
    }
}

impl Drop for BfdFiguresOwner {
    fn drop(&mut self) {
        if self.current()
            && let Ok(mut m) = self.figures.lock()
        {
            m.remove(&self.label);
        }
    }
}

fn bfd_figures(up: bool, c: &BfdCounters) -> BfdPeerFigures {
    BfdPeerFigures {
        session_up: up,
        control_packet_input: BfdCounters::get(&c.control_packet_input),
        control_packet_output: BfdCounters::get(&c.control_packet_output),
        echo_packet_input: BfdCounters::get(&c.echo_packet_input),
        echo_packet_output: BfdCounters::get(&c.echo_packet_output),
        session_up_events: BfdCounters::get(&c.session_up_events),
        session_down_events: BfdCounters::get(&c.session_down_events),
    }
}

/// Stops a session in the background (Cease NOTIFICATION, then close).
fn stop(mut r: Running) {
    if let Some(s) = r.session.take() {
        tokio::spawn(s.stop());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_validated_profile_becomes_the_session_parameters() {
        let profile = BfdProfile {
            name: "b".into(),
            receive_interval: 100,
            transmit_interval: 200,
            detect_multiplier: 5,
            echo_interval: 20,
            echo_mode: false,
            passive_mode: true,
            minimum_ttl: 10,
        };
        let p = bfd_params(&profile);
        assert_eq!(p.required_min_rx, Duration::from_millis(100));
        assert_eq!(p.desired_min_tx, Duration::from_millis(200));
        assert_eq!((p.detect_mult, p.passive, p.minimum_ttl), (5, true, 10));
        assert_eq!(p.echo_interval, None, "echoInterval without echoMode");
        let echo = bfd_params(&BfdProfile {
            echo_mode: true,
            ..profile
        });
        assert_eq!(echo.echo_interval, Some(Duration::from_millis(20)));
    }

    fn peer(addr: &str) -> Peer {
        Peer {
            name: "p".into(),
            my_asn: 64513,
            peer_asn: PeerAsn::Fixed(64512),
            target: PeerTarget::Address(addr.parse().unwrap()),
            port: 179,
            source_address: None,
            hold_time: Duration::from_secs(90),
            keepalive_time: Duration::from_secs(30),
            connect_time: None,
            router_id: None,
            node_selectors: Vec::new(),
            password: None,
            bfd_profile: None,
            graceful_restart: false,
            ebgp_multihop: false,
            vrf: None,
            dual_stack_address_family: false,
        }
    }

    fn ips() -> Vec<IpAddr> {
        vec!["10.0.0.231".parse().unwrap(), "fd10::231".parse().unwrap()]
    }

    #[test]
    fn peer_config_follows_the_peer() {
        let mut p = peer("10.0.0.1");
        p.port = 1790;
        p.hold_time = Duration::from_secs(9);
        p.keepalive_time = Duration::from_secs(3);
        p.connect_time = Some(Duration::from_secs(5));
        p.password = Some("pw".into());
        p.ebgp_multihop = true;
        p.graceful_restart = true;
        let c = peer_config(&p, "node1", &ips(), true).unwrap();
        assert_eq!(c.peer_address, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(c.peer_port, 1790);
        assert_eq!(c.fsm.local_as, 64513);
        assert_eq!(c.fsm.peer_as, PeerAs::Fixed(64512));
        assert_eq!(c.fsm.router_id, "10.0.0.231".parse::<Ipv4Addr>().unwrap());
        assert_eq!(c.fsm.hold_time, 9);
        assert_eq!(c.fsm.keepalive_time, Some(3));
        assert_eq!(c.fsm.connect_time, Duration::from_secs(5));
        assert_eq!(c.fsm.families, vec![Family::IPV4_UNICAST]);
        assert_eq!(
            c.fsm.graceful_restart,
            Some(GracefulRestartConfig {
                restart_time: RESTART_TIME,
                restarting: true
            })
        );
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert!(c.ebgp_multihop);
        assert_eq!(c.ipv6_next_hop, None);
        assert_eq!(peer_label(&c), "10.0.0.1:1790");
    }

    #[test]
    fn dual_stack_carries_both_families_with_the_nodes_other_address() {
        let mut p = peer("10.0.0.1");
        p.dual_stack_address_family = true;
        let c = peer_config(&p, "node1", &ips(), false).unwrap();
        assert_eq!(
            c.fsm.families,
            vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        );
        assert_eq!(c.ipv6_next_hop, Some("fd10::231".parse().unwrap()));
        assert_eq!(c.ipv4_next_hop, None);
        let mut p6 = peer("fd10::1");
        p6.dual_stack_address_family = true;
        let c = peer_config(&p6, "node1", &ips(), false).unwrap();
        assert_eq!(c.ipv4_next_hop, Some("10.0.0.231".parse().unwrap()));
        let c = peer_config(&peer("fd10::1"), "node1", &ips(), false).unwrap();
        assert_eq!(c.fsm.families, vec![Family::IPV6_UNICAST]);
        assert_eq!(peer_label(&c), "[fd10::1]:179");
    }

    #[test]
    fn router_id_prefers_the_peer_setting_then_the_node() {
        let mut p = peer("fd10::1");
        assert_eq!(
            peer_config(&p, "n", &[], false).unwrap().fsm.router_id,
            fallback_router_id("n")
        );
        assert_ne!(fallback_router_id("n"), fallback_router_id("m"));
        p.router_id = Some("1.2.3.4".parse().unwrap());
        assert_eq!(
            peer_config(&p, "n", &ips(), false).unwrap().fsm.router_id,
            "1.2.3.4".parse::<Ipv4Addr>().unwrap()
        );
        let mut u = peer("10.0.0.1");
        u.target = PeerTarget::Interface("eth0".into());
        assert!(peer_config(&u, "n", &ips(), false).is_none());
    }

    /// The validated config of one BGPPeer (v1beta2 spec as JSON), with the speaker's features.
    fn config_of_peer(spec: serde_json::Value) -> Config {
        let peer: ironlb_api::v1beta2::BgpPeer = serde_json::from_value(serde_json::json!({
            "apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "p", "namespace": "metallb-system"},
            "spec": spec,
        }))
        .unwrap();
        let objects = ironlb_config::Objects {
            peers: vec![peer],
            ..ironlb_config::Objects::default()
        };
        let ctx = ironlb_config::Context {
            features: crate::features(),
            ..ironlb_config::Context::default()
        };
        ironlb_config::build(&objects, &ctx).unwrap()
    }

    #[test]
    fn local_asn_is_the_sessions_as_in_the_open_and_the_ebgp_decision() {
        use ironlb_bgp::packet::DecodeContext;
        use ironlb_bgp::packet::message::Message;
        use ironlb_bgp::session::fsm::Fsm;
        // localASN 64600 towards a router in 64512: the OPEN says 64600, not myASN 64513.
        let c = config_of_peer(serde_json::json!({
            "myASN": 64513, "localASN": 64600, "peerASN": 64512, "peerAddress": "10.0.0.1",
        }));
        let cfg = peer_config(&c.peers[0], "node1", &ips(), false).unwrap();
        assert_eq!(cfg.fsm.local_as, 64600);
        let open = Fsm::new(cfg.fsm.clone()).open_message();
        assert_eq!((open.my_as, open.asn()), (64600, 64600));
        let bytes = Message::Open(open).encode(&DecodeContext::default());
        // Version 4, then My Autonomous System 0xfc58 = 64600.
        assert_eq!(bytes[19..22], [4, 0xfc, 0x58]);
        // A 4-octet localASN: AS_TRANS in My AS, the real one in the capability.
        let c = config_of_peer(serde_json::json!({
            "myASN": 64513, "localASN": 4_200_000_001u32, "peerASN": 64512,
            "peerAddress": "10.0.0.1",
        }));
        let cfg = peer_config(&c.peers[0], "node1", &ips(), false).unwrap();
        let open = Fsm::new(cfg.fsm).open_message();
        assert_eq!((open.my_as, open.asn()), (23456, 4_200_000_001));
        // localASN equal to the peer's AS makes the session iBGP, whatever myASN says: the
        // peer's OPEN negotiates as internal.
        let c = config_of_peer(serde_json::json!({
            "myASN": 64513, "localASN": 64512, "peerASN": 64512, "peerAddress": "10.0.0.1",
        }));
        let cfg = peer_config(&c.peers[0], "node1", &ips(), false).unwrap();
        let fsm = Fsm::new(cfg.fsm);
        let theirs = ironlb_bgp::packet::message::OpenMessage::new(
            64512,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![ironlb_bgp::packet::capability::Capability::Multiprotocol(
                Family::IPV4_UNICAST,
            )],
        );
        assert!(!fsm.negotiate(&theirs).unwrap().ebgp);
        // Without localASN, myASN as before.
        let c = config_of_peer(serde_json::json!({
            "myASN": 64513, "peerASN": 64512, "peerAddress": "10.0.0.1",
        }));
        let cfg = peer_config(&c.peers[0], "node1", &ips(), false).unwrap();
        assert_eq!(cfg.fsm.local_as, 64513);
        assert!(Fsm::new(cfg.fsm).negotiate(&theirs).unwrap().ebgp);
    }

    #[test]
    fn restart_bit_alone_does_not_respawn_a_session() {
        let mut p = peer("10.0.0.1");
        p.graceful_restart = true;
        let first = peer_config(&p, "n", &ips(), true).unwrap();
        let later = peer_config(&p, "n", &ips(), false).unwrap();
        assert!(same_session(&first, &later));
        p.hold_time = Duration::from_secs(30);
        let changed = peer_config(&p, "n", &ips(), false).unwrap();
        assert!(!same_session(&first, &changed));
    }
}
