//! L2Advertisements and BGPAdvertisements: their fields, the pools they name, and the
//! localPref / asPathPrepend conflicts between BGPAdvertisements.

use super::pool::CheckedPool;
use super::{Report, check_namespace, name_of, no_duplicates, selectors};
use crate::community::{BgpCommunity, looks_literal, parse_community};
use crate::error::{ConfigError, ObjectKind};
use crate::selector;
use crate::{BgpAdvertisement, Context, L2Advertisement, LabelSelector};
use ironlb_api::v1beta1;
use std::collections::{BTreeMap, BTreeSet};

/// Resolves `ipAddressPools` + `ipAddressPoolSelectors` (both empty: every pool). A name that
/// matches no pool is skipped, as MetalLB skips it, with a warning: it is picked up when the
/// pool appears, and it never blocks the rest of the configuration.
fn resolve_pools(
    r: &mut Report<'_>,
    names: &[String],
    sels: &[ironlb_api::LabelSelector],
    pools: &[CheckedPool],
    warnings: &mut Vec<ConfigError>,
) -> Vec<String> {
    no_duplicates(r, "spec.ipAddressPools", "pool", names);
    let converted = selectors(r, "spec.ipAddressPoolSelectors", sels);
    if names.is_empty() && sels.is_empty() {
        return pools.iter().map(|p| p.pool.name.clone()).collect();
    }
    let mut out = BTreeSet::new();
    for (i, n) in names.iter().enumerate() {
        if pools.iter().any(|p| &p.pool.name == n) {
            out.insert(n.clone());
        } else {
            warnings.push(ConfigError::reference(
                r.kind,
                r.name,
                format!("spec.ipAddressPools[{i}]"),
                format!("IPAddressPool {n:?} does not exist (yet): skipped until it does"),
            ));
        }
    }
    for p in pools {
        if converted.iter().any(|s| s.matches(&p.labels)) {
            out.insert(p.pool.name.clone());
        }
    }
    out.into_iter().collect()
}

pub(super) fn check_l2(
    a: &v1beta1::L2Advertisement,
    ctx: &Context,
    pools: &[CheckedPool],
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> L2Advertisement {
    let name = name_of(&a.metadata);
    let mut r = Report {
        kind: ObjectKind::L2Advertisement,
        name,
        errors,
    };
    check_namespace(&mut r, &a.metadata, ctx);
    let s = &a.spec;
    let pools = resolve_pools(
        &mut r,
        &s.ip_address_pools,
        &s.ip_address_pool_selectors,
        pools,
        warnings,
    );
    no_duplicates(&mut r, "spec.interfaces", "interface", &s.interfaces);
    let mut preferred_nodes = Vec::new();
    for (i, p) in s.preferred_node_selectors.iter().enumerate() {
        let field = format!("spec.preferredNodeSelectors[{i}]");
        if !(1..=100).contains(&p.weight) {
            r.err(
                format!("{field}.weight"),
                format!("weight {} must be 1-100", p.weight),
            );
        }
        match selector::convert(&p.preference) {
            Ok(sel) => preferred_nodes.push((p.weight, sel)),
            Err(problems) => {
                for (suffix, message) in problems {
                    r.err(format!("{field}.preference{suffix}"), message);
                }
            }
        }
    }
    L2Advertisement {
        name: name.to_string(),
        pools,
        node_selectors: selectors(&mut r, "spec.nodeSelectors", &s.node_selectors),
        interfaces: s.interfaces.clone(),
        service_selectors: selectors(&mut r, "spec.serviceSelectors", &s.service_selectors),
        preferred_nodes,
    }
}

pub(super) fn check_bgp_ad(
    a: &v1beta1::BgpAdvertisement,
    ctx: &Context,
    pools: &[CheckedPool],
    aliases: &BTreeMap<String, BgpCommunity>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> BgpAdvertisement {
    let name = name_of(&a.metadata);
    let mut r = Report {
        kind: ObjectKind::BgpAdvertisement,
        name,
        errors,
    };
    check_namespace(&mut r, &a.metadata, ctx);
    if !ctx.features.bgp {
        r.unsupported("spec", "BGP");
    }
    let s = &a.spec;
    let resolved = resolve_pools(
        &mut r,
        &s.ip_address_pools,
        &s.ip_address_pool_selectors,
        pools,
        warnings,
    );
    let agg4 = s.aggregation_length.unwrap_or(32);
    let agg6 = s.aggregation_length_v6.unwrap_or(128);
    if !(1..=32).contains(&agg4) {
        r.err(
            "spec.aggregationLength",
            format!("{agg4} is out of range: IPv4 aggregation length must be 1-32"),
        );
    }
    if !(1..=128).contains(&agg6) {
        r.err(
            "spec.aggregationLengthV6",
            format!("{agg6} is out of range: IPv6 aggregation length must be 1-128"),
        );
    }
    if !s.service_selectors.is_empty() && (agg4 != 32 || agg6 != 128) {
        r.err(
            "spec.serviceSelectors",
            "serviceSelectors cannot be used with a non-default aggregationLength or aggregationLengthV6",
        );
    }
    // Each block of each covered pool must be at least as wide as the aggregation prefix.
    for p in pools.iter().filter(|p| resolved.contains(&p.pool.name)) {
        for (i, block) in &p.blocks {
            let (agg, field) = if block.v6 {
                (agg6, "spec.aggregationLengthV6")
            } else {
                (agg4, "spec.aggregationLength")
            };
            let lowest = i32::from(block.lowest_mask());
            if agg < lowest {
                r.err(
                    field,
                    format!(
                        "aggregation length {agg} is shorter than the /{lowest} of IPAddressPool {:?} spec.addresses[{i}]",
                        p.pool.name
                    ),
                );
            }
            if block.v6 && !ctx.features.bgp_ipv6 {
                r.unsupported(
                    "spec.ipAddressPools",
                    &format!(
                        "announcing IPv6 addresses (IPAddressPool {:?}) over BGP",
                        p.pool.name
                    ),
                );
            }
        }
    }
    no_duplicates(&mut r, "spec.communities", "community", &s.communities);
    let mut communities = Vec::new();
    for (i, c) in s.communities.iter().enumerate() {
        let field = format!("spec.communities[{i}]");
        let value = if let Some(v) = aliases.get(c) {
            Some(*v)
        } else if looks_literal(c) {
            parse_community(c).map_err(|m| r.err(&field, m)).ok()
        } else {
            // Not a literal: the name of a Community alias that may be created later.
            r.reference(
                &field,
                format!("{c:?} is neither a community (a:b, large:a:b:c) nor the name of a Community alias"),
            );
            None
        };
        if let Some(v) = value {
            if matches!(v, BgpCommunity::Large(..)) && !ctx.features.large_communities {
                r.unsupported(&field, "large communities");
            }
            communities.push(v);
        }
    }
    no_duplicates(&mut r, "spec.peers", "peer", &s.peers);
    let as_path_prepend = match s.as_path_prepend {
        None => 0,
        Some(n) if (1..=10).contains(&n) => {
            if !ctx.features.as_path_prepend {
                r.unsupported("spec.asPathPrepend", "asPathPrepend");
            }
            n
        }
        Some(n) => {
            r.err("spec.asPathPrepend", format!("{n} is out of range 1-10"));
            0
        }
    };
    BgpAdvertisement {
        name: name.to_string(),
        pools: resolved,
        aggregation_length: u8::try_from(agg4.clamp(1, 32)).unwrap_or(32),
        aggregation_length_v6: u8::try_from(agg6.clamp(1, 128)).unwrap_or(128),
        local_pref: s.local_pref,
        as_path_prepend,
        communities,
        node_selectors: selectors(&mut r, "spec.nodeSelectors", &s.node_selectors),
        peers: s.peers.clone(),
        service_selectors: selectors(&mut r, "spec.serviceSelectors", &s.service_selectors),
    }
}

/// Whether some Node is selected by both selector lists (an empty list selects every Node).
fn share_a_node(
    nodes: &[BTreeMap<String, String>],
    a: &[LabelSelector],
    b: &[LabelSelector],
) -> bool {
    nodes
        .iter()
        .any(|n| LabelSelector::list_selects(a, n) && LabelSelector::list_selects(b, n))
}

/// Advertisements announcing the same prefixes to the same peer from the same node must agree
/// on LOCAL_PREF and on asPathPrepend. Reported on both. As in MetalLB, advertisements with
/// `serviceSelectors` are not compared (which Services each one carries is not known until
/// Services are there), and "the same node" means a Node that exists and both select: without
/// the Nodes ([`Objects::nodes`]) the rule is not checked.
pub(super) fn check_local_pref(
    ads: &[BgpAdvertisement],
    pools: &[CheckedPool],
    nodes: Option<&[BTreeMap<String, String>]>,
    errors: &mut Vec<ConfigError>,
) {
    let Some(nodes) = nodes else { return };
    let families = |name: &str| -> (bool, bool) {
        pools
            .iter()
            .find(|p| p.pool.name == name)
            .map(|p| {
                (
                    p.blocks.iter().any(|(_, b)| !b.v6),
                    p.blocks.iter().any(|(_, b)| b.v6),
                )
            })
            .unwrap_or((false, false))
    };
    let comparable = ads.iter().filter(|a| a.service_selectors.is_empty());
    for (i, a) in comparable.clone().enumerate() {
        for b in comparable.clone().skip(i + 1) {
            if a.local_pref == b.local_pref && a.as_path_prepend == b.as_path_prepend {
                continue;
            }
            let peers_overlap = a.peers.is_empty()
                || b.peers.is_empty()
                || a.peers.iter().any(|p| b.peers.contains(p));
            if !peers_overlap || !share_a_node(nodes, &a.node_selectors, &b.node_selectors) {
                continue;
            }
            let shared = a.pools.iter().find(|p| {
                b.pools.contains(p) && {
                    let (v4, v6) = families(p);
                    (v4 && a.aggregation_length == b.aggregation_length)
                        || (v6 && a.aggregation_length_v6 == b.aggregation_length_v6)
                }
            });
            let Some(pool) = shared else { continue };
            let show = |v: Option<u32>| v.map_or("unset".to_string(), |v| v.to_string());
            for (x, y) in [(a, b), (b, a)] {
                if x.local_pref != y.local_pref {
                    errors.push(ConfigError::new(
                        ObjectKind::BgpAdvertisement,
                        &x.name,
                        "spec.localPref",
                        format!(
                            "localPref {} conflicts with localPref {} of BGPAdvertisement {:?} for IPAddressPool {pool:?} on the same peers and nodes",
                            show(x.local_pref),
                            show(y.local_pref),
                            y.name
                        ),
                    ));
                }
                if x.as_path_prepend != y.as_path_prepend {
                    let show = |n: u8| {
                        if n == 0 {
                            "unset".to_string()
                        } else {
                            n.to_string()
                        }
                    };
                    errors.push(ConfigError::new(
                        ObjectKind::BgpAdvertisement,
                        &x.name,
                        "spec.asPathPrepend",
                        format!(
                            "asPathPrepend {} conflicts with asPathPrepend {} of BGPAdvertisement {:?} for IPAddressPool {pool:?} on the same peers and nodes",
                            show(x.as_path_prepend),
                            show(y.as_path_prepend),
                            y.name
                        ),
                    ));
                }
            }
        }
    }
}
