//! Shared helpers of the end-to-end tests: a lab with the CRDs and the controller running as
//! its ServiceAccount, builders for pools, Service reads and waits (the helpers every crate's
//! tests share are `ironlb_lab::testing`'s).
#![allow(dead_code, clippy::unwrap_used)]

use ironlb_lab::components::{self, Controller, ControllerOptions};
use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use std::time::Duration;

/// A lab with ironlb's CRDs and a running controller.
pub struct Env {
    pub lab: Lab,
    pub client: Client,
    pub ctl: Controller,
}

/// The `ironlb` binary Cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ironlb")
}

/// Starts a lab, installs the CRDs and starts the controller (`extra` flags; webhook or not).
pub async fn setup(webhook: bool, extra: &[&str]) -> Env {
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab starts (needs root)");
    components::install_crds(&lab).expect("CRDs installed");
    let mut opts = ControllerOptions::new(binary());
    opts.webhook = webhook;
    opts.extra_args = extra.iter().map(|s| s.to_string()).collect();
    let ctl = components::start_controller(&lab, opts)
        .await
        .expect("controller starts");
    ctl.wait_ready(Duration::from_secs(30))
        .await
        .expect("controller ready");
    let client = lab.client().await.unwrap();
    Env { lab, client, ctl }
}

/// `kubectl apply -f -` as admin: Ok(stdout) or Err(stderr).
pub fn apply(lab: &Lab, yaml: &str) -> Result<String, String> {
    lab.kubectl_apply(yaml).map_err(|e| format!("{e:#}"))
}

/// An IPAddressPool manifest in metallb-system.
pub fn pool_yaml(name: &str, addresses: &[&str], extra_spec: &str) -> String {
    let addrs: Vec<String> = addresses.iter().map(|a| format!("  - {a}")).collect();
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: {name}\n  namespace: metallb-system\nspec:\n  addresses:\n{}\n{extra_spec}",
        addrs.join("\n")
    )
}

/// Creates a namespace with labels (ignores "already exists").
pub async fn namespace(client: &Client, name: &str, labels: Value) {
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels}
    }))
    .unwrap();
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.create(&PostParams::default(), &ns).await;
}

/// Merge-patches a Service.
pub async fn patch_service(client: &Client, ns: &str, name: &str, patch: Value) {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Deletes a Service.
pub async fn delete_service(client: &Client, ns: &str, name: &str) {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

/// The Service now.
pub async fn get_service(client: &Client, ns: &str, name: &str) -> Service {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    api.get(name).await.unwrap()
}

/// `status.loadBalancer.ingress[*].ip`.
pub fn ips_of(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .map(|i| i.iter().filter_map(|x| x.ip.clone()).collect())
        .unwrap_or_default()
}

/// The `metallb.io/ip-allocated-from-pool` annotation.
pub fn pool_of(svc: &Service) -> Option<String> {
    svc.annotations()
        .get("metallb.io/ip-allocated-from-pool")
        .cloned()
}

/// Waits until the Service has exactly `n` addresses; returns them.
pub async fn wait_ips(client: &Client, ns: &str, name: &str, n: usize) -> Vec<String> {
    eventually(
        &format!("{ns}/{name} with {n} address(es)"),
        Duration::from_secs(20),
        async || {
            let ips = ips_of(&get_service(client, ns, name).await);
            if ips.len() == n {
                Ok(ips)
            } else {
                Err(format!("{ips:?}"))
            }
        },
    )
    .await
}

/// Waits until the Service has the addresses `want` (order-insensitive).
pub async fn wait_exact(client: &Client, ns: &str, name: &str, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    eventually(
        &format!("{ns}/{name} with {want:?}"),
        Duration::from_secs(20),
        async || {
            let mut ips = ips_of(&get_service(client, ns, name).await);
            ips.sort();
            if ips == want {
                Ok(())
            } else {
                Err(format!("{ips:?}"))
            }
        },
    )
    .await
}

/// Holds the Service no address for `d` (checks several times).
pub async fn stays_pending(client: &Client, ns: &str, name: &str, d: Duration) {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        let ips = ips_of(&get_service(client, ns, name).await);
        assert!(ips.is_empty(), "{ns}/{name} unexpectedly got {ips:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
