//! Builders shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)] // shared test builders may unwrap

use std::collections::BTreeMap;
use std::net::IpAddr;

use ironlb_allocator::{
    AddressRange, Allocator, IpFamily, IpFamilyPolicy, LabelSelector, Pool, Protocol,
    ServiceAllocation, ServicePort, ServiceRequest,
};

/// `"10.0.0.0/24"` or `"10.0.0.1-10.0.0.9"`.
pub fn mk_range(s: &str) -> AddressRange {
    match s.split_once('-') {
        Some((a, b)) => AddressRange::Range {
            start: a.trim().parse().unwrap(),
            end: b.trim().parse().unwrap(),
        },
        None => AddressRange::Cidr(s.parse().unwrap()),
    }
}

pub fn mk_pool(name: &str, ranges: &[&str]) -> Pool {
    Pool {
        name: name.to_string(),
        ranges: ranges.iter().map(|r| mk_range(r)).collect(),
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
    }
}

pub fn mk_allocator(pools: Vec<Pool>) -> Allocator {
    let mut a = Allocator::new();
    a.set_pools(pools).unwrap();
    a
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

pub fn mk_svc(ns: &str, name: &str) -> ServiceRequest {
    ServiceRequest::new(ns, name)
}

pub fn with_ports(mut s: ServiceRequest, ports: &[u16]) -> ServiceRequest {
    s.ports = ports
        .iter()
        .map(|&p| ServicePort::new(Protocol::Tcp, p))
        .collect();
    s
}

pub fn shared(mut s: ServiceRequest, key: &str, ports: &[u16]) -> ServiceRequest {
    s.sharing_key = key.to_string();
    with_ports(s, ports)
}

pub fn dual(
    mut s: ServiceRequest,
    policy: IpFamilyPolicy,
    families: &[IpFamily],
) -> ServiceRequest {
    s.ip_family_policy = policy;
    s.ip_families = families.to_vec();
    s
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: labels(pairs),
        match_expressions: vec![],
    }
}

pub fn with_allocation(mut p: Pool, sa: ServiceAllocation) -> Pool {
    p.service_allocation = Some(sa);
    p
}
