//! A scripted peer in the lab's `client` namespace (a plain TcpListener on port 1790) answers
//! the session driver of node1 with malformed messages; each gets the NOTIFICATION that
//! RFC 4271 / RFC 7606 prescribe, a treat-as-withdraw UPDATE keeps the session up, a silent
//! peer is dropped by the receive hold timer, and node2's session to FRR is never disturbed.
//! Needs root (network namespaces).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::*;
use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::capability::{Capability, Family};
use ironlb_bgp::packet::message::{Message, NotificationMessage, OpenMessage};
use ironlb_bgp::rib::RouteAttributes;
use ironlb_bgp::session::driver::PeerConfig;
use ironlb_bgp::session::fsm::{FsmConfig, PeerAs, State};
use ironlb_lab::{Lab, LabOptions};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PORT: u16 = 1790;
const CTX: DecodeContext = DecodeContext {
    four_octet_as: true,
    ebgp: true,
};

#[derive(Clone, Copy, PartialEq)]
enum When {
    /// Sent in place of the peer's OPEN.
    InsteadOfOpen,
    /// Sent once the session is Established.
    Established,
}

struct Case {
    name: &'static str,
    when: When,
    peer_hold: u16,
    bytes: Vec<u8>,
    /// (code, subcode, data) expected; `None`: no NOTIFICATION within `wait`.
    expect: Option<(u8, u8, Option<Vec<u8>>)>,
    wait: Duration,
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A message with a correct header around `body` (hex).
fn msg(kind: u8, body: &str) -> Vec<u8> {
    let body = hex(body);
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(kind);
    v.extend_from_slice(&body);
    v
}

fn peer_open(asn: u32, hold: u16) -> Vec<u8> {
    Message::Open(OpenMessage::new(
        asn,
        hold,
        Ipv4Addr::new(10, 0, 0, 100),
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
    ))
    .encode(&CTX)
}

const GOOD_ATTRS: &str = "40 01 01 00 40 02 06 02 01 0000fc00 40 03 04 0a000064";

fn update_with(attrs: &str) -> Vec<u8> {
    let a = hex(attrs);
    msg(2, &format!("0000 {:04x} {attrs} 18 0a0102", a.len()))
}

fn cases() -> Vec<Case> {
    let s = Duration::from_secs;
    let reset = |name, when, bytes, code, subcode, data| Case {
        name,
        when,
        peer_hold: 90,
        bytes,
        expect: Some((code, subcode, data)),
        wait: s(10),
    };
    let mut bad_marker = msg(4, "");
    bad_marker[0] = 0xfe;
    let mut long = msg(2, "0000 0000");
    long[16..18].copy_from_slice(&5000u16.to_be_bytes());
    use When::*;
    vec![
        reset(
            "OPEN version 3",
            InsteadOfOpen,
            msg(1, "03 fc00 005a 0a000064 00"),
            2,
            1,
            Some(vec![0, 4]),
        ),
        reset(
            "OPEN from the wrong AS",
            InsteadOfOpen,
            peer_open(65000, 90),
            2,
            2,
            None,
        ),
        reset(
            "OPEN hold time 2",
            InsteadOfOpen,
            peer_open(64512, 2),
            2,
            6,
            None,
        ),
        reset(
            "OPEN with an authentication parameter",
            InsteadOfOpen,
            msg(1, "04 fc00 005a 0a000064 04 01 02 0000"),
            2,
            4,
            None,
        ),
        reset("bad marker", Established, bad_marker, 1, 1, None),
        reset(
            "length 5000",
            Established,
            long,
            1,
            2,
            Some(vec![0x13, 0x88]),
        ),
        reset(
            "message type 9",
            Established,
            msg(9, ""),
            1,
            3,
            Some(vec![9]),
        ),
        reset(
            "KEEPALIVE of 20 octets",
            Established,
            msg(4, "00"),
            1,
            2,
            Some(vec![0, 20]),
        ),
        reset(
            "unknown well-known attribute",
            Established,
            update_with(&format!("{GOOD_ATTRS} 40 63 01 00")),
            3,
            2,
            Some(hex("40 63 01 00")),
        ),
        reset(
            "MP_UNREACH twice",
            Established,
            update_with(&format!("80 0f 03 0002 01 80 0f 03 0002 01 {GOOD_ATTRS}")),
            3,
            1,
            None,
        ),
        reset(
            "withdrawn length past the end",
            Established,
            msg(2, "00ff 0000"),
            3,
            1,
            None,
        ),
        reset(
            "OPEN in Established",
            Established,
            peer_open(64512, 90),
            5,
            3,
            None,
        ),
        Case {
            name: "bad ORIGIN is treat-as-withdraw, no reset",
            when: Established,
            peer_hold: 90,
            bytes: update_with("40 01 01 07 40 02 06 02 01 0000fc00 40 03 04 0a000064"),
            expect: None,
            wait: s(2),
        },
        Case {
            name: "silent peer with hold time 3: hold timer expires",
            when: Established,
            peer_hold: 3,
            bytes: vec![],
            expect: Some((4, 0, None)),
            wait: s(10),
        },
    ]
}

async fn read_msg(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Message, String> {
    loop {
        match Message::decode(buf, &CTX) {
            Ok((m, n)) => {
                buf.drain(..n);
                return Ok(m);
            }
            Err(ironlb_bgp::packet::error::DecodeError::Incomplete) => {}
            Err(e) => return Err(format!("undecodable message from the driver: {e}")),
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What the scripted peer saw: the NOTIFICATION (if any), how long after the bytes it came, and
/// the connection (kept open until the test has read the driver's state).
type Outcome = (Option<NotificationMessage>, Duration, TcpStream);

/// Plays one case.
async fn serve(l: Arc<TcpListener>, case: Case) -> Result<Outcome, String> {
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(15), l.accept())
        .await
        .map_err(|_| "the driver did not connect".to_string())?
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    match read_msg(&mut s, &mut buf).await? {
        Message::Open(o) => assert_eq!(o.asn(), 64513),
        other => return Err(format!("expected OPEN, got {other:?}")),
    }
    if case.when == When::Established {
        let mut hello = peer_open(64512, case.peer_hold);
        hello.extend(Message::Keepalive.encode(&CTX));
        s.write_all(&hello).await.map_err(|e| e.to_string())?;
        loop {
            match read_msg(&mut s, &mut buf).await? {
                Message::Keepalive => break,
                Message::Notification(n) => {
                    return Err(format!("NOTIFICATION {n} before Established"));
                }
                _ => {}
            }
        }
        // The driver sends its table and End-of-RIB after the KEEPALIVE; let them through.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.write_all(&case.bytes).await.map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + case.wait;
    loop {
        match tokio::time::timeout_at(deadline, read_msg(&mut s, &mut buf)).await {
            Err(_) => return Ok((None, t0.elapsed(), s)),
            Ok(Err(e)) => return Err(format!("{e} without a NOTIFICATION")),
            Ok(Ok(Message::Notification(n))) => return Ok((Some(n), t0.elapsed(), s)),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_messages_from_a_scripted_peer_get_the_right_notifications() {
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab (needs root)");
    let client = NetnsRuntime::new(&lab.topo.client().netns);
    let node1 = NetnsRuntime::new(&lab.topo.node(1).netns);
    let node2 = NetnsRuntime::new(&lab.topo.node(2).netns);
    let listener = Arc::new(
        client
            .run(async { TcpListener::bind(("0.0.0.0", PORT)).await })
            .await
            .unwrap(),
    );
    let (_tx, rx) = watch::channel(routes(&[("10.0.0.150/32", RouteAttributes::default())]));
    // The bystander: node2 to FRR.
    let frr = node2
        .session(ebgp_to_router(&lab, &lab.topo.node(2)), rx.clone())
        .await;
    wait_state(&frr, State::Established, Duration::from_secs(30)).await;

    let mut failures = Vec::new();
    for case in cases() {
        let name = case.name;
        let expect = case.expect.clone();
        let mut fsm = FsmConfig::new(64513, PeerAs::Fixed(64512), lab.topo.node(1).ipv4);
        fsm.families = vec![Family::IPV4_UNICAST];
        let mut cfg = PeerConfig::new(IpAddr::V4(lab.topo.client().ipv4), fsm);
        cfg.peer_port = PORT;
        let session = node1.session(cfg, rx.clone()).await;
        let got = client.run(serve(listener.clone(), case)).await;
        let status = session.status().borrow().clone();
        let stats = session.stats();
        session.stop().await;
        let (notification, after, _connection) = match got {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let got_tuple = notification
            .as_ref()
            .map(|n| (n.code, n.subcode, n.data.clone()));
        let ok = match (&expect, &got_tuple) {
            (None, None) => {
                // Still up, and the UPDATE was taken in (and counted), not fatal.
                status.state == State::Established
                    && stats.updates_received.load(Ordering::Relaxed) == 1
            }
            (Some((c, sc, data)), Some((gc, gsc, gdata))) => {
                c == gc && sc == gsc && data.as_ref().is_none_or(|d| d == gdata)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{name}: expected {expect:?}, got {got_tuple:?} ({status:?})"
            ));
        }
        if name.starts_with("silent peer") {
            assert!(
                after >= Duration::from_millis(2500) && after < Duration::from_secs(6),
                "hold timer of 3 s fired after {after:?}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The other session never noticed.
    let st = frr.status().borrow().clone();
    assert_eq!(st.state, State::Established);
    assert_eq!(frr.stats().established.load(Ordering::Relaxed), 1);
    assert_eq!(frr.stats().notifications_sent.load(Ordering::Relaxed), 0);
    frr.stop().await;
}
