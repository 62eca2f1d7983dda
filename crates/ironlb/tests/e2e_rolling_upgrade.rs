//! An upgrade of an installed ironlb while clients use its addresses: on the lab's real nodes,
//! `deploy/ironlb-native.yaml` with image `v1` serves an L2 address (the walkthrough's
//! 10.0.0.150, asked by `client` on the LAN) and a BGP address (10.0.100.10, announced by every
//! node to the router with graceful restart, asked by `ext-client` behind the router); then
//! the manifest with image `v2` is applied, as a user applies a newer release, and the
//! controller Deployment and the speaker DaemonSet roll, one Pod at a time. Each client sends a
//! request every 50 ms throughout; the failed requests are counted and printed.
//!
//! ```text
//!   client ----ARP/TCP 10.0.0.150----> owner node --kube-proxy--> 5 Pods
//!   ext-client --> router (FRR, ECMP over node1-3, GR helper) --TCP 10.0.100.10--> any node
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ironlb_lab::install::{self, ShellLoop, unix_now, wait_for};
use ironlb_lab::{Lab, LabOptions, components};
use std::time::Duration;

const BGP_IP: &str = "10.0.100.10";

/// The BGP half: a pool only this Service asks for, a BGPAdvertisement, and the router as
/// every node's peer with graceful restart.
const BGP_CONFIG: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgpnet, namespace: metallb-system}
spec:
  addresses: [10.0.100.10/32]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: routed, namespace: metallb-system}
spec:
  ipAddressPools: [bgpnet]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  enableGracefulRestart: true
---
apiVersion: v1
kind: Service
metadata:
  name: svc-xiuxian-bgp
  namespace: haha
  annotations: {metallb.io/address-pool: bgpnet}
spec:
  type: LoadBalancer
  ports:
  - {port: 80, protocol: TCP, targetPort: 80}
  selector: {version: v1}
";

/// FRR's next hops for `prefix`, sorted, and whether any path is stale.
fn frr_paths(lab: &Lab, prefix: &str) -> (Vec<String>, bool) {
    let out = lab
        .router
        .cli(&[&format!("show bgp ipv4 unicast {prefix} json")])
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let paths = v["paths"].as_array().cloned().unwrap_or_default();
    let mut hops: Vec<String> = paths
        .iter()
        .filter_map(|p| p["nexthops"][0]["ip"].as_str().map(str::to_string))
        .collect();
    hops.sort();
    (hops, paths.iter().any(|p| p["stale"] == true))
}

/// Waits until FRR has fresh (not stale) paths for `prefix` through all three nodes.
fn wait_all_nodes(lab: &Lab, prefix: &str, limit: Duration) {
    wait_for(&format!("{prefix} via node1-3, none stale"), limit, || {
        let (hops, stale) = frr_paths(lab, prefix);
        (hops == ["10.0.0.231", "10.0.0.232", "10.0.0.233"] && !stale)
            .then_some(())
            .ok_or(format!("{hops:?} stale={stale}"))
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// The images of the Pods in metallb-system, sorted and deduplicated.
fn images(lab: &Lab) -> Vec<String> {
    let out = install::kubectl(
        lab,
        &[
            "-n",
            "metallb-system",
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
    )
    .unwrap();
    let mut v: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    v.sort();
    v.dedup();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_upgrade_keeps_the_l2_and_bgp_addresses_answering() {
    let lab = Lab::start(LabOptions {
        real_nodes: true,
        ..LabOptions::for_test()
    })
    .await
    .expect("a lab with real nodes starts (needs root, containerd, runc, buildah)");
    for tag in ["v1", "v2"] {
        install::import_ironlb_image(&lab, tag).expect("ironlb's image builds and is imported");
    }
    // The router helps a restarting peer: it keeps its routes, stale, until End-of-RIB.
    lab.router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            "bgp graceful-restart",
        ])
        .unwrap();
    let wait_installed = |lab: &Lab| {
        for what in ["deploy/controller", "ds/speaker"] {
            install::wait_rollout(lab, "metallb-system", what, Duration::from_secs(180))
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
    };
    install::apply_manifest(&lab, &components::lab_native_manifest("v1").unwrap())
        .expect("the v1 manifest applies");
    wait_installed(&lab);
    install::apply_walkthrough(&lab).expect("the walkthrough's files apply");
    wait_for("the BGP config applies", Duration::from_secs(30), || {
        lab.kubectl_apply(BGP_CONFIG).map_err(|e| format!("{e:#}"))
    })
    .unwrap();
    let l2_url = format!("http://{}/", install::WALKTHROUGH_IP);
    let bgp_url = format!("http://{BGP_IP}/");
    install::wait_served(&lab, &l2_url, Duration::from_secs(120)).unwrap();
    wait_all_nodes(&lab, &format!("{BGP_IP}/32"), Duration::from_secs(60));
    wait_for(
        "curl the BGP address from ext-client",
        Duration::from_secs(30),
        || {
            lab.exec_ok(
                "ext-client",
                &["curl", "-s", "-S", "--max-time", "2", &bgp_url],
            )
            .map_err(|e| format!("{e:#}"))
        },
    )
    .unwrap();
    assert_eq!(images(&lab), ["ironlb/ironlb:v1"]);

    let l2 = ShellLoop::requests(&lab, "client", "upgrade-l2", &l2_url).unwrap();
    let bgp = ShellLoop::requests(&lab, "ext-client", "upgrade-bgp", &bgp_url).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let started = unix_now();
    install::apply_manifest(&lab, &components::lab_native_manifest("v2").unwrap())
        .expect("the v2 manifest applies");
    wait_installed(&lab);
    wait_for("every Pod on v2", Duration::from_secs(60), || {
        let now = images(&lab);
        (now == ["ironlb/ironlb:v2"])
            .then_some(())
            .ok_or(format!("{now:?}"))
    })
    .unwrap();
    // The last speaker's sessions are back and its routes refreshed.
    wait_all_nodes(&lab, &format!("{BGP_IP}/32"), Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let took = unix_now() - started;
    let (l2_sent, l2_failed) = l2.failures_since(started);
    let (bgp_sent, bgp_failed) = bgp.failures_since(started);
    drop((l2, bgp));
    eprintln!(
        "rolling upgrade v1 -> v2 (controller + 3 speakers) in {took:.1} s: L2 {l2_url} {l2_failed} of {l2_sent} requests failed; BGP {bgp_url} {bgp_failed} of {bgp_sent} failed"
    );
    // The addresses stayed.
    for (ns, svc, ip) in [
        ("haha", "svc-xiuxian-lb", install::WALKTHROUGH_IP),
        ("haha", "svc-xiuxian-bgp", BGP_IP),
    ] {
        let now = install::wait_external_ip(&lab, ns, svc, Duration::from_secs(5)).unwrap();
        assert_eq!(now, ip, "{svc}");
    }
    assert!(
        l2_sent > 20 && bgp_sent > 20,
        "the loops ran: {l2_sent} / {bgp_sent}"
    );
    // Goal: no BGP request lost (graceful restart keeps the routes while a speaker restarts),
    // at most one failover's worth of L2 requests per node (about a second of requests).
    assert_eq!(bgp_failed, 0, "BGP requests failed during the upgrade");
    assert!(
        l2_failed <= 3,
        "{l2_failed} L2 requests failed during the upgrade"
    );
}
