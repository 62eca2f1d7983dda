//! Layer 2 failover time in the lab: from the moment the owner dies (its speaker `kill -9`ed,
//! or its LAN link set down) to the first `curl` from `client` answered by the new owner
//! (client loops `curl -m 0.15`; the HTTP servers answer their node's name). 20 trials per
//! way of dying (`FAILOVER_TRIALS` to change); prints min / p50 / p99 / max.
//! Optional: `SPEAKER_RSS_SERVICES=10000` also measures the speakers' RSS with that many
//! Services. Needs root and `cargo build --release -p ironlb` first (the bench runs the
//! `ironlb` binary of its own profile).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

const VIP: &str = "10.0.0.150";
const URL: &str = "http://10.0.0.150/";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[idx.clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Copy, Debug)]
enum Death {
    Kill,
    LinkDown,
}

async fn trial(env: &Env, owner: &str, next: &str, death: Death, n: usize) -> f64 {
    let lab = &env.lab;
    let i: usize = owner.trim_start_matches("node").parse().unwrap();
    let netns = lab.topo.netns(owner);
    let probe = CurlLoop::start(lab, URL, &format!("{death:?}-{n}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let died = unix_now();
    match death {
        Death::Kill => env.speakers.kill(i).unwrap(),
        Death::LinkDown => {
            ironlb_lab::proc::run("ip", &["-n", &netns, "link", "set", "eth0", "down"]).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let took = loop {
        if let Some(t) = probe.first_from(next, died) {
            break t - died;
        }
        if Instant::now() > deadline {
            break f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(probe);
    // Bring the owner back and wait until it owns the address again, settled.
    match death {
        Death::Kill => env.speakers.restart(i).await.unwrap(),
        Death::LinkDown => {
            ironlb_lab::proc::run("ip", &["-n", &netns, "link", "set", "eth0", "up"]).unwrap();
        }
    }
    wait_arp_owner(lab, VIP, Some(owner), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    took
}

async fn rss_kib(env: &Env) -> Vec<(String, u64)> {
    env.speakers
        .nodes
        .iter()
        .map(|n| {
            let pid = n.daemon.pid().unwrap();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let kib = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            (n.node.clone(), kib)
        })
        .collect()
}

async fn many_services(env: &Env, count: usize) {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use serde_json::json;
    let api: Api<Service> = Api::namespaced(env.client.clone(), "default");
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: many, namespace: metallb-system}\nspec:\n  addresses: [\"fd10::1:0/112\"]\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: many, namespace: metallb-system}\nspec:\n  ipAddressPools: [many]\n",
    );
    let started = Instant::now();
    let ips: Vec<String> = (0..count).map(|k| format!("fd10::1:{:x}", k + 1)).collect();
    futures_lite(count, |k| {
        let api = api.clone();
        let ip = ips[k].clone();
        async move {
            let name = format!("many-{k}");
            let svc: Service = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            }))
            .unwrap();
            api.create(&PostParams::default(), &svc).await.unwrap();
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})),
            )
            .await
            .unwrap();
            set_endpoints(env, &name, &["node1"]).await;
        }
    })
    .await;
    eprintln!(
        "created {count} Services with addresses and endpoints in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Runs `f(0..count)` with 16 in flight.
async fn futures_lite<F, Fut>(count: usize, f: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::StreamExt;
    futures::stream::iter(0..count)
        .map(f)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: only run when benched.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("failover bench: run with `cargo bench -p ironlb-speaker --bench failover`");
        return;
    }
    let trials: usize = std::env::var("FAILOVER_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let env = setup(false, &[]).await;
    let lab = &env.lab;
    apply_ok(lab, &reference_config(""));
    service_with_status(&env, "web", &[VIP], false, &["node1"]).await;
    let all = ["node1", "node2", "node3"];
    let owner = expected_owner(lab, VIP, &all, &BTreeMap::new(), None).unwrap();
    let survivors: Vec<&str> = all.iter().copied().filter(|n| *n != owner).collect();
    let next = expected_owner(lab, VIP, &survivors, &BTreeMap::new(), None).unwrap();
    wait_arp_owner(lab, VIP, Some(&owner), Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("owner {owner}, next {next}; {trials} trials per way of dying");
    for death in [Death::Kill, Death::LinkDown] {
        let mut times = Vec::new();
        for n in 0..trials {
            let t = trial(&env, &owner, &next, death, n).await;
            eprintln!("  {death:?} trial {n:2}: {t:.3} s");
            times.push(t);
        }
        let failed = times.iter().filter(|t| t.is_nan()).count();
        let mut ok: Vec<f64> = times.into_iter().filter(|t| !t.is_nan()).collect();
        ok.sort_by(|a, b| a.total_cmp(b));
        if ok.is_empty() {
            println!("failover {death:?}: every trial failed");
            continue;
        }
        println!(
            "failover {death:?}: n={} failed={failed} min={:.3} s p50={:.3} s p99={:.3} s max={:.3} s (goal p50 <= 0.5 s, p99 <= 1 s)",
            ok.len(),
            ok[0],
            percentile(&ok, 50.0),
            percentile(&ok, 99.0),
            ok[ok.len() - 1],
        );
    }
    if let Some(count) = std::env::var("SPEAKER_RSS_SERVICES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        println!("speaker RSS before: {:?} KiB", rss_kib(&env).await);
        many_services(&env, count).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        println!(
            "speaker RSS with {count} Services (+EndpointSlices, node1 owns ~1/3): {:?} KiB",
            rss_kib(&env).await
        );
    }
}
