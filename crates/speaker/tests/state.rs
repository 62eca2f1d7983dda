//! The speaker's decisions without a cluster: what goes into owner selection, and that what
//! comes out is always `select_owner`'s answer.

#![allow(clippy::unwrap_used)]

use ironlb_allocator::{AddressRange, LabelSelector};
use ironlb_config::{Config, L2Advertisement, Pool};
use ironlb_l2::owner::NoOwner;
use ironlb_l2::{NodeInfo, Settings, select_owner};
use ironlb_speaker::state::{
    Owned, SliceInfo, SpeakerState, announcements, interfaces_for, node_info, pool_of,
};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ad(name: &str, extra: impl FnOnce(&mut L2Advertisement)) -> L2Advertisement {
    let mut a = L2Advertisement {
        name: name.into(),
        pools: vec!["linuxnet".into()],
        node_selectors: vec![],
        interfaces: vec![],
        service_selectors: vec![],
        preferred_nodes: vec![],
    };
    extra(&mut a);
    a
}

fn config(ads: Vec<L2Advertisement>) -> Config {
    Config {
        pools: vec![Pool {
            name: "linuxnet".into(),
            ranges: vec![
                AddressRange::Range {
                    start: ip("10.0.0.150"),
                    end: ip("10.0.0.180"),
                },
                AddressRange::Cidr("fd10::/64".parse().unwrap()),
            ],
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        }],
        l2_advertisements: ads,
        ..Default::default()
    }
}

fn hostname(n: &str) -> LabelSelector {
    LabelSelector {
        match_labels: BTreeMap::from([("kubernetes.io/hostname".to_string(), n.to_string())]),
        match_expressions: vec![],
    }
}

fn mk_service(name: &str, ips: &[&str], extra: serde_json::Value) -> ironlb_k8s::ServiceInfo {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": ips.iter().map(|i| json!({"ip": i})).collect::<Vec<_>>()}},
    });
    if let (Some(spec), Some(more)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, val) in more {
            spec.insert(k.clone(), val.clone());
        }
    }
    ironlb_k8s::ServiceInfo::from_service(&serde_json::from_value::<Service>(v).unwrap())
}

fn mk_slice(
    service: &str,
    endpoints: &[(&str, Option<bool>, Option<bool>)],
) -> (String, SliceInfo) {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|(node, ready, serving)| {
            json!({"addresses": ["10.244.1.2"], "nodeName": node,
                   "conditions": {"ready": ready, "serving": serving}})
        })
        .collect();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-abc"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": eps,
    }))
    .unwrap();
    SliceInfo::from_slice(&slice).unwrap()
}

fn mk_node(name: &str, labels: serde_json::Value, network_unavailable: bool) -> NodeInfo {
    let mut l = json!({"kubernetes.io/hostname": name});
    if let (Some(l), Some(more)) = (l.as_object_mut(), labels.as_object()) {
        for (k, v) in more {
            l.insert(k.clone(), v.clone());
        }
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": l},
        "status": {"conditions": [{"type": "NetworkUnavailable",
            "status": if network_unavailable { "True" } else { "False" }}]},
    }))
    .unwrap();
    node_info(&node)
}

const NODES: [&str; 3] = ["node1", "node2", "node3"];

fn cluster(me: &str, ads: Vec<L2Advertisement>, services: usize) -> SpeakerState {
    let mut st = SpeakerState::new(me, None, Settings::default());
    st.set_config(config(ads));
    for n in NODES {
        st.upsert_node(n, mk_node(n, json!({}), false));
    }
    for k in 0..services {
        let name = format!("svc{k}");
        st.upsert_service(mk_service(
            &name,
            &[&format!("10.0.0.{}", 150 + k)],
            json!({}),
        ));
        let (key, info) = mk_slice(&name, &[("node1", Some(true), None)]);
        st.upsert_slice(&key, info);
    }
    st
}

fn expected(
    st: &SpeakerState,
    key: &str,
    live: &[&str],
    ads: &[L2Advertisement],
) -> Result<String, NoOwner> {
    let nodes: BTreeMap<String, NodeInfo> = live
        .iter()
        .map(|n| (n.to_string(), mk_node(n, json!({}), false)))
        .collect();
    select_owner(
        &st.l2_service(key).unwrap(),
        ads,
        &nodes,
        Settings::default(),
    )
}

#[test]
fn every_decision_is_select_owners_and_nodes_partition_the_services() {
    let ads = vec![ad("xixi", |_| {})];
    let mut owned_total = 0;
    for me in NODES {
        let st = cluster(me, ads.clone(), 20);
        for k in 0..20 {
            let key = format!("default/svc{k}");
            assert_eq!(st.decision(&key), Some(&expected(&st, &key, &NODES, &ads)));
        }
        owned_total += st.owned().len();
    }
    assert_eq!(owned_total, 20, "each Service is owned by exactly one node");
}

#[test]
fn live_set_changes_move_only_what_the_dead_node_owned() {
    let ads = vec![ad("xixi", |_| {})];
    let mut st = cluster("node2", ads.clone(), 20);
    let before: BTreeMap<String, String> = (0..20)
        .map(|k| {
            let key = format!("default/svc{k}");
            (key.clone(), st.decision(&key).unwrap().clone().unwrap())
        })
        .collect();
    st.set_live(Some(BTreeSet::from(["node2".into(), "node3".into()])));
    for (key, owner) in &before {
        let now = st.decision(key).unwrap().clone().unwrap();
        assert_eq!(now, expected(&st, key, &["node2", "node3"], &ads).unwrap());
        if owner != "node1" {
            assert_eq!(&now, owner, "{key} moved although its owner lives");
        }
    }
    // A live member without a Node object does not count; the Node coming back does.
    st.remove_node("node3");
    assert!(st.effective_nodes().eq(["node2"]));
    assert_eq!(st.owned().len(), 20);
    st.upsert_node("node3", mk_node("node3", json!({}), false));
    st.set_live(None);
    for (key, owner) in &before {
        assert_eq!(st.decision(key).unwrap().as_ref().unwrap(), owner);
    }
}

#[test]
fn etp_local_follows_serving_endpoints_and_none_means_nobody() {
    let ads = vec![ad("xixi", |_| {})];
    let mut st = cluster("node3", ads, 0);
    st.upsert_service(mk_service(
        "loc",
        &["10.0.0.170"],
        json!({"externalTrafficPolicy": "Local"}),
    ));
    let (key, info) = mk_slice(
        "loc",
        &[("node3", Some(true), None), ("node1", Some(false), None)],
    );
    st.upsert_slice(&key, info);
    assert_eq!(st.decision("default/loc"), Some(&Ok("node3".into())));
    assert_eq!(st.owned()["default/loc"].ips, vec![ip("10.0.0.170")]);
    // Terminating but serving counts; not ready and not serving does not.
    let (key, info) = mk_slice(
        "loc",
        &[
            ("node1", Some(false), Some(true)),
            ("node3", Some(false), Some(false)),
        ],
    );
    st.upsert_slice(&key, info);
    assert_eq!(st.decision("default/loc"), Some(&Ok("node1".into())));
    assert!(st.owned().is_empty());
    st.remove_slice(&key);
    assert_eq!(
        st.decision("default/loc"),
        Some(&Err(NoOwner::NoServingEndpoint))
    );
}

#[test]
fn a_service_s_endpoints_are_the_union_of_its_slices() {
    // One slice: nodes sorted and deduplicated, unusable endpoints left out.
    let (_, one) = mk_slice(
        "split",
        &[
            ("node3", Some(true), None),
            ("node1", None, None),
            ("node3", Some(true), None),
            ("node2", Some(false), Some(false)),
        ],
    );
    assert!(one.any_serving);
    assert_eq!(one.serving_nodes, vec!["node1", "node3"]);

    let ads = vec![ad("xixi", |_| {})];
    let mut st = cluster("node2", ads, 0);
    st.upsert_service(mk_service(
        "split",
        &["10.0.0.171"],
        json!({"externalTrafficPolicy": "Local"}),
    ));
    // Two slices of one Service: a usable endpoint on node2 in the second only.
    let (_, a) = mk_slice("split", &[("node1", Some(false), None)]);
    let (_, b) = mk_slice("split", &[("node2", Some(true), None)]);
    st.upsert_slice("default/split-a", a);
    assert!(!st.any_serving("default/split"));
    st.upsert_slice("default/split-b", b);
    assert!(st.any_serving("default/split"));
    assert!(st.serving_on("default/split", "node2"));
    assert!(!st.serving_on("default/split", "node1"));
    assert_eq!(st.decision("default/split"), Some(&Ok("node2".into())));
    // The same slice upserted again is not counted twice; removing it leaves only the other.
    let (_, b) = mk_slice("split", &[("node2", Some(true), None)]);
    st.upsert_slice("default/split-b", b);
    st.remove_slice("default/split-b");
    assert!(!st.serving_on("default/split", "node2"));
    assert_eq!(
        st.decision("default/split"),
        Some(&Err(NoOwner::NoServingEndpoint))
    );
}

#[test]
fn only_our_class_with_addresses_in_a_pool_is_considered() {
    let mut st = cluster("node1", vec![ad("xixi", |_| {})], 0);
    st.upsert_service(mk_service(
        "other",
        &["10.0.0.151"],
        json!({"loadBalancerClass": "x"}),
    ));
    st.upsert_service(mk_service("pending", &[], json!({})));
    st.upsert_service(mk_service("outside", &["10.0.0.200"], json!({})));
    assert_eq!(st.decision("default/other"), None);
    assert_eq!(st.decision("default/pending"), None);
    assert_eq!(st.decision("default/outside"), None);
    assert_eq!(st.unannounceable("default/outside"), vec![ip("10.0.0.200")]);
    assert_eq!(
        pool_of(&config(vec![]).pools, ip("fd10::150")),
        Some("linuxnet")
    );
    assert_eq!(pool_of(&config(vec![]).pools, ip("10.0.0.181")), None);
    // A class of its own.
    let mut classy = SpeakerState::new("node1", Some("x".into()), Settings::default());
    classy.set_config(config(vec![ad("xixi", |_| {})]));
    classy.upsert_node("node1", mk_node("node1", json!({}), false));
    classy.upsert_service(mk_service(
        "other",
        &["10.0.0.151"],
        json!({"loadBalancerClass": "x"}),
    ));
    let (k, i) = mk_slice("other", &[("node1", Some(true), None)]);
    classy.upsert_slice(&k, i);
    assert_eq!(classy.decision("default/other"), Some(&Ok("node1".into())));
}

#[test]
fn selectors_exclusions_and_preferences_shape_the_candidates() {
    let ads = vec![ad("xixi", |a| {
        a.node_selectors = vec![hostname("node2"), hostname("node3")];
        a.preferred_nodes = vec![(10, hostname("node3"))];
    })];
    let mut st = cluster("node3", ads, 5);
    for k in 0..5 {
        assert_eq!(
            st.decision(&format!("default/svc{k}")),
            Some(&Ok("node3".into()))
        );
    }
    st.upsert_node(
        "node3",
        mk_node(
            "node3",
            json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
            false,
        ),
    );
    for k in 0..5 {
        assert_eq!(
            st.decision(&format!("default/svc{k}")),
            Some(&Ok("node2".into()))
        );
    }
    st.upsert_node("node2", mk_node("node2", json!({}), true));
    assert_eq!(
        st.decision("default/svc0"),
        Some(&Err(NoOwner::NoEligibleNode))
    );
    assert!(st.owned().is_empty());
}

#[test]
fn interfaces_are_the_union_of_the_ads_selecting_the_node() {
    let svc = ironlb_l2::ServiceInfo {
        ip: ip("10.0.0.150"),
        pool: "linuxnet".into(),
        labels: BTreeMap::new(),
        local_traffic_policy: false,
        has_serving_endpoint: true,
        serving_nodes: BTreeSet::new(),
        shares_address: false,
    };
    let labels = BTreeMap::from([("kubernetes.io/hostname".to_string(), "node1".to_string())]);
    let a = ad("a", |a| a.interfaces = vec!["eth1".into()]);
    let b = ad("b", |a| a.interfaces = vec!["eth0".into()]);
    let c = ad("c", |a| {
        a.interfaces = vec!["eth9".into()];
        a.node_selectors = vec![hostname("node2")];
    });
    let all = ad("all", |_| {});
    assert_eq!(
        interfaces_for(&svc, &[a.clone(), b.clone(), c.clone()], &labels),
        vec!["eth0", "eth1"]
    );
    assert!(interfaces_for(&svc, &[a, b, all], &labels).is_empty());

    let owned = BTreeMap::from([
        (
            "default/a".to_string(),
            Owned {
                ips: vec![ip("10.0.0.150")],
                interfaces: vec!["eth1".into()],
                uid: String::new(),
            },
        ),
        (
            "default/b".to_string(),
            Owned {
                ips: vec![ip("10.0.0.150"), ip("fd10::150")],
                interfaces: vec!["eth0".into()],
                uid: String::new(),
            },
        ),
    ]);
    let ann = announcements(&owned);
    assert_eq!(ann[&ip("10.0.0.150")].interfaces, vec!["eth0", "eth1"]);
    assert_eq!(ann[&ip("fd10::150")].interfaces, vec!["eth0"]);
    assert!(ann.values().all(|a| a.answer));
}

fn mk_labelled_service(
    name: &str,
    ip: &str,
    labels: serde_json::Value,
    annotations: serde_json::Value,
) -> ironlb_k8s::ServiceInfo {
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "labels": labels, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }))
    .unwrap();
    ironlb_k8s::ServiceInfo::from_service(&svc)
}

#[test]
fn a_shared_address_with_a_service_selecting_advertisement_is_not_announced() {
    let picky = ad("picky", |a| {
        a.service_selectors = vec![LabelSelector {
            match_labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
            match_expressions: vec![],
        }]
    });
    let mut st = cluster("node1", vec![picky.clone()], 0);
    let cases = [
        (
            "shared",
            "10.0.0.160",
            json!({"metallb.io/allow-shared-ip": "k"}),
        ),
        (
            "shared-old",
            "10.0.0.161",
            json!({"metallb.universe.tf/allow-shared-ip": "k"}),
        ),
        ("alone", "10.0.0.162", json!({})),
    ];
    for (name, ip, annotations) in &cases {
        st.upsert_service(mk_labelled_service(
            name,
            ip,
            json!({"app": "web"}),
            annotations.clone(),
        ));
        let (key, info) = mk_slice(name, &[("node1", Some(true), None)]);
        st.upsert_slice(&key, info);
    }
    for shared in ["default/shared", "default/shared-old"] {
        assert_eq!(
            st.decision(shared),
            Some(&Err(NoOwner::SharedWithServiceSelectors)),
            "{shared}"
        );
        assert!(!st.owned().contains_key(shared));
    }
    // Control: the same Service without the annotation is announced as select_owner says.
    let want = expected(&st, "default/alone", &NODES, &[picky]);
    assert!(want.is_ok());
    assert_eq!(st.decision("default/alone"), Some(&want));
}
