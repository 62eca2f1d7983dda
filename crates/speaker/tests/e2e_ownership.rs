//! The reference scenario end to end (controller + speakers as their ServiceAccounts): the
//! controller gives 10.0.0.150, exactly the node select_owner names answers ARP, and ownership
//! follows the exclude label, node selectors, preferred nodes, ETP Local endpoints moving and
//! disappearing, and interface selection. Needs root and `cargo build -p ironlb` first.

#![allow(clippy::unwrap_used)]

mod support;

use ironlb_api::v1beta1::{ConfigurationState, ServiceL2Status};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

const EXCLUDE: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

async fn lb_service(env: &Env, name: &str, local: bool) -> String {
    let api: Api<Service> = Api::namespaced(env.client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": name},
                 "externalTrafficPolicy": if local { "Local" } else { "Cluster" }},
    }))
    .unwrap();
    api.create(&PostParams::default(), &svc).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = api.get(name).await.unwrap();
        if let Some(ip) = s
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .and_then(|i| i.into_iter().next())
            .and_then(|i| i.ip)
        {
            return ip;
        }
        assert!(Instant::now() < deadline, "{name} got no address");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn pod(env: &Env, name: &str, app: &str, node: &str) {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "lab/none"}]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &p).await.unwrap();
}

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

async fn wait_event(env: &Env, service: &str, reason: &str, contains: &str) -> String {
    let api: Api<Event> = Api::namespaced(env.client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notes: Vec<String> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(service))
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note)
            .collect();
        if let Some(n) = notes.iter().find(|n| n.contains(contains)) {
            return n.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {reason} event on {service} containing {contains:?}: {notes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many `reason` Events Service `default/service` has with exactly `note`.
async fn count_events(env: &Env, service: &str, reason: &str, note: &str) -> usize {
    let api: Api<Event> = Api::namespaced(env.client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(service))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.note.as_deref() == Some(note))
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = status_nodes(env, service).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ServiceL2Status of {service} on {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread")]
async fn ownership_follows_labels_selectors_preferences_endpoints_and_interfaces() {
    let env = setup(true, &[]).await;
    let lab = &env.lab;
    let all = ["node1", "node2", "node3"];
    apply_ok(lab, &reference_config(""));
    pod(&env, "web-1", "web", "node1").await;
    let ip = lb_service(&env, "web", false).await;
    assert_eq!(ip, "10.0.0.150", "the reference scenario's EXTERNAL-IP");
    let owner = expected_owner(lab, &ip, &all, &BTreeMap::new(), None).unwrap();
    wait_arp_owner(lab, &ip, Some(&owner), LIMIT).await;
    assert_eq!(arping(lab, &ip, 3), vec![mac_of(lab, &owner); 3]);
    assert_eq!(curl(lab, "http://10.0.0.150/"), owner);
    wait_event(
        &env,
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
    wait_event(&env, "web", "announceFailed", "no usable interface").await;
    apply_ok(lab, &reference_config("  interfaces: [eth0]\n"));
    wait_arp_owner(lab, &ip, Some(&owner), LIMIT).await;
    assert_eq!(curl(lab, "http://10.0.0.150/"), owner);
    // One nodeAssigned from the owner per time it started announcing (at first, when the
    // exclude label went, now that it has an interface again); none for the republishes in
    // between (labels, advertisements that did not move the Service to it).
    let assigned = format!("announcing from node \"{owner}\" with protocol \"layer2\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_events(&env, "web", "nodeAssigned", &assigned).await < 3 {
        assert!(
            Instant::now() < deadline,
            "fewer than 3 nodeAssigned from {owner}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // ETP Local: only nodes with a serving endpoint; the owner follows the endpoint.
    pod(&env, "local-a", "local", "node2").await;
    let lip = lb_service(&env, "local", true).await;
    wait_arp_owner(lab, &lip, Some("node2"), LIMIT).await;
    wait_status_nodes(&env, "local", &["node2"]).await;
    pod(&env, "local-b", "local", "node3").await;
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
