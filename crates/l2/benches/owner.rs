//! Owner selection at scale: 1,000 live nodes, 100 or 10,000 Services. The time to handle one
//! node leaving should depend on the Services it owned, not on how many Services exist: the
//! figure of merit is the time per affected Service at 10,000 Services divided by the same at
//! 100 (goal <= 1.2). A node joining costs one hash per Service by design; shown for reference.

#![allow(clippy::unwrap_used)]

use criterion::{BatchSize, Criterion, criterion_group};
use ironlb_config::L2Advertisement;
use ironlb_l2::{NodeInfo, OwnerIndex, ServiceInfo, Settings};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const NODES: usize = 1000;

fn index(services: usize) -> OwnerIndex {
    let ad = L2Advertisement {
        name: "all".into(),
        pools: vec!["pool".into()],
        node_selectors: vec![],
        interfaces: vec![],
        service_selectors: vec![],
        preferred_nodes: vec![],
    };
    let mut idx = OwnerIndex::new(vec![ad], Settings::default());
    for n in 0..NODES {
        let mut labels = BTreeMap::new();
        labels.insert("kubernetes.io/hostname".to_string(), format!("node{n}"));
        idx.upsert_node(
            &format!("node{n}"),
            NodeInfo {
                labels,
                network_unavailable: false,
            },
        );
    }
    for s in 0..services {
        let ip = Ipv4Addr::from(0x0a00_0000u32 + s as u32 + 1);
        idx.upsert_service(
            &format!("ns/svc{s}"),
            ServiceInfo {
                ip: IpAddr::V4(ip),
                pool: "pool".into(),
                labels: BTreeMap::new(),
                local_traffic_policy: false,
                has_serving_endpoint: true,
                serving_nodes: BTreeSet::new(),
                shares_address: false,
            },
        );
    }
    idx
}

/// The node owning the most Services, and how many.
fn busiest(idx: &OwnerIndex) -> (String, usize) {
    (0..NODES)
        .map(|n| {
            let name = format!("node{n}");
            let count = idx.owned_by(&name).count();
            (name, count)
        })
        .max_by_key(|(_, c)| *c)
        .unwrap()
}

/// Median time of `remove_node(busiest)` over `trials` fresh clones.
fn leave_time(idx: &OwnerIndex, node: &str, trials: usize) -> Duration {
    let mut times: Vec<Duration> = (0..trials)
        .map(|_| {
            let mut copy = idx.clone();
            let start = Instant::now();
            let changes = copy.remove_node(node);
            let t = start.elapsed();
            assert!(!changes.is_empty());
            t
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn join_time(idx: &OwnerIndex, trials: usize) -> Duration {
    let mut times: Vec<Duration> = (0..trials)
        .map(|i| {
            let mut copy = idx.clone();
            let start = Instant::now();
            copy.upsert_node(&format!("newcomer{i}"), NodeInfo::default());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn summary() {
    let mut per_affected = Vec::new();
    for services in [100usize, 10_000] {
        let idx = index(services);
        let (node, affected) = busiest(&idx);
        let t = leave_time(&idx, &node, 31);
        let per = t / affected as u32;
        let join = join_time(&idx, 31);
        println!(
            "owner/node_leaves: {services} services x {NODES} nodes: {affected} affected, \
             {t:?} total, {per:?} per affected service; node joins: {join:?} ({:?} per service)",
            join / services as u32
        );
        per_affected.push(per.as_secs_f64());
    }
    println!(
        "owner/node_leaves: per-affected-service ratio 10,000 / 100 services = {:.2} (goal <= 1.2)",
        per_affected[1] / per_affected[0]
    );
}

fn owner(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2_owner_node_leaves");
    g.sample_size(20);
    for services in [100usize, 10_000] {
        let idx = index(services);
        let (node, _) = busiest(&idx);
        g.bench_function(format!("{services}_services_{NODES}_nodes"), |b| {
            b.iter_batched(
                || idx.clone(),
                |mut copy| copy.remove_node(&node),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, owner);

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: a quick smoke run only.
    if !std::env::args().any(|a| a == "--bench") {
        let idx = index(100);
        let (node, affected) = busiest(&idx);
        assert!(leave_time(&idx, &node, 1) > Duration::ZERO && affected > 0);
        return;
    }
    summary();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
