//! Property tests of the allocator's invariants, checked against brute force over small pools.
//!
//! ```text
//!   random ops (assign / release / set_pools) --> Allocator
//!        after every op: sharing ok, results honour the request or say why, counts = recount
//!   same ops twice --> same results                 (determinism)
//!   holdings -> claims -> fresh Allocator::restore  --> same holdings   (restart)
//! ```

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ironlb_allocator::{
    AddressRange, AllocationError, Allocator, Assignment, Claim, IpFamily, IpFamilyPolicy, Pool,
    Protocol, ServiceAllocation, ServiceKey, ServicePort, ServiceRequest,
};
use proptest::prelude::*;
use support::*;

const CANDIDATE_IPS: [&str; 9] = [
    "10.0.0.1",
    "10.0.0.3",
    "10.0.1.255",
    "10.0.2.0",
    "10.0.2.1",
    "10.0.3.1",
    "2001:db8::1",
    "2001:db8:1::1",
    "192.168.0.1",
];
const POOL_NAMES: [&str; 4] = ["a", "b", "c", "unknown"];
const SERVICES: u8 = 8;

#[derive(Debug, Clone, Copy)]
struct PoolFlags {
    auto_assign: [bool; 3],
    avoid_buggy: [bool; 3],
}

/// Three layouts of the same pools: full, shrunk, and with `b` removed and `c` renamed.
fn layout(variant: u8, f: PoolFlags) -> Vec<Pool> {
    let mk = |i: usize, name: &str, ranges: &[&str]| {
        let mut p = mk_pool(name, ranges);
        p.auto_assign = f.auto_assign[i];
        p.avoid_buggy_ips = f.avoid_buggy[i];
        if i == 2 {
            p.service_allocation = Some(ServiceAllocation {
                priority: 1,
                namespaces: vec!["ns1".into()],
                ..Default::default()
            });
        }
        p
    };
    match variant {
        0 => vec![
            mk(0, "a", &["10.0.0.0/30", "2001:db8::/126"]),
            mk(1, "b", &["10.0.1.254-10.0.2.1"]),
            mk(2, "c", &["2001:db8:1::/127", "10.0.3.0/31"]),
        ],
        1 => vec![
            mk(0, "a", &["10.0.0.0/31", "2001:db8::/127"]),
            mk(1, "b", &["10.0.1.254-10.0.2.1"]),
            mk(2, "c", &["2001:db8:1::/127", "10.0.3.0/31"]),
        ],
        _ => vec![
            mk(0, "a", &["10.0.0.0/30", "2001:db8::/126"]),
            mk(2, "d", &["2001:db8:1::/127", "10.0.3.0/31"]),
        ],
    }
}

#[derive(Debug, Clone)]
struct ReqSpec {
    policy: u8,
    v6_first: bool,
    pool: Option<u8>,
    ip: Option<u8>,
    ip_partner: bool,
    via_spec_field: bool,
    sharing: u8,
    ports: u8,
    backend: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Assign(u8, ReqSpec),
    Release(u8),
    SetPools(u8),
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    (
        0u8..3,
        any::<bool>(),
        prop::option::weighted(0.25, 0u8..4),
        prop::option::weighted(0.3, 0u8..CANDIDATE_IPS.len() as u8),
        any::<bool>(),
        any::<bool>(),
        0u8..3,
        0u8..8,
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(policy, v6_first, pool, ip, ip_partner, via_spec_field, sharing, ports, backend)| {
                ReqSpec {
                    policy,
                    v6_first,
                    pool,
                    ip,
                    ip_partner,
                    via_spec_field,
                    sharing,
                    ports,
                    backend,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..SERVICES, req_spec()).prop_map(|(s, r)| Op::Assign(s, r)),
        2 => (0..SERVICES).prop_map(Op::Release),
        1 => (0u8..3).prop_map(Op::SetPools),
    ]
}

fn flags() -> impl Strategy<Value = PoolFlags> {
    (any::<[bool; 3]>(), any::<[bool; 3]>()).prop_map(|(mut auto_assign, avoid_buggy)| {
        // Keep at least one pool automatic so that automatic allocation is exercised.
        auto_assign[0] |= !auto_assign[1] && !auto_assign[2];
        PoolFlags {
            auto_assign,
            avoid_buggy,
        }
    })
}

fn key(s: u8) -> ServiceKey {
    ServiceKey::new(format!("ns{}", s % 2), format!("svc{s}"))
}

fn build_request(s: u8, r: &ReqSpec) -> ServiceRequest {
    let mut req = ServiceRequest::new(format!("ns{}", s % 2), format!("svc{s}"));
    req.ip_family_policy = [
        IpFamilyPolicy::SingleStack,
        IpFamilyPolicy::PreferDualStack,
        IpFamilyPolicy::RequireDualStack,
    ][r.policy as usize];
    req.ip_families = if r.v6_first {
        vec![IpFamily::V6, IpFamily::V4]
    } else {
        vec![IpFamily::V4, IpFamily::V6]
    };
    req.requested_pool = r.pool.map(|p| POOL_NAMES[p as usize].to_string());
    if let Some(i) = r.ip {
        let mut wanted = vec![ip(CANDIDATE_IPS[i as usize])];
        if r.ip_partner {
            wanted.push(ip("2001:db8::2"));
        }
        if r.via_spec_field && wanted.len() == 1 {
            req.load_balancer_ip = Some(wanted[0]);
        } else {
            req.requested_ips = wanted;
        }
    }
    req.sharing_key = ["", "k1", "k2"][r.sharing as usize].to_string();
    req.ports = [80u16, 443, 53]
        .iter()
        .enumerate()
        .filter(|(i, _)| r.ports & (1 << i) != 0)
        .map(|(_, &p)| ServicePort::new(Protocol::Tcp, p))
        .collect();
    if r.backend {
        req.backend_key = "app=x".into();
    }
    req
}

// ---- brute-force model -----------------------------------------------------------------------

fn numeric(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn range_ends(r: &AddressRange) -> (IpAddr, IpAddr) {
    match r {
        AddressRange::Cidr(n) => (n.network(), n.broadcast()),
        AddressRange::Range { start, end } => (*start, *end),
    }
}

/// Every assignable address of the pool, in first-fit order.
fn pool_addresses(p: &Pool) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for r in &p.ranges {
        let (s, e) = range_ends(r);
        for n in numeric(s)..=numeric(e) {
            let ip = match s {
                IpAddr::V4(_) => IpAddr::V4(u32::try_from(n).unwrap().into()),
                IpAddr::V6(_) => IpAddr::V6(n.into()),
            };
            let buggy = p.avoid_buggy_ips && ip.is_ipv4() && matches!(n & 0xff, 0 | 0xff);
            if !buggy {
                out.push(ip);
            }
        }
    }
    out
}

fn pool_allows(p: &Pool, req: &ServiceRequest) -> bool {
    match &p.service_allocation {
        None => true,
        Some(sa) => sa.namespaces.is_empty() || sa.namespaces.contains(&req.key.namespace),
    }
}

fn may_share(a: &ServiceRequest, b: &ServiceRequest) -> bool {
    !a.sharing_key.is_empty()
        && a.sharing_key == b.sharing_key
        && a.backend_key == b.backend_key
        && a.ports.iter().all(|p| !b.ports.contains(p))
}

fn fits_policy(req: &ServiceRequest, ips: &[IpAddr]) -> bool {
    let fam = |ip: &IpAddr| IpFamily::of(*ip);
    let primary = req.ip_families[0];
    match req.ip_family_policy {
        IpFamilyPolicy::SingleStack => ips.len() == 1 && fam(&ips[0]) == primary,
        IpFamilyPolicy::RequireDualStack => ips.len() == 2 && fam(&ips[0]) != fam(&ips[1]),
        IpFamilyPolicy::PreferDualStack => match ips {
            [_] => true,
            [a, b] => fam(a) != fam(b),
            _ => false,
        },
    }
}

/// Checks every invariant; `requests` holds, per Service, the request it last got addresses for.
fn check_invariants(
    a: &Allocator,
    pools: &[Pool],
    requests: &BTreeMap<ServiceKey, ServiceRequest>,
) -> Result<(), TestCaseError> {
    // No address held by two Services that may not share it.
    let mut by_ip: BTreeMap<IpAddr, Vec<&ServiceKey>> = BTreeMap::new();
    for (k, asg) in &a.assignments() {
        for ip in &asg.ips {
            by_ip.entry(*ip).or_default().push(k);
        }
        // The holding lies in the pool it names.
        let pool = pools.iter().find(|p| p.name == asg.pool);
        prop_assert!(pool.is_some(), "{k} holds from missing pool {}", asg.pool);
        let addrs = pool_addresses(pool.unwrap());
        for ip in &asg.ips {
            prop_assert!(
                addrs.contains(ip),
                "{k} holds {ip} outside pool {}",
                asg.pool
            );
        }
    }
    for (ip, holders) in &by_ip {
        prop_assert_eq!(a.holders(*ip).len(), holders.len());
        for (i, x) in holders.iter().enumerate() {
            for y in &holders[i + 1..] {
                prop_assert!(
                    may_share(&requests[*x], &requests[*y]),
                    "{x} and {y} both hold {ip}"
                );
            }
        }
    }
    // Counts equal the truth.
    for p in pools {
        let addrs = pool_addresses(p);
        let c = a.counts(&p.name).expect("pool exists");
        let total = |v4: bool| addrs.iter().filter(|i| i.is_ipv4() == v4).count() as u128;
        let used = |v4: bool| {
            by_ip
                .keys()
                .filter(|i| i.is_ipv4() == v4 && addrs.contains(i))
                .count() as u128
        };
        prop_assert_eq!(c.total_v4, total(true), "pool {}", p.name);
        prop_assert_eq!(c.total_v6, total(false), "pool {}", p.name);
        prop_assert_eq!(c.in_use_v4, used(true), "pool {}", p.name);
        prop_assert_eq!(c.in_use_v6, used(false), "pool {}", p.name);
    }
    Ok(())
}

/// A result honours the request, or refuses it with a reason (and then only when no eligible
/// pool could have served a plain single-stack request).
fn check_result(
    a: &Allocator,
    pools: &[Pool],
    requests: &BTreeMap<ServiceKey, ServiceRequest>,
    req: &ServiceRequest,
    before: Option<&Assignment>,
    result: &Result<Assignment, AllocationError>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(asg) => {
            prop_assert_eq!(a.assignment(&req.key), Some(asg.clone()));
            prop_assert!(fits_policy(req, &asg.ips), "{asg:?} does not fit {req:?}");
            let pool = pools.iter().find(|p| p.name == asg.pool).unwrap();
            prop_assert!(pool_allows(pool, req));
            if let Some(rp) = &req.requested_pool {
                prop_assert_eq!(rp, &asg.pool);
            }
            let wanted: BTreeSet<IpAddr> = req
                .requested_ips
                .iter()
                .chain(&req.load_balancer_ip)
                .copied()
                .collect();
            if !wanted.is_empty() {
                prop_assert_eq!(wanted, asg.ips.iter().copied().collect::<BTreeSet<_>>());
            } else if req.requested_pool.is_none()
                && !before.is_some_and(|b| {
                    b.pool == asg.pool && b.ips.iter().all(|i| asg.ips.contains(i))
                })
            {
                // A kept holding (possibly completed with its missing family from the same
                // pool) may come from a non-auto pool it was once asked for, as in MetalLB; a
                // fresh automatic one may not.
                prop_assert!(pool.auto_assign, "auto allocation from non-auto pool");
            }
        }
        Err(e) => {
            prop_assert!(a.assignment(&req.key).is_none());
            prop_assert!(!e.to_string().is_empty());
            // A single-stack request without specific addresses is refused only if no pool it
            // may use (the requested one, or the automatic ones) has a usable address.
            let searched = req.requested_ips.is_empty()
                && req.load_balancer_ip.is_none()
                && req.ip_family_policy == IpFamilyPolicy::SingleStack;
            if searched {
                let family = req.ip_families[0];
                let eligible = |p: &&Pool| {
                    pool_allows(p, req)
                        && match &req.requested_pool {
                            Some(name) => &p.name == name,
                            None => p.auto_assign,
                        }
                };
                for p in pools.iter().filter(eligible) {
                    for ip in pool_addresses(p)
                        .into_iter()
                        .filter(|i| IpFamily::of(*i) == family)
                    {
                        let usable = a.holders(ip).iter().all(|h| may_share(&requests[*h], req));
                        prop_assert!(!usable, "refused ({e}) but {ip} in {} was usable", p.name);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The final allocator, pools, last successful request per Service, and every result.
type Run = (
    Allocator,
    Vec<Pool>,
    BTreeMap<ServiceKey, ServiceRequest>,
    Vec<String>,
);

/// Runs the ops, checking invariants after each; returns every result and the final state.
fn run(f: PoolFlags, ops: &[Op]) -> Result<Run, TestCaseError> {
    let mut pools = layout(0, f);
    let mut a = mk_allocator(pools.clone());
    let mut requests: BTreeMap<ServiceKey, ServiceRequest> = BTreeMap::new();
    let mut trace = Vec::new();
    for op in ops {
        match op {
            Op::Assign(s, spec) => {
                let req = build_request(*s, spec);
                let before = a.assignment(&req.key);
                let result = a.assign(&req);
                if result.is_ok() {
                    requests.insert(req.key.clone(), req.clone());
                }
                check_result(&a, &pools, &requests, &req, before.as_ref(), &result)?;
                trace.push(format!("{result:?}"));
            }
            Op::Release(s) => {
                trace.push(format!("{:?}", a.release(&key(*s))));
            }
            Op::SetPools(v) => {
                pools = layout(*v, f);
                let update = a.set_pools(pools.clone()).unwrap();
                for inv in &update.invalidated {
                    prop_assert!(a.assignment(&inv.service).is_none());
                }
                trace.push(format!("{update:?}"));
            }
        }
        check_invariants(&a, &pools, &requests)?;
    }
    Ok((a, pools, requests, trace))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// Sharing, honour-or-refuse and exact counts hold after every operation.
    #[test]
    fn invariants_hold_after_every_operation(f in flags(), ops in prop::collection::vec(op(), 1..60)) {
        run(f, &ops)?;
    }

    /// The same inputs give the same results.
    #[test]
    fn same_operations_give_same_results(f in flags(), ops in prop::collection::vec(op(), 1..60)) {
        let (a1, _, _, t1) = run(f, &ops)?;
        let (a2, _, _, t2) = run(f, &ops)?;
        prop_assert_eq!(t1, t2);
        let h1: Vec<_> = a1.assignments();
        let h2: Vec<_> = a2.assignments();
        prop_assert_eq!(h1, h2);
    }

    /// After a restart, restoring from the Services' status reproduces the same holdings,
    /// whatever order the claims arrive in.
    #[test]
    fn restore_after_restart_reproduces_holdings(
        f in flags(),
        ops in prop::collection::vec(op(), 1..60),
        created in prop::collection::vec(0i64..5, SERVICES as usize),
        rotate in 0usize..8,
    ) {
        let (mut a, pools, requests, _) = run(f, &ops)?;
        // The controller's reconcile pass after the last config change.
        let held: Vec<ServiceKey> = a.assignments().into_iter().map(|(k, _)| k.clone()).collect();
        for k in &held {
            let _ = a.assign(&requests[k]);
        }
        let before: Vec<(ServiceKey, Assignment)> =
            a.assignments().into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut claims: Vec<Claim> = before
            .iter()
            .map(|(k, asg)| Claim {
                request: requests[k].clone(),
                ips: asg.ips.clone(),
                created: created[k.name[3..].parse::<usize>().unwrap()],
            })
            .collect();
        if !claims.is_empty() {
            let n = rotate % claims.len();
            claims.rotate_left(n);
        }
        let mut fresh = mk_allocator(pools.clone());
        let report = fresh.restore(claims);
        prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        let after: Vec<(ServiceKey, Assignment)> =
            fresh.assignments().into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(before, after);
        for p in &pools {
            prop_assert_eq!(a.counts(&p.name), fresh.counts(&p.name));
        }
    }

    /// Conflicting claims at restore: never two holders that may not share, and the outcome
    /// does not depend on the order the claims are listed in.
    #[test]
    fn restore_resolves_conflicts_deterministically(
        f in flags(),
        raw in prop::collection::vec((0..SERVICES, req_spec(), 0u8..CANDIDATE_IPS.len() as u8, 0i64..3), 1..16),
        rotate in 0usize..16,
    ) {
        let pools = layout(0, f);
        let mut claims = Vec::new();
        let mut requests = BTreeMap::new();
        for (s, spec, i, created) in raw {
            let mut req = build_request(s, &spec);
            req.requested_ips.clear();
            req.load_balancer_ip = None;
            req.ip_family_policy = IpFamilyPolicy::SingleStack;
            let claimed = ip(CANDIDATE_IPS[i as usize]);
            req.ip_families = vec![IpFamily::of(claimed)];
            requests.entry(req.key.clone()).or_insert_with(|| req.clone());
            // One request per Service: later claims for a Service reuse its first request.
            let req = requests[&req.key].clone();
            claims.push(Claim { request: req, ips: vec![claimed], created });
        }
        let mut a = mk_allocator(pools.clone());
        let r1 = a.restore(claims.clone());
        let n = rotate % claims.len();
        claims.rotate_left(n);
        let mut b = mk_allocator(pools.clone());
        let r2 = b.restore(claims);
        prop_assert_eq!(&r1, &r2);
        let held: Vec<_> = a.assignments();
        let held_b: Vec<_> = b.assignments();
        prop_assert_eq!(held, held_b);
        check_invariants(&a, &pools, &requests)?;
        for rej in &r1.rejected {
            prop_assert!(!rej.reason.to_string().is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The run structure agrees with a plain set of used addresses: lowest free address,
    /// marking results and counts, with and without avoidBuggyIPs.
    #[test]
    fn block_agrees_with_brute_force(
        avoid in any::<bool>(),
        start in 0u32..600,
        len in 1u32..700,
        ops in prop::collection::vec((prop::bool::weighted(0.75), 0u32..700), 0..500),
    ) {
        use ironlb_allocator::AddressBlock;
        let base = u32::from(std::net::Ipv4Addr::new(10, 0, 0, 0)) + start;
        let v4 = |n: u32| IpAddr::V4(n.into());
        let buggy = |n: u32| avoid && matches!(n & 0xff, 0 | 0xff);
        let last = base + len - 1;
        let mut b = AddressBlock::new(v4(base), v4(last), avoid).unwrap();
        prop_assert_eq!(b.capacity(), (base..=last).filter(|n| !buggy(*n)).count() as u128);
        let mut used = BTreeSet::new();
        for (mark, off) in ops {
            let n = base + off % len;
            if mark {
                prop_assert_eq!(b.mark_used(v4(n)), !buggy(n) && used.insert(n));
            } else {
                prop_assert_eq!(b.mark_free(v4(n)), used.remove(&n));
            }
            let expected = (base..=last).find(|n| !buggy(*n) && !used.contains(n)).map(v4);
            prop_assert_eq!(b.first_free(), expected);
            prop_assert_eq!(b.in_use(), used.len() as u128);
            // Runs never stand apart with only .255/.0 between them: that is what keeps the
            // lookup O(log n). So runs = maximal stretches of used-or-buggy holding a used one.
            let mut segments = 0;
            let mut in_segment_with_use = false;
            for n in base..=last {
                if used.contains(&n) {
                    if !in_segment_with_use {
                        segments += 1;
                    }
                    in_segment_with_use = true;
                } else if !buggy(n) {
                    in_segment_with_use = false;
                }
            }
            prop_assert_eq!(b.runs(), segments);
            prop_assert_eq!(b.is_full(), expected.is_none());
        }
    }
}
