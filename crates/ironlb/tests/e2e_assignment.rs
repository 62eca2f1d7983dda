//! End to end in the lab: assignment and release, stability across a controller crash,
//! requested addresses and pools, sharing, events, ConfigurationState, pool status, metrics.
#![allow(clippy::unwrap_used)]

mod support;

use ironlb_api::v1beta1::{ConfigurationState, IpAddressPool};
use ironlb_lab::testing::{apply_ok, create_service, events, eventually, wait_event};
use kube::Api;
use kube::ResourceExt;
use serde_json::json;
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn assigns_releases_and_survives_a_controller_crash() {
    let env = setup(true, &[]).await;
    let c = &env.client;
    apply_ok(
        &env.lab,
        &pool_yaml("linuxnet", &["10.0.0.150-10.0.0.180"], ""),
    );

    // Assignment: the first address, the pool annotation, an IPAllocated event.
    create_service(c, "default", "a", 80, json!({})).await;
    wait_exact(c, "default", "a", &["10.0.0.150"]).await;
    let a = get_service(c, "default", "a").await;
    assert_eq!(pool_of(&a).as_deref(), Some("linuxnet"));
    let note = wait_event(c, "default", "a", "IPAllocated", "").await;
    assert!(note.contains("10.0.0.150"), "{note}");

    // ConfigurationState and pool status.
    let states: Api<ConfigurationState> = Api::namespaced(c.clone(), "metallb-system");
    eventually(
        "ConfigurationState controller Valid",
        Duration::from_secs(10),
        || async {
            let st = states.get("controller").await.ok()?;
            (serde_json::to_value(&st.status).ok()?["result"] == "Valid").then_some(())
        },
    )
    .await;
    let pools: Api<IpAddressPool> = Api::namespaced(c.clone(), "metallb-system");
    eventually(
        "pool status 1 assigned / 30 available",
        Duration::from_secs(10),
        || async {
            let p = pools.get("linuxnet").await.ok()?;
            let s = p.status?;
            (s.assigned_ipv4 == 1 && s.available_ipv4 == 30).then_some(())
        },
    )
    .await;
    let metrics = env.ctl.metrics().await.unwrap();
    assert!(
        metrics.contains("metallb_allocator_addresses_in_use_total{pool=\"linuxnet\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("metallb_allocator_ipv4_addresses_total{pool=\"linuxnet\"} 31"),
        "{metrics}"
    );
    assert!(
        metrics.contains("metallb_k8s_client_config_loaded_bool 1"),
        "{metrics}"
    );

    // Release on delete: the next Service gets the same first address.
    delete_service(c, "default", "a").await;
    create_service(c, "default", "b", 80, json!({})).await;
    wait_exact(c, "default", "b", &["10.0.0.150"]).await;

    // Release when the Service stops being a LoadBalancer: the annotation goes too.
    patch_service(c, "default", "b", json!({"spec": {"type": "ClusterIP"}})).await;
    eventually("annotation removed", Duration::from_secs(10), || async {
        let s = get_service(c, "default", "b").await;
        (pool_of(&s).is_none() && ips_of(&s).is_empty()).then_some(())
    })
    .await;
    create_service(c, "default", "c", 80, json!({})).await;
    wait_exact(c, "default", "c", &["10.0.0.150"]).await;

    // Stable across a crash: d and e get addresses, the controller is killed; while it is down
    // c is deleted and f is created; after the restart d and e keep theirs (not even rewritten)
    // and f gets a free one (not c's old one before d/e were restored... any free one, but unique).
    create_service(c, "default", "d", 80, json!({})).await;
    create_service(c, "default", "e", 80, json!({})).await;
    let d_ip = wait_ips(c, "default", "d", 1).await;
    let e_ip = wait_ips(c, "default", "e", 1).await;
    let d_rv = get_service(c, "default", "d").await.resource_version();
    let e_rv = get_service(c, "default", "e").await.resource_version();
    env.ctl.stop(true);
    delete_service(c, "default", "c").await;
    create_service(c, "default", "f", 80, json!({})).await;
    stays_pending(c, "default", "f", Duration::from_millis(500)).await;
    env.ctl.start().unwrap();
    env.ctl.wait_ready(Duration::from_secs(20)).await.unwrap();
    let f_ip = wait_ips(c, "default", "f", 1).await;
    assert_eq!(wait_ips(c, "default", "d", 1).await, d_ip);
    assert_eq!(wait_ips(c, "default", "e", 1).await, e_ip);
    assert_eq!(
        get_service(c, "default", "d").await.resource_version(),
        d_rv,
        "d was rewritten"
    );
    assert_eq!(
        get_service(c, "default", "e").await.resource_version(),
        e_rv,
        "e was rewritten"
    );
    assert_ne!(f_ip, d_ip);
    assert_ne!(f_ip, e_ip);
    assert_eq!(
        f_ip,
        vec!["10.0.0.150".to_string()],
        "c's freed address is the first free one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requested_addresses_pools_and_sharing() {
    let env = setup(true, &[]).await;
    let c = &env.client;
    apply_ok(&env.lab, &pool_yaml("one", &["10.0.0.150-10.0.0.159"], ""));
    apply_ok(&env.lab, &pool_yaml("two", &["10.0.0.160/29"], ""));

    // By annotation, by spec.loadBalancerIP, by pool.
    create_service(
        c,
        "default",
        "by-annotation",
        80,
        json!({"metadata": {"annotations": {"metallb.io/loadBalancerIPs": "10.0.0.155"}}}),
    )
    .await;
    wait_exact(c, "default", "by-annotation", &["10.0.0.155"]).await;
    create_service(
        c,
        "default",
        "by-spec",
        80,
        json!({"spec": {"loadBalancerIP": "10.0.0.161"}}),
    )
    .await;
    wait_exact(c, "default", "by-spec", &["10.0.0.161"]).await;
    assert_eq!(
        pool_of(&get_service(c, "default", "by-spec").await).as_deref(),
        Some("two")
    );
    create_service(
        c,
        "default",
        "by-pool",
        80,
        json!({"metadata": {"annotations": {"metallb.io/address-pool": "two"}}}),
    )
    .await;
    wait_exact(c, "default", "by-pool", &["10.0.0.160"]).await;

    // A taken address without sharing: refused with an AllocationFailed event.
    create_service(
        c,
        "default",
        "taken",
        80,
        json!({"metadata": {"annotations": {"metallb.io/loadBalancerIPs": "10.0.0.155"}}}),
    )
    .await;
    let note = wait_event(c, "default", "taken", "AllocationFailed", "").await;
    assert!(note.contains("10.0.0.155"), "{note}");
    stays_pending(c, "default", "taken", Duration::from_millis(300)).await;
    // An address in no pool.
    create_service(
        c,
        "default",
        "nowhere",
        80,
        json!({"metadata": {"annotations": {"metallb.io/loadBalancerIPs": "10.0.0.99"}}}),
    )
    .await;
    let note = wait_event(c, "default", "nowhere", "AllocationFailed", "").await;
    assert!(note.contains("not in any address pool"), "{note}");
    // A pool that does not exist.
    create_service(
        c,
        "default",
        "nopool",
        80,
        json!({"metadata": {"annotations": {"metallb.io/address-pool": "three"}}}),
    )
    .await;
    let note = wait_event(c, "default", "nopool", "AllocationFailed", "").await;
    assert!(note.contains("three"), "{note}");

    // Sharing allowed: same key, different ports -> same address.
    let shared = json!({"metadata": {"annotations": {"metallb.io/allow-shared-ip": "k1", "metallb.io/loadBalancerIPs": "10.0.0.158"}}});
    create_service(c, "default", "share-a", 80, shared.clone()).await;
    create_service(c, "default", "share-b", 443, shared.clone()).await;
    wait_exact(c, "default", "share-a", &["10.0.0.158"]).await;
    wait_exact(c, "default", "share-b", &["10.0.0.158"]).await;
    // Refused: same port; and a different key.
    create_service(c, "default", "share-c", 80, shared).await;
    let note = wait_event(c, "default", "share-c", "AllocationFailed", "").await;
    assert!(note.contains("port"), "{note}");
    create_service(c, "default", "share-d", 8080, json!({"metadata": {"annotations": {"metallb.io/allow-shared-ip": "other", "metallb.io/loadBalancerIPs": "10.0.0.158"}}})).await;
    let note = wait_event(c, "default", "share-d", "AllocationFailed", "").await;
    assert!(note.contains("sharing key"), "{note}");
    // Automatic sharing: a keyed Service without a requested address shares nothing it may not.
    stays_pending(c, "default", "share-c", Duration::from_millis(200)).await;

    // Deprecated annotation: honoured, with a Warning event.
    create_service(
        c,
        "default",
        "old",
        80,
        json!({"metadata": {"annotations": {"metallb.universe.tf/loadBalancerIPs": "10.0.0.157"}}}),
    )
    .await;
    wait_exact(c, "default", "old", &["10.0.0.157"]).await;
    let note = wait_event(c, "default", "old", "deprecatedAnnotation", "").await;
    assert!(note.contains("metallb.io/loadBalancerIPs"), "{note}");
    let evs = events(c, "default", "old").await;
    assert!(
        evs.iter()
            .any(|e| e.type_ == "Warning" && e.reason == "deprecatedAnnotation")
    );

    // Changing the request moves the Service.
    patch_service(
        c,
        "default",
        "by-annotation",
        json!({"metadata": {"annotations": {"metallb.io/loadBalancerIPs": "10.0.0.156"}}}),
    )
    .await;
    wait_exact(c, "default", "by-annotation", &["10.0.0.156"]).await;
    // ... and frees the old address: the Service that wanted it is retried at once.
    wait_exact(c, "default", "taken", &["10.0.0.155"]).await;
}
