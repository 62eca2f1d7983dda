//! The AS_PATH FRR gets from the speakers: `BGPAdvertisement.spec.asPathPrepend` (our AS
//! 1 + N times on eBGP, as MetalLB's FRR mode sends it) and `BGPPeer.spec.localASN` (the
//! session's AS everywhere: OPEN and AS_PATH). Three nodes, eBGP 64513 -> FRR's 64512; what FRR
//! holds is read from `vtysh ... json`. Needs root and `cargo build -p ironlb` first.

#![allow(clippy::unwrap_used)]

mod support;

use ironlb_lab::testing::{apply_ok, create_service, eventually_eq, kubectl, wait_service_address};
use serde_json::json;
use support::bgp::*;
use support::*;

const NODES_V4: [&str; 3] = ["10.0.0.231", "10.0.0.232", "10.0.0.233"];

/// Applies `yaml` and checks that the API server kept `field` (a JSONPath) of `object`
/// (`kind/name`) as `want`: a CRD schema without the field would prune it silently.
fn apply_checked(env: &Env, yaml: &str, object: &str, field: &str, want: &str) {
    apply_ok(&env.lab, yaml);
    let got = kubectl(
        &env.lab,
        &[
            "-n",
            "metallb-system",
            "get",
            object,
            "-o",
            &format!("jsonpath={{{field}}}"),
        ],
    );
    assert_eq!(got, want, "{object} {field}: are deploy/crds up to date?");
}

/// A LoadBalancer Service `default/name` selecting `app: name`, its address from `pool`; waits
/// for the address.
async fn service_from_pool(env: &Env, name: &str, pool: &str) -> String {
    let annotations = json!({"metadata": {"annotations": {"metallb.io/address-pool": pool}}});
    create_service(&env.client, "default", name, 80, annotations).await;
    wait_service_address(&env.client, "default", name).await
}

/// FRR's AS paths for `prefix` by next hop, sorted.
fn as_paths(env: &Env, prefix: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = paths(env, "ipv4", prefix)
        .iter()
        .map(|p| {
            (
                p["nexthops"][0]["ip"].as_str().unwrap_or("?").to_string(),
                p["aspath"]["string"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Waits until FRR's paths for `prefix` are exactly `want` (next hop, AS path), sorted.
async fn wait_as_paths(env: &Env, prefix: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .collect();
    eventually_eq(
        &format!("{prefix} with AS paths"),
        LIMIT,
        &want,
        async || as_paths(env, prefix),
    )
    .await;
    eprintln!("FRR: {prefix}: {:?}", as_paths(env, prefix));
}

/// Pools `prepended` (10.0.0.150-159, advertised with asPathPrepend 3) and `plain`
/// (10.0.0.160-169, advertised without), then the BGPPeers in `peers`.
fn config(peers: &str) -> String {
    format!("{POOLS_AND_ADS}---\n{peers}")
}

const POOLS_AND_ADS: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: prepended, namespace: metallb-system}
spec:
  addresses: [\"10.0.0.150-10.0.0.159\"]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: plain, namespace: metallb-system}
spec:
  addresses: [\"10.0.0.160-10.0.0.169\"]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: prepend, namespace: metallb-system}
spec:
  ipAddressPools: [prepended]
  asPathPrepend: 3
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: plain, namespace: metallb-system}
spec:
  ipAddressPools: [plain]
";

#[tokio::test(flavor = "multi_thread")]
async fn as_path_prepend_repeats_our_as_on_ebgp() {
    let env = setup(true, &[]).await;
    let config = config(
        "apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: v4, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
",
    );
    apply_checked(
        &env,
        &config,
        "bgpadvertisement/prepend",
        ".spec.asPathPrepend",
        "3",
    );
    pod(&env, "web-1", "web", "node1", false).await;
    pod(&env, "flat-1", "flat", "node2", false).await;
    let web = service_from_pool(&env, "web", "prepended").await;
    let flat = service_from_pool(&env, "flat", "plain").await;
    assert!(web.starts_with("10.0.0.15"), "{web}");
    assert!(flat.starts_with("10.0.0.16"), "{flat}");

    // asPathPrepend 3: 64513 four times, from every node.
    let four = "64513 64513 64513 64513";
    wait_as_paths(&env, &format!("{web}/32"), &NODES_V4.map(|h| (h, four))).await;
    for p in paths(&env, "ipv4", &format!("{web}/32")) {
        assert_eq!(p["aspath"]["length"], 4, "{p}");
    }
    // The other pool's advertisement has none: 64513 once.
    wait_as_paths(&env, &format!("{flat}/32"), &NODES_V4.map(|h| (h, "64513"))).await;

    // The prepend changes: the routes are sent again with the new path.
    let changed = config.replace("asPathPrepend: 3", "asPathPrepend: 1");
    apply_checked(
        &env,
        &changed,
        "bgpadvertisement/prepend",
        ".spec.asPathPrepend",
        "1",
    );
    wait_as_paths(
        &env,
        &format!("{web}/32"),
        &NODES_V4.map(|h| (h, "64513 64513")),
    )
    .await;
    assert_eq!(
        as_paths(&env, &format!("{flat}/32")),
        NODES_V4.map(|h| (h.to_string(), "64513".to_string()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_asn_is_the_as_the_router_sees() {
    let env = setup(true, &[]).await;
    // FRR expects node1 in AS 64600 (its localASN); node2 and node3 stay in 64513.
    let node1 = NODES_V4[0];
    env.lab
        .router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            &format!("no neighbor {node1}"),
            &format!("neighbor {node1} remote-as 64600"),
            "address-family ipv4 unicast",
            &format!("neighbor {node1} activate"),
            "exit-address-family",
        ])
        .unwrap();
    let config = config(
        "apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: local, namespace: metallb-system}
spec:
  myASN: 64513
  localASN: 64600
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: node1}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: usual, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: node2}
",
    );
    apply_checked(&env, &config, "bgppeer/local", ".spec.localASN", "64600");
    pod(&env, "flat-1", "flat", "node1", false).await;
    let flat = service_from_pool(&env, "flat", "plain").await;
    let prefix = format!("{flat}/32");
    // node1's session came up as AS 64600 (FRR would refuse an OPEN with 64513: Bad Peer AS),
    // and its route's path is 64600; node2's, through the usual peer, 64513.
    wait_as_paths(
        &env,
        &prefix,
        &[(NODES_V4[0], "64600"), (NODES_V4[1], "64513")],
    )
    .await;
    let v = frr_json(&env, "show bgp summary json").unwrap();
    let n1 = &v["ipv4Unicast"]["peers"][node1];
    assert_eq!(n1["state"], "Established", "{n1}");
    assert_eq!(n1["remoteAs"], 64600, "{n1}");
    assert_eq!(v["ipv4Unicast"]["peers"][NODES_V4[1]]["remoteAs"], 64513);
    // The prepend on the same session uses the session's AS too.
    let web = service_from_pool(&env, "web", "prepended").await;
    pod(&env, "web-1", "web", "node1", false).await;
    wait_as_paths(
        &env,
        &format!("{web}/32"),
        &[
            (NODES_V4[0], "64600 64600 64600 64600"),
            (NODES_V4[1], "64513 64513 64513 64513"),
        ],
    )
    .await;
}
