//! The session driver in three lab node namespaces against the lab's FRR (eBGP 64513 → 64512):
//! IPv4 and IPv6 prefixes with their attributes in FRR's table, ECMP with one next hop per node,
//! requests from ext-client spread over the nodes, minimal withdrawals, withdraw on stop.
//! Needs root (network namespaces).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use ironlb_bgp::packet::attribute::{Community, LargeCommunity};
use ironlb_bgp::packet::capability::Family;
use ironlb_bgp::rib::RouteAttributes;
use ironlb_bgp::session::fsm::State;
use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_announce_to_frr_with_attributes_ecmp_and_withdraw() {
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab (needs root)");
    let attrs = RouteAttributes {
        communities: vec![Community::new(64512, 100)],
        large_communities: vec![LargeCommunity {
            global_admin: 64512,
            local_data1: 1,
            local_data2: 2,
        }],
        ..RouteAttributes::default()
    };
    let mut runtimes = Vec::new();
    let mut sessions = Vec::new();
    let mut sessions6 = Vec::new();
    let mut senders = Vec::new();
    for i in 1..=3u8 {
        let node = lab.topo.node(i);
        let rt = NetnsRuntime::new(&node.netns);
        let mut list = vec![
            ("10.0.0.150/32", attrs.clone()),
            ("fd10::150/128", attrs.clone()),
        ];
        if i == 1 {
            list.push((
                "10.0.0.151/32",
                RouteAttributes {
                    med: Some(5),
                    ..RouteAttributes::default()
                },
            ));
        }
        // One session per family, as a dual-stack BGPPeer pair; each sends what it negotiated.
        let (tx, rx) = watch::channel(routes(&list));
        sessions.push(rt.session(ebgp_to_router(&lab, &node), rx.clone()).await);
        sessions6.push(rt.session(ebgp_to_router_v6(&lab, &node), rx).await);
        senders.push(tx);
        runtimes.push(rt);
    }
    for (s, family) in sessions
        .iter()
        .map(|s| (s, Family::IPV4_UNICAST))
        .chain(sessions6.iter().map(|s| (s, Family::IPV6_UNICAST)))
    {
        let st = wait_state(s, State::Established, Duration::from_secs(30)).await;
        let n = st.negotiated.unwrap();
        assert!(n.ebgp && n.four_octet_as);
        assert_eq!(n.peer_as, 64512);
        assert_eq!(n.families, vec![family]);
    }
    for i in 1..=3u8 {
        let addr = node_v4(&lab, i).to_string();
        eventually(
            "FRR sees the session Established",
            Duration::from_secs(10),
            async || match frr_neighbor_state(&lab, "ipv4Unicast", &addr)? {
                s if s == "Established" => Ok(()),
                s => Err(s),
            },
        )
        .await;
    }

    // IPv4: one path per node, each with the communities, AS path 64513, origin IGP.
    let want4: Vec<String> = (1..=3).map(|i| node_v4(&lab, i).to_string()).collect();
    eventually(
        "10.0.0.150/32 from three nodes",
        Duration::from_secs(10),
        async || {
            let paths = frr_paths(&lab, "ipv4", "10.0.0.150/32")?;
            if path_next_hops(&paths) == want4 {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        },
    )
    .await;
    for p in frr_paths(&lab, "ipv4", "10.0.0.150/32").unwrap() {
        assert_eq!(p["aspath"]["string"], "64513", "{p}");
        assert_eq!(p["origin"], "IGP", "{p}");
        assert_eq!(p["community"]["string"], "64512:100", "{p}");
        assert_eq!(p["largeCommunity"]["string"], "64512:1:2", "{p}");
    }
    let p151 = frr_paths(&lab, "ipv4", "10.0.0.151/32").unwrap();
    assert_eq!(p151.len(), 1);
    assert_eq!(p151[0]["metric"], 5, "MED: {}", p151[0]);

    // IPv6 over the IPv6 sessions, next hop the node's global address.
    let want6: Vec<String> = (1..=3).map(|i| lab.topo.node(i).ipv6.to_string()).collect();
    eventually(
        "fd10::150/128 from three nodes",
        Duration::from_secs(10),
        async || {
            let paths = frr_paths(&lab, "ipv6", "fd10::150/128")?;
            if path_next_hops(&paths) == want6 {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        },
    )
    .await;

    // ECMP: the kernel route has one next hop per node.
    eventually(
        "an ECMP route with three next hops",
        Duration::from_secs(10),
        async || {
            let v = frr_json(&lab, "show ip route 10.0.0.150/32 json")?;
            let hops: BTreeSet<String> = v["10.0.0.150/32"][0]["nexthops"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h["ip"].as_str().map(str::to_string))
                .collect();
            if hops.len() == 3 {
                Ok(())
            } else {
                Err(v.to_string())
            }
        },
    )
    .await;

    // Traffic: the address on each node's kube-ipvs0, flows hashed by ports at the router.
    for i in 1..=3u8 {
        let ns = lab.topo.node(i).netns;
        ironlb_lab::proc::run(
            "ip",
            &[
                "-n",
                &ns,
                "addr",
                "add",
                "10.0.0.150/32",
                "dev",
                "kube-ipvs0",
            ],
        )
        .unwrap();
    }
    lab.exec_ok(
        "router",
        &["sysctl", "-q", "-w", "net.ipv4.fib_multipath_hash_policy=1"],
    )
    .unwrap();
    let mut served = BTreeSet::new();
    for port in 0..24u16 {
        let out = lab
            .exec(
                "ext-client",
                &[
                    "curl",
                    "-s",
                    "--max-time",
                    "3",
                    "--local-port",
                    &(40000 + port * 7).to_string(),
                    "http://10.0.0.150/",
                ],
            )
            .unwrap();
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !name.is_empty() {
            served.insert(name);
        }
    }
    assert!(
        served.len() > 1,
        "requests from ext-client reached only {served:?}"
    );

    // Status and counters.
    let st = sessions[0].status().borrow().clone();
    // The IPv4 session carries the two IPv4 prefixes; the IPv6 one waits for the IPv6 session.
    assert_eq!((st.announced, st.pending), (2, 1));
    let st6 = sessions6[0].status().borrow().clone();
    assert_eq!((st6.announced, st6.pending), (1, 2));
    let stats = sessions[0].stats();
    assert!(
        stats
            .updates_sent
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );

    // A change goes out as a delta: 10.0.0.151 withdrawn, the rest untouched.
    let sent_before = stats
        .updates_sent
        .load(std::sync::atomic::Ordering::Relaxed);
    senders[0].send_modify(|r| {
        r.remove(&prefix("10.0.0.151/32"));
    });
    eventually(
        "10.0.0.151/32 withdrawn",
        Duration::from_secs(10),
        async || match frr_paths(&lab, "ipv4", "10.0.0.151/32")?.len() {
            0 => Ok(()),
            n => Err(format!("{n} paths")),
        },
    )
    .await;
    assert_eq!(
        stats
            .updates_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        sent_before + 1,
        "one UPDATE for one withdrawal"
    );
    assert_eq!(frr_paths(&lab, "ipv4", "10.0.0.150/32").unwrap().len(), 3);

    // Stopping node3's session withdraws its paths (Cease, FRR drops the routes).
    let third = sessions.pop().unwrap();
    third.stop().await;
    eventually("node3's paths gone", Duration::from_secs(10), async || {
        let paths = frr_paths(&lab, "ipv4", "10.0.0.150/32")?;
        if path_next_hops(&paths) == want4[..2] {
            Ok(())
        } else {
            Err(format!("{paths:?}"))
        }
    })
    .await;
    let state = frr_neighbor_state(&lab, "ipv4Unicast", &want4[2]).unwrap();
    assert_ne!(state, "Established");
    for s in sessions.into_iter().chain(sessions6) {
        s.stop().await;
    }
    drop(runtimes);
}

/// With both families activated on one neighbor, an IPv4 session carries IPv6 prefixes (in
/// MP_REACH_NLRI with the configured IPv6 next hop) and an IPv6 session carries IPv4 prefixes
/// (NEXT_HOP = the configured IPv4 address).
#[tokio::test(flavor = "multi_thread")]
async fn each_session_carries_both_families_when_frr_activates_them() {
    let lab = Lab::start(LabOptions {
        nodes: 2,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab (needs root)");
    let (n1, n2) = (lab.topo.node(1), lab.topo.node(2));
    lab.router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            "address-family ipv6 unicast",
            &format!("neighbor {} activate", n1.ipv4),
            "exit-address-family",
            "address-family ipv4 unicast",
            &format!("neighbor {} activate", n2.ipv6),
            "exit-address-family",
        ])
        .unwrap();
    let rt1 = NetnsRuntime::new(&n1.netns);
    let rt2 = NetnsRuntime::new(&n2.netns);
    let mut over_v4 = ebgp_to_router(&lab, &n1);
    over_v4.ipv6_next_hop = Some(n1.ipv6);
    let mut over_v6 = ebgp_to_router_v6(&lab, &n2);
    over_v6.ipv4_next_hop = Some(n2.ipv4);
    let (_tx1, rx1) = watch::channel(routes(&[
        ("10.0.0.160/32", RouteAttributes::default()),
        ("fd10::160/128", RouteAttributes::default()),
    ]));
    let (_tx2, rx2) = watch::channel(routes(&[
        ("10.0.0.161/32", RouteAttributes::default()),
        ("fd10::161/128", RouteAttributes::default()),
    ]));
    let s1 = rt1.session(over_v4, rx1).await;
    let s2 = rt2.session(over_v6, rx2).await;
    for s in [&s1, &s2] {
        let st = wait_state(s, State::Established, Duration::from_secs(30)).await;
        assert_eq!(
            st.negotiated.unwrap().families,
            vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        );
    }
    for (af, prefix, hop) in [
        ("ipv4", "10.0.0.160/32", n1.ipv4.to_string()),
        ("ipv6", "fd10::160/128", n1.ipv6.to_string()),
        ("ipv4", "10.0.0.161/32", n2.ipv4.to_string()),
        ("ipv6", "fd10::161/128", n2.ipv6.to_string()),
    ] {
        eventually(
            &format!("{prefix} via {hop}"),
            Duration::from_secs(10),
            async || {
                let paths = frr_paths(&lab, af, prefix)?;
                if path_next_hops(&paths) == vec![hop.clone()] {
                    Ok(())
                } else {
                    Err(format!("{paths:?}"))
                }
            },
        )
        .await;
    }
    let st = s1.status().borrow().clone();
    assert_eq!((st.announced, st.pending), (2, 0));
    s1.stop().await;
    s2.stop().await;
}
