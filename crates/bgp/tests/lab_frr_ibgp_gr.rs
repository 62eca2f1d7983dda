//! iBGP with FRR (reconfigured: node1 in AS 64512) carrying LOCAL_PREF, and graceful restart
//! (RFC 4724): when the speaker dies FRR keeps its route (stale) and traffic keeps flowing;
//! the restarted speaker's OPEN carries R and F bits, and its End-of-RIB clears the stale mark.
//! Needs root (network namespaces).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use ironlb_bgp::rib::RouteAttributes;
use ironlb_bgp::session::driver::PeerConfig;
use ironlb_bgp::session::fsm::{FsmConfig, GracefulRestartConfig, PeerAs, State};
use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions};
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::watch;

fn ibgp(lab: &Lab, restarting: bool) -> PeerConfig {
    let node = lab.topo.node(1);
    let mut fsm = FsmConfig::new(64512, PeerAs::Internal, node.ipv4);
    fsm.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting,
    });
    let mut c = PeerConfig::new(IpAddr::V4(lab.topo.router().ipv4), fsm);
    c.source_address = Some(IpAddr::V4(node.ipv4));
    c
}

fn curl(lab: &Lab) -> String {
    let out = lab
        .exec(
            "ext-client",
            &["curl", "-s", "--max-time", "2", "http://10.0.0.150/"],
        )
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn ibgp_local_pref_and_graceful_restart_with_frr() {
    let lab = Lab::start(LabOptions {
        nodes: 1,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab (needs root)");
    let node = lab.topo.node(1);
    let addr = node.ipv4.to_string();
    lab.router
        .cli(&[
            "configure terminal",
            "router bgp 64512",
            "bgp graceful-restart",
            &format!("no neighbor {addr}"),
            &format!("neighbor {addr} remote-as 64512"),
            "address-family ipv4 unicast",
            &format!("neighbor {addr} activate"),
            "exit-address-family",
        ])
        .unwrap();
    ironlb_lab::proc::run(
        "ip",
        &[
            "-n",
            &node.netns,
            "addr",
            "add",
            "10.0.0.150/32",
            "dev",
            "kube-ipvs0",
        ],
    )
    .unwrap();
    let rt = NetnsRuntime::new(&node.netns);
    let (_tx, rx) = watch::channel(routes(&[(
        "10.0.0.150/32",
        RouteAttributes {
            local_pref: Some(200),
            ..RouteAttributes::default()
        },
    )]));
    let first = rt.session(ibgp(&lab, false), rx.clone()).await;
    let st = wait_state(&first, State::Established, Duration::from_secs(30)).await;
    let n = st.negotiated.unwrap();
    assert!(!n.ebgp);
    assert!(n.peer_graceful_restart.is_some(), "FRR announces GR: {n:?}");
    eventually(
        "the iBGP path with LOCAL_PREF 200",
        Duration::from_secs(10),
        async || {
            let paths = frr_paths(&lab, "ipv4", "10.0.0.150/32")?;
            match paths.first() {
                Some(p) if p["locPrf"] == 200 && p["aspath"]["length"] == 0 => Ok(()),
                _ => Err(format!("{paths:?}")),
            }
        },
    )
    .await;
    assert_eq!(curl(&lab), "node1");

    // The speaker dies: no NOTIFICATION, the connection just closes.
    drop(first);
    eventually(
        "FRR keeps the route as stale",
        Duration::from_secs(10),
        async || {
            let paths = frr_paths(&lab, "ipv4", "10.0.0.150/32")?;
            match paths.first() {
                Some(p) if p["stale"] == true => Ok(()),
                _ => Err(format!("{paths:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        curl(&lab),
        "node1",
        "traffic flows while the speaker is away"
    );
    let v = frr_json(&lab, "show ip route 10.0.0.150/32 json").unwrap();
    assert!(
        v["10.0.0.150/32"].is_array(),
        "the route stays installed: {v}"
    );

    // The restarted speaker: R and F bits, full table, End-of-RIB clears the stale mark.
    let second = rt.session(ibgp(&lab, true), rx).await;
    wait_state(&second, State::Established, Duration::from_secs(30)).await;
    eventually(
        "the route is fresh again",
        Duration::from_secs(10),
        async || {
            let paths = frr_paths(&lab, "ipv4", "10.0.0.150/32")?;
            match &paths[..] {
                [p] if p["stale"].is_null() && p["locPrf"] == 200 => Ok(()),
                _ => Err(format!("{paths:?}")),
            }
        },
    )
    .await;
    // FRR keeps stale routes for the restart time (120 s) unless End-of-RIB arrives: the mark
    // going away within seconds is the End-of-RIB at work.
    assert_eq!(curl(&lab), "node1");
    second.stop().await;
}
