//! Running the responder inside a lab host's network namespace, and a raw frame sender.

#![allow(dead_code, clippy::unwrap_used)]

use ironlb_l2::responder::{self, Announce, Announcements, Conflict, Counters, ResponderConfig};
use ironlb_lab::Lab;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};

/// At most two labs of this test binary alive at once.
pub static LABS: Semaphore = Semaphore::const_new(2);

pub const VIP4: &str = "10.0.0.150";
pub const VIP6: &str = "fd10::150";

/// A responder running on its own thread inside a lab host's namespace.
pub struct NodeResponder {
    pub host: String,
    tx: Option<watch::Sender<Announcements>>,
    pub counters: Arc<Counters>,
    pub conflicts: mpsc::Receiver<Conflict>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl NodeResponder {
    /// Starts the responder in `host`'s namespace on eth0 only (the lab's mgmt0 leads to the
    /// host namespace, where no lab frame may go).
    pub fn start(lab: &Lab, host: &str, config: ResponderConfig, initial: Announcements) -> Self {
        let netns = lab.topo.netns(host);
        let (tx, rx) = watch::channel(initial);
        let counters = Arc::new(Counters::default());
        let (conflict_tx, conflicts) = mpsc::channel(64);
        let c = counters.clone();
        let config = ResponderConfig {
            include_interfaces: vec!["eth0".into()],
            ..config
        };
        let thread = std::thread::spawn(move || {
            ironlb_sys::netns::enter_netns(&ironlb_sys::netns::named_netns_path(&netns))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(responder::run(config, rx, c, conflict_tx))
        });
        NodeResponder {
            host: host.to_string(),
            tx: Some(tx),
            counters,
            conflicts,
            thread: Some(thread),
        }
    }

    /// Replaces the announcements.
    pub fn set(&self, a: Announcements) {
        if let Some(tx) = &self.tx {
            tx.send_replace(a);
        }
    }

    /// Stops the responder and returns how its run ended.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.tx = None;
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for NodeResponder {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A test configuration: quick bursts, no periodic probes.
pub fn fast_config() -> ResponderConfig {
    ResponderConfig {
        gratuitous_count: 5,
        gratuitous_interval: Duration::from_millis(400),
        probe_interval: None,
        ..ResponderConfig::default()
    }
}

pub fn announce(ips: &[&str], answer: bool) -> Announcements {
    ips.iter()
        .map(|ip| {
            (
                ip.parse::<IpAddr>().unwrap(),
                Announce {
                    interfaces: vec![],
                    answer,
                },
            )
        })
        .collect()
}

/// Gives a LoadBalancer Service the status addresses 10.0.0.150 and fd10::150 and waits until
/// the lab put them on every node's kube-ipvs0 (so each node's HTTP server accepts them).
pub async fn service_with_addresses(lab: &Lab) {
    let client = lab.client().await.unwrap();
    let services: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "lb"}},
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": VIP4}, {"ip": VIP6}]}}});
    services
        .patch_status("lb", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let all = lab.topo.node_names().iter().all(|n| {
            lab.exec_ok(n, &["ip", "-o", "addr", "show", "dev", "kube-ipvs0"])
                .map(|o| o.contains(&format!(" {VIP4}/")) && o.contains(&format!(" {VIP6}/")))
                .unwrap_or(false)
        });
        if all {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Service addresses never reached every kube-ipvs0"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not seen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
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

/// Sends raw frames from `host`'s eth0 (a thread entering its namespace).
pub fn send_frames(lab: &Lab, host: &str, frames: Vec<Vec<u8>>) {
    send_frames_on(lab, host, "eth0", frames)
}

/// Sends raw frames out of interface `iface` of the lab namespace `host` (`lan` is the switch:
/// its ports are named after the hosts they lead to).
pub fn send_frames_on(lab: &Lab, host: &str, iface: &str, frames: Vec<Vec<u8>>) {
    let netns = lab.topo.netns(host);
    let iface = iface.to_string();
    std::thread::spawn(move || {
        ironlb_sys::netns::enter_netns(&ironlb_sys::netns::named_netns_path(&netns)).unwrap();
        let eth0 = ironlb_sys::link::interfaces()
            .unwrap()
            .into_iter()
            .find(|i| i.name == iface)
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

/// `curl` from the client; the node's name that answered.
pub fn curl(lab: &Lab, url: &str) -> String {
    lab.exec("client", &["curl", "-s", "-g", "--max-time", "2", url])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// A tcpdump running in a lab host's namespace, writing to a file.
pub struct Capture {
    child: std::process::Child,
    path: std::path::PathBuf,
}

impl Capture {
    pub fn start(lab: &Lab, host: &str, filter: &str) -> Capture {
        let path = lab
            .dir
            .join(format!("tcpdump-{host}-{}.txt", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let mut args = vec![
            "ip", "netns", "exec", "", "tcpdump", "-i", "eth0", "-n", "-e", "-l", "-U",
        ];
        let netns = lab.topo.netns(host);
        args[3] = &netns;
        args.extend(filter.split_whitespace());
        let child = std::process::Command::new(args[0])
            .args(&args[1..])
            .stdout(file)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // tcpdump needs a moment to open its socket.
        std::thread::sleep(Duration::from_millis(700));
        Capture { child, path }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
