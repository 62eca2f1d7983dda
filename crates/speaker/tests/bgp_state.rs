//! BGP planning fed from the speaker's state without a cluster: what `bgp_runtime` hands to
//! `bgp_plan` (this node's exclusion, endpoints per node, lb-class) and what comes out.

#![allow(clippy::unwrap_used)]

use ironlb_allocator::AddressRange;
use ironlb_config::{BgpAdvertisement, Config, Peer, PeerAsn, PeerTarget, Pool};
use ironlb_l2::Settings;
use ironlb_speaker::bgp_plan::plan;
use ironlb_speaker::bgp_runtime::{bgp_services, node_view};
use ironlb_speaker::state::{SliceInfo, SpeakerState, node_info};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use std::time::Duration;

const EXCLUDE: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

fn config() -> Config {
    Config {
        pools: vec![Pool {
            name: "p".into(),
            ranges: vec![AddressRange::Cidr("10.0.0.128/25".parse().unwrap())],
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        }],
        bgp_advertisements: vec![BgpAdvertisement {
            name: "a".into(),
            pools: vec!["p".into()],
            aggregation_length: 32,
            aggregation_length_v6: 128,
            local_pref: None,
            as_path_prepend: 0,
            communities: vec![],
            node_selectors: vec![],
            peers: vec![],
            service_selectors: vec![],
        }],
        peers: vec![Peer {
            name: "r".into(),
            my_asn: 64513,
            peer_asn: PeerAsn::Fixed(64512),
            target: PeerTarget::Address("10.0.0.1".parse().unwrap()),
            port: 179,
            source_address: None,
            hold_time: Duration::from_secs(90),
            keepalive_time: Duration::from_secs(30),
            connect_time: None,
            router_id: None,
            node_selectors: vec![],
            password: None,
            bfd_profile: None,
            graceful_restart: false,
            ebgp_multihop: false,
            vrf: None,
            dual_stack_address_family: false,
        }],
        ..Config::default()
    }
}

fn service(name: &str, ip: &str, extra: serde_json::Value) -> ironlb_k8s::ServiceInfo {
    let mut spec = json!({"type": "LoadBalancer", "ports": [{"port": 80}]});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }))
    .unwrap();
    ironlb_k8s::ServiceInfo::from_service(&svc)
}

fn slice(service: &str, node: &str) -> (String, SliceInfo) {
    let s: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-x"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.0.2"], "nodeName": node, "conditions": {"ready": true}}],
    }))
    .unwrap();
    SliceInfo::from_slice(&s).unwrap()
}

fn node(name: &str, labels: serde_json::Value, network_unavailable: bool) -> ironlb_l2::NodeInfo {
    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "NetworkUnavailable",
            "status": if network_unavailable { "True" } else { "False" }}]},
    }))
    .unwrap();
    node_info(&n)
}

fn state(me: &str, ignore_exclude_lb: bool, lb_class: Option<&str>) -> SpeakerState {
    let mut s = SpeakerState::new(
        me,
        lb_class.map(str::to_string),
        Settings { ignore_exclude_lb },
    );
    s.set_config(config());
    for n in ["node1", "node2"] {
        s.upsert_node(n, node(n, json!({}), false));
    }
    s.upsert_service(service("cluster", "10.0.0.150", json!({})));
    s.upsert_service(service(
        "local",
        "10.0.0.151",
        json!({"externalTrafficPolicy": "Local"}),
    ));
    for svc in ["cluster", "local"] {
        let (k, v) = slice(svc, "node2");
        s.upsert_slice(&k, v);
    }
    s
}

fn announced(s: &SpeakerState) -> Vec<String> {
    let view = node_view(s).unwrap();
    let p = plan(s.config().unwrap(), &view, &bgp_services(s));
    p.peers["r"].keys().map(|k| k.to_string()).collect()
}

#[test]
fn cluster_everywhere_local_only_where_the_endpoint_is() {
    assert_eq!(
        announced(&state("node1", false, None)),
        vec!["10.0.0.150/32"]
    );
    assert_eq!(
        announced(&state("node2", false, None)),
        vec!["10.0.0.150/32", "10.0.0.151/32"]
    );
}

#[test]
fn exclude_label_and_network_unavailable_silence_the_node() {
    let mut s = state("node2", false, None);
    s.upsert_node("node2", node("node2", json!({EXCLUDE: ""}), false));
    assert!(node_view(&s).unwrap().excluded);
    assert!(announced(&s).is_empty());
    // --ignore-exclude-lb: the label does not count.
    let mut s = state("node2", true, None);
    s.upsert_node("node2", node("node2", json!({EXCLUDE: ""}), false));
    assert_eq!(announced(&s).len(), 2);
    // NetworkUnavailable counts regardless.
    s.upsert_node("node2", node("node2", json!({}), true));
    assert!(announced(&s).is_empty());
}

#[test]
fn no_node_object_no_plan_and_other_lb_classes_are_skipped() {
    let mut s = state("node3", false, None);
    assert!(node_view(&s).is_none());
    s.upsert_node("node3", node("node3", json!({}), false));
    assert_eq!(announced(&s), vec!["10.0.0.150/32"]);
    // A speaker for lb-class "x" holds none of these Services.
    let mut s = state("node2", false, Some("x"));
    assert!(announced(&s).is_empty());
    s.upsert_service(service(
        "classy",
        "10.0.0.152",
        json!({"loadBalancerClass": "x"}),
    ));
    let (k, v) = slice("classy", "node1");
    s.upsert_slice(&k, v);
    assert_eq!(announced(&s), vec!["10.0.0.152/32"]);
}

#[test]
fn the_service_going_withdraws_it() {
    let mut s = state("node2", false, None);
    s.remove_service("default/cluster");
    assert_eq!(announced(&s), vec!["10.0.0.151/32"]);
    let (k, _) = slice("local", "node2");
    s.remove_slice(&k);
    assert!(announced(&s).is_empty());
}
