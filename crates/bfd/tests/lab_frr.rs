//! BFD against FRR's bfdd in the lab (needs root): sessions from two nodes come Up with the
//! negotiated intervals on FRR's side, a passive node waits for FRR, malformed packets are
//! dropped and counted while the session stays Up; with BGP, cutting a node's link makes FRR
//! drop its next hop within the BFD detection time, long before the 30 s hold time, and both
//! come back when the link does.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use ironlb_bfd::manager::drop_reason;
use ironlb_bfd::packet::{ControlPacket, Diag, State};
use ironlb_bfd::{BfdCounters, BfdParams, BfdPeer};
use ironlb_bgp::session::fsm::State as BgpState;
use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sessions_with_frr_active_passive_and_malformed_packets() {
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab (needs root)");
    let router = lab.topo.router().ipv4.to_string();
    let mut conf = frr_fast_profile();
    for i in 1..=2u8 {
        conf.extend([
            "bfd".to_string(),
            format!("peer {} local-address {router}", lab.topo.node(i).ipv4),
            "profile fast".to_string(),
            "exit".to_string(),
            "exit".to_string(),
        ]);
    }
    frr_configure(&lab, &conf);

    // node1 and node2 active, 100 ms × 3.
    let n1 = BfdNode::new(&lab, 1).await;
    let n2 = BfdNode::new(&lab, 2).await;
    let h1 = n1.add_router(&lab, fast()).await;
    let h2 = n2.add_router(&lab, fast()).await;
    for h in [&h1, &h2] {
        wait_bfd(
            h,
            "Up with FRR at 100 ms × 3",
            Duration::from_secs(15),
            |s| s.is_up() && s.detection_time == Some(Duration::from_millis(300)),
        )
        .await;
    }
    for (i, h) in [(1u8, &h1), (2, &h2)] {
        let addr = lab.topo.node(i).ipv4.to_string();
        eventually(
            "FRR sees the session up with our intervals",
            Duration::from_secs(10),
            async || {
                let p = frr_bfd_peer(&lab, &addr)?;
                let ok = p["status"] == "up"
                    && p["remote-id"] == h.local_discriminator()
                    && p["remote-receive-interval"] == 100
                    && p["remote-transmit-interval"] == 100
                    && p["remote-detect-multiplier"] == 3
                    && p["receive-interval"] == 100
                    && p["transmit-interval"] == 100;
                if ok { Ok(()) } else { Err(p.to_string()) }
            },
        )
        .await;
        let st = *h.state().borrow();
        assert_eq!(st.remote_state, State::Up);
        assert_eq!(st.tx_interval, Duration::from_millis(100));
        assert_eq!(
            st.remote_discriminator,
            frr_bfd_peer(&lab, &addr).unwrap()["id"].as_u64().unwrap() as u32
        );
    }

    // IPv6: node1 to the router's IPv6 address, next to its IPv4 session.
    let (r6, n1v6) = (lab.topo.router().ipv6, n1.host.ipv6);
    frr_configure(
        &lab,
        &[
            "bfd".to_string(),
            format!("peer {n1v6} local-address {r6}"),
            "profile fast".to_string(),
        ],
    );
    let h1v6 = n1
        .manager
        .add(BfdPeer {
            local: Some(IpAddr::V6(n1v6)),
            peer: IpAddr::V6(r6),
            params: fast(),
        })
        .await
        .unwrap();
    wait_bfd(&h1v6, "IPv6 Up with FRR", Duration::from_secs(15), |s| {
        s.is_up() && s.detection_time == Some(Duration::from_millis(300))
    })
    .await;
    let n1v6s = n1v6.to_string();
    eventually(
        "FRR sees the IPv6 session up",
        Duration::from_secs(10),
        async || {
            let p = frr_bfd_peer(&lab, &n1v6s)?;
            if p["status"] == "up" && p["remote-id"] == h1v6.local_discriminator() {
                Ok(())
            } else {
                Err(p.to_string())
            }
        },
    )
    .await;
    assert!(h1.state().borrow().is_up(), "IPv4 session unaffected");

    // node3 passive: silent while FRR has no session for it, Up once FRR starts one.
    let n3 = BfdNode::new(&lab, 3).await;
    let h3 = n3
        .add_router(
            &lab,
            BfdParams {
                passive: true,
                ..fast()
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(BfdCounters::get(&h3.counters().control_packet_output), 0);
    assert_eq!(h3.state().borrow().state, State::Down);
    frr_configure(
        &lab,
        &[
            "bfd".to_string(),
            format!("peer {} local-address {router}", lab.topo.node(3).ipv4),
            "profile fast".to_string(),
        ],
    );
    wait_bfd(&h3, "passive Up", Duration::from_secs(15), |s| s.is_up()).await;
    let n3addr = lab.topo.node(3).ipv4.to_string();
    eventually(
        "FRR up with passive node3",
        Duration::from_secs(10),
        async || match frr_bfd_status(&lab, &n3addr)? {
            s if s == "up" => Ok(()),
            s => Err(s),
        },
    )
    .await;

    // Malformed packets from the router's namespace to node1's port 3784: truncated, bad
    // version, authenticated; and a well-formed "Down" with TTL 64 (below minimumTtl 254).
    let ups_before = BfdCounters::get(&h1.counters().session_up_events);
    let target = SocketAddr::new(n1.host.ipv4.into(), 3784);
    let mut down = ControlPacket {
        diag: Diag::None,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: h1.state().borrow().remote_discriminator,
        your_discriminator: h1.local_discriminator(),
        desired_min_tx: 1_000_000,
        required_min_rx: 1_000_000,
        required_min_echo_rx: 0,
    }
    .encode();
    let mut bad_version = down;
    bad_version[0] = 0x40;
    let mut auth = down.to_vec();
    auth[1] |= 0x04;
    auth[3] = 28;
    auth.extend([1, 4, 0, 0]);
    down[1] = State::Down.to_bits() << 6;
    let router_rt = NetnsRuntime::new(&lab.topo.router().netns);
    let from = lab.topo.router().ipv4;
    router_rt
        .run(async move {
            let s = std::net::UdpSocket::bind(SocketAddr::new(from.into(), 0)).unwrap();
            s.set_ttl(255).unwrap();
            s.send_to(&[0x20, 0xc0, 3], target).unwrap();
            s.send_to(&bad_version, target).unwrap();
            s.send_to(&auth, target).unwrap();
            s.set_ttl(64).unwrap();
            s.send_to(&down, target).unwrap();
        })
        .await;
    let drops = n1.manager.drops();
    eventually("four drops counted", Duration::from_secs(5), async || {
        let all = drops.all();
        if all.iter().map(|(_, n)| n).sum::<u64>() >= 4 {
            Ok(())
        } else {
            Err(format!("{all:?}"))
        }
    })
    .await;
    assert_eq!(drops.get("truncated"), 1, "{:?}", drops.all());
    assert_eq!(drops.get("version"), 1);
    assert_eq!(drops.get("authentication"), 1);
    assert_eq!(drops.get(drop_reason::TTL), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h1.state().borrow().is_up());
    assert_eq!(BfdCounters::get(&h1.counters().session_down_events), 0);
    assert_eq!(
        BfdCounters::get(&h1.counters().session_up_events),
        ups_before
    );
    assert_eq!(
        frr_bfd_status(&lab, &n1.host.ipv4.to_string()).unwrap(),
        "up"
    );
    drop(router_rt);

    // Removing our session tells FRR AdminDown: FRR reports the peer down by its word rather
    // than by a detection timeout.
    let addr2 = n2.host.ipv4.to_string();
    drop(h2);
    eventually(
        "FRR sees node2 down by its word",
        Duration::from_secs(5),
        async || {
            let p = frr_bfd_peer(&lab, &addr2)?;
            if p["status"] == "down"
                && p["remote-diagnostic"] == "administratively down"
                && p["diagnostic"] == "neighbor signaled session down"
            {
                Ok(())
            } else {
                Err(p.to_string())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn link_cut_takes_the_next_hop_away_within_bfd_detection_not_hold_time() {
    let lab = Lab::start(LabOptions {
        nodes: 2,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab (needs root)");
    let mut conf = frr_fast_profile();
    conf.push("router bgp 64512".to_string());
    for i in 1..=2u8 {
        let a = lab.topo.node(i).ipv4;
        conf.push(format!("neighbor {a} timers 10 30"));
        conf.push(format!("neighbor {a} bfd profile fast"));
    }
    frr_configure(&lab, &conf);

    let n1 = BfdNode::new(&lab, 1).await;
    let n2 = BfdNode::new(&lab, 2).await;
    let h1 = n1.add_router(&lab, fast()).await;
    let h2 = n2.add_router(&lab, fast()).await;
    let (s1, _r1) = n1.bgp(&lab, "10.0.0.150/32", Some(&h1)).await;
    let (s2, _r2) = n2.bgp(&lab, "10.0.0.150/32", Some(&h2)).await;
    for s in [&s1, &s2] {
        let st = wait_state(s, BgpState::Established, Duration::from_secs(30)).await;
        assert_eq!(st.negotiated.unwrap().hold_time, 30);
    }
    for h in [&h1, &h2] {
        wait_bfd(h, "BFD Up with FRR", Duration::from_secs(15), |s| {
            s.is_up() && s.detection_time == Some(Duration::from_millis(300))
        })
        .await;
    }
    let (a1, a2) = (n1.host.ipv4.to_string(), n2.host.ipv4.to_string());
    let both = vec![a1.clone(), a2.clone()];
    let next_hops =
        || path_next_hops(&frr_paths(&lab, "ipv4", "10.0.0.150/32").unwrap_or_default());
    wait_hops_and_frr_bfd_up(
        &lab,
        "two next hops with BFD up on FRR",
        Duration::from_secs(15),
        "10.0.0.150/32",
        &both,
        &a1,
    )
    .await;

    // Cut node1's link. FRR must drop node1's path by BFD, well before the 30 s hold time.
    let t0 = Instant::now();
    set_link(&n1.host, false);
    let mut removed = None;
    while t0.elapsed() < Duration::from_secs(10) {
        if next_hops() == vec![a2.clone()] {
            removed = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let removed =
        removed.unwrap_or_else(|| panic!("node1's next hop still there: {:?}", next_hops()));
    assert!(
        removed < Duration::from_secs(3),
        "removed after {removed:?}"
    );
    let p = frr_bfd_peer(&lab, &a1).unwrap();
    assert_eq!(p["status"], "down", "{p}");
    // Our side: Down by detection timeout, and BGP closed (not waiting for the hold time).
    wait_bfd(&h1, "our side down", Duration::from_secs(1), |s| {
        s.state == State::Down && s.diag == Diag::ControlDetectionTimeExpired
    })
    .await;
    let ours = t0.elapsed();
    assert!(ours < Duration::from_secs(3), "{ours:?}");
    wait_state(&s1, BgpState::Idle, Duration::from_secs(2)).await;
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "well within the 30 s hold time"
    );
    // node2 untouched.
    assert!(h2.state().borrow().is_up());
    assert_eq!(s2.status().borrow().state, BgpState::Established);
    // BGP stays down while BFD is down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s1.status().borrow().state, BgpState::Idle);

    // Link back: BFD Up on both sides, BGP Established again, two next hops.
    set_link(&n1.host, true);
    wait_bfd(&h1, "BFD Up again", Duration::from_secs(20), |s| s.is_up()).await;
    wait_state(&s1, BgpState::Established, Duration::from_secs(30)).await;
    wait_hops_and_frr_bfd_up(
        &lab,
        "two next hops again",
        Duration::from_secs(20),
        "10.0.0.150/32",
        &both,
        &a1,
    )
    .await;
    let c = h1.counters();
    assert_eq!(BfdCounters::get(&c.session_up_events), 2);
    assert_eq!(BfdCounters::get(&c.session_down_events), 1);
}
