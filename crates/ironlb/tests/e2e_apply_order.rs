//! End to end in the lab, through the real kube-apiserver and the controller's webhook: a
//! MetalLB user's files install unchanged in whatever order their tooling applies them, and
//! delete the same way (issue: admission exactly as MetalLB).
//!
//! ```text
//!   kubectl apply -f file   (pool, ad) and (ad, pool)    -> both created at the first try
//!   kubectl apply -f dir/   (1-ad.yaml before 2-pool.yaml) -> both created, a Warning printed
//!   kubectl delete -f file  (pool before ad)             -> both gone at the first try
//!   one file: pool + Service needing it                  -> IPAllocated, never AllocationFailed
//! ```
#![allow(clippy::unwrap_used)]

mod support;

use ironlb_lab::testing::{
    apply_ok, create_service, events, eventually, kubectl_get_json, wait_event,
};
use std::path::Path;
use std::process::Output;
use support::*;

const POOL: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: linuxnet\n  namespace: metallb-system\nspec:\n  addresses:\n  - 10.0.0.150-10.0.0.180\n";
const L2: &str = "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: xixi\n  namespace: metallb-system\nspec:\n  ipAddressPools:\n  - linuxnet\n";

fn run(env: &Env, args: &[&str]) -> Output {
    env.lab.kubectl().args(args).output().unwrap()
}

#[track_caller]
fn first_try(what: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed at the first try: {stderr}"
    );
    stderr
}

fn both_exist(env: &Env) -> bool {
    let get = |kind: &str, name: &str| {
        run(env, &["-n", "metallb-system", "get", kind, name])
            .status
            .success()
    };
    get("ipaddresspool", "linuxnet") && get("l2advertisement", "xixi")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_walkthroughs_file_applies_and_deletes_in_any_order() {
    let env = setup(true, &[]).await;
    let dir = env.lab.dir.join("apply-order");
    std::fs::create_dir_all(&dir).unwrap();

    for (name, docs) in [
        ("pool-first.yaml", [POOL, L2]),
        ("ad-first.yaml", [L2, POOL]),
    ] {
        let file = dir.join(name);
        write(&file, &docs.join("---\n"));
        let file = file.to_str().unwrap();
        let stderr = first_try(
            &format!("apply -f {name}"),
            &run(&env, &["apply", "-f", file]),
        );
        assert!(both_exist(&env), "{name}: both objects exist");
        if name == "ad-first.yaml" {
            // The advertisement came before its pool: admitted, and kubectl shows why it
            // is not used yet (the webhook's warning).
            assert!(
                stderr.contains("Warning:") && stderr.contains("IPAddressPool \"linuxnet\""),
                "no warning about the missing pool: {stderr}"
            );
        } else {
            assert!(!stderr.contains("Warning:"), "{stderr}");
        }
        // The walkthrough's delete: the pool goes first in pool-first.yaml.
        first_try(
            &format!("delete -f {name}"),
            &run(&env, &["delete", "-f", file]),
        );
        assert!(
            !run(
                &env,
                &["-n", "metallb-system", "get", "ipaddresspool", "linuxnet"]
            )
            .status
            .success()
        );
        assert!(
            !run(
                &env,
                &["-n", "metallb-system", "get", "l2advertisement", "xixi"]
            )
            .status
            .success()
        );
    }

    // `kubectl apply -f dir/` applies files in name order: the advertisement first.
    let sub = dir.join("dir");
    std::fs::create_dir_all(&sub).unwrap();
    write(&sub.join("1-l2advertisement.yaml"), L2);
    write(&sub.join("2-pool.yaml"), POOL);
    let sub = sub.to_str().unwrap();
    first_try("apply -f dir/", &run(&env, &["apply", "-f", sub]));
    assert!(both_exist(&env));

    // The configuration that loads in the end is whole: the controller hands out the pool's
    // first address, and its ConfigurationState is Valid without warnings.
    create_service(&env.client, "default", "web", 80, serde_json::json!({})).await;
    wait_exact(&env.client, "default", "web", &["10.0.0.150"]).await;
    let state = eventually(
        "ConfigurationState controller Valid with no warning",
        std::time::Duration::from_secs(20),
        || async {
            let v = kubectl_get_json(
                &env.lab,
                "metallb-system",
                "configurationstate",
                "controller",
            )
            .ok()?;
            let cond = &v["status"]["conditions"][0];
            (v["status"]["result"] == "Valid" && cond["reason"] == "Loaded").then_some(v)
        },
    )
    .await;
    assert_eq!(state["status"]["conditions"][0]["status"], "True");
    first_try("delete -f dir/", &run(&env, &["delete", "-f", sub]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_and_a_service_applied_together_record_no_allocation_failed() {
    let env = setup(true, &[]).await;
    // Each Service can only get an address from the pool in its own file (it asks for it by
    // annotation), so a Service judged before its pool is seen fails to allocate for an instant.
    for i in 0..6 {
        let yaml = format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: together-{i}\n  namespace: default\n  annotations:\n    metallb.io/address-pool: together-{i}\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n",
            pool_yaml(
                &format!("together-{i}"),
                &[&format!("10.0.7.{}/32", 10 + i)],
                ""
            )
        );
        // The Service first in the file too: both orders.
        let yaml = if i % 2 == 0 {
            yaml
        } else {
            let (pool, svc) = yaml.split_once("---\n").unwrap();
            format!("{svc}---\n{pool}")
        };
        apply_ok(&env.lab, &yaml);
    }
    for i in 0..6 {
        let name = format!("together-{i}");
        let want = format!("10.0.7.{}", 10 + i);
        wait_exact(&env.client, "default", &name, &[want.as_str()]).await;
        wait_event(&env.client, "default", &name, "IPAllocated", "").await;
    }
    // Longer than the grace the controller gives a failure before reporting it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for i in 0..6 {
        let name = format!("together-{i}");
        let evs = events(&env.client, "default", &name).await;
        let reasons: Vec<&str> = evs.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, vec!["IPAllocated"], "{name}: {evs:?}");
    }
    // A real failure is still reported: a pool that does not exist.
    apply_ok(
        &env.lab,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: nopool\n  namespace: default\n  annotations:\n    metallb.io/address-pool: nosuch\nspec:\n  type: LoadBalancer\n  ports:\n  - port: 80\n",
    );
    let note = wait_event(&env.client, "default", "nopool", "AllocationFailed", "").await;
    assert!(note.contains("nosuch"), "{note}");
}
