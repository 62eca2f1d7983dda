//! TCP MD5 (RFC 2385) with FRR: the right password brings the session up, a wrong one keeps it
//! down. Needs root (network namespaces).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use ironlb_bgp::rib::RouteAttributes;
use ironlb_bgp::session::fsm::State;
use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions};
use std::time::Duration;
use tokio::sync::watch;

/// The TCP sockets to port 179 left in `host`'s namespace (`ss -tan`): none may outlive a
/// stopped session (an orphan retransmitting to a peer that filters us keeps the namespace
/// alive after the lab is gone). TIME-WAIT entries are the normal end of a clean close and
/// die with the namespace, so they do not count.
fn bgp_sockets(lab: &Lab, host: &str) -> Vec<String> {
    let out = lab.exec_ok(host, &["ss", "-Htan"]).unwrap();
    out.lines()
        .filter(|l| l.contains(":179") && !l.starts_with("TIME-WAIT"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn md5_sessions_with_frr_need_the_right_password() {
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
            &format!("neighbor {} password s3cret", n1.ipv4),
            &format!("neighbor {} password s3cret", n2.ipv4),
        ])
        .unwrap();
    let (_tx, rx) = watch::channel(routes(&[("10.0.0.150/32", RouteAttributes::default())]));
    let rt1 = NetnsRuntime::new(&n1.netns);
    let rt2 = NetnsRuntime::new(&n2.netns);
    let mut right = ebgp_to_router(&lab, &n1);
    right.password = Some("s3cret".into());
    let mut wrong = ebgp_to_router(&lab, &n2);
    wrong.password = Some("guess".into());
    let good = rt1.session(right, rx.clone()).await;
    let bad = rt2.session(wrong, rx).await;
    wait_state(&good, State::Established, Duration::from_secs(30)).await;
    eventually(
        "FRR has the route from the signed session",
        Duration::from_secs(10),
        async || {
            let paths = frr_paths(&lab, "ipv4", "10.0.0.150/32")?;
            if path_next_hops(&paths) == vec![n1.ipv4.to_string()] {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        },
    )
    .await;
    // Give the wrong password several connection attempts (1 s, 2 s, 4 s backoff).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let st = bad.status().borrow().clone();
    assert_ne!(st.state, State::Established, "{st:?}");
    assert_eq!(
        bad.stats()
            .established
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_ne!(
        frr_neighbor_state(&lab, "ipv4Unicast", &n2.ipv4.to_string()).unwrap(),
        "Established"
    );
    assert_eq!(frr_paths(&lab, "ipv4", "10.0.0.150/32").unwrap().len(), 1);
    good.stop().await;
    bad.stop().await;
    for host in ["node1", "node2"] {
        assert_eq!(bgp_sockets(&lab, host), Vec::<String>::new(), "{host}");
    }
}

/// `ebgpMultiHop` sends with TTL 255: FRR with `ttl-security hops 1` (GTSM, RFC 5082) accepts
/// only that, and refuses the default TTL.
#[tokio::test(flavor = "multi_thread")]
async fn multihop_sessions_send_with_ttl_255() {
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
            &format!("neighbor {} ttl-security hops 1", n1.ipv4),
            &format!("neighbor {} ttl-security hops 1", n2.ipv4),
        ])
        .unwrap();
    let (_tx, rx) = watch::channel(routes(&[("10.0.0.150/32", RouteAttributes::default())]));
    let rt1 = NetnsRuntime::new(&n1.netns);
    let rt2 = NetnsRuntime::new(&n2.netns);
    let mut multihop = ebgp_to_router(&lab, &n1);
    multihop.ebgp_multihop = true;
    let good = rt1.session(multihop, rx.clone()).await;
    let plain = rt2.session(ebgp_to_router(&lab, &n2), rx).await;
    wait_state(&good, State::Established, Duration::from_secs(30)).await;
    eventually(
        "FRR has the route from the TTL 255 session",
        Duration::from_secs(10),
        async || {
            let paths = frr_paths(&lab, "ipv4", "10.0.0.150/32")?;
            if path_next_hops(&paths) == vec![n1.ipv4.to_string()] {
                Ok(())
            } else {
                Err(format!("{paths:?}"))
            }
        },
    )
    .await;
    // FRR sets IP_MINTTL on the accepted socket, so an OPEN already queued may still be read
    // and our side may briefly think it is up; what counts is that FRR never gets there.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_ne!(
        frr_neighbor_state(&lab, "ipv4Unicast", &n2.ipv4.to_string()).unwrap(),
        "Established"
    );
    assert_eq!(
        path_next_hops(&frr_paths(&lab, "ipv4", "10.0.0.150/32").unwrap()),
        vec![n1.ipv4.to_string()]
    );
    good.stop().await;
    plain.stop().await;
    for host in ["node1", "node2"] {
        assert_eq!(bgp_sockets(&lab, host), Vec::<String>::new(), "{host}");
    }
}
