//! The committed `deploy/crds/*.yaml` and `deploy/ironlb-native.yaml` must be exactly what the
//! types and the parts in `deploy/` generate.

use std::path::PathBuf;

#[test]
fn committed_crds_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let hint = "deploy/crds is out of date: run `cargo run -p ironlb-api --bin crdgen` and commit the result";
    let mut expected_files = Vec::new();
    for (file, crd) in ironlb_api::crd::all() {
        let want = ironlb_api::crd::to_yaml(&crd).expect("CRD renders as YAML");
        let have = std::fs::read_to_string(dir.join(&file))
            .unwrap_or_else(|e| panic!("{file}: {e}; {hint}"));
        assert!(
            have == want,
            "{file} differs from the generated CRD; {hint}"
        );
        expected_files.push(file);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/crds exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "stray or missing CRD files; {hint}"
    );
}

#[test]
fn every_crd_is_namespaced_in_metallb_io_with_a_status_subresource() {
    let crds = ironlb_api::crd::all();
    assert_eq!(crds.len(), 9);
    for (_, crd) in crds {
        assert_eq!(crd.spec.group, "metallb.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        let storage: Vec<_> = crd.spec.versions.iter().filter(|v| v.storage).collect();
        assert_eq!(
            storage.len(),
            1,
            "{} has one storage version",
            crd.spec.names.kind
        );
        for v in &crd.spec.versions {
            assert!(
                v.subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some()
            );
        }
    }
}

#[test]
fn bgppeer_serves_v1beta1_and_stores_v1beta2() {
    let (_, crd) = ironlb_api::crd::all()
        .into_iter()
        .find(|(f, _)| f == "metallb.io_bgppeers.yaml")
        .expect("bgppeers CRD");
    let versions: Vec<_> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage, v.deprecated))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("v1beta1", true, false, Some(true)),
            ("v1beta2", true, true, None)
        ]
    );
    // Converted by the controller's webhook behind its Service, as MetalLB ships it; the
    // controller injects only the caBundle, so the manifest carries none.
    let conversion = crd.spec.conversion.as_ref().expect("a conversion");
    assert_eq!(conversion.strategy, "Webhook");
    let webhook = conversion.webhook.as_ref().expect("a conversion webhook");
    assert_eq!(webhook.conversion_review_versions, vec!["v1".to_string()]);
    let client = webhook.client_config.as_ref().expect("a client config");
    assert_eq!(client.ca_bundle, None);
    assert_eq!(client.url, None);
    let service = client.service.as_ref().expect("a Service reference");
    assert_eq!(
        (
            service.name.as_str(),
            service.namespace.as_str(),
            service.path.as_deref()
        ),
        (
            "metallb-webhook-service",
            "metallb-system",
            Some("/convert")
        )
    );
}

#[test]
fn schemas_carry_metallb_ranges_defaults_and_cel_rules() {
    let all: String = ironlb_api::crd::all()
        .iter()
        .map(|(_, c)| ironlb_api::crd::to_yaml(c).expect("yaml"))
        .collect();
    for needle in [
        "minimum: 10\n",
        "maximum: 60000\n",
        "minimum: 2\n",
        "maximum: 255\n",
        "maximum: 254\n",
        "maximum: 16384\n",
        "maximum: 4294967295\n",
        "default: 179\n",
        "default: 32\n",
        "default: 128\n",
        "rule: self == oldSelf",
        "duration(self).getSeconds() >= 1",
        "self.serviceSelectors.size() == 0",
        "- internal\n",
        "- external\n",
    ] {
        assert!(all.contains(needle), "generated CRDs lack {needle:?}");
    }
}

#[test]
fn committed_native_manifest_matches_the_parts() {
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let want = ironlb_api::manifest::native(&deploy).expect("the parts of deploy/ read");
    let have = std::fs::read_to_string(deploy.join(ironlb_api::manifest::NATIVE_FILE))
        .unwrap_or_else(|e| panic!("deploy/ironlb-native.yaml: {e}"));
    assert!(
        have == want,
        "deploy/ironlb-native.yaml differs from its parts: run `cargo run -p ironlb-api --bin crdgen` and commit the result"
    );
}

#[test]
fn native_manifest_holds_every_object_under_metallbs_names() {
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let text = ironlb_api::manifest::native(&deploy).expect("the parts of deploy/ read");
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).expect("YAML document");
        if v.is_null() {
            continue;
        }
        let name = v["metadata"]["name"].as_str().expect("a name").to_string();
        objects.push(format!("{}/{name}", v["kind"].as_str().expect("a kind")));
    }
    // The namespace comes first and the CRDs before anything else, so one apply works.
    assert_eq!(objects[0], "Namespace/metallb-system");
    assert!(
        objects[1..10]
            .iter()
            .all(|o| o.starts_with("CustomResourceDefinition/"))
    );
    for want in [
        "CustomResourceDefinition/bgppeers.metallb.io",
        "CustomResourceDefinition/ipaddresspools.metallb.io",
        "ServiceAccount/controller",
        "ServiceAccount/speaker",
        "ClusterRole/metallb-system:controller",
        "ClusterRole/metallb-system:speaker",
        "ClusterRoleBinding/metallb-system:controller",
        "ClusterRoleBinding/metallb-system:speaker",
        "Role/controller",
        "RoleBinding/controller",
        "Service/metallb-webhook-service",
        "ValidatingWebhookConfiguration/metallb-webhook-configuration",
        "Deployment/controller",
        "DaemonSet/speaker",
    ] {
        assert!(
            objects.iter().any(|o| o == want),
            "{want} missing: {objects:?}"
        );
    }
    assert_eq!(objects.len(), 24, "{objects:?}");
}
