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

use ironlb_lab::testing::eventually;
use ironlb_lab::{Lab, LabOptions};
use ironlb_lab::{components, install};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::ListParams;
use std::time::Duration;

/// A lab with real nodes and ironlb's image (a static build, tagged `tag`) in every node.
async fn real_lab(tag: &str) -> (Lab, kube::Client) {
    let lab = Lab::start(LabOptions {
        real_nodes: true,
        ..LabOptions::for_test()
    })
    .await
    .expect("a lab with real nodes starts (needs root, containerd, runc, buildah)");
    install::import_ironlb_image(&lab, tag).expect("ironlb's image builds and is imported");
    let client = lab.client().await.unwrap();
    (lab, client)
}

/// Waits for the controller Deployment 1/1 and the speaker DaemonSet 3/3 in metallb-system.
fn wait_installed(lab: &Lab, controller: &str, speaker: &str) {
    for what in [format!("deploy/{controller}"), format!("ds/{speaker}")] {
        install::wait_rollout(lab, "metallb-system", &what, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

/// Waits until `http://10.0.0.150/` from `client` is answered by one of the walkthrough's Pods.
fn wait_served(lab: &Lab, limit: Duration) {
    let answer =
        install::wait_served(lab, "http://10.0.0.150/", limit).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(answer.contains("deploy-xiuxian"), "{answer}");
}

/// Nothing cluster-wide of ironlb (or MetalLB's names) is left.
fn assert_nothing_left(lab: &Lab) {
    let rest = install::kubectl(
        lab,
        &[
            "get",
            "crd,clusterrole,clusterrolebinding,validatingwebhookconfiguration",
            "-o",
            "name",
        ],
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
    install::apply_manifest(&lab, &manifest).expect("the manifest applies");
    wait_installed(&lab, "controller", "speaker");
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

    install::apply_walkthrough(&lab).expect("the walkthrough's files apply");
    let ip = install::wait_external_ip(&lab, "haha", "svc-xiuxian-lb", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(ip, install::WALKTHROUGH_IP);
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
    wait_served(&lab, Duration::from_secs(60));
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
    let file = lab.dir.join("ironlb-native.yaml");
    std::fs::write(&file, &manifest).unwrap();
    let file = file.display().to_string();
    install::kubectl(&lab, &["delete", "-f", &file, "--wait=true"]).expect("uninstall");
    eventually("metallb-system gone", Duration::from_secs(120), || async {
        match install::kubectl(&lab, &["get", "namespace", "metallb-system"]) {
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
    install::kubectl(
        &lab,
        &["label", "node", "node1", "node-role.kubernetes.io/infra="],
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
    wait_installed(&lab, "ironlb-controller", "ironlb-speaker");
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

    install::apply_walkthrough(&lab).expect("the walkthrough's files apply");
    wait_served(&lab, Duration::from_secs(120));

    // helm uninstall removes everything it installed (the CRDs are templates here).
    install::kubectl(&lab, &["delete", "namespace", "haha", "--wait=true"]).unwrap();
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
