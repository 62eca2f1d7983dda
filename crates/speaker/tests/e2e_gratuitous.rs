//! Periodic gratuitous announcements (`--gratuitous-arp-interval`, MetalLB v0.16.2) seen from
//! the client's LAN: with the flag the owner of a dual-stack Service sends its gratuitous ARP
//! and unsolicited NA again every second long after the takeover burst; without it, nothing
//! once the burst is over. Along the way, republishes (an unrelated IPAddressPool, a Node label)
//! do not repeat the owner's `nodeAssigned` Event. Needs root and `cargo build -p ironlb` first.

#![allow(clippy::unwrap_used)]

mod support;

use ironlb_lab::testing::{apply_ok, events, wait_event};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::*;

const VIP4: &str = "10.0.0.150";
const VIP6: &str = "fd10::150";
/// The takeover burst at the speaker's defaults: 5 rounds 1.1 s apart, so over after 4.4 s.
const BURST_OVER: Duration = Duration::from_secs(6);
const CAPTURE: Duration = Duration::from_millis(4500);

/// Whether a `tcpdump -e` line shows an unsolicited NA for `ip` from `mac` to all nodes.
fn is_unsolicited_na(line: &str, mac: &str, ip: &str) -> bool {
    line.contains(&format!("{mac} > 33:33:00:00:00:01"))
        && line.contains(&format!("{ip} > ff02::1"))
        && line.contains(&format!("neighbor advertisement, tgt is {ip}"))
}

/// The start times of the announcement rounds in a `tcpdump -tt` capture: the matching frames,
/// those less than 300 ms after the previous one counted with it (a round is the request and
/// the reply).
fn rounds(text: &str, matches: impl Fn(&str) -> bool) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for t in text
        .lines()
        .filter(|l| matches(l))
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
    {
        if t - last >= 0.3 {
            out.push(t);
        }
        last = t;
    }
    out
}

fn gaps(rounds: &[f64]) -> Vec<f64> {
    rounds.windows(2).map(|w| w[1] - w[0]).collect()
}

/// `metallb_layer2_gratuitous_sent{ip}` of node `i`'s speaker.
fn gratuitous_sent(env: &Env, i: usize, ip: &str) -> u64 {
    let m = env.speakers.metrics(i).unwrap();
    m.lines()
        .find(|l| l.starts_with(&format!("metallb_layer2_gratuitous_sent{{ip=\"{ip}\"}}")))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The notes of the `nodeAssigned` Events of Service `default/service`.
async fn node_assigned(env: &Env, service: &str) -> Vec<String> {
    events(&env.client, "default", service)
        .await
        .into_iter()
        .filter(|e| e.reason == "nodeAssigned")
        .map(|e| e.note)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_gratuitous_announcements_follow_the_flag() {
    let mut env = setup(false, &["--gratuitous-arp-interval", "1"]).await;
    apply_ok(&env.lab, &reference_config(""));
    service_with_status(&env, "web", &[VIP4, VIP6], false, &["node1"]).await;
    let all = ["node1", "node2", "node3"];
    let owner = expected_owner(&env.lab, VIP4, &all, &BTreeMap::new(), None).unwrap();
    let i: usize = owner.trim_start_matches("node").parse().unwrap();
    let mac = mac_of(&env.lab, &owner);
    wait_arp_owner(&env.lab, VIP4, Some(&owner), Duration::from_secs(15)).await;
    wait_ndp_owner(&env, VIP6, &owner, Duration::from_secs(10)).await;
    let assigned_note = format!("announcing from node \"{owner}\" with protocol \"layer2\"");
    wait_event(
        &env.client,
        "default",
        "web",
        "nodeAssigned",
        &assigned_note,
    )
    .await;

    // With the flag, once the takeover burst is over: a round every second.
    tokio::time::sleep(BURST_OVER).await;
    let capture = timed_capture(&env.lab, "client", "arp or icmp6");
    let sent_before = gratuitous_sent(&env, i, VIP4);
    // Republishes while capturing: an unrelated pool (configuration) and a Node label.
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: unrelated, namespace: metallb-system}
spec:
  addresses: [\"10.0.0.200-10.0.0.210\"]
",
    );
    let nodes: Api<Node> = Api::all(env.client.clone());
    for n in all {
        nodes
            .patch(
                n,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"labels": {"tests.ironlb/resync": "1"}}})),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(CAPTURE).await;
    let sent_after = gratuitous_sent(&env, i, VIP4);
    let text = capture.text();
    drop(capture);
    let arp = rounds(&text, |l| is_gratuitous_arp(l, &mac, VIP4));
    let na = rounds(&text, |l| is_unsolicited_na(l, &mac, VIP6));
    println!("gratuitous ARP rounds at {arp:?}, gaps {:?} s", gaps(&arp));
    println!("unsolicited NA rounds at {na:?}, gaps {:?} s", gaps(&na));
    for (what, r) in [("gratuitous ARP", &arp), ("unsolicited NA", &na)] {
        assert!(
            r.len() >= 3,
            "{what}: {} rounds from {owner} in {CAPTURE:?}:\n{text}\n{}",
            r.len(),
            speaker_logs(&env)
        );
        assert!(
            gaps(r).iter().all(|g| (0.7..=1.5).contains(g)),
            "{what}: gaps {:?} s, expected about 1 s:\n{text}",
            gaps(r)
        );
    }
    // Counted in metallb_layer2_gratuitous_sent: a request and a reply per round.
    assert!(
        sent_after >= sent_before + 2 * (arp.len() as u64 - 1),
        "metallb_layer2_gratuitous_sent went from {sent_before} to {sent_after} over {} rounds",
        arp.len()
    );
    // The republishes did not repeat the Event: still exactly one from the owner.
    let notes = node_assigned(&env, "web").await;
    assert_eq!(
        notes.iter().filter(|n| **n == assigned_note).count(),
        1,
        "nodeAssigned Events of web: {notes:?}"
    );

    // Without the flag (the owner's speaker started again with the defaults): the takeover
    // burst, then silence.
    env.speakers.options.extra_args.clear();
    env.speakers.stop(i).unwrap();
    env.speakers.start(i).unwrap();
    env.speakers
        .wait_healthy(i, Duration::from_secs(20))
        .await
        .unwrap();
    wait_arp_owner(&env.lab, VIP4, Some(&owner), Duration::from_secs(15)).await;
    wait_ndp_owner(&env, VIP6, &owner, Duration::from_secs(10)).await;
    // It answers, so its burst has begun.
    tokio::time::sleep(BURST_OVER).await;
    let capture = timed_capture(&env.lab, "client", "arp or icmp6");
    let sent_before = gratuitous_sent(&env, i, VIP4);
    tokio::time::sleep(CAPTURE).await;
    let sent_after = gratuitous_sent(&env, i, VIP4);
    let text = capture.text();
    drop(capture);
    let garp_any = |l: &str| {
        l.contains("ff:ff:ff:ff:ff:ff")
            && (l.contains(&format!("who-has {VIP4} tell {VIP4}"))
                || l.contains(&format!("Reply {VIP4} is-at")))
    };
    let na_any = |l: &str| l.contains(&format!("neighbor advertisement, tgt is {VIP6}"));
    assert!(
        rounds(&text, garp_any).is_empty() && rounds(&text, na_any).is_empty(),
        "announcements without --gratuitous-arp-interval after the burst:\n{text}"
    );
    assert!(
        sent_before > 0 && sent_after == sent_before,
        "metallb_layer2_gratuitous_sent of the restarted owner: {sent_before} then {sent_after}"
    );
}
