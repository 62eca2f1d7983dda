//! In the lab (needs root): one member per node namespace on the node's LAN address, then node2's
//! LAN link is cut and node1 and node3 must drop it within a second.

use ironlb_lab::{Lab, LabOptions};
use ironlb_membership::{DesiredMembers, Membership, MembershipConfig, Settings};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const KEY: &[u8] = b"lab membership secret";

/// A member running on its own thread inside a node's network namespace.
struct NodeMember {
    name: String,
    live: watch::Receiver<BTreeSet<String>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NodeMember {
    fn spawn(name: String, netns: String, bind: SocketAddr, desired: DesiredMembers) -> NodeMember {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let node = name.clone();
        let thread = std::thread::spawn(move || {
            // The namespace is per thread: enter it before the runtime (and its socket) exist.
            let ns = std::fs::File::open(format!("/run/netns/{netns}")).expect("open netns");
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (_desired_tx, desired_rx) = watch::channel(desired);
                let member = Membership::start(
                    MembershipConfig {
                        node_name: node,
                        bind,
                        secret: KEY.to_vec(),
                        settings: Settings::default(),
                    },
                    desired_rx,
                )
                .await
                .expect("membership starts in the node namespace");
                ready_tx.send(member.live()).expect("report");
                // Run until told to stop (polling keeps this thread's runtime free for the member).
                while stop_rx.try_recv().is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                drop(member);
            });
        });
        let live = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("member started");
        NodeMember {
            name,
            live,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for NodeMember {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn wait_live(
    m: &NodeMember,
    limit: Duration,
    pred: impl Fn(&BTreeSet<String>) -> bool,
) -> Result<(), BTreeSet<String>> {
    let mut rx = m.live.clone();
    match tokio::time::timeout(limit, rx.wait_for(|s| pred(s))).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(m.live.borrow().clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_a_nodes_lan_link_is_detected_within_a_second() {
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab starts (needs root)");
    let hosts = lab.topo.node_hosts();
    let desired: DesiredMembers = hosts
        .iter()
        .map(|h| (h.name.clone(), SocketAddr::from((h.ipv4, 7946))))
        .collect();
    let members: Vec<NodeMember> = hosts
        .iter()
        .map(|h| {
            NodeMember::spawn(
                h.name.clone(),
                h.netns.clone(),
                SocketAddr::from((h.ipv4, 7946)),
                desired.clone(),
            )
        })
        .collect();

    let everyone: BTreeSet<String> = desired.keys().cloned().collect();
    for m in &members {
        wait_live(m, Duration::from_secs(5), |s| *s == everyone)
            .await
            .unwrap_or_else(|seen| panic!("{} sees {seen:?}", m.name));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let node2 = lab.topo.node(2);
    let cut_at = Instant::now();
    let out = std::process::Command::new("ip")
        .args(["-n", &node2.netns, "link", "set", "eth0", "down"])
        .output()
        .expect("ip runs");
    assert!(out.status.success(), "ip link set down: {out:?}");

    for m in members.iter().filter(|m| m.name != "node2") {
        wait_live(m, Duration::from_secs(1), |s| !s.contains("node2"))
            .await
            .unwrap_or_else(|seen| {
                panic!("{} still sees node2 1 s after the cut: {seen:?}", m.name)
            });
        println!(
            "{} dropped node2 {:?} after the cut",
            m.name,
            cut_at.elapsed()
        );
        assert_eq!(
            *m.live.borrow(),
            ["node1", "node3"].iter().map(|s| s.to_string()).collect(),
            "{} keeps the others",
            m.name
        );
    }
    drop(members);
    lab.down();
}
