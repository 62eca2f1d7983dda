//! The session driver against a scripted peer on loopback (no privileges): full table then
//! End-of-RIB per family on establishment, minimal deltas, ROUTE-REFRESH, and the same again
//! after a reconnect.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ipnet::IpNet;
use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::capability::{Capability, Family};
use ironlb_bgp::packet::message::{Message, OpenMessage, RouteRefreshMessage, UpdateMessage};
use ironlb_bgp::rib::{Announcements, RouteAttributes};
use ironlb_bgp::session::driver::{PeerConfig, Session};
use ironlb_bgp::session::fsm::{FsmConfig, PeerAs, State};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const CTX: DecodeContext = DecodeContext {
    four_octet_as: true,
    ebgp: true,
};

struct Peer {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    async fn accept(l: &TcpListener) -> Peer {
        let (s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .unwrap()
            .unwrap();
        let mut p = Peer { s, buf: Vec::new() };
        assert!(matches!(p.next().await, Message::Open(_)));
        let mut hello = Message::Open(OpenMessage::new(
            64512,
            90,
            Ipv4Addr::new(127, 0, 0, 9),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
            ],
        ))
        .encode(&CTX);
        hello.extend(Message::Keepalive.encode(&CTX));
        p.s.write_all(&hello).await.unwrap();
        assert_eq!(p.next().await, Message::Keepalive);
        p
    }

    async fn next(&mut self) -> Message {
        loop {
            if let Ok((m, n)) = Message::decode(&self.buf, &CTX) {
                self.buf.drain(..n);
                return m;
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(Duration::from_secs(5), self.s.read(&mut chunk))
                .await
                .expect("the driver sends within 5 s")
                .unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn update(&mut self) -> UpdateMessage {
        match self.next().await {
            Message::Update(u) => u,
            other => panic!("expected UPDATE, got {other:?}"),
        }
    }

    /// UPDATEs until End-of-RIB for both families; returns the prefixes announced.
    async fn table_until_eor(&mut self) -> BTreeSet<IpNet> {
        let mut got = BTreeSet::new();
        let mut eor = Vec::new();
        while eor.len() < 2 {
            let u = self.update().await;
            match u.end_of_rib_family() {
                Some(f) => eor.push(f),
                None => {
                    assert!(eor.is_empty(), "routes after End-of-RIB: {u:?}");
                    got.extend(u.reachable());
                }
            }
        }
        assert_eq!(eor, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
        got
    }
}

fn set(list: &[&str]) -> BTreeSet<IpNet> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

fn announcements(list: &[&str]) -> Announcements {
    set(list)
        .into_iter()
        .map(|p| (p, RouteAttributes::default()))
        .collect()
}

#[tokio::test]
async fn full_table_then_end_of_rib_deltas_refresh_and_reconnect() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let mut fsm = FsmConfig::new(64513, PeerAs::Fixed(64512), Ipv4Addr::new(127, 0, 0, 2));
    fsm.connect_time = Duration::from_secs(2);
    let mut cfg = PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), fsm);
    cfg.peer_port = port;
    cfg.ipv6_next_hop = Some("fd00::2".parse().unwrap());
    let first = ["10.0.0.150/32", "10.0.0.151/32", "fd10::150/128"];
    let (tx, rx) = watch::channel(announcements(&first));
    let session = Session::spawn(cfg, rx);

    let mut peer = Peer::accept(&l).await;
    assert_eq!(peer.table_until_eor().await, set(&first));
    let mut status = session.status();
    status
        .wait_for(|s| s.state == State::Established && s.announced == 3)
        .await
        .unwrap();

    // A change: one prefix withdrawn, one added — exactly that goes out.
    tx.send(announcements(&[
        "10.0.0.150/32",
        "fd10::150/128",
        "10.0.0.152/32",
    ]))
    .unwrap();
    let w = peer.update().await;
    assert_eq!(
        w.unreachable(),
        vec!["10.0.0.151/32".parse::<IpNet>().unwrap()]
    );
    let a = peer.update().await;
    assert_eq!(
        a.reachable(),
        vec!["10.0.0.152/32".parse::<IpNet>().unwrap()]
    );

    // ROUTE-REFRESH: the whole table again.
    let rr = Message::RouteRefresh(RouteRefreshMessage {
        family: Family::IPV4_UNICAST,
        subtype: 0,
    });
    peer.s.write_all(&rr.encode(&CTX)).await.unwrap();
    let mut again = BTreeSet::new();
    while again.len() < 3 {
        again.extend(peer.update().await.reachable());
    }
    assert_eq!(
        again,
        set(&["10.0.0.150/32", "fd10::150/128", "10.0.0.152/32"])
    );

    // The peer drops the connection: the driver reconnects (1 s backoff) and resends all.
    drop(peer);
    let mut peer = Peer::accept(&l).await;
    assert_eq!(
        peer.table_until_eor().await,
        set(&["10.0.0.150/32", "fd10::150/128", "10.0.0.152/32"])
    );
    let stats = session.stats();
    assert_eq!(
        stats.established.load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // Stop: Cease / administrative shutdown.
    let stop = tokio::spawn(session.stop());
    match peer.next().await {
        Message::Notification(n) => assert_eq!((n.code, n.subcode), (6, 2)),
        other => panic!("{other:?}"),
    }
    stop.await.unwrap();
}

/// Multi-hop eBGP sends with TTL 255, single-hop eBGP (fixed or `dynamicASN: external`) with
/// TTL 1, iBGP with the system default.
#[test]
fn session_ttl_follows_ebgp_multihop_and_the_peer_as() {
    use ironlb_bgp::session::driver::session_ttl;
    let peer = |peer_as: PeerAs, multihop: bool| {
        let mut c = PeerConfig::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            FsmConfig::new(64513, peer_as, Ipv4Addr::new(10, 0, 0, 2)),
        );
        c.ebgp_multihop = multihop;
        c
    };
    assert_eq!(session_ttl(&peer(PeerAs::Fixed(64512), false)), Some(1));
    assert_eq!(session_ttl(&peer(PeerAs::External, false)), Some(1));
    assert_eq!(session_ttl(&peer(PeerAs::Fixed(64512), true)), Some(255));
    assert_eq!(session_ttl(&peer(PeerAs::External, true)), Some(255));
    assert_eq!(session_ttl(&peer(PeerAs::Fixed(64513), false)), None);
    assert_eq!(session_ttl(&peer(PeerAs::Internal, false)), None);
}
