//! Which node answers for a Service's address in Layer 2 mode: one pure function
//! ([`select_owner`]) shared by the speaker, the CLI and the tests, and an incremental index
//! ([`OwnerIndex`]) that gives the same answers with work per event that stays flat as the
//! cluster grows.
//!
//! ```text
//!   ServiceInfo (first LB IP, pool, labels, ETP, serving endpoints)
//!   L2Advertisements (pools, serviceSelectors, nodeSelectors, preferredNodeSelectors)
//!   live nodes -> NodeInfo (labels, NetworkUnavailable)
//!          |
//!          v  select_owner()
//!   Ok(node) | Err(NoOwner::{NoServingEndpoint, NoAdvertisement, NoEligibleNode})
//! ```
//!
//! The rules, as MetalLB's speaker applies them:
//! 1. no serving endpoint anywhere: nobody announces;
//! 2. the advertisements that apply are those naming the Service's pool whose
//!    `serviceSelectors` are empty or one matches the Service's labels; none: nobody announces;
//!    a Service sharing its address (`allow-shared-ip`) while one of them has
//!    `serviceSelectors`: nobody announces (siblings on the address could elect different nodes);
//! 3. candidates: live nodes selected by an applying advertisement's `nodeSelectors` (empty =
//!    all), minus nodes with `NetworkUnavailable` or the exclude label (unless
//!    `ignore_exclude_lb`); with `externalTrafficPolicy: Local`, only nodes with a serving
//!    endpoint;
//! 4. order: the sum of the weights of the applying advertisements' `preferredNodeSelectors`
//!    that match the node, descending; then sha256(node + "#" + ip) bytewise ascending; the
//!    first candidate owns the address.

use ironlb_config::{L2Advertisement, LabelSelector};
use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// The node label that keeps a node from announcing (unless `ignore_exclude_lb`).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// A live node (its speaker is up) as owner selection sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// The Node's labels.
    pub labels: BTreeMap<String, String>,
    /// The Node has the condition `NetworkUnavailable=True`.
    pub network_unavailable: bool,
}

impl NodeInfo {
    /// Whether the Node is out of load balancing altogether, for Layer 2 and BGP alike: its
    /// `NetworkUnavailable` condition is true, or it carries [`EXCLUDE_LABEL`] (unless the
    /// speaker ignores that label, `--ignore-exclude-lb`).
    pub fn excluded(&self, settings: Settings) -> bool {
        self.network_unavailable
            || (!settings.ignore_exclude_lb && self.labels.contains_key(EXCLUDE_LABEL))
    }
}

/// A LoadBalancer Service as owner selection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The Service's first load-balancer address (the one hashed).
    pub ip: IpAddr,
    /// The pool it was allocated from.
    pub pool: String,
    /// The Service's labels.
    pub labels: BTreeMap<String, String>,
    /// `externalTrafficPolicy: Local`.
    pub local_traffic_policy: bool,
    /// Some endpoint of the Service is serving (anywhere).
    pub has_serving_endpoint: bool,
    /// Nodes hosting a serving endpoint. Read only with `local_traffic_policy`, so callers may
    /// leave it empty otherwise (the speaker does: it saves a set per Service).
    pub serving_nodes: BTreeSet<String>,
    /// The Service asks to share its address (a non-empty `metallb.io/allow-shared-ip`).
    pub shares_address: bool,
}

/// Settings of the speaker that affect owner selection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// `--ignore-exclude-lb`: the exclude label does not exclude.
    pub ignore_exclude_lb: bool,
}

/// Why no node owns a Service's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum NoOwner {
    /// The Service has no serving endpoint.
    #[error("the service has no serving endpoint")]
    NoServingEndpoint,
    /// No L2Advertisement applies to the Service's pool and labels.
    #[error("no L2Advertisement applies to the service")]
    NoAdvertisement,
    /// No live node is eligible (selectors, exclusions, endpoints for ETP Local).
    #[error("no live node is eligible to announce the service")]
    NoEligibleNode,
    /// The Service shares its address (`allow-shared-ip`) and an applying L2Advertisement has
    /// `serviceSelectors`: Services sharing the address could match different advertisements
    /// and elect different nodes, so nobody announces it (MetalLB's rule since v0.16).
    #[error(
        "the service shares its address (allow-shared-ip) and an L2Advertisement applying to it has serviceSelectors: not announced"
    )]
    SharedWithServiceSelectors,
}

/// The owner of a Service's address, or why there is none.
pub type Decision = Result<String, NoOwner>;

/// A candidate's place in the order: lower is better.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// Preferred-node weight sum, higher first.
    pub weight: Reverse<i64>,
    /// sha256(node + "#" + ip).
    pub hash: [u8; 32],
}

/// sha256(node + "#" + ip), the hash that orders equally preferred nodes.
pub fn node_hash(node: &str, ip_text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update(b"#");
    h.update(ip_text.as_bytes());
    h.finalize().into()
}

/// The advertisements that apply to `svc`.
pub fn applying_advertisements<'a>(
    svc: &ServiceInfo,
    ads: &'a [L2Advertisement],
) -> Vec<&'a L2Advertisement> {
    ads.iter()
        .filter(|ad| ad.pools.contains(&svc.pool))
        .filter(|ad| LabelSelector::list_selects(&ad.service_selectors, &svc.labels))
        .collect()
}

/// The rank of node `name` for `svc`, or `None` if it is not a candidate. `applying` comes from
/// [`applying_advertisements`]; `ip_text` is `svc.ip` formatted.
pub fn candidate_rank(
    name: &str,
    node: &NodeInfo,
    svc: &ServiceInfo,
    applying: &[&L2Advertisement],
    ip_text: &str,
    settings: Settings,
) -> Option<Rank> {
    if node.excluded(settings) || (svc.local_traffic_policy && !svc.serving_nodes.contains(name)) {
        return None;
    }
    let selected = applying
        .iter()
        .any(|ad| LabelSelector::list_selects(&ad.node_selectors, &node.labels));
    if !selected {
        return None;
    }
    let weight = applying
        .iter()
        .flat_map(|ad| &ad.preferred_nodes)
        .filter(|(_, sel)| sel.matches(&node.labels))
        .map(|(w, _)| i64::from(*w))
        .sum();
    Some(Rank {
        weight: Reverse(weight),
        hash: node_hash(name, ip_text),
    })
}

/// THE owner-selection function: which of the live `nodes` announces `svc`'s address.
pub fn select_owner(
    svc: &ServiceInfo,
    ads: &[L2Advertisement],
    nodes: &BTreeMap<String, NodeInfo>,
    settings: Settings,
) -> Decision {
    let applying = applying_advertisements(svc, ads);
    decide(svc, &applying, &svc.ip.to_string(), nodes, settings).map(|(name, _)| name)
}

/// The owner and its rank, over every candidate.
fn decide<'a>(
    svc: &ServiceInfo,
    applying: &[&L2Advertisement],
    ip_text: &str,
    nodes: &'a BTreeMap<String, NodeInfo>,
    settings: Settings,
) -> Result<(String, Rank), NoOwner> {
    if !svc.has_serving_endpoint {
        return Err(NoOwner::NoServingEndpoint);
    }
    if applying.is_empty() {
        return Err(NoOwner::NoAdvertisement);
    }
    if svc.shares_address && applying.iter().any(|ad| !ad.service_selectors.is_empty()) {
        return Err(NoOwner::SharedWithServiceSelectors);
    }
    let rank = |(name, node): (&'a String, &'a NodeInfo)| {
        candidate_rank(name, node, svc, applying, ip_text, settings).map(|r| (r, name))
    };
    // With ETP Local only nodes with endpoints can win: walk the (usually few) endpoint nodes.
    let best = if svc.local_traffic_policy {
        svc.serving_nodes
            .iter()
            .filter_map(|n| nodes.get_key_value(n))
            .filter_map(rank)
            .min()
    } else {
        nodes.iter().filter_map(rank).min()
    };
    best.map(|(r, name)| (name.clone(), r))
        .ok_or(NoOwner::NoEligibleNode)
}

/// A change of owner reported by [`OwnerIndex`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerChange {
    /// The Service's key (as given to [`OwnerIndex::upsert_service`]).
    pub service: String,
    /// The decision before (`None`: the Service was not known).
    pub before: Option<Decision>,
    /// The decision after (`None`: the Service was removed).
    pub after: Option<Decision>,
}

#[derive(Debug, Clone)]
struct Entry {
    svc: ServiceInfo,
    ip_text: String,
    /// Indexes into `OwnerIndex::ads`.
    applying: Vec<usize>,
    decision: Decision,
    /// The owner's rank, when there is an owner.
    rank: Option<Rank>,
}

/// Owners of every Service, kept up to date event by event:
/// - a node leaving recomputes only the Services it owned;
/// - a node joining compares its rank (one hash) with the current owner's, per Service;
/// - a Service changing recomputes that Service;
/// - new advertisements or settings recompute everything.
///
/// Always equal to calling [`select_owner`] from scratch (property-tested).
#[derive(Debug, Clone, Default)]
pub struct OwnerIndex {
    ads: Vec<L2Advertisement>,
    settings: Settings,
    nodes: BTreeMap<String, NodeInfo>,
    services: HashMap<String, Entry>,
    owned: HashMap<String, HashSet<String>>,
}

impl OwnerIndex {
    /// An empty index with these advertisements and settings.
    pub fn new(ads: Vec<L2Advertisement>, settings: Settings) -> Self {
        OwnerIndex {
            ads,
            settings,
            ..Default::default()
        }
    }

    /// The current decision for a Service.
    pub fn owner(&self, service: &str) -> Option<&Decision> {
        self.services.get(service).map(|e| &e.decision)
    }

    /// The Services `node` owns.
    pub fn owned_by(&self, node: &str) -> impl Iterator<Item = &str> {
        self.owned
            .get(node)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The live nodes.
    pub fn nodes(&self) -> &BTreeMap<String, NodeInfo> {
        &self.nodes
    }

    /// The advertisements.
    pub fn advertisements(&self) -> &[L2Advertisement] {
        &self.ads
    }

    /// The settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Every Service key with its decision.
    pub fn decisions(&self) -> impl Iterator<Item = (&str, &Decision)> {
        self.services.iter().map(|(k, e)| (k.as_str(), &e.decision))
    }

    /// Replaces the advertisements and settings; recomputes every Service.
    pub fn set_config(
        &mut self,
        ads: Vec<L2Advertisement>,
        settings: Settings,
    ) -> Vec<OwnerChange> {
        self.ads = ads;
        self.settings = settings;
        let keys: Vec<String> = self.services.keys().cloned().collect();
        let mut changes = Vec::new();
        for key in keys {
            if let Some(entry) = self.services.get_mut(&key) {
                entry.applying = applying_indexes(&entry.svc, &self.ads);
            }
            changes.extend(self.recompute(&key));
        }
        changes
    }

    /// Adds or replaces a Service; recomputes it.
    pub fn upsert_service(&mut self, key: &str, svc: ServiceInfo) -> Option<OwnerChange> {
        let before = self.remove_entry(key).map(|e| e.decision);
        let entry = Entry {
            ip_text: svc.ip.to_string(),
            applying: applying_indexes(&svc, &self.ads),
            svc,
            decision: Err(NoOwner::NoEligibleNode),
            rank: None,
        };
        self.services.insert(key.to_string(), entry);
        self.recompute(key);
        let after = self.owner(key).cloned();
        (before != after).then(|| OwnerChange {
            service: key.to_string(),
            before,
            after,
        })
    }

    /// Forgets a Service.
    pub fn remove_service(&mut self, key: &str) -> Option<OwnerChange> {
        self.remove_entry(key).map(|e| OwnerChange {
            service: key.to_string(),
            before: Some(e.decision),
            after: None,
        })
    }

    /// A node became live, or its labels or conditions changed.
    pub fn upsert_node(&mut self, name: &str, info: NodeInfo) -> Vec<OwnerChange> {
        let changed_existing = self.nodes.insert(name.to_string(), info).is_some();
        let mut changes = Vec::new();
        let owned: Vec<String> = if changed_existing {
            self.owned
                .get(name)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // The Services it owned may have lost it: recompute those fully.
        for key in &owned {
            changes.extend(self.recompute(key));
        }
        let Some(node) = self.nodes.get(name) else {
            return changes;
        };
        // Everyone else: one rank per Service against the current owner's.
        let mut wins = Vec::new();
        for (key, e) in &self.services {
            let contest = match &e.decision {
                Ok(owner) => owner != name,
                Err(NoOwner::NoEligibleNode) => true,
                Err(_) => false,
            };
            if !contest {
                continue;
            }
            let applying: Vec<&L2Advertisement> =
                e.applying.iter().map(|&i| &self.ads[i]).collect();
            if let Some(rank) =
                candidate_rank(name, node, &e.svc, &applying, &e.ip_text, self.settings)
                && e.rank.as_ref().is_none_or(|current| rank < *current)
            {
                wins.push((key.clone(), rank));
            }
        }
        for (key, rank) in wins {
            changes.extend(self.set_decision(&key, Ok(name.to_string()), Some(rank)));
        }
        changes
    }

    /// A node is gone (its speaker died, or the Node was deleted); recomputes only the Services
    /// it owned.
    pub fn remove_node(&mut self, name: &str) -> Vec<OwnerChange> {
        if self.nodes.remove(name).is_none() {
            return Vec::new();
        }
        let owned: Vec<String> = self
            .owned
            .get(name)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        owned.iter().filter_map(|key| self.recompute(key)).collect()
    }

    fn remove_entry(&mut self, key: &str) -> Option<Entry> {
        let entry = self.services.remove(key)?;
        if let Ok(owner) = &entry.decision {
            self.unown(owner, key);
        }
        Some(entry)
    }

    fn unown(&mut self, owner: &str, key: &str) {
        if let Some(set) = self.owned.get_mut(owner) {
            set.remove(key);
            if set.is_empty() {
                self.owned.remove(owner);
            }
        }
    }

    /// Recomputes one Service from scratch over every live node.
    fn recompute(&mut self, key: &str) -> Option<OwnerChange> {
        let e = self.services.get(key)?;
        let applying: Vec<&L2Advertisement> = e.applying.iter().map(|&i| &self.ads[i]).collect();
        let (decision, rank) =
            match decide(&e.svc, &applying, &e.ip_text, &self.nodes, self.settings) {
                Ok((name, rank)) => (Ok(name), Some(rank)),
                Err(why) => (Err(why), None),
            };
        self.set_decision(key, decision, rank)
    }

    fn set_decision(
        &mut self,
        key: &str,
        decision: Decision,
        rank: Option<Rank>,
    ) -> Option<OwnerChange> {
        let e = self.services.get_mut(key)?;
        e.rank = rank;
        if e.decision == decision {
            return None;
        }
        let before = std::mem::replace(&mut e.decision, decision.clone());
        if let Ok(old) = &before {
            self.unown(old, key);
        }
        if let Ok(new) = &decision {
            self.owned
                .entry(new.clone())
                .or_default()
                .insert(key.to_string());
        }
        Some(OwnerChange {
            service: key.to_string(),
            before: Some(before),
            after: Some(decision),
        })
    }
}

fn applying_indexes(svc: &ServiceInfo, ads: &[L2Advertisement]) -> Vec<usize> {
    let applying = applying_advertisements(svc, ads);
    ads.iter()
        .enumerate()
        .filter(|(_, ad)| applying.iter().any(|a| std::ptr::eq(*a, *ad)))
        .map(|(i, _)| i)
        .collect()
}
