//! A cluster of members on 127.0.0.1 for tests and the benchmark.
#![allow(dead_code)]

use ironlb_membership::{DesiredMembers, Membership, MembershipConfig, Settings};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;

/// The shared secret of test clusters.
pub const KEY: &[u8] = b"correct horse battery staple";

/// `nodeN` (1-based).
pub fn name(i: usize) -> String {
    format!("node{i}")
}

/// One member and the sender of its desired set.
pub struct Node {
    pub name: String,
    pub member: Option<Membership>,
    pub desired: watch::Sender<DesiredMembers>,
}

impl Node {
    pub fn m(&self) -> &Membership {
        self.member.as_ref().expect("member running")
    }
    pub fn live(&self) -> BTreeSet<String> {
        self.m().live().borrow().clone()
    }
}

/// Starts one member on 127.0.0.1 with an empty desired set.
pub async fn start(name: &str, key: &[u8], settings: Settings) -> Node {
    let (tx, rx) = watch::channel(DesiredMembers::new());
    let member = Membership::start(
        MembershipConfig {
            node_name: name.to_owned(),
            bind: "127.0.0.1:0".parse().expect("addr"),
            secret: key.to_vec(),
            settings,
        },
        rx,
    )
    .await
    .expect("membership starts");
    Node {
        name: name.to_owned(),
        member: Some(member),
        desired: tx,
    }
}

/// `n` members with the same key, each desiring all of them.
pub async fn cluster(n: usize, settings: Settings) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 1..=n {
        nodes.push(start(&name(i), KEY, settings.clone()).await);
    }
    let desired = desired_of(&nodes);
    for node in &nodes {
        node.desired.send_replace(desired.clone());
    }
    nodes
}

/// name -> bound address of every running node.
pub fn desired_of(nodes: &[Node]) -> DesiredMembers {
    nodes
        .iter()
        .filter_map(|n| n.member.as_ref().map(|m| (n.name.clone(), m.local_addr())))
        .collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Waits until `pred` holds for the member's live set; returns how long it took.
pub async fn wait_for(
    m: &Membership,
    limit: Duration,
    pred: impl Fn(&BTreeSet<String>) -> bool,
) -> Result<Duration, BTreeSet<String>> {
    let start = std::time::Instant::now();
    let mut rx = m.live();
    let r = tokio::time::timeout(limit, rx.wait_for(|s| pred(s))).await;
    match r {
        Ok(Ok(_)) => Ok(start.elapsed()),
        _ => Err(m.live().borrow().clone()),
    }
}

/// Waits until every running node sees exactly the running nodes.
pub async fn converge(nodes: &[Node], limit: Duration) {
    let want: BTreeSet<String> = nodes
        .iter()
        .filter(|n| n.member.is_some())
        .map(|n| n.name.clone())
        .collect();
    for n in nodes.iter().filter(|n| n.member.is_some()) {
        if let Err(seen) = wait_for(n.m(), limit, |s| *s == want).await {
            panic!("{} sees {seen:?}, want {want:?}", n.name);
        }
    }
}

/// Forwards datagrams to `to`, dropping each with probability `loss` (a lossy link).
/// Returns the proxy's address.
pub async fn lossy_proxy(to: SocketAddr, loss: f64, seed: u64) -> SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = sock.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut state = seed | 1;
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, _)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            // xorshift64: a deterministic loss pattern per seed.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let r = (state >> 11) as f64 / (1u64 << 53) as f64;
            if r >= loss {
                let _ = sock.send_to(&buf[..n], to).await;
            }
        }
    });
    addr
}
