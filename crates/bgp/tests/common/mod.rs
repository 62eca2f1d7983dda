//! Shared helpers of the lab tests: a tokio runtime inside a node's network namespace and
//! reading the routers' JSON (waiting is `ironlb_lab::testing::eventually`).
#![allow(dead_code, clippy::unwrap_used)]

use ironlb_bgp::rib::{Announcements, RouteAttributes};
use ironlb_bgp::session::driver::{PeerConfig, Session, SessionStatus};
use ironlb_bgp::session::fsm::{FsmConfig, PeerAs, State};
use ironlb_lab::{Host, Lab};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::sync::watch;

/// Moves the calling thread into the network namespace at `path`.
pub fn enter_netns(path: &std::path::Path) {
    let file = std::fs::File::open(path).expect("the namespace exists");
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns (needs root)");
}

/// A current-thread tokio runtime on a thread that entered a network namespace: every socket
/// its tasks open lives in that namespace.
pub struct NetnsRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NetnsRuntime {
    pub fn new(netns: &str) -> Self {
        let path = std::path::Path::new("/run/netns").join(netns);
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            enter_netns(&path);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            handle_tx.send(rt.handle().clone()).unwrap();
            rt.block_on(async {
                let _ = stopped.await;
            });
        });
        NetnsRuntime {
            handle: handle_rx.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Runs `f` on the namespace's runtime and returns its output.
    pub async fn run<F, T>(&self, f: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(f).await.unwrap()
    }

    /// Starts a session inside the namespace.
    pub async fn session(
        &self,
        config: PeerConfig,
        routes: watch::Receiver<Announcements>,
    ) -> Session {
        self.run(async move { Session::spawn(config, routes) })
            .await
    }
}

impl Drop for NetnsRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the session reports `state`.
pub async fn wait_state(session: &Session, state: State, limit: Duration) -> SessionStatus {
    let mut rx = session.status();
    let r = tokio::time::timeout(limit, rx.wait_for(|s| s.state == state))
        .await
        .map(|r| r.map(|s| s.clone()));
    match r {
        Ok(Ok(s)) => s,
        _ => panic!("session not {state} within {limit:?}: {:?}", *rx.borrow()),
    }
}

/// eBGP from a lab node to the lab router (AS 64513 → 64512) over IPv4.
pub fn ebgp_to_router(lab: &Lab, node: &Host) -> PeerConfig {
    let mut fsm = FsmConfig::new(64513, PeerAs::Fixed(64512), node.ipv4);
    fsm.connect_time = Duration::from_secs(3);
    let mut c = PeerConfig::new(IpAddr::V4(lab.topo.router().ipv4), fsm);
    c.source_address = Some(IpAddr::V4(node.ipv4));
    c
}

/// The same over IPv6 (the lab's FRR activates IPv6 unicast on its IPv6 neighbors only).
pub fn ebgp_to_router_v6(lab: &Lab, node: &Host) -> PeerConfig {
    let mut c = ebgp_to_router(lab, node);
    c.peer_address = IpAddr::V6(lab.topo.router().ipv6);
    c.source_address = Some(IpAddr::V6(node.ipv6));
    c
}

pub fn prefix(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

pub fn routes(list: &[(&str, RouteAttributes)]) -> Announcements {
    list.iter().map(|(p, a)| (prefix(p), a.clone())).collect()
}

/// `vtysh -c <cmd>` parsed as JSON.
pub fn frr_json(lab: &Lab, cmd: &str) -> Result<serde_json::Value, String> {
    let out = lab.router.cli(&[cmd]).map_err(|e| e.to_string())?;
    serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
}

/// The state FRR reports for neighbor `addr` in `show bgp summary json`.
pub fn frr_neighbor_state(lab: &Lab, af: &str, addr: &str) -> Result<String, String> {
    let v = frr_json(lab, "show bgp summary json")?;
    v[af]["peers"][addr]["state"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {af} peer {addr}: {v}"))
}

/// The paths FRR has for `prefix` (`show bgp <af> unicast <prefix> json`).
pub fn frr_paths(lab: &Lab, af: &str, prefix: &str) -> Result<Vec<serde_json::Value>, String> {
    let v = frr_json(lab, &format!("show bgp {af} unicast {prefix} json"))?;
    Ok(v["paths"].as_array().cloned().unwrap_or_default())
}

/// The next-hop addresses of each FRR path.
pub fn path_next_hops(paths: &[serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = paths
        .iter()
        .filter_map(|p| p["nexthops"][0]["ip"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

pub fn node_v4(lab: &Lab, i: u8) -> Ipv4Addr {
    lab.topo.node(i).ipv4
}
