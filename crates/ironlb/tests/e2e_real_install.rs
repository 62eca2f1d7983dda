//! ironlb installed the way a MetalLB user installs MetalLB (the walkthrough's steps 3-8), on
//! the lab's real nodes: `kubectl apply -f deploy/ironlb-native.yaml` with the image the lab
//! built from a static `ironlb` and imported into every node's containerd; the controller
//! Deployment and one speaker Pod per node Running under containerd; the walkthrough's pool,
//! L2Advertisement and Deployment + LoadBalancer Service applied as they are; the Service gets
//! 10.0.0.150, which answers `client` through kube-proxy from one of the 5 Pods; then
//! `kubectl delete -f` of the manifest leaves nothing of ironlb behind. The same with the Helm
//! chart and a MetalLB user's values file (`helm install`, `helm uninstall`).
//!
//! ```text
//!   client --ARP 10.0.0.150--> speaker Pod (hostNetwork, node k) --> kube-proxy (nftables)
//!          --TCP :80---------> node k -------------------------------> one of 5 apps Pods
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ironlb_lab::components;
use ironlb_lab::images;
use ironlb_lab::{Lab, LabOptions};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Api;
use kube::api::ListParams;
use std::time::{Duration, Instant};

async fn eventually<F, Fut, T>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => {
                eprintln!("[{:6.1}s] {what}", start.elapsed().as_secs_f64());
                return v;
            }
            Err(e) => assert!(
                start.elapsed() < limit,
                "{what} not seen within {limit:?} (last: {e})"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn kubectl(lab: &Lab, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut cmd = lab.kubectl();
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A lab with real nodes and ironlb's image (a static build, tagged `tag`) in every node.
async fn real_lab(tag: &str) -> (Lab, kube::Client) {
    let binary = components::static_ironlb().expect("a static ironlb builds");
    let lab = Lab::start(LabOptions {
        real_nodes: true,
        ..LabOptions::for_test()
    })
    .await
    .expect("a lab with real nodes starts (needs root, containerd, runc, buildah)");
    let image = images::ironlb_image(&binary, tag).expect("the ironlb image builds");
    lab.import_image(&image).expect("imported into every node");
    let client = lab.client().await.unwrap();
    (lab, client)
}

/// Waits for the controller Deployment 1/1 and the speaker DaemonSet 3/3 in metallb-system.
async fn wait_installed(client: &kube::Client, controller: &str, speaker: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "metallb-system");
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "metallb-system");
    eventually(
        &format!("deployment.apps/{controller} 1/1"),
        Duration::from_secs(120),
        || async {
            let d = deployments
                .get(controller)
                .await
                .map_err(|e| e.to_string())?;
            let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            (ready == 1).then_some(()).ok_or(format!("{ready}/1"))
        },
    )
    .await;
    eventually(
        &format!("daemonset.apps/{speaker} 3/3"),
        Duration::from_secs(120),
        || async {
            let d = daemonsets.get(speaker).await.map_err(|e| e.to_string())?;
            let ready = d.status.map(|s| s.number_ready).unwrap_or(0);
            (ready == 3).then_some(()).ok_or(format!("{ready}/3"))
        },
    )
    .await;
}

/// Steps 4-8: the walkthrough's configuration and application, applied unchanged.
async fn apply_walkthrough(lab: &Lab) {
    let demo = components::checkout_path("crates/lab/demo");
    for file in ["metallb-config.yaml", "reference-scenario.yaml"] {
        let text = std::fs::read_to_string(demo.join(file)).unwrap();
        eventually(
            &format!("kubectl apply -f {file}"),
            Duration::from_secs(30),
            || async { kubectl(lab, &["apply", "-f", "-"], Some(&text)) },
        )
        .await;
    }
}

/// Waits until `http://10.0.0.150/` from `client` is answered by one of the walkthrough's Pods.
async fn wait_served(lab: &Lab, limit: Duration) {
    let answer = eventually(
        "curl http://10.0.0.150/ from client reaches a Pod",
        limit,
        || async {
            lab.exec_ok(
                "client",
                &["curl", "-s", "-S", "--max-time", "2", "http://10.0.0.150/"],
            )
            .map_err(|e| e.to_string())
        },
    )
    .await;
    assert!(answer.contains("deploy-xiuxian"), "{answer}");
}

/// Nothing cluster-wide of ironlb (or MetalLB's names) is left.
fn assert_nothing_left(lab: &Lab) {
    let rest = kubectl(
        lab,
        &[
            "get",
            "crd,clusterrole,clusterrolebinding,validatingwebhookconfiguration",
            "-o",
            "name",
        ],
        None,
    )
    .unwrap();
    assert!(
        !rest.contains("metallb") && !rest.contains("ironlb"),
        "{rest}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn installs_from_the_manifest_on_real_nodes_serves_the_walkthrough_and_uninstalls() {
    let (lab, client) = real_lab("latest").await;

    // Step 3: the manifest, as a user applies it.
    let manifest = components::lab_native_manifest("latest").unwrap();
    kubectl(&lab, &["apply", "-f", "-"], Some(&manifest)).expect("the manifest applies");
    wait_installed(&client, "controller", "speaker").await;
    // Real kubelets on containerd run them.
    let nodes: Api<Node> = Api::all(client.clone());
    for n in nodes.list(&ListParams::default()).await.unwrap() {
        let runtime = n
            .status
            .and_then(|s| s.node_info)
            .unwrap()
            .container_runtime_version;
        assert!(runtime.starts_with("containerd://"), "{runtime}");
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "metallb-system");
    let ours = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(ours.items.len(), 4, "controller + 3 speakers");
    for p in &ours.items {
        let status = p.status.clone().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let id = status.container_statuses.unwrap()[0]
            .container_id
            .clone()
            .unwrap_or_default();
        assert!(id.starts_with("containerd://"), "{id}");
    }

    apply_walkthrough(&lab).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "haha");
    eventually(
        "svc-xiuxian-lb EXTERNAL-IP 10.0.0.150",
        Duration::from_secs(60),
        || async {
            let s = services
                .get("svc-xiuxian-lb")
                .await
                .map_err(|e| e.to_string())?;
            let ip = s
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|l| l.ingress)
                .and_then(|i| i.into_iter().next())
                .and_then(|i| i.ip);
            (ip.as_deref() == Some("10.0.0.150"))
                .then_some(())
                .ok_or(format!("{ip:?}"))
        },
    )
    .await;
    let app_pods: Api<Pod> = Api::namespaced(client.clone(), "haha");
    eventually(
        "5/5 deploy-xiuxian Pods Running",
        Duration::from_secs(120),
        || async {
            let list = app_pods
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let running = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            (running == 5).then_some(()).ok_or(format!("{running}/5"))
        },
    )
    .await;
    wait_served(&lab, Duration::from_secs(60)).await;
    // Exactly one node answers ARP for it.
    let macs = lab.arp_answers("client", "10.0.0.150", 3).unwrap();
    let distinct: std::collections::BTreeSet<&String> = macs.iter().collect();
    assert_eq!(distinct.len(), 1, "ARP answers: {macs:?}");
    for node in ["10.0.0.231", "10.0.0.232", "10.0.0.233"] {
        let url = format!("http://{node}:30120/");
        let body = lab
            .exec_ok("client", &["curl", "-s", "-S", "--max-time", "2", &url])
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(body.contains("deploy-xiuxian"), "{url}: {body}");
    }

    // Uninstall: ironlb's objects all go.
    kubectl(&lab, &["delete", "-f", "-", "--wait=true"], Some(&manifest)).expect("uninstall");
    eventually("metallb-system gone", Duration::from_secs(120), || async {
        match kubectl(&lab, &["get", "namespace", "metallb-system"], None) {
            Err(e) if e.contains("NotFound") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_nothing_left(&lab);
}

/// The path of helm (built from its Go module, cached).
fn helm() -> std::path::PathBuf {
    components::tool_path("tools/helm/build.sh").expect("helm builds")
}

#[tokio::test(flavor = "multi_thread")]
async fn installs_with_the_chart_from_a_metallb_users_values_and_uninstalls() {
    // The chart's default image: ironlb/ironlb:<appVersion>.
    let (lab, client) = real_lab("0.1.0").await;
    // The user's values pin the controller to an infra node.
    kubectl(
        &lab,
        &["label", "node", "node1", "node-role.kubernetes.io/infra="],
        None,
    )
    .unwrap();
    // The lab's only change to what helm renders: the speaker never answers on the node's
    // management link to the host (a post-renderer, as a user's own patches would be).
    let post = lab.dir.join("helm-post-render.sh");
    std::fs::write(
        &post,
        "#!/bin/sh\nsed '/^        - speaker$/a\\        - --interfaces-exclude=mgmt0'\n",
    )
    .unwrap();
    std::fs::set_permissions(&post, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let values = components::checkout_path("crates/ironlb/tests/data/metallb-user-values.yaml");
    let out = std::process::Command::new(helm())
        .args(["install", "ironlb"])
        .arg(components::checkout_path("charts/ironlb"))
        .args(["-n", "metallb-system", "--create-namespace", "-f"])
        .arg(&values)
        // No Prometheus Operator in the lab.
        .args([
            "--set",
            "prometheus.serviceMonitor.enabled=false,prometheus.prometheusRule.enabled=false",
            "--post-renderer",
        ])
        .arg(&post)
        .env("KUBECONFIG", lab.kubeconfig())
        .output()
        .unwrap();
    let notes = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm install: {}{notes}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(notes.contains("frrk8s.enabled"), "{notes}");
    wait_installed(&client, "ironlb-controller", "ironlb-speaker").await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "metallb-system");
    // The lab's patch is in place: nothing answers on the management link.
    let ds = daemonsets.get("ironlb-speaker").await.unwrap();
    let args = ds.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap_or_default();
    assert!(
        args.contains(&"--interfaces-exclude=mgmt0".to_string()),
        "{args:?}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "metallb-system");
    let controller = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=controller"))
        .await
        .unwrap();
    assert_eq!(
        controller.items[0]
            .spec
            .as_ref()
            .unwrap()
            .node_name
            .as_deref(),
        Some("node1"),
        "the values' nodeSelector"
    );

    apply_walkthrough(&lab).await;
    wait_served(&lab, Duration::from_secs(120)).await;

    // helm uninstall removes everything it installed (the CRDs are templates here).
    kubectl(&lab, &["delete", "namespace", "haha", "--wait=true"], None).unwrap();
    let out = std::process::Command::new(helm())
        .args(["uninstall", "ironlb", "-n", "metallb-system", "--wait"])
        .env("KUBECONFIG", lab.kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("no ironlb Pod left", Duration::from_secs(60), || async {
        let left = pods
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        left.items
            .is_empty()
            .then_some(())
            .ok_or(format!("{} Pods", left.items.len()))
    })
    .await;
    assert_nothing_left(&lab);
}
