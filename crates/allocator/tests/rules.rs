//! One test per MetalLB allocation rule, named after the rule.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use ironlb_allocator::{
    AllocationError, Claim, IpFamily, IpFamilyPolicy, PoolCounts, PoolError, ServiceAllocation,
    ServiceKey, SharingConflict, parse_load_balancer_ips,
};
use support::*;

use IpFamily::{V4, V6};
use IpFamilyPolicy::{PreferDualStack, RequireDualStack, SingleStack};

// ---- pools: CIDRs and ranges ----------------------------------------------------------------

#[test]
fn rule_cidr_pool_hands_out_lowest_address_first() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/30"])]);
    let got: Vec<_> = (0..4)
        .map(|i| a.assign(&mk_svc("ns", &format!("s{i}"))).unwrap().ips[0])
        .collect();
    assert_eq!(got, ips(&["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]));
    let err = a.assign(&mk_svc("ns", "s4")).unwrap_err();
    assert!(
        matches!(err, AllocationError::NoAvailableAddress { .. }),
        "{err}"
    );
}

#[test]
fn rule_range_pool_is_inclusive_of_both_ends() {
    let mut a = mk_allocator(vec![mk_pool("linuxnet", &["10.0.0.150-10.0.0.151"])]);
    assert_eq!(
        a.assign(&mk_svc("d", "a")).unwrap().ips,
        ips(&["10.0.0.150"])
    );
    assert_eq!(
        a.assign(&mk_svc("d", "b")).unwrap().ips,
        ips(&["10.0.0.151"])
    );
    assert!(a.assign(&mk_svc("d", "c")).is_err());
}

#[test]
fn rule_blocks_are_used_in_the_order_written() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.5.7/32", "10.0.0.0/24"])]);
    assert_eq!(a.assign(&mk_svc("d", "a")).unwrap().ips, ips(&["10.0.5.7"]));
    assert_eq!(a.assign(&mk_svc("d", "b")).unwrap().ips, ips(&["10.0.0.0"]));
}

#[test]
fn rule_released_address_is_reused_first_fit() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    for i in 0..5 {
        a.assign(&mk_svc("d", &format!("s{i}"))).unwrap();
    }
    let released = a.release(&ServiceKey::new("d", "s2")).unwrap();
    assert_eq!(released.ips, ips(&["10.0.0.2"]));
    assert_eq!(
        a.assign(&mk_svc("d", "new")).unwrap().ips,
        ips(&["10.0.0.2"])
    );
}

#[test]
fn rule_overlapping_pools_are_refused() {
    let mut a = mk_allocator(vec![mk_pool("a", &["10.0.0.0/24"])]);
    let err = a
        .set_pools(vec![
            mk_pool("a", &["10.0.0.0/24"]),
            mk_pool("b", &["10.0.0.128-10.0.1.5"]),
        ])
        .unwrap_err();
    assert!(matches!(err, PoolError::Overlap { .. }), "{err}");
    // The last good pools keep running.
    assert!(a.counts("a").is_some() && a.counts("b").is_none());
}

// ---- autoAssign ------------------------------------------------------------------------------

#[test]
fn rule_auto_assign_false_pool_only_when_requested() {
    let mut expensive = mk_pool("expensive", &["192.0.2.0/30"]);
    expensive.auto_assign = false;
    let mut a = mk_allocator(vec![expensive]);
    let err = a.assign(&mk_svc("d", "auto")).unwrap_err();
    assert_eq!(
        err,
        AllocationError::NoAvailableAddress {
            wanted: "IPv4".into(),
            tried: vec![]
        }
    );
    let mut by_pool = mk_svc("d", "by-pool");
    by_pool.requested_pool = Some("expensive".into());
    assert_eq!(a.assign(&by_pool).unwrap().ips, ips(&["192.0.2.0"]));
    let mut by_ip = mk_svc("d", "by-ip");
    by_ip.requested_ips = ips(&["192.0.2.3"]);
    assert_eq!(a.assign(&by_ip).unwrap().pool, "expensive");
}

// ---- avoidBuggyIPs ---------------------------------------------------------------------------

#[test]
fn rule_avoid_buggy_ips_skips_dot_zero_and_dot_255() {
    let mut p = mk_pool("p", &["10.0.0.254-10.0.1.1"]);
    p.avoid_buggy_ips = true;
    let mut a = mk_allocator(vec![p]);
    assert_eq!(
        a.assign(&mk_svc("d", "a")).unwrap().ips,
        ips(&["10.0.0.254"])
    );
    assert_eq!(a.assign(&mk_svc("d", "b")).unwrap().ips, ips(&["10.0.1.1"]));
    assert!(a.assign(&mk_svc("d", "c")).is_err());
    assert_eq!(a.counts("p").unwrap().total_v4, 2);
}

#[test]
fn rule_avoid_buggy_ips_refuses_requested_buggy_address() {
    let mut p = mk_pool("p", &["10.0.0.0/24"]);
    p.avoid_buggy_ips = true;
    let mut a = mk_allocator(vec![p]);
    let mut s = mk_svc("d", "a");
    s.requested_ips = ips(&["10.0.0.255"]);
    assert!(matches!(
        a.assign(&s).unwrap_err(),
        AllocationError::BuggyAddress { .. }
    ));
}

#[test]
fn rule_avoid_buggy_ips_does_not_touch_ipv6() {
    let mut p = mk_pool("p", &["2001:db8::/126"]);
    p.avoid_buggy_ips = true;
    let mut a = mk_allocator(vec![p]);
    let s = dual(mk_svc("d", "a"), SingleStack, &[V6]);
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["2001:db8::"]));
    assert_eq!(a.counts("p").unwrap().total_v6, 4);
}

// ---- serviceAllocation -----------------------------------------------------------------------

#[test]
fn rule_service_allocation_namespace_pool_tried_first() {
    let general = mk_pool("a-general", &["10.0.0.0/24"]);
    let team = with_allocation(
        mk_pool("z-team", &["10.1.0.0/24"]),
        ServiceAllocation {
            namespaces: vec!["team".into()],
            ..Default::default()
        },
    );
    let mut a = mk_allocator(vec![general, team]);
    assert_eq!(a.assign(&mk_svc("team", "s")).unwrap().pool, "z-team");
    assert_eq!(a.assign(&mk_svc("other", "s")).unwrap().pool, "a-general");
}

#[test]
fn rule_service_allocation_namespace_selector_matches_namespace_labels() {
    let team = with_allocation(
        mk_pool("team", &["10.1.0.0/24"]),
        ServiceAllocation {
            namespace_selectors: vec![selector(&[("tier", "gold")])],
            ..Default::default()
        },
    );
    let mut a = mk_allocator(vec![mk_pool("general", &["10.0.0.0/24"]), team]);
    let mut gold = mk_svc("x", "s");
    gold.namespace_labels = labels(&[("tier", "gold")]);
    assert_eq!(a.assign(&gold).unwrap().pool, "team");
    assert_eq!(a.assign(&mk_svc("y", "s")).unwrap().pool, "general");
}

#[test]
fn rule_service_allocation_service_selector_matches_service_labels() {
    let premium = with_allocation(
        mk_pool("premium", &["10.1.0.0/24"]),
        ServiceAllocation {
            service_selectors: vec![selector(&[("class", "premium")])],
            ..Default::default()
        },
    );
    let mut a = mk_allocator(vec![mk_pool("general", &["10.0.0.0/24"]), premium]);
    let mut s = mk_svc("d", "web");
    s.labels = labels(&[("class", "premium")]);
    assert_eq!(a.assign(&s).unwrap().pool, "premium");
    assert_eq!(a.assign(&mk_svc("d", "other")).unwrap().pool, "general");
}

#[test]
fn rule_service_allocation_priority_lower_first_unset_last() {
    let sa = |priority| ServiceAllocation {
        priority,
        namespaces: vec!["ns".into()],
        ..Default::default()
    };
    let mut a = mk_allocator(vec![
        with_allocation(mk_pool("a-unset", &["10.0.0.1/32"]), sa(0)),
        with_allocation(mk_pool("b-prio20", &["10.0.0.2/32"]), sa(20)),
        with_allocation(mk_pool("c-prio10", &["10.0.0.3/32"]), sa(10)),
    ]);
    let order: Vec<_> = (0..3)
        .map(|i| a.assign(&mk_svc("ns", &format!("s{i}"))).unwrap().pool)
        .collect();
    assert_eq!(order, ["c-prio10", "b-prio20", "a-unset"]);
}

#[test]
fn rule_service_allocation_pinned_pool_full_falls_back_to_unrestricted_pools() {
    let team = with_allocation(
        mk_pool("team", &["10.1.0.0/32"]),
        ServiceAllocation {
            namespaces: vec!["team".into()],
            ..Default::default()
        },
    );
    let mut a = mk_allocator(vec![team, mk_pool("general", &["10.0.0.0/24"])]);
    assert_eq!(a.assign(&mk_svc("team", "a")).unwrap().pool, "team");
    assert_eq!(a.assign(&mk_svc("team", "b")).unwrap().pool, "general");
}

#[test]
fn rule_service_allocation_reserves_pool_even_for_explicit_requests() {
    let team = with_allocation(
        mk_pool("team", &["10.1.0.0/24"]),
        ServiceAllocation {
            namespaces: vec!["team".into()],
            ..Default::default()
        },
    );
    let mut a = mk_allocator(vec![team]);
    assert!(a.assign(&mk_svc("other", "auto")).is_err());
    let mut by_pool = mk_svc("other", "by-pool");
    by_pool.requested_pool = Some("team".into());
    assert!(matches!(
        a.assign(&by_pool).unwrap_err(),
        AllocationError::PoolNotAllowedForService { .. }
    ));
    let mut by_ip = mk_svc("other", "by-ip");
    by_ip.requested_ips = ips(&["10.1.0.9"]);
    assert!(matches!(
        a.assign(&by_ip).unwrap_err(),
        AllocationError::PoolNotAllowedForService { .. }
    ));
}

#[test]
fn rule_unrestricted_pools_are_tried_in_name_order() {
    // MetalLB uses Go's random map order here; ironlb is deterministic: by name.
    let mut a = mk_allocator(vec![
        mk_pool("zeta", &["10.0.0.0/24"]),
        mk_pool("alpha", &["10.9.0.0/24"]),
    ]);
    assert_eq!(a.assign(&mk_svc("d", "s")).unwrap().pool, "alpha");
}

// ---- requested pool / requested addresses -------------------------------------------------

#[test]
fn rule_requested_pool_annotation_is_honoured() {
    let mut a = mk_allocator(vec![
        mk_pool("a", &["10.0.0.0/24"]),
        mk_pool("b", &["10.1.0.0/24"]),
    ]);
    let mut s = mk_svc("d", "s");
    s.requested_pool = Some("b".into());
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.1.0.0"]));
}

#[test]
fn rule_requested_pool_unknown_or_full_is_refused() {
    let mut a = mk_allocator(vec![mk_pool("a", &["10.0.0.0/32"])]);
    let mut s = mk_svc("d", "s");
    s.requested_pool = Some("nope".into());
    assert_eq!(
        a.assign(&s).unwrap_err(),
        AllocationError::UnknownPool {
            pool: "nope".into()
        }
    );
    s.requested_pool = Some("a".into());
    a.assign(&s).unwrap();
    let mut t = mk_svc("d", "t");
    t.requested_pool = Some("a".into());
    assert_eq!(
        a.assign(&t).unwrap_err(),
        AllocationError::PoolExhausted {
            pool: "a".into(),
            family: V4
        }
    );
    let t6 = dual(t, SingleStack, &[V6]);
    assert_eq!(
        a.assign(&t6).unwrap_err(),
        AllocationError::FamilyNotInPool {
            pool: "a".into(),
            family: V6
        }
    );
}

#[test]
fn rule_requested_addresses_annotation_is_honoured() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24", "2001:db8::/120"])]);
    let mut s = dual(mk_svc("d", "s"), RequireDualStack, &[V4, V6]);
    s.requested_ips = parse_load_balancer_ips("10.0.0.42, 2001:db8::42").unwrap();
    assert_eq!(
        a.assign(&s).unwrap().ips,
        ips(&["10.0.0.42", "2001:db8::42"])
    );
}

#[test]
fn rule_spec_load_balancer_ip_is_honoured() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut s = mk_svc("d", "s");
    s.load_balancer_ip = Some(ip("10.0.0.9"));
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.0.0.9"]));
}

#[test]
fn rule_load_balancer_ip_with_annotation_is_an_error() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut s = mk_svc("d", "s");
    s.load_balancer_ip = Some(ip("10.0.0.9"));
    s.requested_ips = ips(&["10.0.0.9"]);
    assert_eq!(
        a.assign(&s).unwrap_err(),
        AllocationError::LoadBalancerIpWithAnnotation
    );
}

#[test]
fn rule_requested_addresses_at_most_two_of_different_families() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut s = dual(mk_svc("d", "s"), RequireDualStack, &[V4, V6]);
    s.requested_ips = ips(&["10.0.0.1", "10.0.0.2"]);
    assert!(matches!(
        a.assign(&s).unwrap_err(),
        AllocationError::RequestedAddressesSameFamily { .. }
    ));
    s.requested_ips = ips(&["10.0.0.1", "2001:db8::1", "10.0.0.2"]);
    assert!(matches!(
        a.assign(&s).unwrap_err(),
        AllocationError::TooManyRequestedAddresses { .. }
    ));
    assert!(parse_load_balancer_ips("10.0.0.1,bogus").is_err());
}

#[test]
fn rule_requested_address_must_match_service_family() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24", "2001:db8::/120"])]);
    let mut s = mk_svc("d", "s");
    s.requested_ips = ips(&["2001:db8::1"]);
    assert!(matches!(
        a.assign(&s).unwrap_err(),
        AllocationError::RequestedFamilyMismatch { .. }
    ));
}

#[test]
fn rule_requested_address_must_lie_in_a_pool() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut s = mk_svc("d", "s");
    s.requested_ips = ips(&["192.168.1.1"]);
    assert_eq!(
        a.assign(&s).unwrap_err(),
        AllocationError::AddressNotInAnyPool {
            ip: ip("192.168.1.1")
        }
    );
}

#[test]
fn rule_requested_address_must_lie_in_requested_pool() {
    let mut a = mk_allocator(vec![
        mk_pool("a", &["10.0.0.0/24"]),
        mk_pool("b", &["10.1.0.0/24"]),
    ]);
    let mut s = mk_svc("d", "s");
    s.requested_ips = ips(&["10.0.0.5"]);
    s.requested_pool = Some("b".into());
    assert!(matches!(
        a.assign(&s).unwrap_err(),
        AllocationError::AddressNotInRequestedPool { .. }
    ));
    s.requested_pool = Some("a".into());
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.0.0.5"]));
}

#[test]
fn rule_requested_dual_stack_addresses_must_share_one_pool() {
    let mut a = mk_allocator(vec![
        mk_pool("a", &["10.0.0.0/24"]),
        mk_pool("b", &["2001:db8::/120"]),
    ]);
    let mut s = dual(mk_svc("d", "s"), RequireDualStack, &[V4, V6]);
    s.requested_ips = ips(&["10.0.0.1", "2001:db8::1"]);
    assert!(matches!(
        a.assign(&s).unwrap_err(),
        AllocationError::AddressesInDifferentPools { .. }
    ));
}

// ---- sharing ---------------------------------------------------------------------------------

#[test]
fn rule_sharing_same_key_and_disjoint_ports_share_an_address() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut dns_tcp = shared(mk_svc("d", "dns-tcp"), "dns", &[53]);
    dns_tcp.requested_ips = ips(&["10.0.0.7"]);
    let mut dns_udp = shared(mk_svc("d", "dns-udp"), "dns", &[]);
    dns_udp.ports = vec![ironlb_allocator::ServicePort::new(
        ironlb_allocator::Protocol::Udp,
        53,
    )];
    dns_udp.requested_ips = ips(&["10.0.0.7"]);
    a.assign(&dns_tcp).unwrap();
    a.assign(&dns_udp).unwrap();
    assert_eq!(a.holders(ip("10.0.0.7")).len(), 2);
    assert_eq!(a.counts("p").unwrap().in_use_v4, 1);
}

#[test]
fn rule_sharing_first_fit_packs_onto_shareable_address() {
    // MetalLB's first fit accepts an address already used under the same key.
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let first = a.assign(&shared(mk_svc("d", "a"), "k", &[80])).unwrap();
    let second = a.assign(&shared(mk_svc("d", "b"), "k", &[443])).unwrap();
    assert_eq!(first.ips, second.ips);
    let third = a.assign(&shared(mk_svc("d", "c"), "k", &[80])).unwrap();
    assert_ne!(third.ips, first.ips);
}

#[test]
fn rule_sharing_overlapping_ports_refused() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut x = shared(mk_svc("d", "x"), "k", &[80, 443]);
    x.requested_ips = ips(&["10.0.0.1"]);
    a.assign(&x).unwrap();
    let mut y = shared(mk_svc("d", "y"), "k", &[443]);
    y.requested_ips = ips(&["10.0.0.1"]);
    let err = a.assign(&y).unwrap_err();
    assert!(
        matches!(
            &err,
            AllocationError::AddressInUse {
                conflict: SharingConflict::PortInUse { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rule_sharing_different_key_refused() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut x = shared(mk_svc("d", "x"), "k1", &[80]);
    x.requested_ips = ips(&["10.0.0.1"]);
    a.assign(&x).unwrap();
    let mut y = shared(mk_svc("d", "y"), "k2", &[81]);
    y.requested_ips = ips(&["10.0.0.1"]);
    assert!(matches!(
        a.assign(&y).unwrap_err(),
        AllocationError::AddressInUse {
            conflict: SharingConflict::DifferentSharingKey { .. },
            ..
        }
    ));
}

#[test]
fn rule_sharing_without_key_refused() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut x = with_ports(mk_svc("d", "x"), &[80]);
    x.requested_ips = ips(&["10.0.0.1"]);
    a.assign(&x).unwrap();
    let mut y = shared(mk_svc("d", "y"), "k", &[81]);
    y.requested_ips = ips(&["10.0.0.1"]);
    assert!(matches!(
        a.assign(&y).unwrap_err(),
        AllocationError::AddressInUse {
            conflict: SharingConflict::HolderDoesNotShare,
            ..
        }
    ));
    // And an unshared newcomer never lands on a shared address.
    let z = with_ports(mk_svc("d", "z"), &[9]);
    assert_eq!(a.assign(&z).unwrap().ips, ips(&["10.0.0.0"]));
}

#[test]
fn rule_sharing_needs_same_backend_key_for_local_traffic_policy() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let mut x = shared(mk_svc("d", "x"), "k", &[80]);
    x.backend_key = "app=web".into();
    x.requested_ips = ips(&["10.0.0.1"]);
    a.assign(&x).unwrap();
    let mut y = shared(mk_svc("d", "y"), "k", &[81]);
    y.backend_key = "app=api".into();
    y.requested_ips = ips(&["10.0.0.1"]);
    assert!(matches!(
        a.assign(&y).unwrap_err(),
        AllocationError::AddressInUse {
            conflict: SharingConflict::DifferentBackend { .. },
            ..
        }
    ));
    y.backend_key = "app=web".into();
    a.assign(&y).unwrap();
}

#[test]
fn rule_sharing_requires_pool_compatible_with_both() {
    let team = with_allocation(
        mk_pool("team", &["10.1.0.0/24"]),
        ServiceAllocation {
            namespaces: vec!["team".into()],
            ..Default::default()
        },
    );
    let mut a = mk_allocator(vec![team]);
    let mut x = shared(mk_svc("team", "x"), "k", &[80]);
    x.requested_ips = ips(&["10.1.0.1"]);
    a.assign(&x).unwrap();
    let mut y = shared(mk_svc("other", "y"), "k", &[81]);
    y.requested_ips = ips(&["10.1.0.1"]);
    assert!(matches!(
        a.assign(&y).unwrap_err(),
        AllocationError::PoolNotAllowedForService { .. }
    ));
}

// ---- dual stack ------------------------------------------------------------------------------

#[test]
fn rule_single_stack_takes_first_family() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24", "2001:db8::/120"])]);
    let s = dual(mk_svc("d", "s"), SingleStack, &[V6, V4]);
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["2001:db8::"]));
}

#[test]
fn rule_require_dual_stack_needs_one_pool_with_both_families() {
    let mut a = mk_allocator(vec![
        mk_pool("v4", &["10.0.0.0/24"]),
        mk_pool("v6", &["2001:db8::/120"]),
    ]);
    let s = dual(mk_svc("d", "s"), RequireDualStack, &[V4, V6]);
    assert!(matches!(
        a.assign(&s).unwrap_err(),
        AllocationError::NoDualStackPool { .. }
    ));
    a.set_pools(vec![
        mk_pool("v4", &["10.0.0.0/24"]),
        mk_pool("v6", &["2001:db8::/120"]),
        mk_pool("zdual", &["10.9.0.0/24", "2001:db9::/120"]),
    ])
    .unwrap();
    let got = a.assign(&s).unwrap();
    assert_eq!(
        (got.pool.as_str(), got.ips),
        ("zdual", ips(&["10.9.0.0", "2001:db9::"]))
    );
}

#[test]
fn rule_prefer_dual_stack_prefers_a_dual_pool() {
    let mut a = mk_allocator(vec![
        mk_pool("a-v6", &["2001:db8::/120"]),
        mk_pool("b-dual", &["10.9.0.0/24", "2001:db9::/120"]),
    ]);
    let s = dual(mk_svc("d", "s"), PreferDualStack, &[V6, V4]);
    let got = a.assign(&s).unwrap();
    assert_eq!(
        (got.pool.as_str(), got.ips),
        ("b-dual", ips(&["2001:db9::", "10.9.0.0"]))
    );
}

#[test]
fn rule_prefer_dual_stack_falls_back_to_primary_then_other_family() {
    let mut a = mk_allocator(vec![
        mk_pool("a-v4", &["10.0.0.0/32"]),
        mk_pool("b-v6", &["2001:db8::/127"]),
    ]);
    let s1 = dual(mk_svc("d", "s1"), PreferDualStack, &[V6, V4]);
    assert_eq!(a.assign(&s1).unwrap().ips, ips(&["2001:db8::"]));
    let s2 = dual(mk_svc("d", "s2"), PreferDualStack, &[V4, V6]);
    assert_eq!(a.assign(&s2).unwrap().ips, ips(&["10.0.0.0"]));
    let s3 = dual(mk_svc("d", "s3"), PreferDualStack, &[V4, V6]);
    assert_eq!(a.assign(&s3).unwrap().ips, ips(&["2001:db8::1"]));
}

#[test]
fn rule_prefer_dual_stack_on_single_stack_cluster_is_single_stack() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24", "2001:db8::/120"])]);
    let s = dual(mk_svc("d", "s"), PreferDualStack, &[V4]);
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.0.0.0"]));
}

#[test]
fn rule_prefer_dual_stack_adds_missing_family_later_from_same_pool() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/32", "2001:db8::/128"])]);
    let mut blocker = dual(mk_svc("d", "blocker"), SingleStack, &[V6]);
    blocker.requested_ips = ips(&["2001:db8::"]);
    a.assign(&blocker).unwrap();
    let s = dual(mk_svc("d", "s"), PreferDualStack, &[V4, V6]);
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.0.0.0"]));
    a.release(&blocker.key);
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.0.0.0", "2001:db8::"]));
}

// ---- holdings: idempotence, release, pool changes, restore ------------------------------------

#[test]
fn rule_assign_is_idempotent_for_a_valid_holding() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let s = with_ports(mk_svc("d", "s"), &[80]);
    let first = a.assign(&s).unwrap();
    a.assign(&mk_svc("d", "t")).unwrap();
    assert_eq!(a.assign(&s).unwrap(), first);
    assert_eq!(a.counts("p").unwrap().in_use_v4, 2);
}

#[test]
fn rule_changed_request_moves_the_service() {
    let mut a = mk_allocator(vec![
        mk_pool("a", &["10.0.0.0/24"]),
        mk_pool("b", &["10.1.0.0/24"]),
    ]);
    let mut s = mk_svc("d", "s");
    assert_eq!(a.assign(&s).unwrap().pool, "a");
    s.requested_pool = Some("b".into());
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.1.0.0"]));
    assert_eq!(a.counts("a").unwrap().in_use_v4, 0);
}

#[test]
fn rule_pool_shrink_reports_holdings_that_no_longer_fit() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    for i in 0..3 {
        a.assign(&mk_svc("d", &format!("s{i}"))).unwrap();
    }
    let update = a.set_pools(vec![mk_pool("p", &["10.0.0.0/31"])]).unwrap();
    assert_eq!(update.invalidated.len(), 1);
    assert_eq!(update.invalidated[0].service, ServiceKey::new("d", "s2"));
    assert!(a.assignment(&ServiceKey::new("d", "s2")).is_none());
    assert_eq!(a.counts("p").unwrap().in_use_v4, 2);
}

#[test]
fn rule_pool_removal_reports_its_holdings_and_moves_none() {
    let mut a = mk_allocator(vec![
        mk_pool("a", &["10.0.0.0/24"]),
        mk_pool("b", &["10.1.0.0/24"]),
    ]);
    let mut s = mk_svc("d", "s");
    s.requested_pool = Some("b".into());
    a.assign(&s).unwrap();
    a.assign(&mk_svc("d", "t")).unwrap();
    let update = a.set_pools(vec![mk_pool("a", &["10.0.0.0/24"])]).unwrap();
    let gone: Vec<_> = update
        .invalidated
        .iter()
        .map(|i| i.service.name.as_str())
        .collect();
    assert_eq!(gone, ["s"]);
    assert_eq!(
        a.assign(&s).unwrap_err(),
        AllocationError::UnknownPool { pool: "b".into() }
    );
}

#[test]
fn rule_address_moved_to_another_pool_follows_it() {
    let mut a = mk_allocator(vec![mk_pool("a", &["10.0.0.0/24"])]);
    let held = a.assign(&mk_svc("d", "s")).unwrap();
    let update = a
        .set_pools(vec![mk_pool("renamed", &["10.0.0.0/24"])])
        .unwrap();
    assert!(update.invalidated.is_empty());
    let now = a.assignment(&ServiceKey::new("d", "s")).unwrap();
    assert_eq!((now.pool.as_str(), &now.ips), ("renamed", &held.ips));
}

#[test]
fn rule_restore_conflict_oldest_claim_wins() {
    let pools = vec![mk_pool("p", &["10.0.0.0/24"])];
    let claim = |name: &str, created| Claim {
        request: mk_svc("d", name),
        ips: ips(&["10.0.0.5"]),
        created,
    };
    for order in [
        [claim("young", 200), claim("old", 100)],
        [claim("old", 100), claim("young", 200)],
    ] {
        let mut a = mk_allocator(pools.clone());
        let report = a.restore(order.to_vec());
        assert_eq!(report.restored.len(), 1);
        assert_eq!(report.restored[0].0, ServiceKey::new("d", "old"));
        assert_eq!(report.rejected[0].service, ServiceKey::new("d", "young"));
        assert!(matches!(
            report.rejected[0].reason,
            AllocationError::AddressInUse { .. }
        ));
        // The loser is then allocated anew, elsewhere.
        assert_eq!(
            a.assign(&mk_svc("d", "young")).unwrap().ips,
            ips(&["10.0.0.0"])
        );
    }
}

#[test]
fn rule_restore_same_timestamp_breaks_tie_by_namespace_and_name() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let report = a.restore(vec![
        Claim {
            request: mk_svc("b", "x"),
            ips: ips(&["10.0.0.5"]),
            created: 7,
        },
        Claim {
            request: mk_svc("a", "z"),
            ips: ips(&["10.0.0.5"]),
            created: 7,
        },
    ]);
    assert_eq!(report.restored[0].0, ServiceKey::new("a", "z"));
}

#[test]
fn rule_restore_keeps_compatible_sharers() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let report = a.restore(vec![
        Claim {
            request: shared(mk_svc("d", "a"), "k", &[80]),
            ips: ips(&["10.0.0.5"]),
            created: 1,
        },
        Claim {
            request: shared(mk_svc("d", "b"), "k", &[443]),
            ips: ips(&["10.0.0.5"]),
            created: 2,
        },
    ]);
    assert_eq!(report.restored.len(), 2);
    assert!(report.rejected.is_empty());
}

#[test]
fn rule_restore_rejects_addresses_outside_pools() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let report = a.restore(vec![Claim {
        request: mk_svc("d", "a"),
        ips: ips(&["10.9.9.9"]),
        created: 1,
    }]);
    assert!(matches!(
        report.rejected[0].reason,
        AllocationError::AddressNotInAnyPool { .. }
    ));
}

// ---- counts ----------------------------------------------------------------------------------

#[test]
fn rule_counts_are_exact_per_family_for_huge_ipv6_pools() {
    let mut a = mk_allocator(vec![mk_pool(
        "big",
        &["10.0.0.0/24", "2001:db8::/48", "2001:db9::/64"],
    )]);
    let s = dual(mk_svc("d", "s"), RequireDualStack, &[V4, V6]);
    a.assign(&s).unwrap();
    assert_eq!(
        a.counts("big").unwrap(),
        PoolCounts {
            total_v4: 256,
            total_v6: (1u128 << 80) + (1u128 << 64),
            in_use_v4: 1,
            in_use_v6: 1,
        }
    );
    let mut whole = mk_pool("whole", &["::/1", "8000::/1"]);
    whole.avoid_buggy_ips = false;
    assert!(matches!(
        a.set_pools(vec![whole]).unwrap_err(),
        PoolError::TooLarge(_)
    ));
}

#[test]
fn rule_errors_read_well_in_events() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/32"])]);
    a.assign(&mk_svc("d", "a")).unwrap();
    let text = a.assign(&mk_svc("d", "b")).unwrap_err().to_string();
    assert_eq!(
        text,
        "no available IPv4 address in any pool this service may use (tried [\"p\"])"
    );
}

#[test]
fn rule_avoid_buggy_ips_turned_on_invalidates_dot_zero_holdings() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    assert_eq!(a.assign(&mk_svc("d", "s")).unwrap().ips, ips(&["10.0.0.0"]));
    let mut p = mk_pool("p", &["10.0.0.0/24"]);
    p.avoid_buggy_ips = true;
    let update = a.set_pools(vec![p]).unwrap();
    assert!(matches!(
        update.invalidated[0].reason,
        AllocationError::BuggyAddress { .. }
    ));
    assert_eq!(a.assign(&mk_svc("d", "s")).unwrap().ips, ips(&["10.0.0.1"]));
}

#[test]
fn rule_restore_duplicate_claim_is_idempotent_and_conflicting_one_rejected() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24"])]);
    let claim = |addr: &str, created| Claim {
        request: mk_svc("d", "s"),
        ips: ips(&[addr]),
        created,
    };
    let report = a.restore(vec![
        claim("10.0.0.5", 1),
        claim("10.0.0.5", 1),
        claim("10.0.0.6", 2),
    ]);
    assert_eq!(report.restored.len(), 2);
    assert!(matches!(
        report.rejected[0].reason,
        AllocationError::AlreadyHolds { .. }
    ));
    assert_eq!(a.counts("p").unwrap().in_use_v4, 1);
}

#[test]
fn rule_prefer_dual_stack_primary_family_added_later_comes_first() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/32", "2001:db8::/128"])]);
    let mut blocker = mk_svc("d", "blocker");
    blocker.requested_ips = ips(&["10.0.0.0"]);
    a.assign(&blocker).unwrap();
    let s = dual(mk_svc("d", "s"), PreferDualStack, &[V4, V6]);
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["2001:db8::"]));
    a.release(&blocker.key);
    assert_eq!(a.assign(&s).unwrap().ips, ips(&["10.0.0.0", "2001:db8::"]));
}

#[test]
fn rule_single_stack_service_holding_two_families_is_reallocated() {
    let mut a = mk_allocator(vec![mk_pool("p", &["10.0.0.0/24", "2001:db8::/120"])]);
    let s = dual(mk_svc("d", "s"), RequireDualStack, &[V4, V6]);
    assert_eq!(a.assign(&s).unwrap().ips.len(), 2);
    let single = dual(s, SingleStack, &[V4]);
    assert_eq!(a.assign(&single).unwrap().ips, ips(&["10.0.0.0"]));
    assert_eq!(a.counts("p").unwrap().in_use_v6, 0);
}
