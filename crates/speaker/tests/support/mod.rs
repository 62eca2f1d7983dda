//! Shared helpers of the speaker's lab tests (and its failover bench): a lab with the CRDs,
//! optionally the controller, speakers in every node namespace; probes from the client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod bgp;

use ironlb_config::L2Advertisement;
use ironlb_l2::{NodeInfo, ServiceInfo, Settings, select_owner};
use ironlb_lab::components::{self, Controller, ControllerOptions};
use ironlb_lab::speakers::{self, SpeakerOptions, Speakers};
use ironlb_lab::{Lab, LabOptions};
use kube::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
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

pub fn kubectl(lab: &Lab, args: &[&str]) -> String {
    let out = lab.kubectl().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn apply_ok(lab: &Lab, yaml: &str) {
    if let Err(e) = lab.kubectl_apply(yaml) {
        panic!("apply failed: {e:#}\n{yaml}");
    }
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

/// The MACs that answered `arping -c N` from the client, one per answer.
pub fn arping(lab: &Lab, ip: &str, count: u32) -> Vec<String> {
    lab.arp_answers("client", ip, count).unwrap()
}

/// The MACs that answered `ndisc6` from the client.
pub fn ndisc6(lab: &Lab, ip: &str) -> Vec<String> {
    lab.ndp_answers("client", ip).unwrap()
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

/// A packet capture in a lab host, written to a file.
pub struct Capture {
    child: Child,
    file: std::path::PathBuf,
}

impl Capture {
    pub fn start(lab: &Lab, host: &str, filter: &str) -> Capture {
        Capture::start_with(lab, host, &[], filter)
    }

    /// With more tcpdump flags (e.g. `-tt`).
    pub fn start_with(lab: &Lab, host: &str, flags: &[&str], filter: &str) -> Capture {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = lab
            .dir
            .join(format!("tcpdump-{host}-{}-{seq}.txt", std::process::id()));
        let out = std::fs::File::create(&file).unwrap();
        let netns = lab.topo.netns(host);
        let mut argv = vec!["tcpdump", "-l", "-n", "-e"];
        argv.extend_from_slice(flags);
        argv.extend_from_slice(&["-i", "eth0", filter]);
        let child = ironlb_lab::proc::in_netns(&netns, &argv)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        Capture { child, file }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a tcpdump line shows a gratuitous ARP for `ip` from `mac`.
pub fn is_gratuitous_arp(line: &str, mac: &str, ip: &str) -> bool {
    line.contains(&format!("{mac} > ff:ff:ff:ff:ff:ff"))
        && (line.contains(&format!("who-has {ip} tell {ip}"))
            || line.contains(&format!("Request who-has {ip} tell {ip}"))
            || line.contains(&format!("Reply {ip} is-at {mac}")))
}

/// A client loop: `curl` every few milliseconds with a short timeout, each answer with a
/// wall-clock timestamp, until dropped.
pub struct CurlLoop {
    child: Child,
    file: std::path::PathBuf,
}

impl CurlLoop {
    pub fn start(lab: &Lab, url: &str, tag: &str) -> CurlLoop {
        let file = lab.dir.join(format!("curl-loop-{tag}.txt"));
        let out = std::fs::File::create(&file).unwrap();
        let script =
            format!("while :; do r=$(curl -s -m 0.15 {url}); echo \"$(date +%s.%N) $r\"; done");
        let child = ironlb_lab::proc::in_netns(&lab.topo.netns("client"), &["sh", "-c", &script])
            .stdout(out)
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        CurlLoop { child, file }
    }

    /// (unix time, answering node) lines so far.
    pub fn answers(&self) -> Vec<(f64, String)> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (t, r) = l.split_once(' ')?;
                Some((t.parse().ok()?, r.trim().to_string()))
            })
            .collect()
    }

    /// The first answer from `node` at or after `since` (unix seconds).
    pub fn first_from(&self, node: &str, since: f64) -> Option<f64> {
        self.answers()
            .into_iter()
            .find(|(t, r)| *t >= since && r == node)
            .map(|(t, _)| t)
    }
}

use std::os::unix::process::CommandExt;

impl Drop for CurlLoop {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Unix time now, in seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

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
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use serde_json::json;
    let services: Api<Service> = Api::namespaced(env.client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}],
                 "externalTrafficPolicy": if local { "Local" } else { "Cluster" }},
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let ingress: Vec<_> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    services
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"loadBalancer": {"ingress": ingress}}})),
        )
        .await
        .unwrap();
    set_endpoints(env, name, endpoint_nodes).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = env.lab.topo.node_names().iter().all(|n| {
            env.lab
                .exec_ok(n, &["ip", "-o", "addr", "show", "dev", "kube-ipvs0"])
                .map(|o| ips.iter().all(|ip| o.contains(&format!(" {ip}/"))))
                .unwrap_or(false)
        });
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "addresses never reached kube-ipvs0"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Replaces the EndpointSlice of `default/name` with one ready endpoint per node in `nodes`.
pub async fn set_endpoints(env: &Env, name: &str, nodes: &[&str]) {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{Api, Patch, PatchParams};
    use serde_json::json;
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

/// Sends raw Ethernet frames from `host`'s eth0 (a thread entering its namespace).
pub fn send_frames(lab: &Lab, host: &str, frames: Vec<Vec<u8>>) {
    let netns = lab.topo.netns(host);
    std::thread::spawn(move || {
        ironlb_sys::netns::enter_netns(&ironlb_sys::netns::named_netns_path(&netns)).unwrap();
        let eth0 = ironlb_sys::link::interfaces()
            .unwrap()
            .into_iter()
            .find(|i| i.name == "eth0")
            .unwrap();
        let socket =
            ironlb_sys::packet::PacketSocket::open(eth0.index, ironlb_sys::packet::Protocol::Arp)
                .unwrap();
        for f in frames {
            socket.send(&f).unwrap();
        }
    })
    .join()
    .unwrap();
}

/// Waits for an Event `reason` on Service `default/service` whose note contains `contains`.
pub async fn wait_service_event(env: &Env, service: &str, reason: &str, contains: &str) -> String {
    use k8s_openapi::api::events::v1::Event;
    use kube::api::{Api, ListParams};
    let api: Api<Event> = Api::namespaced(env.client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notes: Vec<String> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(service))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note)
            .collect();
        if let Some(n) = notes.iter().find(|n| n.contains(contains)) {
            return n.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {reason} event on {service} containing {contains:?}: {notes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
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
