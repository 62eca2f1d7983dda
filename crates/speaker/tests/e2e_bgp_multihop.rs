//! BGP mode end to end, two peering variants through `ironlb speaker` against the lab's FRR:
//!
//! - multi-hop eBGP to a peer that is not on the LAN: FRR's loopback 10.255.0.1, which the
//!   nodes reach through a forwarding hop (the `client` namespace), so the path really has two
//!   IP hops; a single-hop eBGP session (TTL 1) dies on the way, a `ebgpMultiHop` one (TTL 255)
//!   comes up;
//! - `dynamicASN` (external and internal) instead of `peerASN`; a wrong guess (internal against
//!   an eBGP router) stays down.
//!
//! Needs root and `cargo build -p ironlb` first.

#![allow(clippy::unwrap_used)]

mod support;

use ironlb_lab::testing::apply_ok;
use std::time::{Duration, Instant};
use support::bgp::*;
use support::*;

const NODES_V4: [&str; 3] = ["10.0.0.231", "10.0.0.232", "10.0.0.233"];
/// FRR's loopback address, in the router namespace only.
const LOOPBACK: &str = "10.255.0.1";
/// The forwarding hop between the nodes and the router's loopback (the `client` namespace).
const HOP: &str = "10.0.0.100";
/// How long a session that must not come up is watched.
const STAYS_DOWN: Duration = Duration::from_secs(10);

/// A pool, an advertisement and the BGPPeers `peers` (each a full `spec:` body, indented).
fn config(peers: &[(&str, &str)]) -> String {
    let mut y = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgpnet, namespace: metallb-system}
spec:
  addresses: [\"10.0.0.150-10.0.0.180\"]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: ads, namespace: metallb-system}
spec:
  ipAddressPools: [bgpnet]
"
    .to_string();
    for (name, spec) in peers {
        y += &format!(
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec:\n{spec}"
        );
    }
    y
}

/// `nodeSelectors` line for the nodes `names`.
fn on_nodes(names: &[&str]) -> String {
    format!(
        "  nodeSelectors:\n  - matchExpressions:\n    - {{key: kubernetes.io/hostname, operator: In, values: [{}]}}\n",
        names.join(", ")
    )
}

/// Asserts for [`STAYS_DOWN`] that FRR's neighbor `down` never reaches Established while
/// `prefix` keeps exactly the next hops `up`.
async fn stays_down(env: &Env, down: &str, prefix: &str, up: &[&str]) {
    let t0 = Instant::now();
    while t0.elapsed() < STAYS_DOWN {
        let state = frr_state(env, down).unwrap();
        assert_ne!(
            state,
            "Established",
            "{down} came up after {:?}",
            t0.elapsed()
        );
        assert_eq!(next_hops(env, "ipv4", prefix), up);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until FRR's next hops for `prefix` are `want`; on failure shows FRR's neighbors and
/// the speakers' logs.
async fn wait_hops(env: &Env, prefix: &str, want: &[&str]) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let got = next_hops(env, "ipv4", prefix);
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let summary = env
                .lab
                .router
                .cli(&["show bgp summary"])
                .unwrap_or_default();
            panic!(
                "{prefix}: next hops {got:?}, expected {want:?}\n{summary}\n{}",
                speaker_logs(env)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `ping -c 1 -W 1 -t ttl` from `host` to `to`: whether an echo reply came back.
fn ping_ttl(env: &Env, host: &str, to: &str, ttl: u8) -> bool {
    env.lab
        .exec(
            host,
            &[
                "ping",
                "-n",
                "-c",
                "1",
                "-W",
                "1",
                "-t",
                &ttl.to_string(),
                to,
            ],
        )
        .unwrap()
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread")]
async fn multihop_ebgp_reaches_a_peer_behind_a_hop_and_single_hop_does_not() {
    let t_start = Instant::now();
    let env = setup(true, &[]).await;
    let lab = &env.lab;
    // The router's loopback, reached from the nodes through the client namespace (forwarding,
    // no redirects, so the nodes keep sending through it).
    lab.exec_ok(
        "router",
        &["ip", "addr", "add", &format!("{LOOPBACK}/32"), "dev", "lo"],
    )
    .unwrap();
    for kv in [
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        lab.exec_ok("client", &["sysctl", "-w", kv]).unwrap();
    }
    lab.exec_ok(
        "client",
        &[
            "ip",
            "route",
            "add",
            &format!("{LOOPBACK}/32"),
            "via",
            "10.0.0.1",
        ],
    )
    .unwrap();
    for node in lab.topo.node_names() {
        lab.exec_ok(
            &node,
            &["sysctl", "-w", "net.ipv4.conf.all.accept_redirects=0"],
        )
        .unwrap();
        lab.exec_ok(
            &node,
            &["ip", "route", "add", &format!("{LOOPBACK}/32"), "via", HOP],
        )
        .unwrap();
    }
    // The path has two hops: TTL 1 dies at the client, TTL 2 gets there.
    assert!(
        !ping_ttl(&env, "node3", LOOPBACK, 1),
        "TTL 1 reached {LOOPBACK}"
    );
    assert!(
        ping_ttl(&env, "node3", LOOPBACK, 2),
        "TTL 2 did not reach {LOOPBACK}"
    );

    // FRR: every node neighbor is multi-hop, sourced from the loopback.
    let mut conf = vec!["configure terminal".to_string(), "router bgp 64512".into()];
    for a in NODES_V4 {
        conf.push(format!("neighbor {a} ebgp-multihop 2"));
        conf.push(format!("neighbor {a} update-source {LOOPBACK}"));
    }
    let conf: Vec<&str> = conf.iter().map(String::as_str).collect();
    lab.router.cli(&conf).unwrap();

    let peer = |multihop: bool, nodes: &[&str]| {
        format!(
            "  myASN: 64513\n  peerASN: 64512\n  peerAddress: {LOOPBACK}\n  connectTime: 2s\n{}{}",
            if multihop {
                "  ebgpMultiHop: true\n"
            } else {
                ""
            },
            on_nodes(nodes)
        )
    };
    // node1 and node2 multi-hop, node3 the same peer without ebgpMultiHop.
    apply_ok(
        lab,
        &config(&[
            ("hop", &peer(true, &["node1", "node2"])),
            ("single", &peer(false, &["node3"])),
        ]),
    );
    pod(&env, "web-1", "web", "node1", false).await;
    let ip = lb_service(&env, "web", false, false).await;
    let prefix = format!("{ip}/32");
    let t_up = Instant::now();
    wait_hops(&env, &prefix, &NODES_V4[..2]).await;
    eprintln!(
        "multi-hop route in FRR {:?} after the Service",
        t_up.elapsed()
    );
    for a in &NODES_V4[..2] {
        let v = frr_json(&env, &format!("show bgp neighbors {a} json")).unwrap();
        let n = &v[*a];
        assert_eq!(n["bgpState"], "Established", "{n}");
        assert_eq!(n["hostLocal"], LOOPBACK, "{n}");
        assert_eq!(n["hostForeign"], *a, "{n}");
    }
    for p in paths(&env, "ipv4", &prefix) {
        assert_eq!(p["aspath"]["string"], "64513", "{p}");
    }
    let m = env.speakers.metrics(1).unwrap();
    let up_line = format!("metallb_bgp_session_up{{peer=\"{LOOPBACK}:179\"}} 1");
    assert!(m.contains(&up_line), "{up_line} missing:\n{m}");

    // node3's single-hop session (TTL 1) never gets across the hop.
    stays_down(&env, NODES_V4[2], &prefix, &NODES_V4[..2]).await;
    assert!(
        !env.speakers.metrics(3).unwrap().contains(&up_line),
        "node3's session is up"
    );

    // The same node with ebgpMultiHop: up, three next hops.
    apply_ok(
        lab,
        &config(&[("hop", &peer(true, &["node1", "node2", "node3"]))]),
    );
    wait_hops(&env, &prefix, &NODES_V4).await;
    assert_eq!(frr_state(&env, NODES_V4[2]).unwrap(), "Established");
    eprintln!("multihop test took {:?}", t_start.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_asn_external_and_internal_come_up_and_a_wrong_guess_stays_down() {
    let t_start = Instant::now();
    let env = setup(true, &[]).await;
    let lab = &env.lab;
    // FRR: node1 becomes an iBGP neighbor (AS 64512); node2 and node3 stay eBGP (AS 64513).
    let node1 = NODES_V4[0];
    lab.router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            &format!("no neighbor {node1}"),
            &format!("neighbor {node1} remote-as 64512"),
            "address-family ipv4 unicast",
            &format!("neighbor {node1} activate"),
            "exit-address-family",
        ])
        .unwrap();
    let peer = |my_asn: u32, dynamic: &str, nodes: &[&str]| {
        format!(
            "  myASN: {my_asn}\n  dynamicASN: {dynamic}\n  peerAddress: 10.0.0.1\n  connectTime: 2s\n{}",
            on_nodes(nodes)
        )
    };
    // node3 guesses wrong: internal with its own AS 64513, but the router is AS 64512.
    apply_ok(
        lab,
        &config(&[
            ("int", &peer(64512, "internal", &["node1"])),
            ("ext", &peer(64513, "external", &["node2"])),
            ("wrong", &peer(64513, "internal", &["node3"])),
        ]),
    );
    pod(&env, "web-1", "web", "node2", false).await;
    let ip = lb_service(&env, "web", false, false).await;
    let prefix = format!("{ip}/32");
    wait_hops(&env, &prefix, &NODES_V4[..2]).await;
    for p in paths(&env, "ipv4", &prefix) {
        let (hop, len) = (
            p["nexthops"][0]["ip"].as_str().unwrap(),
            &p["aspath"]["length"],
        );
        if hop == node1 {
            assert_eq!(*len, 0, "iBGP path: {p}");
        } else {
            assert_eq!(p["aspath"]["string"], "64513", "eBGP path: {p}");
        }
    }
    assert_eq!(frr_state(&env, node1).unwrap(), "Established");
    assert_eq!(frr_state(&env, NODES_V4[1]).unwrap(), "Established");
    stays_down(&env, NODES_V4[2], &prefix, &NODES_V4[..2]).await;

    // node3 with the right guess: up, three next hops.
    apply_ok(
        lab,
        &config(&[
            ("int", &peer(64512, "internal", &["node1"])),
            ("ext", &peer(64513, "external", &["node2", "node3"])),
        ]),
    );
    wait_hops(&env, &prefix, &NODES_V4).await;
    assert_eq!(frr_state(&env, NODES_V4[2]).unwrap(), "Established");
    eprintln!("dynamicASN test took {:?}", t_start.elapsed());
}
