//! What this speaker announces, as a pure function of what Kubernetes and membership say.
//!
//! ```text
//!   Services (ironlb_k8s::ServiceInfo) --+
//!   EndpointSlices (SliceInfo) ----------+--> l2::ServiceInfo (pool from the first address) --+
//!   Config (pools, L2Advertisements) ----+                                                  |
//!   Node objects (NodeInfo) ----+                                                           v
//!   live members (or None) -----+--> effective nodes = Nodes ∩ live ------------>  l2::OwnerIndex
//!                                                                                           |
//!                      owned() / announcements(): the Services and addresses THIS node owns <-'
//! ```
//!
//! No I/O: the runtime feeds events in and reads decisions out, tests do the same by hand.
//! The owner itself is always [`ironlb_l2::select_owner`]'s answer (the index is property-tested
//! equal to it); this module only decides what goes *into* it.

use ironlb_config::{Config, L2Advertisement, LabelSelector, Pool};
use ironlb_l2::owner::{Decision, NodeInfo, OwnerIndex, Settings, applying_advertisements};
use ironlb_l2::responder::{Announce, Announcements};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

/// What one EndpointSlice says about its Service's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceInfo {
    /// The Service it belongs to (`namespace/name`, from `kubernetes.io/service-name`).
    pub service: String,
    /// Some endpoint is usable (ready unset or true, or serving).
    pub any_serving: bool,
    /// Nodes hosting a usable endpoint, sorted, without duplicates. A sorted `Vec` rather than
    /// a `BTreeSet`: a set with one name allocates a ~280-byte B-tree leaf, and every speaker
    /// keeps one slice per Service of the cluster.
    pub serving_nodes: Vec<String>,
}

impl SliceInfo {
    /// Reads a slice; `None` when it names no Service.
    pub fn from_slice(slice: &EndpointSlice) -> Option<(String, SliceInfo)> {
        let ns = slice.metadata.namespace.as_deref().unwrap_or_default();
        let name = slice.metadata.name.as_deref().unwrap_or_default();
        let service = slice
            .metadata
            .labels
            .as_ref()?
            .get("kubernetes.io/service-name")?;
        let mut info = SliceInfo {
            service: format!("{ns}/{service}"),
            ..Default::default()
        };
        for ep in &slice.endpoints {
            let c = ep.conditions.as_ref();
            // MetalLB: usable when ready is unset or true, or when serving.
            let usable =
                c.and_then(|c| c.ready).unwrap_or(true) || c.and_then(|c| c.serving) == Some(true);
            if !usable {
                continue;
            }
            info.any_serving = true;
            if let Some(node) = &ep.node_name {
                info.serving_nodes.push(node.clone());
            }
        }
        info.serving_nodes.sort_unstable();
        info.serving_nodes.dedup();
        info.serving_nodes.shrink_to_fit();
        Some((format!("{ns}/{name}"), info))
    }
}

/// What the speaker keeps of a Service it may announce: only what owner selection and BGP
/// planning read. Every speaker keeps one per LoadBalancer Service of the cluster, so this is
/// much smaller than an [`ironlb_k8s::ServiceInfo`] (ports, annotations, selector, families).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptService {
    /// `metadata.uid` (for Events).
    pub uid: Box<str>,
    /// `metadata.labels` (for `serviceSelectors`).
    pub labels: BTreeMap<String, String>,
    /// `status.loadBalancer.ingress[*].ip`; never empty.
    pub ips: Box<[IpAddr]>,
    /// `externalTrafficPolicy: Local`.
    pub traffic_policy_local: bool,
    /// A non-empty sharing key (`metallb.io/allow-shared-ip`).
    pub shares_address: bool,
}

impl KeptService {
    fn new(info: ironlb_k8s::ServiceInfo) -> Self {
        KeptService {
            uid: info.uid.into_boxed_str(),
            labels: info.labels,
            ips: info.status_ips.into_boxed_slice(),
            traffic_policy_local: info.traffic_policy_local,
            shares_address: !info.sharing_key.is_empty(),
        }
    }
}

/// The node label and condition view owner selection needs.
pub fn node_info(node: &Node) -> NodeInfo {
    NodeInfo {
        labels: node.metadata.labels.clone().unwrap_or_default(),
        network_unavailable: node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
            }),
    }
}

/// The pool whose ranges contain `ip` (MetalLB's speaker finds the pool by address, not by the
/// annotation).
pub fn pool_of(pools: &[Pool], ip: IpAddr) -> Option<&str> {
    pools
        .iter()
        .find(|p| p.ranges.iter().any(|r| r.contains(ip)))
        .map(|p| p.name.as_str())
}

/// The interfaces `svc` is announced on from a node with `node_labels`: the union of the
/// `interfaces` of the applying advertisements that select the node; empty (= every eligible
/// interface) as soon as one of them names none.
pub fn interfaces_for(
    svc: &ironlb_l2::ServiceInfo,
    ads: &[L2Advertisement],
    node_labels: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut names = BTreeSet::new();
    for ad in applying_advertisements(svc, ads) {
        if !LabelSelector::list_selects(&ad.node_selectors, node_labels) {
            continue;
        }
        if ad.interfaces.is_empty() {
            return Vec::new();
        }
        names.extend(ad.interfaces.iter().cloned());
    }
    names.into_iter().collect()
}

/// A Service this node announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// Its addresses (`status.loadBalancer.ingress`).
    pub ips: Vec<IpAddr>,
    /// Interfaces to announce on (empty: all eligible).
    pub interfaces: Vec<String>,
    /// The Service's uid (for Events).
    pub uid: String,
}

/// The speaker's view of the cluster and its decisions.
#[derive(Debug, Clone)]
pub struct SpeakerState {
    node: String,
    lb_class: Option<String>,
    config: Option<Config>,
    /// Ours, with addresses; boxed, so the table's empty slots stay small.
    services: HashMap<String, Box<KeptService>>,
    slices: HashMap<String, SliceInfo>,
    /// Service key -> slice keys (usually one).
    slices_of: HashMap<String, Vec<String>>,
    nodes: BTreeMap<String, NodeInfo>,
    live: Option<BTreeSet<String>>,
    index: OwnerIndex,
}

impl SpeakerState {
    /// The state of the speaker on `node`, for Services of `lb_class`.
    pub fn new(node: &str, lb_class: Option<String>, settings: Settings) -> Self {
        SpeakerState {
            node: node.to_string(),
            lb_class,
            config: None,
            services: HashMap::new(),
            slices: HashMap::new(),
            slices_of: HashMap::new(),
            nodes: BTreeMap::new(),
            live: None,
            index: OwnerIndex::new(Vec::new(), settings),
        }
    }

    /// This speaker's node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The configuration in use.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// Service `key` as held (ours, with addresses).
    pub fn service(&self, key: &str) -> Option<&KeptService> {
        self.services.get(key).map(|b| &**b)
    }

    /// What the Node object `name` says (labels, `NetworkUnavailable`).
    pub fn node_info(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// The owner-selection settings (`--ignore-exclude-lb`).
    pub fn settings(&self) -> Settings {
        self.index.settings()
    }

    /// Replaces the configuration; recomputes every Service (pools may have moved).
    pub fn set_config(&mut self, config: Config) {
        let settings = self.index.settings();
        self.index
            .set_config(config.l2_advertisements.clone(), settings);
        self.config = Some(config);
        let keys: Vec<String> = self.services.keys().cloned().collect();
        for key in keys {
            self.refresh_service(&key);
        }
    }

    /// A Service was added or changed.
    pub fn upsert_service(&mut self, info: ironlb_k8s::ServiceInfo) {
        let key = info.key.to_string();
        if info.is_ours(self.lb_class.as_deref()) && !info.status_ips.is_empty() {
            self.services
                .insert(key.clone(), Box::new(KeptService::new(info)));
        } else {
            self.services.remove(&key);
        }
        self.refresh_service(&key);
    }

    /// A Service was deleted.
    pub fn remove_service(&mut self, key: &str) {
        self.services.remove(key);
        self.index.remove_service(key);
    }

    /// Every Service key known (ours, with addresses).
    pub fn service_keys(&self) -> Vec<String> {
        self.services.keys().cloned().collect()
    }

    /// Every Service held (ours, with addresses), in no particular order.
    pub fn services(&self) -> impl Iterator<Item = (&str, &KeptService)> {
        self.services.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// An EndpointSlice was added or changed.
    pub fn upsert_slice(&mut self, slice_key: &str, info: SliceInfo) {
        let service = info.service.clone();
        if let Some(old) = self.slices.insert(slice_key.to_string(), info)
            && old.service != service
        {
            self.unlink_slice(&old.service, slice_key);
        }
        let of = self.slices_of.entry(service.clone()).or_default();
        if !of.iter().any(|k| k == slice_key) {
            of.push(slice_key.to_string());
        }
        self.refresh_service(&service);
    }

    /// An EndpointSlice was deleted.
    pub fn remove_slice(&mut self, slice_key: &str) {
        if let Some(old) = self.slices.remove(slice_key) {
            self.unlink_slice(&old.service, slice_key);
            self.refresh_service(&old.service);
        }
    }

    fn unlink_slice(&mut self, service: &str, slice_key: &str) {
        if let Some(set) = self.slices_of.get_mut(service) {
            set.retain(|k| k != slice_key);
            if set.is_empty() {
                self.slices_of.remove(service);
            }
        }
    }

    /// Forgets every slice whose key fails `keep` (after a re-list).
    pub fn retain_slices(&mut self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self.slices.keys().filter(|k| !keep(k)).cloned().collect();
        for k in gone {
            self.remove_slice(&k);
        }
    }

    /// Forgets every Node whose name fails `keep` (after a re-list).
    pub fn retain_nodes(&mut self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self.nodes.keys().filter(|k| !keep(k)).cloned().collect();
        for n in gone {
            self.remove_node(&n);
        }
    }

    /// A Node object was added or changed.
    pub fn upsert_node(&mut self, name: &str, info: NodeInfo) {
        self.nodes.insert(name.to_string(), info);
        self.sync_node(name);
    }

    /// The labels of every Node known (for the configuration rules that depend on which
    /// Nodes exist: `ironlb_config::Objects::nodes`).
    pub fn node_labels(&self) -> Vec<BTreeMap<String, String>> {
        self.nodes.values().map(|n| n.labels.clone()).collect()
    }

    /// A Node object was deleted.
    pub fn remove_node(&mut self, name: &str) {
        self.nodes.remove(name);
        self.sync_node(name);
    }

    /// The live speakers (`None`: no membership, every Node counts as live, as MetalLB without
    /// memberlist).
    pub fn set_live(&mut self, live: Option<BTreeSet<String>>) {
        let before = std::mem::replace(&mut self.live, live);
        let touched: BTreeSet<String> = match (&before, &self.live) {
            (Some(a), Some(b)) => a.symmetric_difference(b).cloned().collect(),
            _ => self.nodes.keys().cloned().collect(),
        };
        // Departures first: a node leaving only recomputes what it owned.
        let (gone, rest): (Vec<String>, Vec<String>) =
            touched.into_iter().partition(|n| !self.is_effective(n));
        for n in gone.iter().chain(rest.iter()) {
            self.sync_node(n);
        }
    }

    fn is_effective(&self, name: &str) -> bool {
        self.nodes.contains_key(name) && self.live.as_ref().is_none_or(|l| l.contains(name))
    }

    /// Puts node `name` into the index, or takes it out, as Node objects and liveness say.
    fn sync_node(&mut self, name: &str) {
        if self.is_effective(name) {
            let info = self.nodes.get(name).cloned().unwrap_or_default();
            if self.index.nodes().get(name) != Some(&info) {
                self.index.upsert_node(name, info);
            }
        } else {
            self.index.remove_node(name);
        }
    }

    /// Recomputes what owner selection knows of Service `key`.
    fn refresh_service(&mut self, key: &str) {
        match self.l2_service(key) {
            Some(svc) => {
                self.index.upsert_service(key, svc);
            }
            None => {
                self.index.remove_service(key);
            }
        }
    }

    /// Owner selection's view of Service `key` (`None`: not ours, no address, or no pool).
    pub fn l2_service(&self, key: &str) -> Option<ironlb_l2::ServiceInfo> {
        let info = self.services.get(key)?;
        let config = self.config.as_ref()?;
        let ip = *info.ips.first()?;
        let pool = pool_of(&config.pools, ip)?.to_string();
        let (any_serving, serving_nodes) = self.endpoints(key, info.traffic_policy_local);
        Some(ironlb_l2::ServiceInfo {
            ip,
            pool,
            labels: info.labels.clone(),
            local_traffic_policy: info.traffic_policy_local,
            has_serving_endpoint: any_serving,
            serving_nodes,
            shares_address: info.shares_address,
        })
    }

    /// Whether Service `key` has a usable endpoint anywhere, and (only when `with_nodes`: owner
    /// selection reads them only for `externalTrafficPolicy: Local`) the nodes hosting one.
    fn endpoints(&self, key: &str, with_nodes: bool) -> (bool, BTreeSet<String>) {
        let mut any_serving = false;
        let mut serving_nodes = BTreeSet::new();
        for slice in self.slices_of.get(key).into_iter().flatten() {
            if let Some(s) = self.slices.get(slice) {
                any_serving |= s.any_serving;
                if with_nodes {
                    serving_nodes.extend(s.serving_nodes.iter().cloned());
                }
            }
        }
        (any_serving, serving_nodes)
    }

    /// Whether Service `key` has a usable endpoint on node `node`.
    pub fn serving_on(&self, key: &str, node: &str) -> bool {
        self.slices_of
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|slice| self.slices.get(slice))
            .any(|s| {
                s.serving_nodes
                    .binary_search_by(|n| n.as_str().cmp(node))
                    .is_ok()
            })
    }

    /// Whether Service `key` has a usable endpoint anywhere.
    pub fn any_serving(&self, key: &str) -> bool {
        self.endpoints(key, false).0
    }

    /// Addresses of Service `key` that lie in no pool (the speaker cannot announce them).
    pub fn unannounceable(&self, key: &str) -> Vec<IpAddr> {
        match (self.services.get(key), &self.config) {
            (Some(info), Some(config)) => info
                .ips
                .iter()
                .filter(|ip| pool_of(&config.pools, **ip).is_none())
                .copied()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The decision for Service `key` (`None`: unknown to owner selection).
    pub fn decision(&self, key: &str) -> Option<&Decision> {
        self.index.owner(key)
    }

    /// The nodes owner selection currently considers (Node objects that are live).
    pub fn effective_nodes(&self) -> impl Iterator<Item = &str> {
        self.index.nodes().keys().map(String::as_str)
    }

    /// The Services this node owns, with their addresses and interfaces.
    pub fn owned(&self) -> BTreeMap<String, Owned> {
        let (Some(config), Some(me)) = (&self.config, self.nodes.get(&self.node)) else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for key in self.index.owned_by(&self.node) {
            let (Some(info), Some(svc)) = (self.services.get(key), self.l2_service(key)) else {
                continue;
            };
            out.insert(
                key.to_string(),
                Owned {
                    ips: info.ips.to_vec(),
                    interfaces: interfaces_for(&svc, &config.l2_advertisements, &me.labels),
                    uid: info.uid.to_string(),
                },
            );
        }
        out
    }
}

/// The responder's input for a set of owned Services: every address, answered, on the union of
/// the interfaces of the Services that hold it (Services sharing an address share its owner).
pub fn announcements(owned: &BTreeMap<String, Owned>) -> Announcements {
    let mut out = Announcements::new();
    for o in owned.values() {
        for ip in &o.ips {
            let entry = out.entry(*ip).or_insert_with(|| Announce {
                interfaces: o.interfaces.clone(),
                answer: true,
            });
            if o.interfaces.is_empty() || entry.interfaces.is_empty() {
                entry.interfaces.clear();
            } else {
                for i in &o.interfaces {
                    if !entry.interfaces.contains(i) {
                        entry.interfaces.push(i.clone());
                    }
                }
                entry.interfaces.sort();
            }
        }
    }
    out
}

/// The isolation rule: a speaker that sees none of the peers Kubernetes says it should have
/// cannot tell "everyone else died" from "I am cut off". Taking over every address at once
/// would be wrong in the second case (the others still announce them: two nodes answer, and
/// when the link heals the gratuitous ARP of the cut-off node steals the traffic until
/// membership merges again). So while isolated it keeps the addresses it already had and takes
/// over nothing new, until it has been isolated *with a usable interface* for
/// `sole_survivor_after` — then it is the sole survivor and announces as usual. A node whose
/// LAN interfaces are all down is not a survivor (its clock restarts when they come back, so a
/// healed link is given time to re-merge first). With at least one live peer, nothing is held
/// back. Trade-off: in a two-node cluster the survivor takes over only after
/// `sole_survivor_after`.
#[derive(Debug, Clone)]
pub struct Isolation {
    sole_survivor_after: std::time::Duration,
    /// Isolated with a usable interface since.
    since: Option<std::time::Instant>,
    isolated: bool,
}

impl Isolation {
    /// The rule with this grace period.
    pub fn new(sole_survivor_after: std::time::Duration) -> Self {
        Isolation {
            sole_survivor_after,
            since: None,
            isolated: false,
        }
    }

    /// Records the situation now: how many other members Kubernetes wants, how many of them
    /// are live, and whether any interface to announce on is usable.
    pub fn update(
        &mut self,
        now: std::time::Instant,
        peers_desired: usize,
        peers_live: usize,
        links_up: bool,
    ) {
        self.isolated = peers_desired > 0 && peers_live == 0;
        if !self.isolated || !links_up {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
        }
    }

    /// Whether new addresses are held back now.
    pub fn holding(&self, now: std::time::Instant) -> bool {
        self.isolated
            && self
                .since
                .is_none_or(|s| now.saturating_duration_since(s) < self.sole_survivor_after)
    }

    /// No live peer although Kubernetes wants some.
    pub fn is_isolated(&self) -> bool {
        self.isolated
    }

    /// When the hold ends by itself (to decide again then), if it is running.
    pub fn hold_ends(&self) -> Option<std::time::Instant> {
        self.since
            .filter(|_| self.isolated)
            .map(|s| s + self.sole_survivor_after)
    }
}

/// What an isolated speaker keeps of `owned`: only the Services it already announced.
pub fn hold_back(
    mut owned: BTreeMap<String, Owned>,
    before: &BTreeMap<String, Owned>,
) -> BTreeMap<String, Owned> {
    owned.retain(|key, _| before.contains_key(key));
    owned
}

/// What the Event about one Service this node announces in Layer 2 says: `nodeAssigned`
/// (announcing from this node) when some interface carries it, `announceFailed` when none does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Its addresses.
    pub ips: Vec<IpAddr>,
    /// The Service object (`metadata.uid`): a Service deleted and created again under the same
    /// name is another object, with its own Events.
    pub uid: String,
    /// Some interface of this node announces it.
    pub usable: bool,
}

/// The Services whose Event is due: those in `now` that `before` did not have, or had with
/// other addresses, another uid or the other usability; in key order. Everything else — a
/// re-list, a configuration, Node or membership change, an interface change that leaves it
/// announced as it was — publishes nothing, so each real change gets exactly one Event.
pub fn assignments_changed<'a>(
    before: &BTreeMap<String, Assignment>,
    now: &'a BTreeMap<String, Assignment>,
) -> Vec<(&'a String, &'a Assignment)> {
    now.iter()
        .filter(|(key, a)| before.get(*key) != Some(*a))
        .collect()
}

/// The Services `from` announces that `to` does not announce with the same addresses: with
/// (old, new) the ones stopped, with (new, old) the ones started.
pub fn moved_away<'a>(
    from: &'a BTreeMap<String, Owned>,
    to: &BTreeMap<String, Owned>,
) -> Vec<&'a String> {
    from.iter()
        .filter(|(k, o)| to.get(*k).map(|n| &n.ips) != Some(&o.ips))
        .map(|(k, _)| k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn an_isolated_speaker_takes_over_nothing_until_it_is_the_sole_survivor() {
        let t0 = Instant::now();
        let s = |ms: u64| t0 + Duration::from_millis(ms);
        let mut iso = Isolation::new(Duration::from_secs(3));
        // Peers live: nothing held.
        iso.update(t0, 2, 2, true);
        assert!(!iso.holding(t0));
        iso.update(t0, 2, 1, true);
        assert!(!iso.holding(t0));
        // A single-node cluster is never isolated.
        iso.update(t0, 0, 0, true);
        assert!(!iso.holding(t0));
        // Every peer gone, link up: held for 3 s, then the sole survivor announces.
        iso.update(s(100), 2, 0, true);
        assert!(iso.holding(s(100)));
        assert_eq!(iso.hold_ends(), Some(s(3100)));
        iso.update(s(2000), 2, 0, true);
        assert!(iso.holding(s(3099)));
        assert!(!iso.holding(s(3100)));
        // Links down: not a survivor, however long; the clock restarts when they come back.
        iso.update(s(4000), 2, 0, false);
        assert!(iso.holding(s(9000)));
        assert_eq!(iso.hold_ends(), None);
        iso.update(s(9000), 2, 0, true);
        assert!(iso.holding(s(11000)));
        // A peer is live again before the clock runs out: normal at once.
        iso.update(s(9500), 2, 1, true);
        assert!(!iso.holding(s(9500)));
    }

    fn o(ip: &str) -> Owned {
        Owned {
            ips: vec![ip.parse().expect("ip")],
            interfaces: vec![],
            uid: String::new(),
        }
    }

    #[test]
    fn holding_back_keeps_only_what_was_announced() {
        let before = BTreeMap::from([("ns/a".to_string(), o("10.0.0.150"))]);
        let now = BTreeMap::from([
            ("ns/a".to_string(), o("10.0.0.150")),
            ("ns/b".to_string(), o("10.0.0.151")),
        ]);
        assert_eq!(hold_back(now, &before), before);
    }

    fn assigned(ip: &str, uid: &str, usable: bool) -> Assignment {
        Assignment {
            ips: vec![ip.parse().expect("ip")],
            uid: uid.into(),
            usable,
        }
    }

    #[test]
    fn a_node_assigned_event_is_due_once_per_change_of_the_announcement() {
        let first = BTreeMap::from([("ns/web".to_string(), assigned("10.0.0.150", "u1", true))]);
        // Starting to announce: one Event.
        let due = assignments_changed(&BTreeMap::new(), &first);
        assert_eq!(due, vec![(&"ns/web".to_string(), &first["ns/web"])]);
        // Any number of republishes of the same announcement (re-list, an unrelated pool or
        // Node change, a membership change that does not move it): none.
        let again = first.clone();
        assert!(assignments_changed(&first, &again).is_empty());
        // Another Service starting does not repeat the first one's.
        let mut two = first.clone();
        two.insert("ns/api".into(), assigned("10.0.0.151", "u2", true));
        let due: Vec<&String> = assignments_changed(&first, &two)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(due, vec!["ns/api"]);
        // Other addresses, a re-created Service (new uid), losing or regaining every usable
        // interface: one Event each.
        for changed in [
            assigned("10.0.0.152", "u1", true),
            assigned("10.0.0.150", "u9", true),
            assigned("10.0.0.150", "u1", false),
        ] {
            let now = BTreeMap::from([("ns/web".to_string(), changed)]);
            assert_eq!(assignments_changed(&first, &now).len(), 1, "{now:?}");
            assert_eq!(assignments_changed(&now, &first).len(), 1, "{now:?}");
        }
        // Stopping announces nothing here (the new owner reports its own start).
        assert!(assignments_changed(&first, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn started_and_stopped_are_the_services_whose_addresses_changed() {
        let old = BTreeMap::from([
            ("ns/kept".to_string(), o("10.0.0.150")),
            ("ns/gone".to_string(), o("10.0.0.151")),
            ("ns/moved".to_string(), o("10.0.0.152")),
        ]);
        let mut interfaces_only = o("10.0.0.153");
        let new = BTreeMap::from([
            ("ns/kept".to_string(), o("10.0.0.150")),
            ("ns/moved".to_string(), o("10.0.0.162")),
            ("ns/new".to_string(), o("10.0.0.154")),
            ("ns/ifs".to_string(), interfaces_only.clone()),
        ]);
        let mut old_with_ifs = old.clone();
        interfaces_only.interfaces = vec!["eth1".into()];
        old_with_ifs.insert("ns/ifs".into(), interfaces_only);
        assert_eq!(moved_away(&old, &new), vec!["ns/gone", "ns/moved"]);
        assert_eq!(moved_away(&new, &old), vec!["ns/ifs", "ns/moved", "ns/new"]);
        // Only addresses count: a change of interfaces alone is neither started nor stopped.
        assert_eq!(moved_away(&new, &old_with_ifs), vec!["ns/moved", "ns/new"]);
        assert!(moved_away(&new, &new).is_empty());
    }
}
