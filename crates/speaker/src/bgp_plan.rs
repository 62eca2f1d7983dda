//! What this node announces to which BGP peer, as a pure function of the configuration, this
//! node and the Services.
//!
//! ```text
//!   Config.peers ──nodeSelectors match this node──> sessions (one per selected peer)
//!                                                       ^
//!   Service ips ──pool_of──> pool ──BGPAdvertisements   | per peer: prefix -> attributes
//!      │                      (pools, nodeSelectors,    │  (ad.peers empty = every peer;
//!      │                       serviceSelectors) ──> prefix = ip / aggregationLength(V6)
//!      └─ endpoints: Cluster = any serving endpoint; Local = one on this node
//! ```
//!
//! MetalLB's semantics (speaker `bgp_controller`): a node with the exclude label (unless
//! `--ignore-exclude-lb`) or `NetworkUnavailable` keeps its sessions but announces nothing; a
//! Service with no serving endpoint is not announced; with `externalTrafficPolicy: Local` only
//! nodes with a serving endpoint announce. Several advertisements giving the same prefix to the
//! same peer produce one route whose communities and large communities are the union of theirs
//! and whose LOCAL_PREF and `asPathPrepend` are the highest given (the webhook refuses
//! conflicting values where they could meet) — what MetalLB's FRR mode yields with its
//! additive route-maps. `asPathPrepend` counts the extra copies of our AS: the session adds it
//! to eBGP paths only (see `ironlb_bgp::rib`), so the plan gives it to every peer alike. An IPv6
//! prefix goes to a peer over an IPv4 session (and the other way round) only with
//! `dualStackAddressFamily`; otherwise only prefixes of the session's own family.

use crate::state::pool_of;
use ipnet::IpNet;
use ironlb_bgp::packet::attribute::{Community, LargeCommunity};
use ironlb_bgp::rib::{Announcements, RouteAttributes};
use ironlb_config::{BgpAdvertisement, BgpCommunity, Config, LabelSelector, Peer, PeerTarget};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// This node as planning sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeView {
    /// The node's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Excluded from announcing: the exclude label (unless `--ignore-exclude-lb`) or
    /// `NetworkUnavailable`.
    pub excluded: bool,
}

/// A Service (ours, with addresses) as planning sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpService {
    /// `namespace/name`.
    pub key: String,
    /// `metadata.uid`.
    pub uid: String,
    /// Its load-balancer addresses.
    pub ips: Vec<IpAddr>,
    /// Its labels (for `serviceSelectors`).
    pub labels: BTreeMap<String, String>,
    /// `externalTrafficPolicy: Local`.
    pub local_traffic_policy: bool,
    /// Some endpoint, anywhere, is serving.
    pub any_serving: bool,
    /// This node hosts a serving endpoint.
    pub serving_here: bool,
}

/// A Service this node announces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnouncedService {
    /// `metadata.uid`.
    pub uid: String,
    /// The addresses announced (some prefix covering each goes to at least one peer).
    pub ips: Vec<IpAddr>,
    /// The peers it is announced to, sorted.
    pub peers: Vec<String>,
}

/// The plan: for every peer this node has a session with, what it announces; and per Service,
/// to whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Selected peers by name, with the routes they get (possibly none).
    pub peers: BTreeMap<String, Announcements>,
    /// Announced Services by key.
    pub services: BTreeMap<String, AnnouncedService>,
}

/// The peer has a session from a node with `labels` (its `nodeSelectors`; empty = every node).
pub fn peer_selects_node(peer: &Peer, labels: &BTreeMap<String, String>) -> bool {
    LabelSelector::list_selects(&peer.node_selectors, labels)
}

/// Whether a session with `peer` carries prefixes of `prefix`'s family: the family of the
/// peer's address, and the other one too with `dualStackAddressFamily`.
pub fn peer_carries(peer: &Peer, prefix: &IpNet) -> bool {
    let session_v4 = match &peer.target {
        PeerTarget::Address(a) => a.is_ipv4(),
        // Unnumbered peering runs over IPv6 link-local addresses.
        PeerTarget::Interface(_) => false,
    };
    peer.dual_stack_address_family || session_v4 == matches!(prefix, IpNet::V4(_))
}

/// The announced prefix of `ip` under an aggregation length (the address masked).
pub fn prefix_of(ip: IpAddr, aggregation_v4: u8, aggregation_v6: u8) -> Option<IpNet> {
    let len = if ip.is_ipv4() {
        aggregation_v4
    } else {
        aggregation_v6
    };
    IpNet::new(ip, len).ok().map(|n| n.trunc())
}

/// The route attributes an advertisement gives (next hop: the session's).
fn attributes(ad: &BgpAdvertisement) -> RouteAttributes {
    let mut attrs = RouteAttributes {
        local_pref: ad.local_pref,
        as_path_prepend: ad.as_path_prepend,
        ..RouteAttributes::default()
    };
    for c in &ad.communities {
        match *c {
            BgpCommunity::Standard(v) => attrs.communities.push(Community(v)),
            BgpCommunity::Large(a, b, c) => attrs.large_communities.push(LargeCommunity {
                global_admin: a,
                local_data1: b,
                local_data2: c,
            }),
        }
    }
    attrs.communities.sort();
    attrs.communities.dedup();
    attrs.large_communities.sort();
    attrs.large_communities.dedup();
    attrs
}

/// Merges what another advertisement gives a prefix into what it has.
fn merge(into: &mut RouteAttributes, more: &RouteAttributes) {
    into.local_pref = into.local_pref.max(more.local_pref);
    into.as_path_prepend = into.as_path_prepend.max(more.as_path_prepend);
    into.communities.extend(more.communities.iter().copied());
    into.communities.sort();
    into.communities.dedup();
    into.large_communities
        .extend(more.large_communities.iter().copied());
    into.large_communities.sort();
    into.large_communities.dedup();
}

/// Whether the Service is announced from this node at all (endpoints and policy).
fn endpoints_allow(svc: &BgpService) -> bool {
    if svc.local_traffic_policy {
        svc.serving_here
    } else {
        svc.any_serving
    }
}

/// Plans what `node` announces to which peer.
pub fn plan<'a>(
    config: &Config,
    node: &NodeView,
    services: impl IntoIterator<Item = &'a BgpService>,
) -> Plan {
    let peers: Vec<&Peer> = config
        .peers
        .iter()
        .filter(|p| peer_selects_node(p, &node.labels))
        .collect();
    let mut out = Plan {
        peers: peers
            .iter()
            .map(|p| (p.name.clone(), Announcements::new()))
            .collect(),
        services: BTreeMap::new(),
    };
    if node.excluded || peers.is_empty() {
        return out;
    }
    // Advertisements that may announce from this node, with their attributes.
    let ads: Vec<(&BgpAdvertisement, RouteAttributes)> = config
        .bgp_advertisements
        .iter()
        .filter(|a| LabelSelector::list_selects(&a.node_selectors, &node.labels))
        .map(|a| (a, attributes(a)))
        .collect();
    for svc in services {
        if !endpoints_allow(svc) {
            continue;
        }
        let mut to: BTreeSet<&str> = BTreeSet::new();
        let mut ips = Vec::new();
        for &ip in &svc.ips {
            let Some(pool) = pool_of(&config.pools, ip) else {
                continue;
            };
            let mut announced = false;
            for (ad, attrs) in &ads {
                if !ad.pools.iter().any(|p| p == pool)
                    || !LabelSelector::list_selects(&ad.service_selectors, &svc.labels)
                {
                    continue;
                }
                let Some(prefix) = prefix_of(ip, ad.aggregation_length, ad.aggregation_length_v6)
                else {
                    continue;
                };
                for peer in &peers {
                    if !(ad.peers.is_empty() || ad.peers.contains(&peer.name))
                        || !peer_carries(peer, &prefix)
                    {
                        continue;
                    }
                    let table = out.peers.entry(peer.name.clone()).or_default();
                    match table.get_mut(&prefix) {
                        Some(have) => merge(have, attrs),
                        None => {
                            table.insert(prefix, attrs.clone());
                        }
                    }
                    to.insert(peer.name.as_str());
                    announced = true;
                }
            }
            if announced {
                ips.push(ip);
            }
        }
        if !to.is_empty() {
            out.services.insert(
                svc.key.clone(),
                AnnouncedService {
                    uid: svc.uid.clone(),
                    ips,
                    peers: to.into_iter().map(str::to_string).collect(),
                },
            );
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ironlb_config::{AddressRange, PeerAsn, Pool};
    use std::time::Duration;

    fn pool(name: &str, cidrs: &[&str]) -> Pool {
        Pool {
            name: name.into(),
            ranges: cidrs
                .iter()
                .map(|c| AddressRange::Cidr(c.parse().unwrap()))
                .collect(),
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        }
    }

    fn peer(name: &str, addr: &str, my_asn: u32, peer_asn: u32) -> Peer {
        Peer {
            name: name.into(),
            my_asn,
            peer_asn: PeerAsn::Fixed(peer_asn),
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

    fn ad(name: &str, pools: &[&str]) -> BgpAdvertisement {
        BgpAdvertisement {
            name: name.into(),
            pools: pools.iter().map(|p| p.to_string()).collect(),
            aggregation_length: 32,
            aggregation_length_v6: 128,
            local_pref: None,
            as_path_prepend: 0,
            communities: Vec::new(),
            node_selectors: Vec::new(),
            peers: Vec::new(),
            service_selectors: Vec::new(),
        }
    }

    fn label_sel(k: &str, v: &str) -> LabelSelector {
        LabelSelector {
            match_labels: [(k.to_string(), v.to_string())].into(),
            ..LabelSelector::default()
        }
    }

    fn node(name: &str, labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            excluded: false,
        }
    }

    fn svc(key: &str, ips: &[&str]) -> BgpService {
        BgpService {
            key: key.into(),
            uid: format!("uid-{key}"),
            ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            labels: BTreeMap::new(),
            local_traffic_policy: false,
            any_serving: true,
            serving_here: false,
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn base() -> Config {
        Config {
            pools: vec![pool("p", &["10.0.0.150/31", "fd10::150/127"])],
            bgp_advertisements: vec![ad("a", &["p"])],
            peers: vec![peer("r", "10.0.0.1", 64513, 64512)],
            ..Config::default()
        }
    }

    fn prefixes(plan: &Plan, peer: &str) -> Vec<IpNet> {
        plan.peers[peer].keys().copied().collect()
    }

    #[test]
    fn cluster_policy_announces_a_host_route_to_every_selected_peer() {
        let s = svc("ns/a", &["10.0.0.150"]);
        let p = plan(&base(), &node("n1", &[]), [&s]);
        assert_eq!(prefixes(&p, "r"), vec![net("10.0.0.150/32")]);
        assert_eq!(
            p.peers["r"][&net("10.0.0.150/32")],
            RouteAttributes::default()
        );
        assert_eq!(
            p.services["ns/a"],
            AnnouncedService {
                uid: "uid-ns/a".into(),
                ips: vec!["10.0.0.150".parse().unwrap()],
                peers: vec!["r".into()],
            }
        );
    }

    #[test]
    fn no_serving_endpoint_anywhere_announces_nothing() {
        let mut s = svc("ns/a", &["10.0.0.150"]);
        s.any_serving = false;
        let p = plan(&base(), &node("n1", &[]), [&s]);
        assert!(p.peers["r"].is_empty());
        assert!(p.services.is_empty());
    }

    #[test]
    fn local_policy_needs_an_endpoint_on_this_node() {
        let mut s = svc("ns/a", &["10.0.0.150"]);
        s.local_traffic_policy = true;
        s.serving_here = false;
        assert!(plan(&base(), &node("n1", &[]), [&s]).peers["r"].is_empty());
        s.serving_here = true;
        assert_eq!(
            prefixes(&plan(&base(), &node("n1", &[]), [&s]), "r"),
            vec![net("10.0.0.150/32")]
        );
        // Cluster policy ignores where the endpoint is.
        s.local_traffic_policy = false;
        s.serving_here = false;
        assert_eq!(
            prefixes(&plan(&base(), &node("n1", &[]), [&s]), "r").len(),
            1
        );
    }

    #[test]
    fn excluded_node_keeps_its_sessions_but_announces_nothing() {
        let s = svc("ns/a", &["10.0.0.150"]);
        let mut n = node("n1", &[]);
        n.excluded = true;
        let p = plan(&base(), &n, [&s]);
        assert_eq!(p.peers.keys().collect::<Vec<_>>(), vec!["r"]);
        assert!(p.peers["r"].is_empty());
        assert!(p.services.is_empty());
    }

    #[test]
    fn peer_node_selectors_choose_the_sessions() {
        let mut c = base();
        c.peers[0].node_selectors = vec![label_sel("rack", "a")];
        c.peers.push(peer("s", "10.0.0.2", 64513, 64512));
        let s = svc("ns/a", &["10.0.0.150"]);
        let p = plan(&c, &node("n1", &[("rack", "b")]), [&s]);
        assert_eq!(p.peers.keys().collect::<Vec<_>>(), vec!["s"]);
        assert_eq!(p.services["ns/a"].peers, vec!["s".to_string()]);
        let p = plan(&c, &node("n1", &[("rack", "a")]), [&s]);
        assert_eq!(p.peers.keys().collect::<Vec<_>>(), vec!["r", "s"]);
        assert_eq!(
            p.services["ns/a"].peers,
            vec!["r".to_string(), "s".to_string()]
        );
    }

    #[test]
    fn advertisement_node_selectors_choose_the_announcing_nodes() {
        let mut c = base();
        c.bgp_advertisements[0].node_selectors = vec![label_sel("bgp", "yes")];
        let s = svc("ns/a", &["10.0.0.150"]);
        assert!(plan(&c, &node("n1", &[]), [&s]).peers["r"].is_empty());
        assert_eq!(
            prefixes(&plan(&c, &node("n1", &[("bgp", "yes")]), [&s]), "r").len(),
            1
        );
    }

    #[test]
    fn advertisement_peers_list_limits_the_peers() {
        let mut c = base();
        c.peers.push(peer("s", "10.0.0.2", 64513, 64512));
        c.bgp_advertisements[0].peers = vec!["s".into()];
        let s = svc("ns/a", &["10.0.0.150"]);
        let p = plan(&c, &node("n1", &[]), [&s]);
        assert!(p.peers["r"].is_empty());
        assert_eq!(prefixes(&p, "s"), vec![net("10.0.0.150/32")]);
    }

    #[test]
    fn service_selectors_and_pools_choose_the_services() {
        let mut c = base();
        c.pools.push(pool("other", &["192.168.0.0/24"]));
        c.bgp_advertisements[0].service_selectors = vec![label_sel("app", "web")];
        let mut web = svc("ns/web", &["10.0.0.150"]);
        web.labels.insert("app".into(), "web".into());
        let db = svc("ns/db", &["10.0.0.151"]);
        let elsewhere = svc("ns/x", &["192.168.0.1"]);
        let nowhere = svc("ns/y", &["172.16.0.1"]);
        let p = plan(&c, &node("n1", &[]), [&web, &db, &elsewhere, &nowhere]);
        assert_eq!(prefixes(&p, "r"), vec![net("10.0.0.150/32")]);
        assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["ns/web"]);
    }

    #[test]
    fn aggregation_masks_the_address_and_services_share_the_prefix() {
        let mut c = base();
        c.pools = vec![pool("p", &["10.0.0.128/25", "fd10::/120"])];
        c.bgp_advertisements[0].aggregation_length = 24;
        c.bgp_advertisements[0].aggregation_length_v6 = 64;
        c.peers[0].dual_stack_address_family = true;
        let a = svc("ns/a", &["10.0.0.150", "fd10::15"]);
        let b = svc("ns/b", &["10.0.0.151"]);
        let p = plan(&c, &node("n1", &[]), [&a, &b]);
        assert_eq!(
            prefixes(&p, "r"),
            vec![net("10.0.0.0/24"), net("fd10::/64")]
        );
        assert_eq!(p.services.len(), 2);
    }

    #[test]
    fn two_advertisements_of_one_prefix_merge_their_attributes() {
        let mut c = base();
        let mut a1 = ad("a1", &["p"]);
        a1.communities = vec![
            BgpCommunity::Standard(0xfc00_0001),
            BgpCommunity::Large(1, 2, 3),
        ];
        a1.local_pref = Some(100);
        let mut a2 = ad("a2", &["p"]);
        a2.communities = vec![
            BgpCommunity::Standard(0xfc00_0002),
            BgpCommunity::Standard(0xfc00_0001),
        ];
        a2.local_pref = Some(200);
        // A third with another aggregation gives a second prefix of its own.
        let mut a3 = ad("a3", &["p"]);
        a3.aggregation_length = 30;
        c.bgp_advertisements = vec![a1, a2, a3];
        let s = svc("ns/a", &["10.0.0.150"]);
        let p = plan(&c, &node("n1", &[]), [&s]);
        let host = &p.peers["r"][&net("10.0.0.150/32")];
        assert_eq!(
            host.communities,
            vec![Community(0xfc00_0001), Community(0xfc00_0002)]
        );
        assert_eq!(
            host.large_communities,
            vec![LargeCommunity {
                global_admin: 1,
                local_data1: 2,
                local_data2: 3
            }]
        );
        assert_eq!(host.local_pref, Some(200));
        assert_eq!(
            p.peers["r"][&net("10.0.0.148/30")],
            RouteAttributes::default()
        );
    }

    /// The AS_PATH `peer`'s session puts on the first route `plan` gives it, as the driver
    /// sends it: our AS from the peer (localASN already in `my_asn`), eBGP when the peer's AS
    /// is another, 4-octet ASNs.
    fn wire_path(p: &Plan, peer: &Peer) -> ironlb_bgp::packet::attribute::AsPath {
        use ironlb_bgp::rib::{AdjRibOut, SessionParams};
        let params = SessionParams {
            local_as: peer.my_asn,
            ebgp: peer.peer_asn != PeerAsn::Fixed(peer.my_asn),
            four_octet_as: true,
            families: vec![ironlb_bgp::packet::capability::Family::IPV4_UNICAST],
            ipv4_next_hop: Some("10.0.0.231".parse().unwrap()),
            ipv6_next_hop: None,
        };
        let delta = AdjRibOut::new().update_to(&p.peers[&peer.name], &params);
        assert_eq!(delta.updates.len(), 1, "{delta:?}");
        delta.updates[0].attributes.as_path.clone().unwrap()
    }

    #[test]
    fn prepend_count_per_peer_kind() {
        use ironlb_bgp::packet::attribute::AsPath;
        let mut c = base();
        c.bgp_advertisements[0].as_path_prepend = 3;
        // eBGP (64513 -> 64512), iBGP (64512 -> 64512), and an eBGP peer whose localASN
        // (4200000001) config has put in place of myASN.
        c.peers = vec![
            peer("ext", "10.0.0.1", 64513, 64512),
            peer("int", "10.0.0.2", 64512, 64512),
            peer("local", "10.0.0.3", 4_200_000_001, 64512),
        ];
        let s = svc("ns/a", &["10.0.0.150"]);
        let p = plan(&c, &node("n1", &[]), [&s]);
        // The plan gives every peer the advertisement's count ...
        for name in ["ext", "int", "local"] {
            assert_eq!(p.peers[name][&net("10.0.0.150/32")].as_path_prepend, 3);
        }
        // ... and the session turns it into 1 + 3 copies on eBGP, nothing on iBGP.
        assert_eq!(wire_path(&p, &c.peers[0]), AsPath::sequence(vec![64513; 4]));
        assert_eq!(wire_path(&p, &c.peers[1]), AsPath::default());
        assert_eq!(
            wire_path(&p, &c.peers[2]),
            AsPath::sequence(vec![4_200_000_001; 4])
        );
        // Without asPathPrepend: our AS once.
        c.bgp_advertisements[0].as_path_prepend = 0;
        let p = plan(&c, &node("n1", &[]), [&s]);
        assert_eq!(wire_path(&p, &c.peers[0]), AsPath::sequence(vec![64513]));
        assert_eq!(wire_path(&p, &c.peers[1]), AsPath::default());
    }

    #[test]
    fn overlapping_advertisements_take_the_highest_prepend_for_that_peer_only() {
        let mut c = base();
        c.peers.push(peer("s", "10.0.0.2", 64513, 64512));
        // a1 (no prepend) reaches both peers; a2 (prepend 2) the same prefix for `s` only.
        let a1 = ad("a1", &["p"]);
        let mut a2 = ad("a2", &["p"]);
        a2.as_path_prepend = 2;
        a2.peers = vec!["s".into()];
        c.bgp_advertisements = vec![a1, a2];
        let s = svc("ns/a", &["10.0.0.150"]);
        let p = plan(&c, &node("n1", &[]), [&s]);
        let host = net("10.0.0.150/32");
        assert_eq!(p.peers["r"][&host].as_path_prepend, 0);
        assert_eq!(p.peers["s"][&host].as_path_prepend, 2);
        // The order of the advertisements does not matter.
        c.bgp_advertisements.reverse();
        let q = plan(&c, &node("n1", &[]), [&s]);
        assert_eq!(p, q);
    }

    #[test]
    fn a_changed_prepend_is_announced_again() {
        use ironlb_bgp::rib::{AdjRibOut, SessionParams};
        let c = base();
        let s = svc("ns/a", &["10.0.0.150"]);
        let params = SessionParams {
            local_as: 64513,
            ebgp: true,
            four_octet_as: true,
            families: vec![ironlb_bgp::packet::capability::Family::IPV4_UNICAST],
            ipv4_next_hop: Some("10.0.0.231".parse().unwrap()),
            ipv6_next_hop: None,
        };
        let mut rib = AdjRibOut::new();
        let before = plan(&c, &node("n1", &[]), [&s]);
        assert_eq!(rib.update_to(&before.peers["r"], &params).announced, 1);
        let mut c2 = c.clone();
        c2.bgp_advertisements[0].as_path_prepend = 5;
        let after = plan(&c2, &node("n1", &[]), [&s]);
        let d = rib.update_to(&after.peers["r"], &params);
        assert_eq!((d.announced, d.withdrawn), (1, 0));
        assert_eq!(
            d.updates[0].attributes.as_path,
            Some(ironlb_bgp::packet::attribute::AsPath::sequence(vec![
                64513;
                6
            ]))
        );
    }

    #[test]
    fn families_follow_the_session_unless_dual_stack() {
        let mut c = base();
        c.peers.push(peer("r6", "fd10::1", 64513, 64512));
        let s = svc("ns/a", &["10.0.0.150", "fd10::150"]);
        let p = plan(&c, &node("n1", &[]), [&s]);
        assert_eq!(prefixes(&p, "r"), vec![net("10.0.0.150/32")]);
        assert_eq!(prefixes(&p, "r6"), vec![net("fd10::150/128")]);
        assert_eq!(p.services["ns/a"].ips.len(), 2);
        c.peers[0].dual_stack_address_family = true;
        let p = plan(&c, &node("n1", &[]), [&s]);
        assert_eq!(
            prefixes(&p, "r"),
            vec![net("10.0.0.150/32"), net("fd10::150/128")]
        );
    }

    #[test]
    fn withdrawn_when_the_service_or_address_goes() {
        let a = svc("ns/a", &["10.0.0.150"]);
        let b = svc("ns/b", &["10.0.0.151"]);
        let both = plan(&base(), &node("n1", &[]), [&a, &b]);
        assert_eq!(both.peers["r"].len(), 2);
        let one = plan(&base(), &node("n1", &[]), [&a]);
        assert_eq!(prefixes(&one, "r"), vec![net("10.0.0.150/32")]);
        let mut moved = a.clone();
        moved.ips = vec!["10.0.0.151".parse().unwrap()];
        assert_eq!(
            prefixes(&plan(&base(), &node("n1", &[]), [&moved]), "r"),
            vec![net("10.0.0.151/32")]
        );
        let mut c = base();
        c.bgp_advertisements.clear();
        let none = plan(&c, &node("n1", &[]), [&a]);
        assert!(none.peers["r"].is_empty());
    }

    #[test]
    fn no_peers_no_plan() {
        let mut c = base();
        c.peers.clear();
        let s = svc("ns/a", &["10.0.0.150"]);
        let p = plan(&c, &node("n1", &[]), [&s]);
        assert!(p.peers.is_empty() && p.services.is_empty());
    }

    #[test]
    fn prefix_of_masks() {
        assert_eq!(
            prefix_of("10.1.2.3".parse().unwrap(), 16, 128),
            Some(net("10.1.0.0/16"))
        );
        assert_eq!(
            prefix_of("fd10::1:2".parse().unwrap(), 32, 112),
            Some(net("fd10::1:0/112"))
        );
        assert_eq!(prefix_of("10.1.2.3".parse().unwrap(), 33, 128), None);
    }
}
