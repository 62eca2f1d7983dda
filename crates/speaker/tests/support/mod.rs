//! Shared helpers of the speaker's lab tests (and its failover bench): a lab with the CRDs,
//! optionally the controller, speakers in every node namespace; probes from the client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod bgp;

use ironlb_config::L2Advertisement;
use ironlb_l2::{NodeInfo, ServiceInfo, Settings, select_owner};
use ironlb_lab::components::{self, Controller, ControllerOptions};
use ironlb_lab::speakers::{self, SpeakerOptions, Speakers};
use ironlb_lab::testing::{
    Capture, arping, create_service, ndisc6, set_status_addresses, wait_kube_ipvs0,
};
use ironlb_lab::{Lab, LabOptions};
use kube::Client;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// At most two labs of one test binary at once.
pub static LABS: Semaphore = Semaphore::const_new(2);

/// A lab with CRDs, maybe the controller, and the speakers.
pub struct Env {
    pub lab: Lab,
    pub client: Client,
    pub ctl: Option<Controller>,
    pub speakers: Speakers,
    _permit: SemaphorePermit<'static>,
}

/// The `ironlb` binary (built by `cargo build -p ironlb` into the same target directory), or
/// what `IRONLB_BENCH_BINARY` names (another build, or a wrapper such as heaptrack's).
pub fn binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("IRONLB_BENCH_BINARY") {
        return path.into();
    }
    components::ironlb_next_to_current_exe().expect("run `cargo build -p ironlb` first")
}

/// The reference scenario's pool (plus IPv6 addresses) and an L2Advertisement `xixi` with
/// `extra_spec` lines (e.g. `  nodeSelectors: ...`).
pub fn reference_config(ad_extra: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: linuxnet, namespace: metallb-system}}
spec:
  addresses: [\"10.0.0.150-10.0.0.180\", \"fd10::150-fd10::180\"]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {{name: xixi, namespace: metallb-system}}
spec:
  ipAddressPools: [linuxnet]
{ad_extra}"
    )
}

/// Starts a lab; retries a few times, because the kernel removes the host links of a lab that
/// was just torn down asynchronously and a new lab in the same slot can collide with them.
pub async fn start_lab() -> Lab {
    let mut attempt = 0;
    loop {
        match Lab::start(LabOptions::for_test()).await {
            Ok(lab) => return lab,
            Err(e) if attempt < 40 && format!("{e:#}").contains("File exists") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            Err(e) => panic!("lab starts (needs root): {e:#}"),
        }
    }
}

/// Starts a lab, installs the CRDs, the controller if asked (without its webhook), and the
/// speakers.
pub async fn setup(controller: bool, speaker_args: &[&str]) -> Env {
    setup_with(controller, false, speaker_args).await
}

/// [`setup`] with the controller serving its admission webhook (and the BGPPeer conversion).
pub async fn setup_with_webhook(speaker_args: &[&str]) -> Env {
    setup_with(true, true, speaker_args).await
}

async fn setup_with(controller: bool, webhook: bool, speaker_args: &[&str]) -> Env {
    let permit = LABS.acquire().await.unwrap();
    let lab = start_lab().await;
    components::install_crds(&lab).expect("CRDs installed");
    let ctl = if controller {
        let mut opts = ControllerOptions::new(binary());
        opts.webhook = webhook;
        let ctl = components::start_controller(&lab, opts)
            .await
            .expect("controller starts");
        ctl.wait_ready(Duration::from_secs(30))
            .await
            .expect("controller ready");
        Some(ctl)
    } else {
        None
    };
    let mut opts = SpeakerOptions::new(binary());
    opts.extra_args = speaker_args.iter().map(|s| s.to_string()).collect();
    let speakers = speakers::start_speakers_with(&lab, opts)
        .await
        .expect("speakers start");
    let client = lab.client().await.unwrap();
    Env {
        lab,
        client,
        ctl,
        speakers,
        _permit: permit,
    }
}

/// `curl -s -m 1` from the client: the node name that answered (empty if nothing).
pub fn curl(lab: &Lab, url: &str) -> String {
    let out = lab.exec("client", &["curl", "-s", "-m", "1", url]).unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The lab MAC of node `name`.
pub fn mac_of(lab: &Lab, name: &str) -> String {
    lab.topo
        .node_hosts()
        .into_iter()
        .find(|h| h.name == name)
        .map(|h| h.mac)
        .unwrap()
}

/// Waits until every ARP answer for `ip` comes from `node` (or, with `None`, nobody answers),
/// twice in a row.
pub async fn wait_arp_owner(lab: &Lab, ip: &str, node: Option<&str>, limit: Duration) {
    let want: Vec<String> = node.map(|n| vec![mac_of(lab, n); 2]).unwrap_or_default();
    let deadline = Instant::now() + limit;
    let mut ok = 0;
    loop {
        let got = arping(lab, ip, 2);
        if got == want {
            ok += 1;
            if ok == 2 {
                return;
            }
            continue;
        }
        ok = 0;
        assert!(
            Instant::now() < deadline,
            "ARP answers for {ip}: {got:?}, expected {want:?} ({node:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Owner selection as the tests model the lab: nodes with just their hostname label (plus
/// `extra_labels`), the advertisement `xixi` on pool `linuxnet` with no selectors.
pub fn expected_owner(
    lab: &Lab,
    ip: &str,
    live: &[&str],
    extra_labels: &BTreeMap<&str, BTreeMap<String, String>>,
    local_nodes: Option<&[&str]>,
) -> Option<String> {
    let nodes: BTreeMap<String, NodeInfo> = lab
        .topo
        .node_names()
        .into_iter()
        .filter(|n| live.contains(&n.as_str()))
        .map(|n| {
            let mut labels = BTreeMap::from([
                ("kubernetes.io/hostname".to_string(), n.clone()),
                ("kubernetes.io/os".into(), "linux".into()),
                ("kubernetes.io/arch".into(), "amd64".into()),
            ]);
            if let Some(more) = extra_labels.get(n.as_str()) {
                labels.extend(more.clone());
            }
            (
                n.clone(),
                NodeInfo {
                    labels,
                    network_unavailable: false,
                },
            )
        })
        .collect();
    let svc = ServiceInfo {
        ip: ip.parse().unwrap(),
        pool: "linuxnet".into(),
        labels: BTreeMap::new(),
        local_traffic_policy: local_nodes.is_some(),
        has_serving_endpoint: true,
        serving_nodes: local_nodes
            .unwrap_or(&[])
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        shares_address: false,
    };
    let ads = vec![L2Advertisement {
        name: "xixi".into(),
        pools: vec!["linuxnet".into()],
        node_selectors: vec![],
        interfaces: vec![],
        service_selectors: vec![],
        preferred_nodes: vec![],
    }];
    select_owner(&svc, &ads, &nodes, Settings::default()).ok()
}

/// Whether a tcpdump line shows a gratuitous ARP for `ip` from `mac`.
pub fn is_gratuitous_arp(line: &str, mac: &str, ip: &str) -> bool {
    line.contains(&format!("{mac} > ff:ff:ff:ff:ff:ff"))
        && (line.contains(&format!("who-has {ip} tell {ip}"))
            || line.contains(&format!("Request who-has {ip} tell {ip}"))
            || line.contains(&format!("Reply {ip} is-at {mac}")))
}

/// A client loop: `curl` every few milliseconds with a short timeout, each answer (the
/// answering node) with a wall-clock timestamp, until dropped.
pub struct CurlLoop;

impl CurlLoop {
    pub fn start(lab: &Lab, url: &str, tag: &str) -> ShellLoop {
        let script =
            format!("while :; do r=$(curl -s -m 0.15 {url}); echo \"$(date +%s.%N) $r\"; done");
        ShellLoop::start(lab, "client", &format!("curl-loop-{tag}"), &script).unwrap()
    }
}

pub use ironlb_lab::install::{ShellLoop, unix_now};

/// A selector-less LoadBalancer Service `default/name` whose status the test writes itself
/// (`ips`), with an EndpointSlice holding one ready endpoint on each of `endpoint_nodes`
/// (none: no endpoint at all). Waits until the lab put the addresses on every kube-ipvs0.
pub async fn service_with_status(
    env: &Env,
    name: &str,
    ips: &[&str],
    local: bool,
    endpoint_nodes: &[&str],
) {
    let policy = if local { "Local" } else { "Cluster" };
    let spec = json!({"spec": {"selector": null, "externalTrafficPolicy": policy}});
    create_service(&env.client, "default", name, 80, spec).await;
    set_status_addresses(&env.client, "default", name, ips).await;
    set_endpoints(env, name, endpoint_nodes).await;
    wait_kube_ipvs0(&env.lab, ips, Duration::from_secs(20)).await;
}

/// Replaces the EndpointSlice of `default/name` with one ready endpoint per node in `nodes`.
pub async fn set_endpoints(env: &Env, name: &str, nodes: &[&str]) {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{Api, Patch, PatchParams};
    let slices: Api<EndpointSlice> = Api::namespaced(env.client.clone(), "default");
    let endpoints: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"addresses": [format!("10.244.9.{}", i + 10)], "nodeName": n,
                   "conditions": {"ready": true, "serving": true}})
        })
        .collect();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-manual"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": name,
                                "endpointslice.kubernetes.io/managed-by": "tests.ironlb"}},
        "addressType": "IPv4",
        "ports": [{"port": 80, "protocol": "TCP"}],
        "endpoints": endpoints,
    });
    slices
        .patch(
            &format!("{name}-manual"),
            &PatchParams::apply("ironlb-tests").force(),
            &Patch::Apply(&slice),
        )
        .await
        .unwrap();
}

/// The last lines of every speaker's log (for failure messages).
pub fn speaker_logs(env: &Env) -> String {
    env.speakers
        .nodes
        .iter()
        .map(|n| {
            format!(
                "--- {} ---\n{}",
                n.node,
                ironlb_lab::proc::log_tail(&n.daemon.log_file, 15)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `ndisc6` from the client gets answers, all from `node`.
pub async fn wait_ndp_owner(env: &Env, ip: &str, node: &str, limit: Duration) {
    let want = mac_of(&env.lab, node);
    let deadline = Instant::now() + limit;
    loop {
        let got = ndisc6(&env.lab, ip);
        if !got.is_empty() && got.iter().all(|m| *m == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "NDP answers for {ip}: {got:?}, expected only {node}\n{}",
            speaker_logs(env)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A client in the `client` namespace that starts an HTTP request to `addr` every `every`
/// (each in its own thread, waiting up to 1 s, so requests overlap and a request stuck on a dead
/// MAC does not delay the next one), recording when each answer arrived and which node sent it.
/// In-process: no `curl` start-up per request, so the figures measure the network, not fork.
pub struct HttpProbe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    answers: std::sync::Arc<std::sync::Mutex<Vec<(f64, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpProbe {
    pub fn start(lab: &Lab, addr: std::net::SocketAddr, every: Duration) -> HttpProbe {
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let answers: Arc<Mutex<Vec<(f64, String)>>> = Arc::default();
        let netns = lab.topo.netns("client");
        let (stop2, answers2) = (stop.clone(), answers.clone());
        let thread = std::thread::spawn(move || {
            // Threads started from here inherit the client's network namespace.
            ironlb_sys::netns::enter_netns(&ironlb_sys::netns::named_netns_path(&netns)).unwrap();
            let mut next = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let answers = answers2.clone();
                std::thread::spawn(move || {
                    if let Some(node) = http_get_node(addr, Duration::from_secs(1)) {
                        answers.lock().unwrap().push((unix_now(), node));
                    }
                });
                next += every;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        HttpProbe {
            stop,
            answers,
            thread: Some(thread),
        }
    }

    /// The first answer from `node` at or after `since` (unix seconds).
    pub fn first_from(&self, node: &str, since: f64) -> Option<f64> {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, r)| *t >= since && r == node)
            .map(|(t, _)| *t)
            .min_by(f64::total_cmp)
    }
}

impl Drop for HttpProbe {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One `GET /` over a fresh connection: the body (the node's name), or `None` on any failure.
fn http_get_node(addr: std::net::SocketAddr, limit: Duration) -> Option<String> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + limit;
    let mut s = std::net::TcpStream::connect_timeout(&addr, limit).ok()?;
    let left = deadline.checked_duration_since(Instant::now())?;
    s.set_read_timeout(Some(left)).ok()?;
    s.set_write_timeout(Some(left)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_string())
}

/// Unix seconds of a log line that starts with an RFC 3339 UTC timestamp
/// (`2026-11-25T13:22:28.123456Z ...`, tracing's default format).
pub fn log_line_time(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let ts = ts.split_once('Z')?.0;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

/// The time of the first line of `log` at or after `since` containing every one of `words`.
pub fn first_log_line(log: &std::path::Path, since: f64, words: &[&str]) -> Option<f64> {
    std::fs::read_to_string(log)
        .ok()?
        .lines()
        .map(strip_ansi)
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .filter_map(|l| log_line_time(&l))
        .find(|t| *t >= since)
}

/// `line` without ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for e in chars.by_ref() {
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A packet capture in a lab host with unix timestamps per line (`tcpdump -tt`).
pub fn timed_capture(lab: &Lab, host: &str, filter: &str) -> Capture {
    Capture::start_with(lab, host, &["-tt"], filter)
}

/// The unix time of the first captured line at or after `since` that `pred` accepts.
pub fn first_captured(capture: &Capture, since: f64, pred: impl Fn(&str) -> bool) -> Option<f64> {
    capture
        .text()
        .lines()
        .filter(|l| pred(l))
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .find(|t| *t >= since)
}
