//! The responder on the lab's LAN: real ARP/NDP from the client (arping, ndisc6, curl),
//! ownership moving between nodes (seen by tcpdump), malformed frames counted by reason, and
//! address conflicts. Needs root (network namespaces).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use ironlb_l2::ndp::icmpv6_checksum;
use ironlb_l2::{ArpFrame, DecodeError, MacAddr, NdpFrame};
use ironlb_lab::testing::{Capture, arping, eventually, ndisc6, send_frames, send_frames_on};
use ironlb_lab::{Lab, LabOptions};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use support::*;

const NODE1_MAC: &str = "02:1b:00:00:00:e7";
const NODE2_MAC: &str = "02:1b:00:00:00:e8";
const NODE3_MAC: &str = "02:1b:00:00:00:e9";

async fn lab() -> (Lab, tokio::sync::SemaphorePermit<'static>) {
    let permit = LABS.acquire().await.unwrap();
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab starts (needs root)");
    (lab, permit)
}

#[tokio::test(flavor = "multi_thread")]
async fn owner_answers_arp_and_ndp_then_ownership_moves_with_gratuitous_announcements() {
    let (lab, _permit) = lab().await;
    service_with_addresses(&lab).await;
    // Nobody answers before a responder runs (strict ARP on every node).
    assert_eq!(arping(&lab, VIP4, 1), Vec::<String>::new());

    let node1 = NodeResponder::start(&lab, "node1", fast_config(), announce(&[VIP4, VIP6], true));
    eventually(
        "node1's gratuitous burst",
        Duration::from_secs(5),
        async || node1.counters.gratuitous_sent() >= 3,
    )
    .await;
    let answers = arping(&lab, VIP4, 3);
    assert_eq!(answers, vec![NODE1_MAC; 3], "three answers, all from node1");
    let answers = ndisc6(&lab, VIP6);
    assert!(!answers.is_empty(), "ndisc6 gets an answer");
    assert!(
        answers.iter().all(|m| m == NODE1_MAC),
        "only node1 answers NDP: {answers:?}"
    );
    assert_eq!(curl(&lab, "http://10.0.0.150/"), "node1");
    assert_eq!(curl(&lab, "http://[fd10::150]/"), "node1");
    let by_ip = node1.counters.by_address();
    let v4 = by_ip[&VIP4.parse::<IpAddr>().unwrap()];
    assert!(
        v4.requests_received >= 3 && v4.responses_sent >= 3,
        "{v4:?}"
    );
    let v6 = by_ip[&VIP6.parse::<IpAddr>().unwrap()];
    assert!(
        v6.requests_received >= 1 && v6.responses_sent >= 1,
        "{v6:?}"
    );

    // Ownership moves to node2: node1 stops answering at once, node2 announces.
    let capture = Capture::start(&lab, "client", "arp or icmp6");
    node1.set(announce(&[], true));
    let before = node1.counters.responses_sent();
    let node2 = NodeResponder::start(&lab, "node2", fast_config(), announce(&[VIP4, VIP6], true));
    eventually(
        "a gratuitous ARP from node2 in the client's tcpdump",
        Duration::from_secs(5),
        async || {
            let text = capture.text();
            text.lines().any(|l| {
                l.contains(NODE2_MAC) && l.contains("10.0.0.150 is-at")
                    || l.contains(NODE2_MAC) && l.contains("who-has 10.0.0.150 tell 10.0.0.150")
            })
        },
    )
    .await;
    eventually(
        "an unsolicited NA from node2 in the client's tcpdump",
        Duration::from_secs(5),
        async || {
            capture.text().lines().any(|l| {
                l.contains(NODE2_MAC)
                    && l.contains("ff02::1")
                    && l.contains("neighbor advertisement")
            })
        },
    )
    .await;
    // The client follows the announcements without asking again.
    let mut reached = String::new();
    for _ in 0..20 {
        reached = curl(&lab, "http://10.0.0.150/");
        if reached == "node2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(reached, "node2");
    let mut reached6 = String::new();
    for _ in 0..20 {
        reached6 = curl(&lab, "http://[fd10::150]/");
        if reached6 == "node2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(reached6, "node2");
    assert_eq!(arping(&lab, VIP4, 2), vec![NODE2_MAC; 2]);
    assert_eq!(node1.counters.responses_sent(), before, "node1 is silent");
    let text = capture.text();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with_mac(NODE1_MAC) && l.contains("10.0.0.150 is-at")),
        "node1 sent no ARP answer after losing the address:\n{text}"
    );
    drop(capture);
    node2.stop().unwrap();
    node1.stop().unwrap();
}

trait StartsWithMac {
    fn starts_with_mac(&self, mac: &str) -> bool;
}

impl StartsWithMac for &str {
    /// tcpdump -e lines read "<time> <src mac> > <dst mac>, ...".
    fn starts_with_mac(&self, mac: &str) -> bool {
        self.split_whitespace().nth(1) == Some(mac)
    }
}

fn client_mac() -> MacAddr {
    "02:1b:00:00:00:64".parse().unwrap()
}

/// A NS from the client for fd10::150, unicast to node1's MAC.
fn ns_to_node1() -> Vec<u8> {
    let mut f = NdpFrame::solicitation(
        "fd10::100".parse().unwrap(),
        client_mac(),
        VIP6.parse().unwrap(),
    );
    f.eth_dst = NODE1_MAC.parse().unwrap();
    f.to_bytes()
}

fn rechecksum(f: &mut [u8]) {
    f[56] = 0;
    f[57] = 0;
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
    let sum = icmpv6_checksum(src, dst, &f[54..]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_truncated_frames_are_dropped_and_counted_by_reason() {
    let (lab, _permit) = lab().await;
    let node1 = NodeResponder::start(&lab, "node1", fast_config(), announce(&[VIP4, VIP6], true));
    eventually("node1 ready", Duration::from_secs(5), async || {
        node1.counters.gratuitous_sent() >= 1
    })
    .await;
    let request = ArpFrame {
        eth_dst: MacAddr::BROADCAST,
        eth_src: client_mac(),
        operation: ironlb_l2::ArpOperation::Request,
        sender_mac: client_mac(),
        sender_ip: "10.0.0.100".parse().unwrap(),
        target_mac: MacAddr::ZERO,
        target_ip: VIP4.parse().unwrap(),
    }
    .to_bytes();
    let with = |f: &[u8], i: usize, v: u8| {
        let mut f = f.to_vec();
        f[i] = v;
        f
    };
    let mut frames = vec![
        request[..30].to_vec(),   // truncated ARP
        with(&request, 15, 6),    // hardware type 6
        with(&request, 17, 0xdd), // protocol 0x08dd
        with(&request, 21, 9),    // operation 9
        with(&request, 21, 9),    // twice
    ];
    let ns = ns_to_node1();
    frames.push(with(&ns, 57, ns[57] ^ 0x01)); // bad checksum
    frames.push(with(&ns, 21, 64)); // hop limit 64 (not covered by the checksum)
    let mut zero_option = with(&ns, 79, 0);
    rechecksum(&mut zero_option);
    frames.push(zero_option); // option of length 0
    let mut truncated_ns = ns.clone();
    truncated_ns[19] = 20; // payload length 20 < 24
    truncated_ns.truncate(14 + 40 + 20);
    frames.push(truncated_ns);
    send_frames(&lab, "client", frames);
    // The lab's switch runs br_netfilter, which drops IPv6 frames whose header is broken
    // before they reach any port; these two go straight out of the switch port facing node1,
    // as a plain switch would deliver them.
    let mut v4_version = with(&ns, 14, 0x40);
    rechecksum(&mut v4_version);
    send_frames_on(
        &lab,
        "lan",
        "node1",
        vec![
            ns[..40].to_vec(), // truncated IPv6 header
            v4_version,        // IP version 4 in an IPv6 frame
        ],
    );
    let expected = [
        (DecodeError::TruncatedArp, 1),
        (DecodeError::ArpHardware, 1),
        (DecodeError::ArpProtocol, 1),
        (DecodeError::ArpOperation, 2),
        (DecodeError::TruncatedIpv6, 1),
        (DecodeError::Checksum, 1),
        (DecodeError::HopLimit, 1),
        (DecodeError::Option, 1),
        (DecodeError::Ipv6Version, 1),
        (DecodeError::TruncatedIcmpv6, 1),
    ];
    eventually(
        "every malformed frame counted",
        Duration::from_secs(5),
        async || {
            let all = expected
                .iter()
                .all(|(reason, n)| node1.counters.dropped(*reason) >= *n);
            if !all {
                eprintln!("dropped so far: {:?}", node1.counters.dropped_by_reason());
            }
            all
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (reason, n) in expected {
        assert_eq!(node1.counters.dropped(reason), n, "{}", reason.reason());
    }
    let total: u64 = node1
        .counters
        .dropped_by_reason()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, 11, "{:?}", node1.counters.dropped_by_reason());
    assert_eq!(
        node1.counters.responses_sent(),
        0,
        "no malformed frame was answered"
    );
    // The responder is still alive and answers a good request and a good solicitation.
    send_frames(&lab, "client", vec![request, ns]);
    eventually(
        "answers to the valid frames",
        Duration::from_secs(5),
        async || node1.counters.responses_sent() == 2,
    )
    .await;
    assert_eq!(arping(&lab, VIP4, 1), vec![NODE1_MAC]);
    node1.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_are_reported_before_and_while_announcing() {
    let (lab, _permit) = lab().await;
    // node3 holds both addresses on its LAN interface: its kernel answers for them.
    let node3 = lab.topo.netns("node3");
    for args in [
        vec![
            "ip",
            "-n",
            &node3,
            "addr",
            "add",
            "10.0.0.150/32",
            "dev",
            "eth0",
        ],
        vec![
            "ip",
            "-n",
            &node3,
            "addr",
            "add",
            "fd10::150/128",
            "dev",
            "eth0",
            "nodad",
        ],
    ] {
        ironlb_lab::proc::run(args[0], &args[1..]).unwrap();
    }
    // About to own: node1 probes, hears node3, reports, and stays silent.
    let mut node1 =
        NodeResponder::start(&lab, "node1", fast_config(), announce(&[VIP4, VIP6], false));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let c = tokio::time::timeout(Duration::from_secs(5), node1.conflicts.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "a conflict report within 5 s (seen {seen:?}, probes sent {}, dropped {:?})",
                    node1.counters.probes_sent(),
                    node1.counters.dropped_by_reason()
                )
            })
            .unwrap();
        seen.push(c);
    }
    seen.sort_by_key(|c| c.ip);
    for (c, ip) in seen.iter().zip([VIP4, VIP6]) {
        assert_eq!(c.ip, ip.parse::<IpAddr>().unwrap());
        assert_eq!(c.mac.to_string(), NODE3_MAC);
        assert_eq!(c.interface, "eth0");
        assert!(!c.while_answering);
    }
    eventually(
        "three probes per address",
        Duration::from_secs(3),
        async || node1.counters.probes_sent() == 6,
    )
    .await;
    assert_eq!(node1.counters.gratuitous_sent(), 0);
    assert_eq!(arping(&lab, VIP4, 1), vec![NODE3_MAC], "node1 stays silent");

    // node3 lets go; node1 announces; then node2 wrongly claims the address too (split
    // brain): each notices the other.
    for args in [
        vec![
            "ip",
            "-n",
            &node3,
            "addr",
            "del",
            "10.0.0.150/32",
            "dev",
            "eth0",
        ],
        vec![
            "ip",
            "-n",
            &node3,
            "addr",
            "del",
            "fd10::150/128",
            "dev",
            "eth0",
        ],
    ] {
        ironlb_lab::proc::run(args[0], &args[1..]).unwrap();
    }
    node1.set(announce(&[VIP4, VIP6], true));
    eventually("node1 announcing", Duration::from_secs(5), async || {
        node1.counters.gratuitous_sent() >= 3
    })
    .await;
    let mut node2 = NodeResponder::start(&lab, "node2", fast_config(), announce(&[VIP4], true));
    let c = tokio::time::timeout(Duration::from_secs(5), node1.conflicts.recv())
        .await
        .expect("node1 reports node2")
        .unwrap();
    assert_eq!(c.ip, VIP4.parse::<IpAddr>().unwrap());
    assert_eq!(c.mac.to_string(), NODE2_MAC);
    assert!(c.while_answering);
    let c = tokio::time::timeout(Duration::from_secs(5), node2.conflicts.recv())
        .await
        .expect("node2 reports node1")
        .unwrap();
    assert_eq!(c.mac.to_string(), NODE1_MAC);
    assert!(node1.counters.conflicts() >= 3);
    node2.stop().unwrap();
    node1.stop().unwrap();
}
