//! The reference scenario end to end (controller + speakers as their ServiceAccounts): the
//! controller gives 10.0.0.150, exactly the node select_owner names answers ARP, and ownership
//! follows the exclude label, node selectors, preferred nodes, ETP Local endpoints moving and
//! disappearing, and interface selection. Needs root and `cargo build -p ironlb` first.

#![allow(clippy::unwrap_used)]

mod support;

use ironlb_api::v1beta1::{ConfigurationState, ServiceL2Status};
use ironlb_lab::testing::{apply_ok, arping, events, eventually, eventually_eq, wait_event};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::bgp::{lb_service, pod};
use support::*;

const EXCLUDE: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

async fn delete_pod(env: &Env, name: &str) {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

async fn label_node(env: &Env, node: &str, key: &str, value: Option<&str>) {
    let api: Api<Node> = Api::all(env.client.clone());
    api.patch(
        node,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {key: value}}})),
    )
    .await
    .unwrap();
}

/// How many `reason` Events Service `default/service` has with exactly `note`.
async fn count_events(env: &Env, service: &str, reason: &str, note: &str) -> usize {
    events(&env.client, "default", service)
        .await
        .iter()
        .filter(|e| e.reason == reason && e.note == note)
        .count()
}

async fn status_nodes(env: &Env, service: &str) -> Vec<String> {
    let api: Api<ServiceL2Status> = Api::namespaced(env.client.clone(), "metallb-system");
    api.list(&ListParams::default().labels(&format!("metallb.io/service-name={service}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.status?.node)
        .collect()
}

async fn wait_status_nodes(env: &Env, service: &str, want: &[&str]) {
    eventually_eq(
        &format!("ServiceL2Status of {service} on"),
        Duration::from_secs(10),
        want,
        async || status_nodes(env, service).await,
    )
    .await
}

const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread")]
async fn ownership_follows_labels_selectors_preferences_endpoints_and_interfaces() {
    let env = setup(true, &[]).await;
    let lab = &env.lab;
    let all = ["node1", "node2", "node3"];
    apply_ok(lab, &reference_config(""));
    pod(&env, "web-1", "web", "node1", false).await;
    let ip = lb_service(&env, "web", false, false).await;
    assert_eq!(ip, "10.0.0.150", "the reference scenario's EXTERNAL-IP");
    let owner = expected_owner(lab, &ip, &all, &BTreeMap::new(), None).unwrap();
    wait_arp_owner(lab, &ip, Some(&owner), LIMIT).await;
    assert_eq!(arping(lab, &ip, 3), vec![mac_of(lab, &owner); 3]);
    assert_eq!(curl(lab, "http://10.0.0.150/"), owner);
    wait_event(
        &env.client,
        "default",
        "web",
        "nodeAssigned",
        &format!("announcing from node \"{owner}\" with protocol \"layer2\""),
    )
    .await;
    wait_status_nodes(&env, "web", &[&owner]).await;
    let states: Api<ConfigurationState> = Api::namespaced(env.client.clone(), "metallb-system");
    for n in all {
        let st = states.get(&format!("speaker-{n}")).await.unwrap();
        assert_eq!(
            serde_json::to_value(st.status.unwrap().result).unwrap(),
            json!("Valid")
        );
    }

    // Exclude label on the owner: the next node by select_owner over the others takes over.
    label_node(&env, &owner, EXCLUDE, Some("")).await;
    let others: Vec<&str> = all.iter().copied().filter(|n| *n != owner).collect();
    let second = expected_owner(lab, &ip, &others, &BTreeMap::new(), None).unwrap();
    wait_arp_owner(lab, &ip, Some(&second), LIMIT).await;
    wait_status_nodes(&env, "web", &[&second]).await;
    label_node(&env, &owner, EXCLUDE, None).await;
    wait_arp_owner(lab, &ip, Some(&owner), LIMIT).await;

    // Node selectors: only the last non-owner node may announce.
    let chosen = others[others.len() - 1];
    apply_ok(
        lab,
        &reference_config(&format!(
            "  nodeSelectors:\n  - matchLabels: {{kubernetes.io/hostname: {chosen}}}\n"
        )),
    );
    wait_arp_owner(lab, &ip, Some(chosen), LIMIT).await;
    wait_status_nodes(&env, "web", &[chosen]).await;

    // Preferred nodes: weight on the first non-owner node wins over the hash.
    let preferred = others[0];
    apply_ok(
        lab,
        &reference_config(&format!(
            "  preferredNodeSelectors:\n  - weight: 50\n    preference:\n      matchLabels: {{kubernetes.io/hostname: {preferred}}}\n"
        )),
    );
    wait_arp_owner(lab, &ip, Some(preferred), LIMIT).await;

    // Interface selection: an interface no node has -> nobody answers, announceFailed;
    // eth0 -> the owner answers again.
    apply_ok(lab, &reference_config("  interfaces: [eth9]\n"));
    wait_arp_owner(lab, &ip, None, LIMIT).await;
    wait_event(
        &env.client,
        "default",
        "web",
        "announceFailed",
        "no usable interface",
    )
    .await;
    apply_ok(lab, &reference_config("  interfaces: [eth0]\n"));
    wait_arp_owner(lab, &ip, Some(&owner), LIMIT).await;
    assert_eq!(curl(lab, "http://10.0.0.150/"), owner);
    // One nodeAssigned from the owner per time it started announcing (at first, when the
    // exclude label went, now that it has an interface again); none for the republishes in
    // between (labels, advertisements that did not move the Service to it).
    let assigned = format!("announcing from node \"{owner}\" with protocol \"layer2\"");
    eventually(
        &format!("3 nodeAssigned from {owner}"),
        Duration::from_secs(10),
        async || count_events(&env, "web", "nodeAssigned", &assigned).await >= 3,
    )
    .await;

    // ETP Local: only nodes with a serving endpoint; the owner follows the endpoint.
    pod(&env, "local-a", "local", "node2", false).await;
    let lip = lb_service(&env, "local", true, false).await;
    wait_arp_owner(lab, &lip, Some("node2"), LIMIT).await;
    wait_status_nodes(&env, "local", &["node2"]).await;
    pod(&env, "local-b", "local", "node3", false).await;
    let both =
        expected_owner(lab, &lip, &all, &BTreeMap::new(), Some(&["node2", "node3"])).unwrap();
    wait_arp_owner(lab, &lip, Some(&both), LIMIT).await;
    delete_pod(
        &env,
        if both == "node2" {
            "local-a"
        } else {
            "local-b"
        },
    )
    .await;
    let remaining = if both == "node2" { "node3" } else { "node2" };
    wait_arp_owner(lab, &lip, Some(remaining), LIMIT).await;
    wait_status_nodes(&env, "local", &[remaining]).await;
    // Endpoints disappear: nobody answers, and the ServiceL2Status goes away.
    delete_pod(
        &env,
        if both == "node2" {
            "local-b"
        } else {
            "local-a"
        },
    )
    .await;
    wait_arp_owner(lab, &lip, None, LIMIT).await;
    wait_status_nodes(&env, "local", &[]).await;
    // Same for the Cluster-policy Service when its only pod goes.
    delete_pod(&env, "web-1").await;
    wait_arp_owner(lab, &ip, None, LIMIT).await;
    wait_status_nodes(&env, "web", &[]).await;
    assert_eq!(
        count_events(&env, "web", "nodeAssigned", &assigned).await,
        3,
        "nodeAssigned from {owner}, by the end"
    );
}
