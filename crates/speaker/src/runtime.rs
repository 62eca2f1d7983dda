//! The wiring: watches, membership, responder, status writer, events, metrics, HTTP.

use crate::args::Args;
use crate::metrics::{AnnouncedLabels, SpeakerMetrics, render};
use crate::state::{
    Assignment, Isolation, Owned, SliceInfo, SpeakerState, announcements, assignments_changed,
    hold_back, moved_away, node_info,
};
use crate::status::{DesiredStatuses, StatusWriter};
use anyhow::{Context as _, Result};
use futures::StreamExt;
use ironlb_config::Context;
use ironlb_k8s::events::{EventSink, Kind, Pending, service_reference};
use ironlb_k8s::stores::STORE_COUNT;
use ironlb_k8s::{Change, ConfigStores, ServiceInfo};
use ironlb_l2::owner::Settings;
use ironlb_l2::responder::{self, Announcements, Conflict, ResponderConfig};
use ironlb_membership::{DesiredMembers, Membership, MembershipConfig};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// The Event reporter MetalLB's speaker uses.
const REPORTER: &str = "metallb-speaker";
/// The `protocol` of MetalLB's `nodeAssigned` Event and `metallb_speaker_announced`.
const PROTOCOL: &str = "layer2";
/// Up to this many announcement changes at once are logged one line per Service at info level;
/// more are one summary line naming the first few.
const LOG_EACH_UP_TO: usize = 20;
const SUMMARY_NAMES: usize = 5;

/// Reads the memberlist key: `path` is the mounted Secret (a directory with `secretkey`) or the
/// key file itself.
fn read_key(path: &Path) -> Result<Vec<u8>> {
    let file = if path.is_dir() {
        path.join("secretkey")
    } else {
        path.to_path_buf()
    };
    let key = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let trimmed: Vec<u8> = key.strip_suffix(b"\n").map(<[u8]>::to_vec).unwrap_or(key);
    anyhow::ensure!(!trimmed.is_empty(), "{} is empty", file.display());
    Ok(trimmed)
}

/// The InternalIPs of a Node, in order (the membership's and BGP's source addresses).
pub(crate) fn internal_ips(node: &Node) -> Vec<IpAddr> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

/// The speaker Pod as an owner reference, if `--pod-name` names an existing Pod.
async fn pod_owner(client: &Client, args: &Args) -> Option<OwnerReference> {
    let name = args.pod_name.as_ref()?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
    match pods.get_opt(name).await {
        Ok(Some(pod)) => Some(OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: name.clone(),
            uid: pod.metadata.uid?,
            ..Default::default()
        }),
        Ok(None) => {
            tracing::warn!(pod = %name, "speaker Pod not found: ServiceL2Status objects get no owner");
            None
        }
        Err(e) => {
            tracing::warn!(pod = %name, error = %e, "cannot read the speaker Pod");
            None
        }
    }
}

/// Keeps `tx` equal to who should be a member: the speaker Pods matching `--ml-labels` (their
/// node and Pod IP), or else every Node at its InternalIP, in the family of `bind`.
fn spawn_desired_members(
    client: Client,
    args: &Args,
    bind: SocketAddr,
    tx: watch::Sender<DesiredMembers>,
) {
    let port = args.ml_bindport;
    let v4 = bind.is_ipv4();
    let pick = move |ips: Vec<IpAddr>| ips.into_iter().find(|ip| ip.is_ipv4() == v4);
    match args.ml_labels.clone() {
        Some(labels) => {
            let api: Api<Pod> = Api::namespaced(client, &args.namespace);
            let (store, writer) = reflector::store();
            let stream = reflector(
                writer,
                watcher(api, watcher::Config::default().labels(&labels)),
            )
            .default_backoff();
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(ev) = stream.next().await {
                    if let Err(e) = ev {
                        tracing::warn!(error = %e, "speaker pod watch");
                        continue;
                    }
                    let mut want = DesiredMembers::new();
                    for pod in store.state() {
                        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                            continue;
                        };
                        let status = pod.status.clone().unwrap_or_default();
                        if pod.metadata.deletion_timestamp.is_some()
                            || status.phase.as_deref() != Some("Running")
                        {
                            continue;
                        }
                        let ips: Vec<IpAddr> = status
                            .pod_ips
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p.ip.parse().ok())
                            .chain(status.pod_ip.and_then(|p| p.parse().ok()))
                            .collect();
                        if let Some(ip) = pick(ips) {
                            want.insert(node, SocketAddr::new(ip, port));
                        }
                    }
                    tx.send_if_modified(|cur| {
                        let changed = *cur != want;
                        *cur = want;
                        changed
                    });
                }
            });
        }
        None => {
            let api: Api<Node> = Api::all(client);
            let (store, writer) = reflector::store();
            let stream =
                reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(ev) = stream.next().await {
                    if let Err(e) = ev {
                        tracing::warn!(error = %e, "node watch (membership)");
                        continue;
                    }
                    let want: DesiredMembers = store
                        .state()
                        .iter()
                        .filter_map(|n| {
                            let name = n.metadata.name.clone()?;
                            Some((name, SocketAddr::new(pick(internal_ips(n))?, port)))
                        })
                        .collect();
                    tx.send_if_modified(|cur| {
                        let changed = *cur != want;
                        *cur = want;
                        changed
                    });
                }
            });
        }
    }
}

/// The interfaces the responder uses now (eligible by its rules).
fn eligible_interfaces(config: &ResponderConfig) -> Vec<String> {
    match ironlb_sys::link::interfaces() {
        Ok(list) => list
            .iter()
            .filter(|i| responder::eligible(i, config).is_ok())
            .map(|i| i.name.clone())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "listing interfaces");
            Vec::new()
        }
    }
}

/// Runs the speaker until SIGTERM / Ctrl-C; on SIGTERM it leaves the membership gracefully.
pub async fn run(args: Args) -> Result<()> {
    ironlb_k8s::runtime::init_logging(&args.log_level, args.log_format());
    let client = ironlb_k8s::runtime::client(args.kubeconfig.as_deref()).await?;
    let metrics = SpeakerMetrics::new();
    let http = {
        let metrics = metrics.clone();
        ironlb_k8s::runtime::serve_http(ironlb_k8s::runtime::HttpServer {
            host: args.host.clone(),
            port: args.port,
            health_port: None,
            // The kubelet's readiness probe asks /healthz; /readyz answers like it.
            ready: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
            render: move || render(&metrics),
        })
        .await?
    };
    let owner = pod_owner(&client, &args).await;

    // Membership (only with a key).
    let membership = match &args.ml_secret_key_path {
        Some(path) => {
            let secret = read_key(path)?;
            let bind_ip = match args.ml_bindaddr {
                Some(ip) => ip,
                None => {
                    let nodes: Api<Node> = Api::all(client.clone());
                    let node = nodes
                        .get(&args.node_name)
                        .await
                        .with_context(|| format!("reading Node {}", args.node_name))?;
                    *internal_ips(&node)
                        .first()
                        .context("the Node has no InternalIP: pass --ml-bindaddr")?
                }
            };
            let bind = SocketAddr::new(bind_ip, args.ml_bindport);
            let (desired_tx, desired_rx) = watch::channel(DesiredMembers::new());
            spawn_desired_members(client.clone(), &args, bind, desired_tx);
            let m = Membership::start(
                MembershipConfig {
                    node_name: args.node_name.clone(),
                    bind,
                    secret,
                    settings: args.membership_settings(),
                },
                desired_rx.clone(),
            )
            .await?;
            tracing::info!(%bind, "membership started");
            Some((m, desired_rx))
        }
        None => {
            tracing::info!("no --ml-secret-key-path: no membership, every Node counts as live");
            None
        }
    };

    // Responder.
    let mut rconfig = ResponderConfig {
        gratuitous_count: args.gratuitous_count,
        gratuitous_interval: Duration::from_millis(args.gratuitous_interval_ms),
        periodic_interval: args.periodic_gratuitous(),
        ..ResponderConfig::default()
    };
    rconfig.exclude_interfaces.extend(
        args.interfaces_exclude
            .iter()
            .filter(|s| !s.is_empty())
            .cloned(),
    );
    let (ann_tx, ann_rx) = watch::channel(Announcements::new());
    let (conflict_tx, conflict_rx) = mpsc::channel(256);
    {
        let rconfig = rconfig.clone();
        let counters = metrics.responder.clone();
        tokio::spawn(async move {
            if let Err(e) = responder::run(rconfig, ann_rx, counters, conflict_tx).await {
                tracing::error!(error = %e, "responder stopped");
            }
        });
    }

    let bgp = crate::bgp_runtime::BgpSpeaker::start(&client, &args, owner.clone(), &metrics).await;
    // ServiceL2Status writer.
    let (status_tx, status_rx) = watch::channel(DesiredStatuses::new());
    let (relist_tx, relist_rx) = watch::channel(());
    tokio::spawn(
        StatusWriter {
            client: client.clone(),
            namespace: args.namespace.clone(),
            node: args.node_name.clone(),
            owner,
            metrics: metrics.k8s.clone(),
        }
        .run_with_relist(status_rx, relist_rx),
    );

    let events = EventSink::spawn(client.clone(), REPORTER, 10_000, 4);
    let (live, desired, membership) = match membership {
        Some((m, d)) => (Some(m.live()), Some(d), Some(m)),
        None => (None, None, None),
    };
    let speaker = Speaker {
        client: client.clone(),
        args: args.clone(),
        metrics: metrics.clone(),
        rconfig,
        events,
        ann_tx,
        status_tx,
        state: SpeakerState::new(
            &args.node_name,
            args.lb_class.clone(),
            Settings {
                ignore_exclude_lb: args.ignore_exclude_lb,
            },
        ),
        owned: BTreeMap::new(),
        assigned: BTreeMap::new(),
        failed_reported: HashSet::new(),
        bgp,
        isolation: Isolation::new(Duration::from_millis(args.sole_survivor_after_ms)),
        holding: false,
        last_live: BTreeSet::new(),
        departed: Vec::new(),
        relist_tx,
    };
    let membership_stats = metrics.membership.clone();
    let main = speaker.run(
        live,
        desired,
        conflict_rx,
        membership.as_ref(),
        membership_stats,
    );
    tokio::select! {
        r = main => r?,
        r = http => r?,
        _ = ironlb_k8s::shutdown_signal() => {
            tracing::info!("shutting down");
            if let Some(m) = membership {
                // Peers drop us at once instead of probing us dead.
                let _ = tokio::time::timeout(Duration::from_secs(1), m.leave()).await;
            }
        }
    }
    Ok(())
}

struct Speaker {
    client: Client,
    args: Args,
    metrics: SpeakerMetrics,
    rconfig: ResponderConfig,
    events: EventSink,
    ann_tx: watch::Sender<Announcements>,
    status_tx: watch::Sender<DesiredStatuses>,
    state: SpeakerState,
    owned: BTreeMap<String, Owned>,
    /// What the last `nodeAssigned` / `announceFailed` Event of each owned Service said.
    assigned: BTreeMap<String, Assignment>,
    failed_reported: HashSet<String>,
    bgp: crate::bgp_runtime::BgpSpeaker,
    /// No live peer: take over nothing new (see `Isolation`).
    isolation: Isolation,
    /// Whether the last decision held new addresses back.
    holding: bool,
    /// The live members last seen.
    last_live: BTreeSet<String>,
    /// Members that stopped being live (Unix seconds), whose ServiceL2Status objects to clean.
    departed: Vec<(String, i64)>,
    /// Asks the status writer to re-read what exists (a peer came back).
    relist_tx: watch::Sender<()>,
}

/// (other members Kubernetes wants, how many of them are live); (0, 0) without membership.
fn peer_counts(
    me: &str,
    live: Option<&watch::Receiver<BTreeSet<String>>>,
    desired: Option<&watch::Receiver<DesiredMembers>>,
) -> (usize, usize) {
    let (Some(live), Some(desired)) = (live, desired) else {
        return (0, 0);
    };
    let live = live.borrow();
    let desired = desired.borrow();
    let peers = desired.keys().filter(|n| *n != me);
    let live_peers = peers.clone().filter(|n| live.contains(*n)).count();
    (peers.count(), live_peers)
}

fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Relist bookkeeping for one watched kind: keys seen during a re-list.
type Relist = Option<BTreeSet<String>>;

impl Speaker {
    #[allow(clippy::too_many_lines)]
    async fn run(
        mut self,
        mut live: Option<watch::Receiver<BTreeSet<String>>>,
        desired: Option<watch::Receiver<DesiredMembers>>,
        mut conflicts: mpsc::Receiver<Conflict>,
        membership: Option<&Membership>,
        membership_stats: std::sync::Arc<std::sync::Mutex<Option<ironlb_membership::Stats>>>,
    ) -> Result<()> {
        let (tx, mut changes) = mpsc::channel(4096);
        let stores = ConfigStores::spawn(&self.client, &self.args.namespace, tx);
        let ctx = Context {
            namespace: self.args.namespace.clone(),
            features: crate::features(),
        };
        let mut services = std::pin::pin!(
            watcher(
                Api::<Service>::all(self.client.clone()),
                watcher::Config::default().page_size(500)
            )
            .default_backoff()
        );
        let mut slices = std::pin::pin!(
            watcher(
                Api::<EndpointSlice>::all(self.client.clone()),
                watcher::Config::default().page_size(500)
            )
            .default_backoff()
        );
        let mut nodes = std::pin::pin!(
            watcher(
                Api::<Node>::all(self.client.clone()),
                watcher::Config::default()
            )
            .default_backoff()
        );
        let mut synced_stores: HashSet<&'static str> = HashSet::new();
        let (mut svc_synced, mut slices_synced, mut nodes_synced) = (false, false, false);
        let (mut svc_relist, mut slice_relist, mut node_relist): (Relist, Relist, Relist) =
            (None, None, None);
        let mut config_dirty = true;
        let mut follower = ironlb_k8s::runtime::ConfigFollower::new(
            self.client.clone(),
            &self.args.namespace,
            &format!("speaker-{}", self.args.node_name),
            self.events.clone(),
            self.metrics.k8s.clone(),
        );
        let join_deadline = Instant::now() + Duration::from_millis(self.args.join_wait_ms);
        let mut joined = live.is_none();
        let mut ready = false;
        let mut dirty = false;
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stats_tick = tokio::time::interval(Duration::from_secs(1));
        if let Some(l) = live.as_mut() {
            self.last_live = l.borrow_and_update().clone();
            self.state.set_live(Some(self.last_live.clone()));
        }
        let mut isolation_checked = Instant::now();
        // Changes from the watches are published at most this often: a publish is O(Services
        // this node owns), so under a stream of events (thousands of Services being created)
        // it may take at most a quarter of the time. Membership changes never wait.
        let mut calm_until = Instant::now();
        // Freed heap is handed back to the kernel at most every 5 s, after changes: glibc
        // keeps what watch events and publishes freed (see ironlb_sys::memory).
        let (mut trim_due, mut last_trim) = (false, Instant::now());

        loop {
            // Membership changes are applied at once: they are what failover waits for.
            let mut urgent = false;
            tokio::select! {
                ev = services.next() => match ev {
                    Some(Ok(watcher::Event::Init)) => svc_relist = Some(BTreeSet::new()),
                    Some(Ok(watcher::Event::InitApply(svc))) => {
                        let info = ServiceInfo::from_service(&svc);
                        if let Some(seen) = svc_relist.as_mut() { seen.insert(info.key.to_string()); }
                        self.state.upsert_service(info);
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(seen) = svc_relist.take() {
                            for key in self.state.service_keys() {
                                if !seen.contains(&key) { self.state.remove_service(&key); }
                            }
                        }
                        svc_synced = true;
                        dirty = true;
                    }
                    Some(Ok(watcher::Event::Apply(svc))) => {
                        self.state.upsert_service(ServiceInfo::from_service(&svc));
                        dirty = true;
                    }
                    Some(Ok(watcher::Event::Delete(svc))) => {
                        self.state.remove_service(&ServiceInfo::from_service(&svc).key.to_string());
                        dirty = true;
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "service watch failed; retrying"),
                    None => anyhow::bail!("service watch ended"),
                },
                ev = slices.next() => match ev {
                    Some(Ok(watcher::Event::Init)) => slice_relist = Some(BTreeSet::new()),
                    Some(Ok(watcher::Event::InitApply(s))) => {
                        if let Some((key, info)) = SliceInfo::from_slice(&s) {
                            if let Some(seen) = slice_relist.as_mut() { seen.insert(key.clone()); }
                            self.state.upsert_slice(&key, info);
                        }
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(seen) = slice_relist.take() {
                            self.state.retain_slices(|k| seen.contains(k));
                        }
                        slices_synced = true;
                        dirty = true;
                    }
                    Some(Ok(watcher::Event::Apply(s))) => {
                        if let Some((key, info)) = SliceInfo::from_slice(&s) {
                            self.state.upsert_slice(&key, info);
                            dirty = true;
                        }
                    }
                    Some(Ok(watcher::Event::Delete(s))) => {
                        let key = format!(
                            "{}/{}",
                            s.metadata.namespace.clone().unwrap_or_default(),
                            s.metadata.name.clone().unwrap_or_default()
                        );
                        self.state.remove_slice(&key);
                        dirty = true;
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "endpointslice watch failed; retrying"),
                    None => anyhow::bail!("endpointslice watch ended"),
                },
                ev = nodes.next() => match ev {
                    Some(Ok(watcher::Event::Init)) => node_relist = Some(BTreeSet::new()),
                    Some(Ok(watcher::Event::InitApply(n))) => {
                        let name = n.metadata.name.clone().unwrap_or_default();
                        if let Some(seen) = node_relist.as_mut() { seen.insert(name.clone()); }
                        self.state.upsert_node(&name, node_info(&n));
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(seen) = node_relist.take() {
                            self.state.retain_nodes(|n| seen.contains(n));
                        }
                        nodes_synced = true;
                        dirty = true;
                        config_dirty = true;
                    }
                    Some(Ok(watcher::Event::Apply(n))) => {
                        let name = n.metadata.name.clone().unwrap_or_default();
                        let info = node_info(&n);
                        // Which advertisements conflict depends on the Nodes' labels: rebuild
                        // only when this Node's changed (not on every status heartbeat).
                        config_dirty |= nodes_synced
                            && self.state.node_info(&name).is_none_or(|old| old.labels != info.labels);
                        self.state.upsert_node(&name, info);
                        dirty = true;
                    }
                    Some(Ok(watcher::Event::Delete(n))) => {
                        self.state.remove_node(&n.metadata.name.clone().unwrap_or_default());
                        config_dirty = true;
                        dirty = true;
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "node watch failed; retrying"),
                    None => anyhow::bail!("node watch ended"),
                },
                ch = changes.recv() => match ch {
                    Some(Change::Synced(kind)) => { synced_stores.insert(kind); }
                    Some(Change::Config) => config_dirty = true,
                    Some(_) => {}
                    None => anyhow::bail!("configuration watches ended"),
                },
                changed = async { match live.as_mut() { Some(l) => l.changed().await, None => futures::future::pending().await } } => {
                    if changed.is_err() { anyhow::bail!("membership stopped"); }
                    if let Some(l) = live.as_mut() {
                        let set = l.borrow_and_update().clone();
                        tracing::info!(live = ?set, "live speakers changed");
                        let now = unix_seconds();
                        self.departed.extend(self.last_live.difference(&set).map(|n| (n.clone(), now)));
                        if set.difference(&self.last_live).next().is_some() {
                            self.relist_tx.send_replace(());
                        }
                        self.last_live = set.clone();
                        self.state.set_live(Some(set));
                    }
                    urgent = true;
                    dirty = true;
                }
                Some(c) = conflicts.recv() => self.report_conflict(&c),
                _ = stats_tick.tick() => {
                    if let (Some(m), Ok(mut s)) = (membership, membership_stats.lock()) {
                        *s = Some(m.stats());
                    }
                    if trim_due && last_trim.elapsed() >= Duration::from_secs(5) {
                        trim_due = false;
                        last_trim = Instant::now();
                        let released = ironlb_sys::memory::release_free_heap();
                        tracing::debug!(released, took = ?last_trim.elapsed(), "free heap handed back to the kernel");
                    }
                }
                _ = tick.tick() => {
                    // Isolated: decide again now and then (links may come back, the hold may end).
                    if self.isolation.is_isolated() && isolation_checked.elapsed() >= Duration::from_millis(250) {
                        isolation_checked = Instant::now();
                        dirty = true;
                    }
                    if config_dirty && synced_stores.len() == STORE_COUNT {
                        config_dirty = false;
                        let mut objects = stores.objects();
                        objects.nodes = nodes_synced.then(|| self.state.node_labels());
                        if let Some(config) = follower.load(&objects, &ctx, self.state.config().is_some())
                            && self.state.config() != Some(&config)
                        {
                            self.state.set_config(config);
                            dirty = true;
                        }
                    }
                    if !joined {
                        let all_live = match (&live, &desired) {
                            (Some(l), Some(d)) => {
                                let l = l.borrow();
                                let d = d.borrow();
                                !d.is_empty() && d.keys().all(|n| l.contains(n))
                            }
                            _ => true,
                        };
                        if all_live || Instant::now() >= join_deadline {
                            joined = true;
                            dirty = true;
                            tracing::info!(all_live, "membership joined");
                        }
                    }
                    if !ready && joined && svc_synced && slices_synced && nodes_synced
                        && self.state.config().is_some()
                    {
                        ready = true;
                        dirty = true;
                        tracing::info!("synced: announcing");
                    }
                    urgent = dirty && Instant::now() >= calm_until;
                }
            }
            if ready && urgent && dirty {
                dirty = false;
                let started = Instant::now();
                let (peers, live_peers) =
                    peer_counts(&self.args.node_name, live.as_ref(), desired.as_ref());
                self.publish(peers, live_peers);
                self.clean_up_after_departures();
                calm_until = Instant::now() + started.elapsed() * 3;
                trim_due = true;
            }
        }
    }

    /// Computes what this node owns and hands the differences to the responder, the status
    /// writer, the metrics and the Event sink.
    fn publish(&mut self, peers: usize, live_peers: usize) {
        self.bgp.update(&self.state);
        let now = Instant::now();
        let eligible = eligible_interfaces(&self.rconfig);
        self.isolation
            .update(now, peers, live_peers, !eligible.is_empty());
        let mut owned = self.state.owned();
        let holding = self.isolation.holding(now);
        if holding != self.holding {
            self.holding = holding;
            if holding {
                tracing::warn!(
                    peers,
                    "no live peer (isolated): taking over no new address until a peer is back, or this node has been the sole survivor with a usable interface for --sole-survivor-after-ms"
                );
            } else {
                tracing::info!(live_peers, "no longer holding back addresses");
            }
        }
        if holding {
            owned = hold_back(owned, &self.owned);
        }
        if owned != self.owned {
            let ann = announcements(&owned);
            self.ann_tx.send_if_modified(|cur| {
                let changed = *cur != ann;
                *cur = ann;
                changed
            });
            let node = self.args.node_name.clone();
            let lost = moved_away(&self.owned, &owned);
            let started = moved_away(&owned, &self.owned);
            // A few changes are logged one line per Service, as MetalLB does; a mass move
            // (a node joined or left at scale) is one summary line, with the details at debug.
            let log_each = lost.len() + started.len() <= LOG_EACH_UP_TO;
            for &key in &lost {
                for ip in self.owned.get(key).map(|o| &o.ips[..]).unwrap_or_default() {
                    self.metrics.announced.remove(&AnnouncedLabels {
                        service: key.clone(),
                        protocol: PROTOCOL.into(),
                        node: node.clone(),
                        ip: ip.to_string(),
                    });
                }
                if log_each {
                    tracing::info!(service = %key, "stopped announcing");
                } else {
                    tracing::debug!(service = %key, "stopped announcing");
                }
            }
            let mut statuses = DesiredStatuses::new();
            let mut assigned = BTreeMap::new();
            for (key, o) in &owned {
                let on: Vec<String> = eligible
                    .iter()
                    .filter(|i| o.interfaces.is_empty() || o.interfaces.contains(i))
                    .cloned()
                    .collect();
                // `started` is in key order, like `owned`.
                let gained = started.binary_search(&key).is_ok();
                if gained {
                    for ip in &o.ips {
                        self.metrics
                            .announced
                            .get_or_create(&AnnouncedLabels {
                                service: key.clone(),
                                protocol: PROTOCOL.into(),
                                node: node.clone(),
                                ip: ip.to_string(),
                            })
                            .set(1);
                    }
                    if log_each {
                        tracing::info!(service = %key, ips = ?o.ips, interfaces = ?on, "announcing");
                    } else {
                        tracing::debug!(service = %key, ips = ?o.ips, interfaces = ?on, "announcing");
                    }
                }
                assigned.insert(
                    key.clone(),
                    Assignment {
                        ips: o.ips.clone(),
                        uid: o.uid.clone(),
                        usable: !on.is_empty(),
                    },
                );
                statuses.insert(key.clone(), on);
            }
            // One Event per change of a Service's announcement, never for a republish.
            for (key, a) in assignments_changed(&self.assigned, &assigned) {
                let (ns, name) = key.split_once('/').unwrap_or(("", key));
                let regarding = service_reference(ns, name, &a.uid);
                self.events.publish(if a.usable {
                    Pending {
                        regarding,
                        type_: Kind::Normal,
                        reason: "nodeAssigned",
                        note: format!("announcing from node {node:?} with protocol {PROTOCOL:?}"),
                    }
                } else {
                    Pending {
                        regarding,
                        type_: Kind::Warning,
                        reason: "announceFailed",
                        note: format!(
                            "node {node:?} owns the address but has no usable interface among {:?}",
                            owned
                                .get(key)
                                .map(|o| &o.interfaces[..])
                                .unwrap_or_default()
                        ),
                    }
                });
            }
            self.assigned = assigned;
            if !log_each {
                tracing::info!(
                    started = started.len(),
                    stopped = lost.len(),
                    announcing = owned.len(),
                    first_started = ?started.iter().take(SUMMARY_NAMES).collect::<Vec<_>>(),
                    first_stopped = ?lost.iter().take(SUMMARY_NAMES).collect::<Vec<_>>(),
                    "announcements changed (one line per Service at debug level)"
                );
            }
            self.status_tx.send_replace(statuses);
            self.owned = owned;
        }
        self.report_unannounceable();
    }

    /// Deletes the ServiceL2Status objects that departed members left for the Services this
    /// node now owns (each Service has one owner among the live, so one speaker deletes each);
    /// the live speaker with the smallest name also deletes those of Services nobody owns.
    fn clean_up_after_departures(&mut self) {
        if self.departed.is_empty() {
            return;
        }
        let owned_here: BTreeSet<String> = self.owned.keys().cloned().collect();
        let has_owner: BTreeSet<String> = self
            .state
            .service_keys()
            .into_iter()
            .filter(|k| matches!(self.state.decision(k), Some(Ok(_))))
            .collect();
        let sweeper = self.last_live.first() == Some(&self.args.node_name);
        for (node, at) in std::mem::take(&mut self.departed) {
            let task = crate::status::delete_left_behind(
                self.client.clone(),
                self.args.namespace.clone(),
                node.clone(),
                at,
                owned_here.clone(),
                has_owner.clone(),
                sweeper,
            );
            tokio::spawn(async move {
                if let Err(e) = task.await {
                    tracing::warn!(%node, error = %e, "cleaning the ServiceL2Status objects of a departed node");
                }
            });
        }
    }

    /// `announceFailed` once per Service whose address lies in no pool.
    fn report_unannounceable(&mut self) {
        let failed: Vec<(String, Vec<IpAddr>)> = self
            .state
            .services()
            .filter_map(|(key, _)| {
                let bad = self.state.unannounceable(key);
                (!bad.is_empty()).then(|| (key.to_string(), bad))
            })
            .collect();
        let mut now_failed = HashSet::new();
        for (key, bad) in failed {
            if !self.failed_reported.contains(&key) {
                let (ns, name) = key.split_once('/').unwrap_or(("", &key));
                tracing::warn!(service = %key, ips = ?bad, "addresses in no pool: not announced");
                self.events.publish(Pending {
                    regarding: service_reference(ns, name, ""),
                    type_: Kind::Warning,
                    reason: "announceFailed",
                    note: format!("addresses {bad:?} are in no IPAddressPool: not announced"),
                });
            }
            now_failed.insert(key);
        }
        self.failed_reported = now_failed;
    }

    fn report_conflict(&self, c: &Conflict) {
        self.metrics.conflict(c.ip);
        let holders: Vec<(&String, &Owned)> = self
            .owned
            .iter()
            .filter(|(_, o)| o.ips.contains(&c.ip))
            .collect();
        tracing::warn!(ip = %c.ip, mac = %c.mac, interface = %c.interface, services = ?holders.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            "address conflict: another host claims an address this node announces; not fighting over it");
        for (key, o) in holders {
            let (ns, name) = key.split_once('/').unwrap_or(("", key));
            self.events.publish(Pending {
                regarding: service_reference(ns, name, &o.uid),
                type_: Kind::Warning,
                reason: "addressConflict",
                note: format!(
                    "another host ({}) answers for {} on {} of node {:?}",
                    c.mac, c.ip, c.interface, self.args.node_name
                ),
            });
        }
    }
}
