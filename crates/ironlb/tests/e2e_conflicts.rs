//! The controller's status writer against the lab's real kube-apiserver: a write for a Service
//! that was deleted and re-created under the same name (a stale uid) is refused by the API
//! server with 409, and the writer hands the Service as it is now back to the main loop instead
//! of writing the old address onto the new object; a write for a Service that is gone is
//! dropped. (The main loop's answer to that feedback, `State::upsert` of the fresh object, is
//! the same path as a watch event.)
#![allow(clippy::unwrap_used)]

use ironlb_allocator::ServiceKey;
use ironlb_controller::writer::{Feedback, Writer};
use ironlb_k8s::metrics::K8sClientMetrics;
use ironlb_lab::{Lab, LabOptions};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::mpsc;

async fn create(client: &Client, name: &str) -> Service {
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &svc).await.unwrap()
}

async fn delete(client: &Client, name: &str) {
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    api.delete(name, &DeleteParams::default()).await.unwrap();
    for _ in 0..100 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} not deleted");
}

async fn ingress(client: &Client, name: &str) -> Vec<String> {
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = api.get(name).await.unwrap();
    svc.status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.ip)
        .collect()
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Feedback>) -> Option<Feedback> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .ok()
        .flatten()
}

/// Waits until `metric` reaches `want` (the writer counts after the API server answered).
async fn counted(metric: &prometheus_client::metrics::counter::Counter, want: u64) {
    for _ in 0..200 {
        if metric.get() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(metric.get(), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_writes_conflict_and_return_the_service_as_it_is_now() {
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab starts (needs root)");
    let client = lab.client().await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let metrics = K8sClientMetrics::default();
    let writer = Writer::new(client.clone(), 4, tx, metrics.clone());
    let key = ServiceKey::new("default", "web");
    let addr: IpAddr = "10.0.0.150".parse().unwrap();

    // A write with the Service's own uid lands, and reports nothing back.
    let first = create(&client, "web").await;
    writer.submit(
        key.clone(),
        first.uid().unwrap(),
        vec![addr],
        Some("p".into()),
    );
    counted(&metrics.updates, 1).await;
    assert_eq!(ingress(&client, "web").await, vec!["10.0.0.150"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "a successful write sent feedback"
    );

    // Deleted and re-created under the same name: the old uid conflicts (409); the new
    // object is returned and keeps its empty status.
    delete(&client, "web").await;
    let second = create(&client, "web").await;
    assert_ne!(first.uid(), second.uid());
    writer.submit(
        key.clone(),
        first.uid().unwrap(),
        vec![addr],
        Some("p".into()),
    );
    match next(&mut rx).await {
        Some(Feedback::Fresh(k, Some(svc))) => {
            assert_eq!(k, key);
            assert_eq!(svc.uid(), second.uid(), "not the Service as it is now");
        }
        other => panic!("expected Fresh with the new Service, got {other:?}"),
    }
    assert_eq!(metrics.update_errors.get(), 1);
    assert_eq!(metrics.updates.get(), 1);
    assert!(
        ingress(&client, "web").await.is_empty(),
        "the old address was written onto the new Service"
    );

    // Gone altogether: 404 is dropped quietly (the watch reports the deletion).
    delete(&client, "web").await;
    writer.submit(key.clone(), second.uid().unwrap(), vec![addr], None);
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err(),
        "a write for a deleted Service sent feedback"
    );
    assert_eq!(metrics.updates.get(), 1);
    assert_eq!(metrics.update_errors.get(), 1);
    lab.down();
}
