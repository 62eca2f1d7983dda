//! The Helm chart `charts/ironlb`, rendered by a real helm (built from its Go module by
//! tools/helm/build.sh): it lints; with default values it renders what deploy/ ships; it takes
//! a MetalLB user's values file and MetalLB v0.16.2's own default values (read from MetalLB's
//! module, fetched through the Go module proxy) and applies what means something to ironlb; and
//! the lab's real kube-apiserver accepts what it renders (server-side dry run) and `helm
//! install` reports the values it does not apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde::Deserialize;
use serde_yaml::Value;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    root().join("charts/ironlb")
}

/// The path of the helm binary (built once, cached).
fn helm() -> PathBuf {
    ironlb_lab::components::tool_path("tools/helm/build.sh").expect("helm builds")
}

/// `helm template ironlb charts/ironlb -n metallb-system <args>` as YAML documents.
fn render(args: &[&str]) -> Vec<Value> {
    let out = Command::new(helm())
        .args(["template", "ironlb"])
        .arg(chart())
        .args(["-n", "metallb-system", "--kube-version", "1.34.4"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let all = find(docs, kind);
    assert_eq!(all.len(), 1, "exactly one {kind}");
    all[0]
}

fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

fn args(workload: &Value) -> Vec<String> {
    container(workload)["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn env(workload: &Value, name: &str) -> Option<Value> {
    container(workload)["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

#[test]
fn the_chart_lints() {
    let out = Command::new(helm())
        .args(["lint", "--strict"])
        .arg(chart())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "helm lint: {text}");
    assert!(text.contains("0 chart(s) failed"), "{text}");
}

#[test]
fn default_values_render_what_deploy_ships() {
    let docs = render(&[]);
    // The CRDs are deploy/crds' (the chart keeps a copy: they must not drift).
    let crd_dir = root().join("deploy/crds");
    let mut shipped: Vec<String> = std::fs::read_dir(&crd_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    for name in &shipped {
        let a = std::fs::read_to_string(crd_dir.join(name)).unwrap();
        let b = std::fs::read_to_string(chart().join("files/crds").join(name))
            .unwrap_or_else(|_| panic!("charts/ironlb/files/crds/{name} is missing"));
        assert_eq!(
            a, b,
            "charts/ironlb/files/crds/{name} differs from deploy/crds: copy it"
        );
    }
    assert_eq!(find(&docs, "CustomResourceDefinition").len(), shipped.len());

    let controller = one(&docs, "Deployment");
    assert_eq!(container(controller)["image"], "ironlb/ironlb:0.1.0");
    assert_eq!(args(controller)[0], "controller");
    assert!(args(controller).contains(&"--webhook-mode=enabled".to_string()));
    assert_eq!(
        controller["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        65534
    );
    assert_eq!(
        env(controller, "METALLB_ML_SECRET_NAME").unwrap()["value"],
        "ironlb-memberlist"
    );

    let speaker = one(&docs, "DaemonSet");
    let pod = &speaker["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(args(speaker)[0], "speaker");
    assert_eq!(
        container(speaker)["securityContext"]["capabilities"]["add"][0],
        "NET_RAW"
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "ironlb-memberlist"
    );
    // The speakers find each other by exactly the labels their Pods carry.
    let ml_labels = env(speaker, "METALLB_ML_LABELS").unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let pod_labels = &speaker["spec"]["template"]["metadata"]["labels"];
    for pair in ml_labels.split(',') {
        let (k, v) = pair.split_once('=').unwrap();
        assert_eq!(pod_labels[k], v, "{pair} on the speaker Pods");
    }

    // The webhook: six kinds, MetalLB's names, only BFDProfile deletes judged.
    let vwc = one(&docs, "ValidatingWebhookConfiguration");
    assert_eq!(vwc["metadata"]["name"], "metallb-webhook-configuration");
    let hooks = vwc["webhooks"].as_sequence().unwrap();
    assert_eq!(hooks.len(), 6);
    for h in hooks {
        let ops = h["rules"][0]["operations"].as_sequence().unwrap();
        let deletes = ops.iter().any(|o| o == "DELETE");
        assert_eq!(
            deletes,
            h["name"] == "bfdprofilevalidationwebhook.metallb.io",
            "{h:?}"
        );
        assert_eq!(
            h["clientConfig"]["service"]["name"],
            "metallb-webhook-service"
        );
    }
    assert!(find(&docs, "ServiceMonitor").is_empty());
    assert!(find(&docs, "PrometheusRule").is_empty());
}

#[test]
fn a_metallb_users_values_apply_where_they_mean_something() {
    let values = root().join("crates/ironlb/tests/data/metallb-user-values.yaml");
    let docs = render(&["-f", values.to_str().unwrap()]);
    let controller = one(&docs, "Deployment");
    let speaker = one(&docs, "DaemonSet");
    // MetalLB's images cannot run ironlb: ironlb's image instead (reported at install).
    for w in [controller, speaker] {
        assert_eq!(container(w)["image"], "ironlb/ironlb:0.1.0");
        assert!(
            args(w).contains(&"--port=9120".to_string()),
            "{:?}",
            args(w)
        );
        let ann = &w["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(ann["prometheus.io/scrape"], "true");
    }
    assert!(args(controller).contains(&"--log-level=debug".to_string()));
    assert!(args(speaker).contains(&"--log-level=warn".to_string()));
    assert!(args(speaker).contains(&"--ignore-exclude-lb".to_string()));
    assert!(args(speaker).contains(&"--gratuitous-arp-interval=30".to_string()));
    let cpod = &controller["spec"]["template"]["spec"];
    assert_eq!(cpod["priorityClassName"], "system-cluster-critical");
    assert_eq!(cpod["tolerations"][0]["value"], "infra");
    assert_eq!(cpod["nodeSelector"]["node-role.kubernetes.io/infra"], "");
    assert_eq!(
        container(controller)["resources"]["limits"]["memory"],
        "100Mi"
    );
    let spod = &speaker["spec"]["template"]["spec"];
    assert_eq!(spod["priorityClassName"], "system-node-critical");
    let tolerations = spod["tolerations"].as_sequence().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null())
    );
    assert_eq!(
        env(speaker, "METALLB_ML_BIND_PORT").unwrap()["value"],
        "7947"
    );
    // Prometheus Operator objects, plain HTTP, and MetalLB's alert names.
    let monitors = find(&docs, "ServiceMonitor");
    assert_eq!(monitors.len(), 2);
    for m in monitors {
        assert_eq!(m["spec"]["endpoints"][0]["scheme"], "http");
    }
    let rules = one(&docs, "PrometheusRule");
    let alerts: Vec<&str> = rules["spec"]["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    for want in [
        "MetalLBStaleConfig",
        "MetalLBConfigNotLoaded",
        "MetalLBAddressPoolExhausted",
        "MetalLBAddressPoolUsage75Percent",
        "MetalLBAddressPoolUsage95Percent",
        "MetalLBBGPSessionDown",
    ] {
        assert!(alerts.contains(&want), "{want} in {alerts:?}");
    }
    let exhausted = rules["spec"]["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == "MetalLBAddressPoolExhausted")
        .unwrap();
    assert!(
        exhausted["expr"]
            .as_str()
            .unwrap()
            .contains("pool!~\"^scratch-.*\""),
        "{exhausted:?}"
    );
}

/// MetalLB's own chart values (its module, fetched through the Go module proxy).
fn metallb_values() -> PathBuf {
    let module = ironlb_lab::components::tool_path("tools/metallb/fetch.sh")
        .expect("MetalLB's module is fetched");
    let path = module.join("charts/metallb/values.yaml");
    assert!(path.exists(), "{} is missing", path.display());
    path
}

#[test]
fn metallbs_own_default_values_install_ironlb() {
    let docs = render(&["-f", metallb_values().to_str().unwrap()]);
    let controller = one(&docs, "Deployment");
    let speaker = one(&docs, "DaemonSet");
    for w in [controller, speaker] {
        assert_eq!(container(w)["image"], "ironlb/ironlb:0.1.0");
    }
    // MetalLB's defaults: webhook on, memberlist on, CRDs included.
    assert!(args(controller).contains(&"--webhook-mode=enabled".to_string()));
    assert!(env(speaker, "METALLB_ML_SECRET_KEY_PATH").is_some());
    assert_eq!(find(&docs, "CustomResourceDefinition").len(), 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_accepts_what_the_chart_renders_and_install_reports_ignored_values() {
    let lab = ironlb_lab::Lab::start(ironlb_lab::LabOptions::for_test())
        .await
        .expect("lab starts (needs root)");
    let dir = lab.dir.join("chart");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = lab.kubeconfig();
    // Server-side dry run of everything the default values render (CRDs first, as helm does).
    let rendered = Command::new(helm())
        .args(["template", "ironlb"])
        .arg(chart())
        .args(["-n", "metallb-system", "--kube-version", "1.34.4"])
        .output()
        .unwrap();
    assert!(rendered.status.success());
    let file = dir.join("rendered.yaml");
    std::fs::write(&file, &rendered.stdout).unwrap();
    ironlb_lab::testing::kubectl(&lab, &["create", "namespace", "metallb-system"]);
    let out = lab
        .kubectl()
        .args(["apply", "--server-side", "--dry-run=server", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the API server refused the chart's objects: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `helm install` with a MetalLB user's values prints what it does not apply (NOTES).
    let values = root().join("crates/ironlb/tests/data/metallb-user-values.yaml");
    let out = Command::new(helm())
        .args(["install", "ironlb"])
        .arg(chart())
        .args(["-n", "metallb-system", "--dry-run=server", "-f"])
        .arg(&values)
        .args(["--set", "prometheus.serviceMonitor.enabled=false,prometheus.prometheusRule.enabled=false,crds.enabled=false"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm install --dry-run=server: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "Values that mean nothing to ironlb",
        "frrk8s.enabled",
        "controller.image.repository registry.example.internal/mirror/quay.io/metallb/controller",
        "speaker.image.repository",
        "tls.minVersion",
    ] {
        assert!(text.contains(needle), "NOTES lack {needle:?}:\n{text}");
    }
}
