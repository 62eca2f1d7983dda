//! One table test per validation rule, named after the rule; each asserts the field it names.

use ironlb_api::{LabelSelector, LabelSelectorRequirement, v1beta1, v1beta2};
use ironlb_config::{
    ConfigError, Context, Features, Object, ObjectKind, Objects, SecretData, admit, build,
    validate_delete, validate_object,
};
use std::collections::BTreeMap;

const NS: &str = "metallb-system";

fn ctx() -> Context {
    Context {
        namespace: NS.into(),
        features: Features::all(),
    }
}

fn pool(name: &str, addresses: &[&str]) -> v1beta1::IpAddressPool {
    v1beta1::IpAddressPool::new(
        name,
        NS,
        v1beta1::IpAddressPoolSpec {
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )
}

fn bgp_ad(name: &str, spec: v1beta1::BgpAdvertisementSpec) -> v1beta1::BgpAdvertisement {
    v1beta1::BgpAdvertisement::new(name, NS, spec)
}

fn peer_spec() -> v1beta2::BgpPeerSpec {
    v1beta2::BgpPeerSpec {
        my_asn: 64500,
        peer_asn: Some(64501),
        peer_address: Some("10.0.0.1".into()),
        ..Default::default()
    }
}

fn peer(name: &str, spec: v1beta2::BgpPeerSpec) -> v1beta2::BgpPeer {
    v1beta2::BgpPeer::new(name, NS, spec)
}

fn sel(key: &str, op: &str, values: &[&str]) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        }]),
        match_labels: None,
    }
}

fn errors(objects: &Objects) -> Vec<ConfigError> {
    errors_with(objects, &ctx())
}

fn errors_with(objects: &Objects, ctx: &Context) -> Vec<ConfigError> {
    match build(objects, ctx) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// Asserts some error is about `kind`/`name`/`field` and mentions `needle`.
#[track_caller]
fn assert_error(errs: &[ConfigError], kind: ObjectKind, name: &str, field: &str, needle: &str) {
    assert!(
        errs.iter().any(|e| e.kind == kind
            && e.name == name
            && e.field == field
            && e.message.contains(needle)),
        "no error {kind} {name:?} {field} ~ {needle:?} in {errs:#?}"
    );
}

fn pools_only(pools: Vec<v1beta1::IpAddressPool>) -> Objects {
    Objects {
        pools,
        ..Default::default()
    }
}

#[test]
fn valid_reference_scenario_builds() {
    let objects = Objects {
        pools: vec![pool("linuxnet", &["10.0.0.150-10.0.0.180"])],
        l2_advertisements: vec![v1beta1::L2Advertisement::new(
            "xixi",
            NS,
            v1beta1::L2AdvertisementSpec {
                ip_address_pools: vec!["linuxnet".into()],
                ..Default::default()
            },
        )],
        ..Default::default()
    };
    let config = build(&objects, &Context::default()).expect("valid");
    assert_eq!(config.pools[0].name, "linuxnet");
    assert_eq!(config.l2_advertisements[0].pools, vec!["linuxnet"]);
}

#[test]
fn error_display_names_object_and_field() {
    let errs = errors(&pools_only(vec![pool(
        "linuxnet",
        &["10.0.0.1/24", "10.0.0.300-10.0.0.310"],
    )]));
    let text = errs[0].to_string();
    assert!(
        text.starts_with(r#"IPAddressPool "linuxnet": spec.addresses[1]: "10.0.0.300-10.0.0.310" is not a valid range: "#),
        "{text}"
    );
}

#[test]
fn rule_pool_invalid_cidr() {
    let errs = errors(&pools_only(vec![pool("p", &["10.0.0.0/33"])]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.addresses[0]",
        "not a valid CIDR",
    );
    let errs = errors(&pools_only(vec![pool("p", &["10.0.0.1"])]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.addresses[0]",
        "not a valid CIDR",
    );
}

#[test]
fn rule_pool_invalid_range() {
    let errs = errors(&pools_only(vec![pool("p", &["10.0.0.1-banana"])]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.addresses[0]",
        "not a valid range",
    );
}

#[test]
fn rule_pool_range_start_after_end() {
    let errs = errors(&pools_only(vec![pool("p", &["10.0.0.9-10.0.0.1"])]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.addresses[0]",
        "is after the end",
    );
}

#[test]
fn rule_pool_range_mixed_family() {
    let errs = errors(&pools_only(vec![pool("p", &["10.0.0.1-fc00::1"])]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.addresses[0]",
        "different address families",
    );
}

#[test]
fn rule_pool_empty() {
    let errs = errors(&pools_only(vec![pool("p", &[])]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.addresses",
        "at least one",
    );
}

#[test]
fn rule_pools_overlap() {
    let errs = errors(&pools_only(vec![
        pool("a", &["10.0.0.0/24"]),
        pool("b", &["192.168.0.1/32", "10.0.0.100-10.0.1.5"]),
    ]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "a",
        "spec.addresses[0]",
        "overlaps",
    );
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "b",
        "spec.addresses[1]",
        "overlaps",
    );
    let errs = errors(&pools_only(vec![pool(
        "a",
        &["fc00::/64", "fc00::5-fc00::9"],
    )]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "a",
        "spec.addresses[1]",
        "overlaps",
    );
}

#[test]
fn rule_pool_duplicate_namespaces() {
    let mut p = pool("p", &["10.0.0.0/24"]);
    p.spec.service_allocation = Some(v1beta1::ServiceAllocation {
        namespaces: vec!["a".into(), "a".into()],
        ..Default::default()
    });
    let errs = errors(&pools_only(vec![p]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.serviceAllocation.namespaces[1]",
        "duplicate",
    );
}

#[test]
fn rule_pool_invalid_namespace() {
    let mut p = pool("p", &["10.0.0.0/24"]);
    p.spec.service_allocation = Some(v1beta1::ServiceAllocation {
        namespaces: vec!["Not_A_Namespace".into()],
        ..Default::default()
    });
    let errs = errors(&pools_only(vec![p]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.serviceAllocation.namespaces[0]",
        "not a valid namespace",
    );
}

#[test]
fn rule_duplicate_selectors() {
    let mut p = pool("p", &["10.0.0.0/24"]);
    p.spec.service_allocation = Some(v1beta1::ServiceAllocation {
        service_selectors: vec![sel("app", "In", &["a"]), sel("app", "In", &["a"])],
        ..Default::default()
    });
    let errs = errors(&pools_only(vec![p]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "spec.serviceAllocation.serviceSelectors[1]",
        "duplicate selector",
    );
}

#[test]
fn rule_invalid_selectors() {
    let mut p = pool("p", &["10.0.0.0/24"]);
    p.spec.service_allocation = Some(v1beta1::ServiceAllocation {
        namespace_selectors: vec![
            sel("app", "Near", &["a"]),
            sel("app", "In", &[]),
            sel("bad key!", "Exists", &[]),
        ],
        ..Default::default()
    });
    let errs = errors(&pools_only(vec![p]));
    let f = "spec.serviceAllocation.namespaceSelectors";
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        &format!("{f}[0].matchExpressions[0].operator"),
        "not a valid operator",
    );
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        &format!("{f}[1].matchExpressions[0].values"),
        "at least one value",
    );
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        &format!("{f}[2].matchExpressions[0].key"),
        "invalid label key",
    );
}

fn l2_ad(name: &str, pools: &[&str]) -> v1beta1::L2Advertisement {
    v1beta1::L2Advertisement::new(
        name,
        NS,
        v1beta1::L2AdvertisementSpec {
            ip_address_pools: pools.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        },
    )
}

#[test]
fn rule_l2_duplicate_pools() {
    let objects = Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        l2_advertisements: vec![l2_ad("l2", &["p", "p"])],
        ..Default::default()
    };
    let errs = errors(&objects);
    assert_error(
        &errs,
        ObjectKind::L2Advertisement,
        "l2",
        "spec.ipAddressPools[1]",
        "duplicate",
    );
}

#[test]
fn rule_missing_pool_is_skipped_with_a_warning_not_an_error() {
    // MetalLB skips a pool name that matches no pool; ironlb does too, and says so.
    let objects = Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        l2_advertisements: vec![l2_ad("l2", &["p", "gone"])],
        ..Default::default()
    };
    let config = build(&objects, &ctx()).expect("a missing pool does not invalidate");
    assert_eq!(config.l2_advertisements[0].pools, vec!["p".to_string()]);
    assert_error(
        &config.warnings,
        ObjectKind::L2Advertisement,
        "l2",
        "spec.ipAddressPools[1]",
        "does not exist",
    );
    // Admission: allowed, with the same warning; the pool created later is picked up.
    let verdict = admit(
        &Objects::default(),
        &ctx(),
        &Object::L2Advertisement(l2_ad("l2", &["p"])),
    );
    assert!(verdict.errors.is_empty(), "{verdict:#?}");
    assert_eq!(verdict.warnings.len(), 1, "{verdict:#?}");
    assert!(verdict.warnings[0].contains("IPAddressPool \"p\" does not exist"));
    let config = build(
        &Objects {
            pools: vec![pool("p", &["10.0.0.0/24"])],
            l2_advertisements: vec![l2_ad("l2", &["p"])],
            ..Default::default()
        },
        &ctx(),
    )
    .expect("the pool exists now");
    assert!(config.warnings.is_empty());
    assert_eq!(config.l2_advertisements[0].pools, vec!["p".to_string()]);
}

#[test]
fn rule_references_are_judged_at_load_not_at_admission() {
    // A peer naming a BFDProfile and a Secret that do not exist yet, an advertisement using
    // an alias that does not exist yet: admitted (with warnings), invalid when loaded.
    let p = peer(
        "p",
        v1beta2::BgpPeerSpec {
            bfd_profile: Some("fast".into()),
            password_secret: Some(k8s_openapi::api::core::v1::SecretReference {
                name: Some("md5".into()),
                namespace: None,
            }),
            ..peer_spec()
        },
    );
    let ad = bgp_ad(
        "ad",
        v1beta1::BgpAdvertisementSpec {
            communities: vec!["no-export-alias".into(), "64512:1".into()],
            ..Default::default()
        },
    );
    for object in [
        Object::Peer(p.clone()),
        Object::BgpAdvertisement(ad.clone()),
    ] {
        let verdict = admit(&Objects::default(), &ctx(), &object);
        assert!(verdict.errors.is_empty(), "{verdict:#?}");
        assert!(!verdict.warnings.is_empty(), "{verdict:#?}");
    }
    let objects = Objects {
        peers: vec![p.clone()],
        bgp_advertisements: vec![ad.clone()],
        ..Default::default()
    };
    let errs = errors(&objects);
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.bfdProfile",
        "does not exist",
    );
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.passwordSecret",
        "not found",
    );
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.communities[0]",
        "Community alias",
    );
    assert!(errs.iter().all(|e| e.reference), "{errs:#?}");
    // Once they exist, the same objects load.
    let objects = Objects {
        bfd_profiles: vec![v1beta1::BfdProfile::new("fast", NS, Default::default())],
        secrets: [(
            "md5".to_string(),
            SecretData {
                type_: Some("kubernetes.io/basic-auth".into()),
                data: [("password".to_string(), "pw".to_string())].into(),
            },
        )]
        .into(),
        communities: vec![v1beta1::Community::new(
            "c",
            NS,
            v1beta1::CommunitySpec {
                communities: vec![v1beta1::CommunityAlias {
                    name: "no-export-alias".into(),
                    value: "65535:65281".into(),
                }],
            },
        )],
        ..objects
    };
    let config = build(&objects, &ctx()).expect("resolved");
    assert_eq!(config.peers[0].password.as_deref(), Some("pw"));
    // A literal community that does not parse is refused at admission as before.
    let bad = bgp_ad(
        "bad",
        v1beta1::BgpAdvertisementSpec {
            communities: vec!["64512:99999999".into()],
            ..Default::default()
        },
    );
    let verdict = admit(&Objects::default(), &ctx(), &Object::BgpAdvertisement(bad));
    assert_error(
        &verdict.errors,
        ObjectKind::BgpAdvertisement,
        "bad",
        "spec.communities[0]",
        "",
    );
}

#[test]
fn rule_selector_duplicates_are_refused_as_in_metallb() {
    let expr = |key: &str, values: &[&str]| LabelSelectorRequirement {
        key: key.into(),
        operator: "In".into(),
        values: Some(values.iter().map(|s| s.to_string()).collect()),
    };
    let with = |exprs: Vec<LabelSelectorRequirement>| LabelSelector {
        match_expressions: Some(exprs),
        match_labels: None,
    };
    let field = "spec.nodeSelectors";
    // (selectors, expected field of the error, or None when admitted)
    let table: Vec<(Vec<LabelSelector>, Option<&str>, &str)> = vec![
        (vec![with(vec![expr("k", &["a", "b"])])], None, ""),
        (
            vec![with(vec![expr("k", &["a", "b", "a"])])],
            Some("[0].matchExpressions[0].values[2]"),
            "duplicate value \"a\"",
        ),
        (
            vec![with(vec![expr("k", &["a", "b"]), expr("k", &["b", "a"])])],
            Some("[0].matchExpressions[1]"),
            "duplicate match expression",
        ),
        (
            vec![with(vec![expr("k", &["a"]), expr("k", &["b"])])],
            None,
            "",
        ),
        (
            vec![
                with(vec![expr("k", &["a", "b"])]),
                with(vec![expr("k", &["b", "a"])]),
            ],
            Some("[1]"),
            "duplicate selector",
        ),
    ];
    for (selectors, want, needle) in table {
        let objects = Objects {
            pools: vec![pool("p", &["10.0.0.0/24"])],
            l2_advertisements: vec![v1beta1::L2Advertisement::new(
                "l2",
                NS,
                v1beta1::L2AdvertisementSpec {
                    node_selectors: selectors.clone(),
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        let errs = errors(&objects);
        match want {
            None => assert!(errs.is_empty(), "{selectors:?}: {errs:#?}"),
            Some(suffix) => assert_error(
                &errs,
                ObjectKind::L2Advertisement,
                "l2",
                &format!("{field}{suffix}"),
                needle,
            ),
        }
    }
}

#[test]
fn rule_local_pref_and_prepend_conflicts_skip_service_selectors() {
    let ad = |name: &str, local_pref: u32, prepend: Option<u8>, svc: bool| {
        bgp_ad(
            name,
            v1beta1::BgpAdvertisementSpec {
                ip_address_pools: vec!["p".into()],
                local_pref: Some(local_pref),
                as_path_prepend: prepend,
                service_selectors: if svc {
                    vec![sel("app", "In", &[name])]
                } else {
                    Vec::new()
                },
                ..Default::default()
            },
        )
    };
    let objects = |a, b| Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        bgp_advertisements: vec![a, b],
        nodes: nodes(&[&[("zone", "a")]]),
        ..Default::default()
    };
    // MetalLB's documented split of one pool's Services by serviceSelectors.
    assert!(errors(&objects(ad("a", 100, None, true), ad("b", 200, None, true))).is_empty());
    assert!(
        errors(&objects(
            ad("a", 100, None, true),
            ad("b", 200, None, false)
        ))
        .is_empty()
    );
    let errs = errors(&objects(
        ad("a", 100, None, false),
        ad("b", 200, None, false),
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "a",
        "spec.localPref",
        "conflicts",
    );
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "b",
        "spec.localPref",
        "conflicts",
    );
    // asPathPrepend follows the same rule.
    let errs = errors(&objects(
        ad("a", 100, Some(2), false),
        ad("b", 100, None, false),
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "a",
        "spec.asPathPrepend",
        "conflicts",
    );
    assert!(
        errs.iter().all(|e| e.field == "spec.asPathPrepend"),
        "{errs:#?}"
    );
    assert!(
        errors(&objects(
            ad("a", 100, Some(2), true),
            ad("b", 100, None, false)
        ))
        .is_empty()
    );
    let config = build(
        &objects(ad("a", 100, Some(3), false), ad("b", 100, Some(3), false)),
        &ctx(),
    )
    .expect("equal prepends do not conflict");
    assert_eq!(config.bgp_advertisements[0].as_path_prepend, 3);
    // Out of range (the CRD schema refuses it too) and not served by a build without it.
    let errs = errors(&objects(
        ad("a", 100, Some(11), false),
        ad("b", 100, None, true),
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "a",
        "spec.asPathPrepend",
        "1-10",
    );
    let no_prepend = Context {
        features: Features {
            as_path_prepend: false,
            ..Features::all()
        },
        ..ctx()
    };
    let errs = errors_with(
        &objects(ad("a", 100, Some(1), false), ad("b", 100, Some(1), true)),
        &no_prepend,
    );
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "a",
        "spec.asPathPrepend",
        "not supported",
    );
}

#[test]
fn rule_local_asn_replaces_my_asn_on_the_session() {
    let table = [
        // (myASN, localASN, peerASN, effective AS, eBGP multi-hop allowed)
        (64500, None, 64501, 64500, true),
        (64500, Some(65010), 64501, 65010, true),
        // localASN equal to the peer's AS makes the session iBGP: multi-hop is refused.
        (64500, Some(64501), 64501, 64501, false),
    ];
    for (my, local, remote, effective, multihop_ok) in table {
        let p = peer(
            "p",
            v1beta2::BgpPeerSpec {
                my_asn: my,
                local_asn: local,
                peer_asn: Some(remote),
                ebgp_multi_hop: Some(true),
                ..peer_spec()
            },
        );
        let objects = peers_only(vec![p]);
        match build(&objects, &ctx()) {
            Ok(config) => {
                assert!(multihop_ok);
                assert_eq!(config.peers[0].my_asn, effective);
            }
            Err(errs) => {
                assert!(!multihop_ok, "{errs:#?}");
                assert_error(&errs, ObjectKind::BgpPeer, "p", "spec.ebgpMultiHop", "iBGP");
            }
        }
    }
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            local_asn: Some(0),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.localASN",
        "must not be 0",
    );
}

#[test]
fn rule_disable_mp_is_admitted_with_a_deprecation_warning() {
    for disable_mp in [false, true] {
        let p = peer(
            "p",
            v1beta2::BgpPeerSpec {
                disable_mp,
                ..peer_spec()
            },
        );
        let verdict = admit(&Objects::default(), &ctx(), &Object::Peer(p));
        assert!(verdict.errors.is_empty(), "{verdict:#?}");
        assert_eq!(
            verdict
                .warnings
                .iter()
                .any(|w| w.contains("spec.disableMP is deprecated")),
            disable_mp,
            "{verdict:#?}"
        );
    }
}

fn with_ad(pools: Vec<v1beta1::IpAddressPool>, spec: v1beta1::BgpAdvertisementSpec) -> Objects {
    Objects {
        pools,
        bgp_advertisements: vec![bgp_ad("ad", spec)],
        ..Default::default()
    }
}

#[test]
fn rule_aggregation_length_out_of_range() {
    let errs = errors(&with_ad(
        vec![pool("p", &["10.0.0.0/24"])],
        v1beta1::BgpAdvertisementSpec {
            aggregation_length: Some(33),
            aggregation_length_v6: Some(0),
            ..Default::default()
        },
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.aggregationLength",
        "1-32",
    );
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.aggregationLengthV6",
        "1-128",
    );
}

#[test]
fn rule_aggregation_length_shorter_than_pool_prefix() {
    let errs = errors(&with_ad(
        vec![pool("p", &["10.0.0.0/24"])],
        v1beta1::BgpAdvertisementSpec {
            aggregation_length: Some(16),
            ..Default::default()
        },
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.aggregationLength",
        "shorter than the /24",
    );
    // A range: its lowest summarised mask (10.0.0.150-180 -> .160/28) decides.
    let ok = errors(&with_ad(
        vec![pool("p", &["10.0.0.150-10.0.0.180"])],
        v1beta1::BgpAdvertisementSpec {
            aggregation_length: Some(28),
            ..Default::default()
        },
    ));
    assert!(ok.is_empty(), "{ok:#?}");
    let errs = errors(&with_ad(
        vec![pool("p", &["10.0.0.150-10.0.0.180"])],
        v1beta1::BgpAdvertisementSpec {
            aggregation_length: Some(27),
            ..Default::default()
        },
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.aggregationLength",
        "/28",
    );
}

#[test]
fn rule_service_selectors_with_aggregation() {
    let errs = errors(&with_ad(
        vec![pool("p", &["10.0.0.0/24"])],
        v1beta1::BgpAdvertisementSpec {
            aggregation_length: Some(24),
            service_selectors: vec![sel("app", "Exists", &[])],
            ..Default::default()
        },
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.serviceSelectors",
        "non-default aggregation",
    );
}

#[test]
fn rule_malformed_community() {
    for bad in ["65536:1", "1:2:3", "large:1:2", "large:1:2:x"] {
        let errs = errors(&with_ad(
            vec![pool("p", &["10.0.0.0/24"])],
            v1beta1::BgpAdvertisementSpec {
                communities: vec![bad.into()],
                ..Default::default()
            },
        ));
        assert_error(
            &errs,
            ObjectKind::BgpAdvertisement,
            "ad",
            "spec.communities[0]",
            "not a valid",
        );
    }
}

#[test]
fn rule_unknown_community_alias() {
    let errs = errors(&with_ad(
        vec![pool("p", &["10.0.0.0/24"])],
        v1beta1::BgpAdvertisementSpec {
            communities: vec!["NO_SUCH_ALIAS".into()],
            ..Default::default()
        },
    ));
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.communities[0]",
        "Community alias",
    );
}

#[test]
fn rule_community_alias_resolves() {
    let mut objects = with_ad(
        vec![pool("p", &["10.0.0.0/24"])],
        v1beta1::BgpAdvertisementSpec {
            communities: vec!["NO_ADVERTISE".into(), "large:1:2:3".into()],
            ..Default::default()
        },
    );
    objects.communities = vec![v1beta1::Community::new(
        "c",
        NS,
        v1beta1::CommunitySpec {
            communities: vec![v1beta1::CommunityAlias {
                name: "NO_ADVERTISE".into(),
                value: "65535:65282".into(),
            }],
        },
    )];
    let config = build(&objects, &ctx()).expect("valid");
    assert_eq!(
        config.bgp_advertisements[0].communities[0].to_string(),
        "65535:65282"
    );
}

#[test]
fn rule_duplicate_community_alias() {
    let c = |name: &str| {
        v1beta1::Community::new(
            name,
            NS,
            v1beta1::CommunitySpec {
                communities: vec![v1beta1::CommunityAlias {
                    name: "A".into(),
                    value: "1:1".into(),
                }],
            },
        )
    };
    let errs = errors(&Objects {
        communities: vec![c("one"), c("two")],
        ..Default::default()
    });
    assert_error(
        &errs,
        ObjectKind::Community,
        "two",
        "spec.communities[0].name",
        "duplicate community alias",
    );
    assert_error(
        &errs,
        ObjectKind::Community,
        "one",
        "spec.communities",
        "duplicate community alias",
    );
}

#[test]
fn rule_community_alias_bad_value() {
    let c = v1beta1::Community::new(
        "c",
        NS,
        v1beta1::CommunitySpec {
            communities: vec![v1beta1::CommunityAlias {
                name: "A".into(),
                value: "70000:1".into(),
            }],
        },
    );
    let errs = errors(&Objects {
        communities: vec![c],
        ..Default::default()
    });
    assert_error(
        &errs,
        ObjectKind::Community,
        "c",
        "spec.communities[0].value",
        "16-bit",
    );
}

/// `Objects::nodes` with Nodes of these labels.
fn nodes(labels: &[&[(&str, &str)]]) -> Option<Vec<BTreeMap<String, String>>> {
    Some(
        labels
            .iter()
            .map(|l| {
                l.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect(),
    )
}

#[test]
fn rule_local_pref_conflicts_need_a_node_both_select() {
    let ad = |name: &str, local_pref: u32, zone: Option<&str>| {
        bgp_ad(
            name,
            v1beta1::BgpAdvertisementSpec {
                local_pref: Some(local_pref),
                node_selectors: zone
                    .map(|z| {
                        vec![LabelSelector {
                            match_labels: Some([("zone".to_string(), z.to_string())].into()),
                            match_expressions: None,
                        }]
                    })
                    .unwrap_or_default(),
                ..Default::default()
            },
        )
    };
    let with = |a, b, nodes| Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        bgp_advertisements: vec![a, b],
        nodes,
        ..Default::default()
    };
    let zones = || nodes(&[&[("zone", "a")], &[("zone", "b")]]);
    // (a's zone, b's zone, Nodes, conflict?) — MetalLB compares the Nodes both select.
    let table = [
        (None, None, zones(), true),
        (Some("a"), None, zones(), true),
        (Some("a"), Some("a"), zones(), true),
        (Some("a"), Some("b"), zones(), false),
        // Selectors that could overlap, but no Node has both labels.
        (Some("a"), Some("c"), zones(), false),
        // No Nodes at all, or Nodes unknown (the controller): nothing to conflict on.
        (None, None, Some(Vec::new()), false),
        (None, None, None, false),
    ];
    for (za, zb, nodes, conflict) in table {
        let errs = errors(&with(ad("a", 100, za), ad("b", 200, zb), nodes.clone()));
        assert_eq!(
            !errs.is_empty(),
            conflict,
            "{za:?} {zb:?} {nodes:?}: {errs:#?}"
        );
    }
}

#[test]
fn rule_conflicting_local_pref() {
    let objects = Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        bgp_advertisements: vec![
            bgp_ad(
                "a",
                v1beta1::BgpAdvertisementSpec {
                    local_pref: Some(100),
                    ..Default::default()
                },
            ),
            bgp_ad(
                "b",
                v1beta1::BgpAdvertisementSpec {
                    local_pref: Some(200),
                    ..Default::default()
                },
            ),
        ],
        nodes: nodes(&[&[]]),
        ..Default::default()
    };
    let errs = errors(&objects);
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "a",
        "spec.localPref",
        "conflicts",
    );
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "b",
        "spec.localPref",
        "conflicts",
    );
}

#[test]
fn rule_local_pref_on_disjoint_peers_is_fine() {
    let objects = Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        bgp_advertisements: vec![
            bgp_ad(
                "a",
                v1beta1::BgpAdvertisementSpec {
                    local_pref: Some(100),
                    peers: vec!["x".into()],
                    ..Default::default()
                },
            ),
            bgp_ad(
                "b",
                v1beta1::BgpAdvertisementSpec {
                    local_pref: Some(200),
                    peers: vec!["y".into()],
                    ..Default::default()
                },
            ),
        ],
        nodes: nodes(&[&[]]),
        ..Default::default()
    };
    assert!(errors(&objects).is_empty());
    // The same two on a shared peer do conflict (the rule is checked here).
    let mut shared = objects.clone();
    shared.bgp_advertisements[1].spec.peers = vec!["x".into()];
    assert!(!errors(&shared).is_empty());
}

#[test]
fn rule_local_pref_on_ebgp_is_allowed() {
    // Sent to iBGP peers only, as in MetalLB; an eBGP-only setup is not an error.
    let objects = Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        bgp_advertisements: vec![bgp_ad(
            "a",
            v1beta1::BgpAdvertisementSpec {
                local_pref: Some(100),
                ..Default::default()
            },
        )],
        peers: vec![peer("ebgp", peer_spec())],
        ..Default::default()
    };
    assert!(errors(&objects).is_empty());
}

fn peers_only(peers: Vec<v1beta2::BgpPeer>) -> Objects {
    Objects {
        peers,
        ..Default::default()
    }
}

#[test]
fn rule_peer_my_asn_zero() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            my_asn: 0,
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.myASN",
        "must not be 0",
    );
}

#[test]
fn rule_peer_missing_asn() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            peer_asn: None,
            ..peer_spec()
        },
    )]));
    assert_error(&errs, ObjectKind::BgpPeer, "p", "spec.peerASN", "required");
}

#[test]
fn rule_peer_double_asn() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            dynamic_asn: Some(v1beta2::DynamicAsn::External),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.dynamicASN",
        "mutually exclusive",
    );
}

#[test]
fn rule_peer_ebgp_multihop_on_ibgp() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            peer_asn: Some(64500),
            ebgp_multi_hop: Some(true),
            ..peer_spec()
        },
    )]));
    assert_error(&errs, ObjectKind::BgpPeer, "p", "spec.ebgpMultiHop", "iBGP");
}

#[test]
fn rule_peer_neither_address_nor_interface() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            peer_address: None,
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.peerAddress",
        "required",
    );
}

#[test]
fn rule_peer_both_address_and_interface() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            interface: Some("eth0".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.interface",
        "mutually exclusive",
    );
}

#[test]
fn rule_peer_hold_time_under_3s() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            hold_time: Some("2s".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.holdTime",
        "at least 3s",
    );
    let zero = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            hold_time: Some("0s".into()),
            keepalive_time: Some("0s".into()),
            ..peer_spec()
        },
    )]));
    assert!(zero.is_empty(), "hold time 0 is allowed: {zero:#?}");
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            hold_time: Some("soon".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.holdTime",
        "not a valid duration",
    );
}

#[test]
fn rule_peer_keepalive_above_hold() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            hold_time: Some("30s".into()),
            keepalive_time: Some("31s".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.keepaliveTime",
        "must not exceed",
    );
}

#[test]
fn rule_peer_bad_connect_time() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            connect_time: Some("1500ms".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.connectTime",
        "whole number",
    );
}

#[test]
fn rule_peer_bad_addresses() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            peer_address: Some("10.0.0.256".into()),
            source_address: Some("nope".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.peerAddress",
        "not a valid IP",
    );
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.sourceAddress",
        "not a valid IP",
    );
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            source_address: Some("fc00::1".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.sourceAddress",
        "address family",
    );
}

#[test]
fn rule_peer_bad_router_id() {
    for bad in ["10.0.0", "fc00::1"] {
        let errs = errors(&peers_only(vec![peer(
            "p",
            v1beta2::BgpPeerSpec {
                router_id: Some(bad.into()),
                ..peer_spec()
            },
        )]));
        assert_error(&errs, ObjectKind::BgpPeer, "p", "spec.routerID", "IPv4");
    }
}

#[test]
fn rule_peer_password_and_secret() {
    let mut objects = peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            password: Some("x".into()),
            password_secret: Some(k8s_openapi::api::core::v1::SecretReference {
                name: Some("s".into()),
                namespace: None,
            }),
            ..peer_spec()
        },
    )]);
    objects.secrets.insert(
        "s".into(),
        SecretData {
            type_: Some("kubernetes.io/basic-auth".into()),
            data: BTreeMap::from([("password".to_string(), "y".to_string())]),
        },
    );
    let errs = errors(&objects);
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.passwordSecret",
        "mutually exclusive",
    );
}

#[test]
fn rule_peer_password_secret_not_found_or_without_key() {
    let spec = v1beta2::BgpPeerSpec {
        password_secret: Some(k8s_openapi::api::core::v1::SecretReference {
            name: Some("s".into()),
            namespace: None,
        }),
        ..peer_spec()
    };
    let mut objects = peers_only(vec![peer("p", spec)]);
    assert_error(
        &errors(&objects),
        ObjectKind::BgpPeer,
        "p",
        "spec.passwordSecret",
        "not found",
    );
    objects.secrets.insert(
        "s".into(),
        SecretData {
            type_: Some("kubernetes.io/basic-auth".into()),
            data: BTreeMap::from([("username".to_string(), "y".to_string())]),
        },
    );
    assert_error(
        &errors(&objects),
        ObjectKind::BgpPeer,
        "p",
        "spec.passwordSecret",
        "no key \"password\"",
    );
    objects.secrets.insert(
        "s".into(),
        SecretData {
            type_: Some("kubernetes.io/basic-auth".into()),
            data: BTreeMap::from([("password".to_string(), "secret".to_string())]),
        },
    );
    let config = build(&objects, &ctx()).expect("valid");
    assert_eq!(config.peers[0].password.as_deref(), Some("secret"));
}

#[test]
fn rule_duplicate_identical_peers() {
    let errs = errors(&peers_only(vec![
        peer("a", peer_spec()),
        peer("b", peer_spec()),
    ]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "a",
        "spec",
        "identical to BGPPeer \"b\"",
    );
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "b",
        "spec",
        "identical to BGPPeer \"a\"",
    );
}

#[test]
fn rule_object_outside_namespace() {
    let mut p = pool("p", &["10.0.0.0/24"]);
    p.metadata.namespace = Some("default".into());
    let errs = errors(&pools_only(vec![p]));
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "p",
        "metadata.namespace",
        "ironlb's namespace",
    );
}

#[test]
fn rule_peer_missing_bfd_profile() {
    let errs = errors(&peers_only(vec![peer(
        "p",
        v1beta2::BgpPeerSpec {
            bfd_profile: Some("fast".into()),
            ..peer_spec()
        },
    )]));
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.bfdProfile",
        "does not exist",
    );
}

#[test]
fn rule_bfd_profile_out_of_range() {
    let b = v1beta1::BfdProfile::new(
        "b",
        NS,
        v1beta1::BfdProfileSpec {
            receive_interval: Some(5),
            detect_multiplier: Some(1),
            ..Default::default()
        },
    );
    let errs = errors(&Objects {
        bfd_profiles: vec![b],
        ..Default::default()
    });
    assert_error(
        &errs,
        ObjectKind::BfdProfile,
        "b",
        "spec.receiveInterval",
        "10-60000",
    );
    assert_error(
        &errs,
        ObjectKind::BfdProfile,
        "b",
        "spec.detectMultiplier",
        "2-255",
    );
}

#[test]
fn rule_bfd_profile_defaults_are_metallbs() {
    let profile = |spec: v1beta1::BfdProfileSpec| {
        let objects = Objects {
            bfd_profiles: vec![v1beta1::BfdProfile::new("b", NS, spec)],
            ..Default::default()
        };
        build(&objects, &ctx()).expect("valid").bfd_profiles["b"].clone()
    };
    let d = profile(Default::default());
    assert_eq!(
        (
            d.receive_interval,
            d.transmit_interval,
            d.detect_multiplier,
            d.echo_interval,
            d.minimum_ttl,
            d.echo_mode,
            d.passive_mode
        ),
        (300, 300, 3, 50, 254, false, false)
    );
    let p = profile(v1beta1::BfdProfileSpec {
        receive_interval: Some(100),
        transmit_interval: Some(200),
        detect_multiplier: Some(5),
        echo_interval: Some(20),
        echo_mode: Some(true),
        passive_mode: Some(true),
        minimum_ttl: Some(10),
    });
    assert_eq!(
        (
            p.receive_interval,
            p.transmit_interval,
            p.detect_multiplier,
            p.echo_interval,
            p.minimum_ttl,
            p.echo_mode,
            p.passive_mode
        ),
        (100, 200, 5, 20, 10, true, true)
    );
    // Each range's ends are accepted, one past them refused.
    for (field, spec) in [
        (
            "spec.echoInterval",
            v1beta1::BfdProfileSpec {
                echo_interval: Some(9),
                ..Default::default()
            },
        ),
        (
            "spec.detectMultiplier",
            v1beta1::BfdProfileSpec {
                detect_multiplier: Some(256),
                ..Default::default()
            },
        ),
        (
            "spec.minimumTtl",
            v1beta1::BfdProfileSpec {
                minimum_ttl: Some(255),
                ..Default::default()
            },
        ),
    ] {
        let errs = errors(&Objects {
            bfd_profiles: vec![v1beta1::BfdProfile::new("b", NS, spec)],
            ..Default::default()
        });
        assert_error(&errs, ObjectKind::BfdProfile, "b", field, "out of range");
    }
    let ends = profile(v1beta1::BfdProfileSpec {
        receive_interval: Some(10),
        transmit_interval: Some(60000),
        detect_multiplier: Some(255),
        minimum_ttl: Some(1),
        ..Default::default()
    });
    assert_eq!((ends.detect_multiplier, ends.minimum_ttl), (255, 1));
}

#[test]
fn rule_delete_referenced_bfd_profile() {
    let objects = Objects {
        peers: vec![peer(
            "p",
            v1beta2::BgpPeerSpec {
                bfd_profile: Some("fast".into()),
                ..peer_spec()
            },
        )],
        bfd_profiles: vec![v1beta1::BfdProfile::new("fast", NS, Default::default())],
        ..Default::default()
    };
    assert!(errors(&objects).is_empty());
    let errs = validate_delete(&objects, &ctx(), ObjectKind::BfdProfile, "fast");
    assert_error(
        &errs,
        ObjectKind::BfdProfile,
        "fast",
        "metadata.name",
        "still used by BGPPeer \"p\"",
    );
    assert!(validate_delete(&objects, &ctx(), ObjectKind::BgpPeer, "p").is_empty());
    // Every other delete is allowed, whatever names the object (MetalLB refuses only this one).
    let objects = Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        l2_advertisements: vec![l2_ad("l2", &["p"])],
        ..objects
    };
    for kind in [
        ObjectKind::IpAddressPool,
        ObjectKind::L2Advertisement,
        ObjectKind::BgpAdvertisement,
        ObjectKind::Community,
    ] {
        assert!(validate_delete(&objects, &ctx(), kind, "p").is_empty());
    }
    assert!(validate_delete(&objects, &ctx(), ObjectKind::BfdProfile, "other").is_empty());
}

#[test]
fn rule_unsupported_features_are_rejected_not_ignored() {
    let objects = Objects {
        pools: vec![pool("p", &["10.0.0.0/24"])],
        bgp_advertisements: vec![bgp_ad(
            "ad",
            v1beta1::BgpAdvertisementSpec {
                communities: vec!["large:1:2:3".into()],
                ..Default::default()
            },
        )],
        peers: vec![peer(
            "p",
            v1beta2::BgpPeerSpec {
                bfd_profile: Some("fast".into()),
                enable_graceful_restart: Some(true),
                vrf: Some("red".into()),
                ..peer_spec()
            },
        )],
        bfd_profiles: vec![v1beta1::BfdProfile::new("fast", NS, Default::default())],
        ..Default::default()
    };
    let nothing = Context {
        namespace: NS.into(),
        features: Features::default(),
    };
    let errs = errors_with(&objects, &nothing);
    for (kind, name, field) in [
        (ObjectKind::BgpPeer, "p", "spec"),
        (ObjectKind::BgpPeer, "p", "spec.bfdProfile"),
        (ObjectKind::BgpPeer, "p", "spec.enableGracefulRestart"),
        (ObjectKind::BgpPeer, "p", "spec.vrf"),
        (ObjectKind::BgpAdvertisement, "ad", "spec"),
        (ObjectKind::BgpAdvertisement, "ad", "spec.communities[0]"),
    ] {
        assert_error(
            &errs,
            kind,
            name,
            field,
            "is not supported by this ironlb build yet",
        );
    }
    assert!(errs.iter().all(|e| e.is_unsupported()), "{errs:#?}");
    // The native-BGP feature set takes all of it but VRF.
    let native = Context {
        namespace: NS.into(),
        features: Features::native_bgp(),
    };
    let errs = errors_with(&objects, &native);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_error(&errs, ObjectKind::BgpPeer, "p", "spec.vrf", "not supported");
}

#[test]
fn rule_bfd_echo_mode_needs_the_feature() {
    let echo = v1beta1::BfdProfile::new(
        "echo",
        NS,
        v1beta1::BfdProfileSpec {
            echo_mode: Some(true),
            ..Default::default()
        },
    );
    let objects = Objects {
        bfd_profiles: vec![echo],
        ..Default::default()
    };
    let no_echo = Context {
        namespace: NS.into(),
        features: Features {
            bfd_echo: false,
            ..Features::all()
        },
    };
    let errs = errors_with(&objects, &no_echo);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_error(
        &errs,
        ObjectKind::BfdProfile,
        "echo",
        "spec.echoMode",
        "is not supported by this ironlb build yet",
    );
    assert!(build(&objects, &ctx()).is_ok());
}

#[test]
fn rule_native_bgp_without_bfd_refuses_only_the_bfd_profile() {
    // The feature set of a build whose speaker has native BGP but no BFD yet.
    let no_bfd = Context {
        namespace: NS.into(),
        features: Features {
            bfd: false,
            ..Features::native_bgp()
        },
    };
    let objects = Objects {
        pools: vec![pool("a", &["10.0.0.0/24", "fc00::/120"])],
        bgp_advertisements: vec![bgp_ad(
            "ad",
            v1beta1::BgpAdvertisementSpec {
                communities: vec!["1:2".into(), "large:1:2:3".into()],
                ..Default::default()
            },
        )],
        peers: vec![peer(
            "p",
            v1beta2::BgpPeerSpec {
                enable_graceful_restart: Some(true),
                ebgp_multi_hop: Some(true),
                ..peer_spec()
            },
        )],
        bfd_profiles: vec![v1beta1::BfdProfile::new("fast", NS, Default::default())],
        ..Default::default()
    };
    let config = build(&objects, &no_bfd).expect("BGP without BFD is served");
    assert_eq!(config.peers.len(), 1);
    assert_eq!(config.bgp_advertisements[0].communities.len(), 2);
    let mut with_bfd = objects.clone();
    with_bfd.peers[0].spec.bfd_profile = Some("fast".into());
    let errs = errors_with(&with_bfd, &no_bfd);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.bfdProfile",
        "is not supported by this ironlb build yet",
    );
}

#[test]
fn rule_ipv6_bgp_needs_the_feature() {
    let objects = Objects {
        pools: vec![pool("v6", &["fc00::/120"])],
        bgp_advertisements: vec![bgp_ad("ad", Default::default())],
        peers: vec![peer(
            "p",
            v1beta2::BgpPeerSpec {
                peer_address: Some("fc00::1:1".into()),
                ..peer_spec()
            },
        )],
        ..Default::default()
    };
    let f = Features {
        bgp_ipv6: false,
        ..Features::all()
    };
    let errs = errors_with(
        &objects,
        &Context {
            namespace: NS.into(),
            features: f,
        },
    );
    assert_error(
        &errs,
        ObjectKind::BgpPeer,
        "p",
        "spec.peerAddress",
        "not supported",
    );
    assert_error(
        &errs,
        ObjectKind::BgpAdvertisement,
        "ad",
        "spec.ipAddressPools",
        "not supported",
    );
}

#[test]
fn validate_object_reports_only_that_object() {
    let existing = pools_only(vec![pool("a", &["10.0.0.0/24"]), pool("broken", &["x"])]);
    let errs = validate_object(
        &existing,
        &ctx(),
        &Object::Pool(pool("new", &["10.0.0.128/25"])),
    );
    assert_error(
        &errs,
        ObjectKind::IpAddressPool,
        "new",
        "spec.addresses[0]",
        "overlaps",
    );
    assert!(errs.iter().all(|e| e.name == "new"), "{errs:#?}");
    assert!(
        validate_object(
            &existing,
            &ctx(),
            &Object::Pool(pool("new", &["10.0.1.0/24"]))
        )
        .is_empty()
    );
    // Replacing an object of the same name validates the new version, not both.
    let errs = validate_object(
        &existing,
        &ctx(),
        &Object::Pool(pool("a", &["10.0.0.0/25"])),
    );
    assert!(errs.is_empty(), "{errs:#?}");
}
