//! BGP mode end to end: the controller and a speaker in every node namespace peer with the
//! lab's FRR (eBGP, AS 64513 -> 64512; iBGP where the test reconfigures FRR). What FRR holds is
//! read from `vtysh ... json`; traffic goes from `ext-client`, behind the router, to the
//! Service address. Needs root and `cargo build -p ironlb` first.

#![allow(clippy::unwrap_used)]

mod support;

use ironlb_api::v1beta1::ServiceBgpStatus;
use ironlb_lab::components::{self, ControllerOptions};
use ironlb_lab::speakers::{self, SpeakerOptions};
use ironlb_lab::testing::{apply_ok, eventually, eventually_eq, kubectl, wait_event};
use ironlb_lab::{Lab, LabOptions, RouterKind};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, ListParams};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::bgp::*;
use support::*;

/// A lab with another router than FRR, the controller and the speakers.
struct RouterEnv {
    lab: Lab,
    client: kube::Client,
    _ctl: components::Controller,
    speakers: speakers::Speakers,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl TestEnv for RouterEnv {
    fn lab(&self) -> &Lab {
        &self.lab
    }
    fn client(&self) -> &kube::Client {
        &self.client
    }
    fn speakers(&self) -> &speakers::Speakers {
        &self.speakers
    }
}

/// A pool (IPv4 and IPv6 ranges), an advertisement with `ad_extra` spec lines, and BGPPeers
/// to the router over IPv4 (`v4`) and IPv6 (`v6`) with `peer_extra` spec lines.
fn bgp_config(ad_extra: &str, peer_extra: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgpnet, namespace: metallb-system}}
spec:
  addresses: [\"10.0.0.150-10.0.0.180\", \"fd10::150-fd10::180\"]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: ads, namespace: metallb-system}}
spec:
  ipAddressPools: [bgpnet]
{ad_extra}---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: v4, namespace: metallb-system}}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
{peer_extra}---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: v6, namespace: metallb-system}}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: \"fd10::1\"
  connectTime: 2s
{peer_extra}"
    )
}

/// The node names that answered `n` requests from ext-client to `url`.
fn answers(env: &impl TestEnv, url: &str, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let out = env
            .lab()
            .exec("ext-client", &["curl", "-s", "--max-time", "2", url])
            .unwrap();
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !name.is_empty() {
            seen.insert(name);
        }
    }
    seen
}

async fn bgp_statuses(env: &impl TestEnv, service: &str) -> Vec<(String, Vec<String>)> {
    let api: Api<ServiceBgpStatus> = Api::namespaced(env.client().clone(), "metallb-system");
    let mut v: Vec<(String, Vec<String>)> = api
        .list(&ListParams::default().labels(&format!("metallb.io/service-name={service}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| {
            let st = s.status?;
            Some((st.node?, st.peers))
        })
        .collect();
    v.sort();
    v
}

async fn wait_bgp_statuses(env: &impl TestEnv, service: &str, want: &[(&str, &[&str])]) {
    let want: Vec<(String, Vec<String>)> = want
        .iter()
        .map(|(n, p)| (n.to_string(), p.iter().map(|s| s.to_string()).collect()))
        .collect();
    eventually_eq(
        &format!("ServiceBGPStatus of {service}"),
        LIMIT,
        &want,
        async || bgp_statuses(env, service).await,
    )
    .await
}

const NODES_V4: [&str; 3] = ["10.0.0.231", "10.0.0.232", "10.0.0.233"];

#[tokio::test(flavor = "multi_thread")]
async fn ebgp_ecmp_policies_selectors_ipv6_withdrawal_status_and_metrics() {
    let env = setup(true, &[]).await;
    // Hash flows on ports too, so requests from one client spread over the next hops.
    env.lab()
        .exec_ok(
            "router",
            &["sysctl", "-w", "net.ipv4.fib_multipath_hash_policy=1"],
        )
        .unwrap();
    apply_ok(
        env.lab(),
        &bgp_config("  communities: [\"64512:100\", \"large:64512:1:2\"]\n", ""),
    );
    pod(&env, "web-1", "web", "node1", false).await;
    let ip = lb_service(&env, "web", false, false).await;
    assert_eq!(ip, "10.0.0.150");

    // (a) Cluster policy: every node announces; FRR installs three next hops.
    wait_next_hops(&env, "ipv4", "10.0.0.150/32", &NODES_V4).await;
    for p in paths(&env, "ipv4", "10.0.0.150/32") {
        assert_eq!(p["community"]["string"], "64512:100", "{p}");
        assert_eq!(p["largeCommunity"]["string"], "64512:1:2", "{p}");
        assert_eq!(p["aspath"]["string"], "64513", "{p}");
    }
    eventually("three next hops in FRR's RIB", LIMIT, async || {
        let v = frr_json(&env, "show ip route 10.0.0.150/32 json")?;
        let hops = v["10.0.0.150/32"][0]["nexthops"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0);
        if hops == 3 {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    let seen = answers(&env, "http://10.0.0.150/", 30);
    assert!(seen.len() > 1, "requests reached only {seen:?}");

    // (h) ServiceBGPStatus per node (the IPv4 address goes to the IPv4 peer only), Events and
    // metrics.
    let v4: &[&str] = &["v4"];
    wait_bgp_statuses(&env, "web", &[("node1", v4), ("node2", v4), ("node3", v4)]).await;
    // The Event and the status are written concurrently: wait for it too.
    wait_event(
        &env.client,
        "default",
        "web",
        "nodeAssigned",
        "with protocol \"bgp\"",
    )
    .await;
    // Each session publishes its figures when its state changes; the IPv6 one connects on its
    // own and nothing above waited for it.
    eventually("node1's BGP metrics", LIMIT, async || {
        let metrics = env.speakers().metrics(1).map_err(|e| e.to_string())?;
        for line in [
            "metallb_bgp_session_up{peer=\"10.0.0.1:179\"} 1",
            "metallb_bgp_session_up{peer=\"[fd10::1]:179\"} 1",
            "metallb_bgp_announced_prefixes_total{peer=\"10.0.0.1:179\"} 1",
            "metallb_bgp_pending_prefixes_total{peer=\"10.0.0.1:179\"} 0",
            "metallb_speaker_announced{service=\"default/web\",protocol=\"bgp\",node=\"node1\",ip=\"10.0.0.150\"} 1",
        ] {
            if !metrics.contains(line) {
                return Err(format!("{line} missing:\n{metrics}"));
            }
        }
        let updates_sent = metrics.lines().any(|l| {
            l.starts_with("metallb_bgp_updates_total{peer=\"10.0.0.1:179\"}") && !l.ends_with(" 0")
        });
        if updates_sent { Ok(()) } else { Err(metrics) }
    })
    .await;

    // (b) Local policy with the only endpoint on node2: node2 alone.
    pod(&env, "local-1", "local", "node2", false).await;
    let lip = lb_service(&env, "local", true, false).await;
    wait_next_hops(&env, "ipv4", &format!("{lip}/32"), &["10.0.0.232"]).await;
    assert_eq!(
        answers(&env, &format!("http://{lip}/"), 5),
        BTreeSet::from(["node2".to_string()])
    );

    // (f) An IPv6 Service over the IPv6 sessions.
    pod(&env, "web6-1", "web6", "node3", true).await;
    let ip6 = lb_service(&env, "web6", false, true).await;
    assert!(ip6.starts_with("fd10::"), "{ip6}");
    wait_next_hops(
        &env,
        "ipv6",
        &format!("{ip6}/128"),
        &["fd10::231", "fd10::232", "fd10::233"],
    )
    .await;
    let v6: &[&str] = &["v6"];
    wait_bgp_statuses(&env, "web6", &[("node1", v6), ("node2", v6), ("node3", v6)]).await;
    // Not over the IPv4 session (no dualStackAddressFamily).
    assert!(
        next_hops(&env, "ipv6", &format!("{ip6}/128"))
            .iter()
            .all(|h| h.contains(':'))
    );

    // (d) Advertisement node selector: node3 excluded.
    apply_ok(
        env.lab(),
        &bgp_config(
            "  nodeSelectors:\n  - matchExpressions:\n    - {key: kubernetes.io/hostname, operator: NotIn, values: [node3]}\n",
            "",
        ),
    );
    wait_next_hops(&env, "ipv4", "10.0.0.150/32", &NODES_V4[..2]).await;
    wait_bgp_statuses(&env, "web", &[("node1", v4), ("node2", v4)]).await;
    // Peer node selector: only node1 peers at all.
    apply_ok(
        env.lab(),
        &bgp_config(
            "",
            "  nodeSelectors:\n  - matchLabels: {kubernetes.io/hostname: node1}\n",
        ),
    );
    wait_next_hops(&env, "ipv4", "10.0.0.150/32", &NODES_V4[..1]).await;
    eventually("node3's session down at FRR", LIMIT, async || {
        let v = frr_json(&env, "show bgp summary json")?;
        match v["ipv4Unicast"]["peers"]["10.0.0.233"]["state"].as_str() {
            Some("Established") => Err(v.to_string()),
            _ => Ok(()),
        }
    })
    .await;
    // Its figures go when the stopped session's task ends, just after FRR saw the Cease.
    eventually("node3 has no session", LIMIT, async || {
        let metrics = env.speakers().metrics(3).map_err(|e| e.to_string())?;
        if metrics.contains("metallb_bgp_session_up{peer=\"10.0.0.1:179\"}") {
            Err(metrics)
        } else {
            Ok(())
        }
    })
    .await;
    apply_ok(env.lab(), &bgp_config("", ""));
    wait_next_hops(&env, "ipv4", "10.0.0.150/32", &NODES_V4).await;

    // (e) Service deleted: withdrawn everywhere, statuses gone.
    let api: Api<Service> = Api::namespaced(env.client().clone(), "default");
    api.delete("web", &DeleteParams::default()).await.unwrap();
    wait_next_hops(&env, "ipv4", "10.0.0.150/32", &[]).await;
    wait_bgp_statuses(&env, "web", &[]).await;
    // The other Services stay.
    wait_next_hops(&env, "ipv4", &format!("{lip}/32"), &["10.0.0.232"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ibgp_local_pref_and_graceful_restart_keep_traffic_flowing() {
    let env = setup(true, &[]).await;
    // node1 becomes an iBGP neighbor of the router (AS 64512), with graceful restart.
    let node1 = "10.0.0.231";
    env.lab()
        .router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            "bgp graceful-restart",
            &format!("no neighbor {node1}"),
            &format!("neighbor {node1} remote-as 64512"),
            "address-family ipv4 unicast",
            &format!("neighbor {node1} activate"),
            "exit-address-family",
        ])
        .unwrap();
    apply_ok(
        env.lab(),
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgpnet, namespace: metallb-system}
spec:
  addresses: [\"10.0.0.150-10.0.0.180\"]
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: aliases, namespace: metallb-system}
spec:
  communities:
  - {name: mine, value: \"64512:7\"}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: ads, namespace: metallb-system}
spec:
  ipAddressPools: [bgpnet]
  localPref: 250
  communities: [mine, \"large:64512:9:9\"]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: ibgp, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  enableGracefulRestart: true
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: node1}
",
    );
    pod(&env, "web-1", "web", "node1", false).await;
    let ip = lb_service(&env, "web", false, false).await;
    let prefix = format!("{ip}/32");
    wait_next_hops(&env, "ipv4", &prefix, &[node1]).await;
    let p = paths(&env, "ipv4", &prefix).remove(0);
    assert_eq!(p["locPrf"], 250, "{p}");
    assert_eq!(p["aspath"]["length"], 0, "{p}");
    assert_eq!(p["community"]["string"], "64512:7", "{p}");
    assert_eq!(p["largeCommunity"]["string"], "64512:9:9", "{p}");
    let url = format!("http://{ip}/");
    assert_eq!(
        answers(&env, &url, 1),
        BTreeSet::from(["node1".to_string()])
    );

    // Kill node1's speaker: FRR keeps the route, marked stale, and traffic flows.
    env.speakers().kill(1).unwrap();
    eventually("FRR marks the route stale", LIMIT, async || {
        match paths(&env, "ipv4", &prefix).first() {
            Some(p) if p["stale"] == true => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        answers(&env, &url, 3),
        BTreeSet::from(["node1".to_string()])
    );
    // Back: the route is refreshed (no longer stale) and never went away.
    env.speakers().start(1).unwrap();
    eventually(
        "the route refreshed after the restart",
        LIMIT,
        async || match paths(&env, "ipv4", &prefix).first() {
            Some(p) if p["stale"] != true && p["locPrf"] == 250 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert_eq!(
        answers(&env, &url, 1),
        BTreeSet::from(["node1".to_string()])
    );
}

/// A one-node lab with `router` as the lab's router, the CRDs, the controller and the speaker.
async fn setup_with_router(router: RouterKind) -> RouterEnv {
    let permit = LABS.acquire().await.unwrap();
    let lab = Lab::start(LabOptions {
        nodes: 1,
        router,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab (needs root)");
    components::install_crds(&lab).expect("CRDs installed");
    let mut opts = ControllerOptions::new(binary());
    opts.webhook = false;
    let ctl = components::start_controller(&lab, opts).await.unwrap();
    ctl.wait_ready(Duration::from_secs(30)).await.unwrap();
    let speakers = speakers::start_speakers_with(&lab, SpeakerOptions::new(binary()))
        .await
        .unwrap();
    let client = lab.client().await.unwrap();
    RouterEnv {
        lab,
        client,
        _ctl: ctl,
        speakers,
        _permit: permit,
    }
}

/// The speaker announces an IPv4 and an IPv6 Service with communities to BIRD or GoBGP (read
/// from `birdc` / `gobgp`), and withdraws the IPv4 one when it is deleted.
async fn announce_to(kind: RouterKind) {
    let env = setup_with_router(kind).await;
    apply_ok(
        env.lab(),
        &bgp_config("  communities: [\"64512:100\", \"large:64512:1:2\"]\n", ""),
    );
    pod(&env, "web-1", "web", "node1", true).await;
    let ip = lb_service(&env, "web", false, false).await;
    pod(&env, "web6-1", "web6", "node1", true).await;
    let ip6 = lb_service(&env, "web6", false, true).await;
    let (table4, table6): (Vec<&str>, Vec<&str>) = match kind {
        RouterKind::Bird => (vec!["show", "route", "all"], vec!["show", "route", "all"]),
        _ => (
            vec!["global", "rib", "-a", "ipv4"],
            vec!["global", "rib", "-a", "ipv6"],
        ),
    };
    let (community, large) = match kind {
        RouterKind::Bird => ("(64512,100)", "(64512, 1, 2)"),
        _ => ("64512:100", "64512:1:2"),
    };
    for (cmd, prefix, hop) in [
        (&table4, format!("{ip}/32"), "10.0.0.231"),
        (&table6, format!("{ip6}/128"), "fd10::231"),
    ] {
        eventually(&format!("{prefix} in {kind}'s table"), LIMIT, async || {
            let out = env.lab().router.cli(cmd).map_err(|e| e.to_string())?;
            let ok = out.contains(&prefix)
                && out.contains(hop)
                && out.contains("64513")
                && out.contains(community)
                && out.contains(large);
            if ok { Ok(()) } else { Err(out) }
        })
        .await;
    }
    let api: Api<Service> = Api::namespaced(env.client().clone(), "default");
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone = format!("{ip}/32");
    eventually(
        &format!("{gone} withdrawn from {kind}"),
        LIMIT,
        async || {
            let out = env.lab().router.cli(&table4).map_err(|e| e.to_string())?;
            if out.contains(&gone) {
                Err(out)
            } else {
                Ok(())
            }
        },
    )
    .await;
    let out = env.lab().router.cli(&table6).unwrap();
    assert!(
        out.contains(&format!("{ip6}/128")),
        "the IPv6 Service stays: {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_speaker_announces_to_bird() {
    announce_to(RouterKind::Bird).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_speaker_announces_to_gobgp() {
    announce_to(RouterKind::Gobgp).await;
}

/// `ip link set eth0 up|down` in node `i`'s namespace.
fn set_link(env: &impl TestEnv, i: u8, up: bool) {
    let netns = env.lab().topo.node(i).netns.clone();
    ironlb_lab::proc::run(
        "ip",
        &[
            "-n",
            &netns,
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bfd_takes_a_cut_nodes_next_hop_away_within_detection_time() {
    let env = setup(true, &[]).await;
    // FRR: BFD (100 ms x 3) on every node neighbor, BGP hold time 30 s.
    let mut conf = vec![
        "configure terminal".to_string(),
        "bfd".into(),
        "profile fast".into(),
        "receive-interval 100".into(),
        "transmit-interval 100".into(),
        "detect-multiplier 3".into(),
        "exit".into(),
        "exit".into(),
        "router bgp 64512".into(),
    ];
    for a in NODES_V4 {
        conf.push(format!("neighbor {a} timers 10 30"));
        conf.push(format!("neighbor {a} bfd profile fast"));
    }
    let conf: Vec<&str> = conf.iter().map(String::as_str).collect();
    env.lab().router.cli(&conf).unwrap();
    apply_ok(
        env.lab(),
        "apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}
---
apiVersion: metallb.io/v1beta1
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
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: v4, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  holdTime: 30s
  bfdProfile: fast
",
    );
    pod(&env, "web-1", "web", "node2", false).await;
    let ip = lb_service(&env, "web", false, false).await;
    let prefix = format!("{ip}/32");
    wait_next_hops(&env, "ipv4", &prefix, &NODES_V4).await;
    eventually("BFD up on FRR for every node", LIMIT, async || {
        let v = frr_json(&env, "show bfd peers json")?;
        let up = v
            .as_array()
            .map(|a| a.iter().filter(|p| p["status"] == "up").count())
            .unwrap_or(0);
        if up == 3 { Ok(()) } else { Err(v.to_string()) }
    })
    .await;
    eventually("metallb_bfd_session_up on node1", LIMIT, async || {
        let m = env.speakers().metrics(1).map_err(|e| e.to_string())?;
        if m.contains("metallb_bfd_session_up{peer=\"10.0.0.1\"} 1") {
            Ok(())
        } else {
            Err(m)
        }
    })
    .await;

    // Cut node1's link: FRR drops its next hop by BFD, far sooner than the 30 s hold time.
    let t0 = Instant::now();
    set_link(&env, 1, false);
    let mut removed = None;
    while t0.elapsed() < Duration::from_secs(10) {
        if next_hops(&env, "ipv4", &prefix) == NODES_V4[1..] {
            removed = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let removed = removed.unwrap_or_else(|| {
        panic!(
            "node1's next hop still there: {:?}",
            next_hops(&env, "ipv4", &prefix)
        )
    });
    assert!(
        removed < Duration::from_secs(3),
        "removed after {removed:?}"
    );
    eprintln!("node1's next hop removed {removed:?} after its link was cut");
    // Link back: BFD and BGP come back, three next hops again.
    set_link(&env, 1, true);
    wait_next_hops(&env, "ipv4", &prefix, &NODES_V4).await;
    let m = env.speakers().metrics(1).unwrap();
    assert!(
        m.lines().any(
            |l| l.starts_with("metallb_bfd_session_down_events{peer=\"10.0.0.1\"}")
                && !l.ends_with(" 0")
        ),
        "{m}"
    );
}

fn md5_config(secret_password: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: bgp-auth, namespace: metallb-system}}
type: kubernetes.io/basic-auth
stringData: {{password: \"{secret_password}\"}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgpnet, namespace: metallb-system}}
spec:
  addresses: [\"10.0.0.150-10.0.0.180\"]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: ads, namespace: metallb-system}}
spec:
  ipAddressPools: [bgpnet]
---
apiVersion: metallb.io/v1beta2
"
    ) + "kind: BGPPeer
metadata: {name: md5, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  passwordSecret: {name: bgp-auth, namespace: metallb-system}
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: node1}
"
}

#[tokio::test(flavor = "multi_thread")]
async fn md5_password_from_a_secret_and_the_exclude_label() {
    let env = setup(true, &[]).await;
    let node1 = "10.0.0.231";
    env.lab()
        .router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            &format!("neighbor {node1} password s3cret"),
        ])
        .unwrap();
    // A wrong password: the session never comes up.
    apply_ok(env.lab(), &md5_config("wrong"));
    pod(&env, "web-1", "web", "node1", false).await;
    let ip = lb_service(&env, "web", false, false).await;
    let prefix = format!("{ip}/32");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_ne!(frr_state(&env, node1).unwrap(), "Established");
    assert!(next_hops(&env, "ipv4", &prefix).is_empty());
    // The right one (the Secret changes, the session follows).
    apply_ok(env.lab(), &md5_config("s3cret"));
    wait_next_hops(&env, "ipv4", &prefix, &[node1]).await;
    assert_eq!(frr_state(&env, node1).unwrap(), "Established");

    // The exclude label: the session stays, the route goes; removing the label brings it back.
    let label = |value: Option<&str>| {
        let mut v = vec!["label".to_string(), "node".into(), "node1".into()];
        v.push(match value {
            Some(x) => format!("node.kubernetes.io/exclude-from-external-load-balancers={x}"),
            None => "node.kubernetes.io/exclude-from-external-load-balancers-".into(),
        });
        v.push("--overwrite".into());
        v
    };
    let args = label(Some(""));
    kubectl(
        env.lab(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_next_hops(&env, "ipv4", &prefix, &[]).await;
    assert_eq!(frr_state(&env, node1).unwrap(), "Established");
    let args = label(None);
    kubectl(
        env.lab(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_next_hops(&env, "ipv4", &prefix, &[node1]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dual_stack_address_family_carries_ipv6_over_the_ipv4_session() {
    let env = setup(true, &[]).await;
    let node1 = "10.0.0.231";
    // FRR: the IPv4 neighbor node1 carries IPv6 unicast too.
    env.lab()
        .router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            "address-family ipv6 unicast",
            &format!("neighbor {node1} activate"),
            "exit-address-family",
        ])
        .unwrap();
    apply_ok(
        env.lab(),
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgpnet, namespace: metallb-system}
spec:
  addresses: [\"10.0.0.150-10.0.0.180\", \"fd10::150-fd10::180\"]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: ads, namespace: metallb-system}
spec:
  ipAddressPools: [bgpnet]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: dual, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  dualStackAddressFamily: true
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: node1}
",
    );
    pod(&env, "web6-1", "web6", "node1", true).await;
    let ip6 = lb_service(&env, "web6", false, true).await;
    let prefix = format!("{ip6}/128");
    // Learned from the IPv4 neighbor, with node1's IPv6 address as next hop.
    wait_next_hops(&env, "ipv6", &prefix, &["fd10::231"]).await;
    let p = paths(&env, "ipv6", &prefix).remove(0);
    assert_eq!(p["peer"]["peerId"], node1, "{p}");
    let v = frr_json(&env, "show bgp summary json").unwrap();
    assert_eq!(
        v["ipv6Unicast"]["peers"][node1]["pfxRcd"], 1,
        "{}",
        v["ipv6Unicast"]
    );
    let dual: &[&str] = &["dual"];
    wait_bgp_statuses(&env, "web6", &[("node1", dual)]).await;
}
