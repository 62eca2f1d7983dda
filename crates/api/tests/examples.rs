//! MetalLB's documented example objects (its configuration docs), written out here, parse and
//! get MetalLB's defaults.

use ironlb_api::{v1beta1, v1beta2};

fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

#[test]
fn ipaddresspool_range_and_cidrs() {
    let pool: v1beta1::IpAddressPool = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: first-pool
  namespace: metallb-system
spec:
  addresses:
  - 192.168.10.0/24
  - 192.168.9.1-192.168.9.5
  - fc00:f853:0ccd:e799::/124
"#,
    );
    assert_eq!(pool.name(), "first-pool");
    assert_eq!(pool.spec.addresses.len(), 3);
    assert_eq!(
        pool.spec.auto_assign,
        Some(true),
        "autoAssign defaults to true"
    );
    assert!(!pool.spec.avoid_buggy_ips);
}

#[test]
fn ipaddresspool_no_autoassign_avoid_buggy_and_allocation() {
    let pool: v1beta1::IpAddressPool = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: expensive
  namespace: metallb-system
spec:
  addresses:
  - 42.176.25.64/30
  autoAssign: false
  avoidBuggyIPs: true
  serviceAllocation:
    priority: 50
    namespaces:
      - namespace-a
      - namespace-b
    namespaceSelectors:
      - matchLabels:
          foo: bar
    serviceSelectors:
      - matchExpressions:
          - {key: app, operator: In, values: [bar]}
"#,
    );
    assert_eq!(pool.spec.auto_assign, Some(false));
    assert!(pool.spec.avoid_buggy_ips);
    let alloc = pool.spec.service_allocation.expect("serviceAllocation");
    assert_eq!(alloc.priority, Some(50));
    assert_eq!(alloc.namespaces, vec!["namespace-a", "namespace-b"]);
    assert_eq!(alloc.service_selectors.len(), 1);
}

#[test]
fn l2advertisement_without_spec() {
    let ad: v1beta1::L2Advertisement = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: example
  namespace: metallb-system
"#,
    );
    assert_eq!(ad.spec, v1beta1::L2AdvertisementSpec::default());
}

#[test]
fn l2advertisement_with_pools_nodes_interfaces() {
    let ad: v1beta1::L2Advertisement = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: example
  namespace: metallb-system
spec:
  ipAddressPools:
  - first-pool
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: NodeA
  interfaces:
  - eth0
  preferredNodeSelectors:
  - weight: 100
    preference:
      matchLabels:
        role: edge
"#,
    );
    assert_eq!(ad.spec.ip_address_pools, vec!["first-pool"]);
    assert_eq!(ad.spec.interfaces, vec!["eth0"]);
    assert_eq!(ad.spec.preferred_node_selectors[0].weight, 100);
}

#[test]
fn bgppeer_v1beta2_defaults() {
    let peer: v1beta2::BgpPeer = parse(
        r#"
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: sample
  namespace: metallb-system
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
"#,
    );
    assert_eq!(peer.spec.my_asn, 64500);
    assert_eq!(peer.spec.peer_asn, Some(64501));
    assert_eq!(peer.spec.peer_address.as_deref(), Some("10.0.0.1"));
    assert_eq!(peer.spec.peer_port, Some(179), "peerPort defaults to 179");
    assert!(!peer.spec.disable_mp);
}

#[test]
fn bgppeer_v1beta2_full() {
    let peer: v1beta2::BgpPeer = parse(
        r#"
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: peer
  namespace: metallb-system
spec:
  myASN: 64512
  dynamicASN: external
  peerAddress: 172.30.0.3
  peerPort: 180
  holdTime: 90s
  keepaliveTime: 30s
  connectTime: 5s
  routerID: 10.10.10.10
  sourceAddress: 172.30.0.2
  ebgpMultiHop: true
  bfdProfile: full1
  enableGracefulRestart: true
  passwordSecret:
    name: secretname
    namespace: metallb-system
  nodeSelectors:
  - matchLabels:
      rack: frontend
    matchExpressions:
    - key: network-speed
      operator: NotIn
      values: [slow]
"#,
    );
    assert_eq!(peer.spec.dynamic_asn, Some(v1beta2::DynamicAsn::External));
    assert_eq!(peer.spec.peer_asn, None);
    assert_eq!(peer.spec.peer_port, Some(180));
    assert_eq!(
        peer.spec.password_secret.and_then(|s| s.name).as_deref(),
        Some("secretname")
    );
    assert_eq!(
        ironlb_api::parse_duration(peer.spec.hold_time.as_deref().unwrap_or_default()),
        Ok(std::time::Duration::from_secs(90))
    );
}

#[test]
fn bgppeer_v1beta1_legacy_selectors() {
    let peer: v1beta1::BgpPeer = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata:
  name: sample
  namespace: metallb-system
spec:
  myASN: 64512
  peerASN: 64512
  peerAddress: 172.30.0.3
  nodeSelectors:
  - matchExpressions:
    - key: kubernetes.io/hostname
      operator: In
      values: [hostA, hostB]
"#,
    );
    assert_eq!(
        peer.spec.node_selectors[0].match_expressions[0]
            .values
            .len(),
        2
    );
}

#[test]
fn bgpadvertisement_defaults_and_attributes() {
    let empty: v1beta1::BgpAdvertisement = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: empty
  namespace: metallb-system
"#,
    );
    assert_eq!(empty.spec.aggregation_length, Some(32));
    assert_eq!(empty.spec.aggregation_length_v6, Some(128));

    let local: v1beta1::BgpAdvertisement = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: local
  namespace: metallb-system
spec:
  ipAddressPools:
  - bgp-advanced
  aggregationLength: 32
  localPref: 100
  communities:
  - 65535:65282
  - large:1:2:3
  - NO_ADVERTISE
  peers:
  - peer1
"#,
    );
    assert_eq!(local.spec.local_pref, Some(100));
    assert_eq!(local.spec.communities.len(), 3);
}

#[test]
fn community_and_bfdprofile() {
    let c: v1beta1::Community = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: Community
metadata:
  name: communities
  namespace: metallb-system
spec:
  communities:
  - name: NO_ADVERTISE
    value: 65535:65282
"#,
    );
    assert_eq!(c.spec.communities[0].name, "NO_ADVERTISE");
    let b: v1beta1::BfdProfile = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata:
  name: testbfdprofile
  namespace: metallb-system
spec:
  receiveInterval: 380
  transmitInterval: 270
"#,
    );
    assert_eq!(b.spec.receive_interval, Some(380));
    assert_eq!(b.spec.detect_multiplier, None);
}

#[test]
fn status_objects_round_trip() {
    let mut s = v1beta1::ServiceL2Status::new("l2-abc", "metallb-system", Default::default());
    s.status = Some(v1beta1::ServiceL2StatusStatus {
        node: Some("node1".into()),
        service_name: Some("web".into()),
        service_namespace: Some("default".into()),
        interfaces: vec![v1beta1::InterfaceInfo {
            name: Some("eth0".into()),
        }],
    });
    let text = serde_json::to_string(&s).expect("serializes");
    assert!(text.contains(r#""apiVersion":"metallb.io/v1beta1""#));
    assert!(text.contains(r#""kind":"ServiceL2Status""#));
    let back: v1beta1::ServiceL2Status = serde_json::from_str(&text).expect("parses");
    assert_eq!(back, s);

    let state: v1beta1::ConfigurationState = parse(
        r#"
apiVersion: metallb.io/v1beta1
kind: ConfigurationState
metadata: {name: controller, namespace: metallb-system}
status: {result: Invalid, errorSummary: "bad pool"}
"#,
    );
    assert_eq!(
        state.status.and_then(|s| s.result),
        Some(v1beta1::ConfigurationResult::Invalid)
    );
}

#[test]
fn serialized_objects_keep_metallb_field_names() {
    let pool = v1beta1::IpAddressPool::new(
        "p",
        "metallb-system",
        v1beta1::IpAddressPoolSpec {
            addresses: vec!["10.0.0.0/24".into()],
            avoid_buggy_ips: true,
            ..Default::default()
        },
    );
    let text = serde_json::to_string(&pool).expect("serializes");
    assert!(text.contains(r#""avoidBuggyIPs":true"#), "{text}");
    let peer = v1beta2::BgpPeer::new(
        "p",
        "metallb-system",
        v1beta2::BgpPeerSpec {
            my_asn: 1,
            peer_asn: Some(2),
            router_id: Some("1.2.3.4".into()),
            ..Default::default()
        },
    );
    let text = serde_json::to_string(&peer).expect("serializes");
    for key in ["\"myASN\"", "\"peerASN\"", "\"routerID\"", "\"disableMP\""] {
        assert!(text.contains(key), "{key} in {text}");
    }
}
