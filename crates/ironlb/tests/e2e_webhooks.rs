//! End to end in the lab: the real kube-apiserver calls the controller's webhook (url client
//! config on 127.0.0.1, caBundle injected by the controller) and `kubectl apply` of a bad object
//! of every kind fails with a message naming the field; the BGPPeer conversion endpoint answers
//! over the same TLS; and the shipped deploy/controller manifests and deploy/ironlb-native.yaml
//! pass a server-side dry run.
#![allow(clippy::unwrap_used)]

mod support;

use ironlb_api::v1beta1::{ConfigurationResult, ConfigurationState};
use ironlb_lab::testing::{apply_ok, eventually, kubectl};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use support::*;

fn rejected(env: &Env, yaml: &str, webhook: &str, needles: &[&str]) {
    let err = rejection(env, yaml, webhook, needles);
    // A real field error, not the blanket refusal of a feature this build lacks.
    assert!(!err.contains("not supported"), "{err}");
}

fn rejection(env: &Env, yaml: &str, webhook: &str, needles: &[&str]) -> String {
    let err = apply(&env.lab, yaml).expect_err(&format!("accepted:\n{yaml}"));
    assert!(
        err.contains(&format!(
            "admission webhook \"{webhook}\" denied the request"
        )),
        "not denied by {webhook}: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "message lacks {n:?}: {err}");
    }
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_objects_of_every_kind_are_rejected_naming_the_field() {
    let env = setup(true, &[]).await;
    let c = &env.client;

    // The CA the controller made is in its Secret and in every webhook's caBundle.
    let secrets: Api<Secret> = Api::namespaced(c.clone(), "metallb-system");
    let secret = secrets.get("metallb-webhook-cert").await.unwrap();
    let ca = secret.data.as_ref().unwrap()["ca.crt"].0.clone();
    let vwc: Api<ValidatingWebhookConfiguration> = Api::all(c.clone());
    let vwc = vwc.get("metallb-webhook-configuration").await.unwrap();
    let hooks = vwc.webhooks.unwrap();
    assert_eq!(hooks.len(), 6);
    for h in &hooks {
        assert_eq!(
            h.client_config.ca_bundle.as_ref().unwrap().0,
            ca,
            "{}",
            h.name
        );
    }
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let conv = crds
        .get("bgppeers.metallb.io")
        .await
        .unwrap()
        .spec
        .conversion
        .unwrap();
    assert_eq!(conv.strategy, "Webhook");

    // A good pool is accepted.
    apply_ok(&env.lab, &pool_yaml("good", &["10.0.0.150-10.0.0.180"], ""));
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: metallb-system}\nspec: {ipAddressPools: [good]}\n",
    );

    // A pool and the advertisement naming it, in one apply, right after each other: the
    // webhook must not judge the second from a cache that has not seen the first yet.
    for i in 0..5 {
        apply_ok(
            &env.lab,
            &format!(
                "{}---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2-burst-{i}, namespace: metallb-system}}\nspec: {{ipAddressPools: [burst-{i}]}}\n",
                pool_yaml(
                    &format!("burst-{i}"),
                    &[&format!("10.0.5.{}/32", 10 + i)],
                    ""
                )
            ),
        );
    }

    rejected(
        &env,
        &pool_yaml("bad", &["10.0.0.300-10.0.0.310"], ""),
        "ipaddresspoolvalidationwebhook.metallb.io",
        &["IPAddressPool \"bad\"", "spec.addresses[0]"],
    );
    rejected(
        &env,
        &pool_yaml("overlapping", &["10.0.0.160/28"], ""),
        "ipaddresspoolvalidationwebhook.metallb.io",
        &["spec.addresses", "good"],
    );
    rejected(
        &env,
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2bad, namespace: metallb-system}\nspec: {ipAddressPools: [good, good]}\n",
        "l2advertisementvalidationwebhook.metallb.io",
        &["spec.ipAddressPools[1]", "duplicate"],
    );
    // A pool that does not exist (yet) is no reason to refuse: MetalLB admits it too, and the
    // pool is picked up when it is created.
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2later, namespace: metallb-system}\nspec: {ipAddressPools: [later]}\n",
    );
    // The configuration loads without it, and says so.
    let states: Api<ConfigurationState> = Api::namespaced(c.clone(), "metallb-system");
    eventually(
        "ConfigurationState controller LoadedWithWarnings",
        std::time::Duration::from_secs(20),
        || async {
            let st = states.get("controller").await.ok()?.status?;
            let cond = st.conditions.first()?;
            (st.result == Some(ConfigurationResult::Valid)
                && cond.reason == "LoadedWithWarnings"
                && cond.message.contains(
                    "L2Advertisement \"l2later\": spec.ipAddressPools[0]: IPAddressPool \"later\"",
                ))
            .then_some(())
        },
    )
    .await;
    // Selectors are as strict as MetalLB's: a repeated value in a match expression.
    rejected(
        &env,
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2dupvalue, namespace: metallb-system}\nspec: {nodeSelectors: [{matchExpressions: [{key: k, operator: In, values: [a, a]}]}]}\n",
        "l2advertisementvalidationwebhook.metallb.io",
        &[
            "spec.nodeSelectors[0].matchExpressions[0].values[1]",
            "duplicate value",
        ],
    );
    rejected(
        &env,
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgpbad, namespace: metallb-system}\nspec: {aggregationLength: 33}\n",
        "bgpadvertisementvalidationwebhook.metallb.io",
        &["spec.aggregationLength"],
    );
    rejected(
        &env,
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: peerbad, namespace: metallb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: \"10.0.0.1\", holdTime: 1s}\n",
        "bgppeersvalidationwebhook.metallb.io",
        &["spec.holdTime"],
    );
    // The deprecated version goes through the same rules (converted first).
    rejected(
        &env,
        "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: peerold, namespace: metallb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: \"10.0.0.1\", holdTime: 2s}\n",
        "bgppeersvalidationwebhook.metallb.io",
        &["spec.holdTime"],
    );
    // Native BGP is served: a good peer and advertisement are accepted...
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: peergood, namespace: metallb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: \"10.0.0.1\", enableGracefulRestart: true}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgpgood, namespace: metallb-system}\nspec: {ipAddressPools: [good], communities: [\"64512:1\", \"large:1:2:3\"]}\n",
    );
    // ... and so are an advertisement naming no existing pool and a peer naming a BFDProfile
    // and a Secret that do not exist yet (any apply order works, as in MetalLB).
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgpnopool, namespace: metallb-system}\nspec: {ipAddressPools: [nosuch], communities: [later-alias]}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: peerlater, namespace: metallb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: \"10.0.0.3\", bfdProfile: later, passwordSecret: {name: later}}\n",
    );
    // BFD is served (a peer naming a profile is accepted), with its Echo function: a profile
    // with echoMode is accepted.
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast, namespace: metallb-system}\nspec: {receiveInterval: 300}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: peerbfd, namespace: metallb-system}\nspec: {myASN: 64513, peerASN: 64512, peerAddress: \"10.0.0.2\", bfdProfile: fast}\n",
    );
    apply_ok(
        &env.lab,
        "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: echo, namespace: metallb-system}\nspec: {echoMode: true, echoInterval: 50}\n",
    );
    // localPref, as MetalLB judges it: advertisements that split a pool's Services by
    // serviceSelectors may differ (MetalLB's documented example); two without selectors may
    // not, unless no Node is selected by both (the webhook reads the Nodes).
    let pref_ad = |name: &str, pref: u32, extra: &str| {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec: {{ipAddressPools: [prefs], localPref: {pref}{extra}}}\n"
        )
    };
    apply_ok(
        &env.lab,
        &format!(
            "{}---\n{}---\n{}",
            pool_yaml("prefs", &["10.0.9.0/24"], ""),
            pref_ad(
                "pref-web",
                100,
                ", serviceSelectors: [{matchLabels: {app: web}}]"
            ),
            pref_ad(
                "pref-db",
                200,
                ", serviceSelectors: [{matchLabels: {app: db}}]"
            ),
        ),
    );
    apply_ok(&env.lab, &pref_ad("pref-all", 300, ""));
    rejected(
        &env,
        &pref_ad("pref-other", 400, ""),
        "bgpadvertisementvalidationwebhook.metallb.io",
        &[
            "BGPAdvertisement \"pref-other\"",
            "spec.localPref",
            "pref-all",
        ],
    );
    apply_ok(
        &env.lab,
        &pref_ad(
            "pref-nowhere",
            500,
            ", nodeSelectors: [{matchLabels: {zone: nowhere}}]",
        ),
    );
    rejected(
        &env,
        "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: bfd, namespace: default}\nspec: {receiveInterval: 300}\n",
        "bfdprofilevalidationwebhook.metallb.io",
        &["metadata.namespace"],
    );
    rejected(
        &env,
        "apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: combad, namespace: metallb-system}\nspec: {communities: [{name: x, value: \"1:2:3:4:5\"}]}\n",
        "communityvalidationwebhook.metallb.io",
        &["spec.communities[0].value"],
    );

    // Deleting a BFDProfile a peer uses is the one delete refused (as in MetalLB)...
    let out = env
        .lab
        .kubectl()
        .args(["-n", "metallb-system", "delete", "bfdprofile", "fast"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still used by BGPPeer \"peerbfd\""), "{err}");
    // ... and a pool an advertisement still names is deleted at once.
    kubectl(
        &env.lab,
        &["-n", "metallb-system", "delete", "ipaddresspool", "good"],
    );

    // The conversion endpoint over the same TLS, trusted through the CA from the Secret.
    let ca_file = env.lab.dir.join("webhook-ca.crt");
    std::fs::write(&ca_file, &ca).unwrap();
    let review = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "u1", "desiredAPIVersion": "metallb.io/v1beta2", "objects": [{
            "apiVersion": "metallb.io/v1beta1", "kind": "BGPPeer",
            "metadata": {"name": "p", "namespace": "metallb-system"},
            "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "10.0.0.1",
                     "nodeSelectors": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}]}}]},
    });
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca_file.to_str().unwrap(),
            "-H",
            "Content-Type: application/json",
            "-d",
        ])
        .arg(review.to_string())
        .arg(format!(
            "https://127.0.0.1:{}/convert",
            env.ctl.webhook_port
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["response"]["uid"], "u1");
    assert_eq!(answer["response"]["result"]["status"], "Success");
    let converted = &answer["response"]["convertedObjects"][0];
    assert_eq!(converted["apiVersion"], "metallb.io/v1beta2");
    assert_eq!(
        converted["spec"]["nodeSelectors"][0]["matchExpressions"][0]["values"][0],
        "a"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_manifests_pass_a_server_side_dry_run() {
    // A fresh lab: nothing of ironlb's installed. The Namespace is created for real first
    // (a dry run cannot create the namespace the other objects go into).
    let lab = ironlb_lab::Lab::start(ironlb_lab::LabOptions::for_test())
        .await
        .unwrap();
    let dir = ironlb_lab::components::deploy_dir().join("controller");
    kubectl(
        &lab,
        &["apply", "-f", dir.join("namespace.yaml").to_str().unwrap()],
    );
    let out = kubectl(
        &lab,
        &["apply", "--dry-run=server", "-f", dir.to_str().unwrap()],
    );
    for kind in [
        "namespace/metallb-system",
        "serviceaccount/controller",
        "clusterrole.rbac.authorization.k8s.io/metallb-system:controller",
        "clusterrolebinding.rbac.authorization.k8s.io/metallb-system:controller",
        "role.rbac.authorization.k8s.io/controller",
        "rolebinding.rbac.authorization.k8s.io/controller",
        "deployment.apps/controller",
        "service/metallb-webhook-service",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/metallb-webhook-configuration",
    ] {
        assert!(out.contains(kind), "{kind} missing from dry run:\n{out}");
    }
    assert_eq!(out.matches("(server dry run)").count(), 9, "{out}");

    // The one-file manifest, everything in it: the namespace, the CRDs (BGPPeer's with its
    // conversion webhook), both ServiceAccounts and RBAC, the webhook, both workloads.
    let native = ironlb_lab::components::deploy_dir().join("ironlb-native.yaml");
    let out = kubectl(
        &lab,
        &["apply", "--dry-run=server", "-f", native.to_str().unwrap()],
    );
    for kind in [
        "namespace/metallb-system",
        "customresourcedefinition.apiextensions.k8s.io/bgppeers.metallb.io",
        "customresourcedefinition.apiextensions.k8s.io/configurationstates.metallb.io",
        "serviceaccount/speaker",
        "clusterrole.rbac.authorization.k8s.io/metallb-system:speaker",
        "role.rbac.authorization.k8s.io/speaker",
        "deployment.apps/controller",
        "daemonset.apps/speaker",
        "service/metallb-webhook-service",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/metallb-webhook-configuration",
    ] {
        assert!(out.contains(kind), "{kind} missing from dry run:\n{out}");
    }
    assert_eq!(out.matches("(server dry run)").count(), 24, "{out}");
}
