//! Helpers of the BGP-mode lab tests: Services and Pods in the lab cluster, FRR's view read from
//! `vtysh ... json`.

use super::Env;
use ironlb_lab::Lab;
use ironlb_lab::speakers;
use ironlb_lab::testing::{create_service, eventually, wait_service_address};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

pub use ironlb_lab::testing::LIMIT;

/// What the helpers need of a test environment (support's `Env`, or a test's own).
pub trait TestEnv {
    fn lab(&self) -> &Lab;
    fn client(&self) -> &kube::Client;
    fn speakers(&self) -> &speakers::Speakers;
}

impl TestEnv for Env {
    fn lab(&self) -> &Lab {
        &self.lab
    }
    fn client(&self) -> &kube::Client {
        &self.client
    }
    fn speakers(&self) -> &speakers::Speakers {
        &self.speakers
    }
}

/// A LoadBalancer Service `default/name` selecting `app: name` (single-stack IPv6 with `v6`);
/// waits for its address.
pub async fn lb_service(env: &impl TestEnv, name: &str, local: bool, v6: bool) -> String {
    let mut spec = json!({"externalTrafficPolicy": if local { "Local" } else { "Cluster" }});
    if v6 {
        spec["ipFamilyPolicy"] = json!("SingleStack");
        spec["ipFamilies"] = json!(["IPv6"]);
    }
    create_service(env.client(), "default", name, 80, json!({"spec": spec})).await;
    wait_service_address(env.client(), "default", name).await
}

/// A Pod on `node`; `host_network` ones get the node's IPv6 address too (the lab's pod
/// network is IPv4 only), for IPv6 Services' endpoints.
pub async fn pod(env: &impl TestEnv, name: &str, app: &str, node: &str, host_network: bool) {
    let api: Api<Pod> = Api::namespaced(env.client().clone(), "default");
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "hostNetwork": host_network,
                 "containers": [{"name": "c", "image": "lab/none"}]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &p).await.unwrap();
}

/// `vtysh -c <cmd>` as JSON.
pub fn frr_json(env: &impl TestEnv, cmd: &str) -> Result<Value, String> {
    let out = env.lab().router.cli(&[cmd]).map_err(|e| e.to_string())?;
    serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))
}

/// FRR's BGP paths for `prefix`.
pub fn paths(env: &impl TestEnv, af: &str, prefix: &str) -> Vec<Value> {
    frr_json(env, &format!("show bgp {af} unicast {prefix} json"))
        .map(|v| v["paths"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// The sorted next hops of FRR's BGP paths for `prefix`.
pub fn next_hops(env: &impl TestEnv, af: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = paths(env, af, prefix)
        .iter()
        .filter_map(|p| p["nexthops"][0]["ip"].as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Waits until FRR's next hops for `prefix` are exactly `want` (sorted).
pub async fn wait_next_hops(env: &impl TestEnv, af: &str, prefix: &str, want: &[&str]) {
    eventually(&format!("{prefix} via {want:?}"), LIMIT, async || {
        let got = next_hops(env, af, prefix);
        if got == want {
            Ok(())
        } else {
            let table = env
                .lab()
                .router
                .cli(&[&format!("show bgp {af} unicast")])
                .unwrap_or_default();
            Err(format!("{got:?}; FRR's {af} table:\n{table}"))
        }
    })
    .await;
}

/// FRR's state of IPv4 neighbor `addr`.
pub fn frr_state(env: &impl TestEnv, addr: &str) -> Result<String, String> {
    let v = frr_json(env, "show bgp summary json")?;
    v["ipv4Unicast"]["peers"][addr]["state"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| v.to_string())
}
