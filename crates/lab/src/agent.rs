//! The lab plays kubelet (and kube-proxy's address keeping) for its node namespaces:
//!
//! ```text
//!   Node objects  <- registered with InternalIP = the node's LAN addresses, Ready, heartbeats
//!   Lease objects <- renewed every 10 s in kube-node-lease
//!   Pods on lab nodes -> marked Running + Ready with a pod IP; deleted pods are removed
//!   Services' status.loadBalancer.ingress -> kept on kube-ipvs0 in every node namespace
//! ```

use crate::network::{IPVS_DUMMY, Topology};
use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

const MANAGER: &str = "ironlb-lab";
/// How often nodes heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Runs the kubelet imitation until the future is dropped.
pub async fn run(client: Client, topo: Topology) -> Result<()> {
    register_nodes(&client, &topo).await?;
    let heartbeat = heartbeats(client.clone(), topo.clone());
    let pods = pods(client.clone(), topo.clone());
    let addresses = service_addresses(client, topo);
    tokio::try_join!(heartbeat, pods, addresses)?;
    Ok(())
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Creates or updates the Node objects (spec and labels; status follows in the heartbeat).
pub async fn register_nodes(client: &Client, topo: &Topology) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    for (i, host) in (1u8..).zip(topo.node_hosts()) {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": host.name, "labels": {
                "kubernetes.io/hostname": host.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            }},
            "spec": {"podCIDR": crate::nodes::pod_cidr(i), "podCIDRs": [crate::nodes::pod_cidr(i)]},
        });
        nodes
            .patch(
                &host.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&node),
            )
            .await
            .with_context(|| format!("registering node {}", host.name))?;
    }
    node_status(client, topo, &now()).await
}

async fn node_status(client: &Client, topo: &Topology, since: &Time) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let t = now();
    for host in topo.node_hosts() {
        let resources =
            json!({"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "20Gi"});
        let status = json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": host.name},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": host.ipv4.to_string()},
                    {"type": "InternalIP", "address": host.ipv6.to_string()},
                    {"type": "Hostname", "address": host.name},
                ],
                "capacity": resources, "allocatable": resources,
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "ironlb-lab plays kubelet for this node",
                    "lastHeartbeatTime": t, "lastTransitionTime": since,
                }],
                "nodeInfo": {
                    "architecture": "amd64", "operatingSystem": "linux",
                    "kubeletVersion": "v1.34.4", "kubeProxyVersion": "v1.34.4",
                    "containerRuntimeVersion": "lab://1", "kernelVersion": "", "osImage": "ironlb lab",
                    "machineID": "", "systemUUID": "", "bootID": "",
                },
            },
        });
        // A merge patch, not server-side apply: `addresses` is keyed by type in the schema, and a
        // dual-stack node has two InternalIP entries, which apply refuses as duplicates.
        nodes
            .patch_status(&host.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .with_context(|| format!("node {} status", host.name))?;
    }
    Ok(())
}

async fn heartbeats(client: Client, topo: Topology) -> Result<()> {
    let since = now();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-node-lease");
    loop {
        for host in topo.node_hosts() {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": host.name, "namespace": "kube-node-lease"},
                "spec": {
                    "holderIdentity": host.name, "leaseDurationSeconds": 40,
                    "renewTime": MicroTime(k8s_openapi::jiff::Timestamp::now()),
                },
            });
            if let Err(e) = leases
                .patch(
                    &host.name,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(&lease),
                )
                .await
            {
                tracing::warn!(node = %host.name, error = %e, "lease renewal failed");
            }
        }
        if let Err(e) = node_status(&client, &topo, &since).await {
            tracing::warn!(error = %e, "node status heartbeat failed");
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Pod IPs handed out per node (10.244.<i>.<n>), so two pods never share one.
#[derive(Default)]
struct PodIps {
    used: HashMap<String, HashSet<IpAddr>>,
}

impl PodIps {
    fn take(&mut self, node_index: u8, node: &str) -> Option<IpAddr> {
        let used = self.used.entry(node.to_string()).or_default();
        let ip = (2..=254u8)
            .map(|n| IpAddr::from([10, 244, node_index, n]))
            .find(|ip| !used.contains(ip))?;
        used.insert(ip);
        Some(ip)
    }
}

async fn pods(client: Client, topo: Topology) -> Result<()> {
    let api: Api<Pod> = Api::all(client.clone());
    let node_names = topo.node_names();
    let mut ips = PodIps::default();
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(item) = stream.next().await {
        let pod = match item {
            Ok(pod) => pod,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        let Some(index) = node_names.iter().position(|n| *n == node) else {
            continue;
        };
        let ns = pod.namespace().unwrap_or_default();
        let pods_ns: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            // A kubelet confirms the deletion once the containers are gone; ours are imaginary.
            if let (Some(ip), Some(set)) = (pod_ip(&pod), ips.used.get_mut(&node)) {
                set.remove(&ip);
            }
            let _ = pods_ns
                .delete(&pod.name_any(), &DeleteParams::default().grace_period(0))
                .await;
            continue;
        }
        if let Some(ip) = pod_ip(&pod) {
            ips.used.entry(node.clone()).or_default().insert(ip);
        }
        if pod_ready(&pod) {
            continue;
        }
        let host = topo.node(index as u8 + 1);
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let ip = match (host_network, pod_ip(&pod)) {
            (true, _) => IpAddr::V4(host.ipv4),
            (false, Some(ip)) => ip,
            (false, None) => match ips.take(index as u8 + 1, &node) {
                Some(ip) => ip,
                None => {
                    tracing::warn!(%node, "no pod IP left");
                    continue;
                }
            },
        };
        let mut pod_ips = vec![json!({"ip": ip.to_string()})];
        if host_network {
            pod_ips.push(json!({"ip": host.ipv6.to_string()}));
        }
        let t = now();
        let containers: Vec<_> = pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "ready": true, "started": true, "restartCount": 0,
                    "image": c.image.clone().unwrap_or_default(), "imageID": "",
                    "containerID": format!("lab://{}/{}", pod.uid().unwrap_or_default(), c.name),
                    "state": {"running": {"startedAt": t}},
                })
            })
            .collect();
        let conditions: Vec<_> = ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
            .iter()
            .map(|c| json!({"type": c, "status": "True", "lastTransitionTime": t}))
            .collect();
        let status = json!({"status": {
            "phase": "Running", "podIP": ip.to_string(), "podIPs": pod_ips,
            "hostIP": host.ipv4.to_string(),
            "hostIPs": [{"ip": host.ipv4.to_string()}, {"ip": host.ipv6.to_string()}],
            "startTime": t, "conditions": conditions, "containerStatuses": containers,
        }});
        if let Err(e) = pods_ns
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
        {
            tracing::warn!(pod = %pod.name_any(), error = %e, "marking pod ready");
        }
    }
    Ok(())
}

fn pod_ip(pod: &Pod) -> Option<IpAddr> {
    pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Every address in any Service's `status.loadBalancer.ingress`.
pub fn load_balancer_ips<'a>(services: impl IntoIterator<Item = &'a Service>) -> BTreeSet<IpAddr> {
    services
        .into_iter()
        .filter_map(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref())
        .flatten()
        .filter_map(|i| i.ip.as_ref()?.parse().ok())
        .collect()
}

async fn service_addresses(client: Client, topo: Topology) -> Result<()> {
    let api: Api<Service> = Api::all(client);
    let (store, writer) = reflector::store();
    let mut stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .boxed();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut synced = false;
    // Per node namespace: the addresses this agent put on kube-ipvs0.
    let mut added: std::collections::HashMap<String, BTreeSet<IpAddr>> = Default::default();
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(watcher::Event::InitDone)) => synced = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => { tracing::warn!(error = %e, "service watch"); continue; }
                None => return Ok(()),
            },
            _ = tick.tick() => {}
        }
        // Until the first full list has arrived, an empty store would wrongly mean "remove all".
        if !synced {
            continue;
        }
        let services = store.state();
        let wanted = load_balancer_ips(services.iter().map(|s| s.as_ref()));
        for node in topo.node_hosts() {
            let added = added.entry(node.netns.clone()).or_default();
            if let Err(e) = sync_dummy(&node.netns, &wanted, added).await {
                tracing::warn!(node = %node.name, error = %e, "syncing Service addresses");
            }
        }
    }
}

/// Makes kube-ipvs0 in `netns` hold every address in `wanted`, and removes the ones this agent
/// put there (`added`) that are no longer wanted. Addresses someone else added (a test setting
/// up a route target by hand) are left alone: removing them every 5 s made such tests race
/// the agent.
async fn sync_dummy(
    netns: &str,
    wanted: &BTreeSet<IpAddr>,
    added: &mut BTreeSet<IpAddr>,
) -> Result<()> {
    let out = tokio::process::Command::new("ip")
        .args(["-n", netns, "-j", "addr", "show", "dev", IPVS_DUMMY])
        .output()
        .await?;
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(json!([]));
    let present: BTreeSet<IpAddr> = parsed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link.get("addr_info")?.as_array())
        .flatten()
        .filter_map(|a| a.get("local")?.as_str()?.parse().ok())
        .filter(|ip: &IpAddr| !matches!(ip, IpAddr::V6(v6) if v6.segments()[0] == 0xfe80))
        .collect();
    for ip in wanted.difference(&present) {
        let cidr = match ip {
            IpAddr::V4(_) => format!("{ip}/32"),
            IpAddr::V6(_) => format!("{ip}/128"),
        };
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["-n", netns, "addr", "add", &cidr, "dev", IPVS_DUMMY]);
        if ip.is_ipv6() {
            cmd.arg("nodad");
        }
        if cmd.status().await?.success() {
            added.insert(*ip);
        }
    }
    // A wanted address already there is the agent's to remove later too.
    added.extend(wanted.intersection(&present).copied());
    let stale: Vec<IpAddr> = present
        .difference(wanted)
        .filter(|ip| added.contains(ip))
        .copied()
        .collect();
    for ip in &stale {
        added.remove(ip);
        let cidr = match ip {
            IpAddr::V4(_) => format!("{ip}/32"),
            IpAddr::V6(_) => format!("{ip}/128"),
        };
        tokio::process::Command::new("ip")
            .args(["-n", netns, "addr", "del", &cidr, "dev", IPVS_DUMMY])
            .status()
            .await?;
    }
    Ok(())
}
