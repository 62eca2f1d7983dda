//! Controller benchmark in the lab (a bench binary, `cargo bench -p ironlb --bench controller`):
//!
//! 1. 10,000 LoadBalancer Services are created (not timed), then `ironlb controller` is
//!    started as its ServiceAccount: time until all 10,000 have addresses, and its peak RSS
//!    (VmHWM from /proc/<pid>/status).
//! 2. Baseline, same run: the controller stopped, 10,000 more Services (of another
//!    loadBalancerClass, so nothing else touches them), and a plain kube-rs client with the same
//!    ServiceAccount writes the same kind of update to each (status.loadBalancer.ingress plus the
//!    pool annotation, one PATCH of services/status each), as many in flight as the controller
//!    allows itself (32): the API server's own limit for these writes.
//!
//! Prints both times and the ratio. `IRONLB_BENCH_SERVICES` changes the count.
//!
//! The lab is started without its kubelet imitation (agent): the agent would put every one of
//! the 20,000 addresses on three node namespaces with `ip addr add`, which measures `ip`, not
//! the controller. Nothing here needs Nodes or Pods.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use futures::{StreamExt, TryStreamExt};
use ironlb_lab::components::{self, ControllerOptions};
use ironlb_lab::{Lab, LabOptions};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

struct Teardown(String);

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Ok(lab) = Lab::open(&self.0) {
            lab.down();
        }
    }
}

fn kubectl(lab: &Lab, args: &[&str]) {
    let out = lab.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn create_services(client: &Client, ns: &str, n: usize, class: Option<&str>) -> Duration {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let mut spec = json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "bench"}});
                if let Some(c) = class {
                    spec["loadBalancerClass"] = json!(c);
                }
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": format!("s{i:05}"), "namespace": ns}, "spec": spec,
                }))
                .unwrap();
                api.create(&PostParams::default(), &svc).await.map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    start.elapsed()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn vm_hwm_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would too: run only under bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("controller bench: run with `cargo bench -p ironlb --bench controller`");
        return;
    }
    let n: usize = std::env::var("IRONLB_BENCH_SERVICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut opts = LabOptions::for_test();
    opts.name = format!("bench{}", std::process::id() % 10_000);
    opts.nodes = 1;
    let name = opts.name.clone();
    let _teardown = Teardown(name.clone());
    eprintln!("[bench] starting lab {name} (no agent)");
    let lab = tokio::task::spawn_blocking(move || Lab::up(&opts))
        .await
        .unwrap()
        .expect("lab up (needs root)");
    components::install_crds(&lab).expect("CRDs installed");
    components::apply_controller_rbac(&lab).unwrap();
    let admin = lab.client().await.unwrap();
    for ns in ["bench", "baseline"] {
        kubectl(&lab, &["create", "namespace", ns]);
    }
    let pool = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bench, namespace: metallb-system}\nspec: {addresses: [10.128.0.0/17]}\n";
    lab.kubectl_apply(pool).expect("bench pool applied");

    eprintln!("[bench] creating {n} LoadBalancer Services");
    let created = create_services(&admin, "bench", n, None).await;
    eprintln!("[bench] created in {:.1} s", created.as_secs_f64());

    // 1. The controller.
    // IRONLB_BENCH_CONTROLLER: another binary (or a wrapper such as `heaptrack ironlb "$@"`).
    let binary = std::env::var("IRONLB_BENCH_CONTROLLER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ironlb").to_string());
    let mut copts = ControllerOptions::new(binary);
    copts.webhook = false;
    copts.extra_args = vec!["--log-level".into(), "warn".into()];
    let t0 = Instant::now();
    let ctl = components::start_controller(&lab, copts).await.unwrap();
    let pid = ctl.daemon.pid().unwrap();
    let mut last_print = Instant::now();
    loop {
        let m = ctl.metrics().await.unwrap_or_default();
        let done = metric(&m, "metallb_k8s_client_updates_total") as usize;
        if done >= n {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "[bench] controller: {done}/{n} written after {:.1} s",
                t0.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "controller too slow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let controller_time = t0.elapsed();
    let rss_kib = vm_hwm_kib(pid);
    // Check: every Service has exactly one address and no address twice.
    let api: Api<Service> = Api::namespaced(admin.clone(), "bench");
    let list = api.list(&ListParams::default()).await.unwrap();
    let mut seen = HashSet::new();
    for s in &list.items {
        let ips: Vec<String> = s
            .status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|i| i.iter().filter_map(|x| x.ip.clone()).collect())
            .unwrap_or_default();
        assert_eq!(ips.len(), 1, "{} has {ips:?}", s.name_any());
        assert!(seen.insert(ips[0].clone()), "{} duplicated", ips[0]);
    }
    assert_eq!(seen.len(), n);
    let metrics = ctl.metrics().await.unwrap_or_default();
    let errors = metric(&metrics, "metallb_k8s_client_update_errors_total");
    ctl.stop(false);
    eprintln!(
        "[bench] controller: all {n} assigned in {:.2} s, peak RSS {:.1} MiB",
        controller_time.as_secs_f64(),
        rss_kib as f64 / 1024.0
    );

    // 2. The baseline: the same writes from a plain client, same ServiceAccount.
    eprintln!("[bench] creating {n} more Services for the baseline");
    create_services(&admin, "baseline", n, Some("bench.ironlb.io/baseline")).await;
    let kc = kube::config::Kubeconfig::read_from(&ctl.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let sa = Client::try_from(config).unwrap();
    let api: Api<Service> = Api::namespaced(sa, "baseline");
    let t1 = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let ip = format!("10.129.{}.{}", i / 256, i % 256);
                let patch = json!({
                    "metadata": {"annotations": {"metallb.io/ip-allocated-from-pool": "bench"}},
                    "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
                });
                api.patch_status(
                    &format!("s{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let baseline_time = t1.elapsed();
    let ratio = controller_time.as_secs_f64() / baseline_time.as_secs_f64();
    println!("controller bench ({n} LoadBalancer Services, lab kube-apiserver 1.34.4, 1 node)");
    println!(
        "  services created (admin, {CONCURRENCY} in flight):   {:8.2} s",
        created.as_secs_f64()
    );
    println!(
        "  controller start -> all assigned:            {:8.2} s",
        controller_time.as_secs_f64()
    );
    println!(
        "  controller peak RSS (VmHWM):                 {:8.1} MiB",
        rss_kib as f64 / 1024.0
    );
    println!("  controller write errors (retried):           {errors:8}");
    println!(
        "  baseline: plain kube-rs, {n} status PATCHes:  {:8.2} s",
        baseline_time.as_secs_f64()
    );
    println!("  ratio controller / baseline:                 {ratio:8.2}x");
    drop(lab);
}
