//! Lab helpers shared by the BFD lab tests and the detection benchmark: FRR's bfdd
//! configuration and JSON, a BfdManager (and BGP sessions) in a node's namespace, link cuts.
#![allow(dead_code, clippy::unwrap_used)]

#[path = "../../../bgp/tests/common/mod.rs"]
pub mod common;

pub use common::*;
use ironlb_bfd::{BfdHandle, BfdManager, BfdParams, BfdPeer, ManagerConfig};
use ironlb_bgp::rib::RouteAttributes;
use ironlb_bgp::session::driver::{BfdGate, Session};
use ironlb_lab::testing::eventually;
use ironlb_lab::{Host, Lab};
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::watch;

/// 100 ms × 3, as the FRR profile `fast`.
pub fn fast() -> BfdParams {
    BfdParams {
        desired_min_tx: Duration::from_millis(100),
        required_min_rx: Duration::from_millis(100),
        detect_mult: 3,
        ..BfdParams::default()
    }
}

/// `configure terminal` then `lines` in FRR.
pub fn frr_configure(lab: &Lab, lines: &[String]) {
    let mut args = vec!["configure terminal"];
    args.extend(lines.iter().map(String::as_str));
    lab.router.cli(&args).unwrap();
}

/// FRR's bfdd profile `fast`: 100 ms both ways, multiplier 3.
pub fn frr_fast_profile() -> Vec<String> {
    [
        "bfd",
        "profile fast",
        "receive-interval 100",
        "transmit-interval 100",
        "detect-multiplier 3",
        "exit",
        "exit",
    ]
    .map(String::from)
    .to_vec()
}

/// FRR's view of the BFD session with `peer` (`show bfd peers json`).
pub fn frr_bfd_peer(lab: &Lab, peer: &str) -> Result<serde_json::Value, String> {
    frr_bfd_entry(lab, "show bfd peers json", peer)
}

/// How many times FRR's BFD session with `peer` went down (`show bfd peers counters json`).
pub fn frr_bfd_session_downs(lab: &Lab, peer: &str) -> Result<u64, String> {
    let c = frr_bfd_entry(lab, "show bfd peers counters json", peer)?;
    c["session-down"]
        .as_u64()
        .ok_or_else(|| format!("no session-down counter: {c}"))
}

fn frr_bfd_entry(lab: &Lab, command: &str, peer: &str) -> Result<serde_json::Value, String> {
    let v = frr_json(lab, command)?;
    v.as_array()
        .and_then(|a| a.iter().find(|p| p["peer"] == peer).cloned())
        .ok_or_else(|| format!("no BFD peer {peer} in `{command}`: {v}"))
}

/// FRR's status string for `peer` ("up", "down", "init", ...).
pub fn frr_bfd_status(lab: &Lab, peer: &str) -> Result<String, String> {
    let p = frr_bfd_peer(lab, peer)?;
    p["status"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no status: {p}"))
}

/// Waits until FRR's IPv4 paths for `prefix` go exactly via `hops` (sorted) and its BFD session
/// with `bfd_peer` is up.
pub async fn wait_hops_and_frr_bfd_up(
    lab: &Lab,
    what: &str,
    limit: Duration,
    prefix: &str,
    hops: &[String],
    bfd_peer: &str,
) {
    eventually(what, limit, async || {
        let nh = path_next_hops(&frr_paths(lab, "ipv4", prefix)?);
        let bfd = frr_bfd_status(lab, bfd_peer)?;
        if nh == hops && bfd == "up" {
            Ok(())
        } else {
            Err(format!("{nh:?} {bfd}"))
        }
    })
    .await
}

/// A node namespace with its runtime and BFD manager.
pub struct BfdNode {
    pub host: Host,
    pub rt: NetnsRuntime,
    pub manager: BfdManager,
}

impl BfdNode {
    pub async fn new(lab: &Lab, i: u8) -> BfdNode {
        let host = lab.topo.node(i);
        let rt = NetnsRuntime::new(&host.netns);
        let manager = rt
            .run(async { BfdManager::new(ManagerConfig::default()) })
            .await
            .expect("BFD sockets in the node namespace");
        BfdNode { host, rt, manager }
    }

    /// A session to the lab router over IPv4.
    pub async fn add_router(&self, lab: &Lab, params: BfdParams) -> BfdHandle {
        self.manager
            .add(BfdPeer {
                local: Some(IpAddr::V4(self.host.ipv4)),
                peer: IpAddr::V4(lab.topo.router().ipv4),
                params,
            })
            .await
            .unwrap()
    }

    /// eBGP to the router (hold time 30 s) announcing `prefix`, following `bfd` if given.
    pub async fn bgp(
        &self,
        lab: &Lab,
        prefix: &str,
        bfd: Option<&BfdHandle>,
    ) -> (Session, watch::Sender<ironlb_bgp::rib::Announcements>) {
        let mut cfg = ebgp_to_router(lab, &self.host);
        cfg.fsm.hold_time = 30;
        cfg.bfd = bfd.map(|h| BfdGate(h.up()));
        let (tx, rx) = watch::channel(routes(&[(prefix, RouteAttributes::default())]));
        (self.rt.session(cfg, rx).await, tx)
    }
}

/// Waits until our side of `h` satisfies `f`.
pub async fn wait_bfd(
    h: &BfdHandle,
    what: &str,
    limit: Duration,
    f: impl Fn(&ironlb_bfd::BfdState) -> bool,
) {
    let mut rx = h.state();
    let ok = tokio::time::timeout(limit, rx.wait_for(|s| f(s)))
        .await
        .is_ok();
    assert!(ok, "{what} not within {limit:?}: {:?}", *rx.borrow());
}

/// Sets a node's LAN link down or up.
pub fn set_link(host: &Host, up: bool) {
    ironlb_lab::proc::run(
        "ip",
        &[
            "-n",
            &host.netns,
            "link",
            "set",
            "eth0",
            if up { "up" } else { "down" },
        ],
    )
    .unwrap();
}
