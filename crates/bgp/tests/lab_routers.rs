//! The session driver from node1 against the lab's other routers: BIRD 2 and GoBGP, over IPv4
//! and IPv6, with the prefixes and communities in each router's table.
//! Needs root (network namespaces).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use ironlb_bgp::packet::attribute::{Community, LargeCommunity};
use ironlb_bgp::packet::capability::Family;
use ironlb_bgp::rib::RouteAttributes;
use ironlb_bgp::session::fsm::State;
use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions, RouterKind};
use std::time::Duration;
use tokio::sync::watch;

async fn announce_to(kind: RouterKind) {
    let lab = Lab::start(LabOptions {
        nodes: 1,
        router: kind,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab (needs root)");
    let node = lab.topo.node(1);
    let rt = NetnsRuntime::new(&node.netns);
    let attrs = RouteAttributes {
        communities: vec![Community::new(64512, 100)],
        large_communities: vec![LargeCommunity {
            global_admin: 64512,
            local_data1: 1,
            local_data2: 2,
        }],
        ..RouteAttributes::default()
    };
    let (tx, rx) = watch::channel(routes(&[
        ("10.0.0.150/32", attrs.clone()),
        ("fd10::150/128", attrs),
    ]));
    let v4 = rt.session(ebgp_to_router(&lab, &node), rx.clone()).await;
    let v6 = rt.session(ebgp_to_router_v6(&lab, &node), rx).await;
    for (s, family) in [(&v4, Family::IPV4_UNICAST), (&v6, Family::IPV6_UNICAST)] {
        let st = wait_state(s, State::Established, Duration::from_secs(30)).await;
        assert_eq!(st.negotiated.unwrap().families, vec![family], "{kind}");
    }
    let (table4, table6): (Vec<&str>, Vec<&str>) = match kind {
        RouterKind::Bird => (
            vec!["show", "route", "10.0.0.150/32", "all"],
            vec!["show", "route", "fd10::150/128", "all"],
        ),
        RouterKind::Gobgp => (
            vec!["global", "rib", "-a", "ipv4"],
            vec!["global", "rib", "-a", "ipv6"],
        ),
        RouterKind::Frr => unreachable!(),
    };
    let want = |hop: String| {
        let (community, large) = match kind {
            RouterKind::Bird => ("(64512,100)", "(64512, 1, 2)"),
            _ => ("64512:100", "64512:1:2"),
        };
        move |out: &str| {
            out.contains(&hop)
                && out.contains("64513")
                && out.contains(community)
                && out.contains(large)
        }
    };
    for (cmd, hop, prefix) in [
        (&table4, node.ipv4.to_string(), "10.0.0.150/32"),
        (&table6, node.ipv6.to_string(), "fd10::150/128"),
    ] {
        let check = want(hop);
        eventually(
            &format!("{prefix} in {kind}'s table"),
            Duration::from_secs(15),
            async || {
                let out = lab.router.cli(cmd).map_err(|e| e.to_string())?;
                if out.contains(prefix) && check(&out) {
                    Ok(())
                } else {
                    Err(out)
                }
            },
        )
        .await;
    }
    // Withdrawal reaches the router too.
    tx.send_modify(|r| {
        r.remove(&prefix("10.0.0.150/32"));
    });
    // (birdc fails on a lookup of a missing network: list everything instead.)
    let all4: Vec<&str> = match kind {
        RouterKind::Bird => vec!["show", "route"],
        _ => table4.clone(),
    };
    eventually(
        &format!("10.0.0.150/32 gone from {kind}"),
        Duration::from_secs(15),
        async || {
            let out = lab.router.cli(&all4).map_err(|e| e.to_string())?;
            if out.contains("10.0.0.150/32") {
                Err(out)
            } else {
                Ok(())
            }
        },
    )
    .await;
    v4.stop().await;
    v6.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_with_bird_carry_ipv4_and_ipv6() {
    announce_to(RouterKind::Bird).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_with_gobgp_carry_ipv4_and_ipv6() {
    announce_to(RouterKind::Gobgp).await;
}
