//! End-to-end checks of the lab itself: the real API server, controllers and scheduler, RBAC with
//! ServiceAccount tokens, the namespaced LAN, the routers, and a complete teardown.
//! Needs root (network namespaces); CI runs as root.

use futures::{StreamExt, TryStreamExt};
use ironlb_lab::testing::{
    create_service, eventually, on_kube_ipvs0, set_status_addresses, wait_kube_ipvs0,
};
use ironlb_lab::{Lab, LabOptions, RouterKind};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::time::Duration;

async fn lab() -> Lab {
    Lab::start(LabOptions::for_test())
        .await
        .expect("lab starts (needs root)")
}

#[tokio::test(flavor = "multi_thread")]
async fn service_is_created_watched_and_updated_through_kube_rs() {
    let lab = lab().await;
    let client = lab.client().await.expect("admin client");
    let services: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}},
    }))
    .expect("service json");
    let created = services
        .create(&PostParams::default(), &svc)
        .await
        .expect("create");
    let cluster_ip: std::net::Ipv4Addr = created
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .expect("the API server allocates a ClusterIP")
        .parse()
        .expect("ClusterIP is IPv4");
    let range: ipnet::Ipv4Net = ironlb_lab::controlplane::SERVICE_CIDR
        .parse()
        .expect("cidr");
    assert!(range.contains(&cluster_ip), "{cluster_ip} is in {range}");

    let mut events = watcher(
        services.clone(),
        watcher::Config::default().fields("metadata.name=web"),
    )
    .applied_objects()
    .boxed();
    let first = events
        .try_next()
        .await
        .expect("watch")
        .expect("initial object");
    assert_eq!(first.metadata.labels, None);
    let patch = json!({"metadata": {"labels": {"tier": "front"}}});
    services
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("update");
    let updated = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .expect("update event within 10 s")
        .expect("watch")
        .expect("an object");
    assert_eq!(
        updated
            .metadata
            .labels
            .and_then(|l| l.get("tier").cloned())
            .as_deref(),
        Some("front")
    );
    lab.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_is_dual_stack_for_services() {
    let lab = lab().await;
    let client = lab.client().await.expect("admin client");
    let services: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "dual"},
        "spec": {
            "type": "LoadBalancer", "ipFamilyPolicy": "RequireDualStack",
            "ipFamilies": ["IPv4", "IPv6"], "ports": [{"port": 80}],
        },
    }))
    .expect("service json");
    let created = services
        .create(&PostParams::default(), &svc)
        .await
        .expect("create");
    let ips: Vec<std::net::IpAddr> = created
        .spec
        .and_then(|s| s.cluster_ips)
        .unwrap_or_default()
        .iter()
        .map(|ip| ip.parse().expect("a ClusterIP"))
        .collect();
    let v6: ipnet::Ipv6Net = ironlb_lab::controlplane::SERVICE_CIDR_V6
        .parse()
        .expect("cidr");
    assert_eq!(ips.len(), 2, "{ips:?}");
    assert!(ips[0].is_ipv4(), "{ips:?}");
    assert!(
        matches!(ips[1], std::net::IpAddr::V6(ip) if v6.contains(&ip)),
        "{ips:?}"
    );
    lab.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_of_five_replicas_becomes_five_ready_endpoints() {
    let lab = lab().await;
    let client = lab.client().await.expect("admin client");
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "haha"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "deploy-xiuxian"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"version": "v1"}},
            "template": {
                "metadata": {"labels": {"version": "v1"}},
                "spec": {"containers": [{"name": "xiuxian", "image": "apps:v1"}]},
            },
        },
    }))
    .expect("deployment json");
    Api::<Deployment>::namespaced(client.clone(), "haha")
        .create(&PostParams::default(), &deploy)
        .await
        .expect("deployment");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "svc-xiuxian-lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"version": "v1"}},
    }))
    .expect("service json");
    Api::<Service>::namespaced(client.clone(), "haha")
        .create(&PostParams::default(), &svc)
        .await
        .expect("service");

    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "haha");
    let nodes = lab.topo.node_names();
    eventually("5 ready endpoints", Duration::from_secs(120), async || {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=svc-xiuxian-lb"))
            .await
            .map_err(|e| e.to_string())?;
        let ready: Vec<_> = list
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .collect();
        // Every endpoint sits on one of the lab's nodes, with a pod IP of its own.
        for e in &ready {
            let node = e.node_name.clone().unwrap_or_default();
            if !nodes.contains(&node) {
                return Err(format!("endpoint on unknown node {node:?}"));
            }
        }
        let mut ips: Vec<_> = ready.iter().flat_map(|e| e.addresses.clone()).collect();
        ips.sort();
        ips.dedup();
        if ready.len() == 5 && ips.len() == 5 {
            Ok(())
        } else {
            Err(format!("{} ready, addresses {ips:?}", ready.len()))
        }
    })
    .await;
    lab.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn service_account_is_denied_what_rbac_does_not_allow() {
    let lab = lab().await;
    let admin = lab.client().await.expect("admin client");
    let sa = lab
        .client_for_service_account("default", "reader")
        .await
        .expect("service account client");
    // Nothing granted yet: even listing Secrets in its own namespace is forbidden.
    let err = Api::<Secret>::namespaced(sa.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect_err("listing secrets must be denied");
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403, got {other}"),
    }
    // Grant exactly "list services in default" and the same token can do that, and only that.
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "svc-reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "svc-reader", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "svc-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}],
    });
    let pp = PatchParams::apply("test");
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(admin.clone(), "default")
        .patch("svc-reader", &pp, &Patch::Apply(&role))
        .await
        .expect("role");
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin, "default")
        .patch("svc-reader", &pp, &Patch::Apply(&binding))
        .await
        .expect("binding");
    let services: Api<Service> = Api::namespaced(sa.clone(), "default");
    eventually(
        "the granted list to succeed",
        Duration::from_secs(10),
        async || {
            services
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;
    let err = Api::<Service>::namespaced(sa, "kube-system")
        .list(&ListParams::default())
        .await
        .expect_err("other namespaces stay forbidden");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err}"
    );
    lab.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn client_reaches_every_node_over_ipv4_and_ipv6_and_ext_client_through_the_router() {
    let lab = lab().await;
    for node in lab.topo.node_hosts() {
        for addr in [node.ipv4.to_string(), node.ipv6.to_string()] {
            lab.exec_ok("client", &["ping", "-c", "1", "-W", "2", &addr])
                .unwrap_or_else(|e| panic!("client -> {} ({addr}): {e}", node.name));
        }
        let body = lab
            .exec_ok(
                "ext-client",
                &[
                    "curl",
                    "-s",
                    "--max-time",
                    "3",
                    &format!("http://{}/", node.ipv4),
                ],
            )
            .expect("ext-client reaches a node through the router");
        assert_eq!(
            body.trim(),
            node.name,
            "the node's HTTP server names its node"
        );
        let body6 = lab
            .exec_ok(
                "client",
                &[
                    "curl",
                    "-s",
                    "--max-time",
                    "3",
                    &format!("http://[{}]/", node.ipv6),
                ],
            )
            .expect("client reaches a node over IPv6");
        assert_eq!(body6.trim(), node.name);
    }
    // The MACs are the ones the lab reports, so tests can tell ARP answers apart.
    let status = lab.status().expect("status");
    let node1 = lab.topo.node(1);
    let eth0 = status["hosts"]["node1"]["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .find(|i| i["name"] == "eth0")
        .expect("eth0")
        .clone();
    assert_eq!(eth0["mac"], node1.mac);
    // Strict ARP as kube-proxy IPVS sets it.
    let arp_ignore = lab
        .exec_ok("node1", &["sysctl", "-n", "net.ipv4.conf.all.arp_ignore"])
        .expect("sysctl");
    assert_eq!(arp_ignore.trim(), "1");
    lab.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn frr_runs_in_the_router_namespace() {
    let lab = lab().await;
    let config = lab
        .router
        .cli(&["show running-config"])
        .expect("vtysh answers");
    assert!(config.contains("router bgp 64512"), "{config}");
    let summary = lab
        .router
        .cli(&["show bgp ipv4 unicast summary json"])
        .expect("summary");
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("FRR answers JSON");
    assert_eq!(summary["as"], 64512, "{summary}");
    assert_eq!(
        summary["peerCount"], 3,
        "one IPv4 neighbor per node: {summary}"
    );
    lab.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn bird_and_gobgp_run_in_the_router_namespace() {
    let bird = Lab::start(LabOptions {
        router: RouterKind::Bird,
        nodes: 2,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab with BIRD");
    let protocols = bird
        .router
        .cli(&["show", "protocols"])
        .expect("birdc answers");
    assert!(
        protocols.contains("node1v4") && protocols.contains("node2v6"),
        "{protocols}"
    );
    bird.down();
    let gobgp = Lab::start(LabOptions {
        router: RouterKind::Gobgp,
        nodes: 2,
        ..LabOptions::for_test()
    })
    .await
    .expect("lab with GoBGP");
    let neighbors = gobgp.router.cli(&["neighbor"]).expect("gobgp answers");
    assert!(
        neighbors.contains("10.0.0.231") && neighbors.contains("fd10::232"),
        "{neighbors}"
    );
    let global = gobgp.router.cli(&["global"]).expect("gobgp global");
    assert!(global.contains("64512"), "{global}");
    gobgp.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn down_leaves_nothing_behind() {
    let lab = lab().await;
    let name = lab.topo.lab.clone();
    let dir = lab.dir.clone();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("lab dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "pid") {
            let pid: i32 = std::fs::read_to_string(entry.path())
                .expect("pid file")
                .trim()
                .parse()
                .expect("pid");
            pids.push((entry.file_name(), pid));
        }
    }
    assert!(
        pids.len() >= 7,
        "etcd, apiserver, kcm, scheduler, frr, httpds: {pids:?}"
    );
    for (_, pid) in &pids {
        assert!(ironlb_lab::proc::pid_alive(*pid));
    }
    let topo = lab.topo.clone();
    assert!(
        !topo.leftovers().is_empty(),
        "namespaces exist while the lab runs"
    );
    lab.down();
    assert_eq!(
        topo.leftovers(),
        Vec::<String>::new(),
        "no namespace or host link of lab {name} is left"
    );
    assert!(!dir.exists(), "{} removed", dir.display());
    for (file, pid) in pids {
        assert!(
            !ironlb_lab::proc::pid_alive(pid),
            "{file:?} (pid {pid}) still running"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_lab_after_a_panic_tears_it_down() {
    let topo = {
        let lab = lab().await;
        let topo = lab.topo.clone();
        let handle = tokio::spawn(async move {
            let _lab = lab;
            panic!("a test failing half-way");
        });
        assert!(handle.await.is_err(), "the task panicked");
        topo
    };
    assert_eq!(topo.leftovers(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn load_balancer_addresses_sit_on_every_node_but_the_kernel_never_answers_arp_for_them() {
    let lab = lab().await;
    let client = lab.client().await.expect("admin client");
    create_service(&client, "default", "lb", 80, json!({})).await;
    // Play the load balancer controller: write an address into the Service's status.
    set_status_addresses(&client, "default", "lb", &["10.0.0.150", "fd10::150"]).await;
    wait_kube_ipvs0(&lab, &["10.0.0.150", "fd10::150"], Duration::from_secs(15)).await;
    // Each node serves the address locally (IPVS would), yet with strict ARP no kernel answers
    // ARP for it: only a load balancer speaker may.
    let local = lab
        .exec_ok(
            "node2",
            &["curl", "-s", "--max-time", "2", "http://10.0.0.150/"],
        )
        .expect("node serves the LB address locally");
    assert_eq!(local.trim(), "node2");
    assert_eq!(
        lab.arp_answers("client", "10.0.0.232", 1)
            .expect("arping runs"),
        vec![lab.topo.node(2).mac],
        "control: a node's own address is answered by that node"
    );
    assert_eq!(
        lab.arp_answers("client", "10.0.0.150", 2)
            .expect("arping runs"),
        Vec::<String>::new(),
        "nobody may answer ARP for 10.0.0.150 yet"
    );
    Api::<Service>::namespaced(client, "default")
        .delete("lb", &Default::default())
        .await
        .expect("delete");
    eventually(
        "the address removed from every node",
        Duration::from_secs(15),
        async || {
            lab.topo
                .node_names()
                .iter()
                .all(|n| !on_kube_ipvs0(&lab, n, "10.0.0.150"))
        },
    )
    .await;
    lab.down();
}
