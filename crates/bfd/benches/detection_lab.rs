//! Detection time in the lab (needs root): node1 and node2 announce 10.0.0.150/32 to FRR over
//! eBGP (hold time 30 s) with BFD 100 ms × 3 (FRR `neighbor X bfd profile fast`, our session
//! following ours). Each trial cuts node1's link and measures until (a) our side reports BFD
//! Down, (b) FRR's BGP table has lost node1's next hop; then restores the link and waits for
//! everything to come back. Prints every trial, p50 / p99 / max, and the ratio to the
//! configured detection time (300 ms).
//!
//! `cargo bench -p ironlb-bfd --bench detection_lab` (BFD_TRIALS=N, default 15).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use ironlb_bfd::packet::{Diag, State};
use ironlb_bgp::session::fsm::State as BgpState;
use ironlb_lab::{Lab, LabOptions};
use std::time::{Duration, Instant};
use support::*;

const CONFIGURED: Duration = Duration::from_millis(300);

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run() {
    let trials: usize = std::env::var("BFD_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    eprintln!("starting a 2-node lab ...");
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
    let (_s2, _r2) = n2.bgp(&lab, "10.0.0.150/32", Some(&h2)).await;
    let (a1, a2) = (n1.host.ipv4.to_string(), n2.host.ipv4.to_string());
    let both = vec![a1.clone(), a2.clone()];
    let next_hops =
        || path_next_hops(&frr_paths(&lab, "ipv4", "10.0.0.150/32").unwrap_or_default());

    let mut ours = Vec::new();
    let mut frr = Vec::new();
    let mut poll_cost = Vec::new();
    for trial in 1..=trials {
        // Steady state: both sessions up everywhere, two next hops.
        wait_state(&s1, BgpState::Established, Duration::from_secs(60)).await;
        wait_bfd(&h1, "BFD up", Duration::from_secs(30), |s| {
            s.is_up() && s.detection_time == Some(CONFIGURED)
        })
        .await;
        wait_hops_and_frr_bfd_up(
            &lab,
            "two next hops, FRR BFD up",
            Duration::from_secs(30),
            "10.0.0.150/32",
            &both,
            &a1,
        )
        .await;
        // A random phase against the transmit timers.
        tokio::time::sleep(Duration::from_millis(500 + (trial as u64 * 37) % 100)).await;

        let mut state = h1.state();
        let t0 = Instant::now();
        set_link(&n1.host, false);
        let our = tokio::spawn(async move {
            state
                .wait_for(|s| s.state == State::Down)
                .await
                .map(|s| (t0.elapsed(), s.diag))
                .unwrap()
        });
        let removed = loop {
            let before = Instant::now();
            let nh = next_hops();
            poll_cost.push(before.elapsed());
            if nh == vec![a2.clone()] {
                break t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "not removed: {nh:?}"
            );
        };
        let (our_t, diag) = our.await.unwrap();
        assert_eq!(diag, Diag::ControlDetectionTimeExpired);
        eprintln!(
            "trial {trial:2}/{trials}: ours Down {:6.1} ms, FRR next hop gone {:6.1} ms",
            ms(our_t),
            ms(removed)
        );
        ours.push(our_t);
        frr.push(removed);
        set_link(&n1.host, true);
    }
    ours.sort();
    frr.sort();
    poll_cost.sort();
    println!(
        "BFD detection, {trials} link cuts, configured 100 ms x 3 = {} ms:",
        ms(CONFIGURED)
    );
    for (what, v) in [
        ("our side reports Down", &ours),
        ("FRR removes the next hop", &frr),
    ] {
        let (p50, p99, max) = (pct(v, 0.5), pct(v, 0.99), v[v.len() - 1]);
        println!(
            "  {what:26} p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms  (p50 {:.2}x / p99 {:.2}x configured)",
            ms(p50),
            ms(p99),
            ms(max),
            p50.as_secs_f64() / CONFIGURED.as_secs_f64(),
            p99.as_secs_f64() / CONFIGURED.as_secs_f64(),
        );
    }
    println!(
        "  (FRR polled with vtysh: one poll takes p50 {:.1} ms, the resolution of the FRR figure)",
        ms(pct(&poll_cost, 0.5))
    );
}
