//! Running the responder inside a lab host's network namespace (frames, captures and waits are
//! `ironlb_lab::testing`'s).

#![allow(dead_code, clippy::unwrap_used)]

use ironlb_l2::responder::{self, Announce, Announcements, Conflict, Counters, ResponderConfig};
use ironlb_lab::Lab;
use ironlb_lab::testing::{create_service, set_status_addresses, wait_kube_ipvs0};
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
    create_service(&client, "default", "lb", 80, json!({})).await;
    set_status_addresses(&client, "default", "lb", &[VIP4, VIP6]).await;
    wait_kube_ipvs0(lab, &[VIP4, VIP6], Duration::from_secs(20)).await;
}

/// `curl` from the client; the node's name that answered.
pub fn curl(lab: &Lab, url: &str) -> String {
    lab.exec("client", &["curl", "-s", "-g", "--max-time", "2", url])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
