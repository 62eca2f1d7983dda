//! IPAddressPools: each pool's fields, and no address in two pools.

use super::{Report, check_namespace, name_of, no_duplicates, selectors};
use crate::address::{Interval, parse_block};
use crate::error::{ConfigError, ObjectKind};
use crate::{Context, Objects, Pool, ServiceAllocation};
use ironlb_api::v1beta1;
use std::collections::BTreeMap;

fn dns_label_problem(name: &str) -> bool {
    name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || name.starts_with('-')
        || name.ends_with('-')
}

/// A pool with what the cross-object rules need.
pub(super) struct CheckedPool {
    pub(super) pool: Pool,
    pub(super) labels: BTreeMap<String, String>,
    /// (index in spec.addresses, interval)
    pub(super) blocks: Vec<(usize, Interval)>,
}

pub(super) fn check_pool(
    p: &v1beta1::IpAddressPool,
    ctx: &Context,
    errors: &mut Vec<ConfigError>,
) -> CheckedPool {
    let name = name_of(&p.metadata);
    let mut r = Report {
        kind: ObjectKind::IpAddressPool,
        name,
        errors,
    };
    check_namespace(&mut r, &p.metadata, ctx);
    if p.spec.addresses.is_empty() {
        r.err("spec.addresses", "a pool needs at least one CIDR or range");
    }
    let mut ranges = Vec::new();
    let mut blocks = Vec::new();
    for (i, text) in p.spec.addresses.iter().enumerate() {
        match parse_block(text) {
            Ok((range, interval)) => {
                ranges.push(range);
                blocks.push((i, interval));
            }
            Err(message) => r.err(format!("spec.addresses[{i}]"), message),
        }
    }
    let service_allocation = p.spec.service_allocation.as_ref().map(|a| {
        let priority = match a.priority {
            None => 0,
            Some(v) => i32::try_from(v).unwrap_or_else(|_| {
                r.err(
                    "spec.serviceAllocation.priority",
                    format!("{v} is out of range"),
                );
                0
            }),
        };
        no_duplicates(
            &mut r,
            "spec.serviceAllocation.namespaces",
            "namespace",
            &a.namespaces,
        );
        for (i, ns) in a.namespaces.iter().enumerate() {
            if dns_label_problem(ns) {
                r.err(
                    format!("spec.serviceAllocation.namespaces[{i}]"),
                    format!("{ns:?} is not a valid namespace name"),
                );
            }
        }
        ServiceAllocation {
            priority,
            namespaces: a.namespaces.clone(),
            namespace_selectors: selectors(
                &mut r,
                "spec.serviceAllocation.namespaceSelectors",
                &a.namespace_selectors,
            ),
            service_selectors: selectors(
                &mut r,
                "spec.serviceAllocation.serviceSelectors",
                &a.service_selectors,
            ),
        }
    });
    CheckedPool {
        pool: Pool {
            name: name.to_string(),
            ranges,
            auto_assign: p.spec.auto_assign.unwrap_or(true),
            avoid_buggy_ips: p.spec.avoid_buggy_ips,
            service_allocation,
        },
        labels: p.metadata.labels.clone().unwrap_or_default(),
        blocks,
    }
}

/// No address may be in two blocks, of the same pool or of two pools. Reported on both.
pub(super) fn check_overlaps(
    pools: &[CheckedPool],
    objects: &Objects,
    errors: &mut Vec<ConfigError>,
) {
    let mut all: Vec<(Interval, usize, usize)> = Vec::new(); // (interval, pool, address index)
    for (pi, p) in pools.iter().enumerate() {
        for (ai, interval) in &p.blocks {
            all.push((*interval, pi, *ai));
        }
    }
    all.sort_by_key(|(i, _, _)| (i.v6, i.start, i.end));
    // Sweep: compare each block with the following ones that start before it ends.
    for (k, (a, pa, ia)) in all.iter().enumerate() {
        for (b, pb, ib) in all.iter().skip(k + 1) {
            if b.v6 != a.v6 || b.start > a.end {
                break;
            }
            if a.overlaps(b) {
                let text = |p: usize, i: usize| {
                    objects.pools[p]
                        .spec
                        .addresses
                        .get(i)
                        .cloned()
                        .unwrap_or_default()
                };
                for (p, i, op, oi) in [(*pa, *ia, *pb, *ib), (*pb, *ib, *pa, *ia)] {
                    errors.push(ConfigError::new(
                        ObjectKind::IpAddressPool,
                        &pools[p].pool.name,
                        format!("spec.addresses[{i}]"),
                        format!(
                            "{:?} overlaps {:?} of IPAddressPool {:?}",
                            text(p, i),
                            text(op, oi),
                            pools[op].pool.name
                        ),
                    ));
                }
            }
        }
    }
}
