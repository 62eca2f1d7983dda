//! Owner selection rules, one scenario each. Expected hash orders were computed independently
//! (Python's hashlib): for "10.0.0.150" sha256(node#ip) orders node1 < node3 < node2, for
//! "fd10::150" node3 < node2 < node1.

#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_allocator::LabelSelector;
use ironlb_config::L2Advertisement;
use ironlb_l2::owner::{EXCLUDE_LABEL, node_hash};
use ironlb_l2::{NoOwner, NodeInfo, OwnerIndex, ServiceInfo, Settings, select_owner};
use std::collections::{BTreeMap, BTreeSet};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sel(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

fn ad(name: &str, pool: &str) -> L2Advertisement {
    L2Advertisement {
        name: name.into(),
        pools: vec![pool.into()],
        node_selectors: vec![],
        interfaces: vec![],
        service_selectors: vec![],
        preferred_nodes: vec![],
    }
}

fn nodes(n: usize) -> BTreeMap<String, NodeInfo> {
    (1..=n)
        .map(|i| {
            (
                format!("node{i}"),
                NodeInfo {
                    labels: labels(&[("kubernetes.io/hostname", &format!("node{i}"))]),
                    network_unavailable: false,
                },
            )
        })
        .collect()
}

fn svc(ip: &str) -> ServiceInfo {
    ServiceInfo {
        ip: ip.parse().unwrap(),
        pool: "linuxnet".into(),
        labels: BTreeMap::new(),
        local_traffic_policy: false,
        has_serving_endpoint: true,
        serving_nodes: BTreeSet::new(),
        shares_address: false,
    }
}

fn owner(
    s: &ServiceInfo,
    ads: &[L2Advertisement],
    n: &BTreeMap<String, NodeInfo>,
) -> Result<String, NoOwner> {
    select_owner(s, ads, n, Settings::default())
}

#[test]
fn lowest_hash_wins_and_the_next_takes_over() {
    let ads = [ad("xixi", "linuxnet")];
    let mut n = nodes(3);
    assert_eq!(owner(&svc("10.0.0.150"), &ads, &n).unwrap(), "node1");
    assert_eq!(owner(&svc("fd10::150"), &ads, &n).unwrap(), "node3");
    n.remove("node1");
    assert_eq!(owner(&svc("10.0.0.150"), &ads, &n).unwrap(), "node3");
    assert!(node_hash("node1", "10.0.0.150") < node_hash("node3", "10.0.0.150"));
}

#[test]
fn a_shared_address_is_not_announced_when_an_applying_ad_selects_services() {
    let mut web = svc("10.0.0.150");
    web.labels = labels(&[("app", "web")]);
    web.shares_address = true;
    let mut picky = ad("picky", "linuxnet");
    picky.service_selectors = vec![sel(&[("app", "web")])];
    // Sharing and a serviceSelectors advertisement applying: nobody announces.
    assert_eq!(
        owner(&web, &[picky.clone()], &nodes(3)),
        Err(NoOwner::SharedWithServiceSelectors)
    );
    // Also when a selector-less advertisement applies too: siblings could still differ.
    assert_eq!(
        owner(&web, &[ad("xixi", "linuxnet"), picky.clone()], &nodes(3)),
        Err(NoOwner::SharedWithServiceSelectors)
    );
    // Controls: the same Service without sharing is announced; sharing with only
    // selector-less advertisements is announced; a selecting ad that does not apply (other
    // labels) does not count.
    let mut alone = web.clone();
    alone.shares_address = false;
    assert_eq!(owner(&alone, &[picky.clone()], &nodes(3)).unwrap(), "node1");
    assert_eq!(
        owner(&web, &[ad("xixi", "linuxnet")], &nodes(3)).unwrap(),
        "node1"
    );
    let mut db = ad("db", "linuxnet");
    db.service_selectors = vec![sel(&[("app", "db")])];
    assert_eq!(
        owner(&web, &[ad("xixi", "linuxnet"), db], &nodes(3)).unwrap(),
        "node1"
    );
}

#[test]
fn no_serving_endpoint_means_nobody() {
    let mut s = svc("10.0.0.150");
    s.has_serving_endpoint = false;
    assert_eq!(
        owner(&s, &[ad("xixi", "linuxnet")], &nodes(3)),
        Err(NoOwner::NoServingEndpoint)
    );
}

#[test]
fn advertisement_must_name_the_pool_and_select_the_service() {
    let s = svc("10.0.0.150");
    assert_eq!(
        owner(&s, &[ad("other", "otherpool")], &nodes(3)),
        Err(NoOwner::NoAdvertisement)
    );
    let mut picky = ad("picky", "linuxnet");
    picky.service_selectors = vec![sel(&[("app", "web")])];
    assert_eq!(
        owner(&s, &[picky.clone()], &nodes(3)),
        Err(NoOwner::NoAdvertisement)
    );
    let mut web = s.clone();
    web.labels = labels(&[("app", "web")]);
    assert_eq!(owner(&web, &[picky], &nodes(3)).unwrap(), "node1");
}

#[test]
fn exclude_label_and_network_unavailable_remove_candidates() {
    let ads = [ad("xixi", "linuxnet")];
    let mut n = nodes(3);
    n.get_mut("node1")
        .unwrap()
        .labels
        .insert(EXCLUDE_LABEL.into(), String::new());
    assert_eq!(owner(&svc("10.0.0.150"), &ads, &n).unwrap(), "node3");
    let ignore = Settings {
        ignore_exclude_lb: true,
    };
    assert_eq!(
        select_owner(&svc("10.0.0.150"), &ads, &n, ignore).unwrap(),
        "node1"
    );
    n.get_mut("node3").unwrap().network_unavailable = true;
    assert_eq!(owner(&svc("10.0.0.150"), &ads, &n).unwrap(), "node2");
    n.get_mut("node2").unwrap().network_unavailable = true;
    assert_eq!(
        owner(&svc("10.0.0.150"), &ads, &n),
        Err(NoOwner::NoEligibleNode)
    );
}

#[test]
fn node_selectors_restrict_candidates() {
    let mut a = ad("xixi", "linuxnet");
    a.node_selectors = vec![sel(&[("kubernetes.io/hostname", "node2")])];
    assert_eq!(
        owner(&svc("10.0.0.150"), &[a.clone()], &nodes(3)).unwrap(),
        "node2"
    );
    // A second advertisement of the same pool selecting node3 adds it (node3 < node2).
    let mut b = ad("more", "linuxnet");
    b.node_selectors = vec![sel(&[("kubernetes.io/hostname", "node3")])];
    assert_eq!(
        owner(&svc("10.0.0.150"), &[a, b], &nodes(3)).unwrap(),
        "node3"
    );
}

#[test]
fn local_traffic_policy_follows_endpoints() {
    let ads = [ad("xixi", "linuxnet")];
    let mut s = svc("10.0.0.150");
    s.local_traffic_policy = true;
    s.serving_nodes = ["node2".to_string()].into();
    assert_eq!(owner(&s, &ads, &nodes(3)).unwrap(), "node2");
    s.serving_nodes = ["node2".to_string(), "node3".to_string()].into();
    assert_eq!(owner(&s, &ads, &nodes(3)).unwrap(), "node3");
    // An endpoint on a node whose speaker is not live does not count.
    s.serving_nodes = ["node9".to_string()].into();
    assert_eq!(owner(&s, &ads, &nodes(3)), Err(NoOwner::NoEligibleNode));
}

#[test]
fn preferred_nodes_outrank_the_hash_by_weight_sum() {
    let mut a = ad("xixi", "linuxnet");
    a.preferred_nodes = vec![
        (10, sel(&[("kubernetes.io/hostname", "node2")])),
        (30, sel(&[("kubernetes.io/hostname", "node3")])),
    ];
    assert_eq!(
        owner(&svc("10.0.0.150"), &[a.clone()], &nodes(3)).unwrap(),
        "node3"
    );
    // Weights add up: node2 matches two preferences, 10 + 25 > 30.
    let mut n = nodes(3);
    n.get_mut("node2")
        .unwrap()
        .labels
        .insert("fast".into(), "yes".into());
    a.preferred_nodes.push((25, sel(&[("fast", "yes")])));
    assert_eq!(owner(&svc("10.0.0.150"), &[a], &n).unwrap(), "node2");
}

#[test]
fn index_moves_only_what_a_departure_affects() {
    let ads = vec![ad("xixi", "linuxnet")];
    let mut index = OwnerIndex::new(ads, Settings::default());
    for (name, info) in nodes(3) {
        index.upsert_node(&name, info);
    }
    index.upsert_service("default/a", svc("10.0.0.150")); // node1
    index.upsert_service("default/b", svc("fd10::150")); // node3
    let changes = index.remove_node("node1");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].service, "default/a");
    assert_eq!(changes[0].after, Some(Ok("node3".to_string())));
    assert_eq!(index.owned_by("node3").count(), 2);
    // node1 comes back: it wins "a" back by hash, "b" stays.
    let changes = index.upsert_node("node1", nodes(1)["node1"].clone());
    assert_eq!(changes.len(), 1);
    assert_eq!(index.owner("default/a"), Some(&Ok("node1".to_string())));
    assert_eq!(index.owner("default/b"), Some(&Ok("node3".to_string())));
}
