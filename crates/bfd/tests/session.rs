//! The session state machine: single-event checks of RFC 5880 §6.8, and replayed exchanges
//! between two instances over a simulated link with a virtual clock.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_bfd::packet::{ControlPacket, Diag, State};
use ironlb_bfd::params::BfdParams;
use ironlb_bfd::session::{Action, Event, SLOW_TX, Session};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn params(tx: u64, rx: u64, mult: u8) -> BfdParams {
    BfdParams {
        desired_min_tx: ms(tx),
        required_min_rx: ms(rx),
        detect_mult: mult,
        ..BfdParams::default()
    }
}

fn sent(actions: &[Action]) -> Vec<ControlPacket> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(*p),
            _ => None,
        })
        .collect()
}

fn changes(actions: &[Action]) -> Vec<(State, State, Diag)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
            _ => None,
        })
        .collect()
}

/// A packet from the peer (discriminator 99) to our discriminator `your`.
fn from_peer(state: State, your: u32) -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 99,
        your_discriminator: your,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
    }
}

#[test]
fn active_start_sends_down_at_the_slow_rate() {
    let t0 = Instant::now();
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    let a = s.handle(t0, Event::Start);
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].state, State::Down);
    assert_eq!(p[0].my_discriminator, 7);
    assert_eq!(p[0].your_discriminator, 0);
    assert_eq!(p[0].detect_mult, 3);
    // Not Up: at least one second (§6.8.3), although 100 ms is configured.
    assert_eq!(p[0].desired_min_tx, 1_000_000);
    assert_eq!(p[0].required_min_rx, 100_000);
    assert_eq!(p[0].required_min_echo_rx, 0, "no Echo function");
    let next = s.next_tx().unwrap() - t0;
    assert!(next >= ms(750) && next <= SLOW_TX, "{next:?}");
    assert!(a.contains(&Action::TxDeadline(s.next_tx())));
    assert_eq!(s.detect_deadline(), None, "nothing heard yet");
    // The timer sends again and re-arms.
    let at = s.next_tx().unwrap();
    let p = sent(&s.handle(at, Event::TxTimer));
    assert_eq!(p.len(), 1);
    assert!(s.next_tx().unwrap() > at);
}

#[test]
fn passive_waits_for_the_peer_then_answers_at_once() {
    let t0 = Instant::now();
    let mut s = Session::new(
        BfdParams {
            passive: true,
            ..params(100, 100, 3)
        },
        7,
        1,
    );
    assert!(sent(&s.handle(t0, Event::Start)).is_empty());
    assert_eq!(s.next_tx(), None);
    assert!(sent(&s.handle(t0 + ms(10), Event::TxTimer)).is_empty());
    let a = s.handle(t0 + ms(500), Event::Received(from_peer(State::Down, 0)));
    assert_eq!(changes(&a), vec![(State::Down, State::Init, Diag::None)]);
    let p = sent(&a);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].state, p[0].your_discriminator), (State::Init, 99));
    assert!(s.next_tx().is_some());
    // Silence for a detection time: the peer is forgotten and a passive session goes quiet.
    let det = s.detect_deadline().unwrap();
    assert_eq!(det - (t0 + ms(500)), ms(300), "3 × max(100, 100) ms");
    let a = s.handle(det, Event::DetectTimer);
    assert_eq!(
        changes(&a),
        vec![(State::Init, State::Down, Diag::ControlDetectionTimeExpired)]
    );
    assert_eq!(s.remote_discriminator(), 0);
    assert!(sent(&a).is_empty(), "passive again: nothing to send");
    assert_eq!(s.next_tx(), None);
}

#[test]
fn handshake_table_of_6_8_6() {
    let t = Instant::now();
    // Down + Init -> Up.
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    s.handle(t, Event::Start);
    let a = s.handle(t, Event::Received(from_peer(State::Init, 7)));
    assert_eq!(changes(&a), vec![(State::Down, State::Up, Diag::None)]);
    // Down + Up: ignored (the peer must see us first).
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    let a = s.handle(t, Event::Received(from_peer(State::Up, 7)));
    assert!(changes(&a).is_empty());
    assert_eq!(s.state(), State::Down);
    // Init + Down: stays Init; Init + Up -> Up.
    s.handle(t, Event::Received(from_peer(State::Down, 0)));
    assert_eq!(s.state(), State::Init);
    s.handle(t, Event::Received(from_peer(State::Down, 7)));
    assert_eq!(s.state(), State::Init);
    let a = s.handle(t, Event::Received(from_peer(State::Up, 7)));
    assert_eq!(changes(&a), vec![(State::Init, State::Up, Diag::None)]);
    // Up + Init, Up + Up: stay; Up + Down -> Down, Neighbor Signaled Session Down.
    s.handle(t, Event::Received(from_peer(State::Init, 7)));
    s.handle(t, Event::Received(from_peer(State::Up, 7)));
    assert_eq!(s.state(), State::Up);
    let a = s.handle(t, Event::Received(from_peer(State::Down, 7)));
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::Down, Diag::NeighborSignaledSessionDown)]
    );
    assert_eq!(sent(&a)[0].diag, Diag::NeighborSignaledSessionDown);
    // Peer AdminDown takes Init or Up down; Down stays Down.
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    s.handle(t, Event::Received(from_peer(State::Down, 0)));
    let a = s.handle(t, Event::Received(from_peer(State::AdminDown, 7)));
    assert_eq!(
        changes(&a),
        vec![(State::Init, State::Down, Diag::NeighborSignaledSessionDown)]
    );
    let a = s.handle(t, Event::Received(from_peer(State::AdminDown, 7)));
    assert!(changes(&a).is_empty());
}

#[test]
fn a_packet_for_another_discriminator_is_ignored() {
    let t = Instant::now();
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    let a = s.handle(t, Event::Received(from_peer(State::Init, 8)));
    assert!(a.is_empty());
    assert_eq!(s.remote_discriminator(), 0);
}

#[test]
fn a_poll_is_answered_at_once_with_final() {
    let t = Instant::now();
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    s.handle(t, Event::Start);
    let mut p = from_peer(State::Down, 0);
    p.poll = true;
    let a = s.handle(t + ms(1), Event::Received(p));
    let out = sent(&a);
    assert_eq!(out.len(), 1, "one packet: the Final carries the new state");
    assert!(out[0].final_ && !out[0].poll);
    assert_eq!(out[0].state, State::Init);
}

#[test]
fn intervals_follow_the_peer() {
    let t = Instant::now();
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    s.handle(t, Event::Start);
    s.handle(t, Event::Received(from_peer(State::Init, 7)));
    assert_eq!(s.state(), State::Up);
    // The peer wants packets at most every 500 ms and sends every 200 ms with multiplier 4.
    let mut p = from_peer(State::Up, 7);
    p.required_min_rx = 500_000;
    p.desired_min_tx = 200_000;
    p.detect_mult = 4;
    p.final_ = true; // completes our Poll, so our 100 ms is in force
    s.handle(t + ms(1), Event::Received(p));
    assert_eq!(s.tx_interval(), ms(500), "max(local 100, remote rx 500)");
    assert_eq!(
        s.detection_time(),
        Some(ms(800)),
        "remote mult 4 × max(local rx 100, remote tx 200)"
    );
    assert_eq!(s.detect_deadline(), Some(t + ms(801)));
}

#[test]
fn jitter_is_75_to_100_percent_and_at_most_90_with_multiplier_1() {
    for (mult, hi) in [(3u8, 1000u128), (1, 900)] {
        let t = Instant::now();
        let mut s = Session::new(params(1000, 1000, mult), 7, 12345);
        s.handle(t, Event::Start);
        let (mut min, mut max) = (u128::MAX, 0);
        let mut at = s.next_tx().unwrap();
        let mut last = t;
        for _ in 0..2000 {
            let gap = (at - last).as_millis();
            min = min.min(gap);
            max = max.max(gap);
            last = at;
            s.handle(at, Event::TxTimer);
            at = s.next_tx().unwrap();
        }
        assert!(min >= 750 && max <= hi, "mult {mult}: {min}..{max}");
        assert!(
            min < 760 && max > hi - 10,
            "spread over the range: {min}..{max}"
        );
    }
}

#[test]
fn admin_down_and_up() {
    let t = Instant::now();
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    s.handle(t, Event::Start);
    s.handle(t, Event::Received(from_peer(State::Init, 7)));
    let a = s.handle(t, Event::AdminDown);
    assert_eq!(
        changes(&a),
        vec![(State::Up, State::AdminDown, Diag::AdministrativelyDown)]
    );
    let p = sent(&a);
    assert_eq!(
        (p[0].state, p[0].diag),
        (State::AdminDown, Diag::AdministrativelyDown)
    );
    assert_eq!(s.detect_deadline(), None);
    // Received packets change nothing while AdminDown.
    let a = s.handle(t, Event::Received(from_peer(State::Init, 7)));
    assert!(changes(&a).is_empty());
    let a = s.handle(t, Event::AdminUp);
    assert_eq!(
        changes(&a),
        vec![(State::AdminDown, State::Down, Diag::None)]
    );
}

#[test]
fn remote_demand_mode_stops_periodic_transmission_while_both_up() {
    let t = Instant::now();
    let mut s = Session::new(params(100, 100, 3), 7, 1);
    s.handle(t, Event::Start);
    s.handle(t, Event::Received(from_peer(State::Init, 7)));
    let mut p = from_peer(State::Up, 7);
    p.demand = true;
    s.handle(t, Event::Received(p));
    let a = s.handle(t + ms(200), Event::TxTimer);
    assert!(sent(&a).is_empty());
    assert_eq!(s.next_tx(), None);
}

// ---- Two sessions over a simulated link ----

struct Sim {
    now: Instant,
    ends: [Session; 2],
    /// (deliver at, to end, packet)
    wire: Vec<(Instant, usize, ControlPacket)>,
    latency: Duration,
    /// Packets from end i are lost.
    cut: [bool; 2],
    log: Vec<(Duration, usize, Action)>,
    t0: Instant,
    /// Required Min Echo RX Interval (µs) written into end i's packets: a peer that loops
    /// echoes (our Session itself always advertises 0).
    echo_rx: [u32; 2],
    /// Echoes are lost (control packets still pass).
    echo_cut: bool,
    /// (back at, to end, sequence number)
    echoes: Vec<(Instant, usize, u64)>,
}

impl Sim {
    fn new(a: BfdParams, b: BfdParams) -> Sim {
        let t0 = Instant::now();
        let mut sim = Sim {
            now: t0,
            ends: [Session::new(a, 0x1111, 1), Session::new(b, 0x2222, 2)],
            wire: Vec::new(),
            latency: ms(1),
            cut: [false; 2],
            log: Vec::new(),
            t0,
            echo_rx: [0; 2],
            echo_cut: false,
            echoes: Vec::new(),
        };
        sim.event(0, Event::Start);
        sim.event(1, Event::Start);
        sim
    }

    fn event(&mut self, i: usize, e: Event) {
        let actions = self.ends[i].handle(self.now, e);
        for a in actions {
            if let Action::Send(p) = &a
                && !self.cut[i]
            {
                let mut p = *p;
                if self.echo_rx[i] != 0 {
                    p.required_min_echo_rx = self.echo_rx[i];
                }
                self.wire.push((self.now + self.latency, 1 - i, p));
            }
            if let Action::SendEcho(seq) = &a
                && !self.cut[i]
                && !self.echo_cut
            {
                // There and back through the peer's forwarding.
                self.echoes.push((self.now + self.latency * 2, i, *seq));
            }
            self.log.push((self.now - self.t0, i, a));
        }
    }

    /// Runs every event due up to `until`, in time order.
    fn run_until(&mut self, until: Instant) {
        loop {
            let mut next: Option<(Instant, u8, usize)> = None;
            let mut consider = |at: Option<Instant>, kind: u8, i: usize| {
                if let Some(at) = at
                    && at <= until
                    && next.is_none_or(|(n, _, _)| at < n)
                {
                    next = Some((at, kind, i));
                }
            };
            for (k, (at, _, _)) in self.wire.iter().enumerate() {
                consider(Some(*at), 0, k);
            }
            for (k, (at, _, _)) in self.echoes.iter().enumerate() {
                consider(Some(*at), 3, k);
            }
            for i in 0..2 {
                consider(self.ends[i].detect_deadline(), 1, i);
                consider(self.ends[i].next_tx(), 2, i);
                consider(self.ends[i].echo_detect_deadline(), 4, i);
                consider(self.ends[i].echo_tx_deadline(), 5, i);
            }
            let Some((at, kind, i)) = next else { break };
            self.now = self.now.max(at);
            match kind {
                0 => {
                    let (_, to, p) = self.wire.remove(i);
                    self.event(to, Event::Received(p));
                }
                1 => self.event(i, Event::DetectTimer),
                2 => self.event(i, Event::TxTimer),
                3 => {
                    let (_, to, seq) = self.echoes.remove(i);
                    self.event(to, Event::EchoReceived(seq));
                }
                4 => self.event(i, Event::EchoDetectTimer),
                _ => self.event(i, Event::EchoTxTimer),
            }
        }
        self.now = until;
    }

    fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    fn changes_of(&self, i: usize) -> Vec<(State, State, Diag)> {
        self.log
            .iter()
            .filter(|(_, e, _)| *e == i)
            .filter_map(|(_, _, a)| match a {
                Action::StateChanged { from, to, diag } => Some((*from, *to, *diag)),
                _ => None,
            })
            .collect()
    }

    fn sent_by(&self, i: usize, from: Duration) -> Vec<(Duration, ControlPacket)> {
        self.log
            .iter()
            .filter(|(t, e, _)| *e == i && *t >= from)
            .filter_map(|(t, _, a)| match a {
                Action::Send(p) => Some((*t, *p)),
                _ => None,
            })
            .collect()
    }
}

impl Sim {
    /// Times (since the start) end i sent echoes, from `from` on.
    fn echoes_by(&self, i: usize, from: Duration) -> Vec<Duration> {
        self.log
            .iter()
            .filter(|(t, e, a)| *e == i && *t >= from && matches!(a, Action::SendEcho(_)))
            .map(|(t, _, _)| *t)
            .collect()
    }
}

fn with_echo(p: BfdParams, echo_ms: u64) -> BfdParams {
    BfdParams {
        echo_interval: Some(ms(echo_ms)),
        ..p
    }
}

#[test]
fn replay_echo_runs_at_the_slower_of_both_intervals_and_control_slows_down() {
    // End 0 wants echoes every 50 ms; end 1 accepts them no faster than every 70 ms.
    let mut sim = Sim::new(with_echo(params(100, 100, 3), 50), params(100, 100, 3));
    sim.echo_rx[1] = 70_000;
    sim.run_for(ms(3000));
    let us = &sim.ends[0];
    assert_eq!(us.state(), State::Up);
    assert!(us.echo_active());
    assert!(!sim.ends[1].echo_active(), "end 1 has no echo interval");
    assert_eq!(us.echo_interval(), Some(ms(70)));
    assert_eq!(us.echo_detection_time(), Some(ms(210)));
    // Every 70 ms exactly (no jitter on echoes), sequence numbers counting up.
    let times = sim.echoes_by(0, ms(1000));
    assert!(times.len() >= 25, "{times:?}");
    for w in times.windows(2) {
        assert_eq!(w[1] - w[0], ms(70));
    }
    let seqs: Vec<u64> = sim
        .log
        .iter()
        .filter_map(|(_, _, a)| match a {
            Action::SendEcho(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(
        sim.log
            .iter()
            .filter(|(_, e, a)| *e == 0 && *a == Action::EchoActive(true))
            .count(),
        1
    );
    // While echoes run, Required Min RX goes to 1 s (§6.8.3), confirmed by a Poll Sequence:
    // the peer slows its control packets to 1 s, and our detection time follows.
    assert_eq!(us.advertised(), (ms(100), ms(1000)));
    assert!(!us.polling());
    assert_eq!(sim.ends[1].tx_interval(), ms(1000));
    assert_eq!(us.detection_time(), Some(ms(3000)));
    assert_eq!(us.tx_interval(), ms(100), "our control packets stay fast");
    assert!(
        sim.sent_by(0, Duration::ZERO)
            .iter()
            .all(|(_, p)| p.required_min_echo_rx == 0)
    );
    for i in 0..2 {
        assert!(
            sim.changes_of(i)
                .iter()
                .all(|(_, to, _)| *to != State::Down),
            "no flap: {:?}",
            sim.changes_of(i)
        );
    }
}

#[test]
fn replay_lost_echoes_take_the_session_down_with_echo_function_failed() {
    let mut sim = Sim::new(with_echo(params(100, 100, 3), 50), params(100, 100, 3));
    sim.echo_rx[1] = 50_000;
    sim.run_for(ms(3000));
    assert!(sim.ends[0].echo_active());
    let cut_at = sim.now - sim.t0;
    sim.echo_cut = true;
    sim.run_for(ms(300));
    let down: Vec<_> = sim
        .log
        .iter()
        .filter(|(t, e, a)| {
            *e == 0
                && *t >= cut_at
                && matches!(
                    a,
                    Action::StateChanged {
                        to: State::Down,
                        ..
                    }
                )
        })
        .collect();
    let (t, _, a) = down
        .first()
        .unwrap_or_else(|| panic!("not down: {:?}", sim.log));
    assert_eq!(
        *a,
        Action::StateChanged {
            from: State::Up,
            to: State::Down,
            diag: Diag::EchoFunctionFailed
        }
    );
    // 3 × 50 ms after the last echo that came back (sent at most 50 ms before the cut).
    let after = *t - cut_at;
    assert!(
        after > ms(95) && after <= ms(152),
        "down {after:?} after the cut"
    );
    // The peer is told at once (control packets still pass).
    assert!(
        sim.changes_of(1)
            .contains(&(State::Up, State::Down, Diag::NeighborSignaledSessionDown)),
        "{:?}",
        sim.changes_of(1)
    );
    assert!(
        sim.log
            .iter()
            .any(|(_, e, a)| *e == 0 && *a == Action::EchoActive(false))
    );
    // Echoes back: the session comes Up again (each time it came Up in between, echoes failed
    // again, with the same diagnostic).
    sim.echo_cut = false;
    sim.run_for(ms(4000));
    assert_eq!(sim.ends[0].state(), State::Up);
    assert!(sim.ends[0].echo_active());
    assert!(
        sim.changes_of(0)
            .iter()
            .filter(|(_, to, _)| *to == State::Down)
            .all(|(_, _, d)| *d == Diag::EchoFunctionFailed)
    );
    let settled = sim.now - sim.t0 - ms(1000);
    assert!(sim.echoes_by(0, settled).len() >= 19);
}

#[test]
fn replay_echo_waits_for_the_peer_and_stops_when_it_stops_accepting() {
    let mut sim = Sim::new(with_echo(params(100, 100, 3), 50), params(100, 100, 3));
    sim.run_for(ms(2000));
    // The peer advertises a Required Min Echo RX of 0: no echoes (§6.8.9), fast control.
    assert_eq!(sim.ends[0].state(), State::Up);
    assert!(!sim.ends[0].echo_active());
    assert!(sim.echoes_by(0, Duration::ZERO).is_empty());
    assert_eq!(sim.ends[0].echo_interval(), None);
    assert_eq!(sim.ends[0].advertised(), (ms(100), ms(100)));
    // It starts accepting echoes: they start.
    sim.echo_rx[1] = 50_000;
    sim.run_for(ms(1500));
    assert!(sim.ends[0].echo_active());
    assert_eq!(sim.ends[0].advertised().1, ms(1000));
    // It stops: echoes stop, Required Min RX back to 100 ms after a Poll Sequence.
    sim.echo_rx[1] = 0;
    sim.run_for(ms(2500));
    assert!(!sim.ends[0].echo_active());
    assert_eq!(sim.ends[0].echo_tx_deadline(), None);
    assert_eq!(sim.ends[0].echo_detect_deadline(), None);
    assert_eq!(sim.ends[0].advertised(), (ms(100), ms(100)));
    assert!(!sim.ends[0].polling());
    assert_eq!(sim.ends[1].tx_interval(), ms(100));
    let last = sim.echoes_by(0, Duration::ZERO).last().copied().unwrap();
    assert!(
        last < sim.now - sim.t0 - ms(1000),
        "no echo after it stopped"
    );
    assert!(
        sim.changes_of(0)
            .iter()
            .all(|(_, to, _)| *to != State::Down)
    );
}

#[test]
fn stale_or_foreign_echo_sequence_numbers_do_not_count() {
    let t = Instant::now();
    let mut s = Session::new(with_echo(params(100, 100, 3), 50), 7, 1);
    s.handle(t, Event::Start);
    let mut p = from_peer(State::Init, 7);
    p.required_min_echo_rx = 50_000;
    let a = s.handle(t, Event::Received(p));
    assert_eq!(s.state(), State::Up);
    assert!(a.contains(&Action::EchoActive(true)));
    assert!(a.contains(&Action::SendEcho(1)), "{a:?}");
    assert_eq!(s.echo_detect_deadline(), Some(t + ms(150)));
    // A number never sent does not re-arm the echo detection timer; the one sent does.
    s.handle(t + ms(10), Event::EchoReceived(2));
    assert_eq!(s.echo_detect_deadline(), Some(t + ms(150)));
    s.handle(t + ms(10), Event::EchoReceived(1));
    assert_eq!(s.echo_detect_deadline(), Some(t + ms(160)));
    // Early timers do nothing.
    assert!(s.handle(t + ms(20), Event::EchoTxTimer).is_empty());
    assert!(s.handle(t + ms(20), Event::EchoDetectTimer).is_empty());
    assert_eq!(s.state(), State::Up);
    let a = s.handle(t + ms(50), Event::EchoTxTimer);
    assert_eq!(a, vec![Action::SendEcho(2)]);
    let a = s.handle(t + ms(160), Event::EchoDetectTimer);
    assert_eq!(s.state(), State::Down);
    assert_eq!(s.local_diag(), Diag::EchoFunctionFailed);
    assert!(a.contains(&Action::EchoActive(false)));
    // Echoes of the old run do not count in the next one.
    let mut p = from_peer(State::Down, 7);
    p.required_min_echo_rx = 50_000;
    s.handle(t + ms(200), Event::Received(p));
    let mut p = from_peer(State::Up, 7);
    p.required_min_echo_rx = 50_000;
    let a = s.handle(t + ms(210), Event::Received(p));
    assert_eq!(s.state(), State::Up, "{a:?}");
    assert!(a.contains(&Action::SendEcho(3)), "{a:?}");
    s.handle(t + ms(220), Event::EchoReceived(2));
    assert_eq!(s.echo_detect_deadline(), Some(t + ms(360)));
}

#[test]
fn replay_three_way_handshake_then_poll_to_fast_timers() {
    let mut sim = Sim::new(params(100, 100, 3), params(100, 100, 3));
    sim.run_for(ms(50));
    for i in 0..2 {
        assert_eq!(sim.ends[i].state(), State::Up, "end {i}: {:?}", sim.log);
        // Both start active and hear each other's Down: Down -> Init -> Up on both ends.
        assert_eq!(
            sim.changes_of(i),
            vec![
                (State::Down, State::Init, Diag::None),
                (State::Init, State::Up, Diag::None)
            ]
        );
    }
    // Going Up changed Desired Min TX from 1 s to 100 ms: a Poll Sequence, answered by a Final.
    let polls: Vec<_> = sim
        .sent_by(0, Duration::ZERO)
        .into_iter()
        .filter(|(_, p)| p.poll)
        .collect();
    assert!(!polls.is_empty());
    assert_eq!(polls[0].1.desired_min_tx, 100_000);
    assert!(sim.sent_by(1, Duration::ZERO).iter().any(|(_, p)| p.final_));
    sim.run_for(ms(1000));
    for i in 0..2 {
        assert!(!sim.ends[i].polling(), "poll sequence ended");
        assert_eq!(sim.ends[i].tx_interval(), ms(100));
        assert_eq!(sim.ends[i].detection_time(), Some(ms(300)));
    }
    // In steady state, packets every 75-100 ms, no P or F.
    let steady = sim.sent_by(0, ms(600));
    assert!(steady.len() >= 4, "{steady:?}");
    for w in steady.windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= ms(75) && gap <= ms(100), "gap {gap:?}");
        assert!(!w[1].1.poll && !w[1].1.final_);
        assert_eq!(w[1].1.state, State::Up);
    }
}

#[test]
fn replay_cut_link_detected_within_detection_time_then_recovers() {
    let mut sim = Sim::new(params(100, 100, 3), params(100, 100, 3));
    sim.run_for(ms(2000));
    assert_eq!(sim.ends[0].state(), State::Up);
    assert_eq!(sim.ends[1].state(), State::Up);
    let cut_at = sim.now;
    sim.cut = [true, true];
    sim.run_for(ms(400));
    for i in 0..2 {
        let down = sim
            .log
            .iter()
            .find(|(t, e, a)| {
                *e == i
                    && *t >= cut_at - sim.t0
                    && matches!(
                        a,
                        Action::StateChanged {
                            to: State::Down,
                            ..
                        }
                    )
            })
            .unwrap_or_else(|| panic!("end {i} not down"));
        let after = down.0 - (cut_at - sim.t0);
        // The last packet arrived at most one interval before the cut; 300 ms after it.
        assert!(
            after > ms(190) && after <= ms(301),
            "end {i} down after {after:?}"
        );
        assert_eq!(sim.ends[i].local_diag(), Diag::ControlDetectionTimeExpired);
        assert_eq!(sim.ends[i].remote_discriminator(), 0);
        assert_eq!(sim.ends[i].advertised().0, SLOW_TX, "slow again while Down");
    }
    sim.cut = [false, false];
    sim.run_for(ms(2500));
    for i in 0..2 {
        assert_eq!(sim.ends[i].state(), State::Up);
        assert_eq!(sim.ends[i].local_diag(), Diag::None);
    }
}

#[test]
fn replay_one_way_loss_peer_signals_down() {
    let mut sim = Sim::new(params(100, 100, 3), params(100, 100, 3));
    sim.run_for(ms(2000));
    // End 0 stops hearing end 1; end 0 times out, then tells end 1 (Down), which follows with
    // Neighbor Signaled Session Down.
    sim.cut = [false, true];
    sim.run_for(ms(500));
    assert_eq!(sim.ends[0].local_diag(), Diag::ControlDetectionTimeExpired);
    assert!(
        sim.changes_of(1)
            .contains(&(State::Up, State::Down, Diag::NeighborSignaledSessionDown)),
        "{:?}",
        sim.changes_of(1)
    );
}

#[test]
fn replay_passive_end_comes_up_with_an_active_peer_and_two_passives_never_do() {
    let passive = BfdParams {
        passive: true,
        ..params(100, 100, 3)
    };
    let mut sim = Sim::new(passive, params(100, 100, 3));
    sim.run_for(ms(3000));
    assert_eq!(sim.ends[0].state(), State::Up);
    assert_eq!(sim.ends[1].state(), State::Up);
    // The passive end said nothing before it heard the active one.
    let first_heard = sim.sent_by(1, Duration::ZERO)[0].0 + ms(1);
    assert!(sim.sent_by(0, Duration::ZERO)[0].0 >= first_heard);

    let mut sim = Sim::new(passive, passive);
    sim.run_for(ms(5000));
    assert!(
        sim.log
            .iter()
            .all(|(_, _, a)| !matches!(a, Action::Send(_)))
    );
    assert_eq!(sim.ends[0].state(), State::Down);
}

#[test]
fn replay_slower_tx_waits_for_final_and_faster_rx_keeps_old_detection_time() {
    let mut sim = Sim::new(params(100, 100, 3), params(100, 100, 3));
    sim.run_for(ms(2000));
    sim.latency = ms(30);
    // End 0 slows its transmissions to 200 ms and accepts packets every 50 ms.
    sim.event(0, Event::SetParams(params(200, 50, 3)));
    assert!(sim.ends[0].polling());
    assert_eq!(sim.ends[0].advertised(), (ms(200), ms(50)));
    assert_eq!(
        sim.ends[0].tx_interval(),
        ms(100),
        "old rate until the Final"
    );
    assert_eq!(
        sim.ends[0].detection_time(),
        Some(ms(300)),
        "old receive rate until the Final"
    );
    sim.run_for(ms(500));
    assert!(!sim.ends[0].polling());
    assert_eq!(sim.ends[0].tx_interval(), ms(200));
    // End 1 now sends every 100 ms (its own desired TX, above our 50 ms).
    assert_eq!(sim.ends[0].detection_time(), Some(ms(300)));
    assert_eq!(sim.ends[1].tx_interval(), ms(100));
    assert_eq!(
        sim.ends[1].detection_time(),
        Some(ms(600)),
        "3 × our 200 ms"
    );
    assert_eq!(sim.ends[0].state(), State::Up);
    assert_eq!(sim.ends[1].state(), State::Up);
}
