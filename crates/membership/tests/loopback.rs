//! Members on 127.0.0.1 (different ports), no privileges needed: joining, detection of a killed
//! member, graceful leave, authentication, replay refusal, desired-set changes, restarts.

mod common;

use common::*;
use foca::{Codec, Header, Member, Message, PostcardCodec};
use ironlb_membership::frame::{self, FrameKey};
use ironlb_membership::{EventKind, NodeId, Settings};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_members_see_each_other() {
    let nodes = cluster(5, Settings::default()).await;
    converge(&nodes, Duration::from_secs(3)).await;
    for n in &nodes {
        let s = n.m().stats();
        assert!(s.accepted > 0, "{}: {s:?}", n.name);
        assert_eq!(s.dropped_unauthenticated, 0, "{}: {s:?}", n.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_is_detected_within_a_second() {
    let mut nodes = cluster(4, Settings::default()).await;
    converge(&nodes, Duration::from_secs(3)).await;
    // Let probing settle into its steady state before the kill.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut events: Vec<_> = nodes.iter().map(|n| n.m().events()).collect();

    // Dropping the handle aborts the task: no leave is sent, as with kill -9.
    let killed_at = std::time::Instant::now();
    nodes[1].member = None;

    for (i, n) in nodes.iter().enumerate() {
        if i == 1 {
            continue;
        }
        let took = wait_for(n.m(), Duration::from_secs(1), |s| !s.contains("node2"))
            .await
            .unwrap_or_else(|seen| panic!("{} still sees node2 after 1 s: {seen:?}", n.name));
        println!("{} dropped node2 after {took:?}", n.name);
        let ev = loop {
            let ev = events[i].recv().await.expect("event");
            if ev.node == "node2" {
                break ev;
            }
        };
        assert_eq!(ev.kind, EventKind::Failed);
        assert!(ev.instant.duration_since(killed_at) < Duration::from_secs(1));
    }
    // And nobody else was dropped.
    for (i, n) in nodes.iter().enumerate() {
        if i != 1 {
            assert_eq!(n.live(), set(&["node1", "node3", "node4"]), "{}", n.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leave_is_seen_at_once() {
    // A suspicion long enough that probing alone cannot explain a drop within the bound below.
    let settings = Settings {
        suspect_to_down_after: Duration::from_millis(400),
        ..Settings::default()
    };
    let mut nodes = cluster(3, settings).await;
    converge(&nodes, Duration::from_secs(3)).await;
    let leaving = nodes[2].member.take().expect("running");
    let left_at = std::time::Instant::now();
    leaving.leave().await;
    for n in &nodes[..2] {
        // Probing could not notice in under ~400 ms (suspicion alone lasts that long).
        wait_for(n.m(), Duration::from_millis(150), |s| !s.contains("node3"))
            .await
            .unwrap_or_else(|seen| panic!("{} still sees node3: {seen:?}", n.name));
        println!(
            "{} saw node3 leave {:?} after it began leaving",
            n.name,
            left_at.elapsed()
        );
    }
    assert!(left_at.elapsed() < Duration::from_millis(250));
}

/// A SWIM gossip datagram from `src` to `dst` saying `victim` is down, as foca would encode it.
fn gossip_down(src: &NodeId, dst: &NodeId, victim: &NodeId) -> Vec<u8> {
    let mut payload = Vec::new();
    let header = Header {
        src: src.clone(),
        src_incarnation: 0,
        dst: dst.clone(),
        message: Message::Gossip,
    };
    PostcardCodec
        .encode_header(&header, &mut payload)
        .expect("encode header");
    payload.extend_from_slice(&1u16.to_be_bytes());
    PostcardCodec
        .encode_member(&Member::down(victim.clone()), &mut payload)
        .expect("encode member");
    payload
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_the_key_never_joins_and_cannot_forge_a_death() {
    let mut nodes = cluster(3, Settings::default()).await;
    // The intruder is in everyone's desired set: only the key keeps it out.
    let intruder = start("node4", b"not the key", Settings::default()).await;
    let mut desired = desired_of(&nodes);
    desired.insert("node4".into(), intruder.m().local_addr());
    for n in nodes.iter().chain([&intruder]) {
        n.desired.send_replace(desired.clone());
    }
    converge(&nodes, Duration::from_secs(3)).await;

    // Watch every live set for a while: node4 must never show up.
    let mut watchers: Vec<_> = nodes.iter().map(|n| n.m().live()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while tokio::time::Instant::now() < deadline {
        for (w, n) in watchers.iter_mut().zip(&nodes) {
            assert!(
                !w.borrow_and_update().contains("node4"),
                "{} lists the intruder",
                n.name
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        intruder.live(),
        set(&["node4"]),
        "the intruder sees nobody either"
    );
    let s = nodes[0].m().stats();
    assert!(
        s.dropped_unauthenticated > 0,
        "intruder datagrams dropped and counted: {s:?}"
    );

    // Stop the intruder so the counter below only sees the forged datagrams.
    drop(intruder);
    tokio::time::sleep(Duration::from_millis(50)).await;

    // A forged "node2 is down", as node3 would say it, but sealed with the wrong key.
    let (n1, n2, n3) = (
        nodes[0].m().identity().clone(),
        nodes[1].m().identity().clone(),
        nodes[2].m().identity().clone(),
    );
    let payload = gossip_down(&n3, &n1, &n2);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let before = nodes[0].m().stats().dropped_unauthenticated;
    let mut forged = Vec::new();
    for _ in 0..20 {
        frame::seal(
            &FrameKey::from_secret(b"not the key"),
            "node3",
            now_us(),
            &payload,
            &mut forged,
        )
        .expect("seal");
        sock.send_to(&forged, n1.addr).await.expect("send");
    }
    // Unsigned junk and a truncated frame too.
    sock.send_to(b"node2 is down", n1.addr).await.expect("send");
    sock.send_to(&forged[..forged.len() - 1], n1.addr)
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(nodes[0].live(), set(&["node1", "node2", "node3"]));
    assert_eq!(nodes[0].m().stats().dropped_unauthenticated - before, 22);

    // Control: the same datagram with the right key is acted on, so the check above can fail.
    let mut genuine = Vec::new();
    frame::seal(
        &FrameKey::from_secret(KEY),
        "node3",
        now_us(),
        &payload,
        &mut genuine,
    )
    .expect("seal");
    let mut ev = nodes[0].m().events();
    sock.send_to(&genuine, n1.addr).await.expect("send");
    let e = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let e = ev.recv().await.expect("event");
            if e.node == "node2" {
                break e;
            }
        }
    })
    .await
    .expect("the authentic death notice takes effect");
    assert_eq!(e.kind, EventKind::Failed);
    // node2 renews its identity and is back shortly.
    wait_for(nodes[0].m(), Duration::from_secs(2), |s| {
        s.contains("node2")
    })
    .await
    .expect("node2 rejoins");
    // Replaying the authentic datagram is refused.
    let before = nodes[0].m().stats().dropped_replayed;
    sock.send_to(&genuine, n1.addr).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(nodes[0].m().stats().dropped_replayed - before, 1);
    drop(nodes.pop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_set_changes_add_and_remove_members() {
    let nodes = cluster(3, Settings::default()).await;
    // Kubernetes first knows only node1 and node2 (node3 wants everyone).
    let all = desired_of(&nodes);
    let mut two = all.clone();
    two.remove("node3");
    nodes[0].desired.send_replace(two.clone());
    nodes[1].desired.send_replace(two.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for n in &nodes[..2] {
        assert_eq!(n.live(), set(&["node1", "node2"]), "{}", n.name);
        assert!(
            n.m().stats().dropped_not_member > 0,
            "node3's datagrams counted"
        );
    }
    assert_eq!(nodes[2].live(), set(&["node3"]));

    // node3 becomes desired everywhere.
    let mut ev = nodes[0].m().events();
    for n in &nodes[..2] {
        n.desired.send_replace(all.clone());
    }
    converge(&nodes, Duration::from_secs(2)).await;
    let e = ev.recv().await.expect("event");
    assert_eq!((e.node.as_str(), e.kind), ("node3", EventKind::Joined));

    // node2 is removed from the desired set of node1 and node3 (while still running).
    let mut without2 = all.clone();
    without2.remove("node2");
    nodes[0].desired.send_replace(without2.clone());
    nodes[2].desired.send_replace(without2.clone());
    for n in [&nodes[0], &nodes[2]] {
        wait_for(n.m(), Duration::from_millis(500), |s| {
            *s == set(&["node1", "node3"])
        })
        .await
        .unwrap_or_else(|seen| panic!("{} still sees {seen:?}", n.name));
    }
    let e = ev.recv().await.expect("event");
    assert_eq!((e.node.as_str(), e.kind), ("node2", EventKind::Removed));
    // It stays out although it keeps talking and gossip mentions it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(nodes[0].live(), set(&["node1", "node3"]));
    assert_eq!(nodes[2].live(), set(&["node1", "node3"]));

    // And it comes back when desired again.
    nodes[0].desired.send_replace(all.clone());
    nodes[2].desired.send_replace(all.clone());
    converge(&nodes, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_speaker_rejoins_with_a_new_boot_id() {
    let mut nodes = cluster(3, Settings::default()).await;
    converge(&nodes, Duration::from_secs(3)).await;
    let old = nodes[1].m().identity().clone();
    nodes[1].member = None; // killed
    for n in [&nodes[0], &nodes[2]] {
        wait_for(n.m(), Duration::from_secs(1), |s| !s.contains("node2"))
            .await
            .expect("detected");
    }
    // Restarted on another port (a new Pod); Kubernetes updates the address.
    let restarted = start("node2", KEY, Settings::default()).await;
    assert!(restarted.m().identity().boot > old.boot);
    nodes[1] = restarted;
    let desired = desired_of(&nodes);
    for n in &nodes {
        n.desired.send_replace(desired.clone());
    }
    converge(&nodes, Duration::from_secs(2)).await;
}

/// A speaker busy with thousands of Services can keep its runtime's threads for a while; its
/// member must still answer probes, or the others declare it dead and move its addresses.
/// node1 is started from a one-worker runtime whose only worker is then blocked for 1.5 s
/// (far past the 20 ms ack timeout and the 200 ms to refute a suspicion).
#[test]
fn a_member_whose_callers_runtime_is_blocked_stays_live() {
    let runtime = |workers| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime")
    };
    let (busy, main) = (runtime(1), runtime(2));
    let mut nodes = vec![busy.block_on(start("node1", KEY, Settings::default()))];
    for n in ["node2", "node3"] {
        nodes.push(main.block_on(start(n, KEY, Settings::default())));
    }
    let desired = desired_of(&nodes);
    for n in &nodes {
        n.desired.send_replace(desired.clone());
    }
    main.block_on(async {
        converge(&nodes, Duration::from_secs(3)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    busy.spawn(async { std::thread::sleep(Duration::from_millis(1500)) });
    main.block_on(async {
        let until = std::time::Instant::now() + Duration::from_secs(2);
        while std::time::Instant::now() < until {
            for n in &nodes[1..] {
                assert!(
                    n.live().contains("node1"),
                    "{} dropped node1 while node1's caller was busy: {:?}",
                    n.name,
                    n.live()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    drop(nodes);
}
