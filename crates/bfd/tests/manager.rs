//! Two managers on loopback (no privileges): sessions come Up, counters count, a malformed or
//! low-TTL packet is dropped by reason without disturbing the session, removal tells the peer
//! AdminDown, and a silent peer is detected within the detection time.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_bfd::manager::drop_reason;
use ironlb_bfd::packet::{ControlPacket, Diag, State};
use ironlb_bfd::{BfdCounters, BfdHandle, BfdManager, BfdParams, BfdPeer, ManagerConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn fast() -> BfdParams {
    BfdParams {
        desired_min_tx: Duration::from_millis(100),
        required_min_rx: Duration::from_millis(100),
        detect_mult: 3,
        ..BfdParams::default()
    }
}

/// Managers A (127.0.0.1) and B (127.0.0.2) on their own ports, one session each way.
async fn pair(
    a_params: BfdParams,
    b_params: BfdParams,
) -> (BfdManager, BfdManager, BfdHandle, BfdHandle, u16) {
    let (pa, pb) = (free_port(), free_port());
    let a = BfdManager::new(ManagerConfig {
        port: pa,
        peer_port: pb,
    })
    .unwrap();
    let b = BfdManager::new(ManagerConfig {
        port: pb,
        peer_port: pa,
    })
    .unwrap();
    let ha = a
        .add(BfdPeer {
            local: Some(ip(1)),
            peer: ip(2),
            params: a_params,
        })
        .await
        .unwrap();
    let hb = b
        .add(BfdPeer {
            local: Some(ip(2)),
            peer: ip(1),
            params: b_params,
        })
        .await
        .unwrap();
    (a, b, ha, hb, pa)
}

async fn wait_for(
    h: &BfdHandle,
    what: &str,
    limit: Duration,
    f: impl Fn(&ironlb_bfd::BfdState) -> bool,
) {
    let mut rx = h.state();
    if tokio::time::timeout(limit, rx.wait_for(|s| f(s)))
        .await
        .is_err()
    {
        panic!("{what} not within {limit:?}: {:?}", *rx.borrow());
    }
}

fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    BfdCounters::get(c)
}

#[tokio::test]
async fn sessions_come_up_count_and_survive_bad_packets() {
    let (a, _b, ha, hb, pa) = pair(fast(), fast()).await;
    let up = Duration::from_secs(5);
    wait_for(&ha, "A up", up, |s| s.is_up()).await;
    wait_for(&hb, "B up", up, |s| s.is_up()).await;
    assert!(*ha.up().borrow());
    // After the Poll Sequence both run at 100 ms × 3.
    wait_for(&ha, "fast timers", up, |s| {
        s.tx_interval == Duration::from_millis(100)
            && s.detection_time == Some(Duration::from_millis(300))
    })
    .await;
    let st = *ha.state().borrow();
    assert_eq!(st.remote_discriminator, hb.local_discriminator());
    assert_eq!(st.remote_state, State::Up);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = ha.counters();
    assert!(get(&c.control_packet_input) >= 5, "{c:?}");
    assert!(get(&c.control_packet_output) >= 5, "{c:?}");
    assert_eq!(
        get(&c.session_up_events),
        1,
        "{c:?} {:?} {:?}",
        *ha.state().borrow(),
        a.drops().all()
    );
    assert_eq!(get(&c.session_down_events), 0);
    assert_eq!(get(&c.echo_packet_output), 0);

    // Garbage, a multipoint packet and an authenticated one, from B's address, then a valid
    // packet with TTL 64 (below minimumTtl 254): all dropped by reason, session stays Up.
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip(2), 0)).unwrap();
    let to = SocketAddr::new(ip(1), pa);
    let mut p = ControlPacket {
        diag: Diag::None,
        state: State::Up,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: hb.local_discriminator(),
        your_discriminator: ha.local_discriminator(),
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
    }
    .encode();
    s.send_to(b"not bfd", to).unwrap();
    p[1] |= 0x01;
    s.send_to(&p, to).unwrap();
    p[1] = (p[1] & !0x01) | 0x04;
    p[3] = 24;
    let mut auth = p.to_vec();
    auth[3] = 28;
    auth.extend([1, 4, 0, 0]);
    s.send_to(&auth, to).unwrap();
    p[1] &= !0x04;
    // State Down: would take A down if it got through.
    p[1] = (p[1] & 0x3f) | (State::Down.to_bits() << 6);
    s.set_ttl(64).unwrap();
    s.send_to(&p, to).unwrap();
    // And a valid packet for a discriminator nobody has.
    let mut stray = p;
    stray[8..12].copy_from_slice(&0x7777_7777u32.to_be_bytes());
    s.set_ttl(255).unwrap();
    s.send_to(&stray, to).unwrap();
    let drops = a.drops();
    let deadline = Instant::now() + Duration::from_secs(3);
    while drops.all().iter().map(|(_, n)| n).sum::<u64>() < 5 {
        assert!(Instant::now() < deadline, "{:?}", drops.all());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(drops.get("truncated"), 1, "{:?}", drops.all());
    assert_eq!(drops.get("multipoint"), 1);
    assert_eq!(drops.get("authentication"), 1);
    assert_eq!(drops.get(drop_reason::TTL), 1);
    assert_eq!(drops.get(drop_reason::NO_SESSION), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ha.state().borrow().is_up());
    assert_eq!(get(&ha.counters().session_down_events), 0);
}

#[tokio::test]
async fn removal_tells_the_peer_admin_down_and_silence_is_detected() {
    let (_a, b, ha, hb, _) = pair(fast(), fast()).await;
    wait_for(&ha, "A up", Duration::from_secs(5), |s| s.is_up()).await;
    wait_for(&hb, "B up", Duration::from_secs(5), |s| s.is_up()).await;
    let mut b_up = hb.up();
    // Removing A's session: B hears AdminDown and goes Down, Neighbor Signaled Session Down.
    drop(ha);
    wait_for(&hb, "B down", Duration::from_secs(2), |s| {
        s.state == State::Down && s.diag == Diag::NeighborSignaledSessionDown
    })
    .await;
    assert_eq!(hb.state().borrow().remote_state, State::AdminDown);
    b_up.changed().await.unwrap();
    assert!(!*b_up.borrow());
    assert_eq!(get(&hb.counters().session_down_events), 1);
    drop(hb);
    drop(b);

    // A peer that just goes silent (its manager stops without a word): detected within the
    // 300 ms detection time (plus scheduling slack on a busy machine).
    let (_a, b, ha, hb, _) = pair(fast(), fast()).await;
    wait_for(&ha, "A up", Duration::from_secs(5), |s| {
        s.is_up() && s.detection_time == Some(Duration::from_millis(300))
    })
    .await;
    std::mem::forget(hb); // no AdminDown from B's handle
    let t0 = Instant::now();
    drop(b);
    wait_for(&ha, "A down", Duration::from_secs(2), |s| {
        s.state == State::Down && s.diag == Diag::ControlDetectionTimeExpired
    })
    .await;
    let took = t0.elapsed();
    assert!(
        took <= Duration::from_millis(600),
        "detected after {took:?}"
    );
    assert!(!*ha.up().borrow());
}

#[tokio::test]
async fn a_second_add_shares_the_session_and_passive_comes_up_with_an_active_peer() {
    let passive = BfdParams {
        passive: true,
        ..fast()
    };
    let (a, _b, ha, hb, _) = pair(passive, fast()).await;
    wait_for(&ha, "passive A up", Duration::from_secs(5), |s| s.is_up()).await;
    wait_for(&hb, "B up", Duration::from_secs(5), |s| s.is_up()).await;
    // A second handle for the same peer (a BGP session being replaced): the same session,
    // now with the new parameters (a Poll Sequence while Up, no flap).
    let slower = BfdParams {
        desired_min_tx: Duration::from_millis(200),
        required_min_rx: Duration::from_millis(200),
        ..fast()
    };
    let ha2 = a
        .add(BfdPeer {
            local: Some(ip(1)),
            peer: ip(2),
            params: slower,
        })
        .await
        .unwrap();
    assert_eq!(ha2.local_discriminator(), ha.local_discriminator());
    assert!(ha2.state().borrow().is_up());
    wait_for(
        &hb,
        "B detects A at 3 × 200 ms",
        Duration::from_secs(5),
        |s| s.detection_time == Some(Duration::from_millis(600)),
    )
    .await;
    // The old handle goes: the session stays, Up.
    drop(ha);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(ha2.state().borrow().is_up());
    assert!(hb.state().borrow().is_up());
    assert_eq!(get(&ha2.counters().session_down_events), 0);
    assert_eq!(get(&hb.counters().session_down_events), 0);
    // The last one goes: B is told AdminDown.
    drop(ha2);
    wait_for(&hb, "B down by A's word", Duration::from_secs(2), |s| {
        s.state == State::Down && s.remote_state == State::AdminDown
    })
    .await;
}

/// A stalled task (busy machine) does not take the session down when the peer's packets
/// did arrive in time: they are read before the detection time is judged.
#[tokio::test(flavor = "current_thread")]
async fn packets_queued_during_a_stall_count_before_the_detection_timer() {
    let (pa, pb) = (free_port(), free_port());
    let a = BfdManager::new(ManagerConfig {
        port: pa,
        peer_port: pb,
    })
    .unwrap();
    // B runs on its own thread and keeps sending while A's runtime is blocked; B accepts
    // packets only every second, so it does not miss A during the stall.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let b_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let b = BfdManager::new(ManagerConfig {
                port: pb,
                peer_port: pa,
            })
            .unwrap();
            let hb = b
                .add(BfdPeer {
                    local: Some(ip(2)),
                    peer: ip(1),
                    params: BfdParams {
                        required_min_rx: Duration::from_secs(1),
                        ..fast()
                    },
                })
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drop(hb);
        });
    });
    ready_rx.recv().unwrap();
    let ha = a
        .add(BfdPeer {
            local: Some(ip(1)),
            peer: ip(2),
            params: fast(),
        })
        .await
        .unwrap();
    wait_for(
        &ha,
        "A up at 300 ms detection",
        Duration::from_secs(5),
        |s| s.is_up() && s.detection_time == Some(Duration::from_millis(300)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        // Block A's only thread for longer than its detection time.
        std::thread::sleep(Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ha.state().borrow().is_up(), "{:?}", *ha.state().borrow());
    assert_eq!(get(&ha.counters().session_down_events), 0);
    stop_tx.send(()).unwrap();
    b_thread.join().unwrap();
}
