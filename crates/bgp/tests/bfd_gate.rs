//! The driver following a BFD session (`PeerConfig::bfd`) against a scripted peer on loopback:
//! BFD never up does not hold BGP back; BFD down after up closes the session at once with a
//! Cease and keeps it closed; BFD up again brings it back to Established.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::capability::{Capability, Family};
use ironlb_bgp::packet::message::{Message, OpenMessage};
use ironlb_bgp::rib::Announcements;
use ironlb_bgp::session::driver::{BfdGate, PeerConfig, Session};
use ironlb_bgp::session::fsm::{FsmConfig, PeerAs, State};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const CTX: DecodeContext = DecodeContext {
    four_octet_as: true,
    ebgp: true,
};

/// Accepts the driver's connection and completes the OPEN exchange.
async fn accept(l: &TcpListener, limit: Duration) -> (TcpStream, Vec<u8>) {
    let (mut s, _) = tokio::time::timeout(limit, l.accept())
        .await
        .expect("the driver connects")
        .unwrap();
    let mut buf = Vec::new();
    assert!(matches!(
        next(&mut s, &mut buf).await,
        Some(Message::Open(_))
    ));
    let mut hello = Message::Open(OpenMessage::new(
        64512,
        90,
        Ipv4Addr::new(127, 0, 0, 9),
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
    ))
    .encode(&CTX);
    hello.extend(Message::Keepalive.encode(&CTX));
    s.write_all(&hello).await.unwrap();
    assert_eq!(next(&mut s, &mut buf).await, Some(Message::Keepalive));
    (s, buf)
}

/// The next message, or None when the connection closes.
async fn next(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Message> {
    loop {
        if let Ok((m, n)) = Message::decode(buf, &CTX) {
            buf.drain(..n);
            return Some(m);
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("the driver sends within 5 s")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn wait_state(session: &Session, state: State) {
    let mut rx = session.status();
    let ok = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| s.state == state))
        .await
        .is_ok();
    assert!(ok, "not {state}: {:?}", *rx.borrow());
}

#[tokio::test]
async fn bfd_down_closes_the_session_until_bfd_is_up_again() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut fsm = FsmConfig::new(64513, PeerAs::Fixed(64512), Ipv4Addr::new(127, 0, 0, 2));
    fsm.connect_time = Duration::from_secs(1);
    let mut cfg = PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), fsm);
    cfg.peer_port = l.local_addr().unwrap().port();
    let (bfd, bfd_rx) = watch::channel(false);
    cfg.bfd = Some(BfdGate(bfd_rx));
    let (_routes, rx) = watch::channel(Announcements::new());
    let session = Session::spawn(cfg, rx);

    // BFD not up yet: BGP comes up anyway.
    let (mut s, mut buf) = accept(&l, Duration::from_secs(5)).await;
    wait_state(&session, State::Established).await;
    bfd.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(session.status().borrow().state, State::Established);

    // BFD down: Cease at once, then the connection closes.
    let t0 = std::time::Instant::now();
    bfd.send(false).unwrap();
    loop {
        match next(&mut s, &mut buf).await {
            Some(Message::Notification(n)) => {
                assert_eq!(n.code, 6, "Cease: {n}");
                break;
            }
            Some(Message::Keepalive | Message::Update(_)) => continue,
            other => panic!("expected a Cease, got {other:?}"),
        }
    }
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(next(&mut s, &mut buf).await, None, "connection closed");
    wait_state(&session, State::Idle).await;

    // No reconnection while BFD stays down (the retry would come after 1 s otherwise).
    let again = tokio::time::timeout(Duration::from_secs(3), l.accept()).await;
    assert!(again.is_err(), "reconnected while BFD is down");
    assert_eq!(session.status().borrow().state, State::Idle);

    // BFD up: the session comes back.
    bfd.send(true).unwrap();
    let (_s, _) = accept(&l, Duration::from_secs(5)).await;
    wait_state(&session, State::Established).await;
    assert_eq!(
        session
            .stats()
            .established
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // The BFD session removed (channel closed): the session just runs on.
    drop(bfd);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(session.status().borrow().state, State::Established);
}
