//! Membership figures on loopback: detection time of a killed member (20 trials, p50/p99) at the
//! default settings and, as the baseline, at memberlist's LAN timings (what MetalLB runs);
//! false positives over 30 s with 5 % injected datagram loss.
//!
//! `cargo bench -p ironlb-membership --bench membership` (env: `TRIALS`, `BASELINE_TRIALS`,
//! `FP_SECONDS`, `LOSS`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use ironlb_membership::{EventKind, Settings};
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One trial: a fresh 3-member cluster, node2 killed at a random point of the probe cycle;
/// returns (first member to notice, all members noticed).
async fn detection_trial(settings: &Settings, phase: Duration) -> (Duration, Duration) {
    let mut nodes = cluster(3, settings.clone()).await;
    converge(&nodes, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300) + phase).await;
    let killed_at = Instant::now();
    nodes[1].member = None;
    let mut times = Vec::new();
    for n in nodes.iter().filter(|n| n.member.is_some()) {
        let limit = settings.probe_period * 20 + settings.suspect_to_down_after * 2;
        wait_for(n.m(), limit, |s| !s.contains("node2"))
            .await
            .unwrap_or_else(|seen| panic!("{} never dropped node2: {seen:?}", n.name));
        times.push(killed_at.elapsed());
    }
    // Each wait started after the previous ended, so the first is exact and the last is the max.
    (times[0], times[times.len() - 1])
}

async fn detection(label: &str, settings: &Settings, trials: usize) -> (Duration, Duration) {
    let mut first = Vec::new();
    let mut all = Vec::new();
    for t in 0..trials {
        // Spread the kill over the probe period.
        let phase = settings.probe_period.mul_f64((t as f64 * 0.618_034) % 1.0);
        let (f, a) = detection_trial(settings, phase).await;
        first.push(f);
        all.push(a);
    }
    first.sort();
    all.sort();
    let (p50, p99) = (percentile(&all, 50.0), percentile(&all, 99.0));
    println!(
        "detection [{label}] {trials} trials, 3 members: all members noticed p50 {:.0} ms p99 {:.0} ms (min {:.0}, max {:.0}); first member p50 {:.0} ms p99 {:.0} ms",
        ms(p50),
        ms(p99),
        ms(all[0]),
        ms(all[all.len() - 1]),
        ms(percentile(&first, 50.0)),
        ms(percentile(&first, 99.0)),
    );
    (p50, p99)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` members whose every inbound datagram crosses a proxy dropping `loss` of them; counts
/// `Failed` events (all members stay alive, so each is a false positive).
/// Returns (Failed events over all observers, distinct incidents, failed probes, probes sent).
async fn false_positives(n: usize, loss: f64, run: Duration) -> (usize, usize, u64, u64) {
    let settings = Settings::default();
    let mut nodes = Vec::new();
    for i in 1..=n {
        nodes.push(start(&name(i), KEY, settings.clone()).await);
    }
    let mut desired = ironlb_membership::DesiredMembers::new();
    for (i, node) in nodes.iter().enumerate() {
        let proxy = lossy_proxy(node.m().local_addr(), loss, 0x9e37_79b9 + i as u64).await;
        desired.insert(node.name.clone(), proxy);
    }
    for node in &nodes {
        node.desired.send_replace(desired.clone());
    }
    converge(&nodes, Duration::from_secs(10)).await;
    let mut events: Vec<_> = nodes.iter().map(|n| n.m().events()).collect();
    tokio::time::sleep(run).await;
    let mut failed = Vec::new();
    for rx in &mut events {
        while let Ok(e) = rx.try_recv() {
            if e.kind == EventKind::Failed {
                failed.push((e.node, e.instant));
            }
        }
    }
    // One wrong verdict reaches every observer: count it once per member and second.
    failed.sort();
    let mut incidents = 0;
    let mut last: Option<&(String, Instant)> = None;
    for f in &failed {
        if last.is_none_or(|l| l.0 != f.0 || f.1.duration_since(l.1) > Duration::from_secs(1)) {
            incidents += 1;
        }
        last = Some(f);
    }
    let probes_failed: u64 = nodes.iter().map(|n| n.m().stats().probes_failed).sum();
    let probes = (run.as_secs_f64() / settings.probe_period.as_secs_f64()) as u64 * n as u64;
    (failed.len(), incidents, probes_failed, probes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let trials = env_or("TRIALS", 20usize);
    let baseline_trials = env_or("BASELINE_TRIALS", 5usize);
    let fp_seconds = env_or("FP_SECONDS", 30u64);
    let loss = env_or("LOSS", 0.05f64);

    let tuned = Settings::default();
    println!(
        "settings: probe period {:?}, probe rtt {:?}, {} indirect probes, suspicion {:?}, gossip every {:?}",
        tuned.probe_period,
        tuned.probe_rtt,
        tuned.indirect_probes,
        tuned.suspect_to_down_after,
        tuned.gossip_interval
    );
    let (p50, p99) = detection("ironlb defaults", &tuned, trials).await;

    // memberlist's DefaultLANConfig timings for 3 members (what MetalLB's speakers run).
    let baseline = Settings {
        probe_period: Duration::from_secs(1),
        probe_rtt: Duration::from_millis(500),
        suspect_to_down_after: Duration::from_secs(4),
        gossip_interval: Duration::from_millis(200),
        ..Settings::default()
    };
    if baseline_trials > 0 {
        let (b50, b99) = detection("memberlist LAN timings", &baseline, baseline_trials).await;
        println!(
            "ratio to baseline: p50 {:.3}, p99 {:.3}",
            ms(p50) / ms(b50),
            ms(p99) / ms(b99)
        );
    }

    for (n, loss) in [(3usize, loss), (5, loss), (3, 0.20), (3, 0.35)] {
        let (events, incidents, failed, probes) =
            false_positives(n, loss, Duration::from_secs(fp_seconds)).await;
        println!(
            "false positives [{n} members, {:.0}% datagram loss, {fp_seconds} s]: {incidents} members wrongly declared down ({events} Failed events over all observers); {failed} of ~{probes} probes failed ({:.2}%), each a suspicion",
            loss * 100.0,
            failed as f64 * 100.0 / probes as f64
        );
    }
}
