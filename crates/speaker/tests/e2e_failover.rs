//! Speakers in every node namespace of a lab (as their ServiceAccount, with membership): one
//! owner answers ARP and NDP, HTTP reaches it, and when its speaker is killed or its LAN link
//! goes down the next owner takes over, announced by gratuitous ARP. Needs root and
//! `cargo build -p ironlb` first.

#![allow(clippy::unwrap_used)]

mod support;

use ironlb_api::v1beta1::ServiceL2Status;
use ironlb_lab::testing::{Capture, apply_ok, arping, send_frames, wait_event};
use kube::api::{Api, ListParams};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

const VIP4: &str = "10.0.0.150";
const VIP6: &str = "fd10::150";

async fn statuses(env: &Env) -> Vec<ServiceL2Status> {
    let api: Api<ServiceL2Status> = Api::namespaced(env.client.clone(), "metallb-system");
    api.list(&ListParams::default()).await.unwrap().items
}

/// Waits for a ServiceL2Status of `service` on `node` (the only one when `exclusive`).
async fn wait_status_node(
    env: &Env,
    service: &str,
    node: &str,
    exclusive: bool,
) -> ServiceL2Status {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = statuses(env).await;
        let mine: Vec<_> = all
            .iter()
            .filter(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("metallb.io/service-name"))
                    .map(String::as_str)
                    == Some(service)
            })
            .collect();
        let on_node: Vec<_> = mine
            .iter()
            .filter(|s| s.status.as_ref().and_then(|s| s.node.as_deref()) == Some(node))
            .collect();
        if on_node.len() == 1 && (!exclusive || mine.len() == 1) {
            return (*on_node[0]).clone();
        }
        assert!(
            Instant::now() < deadline,
            "ServiceL2Status of {service}: {mine:?}, expected one on {node}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_owner_answers_then_fails_over_on_kill_and_on_link_down() {
    let env = setup(false, &[]).await;
    let lab = &env.lab;
    apply_ok(lab, &reference_config(""));
    service_with_status(&env, "web", &[VIP4], false, &["node1"]).await;
    service_with_status(&env, "web6", &[VIP6], false, &["node2"]).await;
    let all = ["node1", "node2", "node3"];
    let owner = expected_owner(lab, VIP4, &all, &BTreeMap::new(), None).unwrap();
    let owner6 = expected_owner(lab, VIP6, &all, &BTreeMap::new(), None).unwrap();

    // Exactly one node answers, the one select_owner names; HTTP reaches it.
    wait_arp_owner(lab, VIP4, Some(&owner), Duration::from_secs(15)).await;
    let answers = arping(lab, VIP4, 3);
    assert_eq!(answers, vec![mac_of(lab, &owner); 3]);
    assert_eq!(curl(lab, "http://10.0.0.150/"), owner);
    wait_ndp_owner(&env, VIP6, &owner6, Duration::from_secs(10)).await;
    assert_eq!(curl(lab, "http://[fd10::150]/"), owner6);

    // ServiceL2Status: one object, on the owner, owned by its speaker Pod.
    let st = wait_status_node(&env, "web", &owner, true).await;
    let labels = st.metadata.labels.clone().unwrap();
    assert_eq!(labels["metallb.io/node"], owner);
    assert_eq!(labels["metallb.io/service-namespace"], "default");
    assert!(st.metadata.name.as_deref().unwrap().starts_with("l2-"));
    let status = st.status.clone().unwrap();
    assert_eq!(status.service_name.as_deref(), Some("web"));
    assert_eq!(
        status
            .interfaces
            .iter()
            .filter_map(|i| i.name.clone())
            .collect::<Vec<_>>(),
        vec!["eth0".to_string()]
    );
    let pod = &env.speakers.by_name(&owner).unwrap().pod;
    let refs = st.metadata.owner_references.clone().unwrap();
    assert_eq!((refs[0].kind.as_str(), &refs[0].name), ("Pod", pod));

    // Metrics on the owner: announced, requests and responses counted.
    let i: usize = owner.trim_start_matches("node").parse().unwrap();
    let m = env.speakers.metrics(i).unwrap();
    assert!(
        m.contains(&format!(
            "metallb_speaker_announced{{service=\"default/web\",protocol=\"layer2\",node=\"{owner}\",ip=\"{VIP4}\"}} 1"
        )),
        "{m}"
    );
    let responses = m
        .lines()
        .find(|l| l.starts_with(&format!("metallb_layer2_responses_sent{{ip=\"{VIP4}\"}}")))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(responses >= 3, "{m}");

    // Malformed frames at the owner are dropped and counted by reason.
    let good = ironlb_l2::ArpFrame::gratuitous_reply(
        VIP4.parse().unwrap(),
        ironlb_l2::MacAddr([2, 0x1b, 0, 0, 0, 0x64]),
    )
    .to_bytes();
    let truncated = good[..30].to_vec();
    let mut bad_hw = good.clone();
    bad_hw[14..16].copy_from_slice(&[0, 6]);
    send_frames(
        lab,
        "client",
        vec![
            truncated.clone(),
            truncated.clone(),
            truncated,
            bad_hw.clone(),
            bad_hw,
        ],
    );
    let counter = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = env.speakers.metrics(i).unwrap();
        let t = counter(
            &m,
            "ironlb_layer2_frames_dropped_total{reason=\"truncated_arp\"}",
        );
        let h = counter(
            &m,
            "ironlb_layer2_frames_dropped_total{reason=\"arp_hardware\"}",
        );
        if t >= 3 && h >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drops not counted: truncated {t}, hardware {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another host claiming the address: an Event on the Service, a metric, and no fight.
    send_frames(lab, "client", vec![good]);
    wait_event(
        &env.client,
        "default",
        "web",
        "addressConflict",
        "02:1b:00:00:00:64",
    )
    .await;
    let m = env.speakers.metrics(i).unwrap();
    assert!(
        counter(
            &m,
            "ironlb_layer2_address_conflicts_total{ip=\"10.0.0.150\"}"
        ) >= 1,
        "{m}"
    );
    assert_eq!(
        arping(lab, VIP4, 2),
        vec![mac_of(lab, &owner); 2],
        "the owner still answers"
    );

    // 1. kill -9 of the owner's speaker.
    let capture = Capture::start(lab, "client", "arp");
    let survivors: Vec<&str> = all.iter().copied().filter(|n| *n != owner).collect();
    let next = expected_owner(lab, VIP4, &survivors, &BTreeMap::new(), None).unwrap();
    let probe = CurlLoop::start(lab, "http://10.0.0.150/", "kill");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let died = unix_now();
    env.speakers.kill(i).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let took = loop {
        if let Some(t) = probe.first_from(&next, died) {
            break t - died;
        }
        assert!(
            Instant::now() < deadline,
            "{next} never answered after the kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(probe);
    eprintln!("kill -9: {next} answered {took:.3} s after the death of {owner}'s speaker");
    assert!(took < 3.0, "failover took {took} s");
    let next_mac = mac_of(lab, &next);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !capture
        .text()
        .lines()
        .any(|l| is_gratuitous_arp(l, &next_mac, VIP4))
    {
        assert!(
            Instant::now() < deadline,
            "no gratuitous ARP from {next} in the client's tcpdump:\n{}",
            capture.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(curl(lab, "http://10.0.0.150/"), next);
    // The new owner deletes the dead speaker's ServiceL2Status: one object, on the new owner.
    wait_status_node(&env, "web", &next, true).await;

    // The dead speaker comes back: the address returns to it (same hash), announced again.
    env.speakers.restart(i).await.unwrap();
    wait_arp_owner(lab, VIP4, Some(&owner), Duration::from_secs(15)).await;
    wait_status_node(&env, "web", &owner, true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. The owner's LAN link goes down. Another address, owned by another node, shows that
    // the cut-off node claims nothing new (it sees every peer dead, but it is the isolated one).
    let (other_ip, other_owner) = (151..=180)
        .map(|k| format!("10.0.0.{k}"))
        .find_map(|ip| {
            let o = expected_owner(lab, &ip, &all, &BTreeMap::new(), None).unwrap();
            (o != owner).then_some((ip, o))
        })
        .unwrap();
    service_with_status(&env, "other", &[&other_ip], false, &["node2"]).await;
    wait_arp_owner(lab, &other_ip, Some(&other_owner), Duration::from_secs(15)).await;
    let link_capture = timed_capture(lab, "client", "arp");
    let netns = lab.topo.netns(&owner);
    let probe = CurlLoop::start(lab, "http://10.0.0.150/", "link");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let died = unix_now();
    ironlb_lab::proc::run("ip", &["-n", &netns, "link", "set", "eth0", "down"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let took = loop {
        if let Some(t) = probe.first_from(&next, died) {
            break t - died;
        }
        if Instant::now() > deadline {
            ironlb_lab::proc::run("ip", &["-n", &netns, "link", "set", "eth0", "up"]).unwrap();
            panic!("{next} never answered after {owner}'s link went down");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(probe);
    eprintln!("link down: {next} answered {took:.3} s after {owner}'s eth0 went down");
    // Cut off long enough that it surely sees every peer dead before the heal.
    tokio::time::sleep(Duration::from_secs(1)).await;
    ironlb_lab::proc::run("ip", &["-n", &netns, "link", "set", "eth0", "up"]).unwrap();
    assert!(took < 3.0, "failover took {took} s");
    // Back up: it rejoins and owns the address again, alone.
    wait_arp_owner(lab, VIP4, Some(&owner), Duration::from_secs(20)).await;
    assert_eq!(curl(lab, "http://10.0.0.150/"), owner);
    // Its status object (deleted by the others while it was cut off) is written again.
    wait_status_node(&env, "web", &owner, true).await;
    // It never claimed the other node's address: no gratuitous ARP for it from its MAC (the
    // burst of a wrongly gained address would run ~4 s past the heal), and only the other
    // node answers.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let owner_mac = mac_of(lab, &owner);
    let stolen: Vec<String> = link_capture
        .text()
        .lines()
        .filter(|l| is_gratuitous_arp(l, &owner_mac, &other_ip))
        .map(str::to_string)
        .collect();
    assert!(
        stolen.is_empty(),
        "{owner} announced {other_ip} (owned by {other_owner}) after its link came back:\n{}\n{}",
        stolen.join("\n"),
        speaker_logs(&env)
    );
    assert_eq!(
        arping(lab, &other_ip, 3),
        vec![mac_of(lab, &other_owner); 3]
    );
    // Nor did it decide to, at any moment (while cut off, or after the heal).
    let owner_log = &env.speakers.by_name(&owner).unwrap().daemon.log_file;
    let claimed = first_log_line(owner_log, 0.0, &["announcing", &format!("ips=[{other_ip}")]);
    assert!(
        claimed.is_none(),
        "{owner} decided to announce {other_ip} (owned by {other_owner})\n{}",
        speaker_logs(&env)
    );
    drop(link_capture);

    // 3. A graceful stop (SIGTERM): the speaker leaves the membership, peers drop it at once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let probe = CurlLoop::start(lab, "http://10.0.0.150/", "term");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = unix_now();
    env.speakers.stop(i).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let took = loop {
        if let Some(t) = probe.first_from(&next, stopped) {
            break t - stopped;
        }
        assert!(
            Instant::now() < deadline,
            "{next} never answered after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("SIGTERM: {next} answered {took:.3} s after {owner}'s speaker was stopped");
    assert!(took < 1.5, "graceful handover took {took} s");
}
