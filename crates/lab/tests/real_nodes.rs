//! End-to-end checks of the lab's real nodes: a kubelet, containerd (runc, CNI bridge) and
//! kube-proxy (nftables) in every node namespace, running images the lab built itself, and a
//! teardown that leaves nothing behind. Needs root, containerd, runc, the CNI plugins, nft and
//! buildah (`./dev setup` installs them).
//!
//! ```text
//!   client ──NodePort 10.0.0.23x:30180──> kube-proxy (any node) ──> apps Pod on node1..3
//!   node1  ──ClusterIP / Pod IP 10.244.<j>.x──> routes set by the lab ──> Pod on node j
//!   client ──10.0.0.232:8080──> hostNetwork Pod in node2's namespace
//!   a Pod, a node ──Service kubernetes 10.200.0.1:443──> the API server (in-cluster clients)
//!   the API server ──egress proxy in node1──> kubelet :10250 (kubectl logs)
//! ```

use ipnet::Ipv4Net;
use ironlb_lab::images::{self, APPS_IMAGE};
use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions, nodes};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// `curl` from `host` to `url`; the body, or the error.
fn curl(lab: &Lab, host: &str, url: &str) -> Result<String, String> {
    lab.exec_ok(host, &["curl", "-s", "-S", "--max-time", "2", url])
        .map(|body| body.trim().to_string())
        .map_err(|e| e.to_string())
}

fn apps_deployment() -> serde_json::Value {
    let env = json!([
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]);
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "apps", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "apps"}},
            "template": {
                "metadata": {"labels": {"app": "apps"}},
                "spec": {
                    // One Pod per node, so every node's bridge, routes and kube-proxy are used.
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"app": "apps"}},
                    }],
                    "containers": [{
                        "name": "apps", "image": APPS_IMAGE, "env": env,
                        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
                    }],
                },
            },
        },
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn real_nodes_run_pods_behind_kube_proxy_and_leave_nothing_behind() {
    let started = Instant::now();
    let lab = Lab::start(LabOptions {
        real_nodes: true,
        ..LabOptions::for_test()
    })
    .await
    .expect("a lab with real nodes starts (needs root and ./dev setup's packages)");
    eprintln!(
        "lab with real nodes up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let client = lab.client().await.expect("admin client");

    // Every Node registered by its own kubelet, Ready, on containerd, with its Pod CIDR.
    let node_api: Api<Node> = Api::all(client.clone());
    let mut cidrs = Vec::new();
    for (i, host) in (1u8..).zip(lab.topo.node_hosts()) {
        let node = node_api.get(&host.name).await.expect("node");
        let status = node.status.clone().expect("node status");
        let runtime = status
            .node_info
            .expect("nodeInfo")
            .container_runtime_version;
        assert!(
            runtime.starts_with("containerd://"),
            "{}: {runtime}",
            host.name
        );
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status);
        assert_eq!(ready.as_deref(), Some("True"), "{} Ready", host.name);
        let cidr = node.spec.and_then(|s| s.pod_cidr).expect("podCIDR");
        assert_eq!(cidr, nodes::pod_cidr(i));
        cidrs.push((host.name.clone(), cidr.parse::<Ipv4Net>().expect("cidr")));
    }

    // Three replicas of the walkthrough's image, one per node, each on its node's Pod CIDR.
    lab.kubectl_apply(&serde_json::to_string(&apps_deployment()).expect("json"))
        .expect("deployment applied");
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pods: Vec<(String, String, Ipv4Addr)> = eventually(
        "3 apps Pods Running and Ready",
        Duration::from_secs(90),
        || async {
            let list = pod_api
                .list(&ListParams::default().labels("app=apps"))
                .await
                .map_err(|e| e.to_string())?;
            let mut ready = Vec::new();
            for pod in list.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let status = pod.status.clone().unwrap_or_default();
                let is_ready = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if status.phase.as_deref() != Some("Running") || !is_ready {
                    return Err(format!("{name}: {:?} ready={is_ready}", status.phase));
                }
                let node = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
                let ip = status
                    .pod_ip
                    .and_then(|ip| ip.parse().ok())
                    .ok_or(format!("{name} has no Pod IP"))?;
                ready.push((name, node, ip));
            }
            if ready.len() == 3 {
                Ok(ready)
            } else {
                Err(format!("{} of 3 Pods Ready", ready.len()))
            }
        },
    )
    .await;
    let on_nodes: BTreeSet<&str> = pods.iter().map(|(_, node, _)| node.as_str()).collect();
    assert_eq!(on_nodes.len(), 3, "one Pod per node: {pods:?}");
    for (name, node, ip) in &pods {
        let (_, cidr) = cidrs.iter().find(|(n, _)| n == node).expect("known node");
        assert!(
            cidr.contains(ip),
            "{name} on {node} has {ip}, outside {cidr}"
        );
    }

    // The API server reaches the kubelets (here for logs) through the lab's egress proxy.
    let (name, node, _) = &pods[0];
    let out = lab
        .kubectl()
        .args(["logs", "-n", "default", name])
        .output()
        .expect("kubectl runs");
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(
        logs.contains(&format!("apps: {name} on {node} listening on port 80")),
        "kubectl logs {name}: {logs} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A Pod IP on another node answers from node1 (the lab's routes between Pod CIDRs); the
    // answer names the Pod, so the request really reached it.
    for (name, node, ip) in pods.iter().filter(|(_, node, _)| node != "node1") {
        let body = curl(&lab, "node1", &format!("http://{ip}/")).expect("Pod IP from node1");
        assert_eq!(body, format!("{name} on {node} at {ip}"));
    }

    // A NodePort Service answers through kube-proxy on every node's LAN address, and its
    // ClusterIP from a node.
    let svc_api: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "apps"},
        "spec": {"type": "NodePort", "selector": {"app": "apps"},
                 "ports": [{"port": 80, "targetPort": 80, "nodePort": 30180}]},
    }))
    .expect("service json");
    let svc = svc_api
        .create(&PostParams::default(), &svc)
        .await
        .expect("service");
    let cluster_ip = svc.spec.and_then(|s| s.cluster_ip).expect("ClusterIP");
    let names: BTreeSet<&str> = pods.iter().map(|(n, _, _)| n.as_str()).collect();
    let answered_by_a_pod = |body: &str| {
        body.split_whitespace()
            .next()
            .is_some_and(|pod| names.contains(pod))
    };
    for host in lab.topo.node_hosts() {
        let url = format!("http://{}:30180/", host.ipv4);
        let body = eventually(
            &format!("{url} from client"),
            Duration::from_secs(20),
            || async { curl(&lab, "client", &url) },
        )
        .await;
        assert!(answered_by_a_pod(&body), "{url}: {body:?}");
    }
    let url = format!("http://{cluster_ip}/");
    let body = eventually(
        "the ClusterIP from node2",
        Duration::from_secs(20),
        || async { curl(&lab, "node2", &url) },
    )
    .await;
    assert!(answered_by_a_pod(&body), "{url}: {body:?}");

    // A hostNetwork Pod runs in its node's namespace and answers on the node's LAN address.
    let host_pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "on-the-host"},
        "spec": {
            "hostNetwork": true, "nodeName": "node2",
            "containers": [{"name": "apps", "image": APPS_IMAGE, "env": [
                {"name": "PORT", "value": "8080"},
                {"name": "POD_NAME", "value": "on-the-host"},
                {"name": "NODE_NAME", "value": "node2"},
            ]}],
        },
    }))
    .expect("pod json");
    pod_api
        .create(&PostParams::default(), &host_pod)
        .await
        .expect("hostNetwork pod");
    let body = eventually(
        "the hostNetwork Pod on 10.0.0.232:8080",
        Duration::from_secs(60),
        || async { curl(&lab, "client", "http://10.0.0.232:8080/") },
    )
    .await;
    assert_eq!(body, "on-the-host on node2 at 10.0.0.232");

    // In-cluster clients reach the API server through the `kubernetes` Service, from a node
    // (hostNetwork, like the speakers) and from a Pod's own network namespace (like the
    // controller).
    // The CA is checked, as a client with its ServiceAccount's ca.crt does.
    let version = "\"gitVersion\": \"v1.34.4\"";
    let ca = lab.dir.join("pki/ca.crt").display().to_string();
    let url = "https://10.200.0.1/version";
    let api = ["curl", "-s", "-S", "--cacert", &ca, "--max-time", "3", url];
    let body = lab.exec_ok("node1", &api).expect("API from node1");
    assert!(body.contains(version), "{body}");
    let pod_netns = nodes::pod_network_namespaces(&lab.dir, &lab.topo, 2);
    assert!(
        !pod_netns.is_empty(),
        "node2 runs a Pod with its own network"
    );
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", pod_netns[0].display()))
        .args(api)
        .output()
        .expect("nsenter runs");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains(version),
        "API from a Pod on node2: {body} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Teardown: no namespace, host link, process, cgroup, mount or file of the lab is left.
    let (topo, dir) = (lab.topo.clone(), lab.dir.clone());
    let processes = nodes::processes(&dir, &topo);
    assert!(
        processes.len() >= 3 * 3 + 4,
        "containerd, kubelet, kube-proxy per node and the Pods' processes: {processes:?}"
    );
    let down = Instant::now();
    lab.down();
    eprintln!(
        "real-node lab torn down in {:.1} s",
        down.elapsed().as_secs_f64()
    );
    assert_eq!(topo.leftovers(), Vec::<String>::new());
    assert_eq!(nodes::leftovers(&dir, &topo), Vec::<String>::new());
    assert!(!dir.exists(), "{} removed", dir.display());
    let alive: Vec<i32> = processes
        .into_iter()
        .filter(|pid| ironlb_lab::proc::pid_alive(*pid))
        .collect();
    assert_eq!(alive, Vec::<i32>::new(), "processes of the lab still alive");
}

/// `ironlb/ironlb:<tag>` holds the one binary it is given, as its entrypoint, and nothing else;
/// a binary that needs a dynamic loader is refused.
#[test]
fn the_ironlb_image_holds_only_the_static_binary() {
    let work = std::env::temp_dir().join(format!("ironlb-image-test-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    // Any static binary stands in for ironlb here; the lab's own pause program is one.
    let binary = images::lab_program("pause").expect("pause built");
    let image = images::ironlb_image(&binary, "test").expect("image built");
    assert_eq!(image.name, "ironlb/ironlb:test");
    let again = images::ironlb_image(&binary, "test").expect("image cached");
    assert_eq!(again, image, "the same binary gives the cached archive");

    let tar = |args: &[&str]| {
        let out = std::process::Command::new("tar")
            .args(args)
            .output()
            .expect("tar runs");
        assert!(out.status.success(), "tar {args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let archive = image.path.display().to_string();
    let manifest: serde_json::Value =
        serde_json::from_str(&tar(&["-xOf", &archive, "manifest.json"])).expect("manifest");
    assert_eq!(
        manifest[0]["RepoTags"],
        json!(["docker.io/ironlb/ironlb:test"]),
        "one name, as the kubelet asks for `ironlb/ironlb:test`"
    );
    let config_file = manifest[0]["Config"].as_str().expect("config file");
    let config: serde_json::Value =
        serde_json::from_str(&tar(&["-xOf", &archive, config_file])).expect("config");
    assert_eq!(config["config"]["Entrypoint"], json!(["/ironlb"]));
    let layers = manifest[0]["Layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "one layer");
    let layer = work.join("layer.tar");
    std::fs::write(
        &layer,
        std::process::Command::new("tar")
            .args(["-xOf", &archive, layers[0].as_str().expect("layer")])
            .output()
            .expect("tar")
            .stdout,
    )
    .expect("layer written");
    let files: Vec<String> = tar(&["-tf", &layer.display().to_string()])
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(files, ["ironlb"], "nothing but the binary in the image");

    let dynamic = std::env::current_exe().expect("the test binary, dynamically linked");
    let err = images::ironlb_image(&dynamic, "test").expect_err("a dynamic binary is refused");
    assert!(err.to_string().contains("dynamically linked"), "{err:#}");
    let _ = std::fs::remove_dir_all(&work);
}
