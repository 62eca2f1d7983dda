//! Layer 2 failover time in the lab: from the moment the owner dies (its speaker `kill -9`ed,
//! or its LAN link set down) to the first HTTP request from `client` answered by the new owner
//! (the client starts a request every 20 ms, each in its own thread and waiting up to 1 s, so
//! the resolution is 20 ms in both ways of dying; the HTTP servers answer their node's name).
//! 20 trials per way of dying (`FAILOVER_TRIALS` to change); prints min / p50 / p99 / max and
//! where the time went per trial: the next owner's membership verdict and its decision (its
//! log), its gratuitous ARP reaching the client (tcpdump), the client's first answer.
//! `FAILOVER_SPEAKER_ARGS` passes more speaker flags (e.g. other membership timings).
//! `SPEAKER_RSS_SERVICES=10000` instead measures the speakers' memory (peak `VmHWM` and steady
//! `VmRSS`) with that many LoadBalancer Services, addresses allocated by the controller, and
//! how many addresses each speaker announces. Needs root; it builds the `ironlb` binary of its
//! own profile first (`IRONLB_BENCH_NO_BUILD=1` skips that), and `IRONLB_BENCH_BINARY` runs
//! another binary or a wrapper (e.g. a script running `heaptrack ironlb "$@"`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use ironlb_lab::testing::{Capture, apply_ok};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

const VIP: &str = "10.0.0.150";
const ADDR: &str = "10.0.0.150:80";
/// The client starts a request this often (each in its own thread, waiting up to 1 s).
const REQUEST_EVERY: Duration = Duration::from_millis(20);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[idx.clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Copy, Debug)]
enum Death {
    Kill,
    LinkDown,
}

/// When each step of one failover happened, in seconds after the death.
#[derive(Debug, Default, Clone, Copy)]
struct Steps {
    /// The next owner's membership declared the owner down (its log).
    detected: Option<f64>,
    /// The next owner decided to announce the address (its log).
    announced: Option<f64>,
    /// The client saw the next owner's first gratuitous ARP (tcpdump in `client`).
    garp: Option<f64>,
    /// The client got its first answer from the next owner: the failover time.
    answered: f64,
}

async fn trial(env: &Env, capture: &Capture, owner: &str, next: &str, death: Death) -> Steps {
    let lab = &env.lab;
    let i: usize = owner.trim_start_matches("node").parse().unwrap();
    let netns = lab.topo.netns(owner);
    let probe = HttpProbe::start(lab, ADDR.parse().unwrap(), REQUEST_EVERY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let died = unix_now();
    match death {
        Death::Kill => env.speakers.kill(i).unwrap(),
        Death::LinkDown => {
            ironlb_lab::proc::run("ip", &["-n", &netns, "link", "set", "eth0", "down"]).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let answered = loop {
        if let Some(t) = probe.first_from(next, died) {
            break t - died;
        }
        if Instant::now() > deadline {
            break f64::NAN;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(probe);
    // Let tcpdump flush its lines.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = &env
        .speakers
        .nodes
        .iter()
        .find(|n| n.node == next)
        .unwrap()
        .daemon
        .log_file;
    let member = format!("member={owner}");
    let since = |t: Option<f64>| t.map(|t| t - died);
    let next_mac = mac_of(lab, next);
    let steps = Steps {
        detected: since(first_log_line(log, died, &[&member, "kind=Failed"])),
        announced: since(first_log_line(
            log,
            died,
            &["announcing", &format!("ips=[{VIP}")],
        )),
        garp: since(first_captured(capture, died, |l| {
            is_gratuitous_arp(l, &next_mac, VIP)
        })),
        answered,
    };
    // Bring the owner back and wait until it owns the address again, settled.
    match death {
        Death::Kill => env.speakers.restart(i).await.unwrap(),
        Death::LinkDown => {
            ironlb_lab::proc::run("ip", &["-n", &netns, "link", "set", "eth0", "up"]).unwrap();
        }
    }
    wait_arp_owner(lab, VIP, Some(owner), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    steps
}

fn ms(t: Option<f64>) -> String {
    t.map(|t| format!("{:4.0}", t * 1000.0))
        .unwrap_or_else(|| "   ?".into())
}

/// p50 of the known values of one step, in ms.
fn median_ms(values: impl Iterator<Item = Option<f64>>) -> String {
    let mut v: Vec<f64> = values.flatten().collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "?".into();
    }
    format!("{:.0}", percentile(&v, 50.0) * 1000.0)
}

/// (node, peak RSS `VmHWM`, current RSS `VmRSS`) of every speaker, KiB.
fn rss_kib(env: &Env) -> Vec<(String, u64, u64)> {
    env.speakers
        .nodes
        .iter()
        .map(|n| {
            let pid = n.daemon.pid().unwrap();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let field = |name: &str| -> u64 {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            (n.node.clone(), field("VmHWM:"), field("VmRSS:"))
        })
        .collect()
}

fn print_rss(label: &str, env: &Env) {
    for (node, hwm, rss) in rss_kib(env) {
        println!(
            "speaker RSS {label}: {node} peak (VmHWM) {:.1} MiB, now (VmRSS) {:.1} MiB",
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0
        );
    }
}

/// Services with an address in their status, counted by listing (paged).
async fn services_with_address(env: &Env) -> usize {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, ListParams};
    let api: Api<Service> = Api::namespaced(env.client.clone(), "default");
    let mut n = 0;
    let mut params = ListParams::default().limit(2000);
    loop {
        let page = api.list(&params).await.unwrap();
        n += page
            .items
            .iter()
            .filter(|s| {
                s.status
                    .as_ref()
                    .and_then(|st| st.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .is_some_and(|i| !i.is_empty())
            })
            .count();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => return n,
        }
    }
}

/// Speaker memory with `count` LoadBalancer Services whose addresses the controller
/// allocates (each with an EndpointSlice on node1): three speakers, peak and steady RSS.
async fn rss_bench(count: usize) {
    let env = setup(true, &[]).await;
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: many, namespace: metallb-system}\nspec:\n  addresses: [\"fd10::1:0/112\"]\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: many, namespace: metallb-system}\nspec:\n  ipAddressPools: [many]\n",
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    print_rss("idle (config, no Services)", &env);
    many_services(&env, count).await;
    let took = wait_for_count("Services have their address", count, || {
        services_with_address(&env)
    })
    .await;
    eprintln!("every Service has its address {took:.0} s after the last create");
    // The speakers are done when every address has its ServiceL2Status (one per Service).
    let took = wait_for_count("ServiceL2Status objects written", count, || async {
        l2_statuses_per_node(&env).await.values().sum()
    })
    .await;
    eprintln!("every ServiceL2Status written {took:.0} s later; 30 s to settle");
    tokio::time::sleep(Duration::from_secs(30)).await;
    print_rss(&format!("with {count} Services"), &env);
    // Who announces what, from each speaker's metrics and from the ServiceL2Status objects
    // it wrote; a failed scrape is an error, never a zero.
    let statuses = l2_statuses_per_node(&env).await;
    let mut total = 0;
    for (i, n) in env.speakers.nodes.iter().enumerate() {
        // A few tries: the scrape has a 2 s limit, and a busy machine can miss it once.
        let m = (0..5)
            .find_map(|_| env.speakers.metrics(i + 1).ok())
            .unwrap_or_else(|| panic!("scraping {}'s metrics failed 5 times", n.node));
        let owned = m
            .lines()
            .filter(|l| l.starts_with("metallb_speaker_announced{") && l.ends_with(" 1"))
            .count();
        total += owned;
        println!(
            "{} announces {owned} addresses ({} ServiceL2Status objects)",
            n.node,
            statuses.get(&n.node).copied().unwrap_or(0)
        );
    }
    println!("announced in all: {total} of {count} (each address by exactly one node: {count})");
}

/// Polls `done()` every 2 s until it reaches `count` (a line of progress every 10 s, at most
/// 15 min); returns the seconds it took.
async fn wait_for_count<F, Fut>(what: &str, count: usize, done: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let started = Instant::now();
    let mut last = Instant::now();
    loop {
        let done = done().await;
        if done >= count {
            return started.elapsed().as_secs_f64();
        }
        if last.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {done} of {count} {what} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            last = Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "only {done} of {count} {what} after 15 min"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// ServiceL2Status objects per node (label `metallb.io/node`), counted by listing (paged).
async fn l2_statuses_per_node(env: &Env) -> BTreeMap<String, usize> {
    use ironlb_api::v1beta1::ServiceL2Status;
    use kube::api::{Api, ListParams};
    let api: Api<ServiceL2Status> = Api::namespaced(env.client.clone(), "metallb-system");
    let mut per_node = BTreeMap::new();
    let mut params = ListParams::default().limit(2000);
    loop {
        let page = api.list(&params).await.unwrap();
        for o in &page.items {
            if let Some(node) = o
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("metallb.io/node"))
            {
                *per_node.entry(node.clone()).or_insert(0) += 1;
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => return per_node,
        }
    }
}

async fn many_services(env: &Env, count: usize) {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, PostParams};
    use serde_json::json;
    let api: Api<Service> = Api::namespaced(env.client.clone(), "default");
    let started = Instant::now();
    let created = std::sync::atomic::AtomicUsize::new(0);
    futures_lite(count, |k| {
        let api = api.clone();
        let created = &created;
        async move {
            let name = format!("many-{k}");
            let svc: Service = serde_json::from_value(json!({
                "metadata": {"name": name},
                // No NodePorts: 10,000 would not fit the NodePort range. IPv6, like the pool.
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}],
                         "allocateLoadBalancerNodePorts": false,
                         "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"]},
            }))
            .unwrap();
            api.create(&PostParams::default(), &svc).await.unwrap();
            set_endpoints(env, &name, &["node1"]).await;
            let n = created.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(1000) {
                eprintln!(
                    "  {n} of {count} Services created ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    })
    .await;
    eprintln!(
        "created {count} Services (the controller allocates) and their EndpointSlices in {:.1} s",
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
    ironlb_lab::components::build_ironlb_for_current_exe().expect("ironlb builds");
    if let Some(count) = std::env::var("SPEAKER_RSS_SERVICES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        rss_bench(count).await;
        return;
    }
    let trials: usize = std::env::var("FAILOVER_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    // E.g. the previous membership timings, for a comparison on the same machine:
    // FAILOVER_SPEAKER_ARGS="--ml-probe-period-ms 100 --ml-probe-rtt-ms 40 --ml-suspicion-ms 300".
    let extra = std::env::var("FAILOVER_SPEAKER_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let env = setup(false, &extra).await;
    let lab = &env.lab;
    apply_ok(lab, &reference_config(""));
    service_with_status(&env, "web", &[VIP], false, &["node1"]).await;
    let all = ["node1", "node2", "node3"];
    let owner = expected_owner(lab, VIP, &all, &BTreeMap::new(), None).unwrap();
    let survivors: Vec<&str> = all.iter().copied().filter(|n| *n != owner).collect();
    let next = expected_owner(lab, VIP, &survivors, &BTreeMap::new(), None).unwrap();
    wait_arp_owner(lab, VIP, Some(&owner), Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let capture = timed_capture(lab, "client", "arp");
    eprintln!(
        "owner {owner}, next {next}; {trials} trials per way of dying; speaker flags {extra:?}; client: a request every {REQUEST_EVERY:?}"
    );
    eprintln!(
        "  (ms after death: next owner's membership declares the owner down / decides to announce / client sees its gratuitous ARP / client's first answer from it)"
    );
    for death in [Death::Kill, Death::LinkDown] {
        let mut all_steps = Vec::new();
        for n in 0..trials {
            let st = trial(&env, &capture, &owner, &next, death).await;
            eprintln!(
                "  {death:?} trial {n:2}: detected {} announced {} garp {} answered {}",
                ms(st.detected),
                ms(st.announced),
                ms(st.garp),
                ms(Some(st.answered)).trim()
            );
            all_steps.push(st);
        }
        let failed = all_steps.iter().filter(|t| t.answered.is_nan()).count();
        let mut ok: Vec<f64> = all_steps
            .iter()
            .map(|t| t.answered)
            .filter(|t| !t.is_nan())
            .collect();
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
        println!(
            "  p50 of each step (ms after death): detected {} announced {} gratuitous ARP at client {} answered {}",
            median_ms(all_steps.iter().map(|s| s.detected)),
            median_ms(all_steps.iter().map(|s| s.announced)),
            median_ms(all_steps.iter().map(|s| s.garp)),
            median_ms(all_steps.iter().map(|s| Some(s.answered))),
        );
    }
}
