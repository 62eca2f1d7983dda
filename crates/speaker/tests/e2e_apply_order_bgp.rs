//! A full BGP configuration installs in any order, through the real webhook: the files of a
//! directory (a BFDProfile, a BGPPeer with a password Secret and that profile, a Community
//! alias, an advertisement using it, a pool) applied in reverse name order, each at the first
//! try, and the Secret last. Until the Secret exists, the ConfigurationState of the controller
//! and of the speaker say what is missing; once it exists, the MD5 session with FRR comes up
//! (with BFD) and the route carries the alias's community. Needs root and `cargo build -p ironlb`.
//!
//! ```text
//!   5-pool  4-bgpadvertisement  3-community  2-bgppeer  1-bfdprofile   (kubectl apply, in order)
//!        -> ConfigurationState speaker-node1: Invalid, "Secret \"bgp-auth\" not found"
//!           (the last valid configuration, the pool alone, keeps serving: no BGP yet)
//!   0-secret
//!        -> FRR: node1 Established (MD5), BFD up, 10.0.0.150/32 community 64512:7
//! ```
#![allow(clippy::unwrap_used)]

mod support;

use ironlb_lab::testing::{apply_ok, eventually, kubectl, kubectl_get_json};
use serde_json::Value;
use std::time::Duration;
use support::bgp::*;
use support::{Env, setup_with_webhook};

const FILES: [(&str, &str); 5] = [
    (
        "1-bfdprofile.yaml",
        "apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}
",
    ),
    (
        "2-bgppeer.yaml",
        "apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64512
  peerAddress: 10.0.0.1
  connectTime: 2s
  passwordSecret: {name: bgp-auth, namespace: metallb-system}
  bfdProfile: fast
  nodeSelectors:
  - matchLabels: {kubernetes.io/hostname: node1}
",
    ),
    (
        "3-community.yaml",
        "apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: tags, namespace: metallb-system}
spec:
  communities:
  - {name: lab-tag, value: \"64512:7\"}
",
    ),
    (
        "4-bgpadvertisement.yaml",
        "apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: ads, namespace: metallb-system}
spec:
  ipAddressPools: [bgpnet]
  communities: [lab-tag]
",
    ),
    (
        "5-pool.yaml",
        "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgpnet, namespace: metallb-system}
spec:
  addresses: [\"10.0.0.150-10.0.0.180\"]
",
    ),
];

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata: {name: bgp-auth, namespace: metallb-system}
type: kubernetes.io/basic-auth
stringData: {password: s3cret}
";

/// `status` of the ConfigurationState `name`, or Null.
fn configuration_state(env: &Env, name: &str) -> Value {
    kubectl_get_json(&env.lab, "metallb-system", "configurationstate", name)
        .map(|v| v["status"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bgp_configuration_applied_in_reverse_order_comes_up_once_its_secret_exists() {
    let env = setup_with_webhook(&[]).await;
    let node1 = "10.0.0.231";
    // FRR: node1's neighbor wants the MD5 password and BFD.
    env.lab
        .router
        .cli(&[
            "configure terminal",
            "bfd",
            "profile fast",
            "receive-interval 300",
            "transmit-interval 300",
            "exit",
            "exit",
            "router bgp 64512",
            &format!("neighbor {node1} password s3cret"),
            &format!("neighbor {node1} bfd profile fast"),
        ])
        .unwrap();

    let dir = env.lab.dir.join("bgp-config");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in FILES {
        std::fs::write(dir.join(name), text).unwrap();
    }
    // Reverse name order, each file at the first try.
    for (name, _) in FILES.iter().rev() {
        let out = env
            .lab
            .kubectl()
            .args(["apply", "-f"])
            .arg(dir.join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "apply -f {name} refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ingress = || async {
        let api: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(env.client.clone(), "default");
        api.get("web")
            .await
            .ok()
            .and_then(|s| s.status?.load_balancer?.ingress)
    };

    // Without the Secret the configuration cannot load: every component says why, naming the
    // peer and the field, and nothing is announced.
    for component in ["controller", "speaker-node1"] {
        eventually(
            &format!("{component} reports the missing Secret"),
            LIMIT,
            async || {
                let status = configuration_state(&env, component);
                let summary = status["errorSummary"].as_str().unwrap_or_default();
                if status["result"] == "Invalid"
                    && summary.contains("BGPPeer \"router\": spec.passwordSecret")
                    && summary.contains("Secret \"bgp-auth\" not found")
                    && status["conditions"][0]["reason"] == "ConfigError"
                {
                    Ok(())
                } else {
                    Err(status.to_string())
                }
            },
        )
        .await;
    }
    pod(&env, "web-1", "web", "node1", false).await;
    {
        let api: kube::Api<k8s_openapi::api::core::v1::Service> =
            kube::Api::namespaced(env.client.clone(), "default");
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "web"}},
        }))
        .unwrap();
        api.create(&Default::default(), &svc).await.unwrap();
    }
    // The last valid configuration (the pool alone, applied first) keeps serving: the Service
    // gets its address, but nothing is announced over BGP before the peer can be configured.
    let ip = loop {
        if let Some(i) = ingress().await.and_then(|i| i.into_iter().next()?.ip) {
            break i;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ip, "10.0.0.150");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(frr_state(&env, node1).unwrap_or_default(), "Established");
    assert!(next_hops(&env, "ipv4", "10.0.0.150/32").is_empty());
    let events = kubectl(
        &env.lab,
        &["-n", "metallb-system", "get", "events", "-o", "json"],
    );
    assert!(
        events.contains("ConfigurationInvalid") && events.contains("bgp-auth"),
        "no ConfigurationInvalid Event: {events}"
    );

    // The Secret arrives last (as from a sealed-secrets controller): everything comes up.
    apply_ok(&env.lab, SECRET);
    let prefix = "10.0.0.150/32";
    wait_next_hops(&env, "ipv4", prefix, &[node1]).await;
    assert_eq!(frr_state(&env, node1).unwrap(), "Established");
    let path = paths(&env, "ipv4", prefix);
    let community = path[0]["community"]["string"].as_str().unwrap_or_default();
    assert_eq!(community, "64512:7", "{path:?}");
    eventually("BFD up on FRR for node1", LIMIT, async || {
        let v = frr_json(&env, "show bfd peers json")?;
        let up = v
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["peer"] == node1 && p["status"] == "up");
        if up { Ok(()) } else { Err(v.to_string()) }
    })
    .await;
    for component in ["controller", "speaker-node1"] {
        eventually(&format!("{component} Valid"), LIMIT, async || {
            let status = configuration_state(&env, component);
            if status["result"] == "Valid" && status["conditions"][0]["status"] == "True" {
                Ok(())
            } else {
                Err(status.to_string())
            }
        })
        .await;
    }
}
