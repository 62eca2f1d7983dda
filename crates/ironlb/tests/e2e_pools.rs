//! End to end in the lab: which pool a Service gets (namespaces, labels, priority, autoAssign),
//! dual-stack policies, pool shrink and removal (ClearAssignment), an invalid configuration
//! (last good one kept, ConfigurationState Invalid), and `--lb-class`.
#![allow(clippy::unwrap_used)]

mod support;

use ironlb_api::v1beta1::ConfigurationState;
use ironlb_lab::testing::{apply_ok, create_service, events, eventually, kubectl, wait_event};
use kube::Api;
use serde_json::json;
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn namespace_label_priority_and_auto_assign() {
    let env = setup(false, &[]).await;
    let c = &env.client;
    namespace(c, "team-a", json!({"team": "a"})).await;
    namespace(c, "team-b", json!({"team": "b"})).await;
    apply_ok(
        &env.lab,
        &pool_yaml("general", &["10.0.0.150-10.0.0.154"], ""),
    );
    apply_ok(
        &env.lab,
        &pool_yaml(
            "by-name",
            &["10.0.0.160/30"],
            "  serviceAllocation:\n    namespaces: [team-a]\n",
        ),
    );
    apply_ok(
        &env.lab,
        &pool_yaml(
            "by-ns-label",
            &["10.0.0.164/30"],
            "  serviceAllocation:\n    namespaceSelectors:\n    - matchLabels: {team: b}\n",
        ),
    );
    apply_ok(
        &env.lab,
        &pool_yaml(
            "by-svc-label",
            &["10.0.0.168/30"],
            "  serviceAllocation:\n    priority: 10\n    serviceSelectors:\n    - matchLabels: {tier: gold}\n",
        ),
    );
    apply_ok(
        &env.lab,
        &pool_yaml(
            "gold-first",
            &["10.0.0.172/30"],
            "  serviceAllocation:\n    priority: 5\n    serviceSelectors:\n    - matchLabels: {tier: gold}\n",
        ),
    );
    apply_ok(
        &env.lab,
        &pool_yaml("manual", &["10.0.0.176/30"], "  autoAssign: false\n"),
    );

    create_service(c, "team-a", "s", 80, json!({})).await;
    wait_exact(c, "team-a", "s", &["10.0.0.160"]).await;
    create_service(c, "team-b", "s", 80, json!({})).await;
    wait_exact(c, "team-b", "s", &["10.0.0.164"]).await;
    // Two pools select the label: the lower priority number wins.
    create_service(
        c,
        "default",
        "gold",
        80,
        json!({"metadata": {"labels": {"tier": "gold"}}}),
    )
    .await;
    wait_exact(c, "default", "gold", &["10.0.0.172"]).await;
    // Unrestricted Services use only unrestricted autoAssign pools.
    create_service(c, "default", "plain", 80, json!({})).await;
    wait_exact(c, "default", "plain", &["10.0.0.150"]).await;
    // A restricted pool refuses a Service it does not select, even when asked for.
    create_service(
        c,
        "default",
        "intruder",
        80,
        json!({"metadata": {"annotations": {"metallb.io/address-pool": "by-name"}}}),
    )
    .await;
    let note = wait_event(c, "default", "intruder", "AllocationFailed", "").await;
    assert!(note.contains("by-name"), "{note}");
    // autoAssign off: only by explicit request.
    for i in 0..4 {
        create_service(c, "default", &format!("fill{i}"), 80, json!({})).await;
    }
    create_service(c, "default", "overflow", 80, json!({})).await;
    let note = wait_event(c, "default", "overflow", "AllocationFailed", "").await;
    assert!(
        !note.contains("manual"),
        "autoAssign=false pool tried: {note}"
    );
    create_service(
        c,
        "default",
        "asks-manual",
        80,
        json!({"metadata": {"annotations": {"metallb.io/address-pool": "manual"}}}),
    )
    .await;
    wait_exact(c, "default", "asks-manual", &["10.0.0.176"]).await;
    create_service(
        c,
        "default",
        "asks-manual-ip",
        80,
        json!({"metadata": {"annotations": {"metallb.io/loadBalancerIPs": "10.0.0.178"}}}),
    )
    .await;
    wait_exact(c, "default", "asks-manual-ip", &["10.0.0.178"]).await;
    // Namespace labels change: team-b's next Service follows the new label.
    namespace(c, "team-c", json!({})).await;
    create_service(
        c,
        "team-c",
        "s",
        80,
        json!({"metadata": {"annotations": {"metallb.io/address-pool": "by-ns-label"}}}),
    )
    .await;
    wait_event(c, "team-c", "s", "AllocationFailed", "").await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    nss.patch(
        "team-c",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
    )
    .await
    .unwrap();
    wait_exact(c, "team-c", "s", &["10.0.0.165"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dual_stack_shrink_removal_and_invalid_config() {
    let env = setup(false, &[]).await;
    let c = &env.client;
    apply_ok(
        &env.lab,
        &pool_yaml(
            "dual",
            &["10.0.0.150-10.0.0.152", "fd10::150-fd10::152"],
            "",
        ),
    );

    // The lab's cluster is dual-stack: PreferDualStack gets one address of each family from
    // the dual pool; a requested IPv6 address does not fit a SingleStack IPv4 Service.
    create_service(
        c,
        "default",
        "prefer",
        80,
        json!({"spec": {"ipFamilyPolicy": "PreferDualStack"}}),
    )
    .await;
    wait_exact(c, "default", "prefer", &["10.0.0.150", "fd10::150"]).await;
    create_service(
        c,
        "default",
        "v6-asked",
        80,
        json!({"metadata": {"annotations": {"metallb.io/loadBalancerIPs": "fd10::151"}}}),
    )
    .await;
    let note = wait_event(c, "default", "v6-asked", "AllocationFailed", "").await;
    assert!(
        note.contains("ipFamilyPolicy") || note.contains("famil"),
        "{note}"
    );
    let metrics = env.ctl.metrics().await.unwrap();
    assert!(
        metrics.contains("metallb_allocator_ipv6_addresses_total{pool=\"dual\"} 3"),
        "{metrics}"
    );

    // Shrink: .150 leaves the pool -> ClearAssignment, then the next free address.
    create_service(c, "default", "second", 80, json!({})).await;
    wait_exact(c, "default", "second", &["10.0.0.151"]).await;
    apply_ok(
        &env.lab,
        &pool_yaml(
            "dual",
            &["10.0.0.151-10.0.0.153", "fd10::150-fd10::152"],
            "",
        ),
    );
    let note = wait_event(c, "default", "prefer", "ClearAssignment", "").await;
    assert!(note.contains("10.0.0.150"), "{note}");
    wait_exact(c, "default", "prefer", &["10.0.0.152", "fd10::150"]).await;
    wait_exact(c, "default", "second", &["10.0.0.151"]).await;

    // Invalid configuration: overlapping pools. The last good one stays in use.
    apply_ok(&env.lab, &pool_yaml("overlap", &["10.0.0.153/32"], ""));
    let states: Api<ConfigurationState> = Api::namespaced(c.clone(), "metallb-system");
    let summary = eventually(
        "ConfigurationState Invalid",
        Duration::from_secs(10),
        || async {
            let st = serde_json::to_value(states.get("controller").await.ok()?.status).ok()?;
            (st["result"] == "Invalid")
                .then(|| st["errorSummary"].as_str().unwrap_or("").to_string())
        },
    )
    .await;
    assert!(summary.contains("overlap"), "{summary}");
    let metrics = env.ctl.metrics().await.unwrap();
    assert!(
        metrics.contains("metallb_k8s_client_config_stale_bool 1"),
        "{metrics}"
    );
    create_service(c, "default", "during-invalid", 80, json!({})).await;
    wait_exact(c, "default", "during-invalid", &["10.0.0.153"]).await;
    kubectl(
        &env.lab,
        &["-n", "metallb-system", "delete", "ipaddresspool", "overlap"],
    );
    eventually(
        "ConfigurationState Valid again",
        Duration::from_secs(10),
        || async {
            let st = serde_json::to_value(states.get("controller").await.ok()?.status).ok()?;
            (st["result"] == "Valid").then_some(())
        },
    )
    .await;

    // Removal: every Service of the pool is cleared and stays pending.
    kubectl(
        &env.lab,
        &["-n", "metallb-system", "delete", "ipaddresspool", "dual"],
    );
    for name in ["prefer", "second", "during-invalid"] {
        wait_event(c, "default", name, "ClearAssignment", "").await;
        wait_exact(c, "default", name, &[]).await;
        let svc = get_service(c, "default", name).await;
        assert_eq!(pool_of(&svc), None);
    }
    // A new pool: pending Services get addresses again.
    apply_ok(
        &env.lab,
        &pool_yaml("fresh", &["10.0.0.170-10.0.0.179"], ""),
    );
    for name in ["prefer", "second", "during-invalid"] {
        wait_ips(c, "default", name, 1).await;
    }

    // RequireDualStack needs one pool with both families: refused while only the IPv4 pool
    // exists, served from the first dual pool that appears.
    create_service(
        c,
        "default",
        "required",
        80,
        json!({"spec": {"ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}}),
    )
    .await;
    wait_event(c, "default", "required", "AllocationFailed", "").await;
    wait_exact(c, "default", "required", &[]).await;
    apply_ok(
        &env.lab,
        &pool_yaml(
            "dual2",
            &["10.0.0.190-10.0.0.191", "fd10::190-fd10::191"],
            "",
        ),
    );
    wait_exact(c, "default", "required", &["10.0.0.190", "fd10::190"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lb_class_filters_services() {
    let env = setup(false, &["--lb-class", "ironlb.io/lb"]).await;
    let c = &env.client;
    apply_ok(&env.lab, &pool_yaml("p", &["10.0.0.150-10.0.0.159"], ""));
    create_service(
        c,
        "default",
        "ours",
        80,
        json!({"spec": {"loadBalancerClass": "ironlb.io/lb"}}),
    )
    .await;
    create_service(
        c,
        "default",
        "other",
        80,
        json!({"spec": {"loadBalancerClass": "example.com/other"}}),
    )
    .await;
    create_service(c, "default", "classless", 80, json!({})).await;
    wait_exact(c, "default", "ours", &["10.0.0.150"]).await;
    stays_pending(c, "default", "other", Duration::from_secs(1)).await;
    stays_pending(c, "default", "classless", Duration::from_millis(200)).await;
    assert!(events(c, "default", "other").await.is_empty());

    // Without --lb-class: only the classless one.
    env.ctl.stop(false);
    let mut ctl = env.ctl.clone();
    ctl.options.extra_args.clear();
    ctl.start().unwrap();
    ctl.wait_ready(Duration::from_secs(20)).await.unwrap();
    // (A controller without a class does not look at class Services at all, so the address
    // the other controller gave is free in its view: classes should use separate pools.)
    wait_ips(c, "default", "classless", 1).await;
    stays_pending(c, "default", "other", Duration::from_millis(500)).await;
    // The class Service keeps what it has in status (another implementation's business now),
    // but no longer carries our pool annotation.
    eventually(
        "annotation of ours removed",
        Duration::from_secs(10),
        || async {
            pool_of(&get_service(c, "default", "ours").await)
                .is_none()
                .then_some(())
        },
    )
    .await;
}
