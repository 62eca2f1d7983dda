//! End to end in the lab: the controller renews its webhook certificate by itself (a short
//! validity here: 30 s, renewed with a third left), keeps it in its Secret, injects each new
//! CA as the caBundle — and the real kube-apiserver keeps calling the webhook successfully the
//! whole time: every admission request during two rotations gets the webhook's own verdict,
//! never a TLS failure.
#![allow(clippy::unwrap_used)]

mod support;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use std::time::{Duration, Instant};
use support::*;

async fn secret_ca(env: &Env) -> Vec<u8> {
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), "metallb-system");
    let secret = secrets.get("metallb-webhook-cert").await.unwrap();
    secret.data.unwrap()["ca.crt"].0.clone()
}

async fn bundles(env: &Env) -> Vec<Vec<u8>> {
    let vwc: Api<ValidatingWebhookConfiguration> = Api::all(env.client.clone());
    let vwc = vwc.get("metallb-webhook-configuration").await.unwrap();
    vwc.webhooks
        .unwrap()
        .into_iter()
        .map(|h| h.client_config.ca_bundle.unwrap().0)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_certificate_rotates_without_a_failed_admission() {
    let env = setup(true, &["--cert-validity-secs", "30"]).await;
    let first = secret_ca(&env).await;
    let mut current = first.clone();
    let mut rotations = 0;
    let mut admissions = 0;
    let start = Instant::now();
    // Two renewals (about every 20 s), then until the caBundle holds only the newest CA.
    while start.elapsed() < Duration::from_secs(75) {
        // A bad pool: must be denied by the webhook itself, not fail to reach it.
        let err = apply(
            &env.lab,
            &pool_yaml(&format!("bad{admissions}"), &["10.0.0.300/32"], ""),
        )
        .expect_err("a bad pool was accepted");
        assert!(
            err.contains(
                "admission webhook \"ipaddresspoolvalidationwebhook.metallb.io\" denied the request"
            ) && err.contains("spec.addresses[0]"),
            "admission failed during rotation {rotations}: {err}"
        );
        admissions += 1;
        let ca = secret_ca(&env).await;
        if ca != current {
            rotations += 1;
            current = ca;
        }
        if rotations >= 2 {
            let b = bundles(&env).await;
            if b.iter().all(|b| *b == current) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        rotations >= 2,
        "{rotations} rotations in {:?}",
        start.elapsed()
    );
    assert_ne!(first, current);
    let b = bundles(&env).await;
    assert_eq!(b.len(), 6);
    assert!(
        b.iter().all(|b| *b == current),
        "the caBundle does not settle on the newest CA alone"
    );
    assert!(admissions >= 20, "only {admissions} admissions checked");
    env.lab.down();
}
