//! 10,000 Service addresses announced by one speaker session to the lab's FRR: the time until
//! FRR's table holds all of them, and until all are withdrawn again. Needs root (the lab).
//! Run: `cargo bench -p ironlb-bgp --bench announce_lab` (prints figures and the ratio to the
//! issue's 1 s goal).
#![allow(clippy::unwrap_used)] // a bench binary may unwrap

use ipnet::{IpNet, Ipv4Net};
use ironlb_bgp::packet::capability::Family;
use ironlb_bgp::rib::{Announcements, RouteAttributes};
use ironlb_bgp::session::driver::{PeerConfig, Session};
use ironlb_bgp::session::fsm::{FsmConfig, PeerAs, State};
use ironlb_lab::{Lab, LabOptions};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const N: u32 = 10_000;
const ROUNDS: usize = 3;
const GOAL: Duration = Duration::from_secs(1);

fn received(lab: &Lab, addr: &str) -> u64 {
    let out = lab
        .router
        .cli(&["show bgp summary json"])
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v["ipv4Unicast"]["peers"][addr]["pfxRcd"]
        .as_u64()
        .unwrap_or(0)
}

/// Routes zebra installed in the router's kernel (`proto bgp`).
fn installed(lab: &Lab) -> u64 {
    let ns = lab.topo.router().netns;
    let out = ironlb_lab::proc::run("ip", &["-n", &ns, "-4", "route", "show", "proto", "bgp"])
        .unwrap_or_default();
    out.lines().count() as u64
}

fn wait_for(what: &str, mut count: impl FnMut() -> u64, want: u64, start: Instant) -> Duration {
    loop {
        if count() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} never reached {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("announce_lab: bench");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let lab = rt
        .block_on(Lab::start(LabOptions {
            nodes: 1,
            ..LabOptions::for_test()
        }))
        .expect("lab (needs root)");
    let node = lab.topo.node(1);
    let addr = node.ipv4.to_string();
    // The session runs on a thread inside node1's namespace.
    let (tx, rx) = watch::channel(Announcements::new());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let netns = node.netns.clone();
    let router = lab.topo.router().ipv4;
    let thread = std::thread::spawn(move || {
        let ns = std::fs::File::open(std::path::Path::new("/run/netns").join(&netns)).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut fsm = FsmConfig::new(64513, PeerAs::Fixed(64512), node.ipv4);
            fsm.families = vec![Family::IPV4_UNICAST];
            let cfg = PeerConfig::new(IpAddr::V4(router), fsm);
            let session = Session::spawn(cfg, rx);
            let mut status = session.status();
            let _ = status.wait_for(|s| s.state == State::Established).await;
            ready_tx.send(()).unwrap();
            let _ = stop_rx.await;
            session.stop().await;
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("session Established");
    let all: Announcements = (0..N)
        .map(|i| {
            let p = Ipv4Net::new(Ipv4Addr::from(0x0a64_0000 + i), 32).unwrap();
            (IpNet::V4(p), RouteAttributes::default())
        })
        .collect();
    let (mut up, mut fib_up, mut down, mut fib_down) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        tx.send(all.clone()).unwrap();
        up.push(wait_for("BGP table", || received(&lab, &addr), N as u64, t));
        fib_up.push(wait_for("kernel", || installed(&lab), N as u64, t));
        let t = Instant::now();
        tx.send(Announcements::new()).unwrap();
        down.push(wait_for("BGP table", || received(&lab, &addr), 0, t));
        fib_down.push(wait_for("kernel", || installed(&lab), 0, t));
    }
    let _ = stop_tx.send(());
    thread.join().unwrap();
    let ratio = |d: Duration| d.as_secs_f64() / GOAL.as_secs_f64();
    for (what, v) in [
        ("announce: all in FRR's BGP table ", up),
        ("announce: all in the router kernel", fib_up),
        ("withdraw: none in FRR's BGP table", down),
        ("withdraw: none in the router kernel", fib_down),
    ] {
        let m = median(v);
        println!(
            "{N} prefixes, {what}: {m:?} (median of {ROUNDS}), ratio to the 1 s goal {:.3}",
            ratio(m)
        );
    }
    drop(lab);
}
