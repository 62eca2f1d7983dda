//! ARP reply latency and replies per second on the lab's LAN: the responder runs in node1's
//! namespace, a client thread in the client's namespace sends ARP requests for 10.0.0.150 on
//! a raw socket and times the replies. Needs root; runs only under `cargo bench` (with
//! `--bench`), and sends a bounded number of frames inside the lab's own namespaces.

#![allow(clippy::unwrap_used, dead_code)]

#[path = "../tests/support/mod.rs"]
mod support;

use ironlb_l2::{ArpFrame, ArpOperation, MacAddr};
use ironlb_lab::{Lab, LabOptions};
use ironlb_sys::packet::{AsyncPacketSocket, PacketType, Protocol};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const LATENCY_SAMPLES: usize = 2000;
const BLAST: usize = 20_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lab = Lab::start(LabOptions::for_test()).await.expect("lab (needs root)");
        let node1 = support::NodeResponder::start(
            &lab,
            "node1",
            support::fast_config(),
            support::announce(&[support::VIP4], true),
        );
        ironlb_lab::testing::eventually("responder ready", Duration::from_secs(5), async || {
            node1.counters.gratuitous_sent() >= 1
        })
        .await;
        let netns = lab.topo.netns("client");
        let blasting = Arc::new(AtomicBool::new(false));
        let flag = blasting.clone();
        let thread = std::thread::spawn(move || {
            ironlb_sys::netns::enter_netns(&ironlb_sys::netns::named_netns_path(&netns)).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(client(flag))
        });
        // The responder's own rate: answers counted while the client blasts (the client's
        // socket also sees its own outgoing copies, so its count of replies undercounts).
        let mut first: Option<(Instant, u64)> = None;
        let mut last: Option<(Instant, u64)> = None;
        while !thread.is_finished() {
            if blasting.load(Ordering::Relaxed) {
                let n = node1.counters.responses_sent();
                match first {
                    None => first = Some((Instant::now(), n)),
                    Some(_) if last.is_none_or(|(_, m)| m != n) => last = Some((Instant::now(), n)),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (latencies, lost, blast) = thread.join().unwrap();
        if let (Some((t0, n0)), Some((t1, n1))) = (first, last) {
            println!(
                "arp_lab/responder rate: {} answers in {:?} while blasted: {:.0} replies/s",
                n1 - n0,
                t1 - t0,
                (n1 - n0) as f64 / (t1 - t0).as_secs_f64()
            );
        }
        let mut sorted = latencies.clone();
        sorted.sort();
        let pct = |p: f64| sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)];
        println!(
            "arp_lab/latency: {} requests, {} lost; p50 {:?}, p99 {:?}, max {:?}",
            LATENCY_SAMPLES,
            lost,
            pct(0.50),
            pct(0.99),
            sorted.last().unwrap()
        );
        let (sent, replies, elapsed) = blast;
        println!(
            "arp_lab/client view: {sent} requests sent back to back, {replies} replies seen in {elapsed:?}: {:.0} replies/s",
            replies as f64 / elapsed.as_secs_f64()
        );
        println!(
            "arp_lab/responder counters: requests {}, responses {}",
            node1.counters.requests_received(),
            node1.counters.responses_sent()
        );
        node1.stop().unwrap();
        drop(lab);
    });
}

fn request(client: MacAddr) -> Vec<u8> {
    ArpFrame {
        eth_dst: MacAddr::BROADCAST,
        eth_src: client,
        operation: ArpOperation::Request,
        sender_mac: client,
        sender_ip: Ipv4Addr::new(10, 0, 0, 100),
        target_mac: MacAddr::ZERO,
        target_ip: Ipv4Addr::new(10, 0, 0, 150),
    }
    .to_bytes()
}

fn is_reply(buf: &[u8]) -> bool {
    matches!(ArpFrame::decode(buf), Ok(f) if f.operation == ArpOperation::Reply
        && f.sender_ip == Ipv4Addr::new(10, 0, 0, 150))
}

async fn client(blasting: Arc<AtomicBool>) -> (Vec<Duration>, usize, (usize, usize, Duration)) {
    let eth0 = ironlb_sys::link::interfaces()
        .unwrap()
        .into_iter()
        .find(|i| i.name == "eth0")
        .unwrap();
    let mac = MacAddr(eth0.mac.unwrap());
    let socket = AsyncPacketSocket::open(eth0.index, Protocol::Arp).unwrap();
    let frame = request(mac);
    let mut buf = [0u8; 2048];
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    let mut lost = 0;
    for _ in 0..LATENCY_SAMPLES {
        let start = Instant::now();
        socket.send(&frame).await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                let (n, kind) = socket.recv(&mut buf).await.unwrap();
                if kind != PacketType::Outgoing && is_reply(&buf[..n]) {
                    return;
                }
            }
        })
        .await;
        match got {
            Ok(()) => latencies.push(start.elapsed()),
            Err(_) => lost += 1,
        }
    }
    // Back to back: one task sends, this one counts replies until 1 s passes without one.
    let sender = AsyncPacketSocket::open(eth0.index, Protocol::Arp).unwrap();
    blasting.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let start = Instant::now();
    let send = tokio::spawn(async move {
        for _ in 0..BLAST {
            sender.send(&frame).await.unwrap();
        }
    });
    let mut replies = 0;
    let mut last = start;
    while let Ok(Ok((n, kind))) =
        tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await
    {
        if kind != PacketType::Outgoing && is_reply(&buf[..n]) {
            replies += 1;
            last = Instant::now();
        }
    }
    send.await.unwrap();
    (latencies, lost, (BLAST, replies, last - start))
}
