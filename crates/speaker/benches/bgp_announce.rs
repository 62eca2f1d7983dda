//! The BGP speaker at scale in the lab: one node, its `ironlb speaker` peering with FRR, and
//! 10,000 LoadBalancer Services with addresses and a serving endpoint each (written directly:
//! status and EndpointSlices, so the bench measures the speaker, not the controller). Once the
//! speaker has the Services, a BGPAdvertisement is applied: the time until FRR's table holds
//! all 10,000 prefixes (goal <= 1 s, ratio printed), then the advertisement is deleted: the
//! time until none is left. Three rounds, medians. The speaker's RSS (current and peak).
//! Needs root; builds the `ironlb` binary of its own profile first (the bench runs it).
//! `IRONLB_BENCH_SERVICES` changes the count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{StreamExt, TryStreamExt};
use ironlb_lab::components;
use ironlb_lab::speakers::{self, SpeakerOptions};
use ironlb_lab::{Lab, LabOptions};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;
const GOAL: Duration = Duration::from_secs(1);
const CONCURRENCY: usize = 32;

fn kubectl(lab: &Lab, args: &[&str]) {
    let out = lab.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The i-th Service address: 10.100.0.0 + i.
fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0a64_0000 + u32::try_from(i).unwrap())
}

/// Creates Service `s<i>` with its address in the status and a ready endpoint on `node`.
async fn create_service(client: &Client, i: usize, node: &str) -> kube::Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), "bench");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "bench");
    let name = format!("s{i:05}");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                 "ports": [{"port": 80, "protocol": "TCP"}]},
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await?;
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": address(i).to_string()}]}}});
    services
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.231"], "nodeName": node,
                       "conditions": {"ready": true, "serving": true}}],
        "ports": [{"port": 80, "protocol": "TCP"}],
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await?;
    Ok(())
}

/// FRR's received-prefix count from node `addr`.
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

fn wait_for(what: &str, mut count: impl FnMut() -> u64, want: u64, start: Instant) -> Duration {
    let mut last = u64::MAX;
    loop {
        let n = count();
        if n == want {
            return start.elapsed();
        }
        if n != last && start.elapsed() > Duration::from_secs(2) {
            eprintln!("[bench]   {what}: {n} of {want} ...");
        }
        last = n;
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what} never reached {want} (at {n})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const ADVERTISEMENT: &str = "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bench, namespace: metallb-system}\nspec: {ipAddressPools: [bench]}\n";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "bgp_announce bench: run with `cargo bench -p ironlb-speaker --bench bgp_announce`"
        );
        return;
    }
    let n: usize = std::env::var("IRONLB_BENCH_SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    eprintln!("[bench] starting a one-node lab");
    let lab = Lab::start(LabOptions {
        nodes: 1,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab (needs root)");
    components::install_crds(&lab).expect("CRDs installed");
    let node = lab.topo.node(1);
    let node_addr = node.ipv4.to_string();
    let node_name = node.name.clone();
    let binary = components::build_ironlb_for_current_exe().expect("ironlb builds");
    eprintln!("[bench] starting the speaker ({})", binary.display());
    let mut opts = SpeakerOptions::new(binary);
    opts.membership = false;
    let speakers = speakers::start_speakers_with(&lab, opts)
        .await
        .expect("speaker starts");
    let pid = speakers.node(1).unwrap().daemon.pid().expect("speaker pid");
    lab.kubectl_apply(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bench, namespace: metallb-system}\nspec: {addresses: [10.100.0.0/16]}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: frr, namespace: metallb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: 10.0.0.1, connectTime: 2s}\n",
    )
    .expect("pool and peer applied");
    let t = Instant::now();
    wait_for(
        "session Established",
        || {
            u64::from(
                speakers
                    .metrics(1)
                    .unwrap_or_default()
                    .contains("metallb_bgp_session_up{peer=\"10.0.0.1:179\"} 1"),
            )
        },
        1,
        t,
    );
    let rss_idle = status_kib(pid, "VmRSS:");

    kubectl(&lab, &["create", "namespace", "bench"]);
    let client = lab.client().await.unwrap();
    eprintln!("[bench] creating {n} Services with addresses and endpoints");
    let t = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let node = node_name.clone();
            let done = &done;
            async move {
                create_service(&client, i, &node).await?;
                let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if k.is_multiple_of(1000) {
                    eprintln!("[bench]   {k} of {n} ({:.1} s)", t.elapsed().as_secs_f64());
                }
                Ok::<(), kube::Error>(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    eprintln!(
        "[bench] created in {:.1} s; letting the speaker catch up",
        t.elapsed().as_secs_f64()
    );
    // The watches deliver within a second or two; the first round would include any lag
    // (the median of three rounds does not).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_loaded = status_kib(pid, "VmRSS:");

    let (mut up, mut down) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        eprintln!("[bench] round {round}/{ROUNDS}: applying the BGPAdvertisement");
        let t = Instant::now();
        lab.kubectl_apply(ADVERTISEMENT)
            .expect("advertisement applied");
        let d = wait_for(
            "prefixes in FRR",
            || received(&lab, &node_addr),
            n as u64,
            t,
        );
        eprintln!("[bench]   all {n} in FRR's table after {d:?}");
        up.push(d);
        let t = Instant::now();
        kubectl(
            &lab,
            &[
                "-n",
                "metallb-system",
                "delete",
                "bgpadvertisement",
                "bench",
            ],
        );
        let d = wait_for("prefixes withdrawn", || received(&lab, &node_addr), 0, t);
        eprintln!("[bench]   none left after {d:?}");
        down.push(d);
    }
    let rss_peak = status_kib(pid, "VmHWM:");
    let ratio = |d: Duration| d.as_secs_f64() / GOAL.as_secs_f64();
    let (u, w) = (median(up), median(down));
    println!(
        "{n} Services, advertisement applied -> all prefixes in FRR's BGP table: {u:?} (median of {ROUNDS}), ratio to the 1 s goal {:.3}",
        ratio(u)
    );
    println!(
        "{n} Services, advertisement deleted -> all withdrawn from FRR's BGP table: {w:?} (median of {ROUNDS}), ratio to the 1 s goal {:.3}",
        ratio(w)
    );
    println!(
        "speaker RSS: {:.1} MiB with the session only, {:.1} MiB with {n} Services, peak {:.1} MiB",
        rss_idle as f64 / 1024.0,
        rss_loaded as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    drop(speakers);
    drop(lab);
}
