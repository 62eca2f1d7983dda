//! Deterministic replay tests of the session state machine: event sequences in, exact action
//! sequences out.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_bgp::packet::capability::{Capability, Family};
use ironlb_bgp::packet::error::{DecodeError, HeaderErrorSubcode};
use ironlb_bgp::packet::message::{
    Message, NotificationMessage, OpenMessage, RouteRefreshMessage, UpdateMessage,
};
use ironlb_bgp::session::fsm::{
    Action, CollisionWinner, DownReason, Event, Fsm, FsmConfig, GracefulRestartConfig, PeerAs,
    State, Timer, resolve_collision,
};
use std::net::Ipv4Addr;
use std::time::Duration;

const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 231);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> FsmConfig {
    FsmConfig::new(64513, PeerAs::Fixed(64512), ME)
}

fn peer_open(asn: u32, hold: u16) -> Message {
    Message::Open(OpenMessage::new(
        asn,
        hold,
        ROUTER,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
        ],
    ))
}

fn notify(code: u8, subcode: u8) -> Action {
    Action::Send(Message::Notification(NotificationMessage::new(
        code, subcode,
    )))
}

/// The actions that end a connection from OpenSent on, then the retry after `backoff`.
fn failed(reason: DownReason, backoff: u64) -> Vec<Action> {
    let mut v = Vec::new();
    if let DownReason::NotificationSent(n) = &reason {
        v.push(Action::Send(Message::Notification(n.clone())));
    }
    v.extend([
        Action::StopTimer(Timer::Hold),
        Action::StopTimer(Timer::Keepalive),
        Action::Disconnect,
        Action::Down(reason),
        Action::StartTimer(Timer::ConnectRetry, secs(backoff)),
    ]);
    v
}

/// Drives a machine to Established with a peer proposing `hold`.
fn established(cfg: FsmConfig, hold: u16) -> Fsm {
    let mut fsm = Fsm::new(cfg);
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    fsm.handle(Event::Received(peer_open(64512, hold)));
    fsm.handle(Event::Received(Message::Keepalive));
    assert_eq!(fsm.state(), State::Established);
    fsm
}

#[test]
fn happy_path_to_established() {
    let mut fsm = Fsm::new(config());
    assert_eq!(
        fsm.handle(Event::Start),
        vec![
            Action::Connect,
            Action::StartTimer(Timer::ConnectRetry, secs(10))
        ]
    );
    assert_eq!(fsm.state(), State::Connect);
    let open = fsm.open_message();
    assert_eq!(
        fsm.handle(Event::TcpConnected),
        vec![
            Action::StopTimer(Timer::ConnectRetry),
            Action::Send(Message::Open(open.clone())),
            Action::StartTimer(Timer::Hold, secs(240)),
        ]
    );
    assert_eq!(open.asn(), 64513);
    assert_eq!(open.hold_time, 90);
    assert_eq!(
        open.families(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    // Peer proposes 30 s: min(90, 30) = 30, keepalive 10.
    assert_eq!(
        fsm.handle(Event::Received(peer_open(64512, 30))),
        vec![
            Action::Send(Message::Keepalive),
            Action::StartTimer(Timer::Keepalive, secs(10)),
            Action::StartTimer(Timer::Hold, secs(30)),
        ]
    );
    assert_eq!(fsm.state(), State::OpenConfirm);
    let actions = fsm.handle(Event::Received(Message::Keepalive));
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0], Action::StartTimer(Timer::Hold, secs(30)));
    let Action::Established(n) = &actions[1] else {
        panic!("{actions:?}")
    };
    assert_eq!((n.hold_time, n.keepalive, n.peer_as), (30, 10, 64512));
    assert!(n.ebgp && n.four_octet_as && n.route_refresh);
    assert_eq!(n.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert_eq!(fsm.state(), State::Established);
}

#[test]
fn keepalives_and_the_receive_hold_timer() {
    let mut fsm = established(config(), 9);
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::Keepalive)),
        vec![
            Action::Send(Message::Keepalive),
            Action::StartTimer(Timer::Keepalive, secs(3))
        ]
    );
    // Every KEEPALIVE and UPDATE from the peer restarts the hold timer.
    assert_eq!(
        fsm.handle(Event::Received(Message::Keepalive)),
        vec![Action::StartTimer(Timer::Hold, secs(9))]
    );
    let u = UpdateMessage::default();
    assert_eq!(
        fsm.handle(Event::Received(Message::Update(u.clone()))),
        vec![
            Action::StartTimer(Timer::Hold, secs(9)),
            Action::UpdateReceived(u)
        ]
    );
    // Silence for the hold time: NOTIFICATION 4/0, close, retry in 1 s.
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::Hold)),
        failed(
            DownReason::NotificationSent(NotificationMessage::new(4, 0)),
            1
        )
    );
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::ConnectRetry)),
        vec![
            Action::Connect,
            Action::StartTimer(Timer::ConnectRetry, secs(10))
        ]
    );
}

#[test]
fn hold_timer_runs_in_open_sent_and_open_confirm_too() {
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::Hold)),
        failed(
            DownReason::NotificationSent(NotificationMessage::new(4, 0)),
            1
        )
    );
    fsm.handle(Event::TimerExpired(Timer::ConnectRetry));
    fsm.handle(Event::TcpConnected);
    fsm.handle(Event::Received(peer_open(64512, 90)));
    assert_eq!(fsm.state(), State::OpenConfirm);
    // Second failure: the backoff has doubled.
    assert_eq!(
        fsm.handle(Event::TimerExpired(Timer::Hold)),
        failed(
            DownReason::NotificationSent(NotificationMessage::new(4, 0)),
            2
        )
    );
}

#[test]
fn hold_time_zero_means_no_timers() {
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    assert_eq!(
        fsm.handle(Event::Received(peer_open(64512, 0))),
        vec![
            Action::Send(Message::Keepalive),
            Action::StopTimer(Timer::Hold)
        ]
    );
    let a = fsm.handle(Event::Received(Message::Keepalive));
    assert!(matches!(&a[..], [Action::Established(n)] if n.hold_time == 0 && n.keepalive == 0));
}

#[test]
fn configured_keepalive_is_used_when_shorter_than_a_third() {
    let mut cfg = config();
    cfg.keepalive_time = Some(5);
    let fsm = established(cfg.clone(), 90);
    assert_eq!(fsm.negotiated().unwrap().keepalive, 5);
    cfg.keepalive_time = Some(60);
    let fsm = established(cfg, 90);
    assert_eq!(fsm.negotiated().unwrap().keepalive, 30);
}

#[test]
fn connect_retry_backs_off_from_1s_doubling_to_2_minutes() {
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    let mut delays = Vec::new();
    for i in 0..10 {
        // Alternate the two ways an attempt fails: refused, and timed out.
        let ev = if i % 2 == 0 {
            Event::TcpFailed
        } else {
            Event::TimerExpired(Timer::ConnectRetry)
        };
        let actions = fsm.handle(ev);
        assert_eq!(actions[0], Action::Disconnect);
        let Action::StartTimer(Timer::ConnectRetry, d) = actions[1] else {
            panic!("{actions:?}")
        };
        delays.push(d.as_secs());
        assert_eq!(fsm.state(), State::Active);
        assert_eq!(
            fsm.handle(Event::TimerExpired(Timer::ConnectRetry)),
            vec![
                Action::Connect,
                Action::StartTimer(Timer::ConnectRetry, secs(10))
            ]
        );
    }
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 64, 120, 120, 120]);
    // Reaching Established resets it.
    fsm.handle(Event::TcpConnected);
    fsm.handle(Event::Received(peer_open(64512, 90)));
    fsm.handle(Event::Received(Message::Keepalive));
    assert_eq!(fsm.backoff(), secs(1));
}

#[test]
fn open_checks() {
    let reject = |cfg: FsmConfig, open: Message| -> NotificationMessage {
        let mut fsm = Fsm::new(cfg);
        fsm.handle(Event::Start);
        fsm.handle(Event::TcpConnected);
        let a = fsm.handle(Event::Received(open));
        assert_eq!(fsm.state(), State::Idle);
        match &a[..] {
            [Action::Send(Message::Notification(n)), ..] => n.clone(),
            other => panic!("{other:?}"),
        }
    };
    // Wrong ASN: 2/2.
    assert_eq!(reject(config(), peer_open(65000, 90)).subcode, 2);
    // dynamicASN internal wants our own ASN; external anything else.
    let mut internal = config();
    internal.peer_as = PeerAs::Internal;
    assert_eq!(reject(internal.clone(), peer_open(64512, 90)).subcode, 2);
    let mut external = config();
    external.peer_as = PeerAs::External;
    assert_eq!(reject(external.clone(), peer_open(64513, 90)).subcode, 2);
    assert_eq!(
        established(external, 90).negotiated().unwrap().peer_as,
        64512
    );
    // iBGP with our own identifier: 2/3.
    let same_id = Message::Open(OpenMessage::new(64513, 90, ME, vec![]));
    assert_eq!(reject(internal, same_id).subcode, 3);
    // No common family: 2/7 with our multiprotocol capabilities as data.
    let v6_only = Message::Open(OpenMessage::new(
        64512,
        90,
        ROUTER,
        vec![Capability::Multiprotocol(Family::IPV6_UNICAST)],
    ));
    let mut v4 = config();
    v4.families = vec![Family::IPV4_UNICAST];
    let n = reject(v4.clone(), v6_only);
    assert_eq!((n.code, n.subcode), (2, 7));
    assert_eq!(n.data, vec![1, 4, 0, 1, 0, 1]);
    // A peer without multiprotocol capabilities speaks IPv4 unicast (RFC 4760 §8).
    let plain = Message::Open(OpenMessage::new(64512, 90, ROUTER, vec![]));
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    fsm.handle(Event::Received(plain));
    let a = fsm.handle(Event::Received(Message::Keepalive));
    assert!(
        matches!(&a[1], Action::Established(n) if n.families == vec![Family::IPV4_UNICAST]),
        "{a:?}"
    );
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    let a = fsm.handle(Event::Received(Message::Keepalive));
    assert_eq!(a[0], notify(5, 1));
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    fsm.handle(Event::Received(peer_open(64512, 90)));
    let a = fsm.handle(Event::Received(Message::Update(UpdateMessage::default())));
    assert_eq!(a[0], notify(5, 2));
    let mut fsm = established(config(), 90);
    let a = fsm.handle(Event::Received(peer_open(64512, 90)));
    assert_eq!(a[0], notify(5, 3));
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn decode_errors_send_their_notification() {
    let mut fsm = established(config(), 90);
    let e = DecodeError::Header {
        subcode: HeaderErrorSubcode::BadMessageType,
        data: vec![9],
    };
    let n = NotificationMessage {
        code: 1,
        subcode: 3,
        data: vec![9],
    };
    assert_eq!(
        fsm.handle(Event::ReceivedInvalid(e)),
        failed(DownReason::NotificationSent(n), 1)
    );
}

#[test]
fn peer_notification_and_connection_loss() {
    let mut fsm = established(config(), 90);
    let n = NotificationMessage::new(6, 2);
    assert_eq!(
        fsm.handle(Event::Received(Message::Notification(n.clone()))),
        failed(DownReason::NotificationReceived(n), 1)
    );
    let mut fsm = established(config(), 90);
    assert_eq!(
        fsm.handle(Event::TcpFailed),
        failed(DownReason::ConnectionLost, 1)
    );
}

#[test]
fn stop_sends_cease_and_stays_down() {
    let mut fsm = established(config(), 90);
    assert_eq!(
        fsm.handle(Event::Stop),
        vec![
            notify(6, 2),
            Action::StopTimer(Timer::Hold),
            Action::StopTimer(Timer::Keepalive),
            Action::Disconnect,
            Action::Down(DownReason::Stopped),
            Action::StopTimer(Timer::ConnectRetry),
        ]
    );
    assert!(
        fsm.handle(Event::TimerExpired(Timer::ConnectRetry))
            .is_empty()
    );
    assert_eq!(fsm.state(), State::Idle);
    // Stopping while connecting just gives up.
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    assert_eq!(
        fsm.handle(Event::Stop),
        vec![
            Action::StopTimer(Timer::ConnectRetry),
            Action::Disconnect,
            Action::Down(DownReason::Stopped)
        ]
    );
}

#[test]
fn route_refresh_asks_for_the_routes_again() {
    let mut fsm = established(config(), 90);
    let rr = |family| {
        Event::Received(Message::RouteRefresh(RouteRefreshMessage {
            family,
            subtype: 0,
        }))
    };
    assert_eq!(
        fsm.handle(rr(Family::IPV6_UNICAST)),
        vec![
            Action::StartTimer(Timer::Hold, secs(90)),
            Action::ResendRoutes(Family::IPV6_UNICAST)
        ]
    );
    // A family that was not negotiated is ignored.
    assert_eq!(
        fsm.handle(rr(Family { afi: 25, safi: 65 })),
        vec![Action::StartTimer(Timer::Hold, secs(90))]
    );
}

#[test]
fn graceful_restart_sets_r_and_f_bits_only_after_a_restart() {
    let mut cfg = config();
    cfg.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting: true,
    });
    let gr = |fsm: &Fsm| {
        fsm.open_message()
            .capabilities
            .into_iter()
            .find_map(|c| match c {
                Capability::GracefulRestart(g) => Some(g),
                _ => None,
            })
            .unwrap()
    };
    let mut fsm = Fsm::new(cfg.clone());
    let first = gr(&fsm);
    assert!(first.restart_state);
    assert_eq!(first.restart_time, 120);
    assert!(first.families.iter().all(|f| f.forwarding_state));
    assert_eq!(first.families.len(), 2);
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    fsm.handle(Event::Received(peer_open(64512, 90)));
    fsm.handle(Event::Received(Message::Keepalive));
    // Once synchronised, later OPENs are those of a normal (not restarting) speaker.
    fsm.handle(Event::TcpFailed);
    let later = gr(&fsm);
    assert!(!later.restart_state);
    assert!(later.families.iter().all(|f| !f.forwarding_state));
    // Without restarting, never set.
    cfg.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarting: false,
    });
    assert!(!gr(&Fsm::new(cfg)).restart_state);
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    assert_eq!(
        resolve_collision(ME, ROUTER),
        CollisionWinner::LocallyInitiated
    );
    assert_eq!(
        resolve_collision(ROUTER, ME),
        CollisionWinner::RemotelyInitiated
    );
    // Compared as unsigned integers, not bytes of text.
    assert_eq!(
        resolve_collision(Ipv4Addr::new(9, 255, 255, 255), Ipv4Addr::new(10, 0, 0, 0)),
        CollisionWinner::RemotelyInitiated
    );
    // The losing connection is closed with Cease 7.
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::Start);
    fsm.handle(Event::TcpConnected);
    fsm.handle(Event::Received(peer_open(64512, 90)));
    let a = fsm.handle(Event::OpenCollisionDump);
    assert_eq!(a[0], notify(6, 7));
    assert_eq!(fsm.state(), State::Idle);
}
