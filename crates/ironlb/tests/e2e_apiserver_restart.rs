//! End to end in the lab: the API server goes away and comes back. The controller's watches
//! resume, nothing is re-assigned (the Services are not even rewritten), and it goes on
//! serving: new Services get addresses, deleted ones free theirs.
#![allow(clippy::unwrap_used)]

mod support;

use ironlb_lab::Progress;
use ironlb_lab::proc::Daemon;
use ironlb_lab::testing::{apply_ok, create_service, events, wait_event};
use kube::ResourceExt;
use serde_json::json;
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn survives_an_api_server_restart() {
    let env = setup(false, &[]).await;
    let c = &env.client;
    apply_ok(&env.lab, &pool_yaml("p", &["10.0.0.150-10.0.0.159"], ""));
    create_service(c, "default", "a", 80, json!({})).await;
    create_service(c, "default", "b", 80, json!({})).await;
    wait_exact(c, "default", "a", &["10.0.0.150"]).await;
    wait_exact(c, "default", "b", &["10.0.0.151"]).await;
    let rv_a = get_service(c, "default", "a").await.resource_version();
    let rv_b = get_service(c, "default", "b").await.resource_version();

    let apiserver = Daemon::new(&env.lab.dir, "kube-apiserver");
    apiserver.stop(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        env.ctl.daemon.is_running(),
        "controller died with the API server"
    );
    let cp = env.lab.control_plane.clone();
    tokio::task::spawn_blocking(move || cp.start(&mut Progress::quiet("restart")))
        .await
        .unwrap()
        .unwrap();
    let c = &env.lab.client().await.unwrap();

    // Watches resume: new work is done...
    create_service(c, "default", "c", 80, json!({})).await;
    wait_exact(c, "default", "c", &["10.0.0.152"]).await;
    delete_service(c, "default", "a").await;
    create_service(c, "default", "d", 80, json!({})).await;
    wait_exact(c, "default", "d", &["10.0.0.150"]).await;
    // ... and nothing that was assigned was touched.
    assert!(env.ctl.daemon.is_running());
    assert_eq!(
        get_service(c, "default", "b").await.resource_version(),
        rv_b
    );
    assert!(rv_a.is_some());
    // b's Event may have been on its way when the API server stopped: it is retried, and
    // arrives once.
    wait_event(c, "default", "b", "IPAllocated", "").await;
    let evs = events(c, "default", "b").await;
    assert_eq!(
        evs.iter().filter(|e| e.reason == "IPAllocated").count(),
        1,
        "{evs:?}"
    );
}
