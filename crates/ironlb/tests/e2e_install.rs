//! End to end in the lab: what an install needs from the controller beyond allocation.
//!
//! - The BGPPeer CRD ships its conversion webhook (strategy Webhook, MetalLB's way) and the
//!   controller injects only the caBundle, so the CRDs re-applied over a running install, with
//!   client-side and with server-side apply, keep converting (in the lab, as for the validating
//!   webhooks, the Service reference is rewritten to a URL on 127.0.0.1).
//! - The controller creates the `memberlist` Secret when it is missing (owned by its
//!   Deployment when that exists) and never changes an existing one.
#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine;
use ironlb_lab::components;
use ironlb_lab::testing::{apply_ok, kubectl, kubectl_get_json};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

/// `kubectl get` of a BGPPeer in `version` as JSON, or kubectl's error.
fn get_peer(env: &Env, version: &str, name: &str) -> Result<Value, String> {
    let resource = format!("bgppeers.{version}.metallb.io");
    kubectl_get_json(&env.lab, "metallb-system", &resource, name)
}

/// A v1beta1 BGPPeer (`legacy-<n>`, its own peer address) with a legacy node selector
/// expression is written and read back in both versions through the API server.
fn conversion_works(env: &Env, n: u8) {
    let name = format!("legacy-{n}");
    apply_ok(
        &env.lab,
        &format!(
            "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec: {{myASN: 64513, peerASN: 64512, peerAddress: \"10.0.0.{}\", nodeSelectors: [{{matchExpressions: [{{key: rack, operator: In, values: [a]}}]}}]}}\n",
            n + 1
        ),
    );
    let expression = json!({"key": "rack", "operator": "In", "values": ["a"]});
    for version in ["v1beta2", "v1beta1"] {
        let peer =
            get_peer(env, version, &name).unwrap_or_else(|e| panic!("{name} as {version}: {e}"));
        assert_eq!(
            peer["apiVersion"],
            format!("metallb.io/{version}"),
            "{peer}"
        );
        assert_eq!(
            peer["spec"]["nodeSelectors"][0]["matchExpressions"][0], expression,
            "{name} as {version}: {peer}"
        );
    }
}

/// The caBundle of the BGPPeer CRD's conversion webhook, and the CRD's conversion as JSON.
async fn conversion_of(env: &Env) -> (Option<Vec<u8>>, Value) {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let conversion = crds
        .get("bgppeers.metallb.io")
        .await
        .unwrap()
        .spec
        .conversion
        .unwrap();
    let ca = conversion
        .webhook
        .as_ref()
        .and_then(|w| w.client_config.as_ref())
        .and_then(|c| c.ca_bundle.as_ref())
        .map(|b| b.0.clone());
    (ca, serde_json::to_value(conversion).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn crds_reapplied_over_a_running_install_keep_converting() {
    let env = setup(true, &[]).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "metallb-system");
    let ca = secrets
        .get("metallb-webhook-cert")
        .await
        .unwrap()
        .data
        .unwrap()["ca.crt"]
        .0
        .clone();
    let (injected, conversion) = conversion_of(&env).await;
    assert_eq!(
        injected.as_ref(),
        Some(&ca),
        "caBundle injected: {conversion}"
    );
    assert_eq!(conversion["strategy"], "Webhook");
    conversion_works(&env, 0);

    // The conversion goes through the controller: without it, v1beta1 cannot be read (the
    // stored v1beta2 still can).
    env.ctl.stop(false);
    let err = get_peer(&env, "v1beta1", "legacy-0").expect_err("v1beta1 read without the webhook");
    assert!(err.contains("conversion webhook"), "{err}");
    get_peer(&env, "v1beta2", "legacy-0").unwrap();
    env.ctl.start().unwrap();
    env.ctl.wait_ready(Duration::from_secs(30)).await.unwrap();

    // The CRDs as this lab installs them: deploy/crds, the conversion Service rewritten to the
    // controller's URL (components::lab_bgppeer_crd).
    let dir = env.lab.dir.join("crds-reapplied");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = components::deploy_dir().join("crds");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_owned();
        std::fs::copy(&path, dir.join(&file)).unwrap();
    }
    let lab_crd = components::lab_bgppeer_crd(env.ctl.webhook_port).unwrap();
    std::fs::write(
        dir.join("metallb.io_bgppeers.yaml"),
        serde_yaml::to_string(&lab_crd).unwrap(),
    )
    .unwrap();
    let dir = dir.to_str().unwrap();

    for ((how, args), i) in [
        ("client-side", vec!["apply", "-f", dir]),
        ("server-side", vec!["apply", "--server-side", "-f", dir]),
        // Again, now that both have been used.
        ("client-side again", vec!["apply", "-f", dir]),
        (
            "server-side again",
            vec!["apply", "--server-side", "-f", dir],
        ),
    ]
    .into_iter()
    .zip(1u8..)
    {
        let out = env.lab.kubectl().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{how} re-apply of the CRDs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (after, conversion) = conversion_of(&env).await;
        assert_eq!(
            after.as_ref(),
            Some(&ca),
            "{how}: caBundle kept: {conversion}"
        );
        assert_eq!(conversion["strategy"], "Webhook", "{how}");
        conversion_works(&env, i);
    }

    // The shipped files themselves, over the same install (what failed before with "should not
    // be set when strategy is not set to Webhook"): the API server takes them and the caBundle
    // stays. (In the lab the Service they name cannot be reached: the lab's form goes back on.)
    let shipped = shipped.to_str().unwrap();
    kubectl(&env.lab, &["apply", "--server-side", "-f", shipped]);
    let (after, conversion) = conversion_of(&env).await;
    assert_eq!(
        after.as_ref(),
        Some(&ca),
        "shipped CRDs: caBundle kept: {conversion}"
    );
    assert_eq!(
        conversion["webhook"]["clientConfig"]["service"]["name"], "metallb-webhook-service",
        "{conversion}"
    );
    kubectl(&env.lab, &["apply", "--server-side", "-f", dir]);
    conversion_works(&env, 9);
}

/// The memberlist Secret's key and owners, if it exists.
async fn memberlist(secrets: &Api<Secret>) -> Option<(Vec<u8>, Vec<(String, String)>)> {
    let s = secrets.get_opt("memberlist").await.unwrap()?;
    let key = s.data.unwrap_or_default().get("secretkey")?.0.clone();
    let owners = s
        .metadata
        .owner_references
        .unwrap_or_default()
        .into_iter()
        .map(|o| (format!("{}/{}", o.kind, o.name), o.uid))
        .collect();
    Some((key, owners))
}

async fn restart(env: &Env) {
    env.ctl.stop(false);
    env.ctl.start().unwrap();
    env.ctl.wait_ready(Duration::from_secs(30)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_controller_creates_the_memberlist_secret_when_missing_and_only_then() {
    // As the shipped Deployment runs it (METALLB_ML_SECRET_NAME, METALLB_DEPLOYMENT), with the
    // shipped RBAC; no Deployment exists yet in this lab.
    let env = setup(
        false,
        &[
            "--ml-secret-name",
            "memberlist",
            "--deployment",
            "controller",
        ],
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "metallb-system");
    let (first, owners) = memberlist(&secrets)
        .await
        .expect("memberlist Secret created");
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&first)
        .unwrap();
    assert_eq!(decoded.len(), 16, "16 random bytes, base64: {first:?}");
    assert!(owners.is_empty(), "no Deployment to own it: {owners:?}");

    // An existing Secret is never changed, whoever made it.
    let mine = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("memberlist".into()),
            ..Default::default()
        },
        data: Some(
            [(
                "secretkey".to_string(),
                k8s_openapi::ByteString(b"the user's own key".to_vec()),
            )]
            .into_iter()
            .collect(),
        ),
        ..Default::default()
    };
    secrets
        .replace("memberlist", &PostParams::default(), &mine)
        .await
        .unwrap();
    restart(&env).await;
    let (kept, _) = memberlist(&secrets).await.unwrap();
    assert_eq!(kept, b"the user's own key");

    // Missing again, with the controller's Deployment present: made anew, owned by it (so
    // deleting the Deployment deletes it).
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "metallb-system");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "controller", "namespace": "metallb-system"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "ironlb/ironlb:latest"}]}}},
    }))
    .unwrap();
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    secrets
        .delete("memberlist", &DeleteParams::default())
        .await
        .unwrap();
    restart(&env).await;
    let (second, owners) = memberlist(&secrets)
        .await
        .expect("memberlist Secret made anew");
    assert_ne!(second, first, "a fresh key");
    assert_eq!(second.len(), 22);
    assert_eq!(
        owners,
        vec![(
            "Deployment/controller".to_string(),
            deployment.metadata.uid.unwrap()
        )]
    );
}
