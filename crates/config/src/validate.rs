//! Every validation rule, one function per kind, plus the cross-object rules.

use crate::address::{Interval, parse_block};
use crate::community::{BgpCommunity, looks_literal, parse_community};
use crate::error::{ConfigError, ObjectKind, UNSUPPORTED};
use crate::selector;
use crate::{
    BfdProfile, BgpAdvertisement, Config, Context, L2Advertisement, LabelSelector, Object, Objects,
    Peer, PeerAsn, PeerTarget, Pool, ServiceAllocation,
};
use ironlb_api::{ObjectMeta, v1beta1, v1beta2};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);

/// Collects errors for one object.
struct Report<'a> {
    kind: ObjectKind,
    name: &'a str,
    errors: &'a mut Vec<ConfigError>,
}

impl Report<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.kind, self.name, field, message));
    }

    /// A reference that does not resolve (yet): reported when the configuration loads, not at
    /// admission (see [`ConfigError::reference`]).
    fn reference(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::reference(self.kind, self.name, field, message));
    }

    fn unsupported(&mut self, field: impl Into<String>, what: &str) {
        self.err(field, format!("{what} {UNSUPPORTED}"));
    }
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn check_namespace(r: &mut Report<'_>, meta: &ObjectMeta, ctx: &Context) {
    if let Some(ns) = &meta.namespace
        && ns != &ctx.namespace
    {
        r.err(
            "metadata.namespace",
            format!(
                "objects must be in ironlb's namespace {:?}, not {ns:?}",
                ctx.namespace
            ),
        );
    }
}

/// Converts a list of selectors, reporting invalid and duplicate ones (a selector repeated, a
/// match expression repeated, a value repeated in a match expression, as MetalLB does).
fn selectors(
    r: &mut Report<'_>,
    field: &str,
    list: &[ironlb_api::LabelSelector],
) -> Vec<LabelSelector> {
    let mut out: Vec<LabelSelector> = Vec::new();
    for (i, sel) in list.iter().enumerate() {
        for (suffix, message) in selector::duplicate_problems(sel) {
            r.err(format!("{field}[{i}]{suffix}"), message);
        }
        match selector::convert(sel) {
            Ok(s) => {
                if out.contains(&s) {
                    r.err(format!("{field}[{i}]"), "duplicate selector");
                } else {
                    out.push(s);
                }
            }
            Err(problems) => {
                for (suffix, message) in problems {
                    r.err(format!("{field}[{i}]{suffix}"), message);
                }
            }
        }
    }
    out
}

fn no_duplicates(r: &mut Report<'_>, field: &str, what: &str, list: &[String]) {
    let mut seen = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        if !seen.insert(item) {
            r.err(
                format!("{field}[{i}]"),
                format!("duplicate {what} {item:?}"),
            );
        }
    }
}

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
struct CheckedPool {
    pool: Pool,
    labels: BTreeMap<String, String>,
    /// (index in spec.addresses, interval)
    blocks: Vec<(usize, Interval)>,
}

fn check_pool(
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
fn check_overlaps(pools: &[CheckedPool], objects: &Objects, errors: &mut Vec<ConfigError>) {
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

fn check_l2(
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

fn check_communities(
    c: &v1beta1::Community,
    ctx: &Context,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, BgpCommunity)> {
    let name = name_of(&c.metadata);
    let mut r = Report {
        kind: ObjectKind::Community,
        name,
        errors,
    };
    check_namespace(&mut r, &c.metadata, ctx);
    let mut out = Vec::new();
    for (i, alias) in c.spec.communities.iter().enumerate() {
        let field = format!("spec.communities[{i}]");
        if alias.name.is_empty() {
            r.err(format!("{field}.name"), "an alias needs a name");
        } else if looks_literal(&alias.name) {
            r.err(
                format!("{field}.name"),
                format!("alias {:?} must not contain ':'", alias.name),
            );
        }
        match parse_community(&alias.value) {
            Ok(v) => out.push((alias.name.clone(), v)),
            Err(message) => r.err(format!("{field}.value"), message),
        }
    }
    out
}

fn check_bgp_ad(
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
fn check_local_pref(
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

fn parse_duration_field(
    r: &mut Report<'_>,
    field: &str,
    text: &Option<String>,
) -> Option<Duration> {
    let text = text.as_deref()?;
    match ironlb_api::parse_duration(text) {
        Ok(d) => Some(d),
        Err(e) => {
            r.err(field, format!("{text:?} is not a valid duration: {e}"));
            None
        }
    }
}

fn check_peer(
    p: &v1beta2::BgpPeer,
    ctx: &Context,
    objects: &Objects,
    errors: &mut Vec<ConfigError>,
) -> Peer {
    let name = name_of(&p.metadata);
    let f = ctx.features;
    let mut r = Report {
        kind: ObjectKind::BgpPeer,
        name,
        errors,
    };
    check_namespace(&mut r, &p.metadata, ctx);
    if !f.bgp {
        r.unsupported("spec", "BGP");
    }
    let s = &p.spec;
    if s.my_asn == 0 {
        r.err("spec.myASN", "myASN must not be 0");
    }
    // localASN replaces myASN on this session (FRR's `local-as <ASN> no-prepend replace-as`,
    // which is what MetalLB configures): the OPEN, the AS_PATH and the iBGP/eBGP decision all
    // use it. ironlb's speaker is one router per session, so that is all it takes.
    let my_asn = match s.local_asn {
        Some(0) => {
            r.err("spec.localASN", "localASN must not be 0");
            s.my_asn
        }
        Some(a) => a,
        None => s.my_asn,
    };
    let fixed = s.peer_asn.filter(|a| *a != 0);
    let peer_asn = match (fixed, s.dynamic_asn) {
        (Some(_), Some(_)) => {
            r.err(
                "spec.dynamicASN",
                "peerASN and dynamicASN are mutually exclusive",
            );
            PeerAsn::Fixed(fixed.unwrap_or_default())
        }
        (None, None) => {
            r.err("spec.peerASN", "one of peerASN and dynamicASN is required");
            PeerAsn::Fixed(0)
        }
        (Some(a), None) => PeerAsn::Fixed(a),
        (None, Some(mode)) => {
            if !f.dynamic_asn {
                r.unsupported("spec.dynamicASN", "dynamicASN");
            }
            match mode {
                v1beta2::DynamicAsn::Internal => PeerAsn::DynamicInternal,
                v1beta2::DynamicAsn::External => PeerAsn::DynamicExternal,
            }
        }
    };
    let ibgp = match peer_asn {
        PeerAsn::Fixed(a) => a == my_asn,
        PeerAsn::DynamicInternal => true,
        PeerAsn::DynamicExternal => false,
    };
    let ebgp_multihop = s.ebgp_multi_hop.unwrap_or(false);
    if ebgp_multihop && ibgp {
        r.err(
            "spec.ebgpMultiHop",
            "ebgpMultiHop cannot be set for an iBGP peer (peer AS = my AS)",
        );
    }
    if ebgp_multihop && !f.ebgp_multihop {
        r.unsupported("spec.ebgpMultiHop", "ebgpMultiHop");
    }
    let address = s.peer_address.as_deref().filter(|a| !a.is_empty());
    let interface = s.interface.as_deref().filter(|i| !i.is_empty());
    let target = match (address, interface) {
        (Some(_), Some(_)) => {
            r.err(
                "spec.interface",
                "peerAddress and interface are mutually exclusive",
            );
            None
        }
        (None, None) => {
            r.err(
                "spec.peerAddress",
                "one of peerAddress and interface is required",
            );
            None
        }
        (Some(a), None) => match a.parse::<IpAddr>() {
            Ok(ip) => {
                if ip.is_ipv6() && !f.bgp_ipv6 {
                    r.unsupported("spec.peerAddress", "peering over IPv6");
                }
                Some(PeerTarget::Address(ip))
            }
            Err(_) => {
                r.err(
                    "spec.peerAddress",
                    format!("{a:?} is not a valid IP address"),
                );
                None
            }
        },
        (None, Some(i)) => {
            if !f.unnumbered {
                r.unsupported("spec.interface", "unnumbered peering (interface)");
            }
            Some(PeerTarget::Interface(i.to_string()))
        }
    };
    let source_address = s
        .source_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .and_then(|a| match a.parse::<IpAddr>() {
            Ok(ip) => {
                if let Some(PeerTarget::Address(peer)) = &target
                    && peer.is_ipv4() != ip.is_ipv4()
                {
                    r.err(
                        "spec.sourceAddress",
                        format!(
                            "{ip} is not of the same address family as the peer address {peer}"
                        ),
                    );
                }
                Some(ip)
            }
            Err(_) => {
                r.err(
                    "spec.sourceAddress",
                    format!("{a:?} is not a valid IP address"),
                );
                None
            }
        });
    let port = s.peer_port.unwrap_or(v1beta2::DEFAULT_PEER_PORT);
    if port == 0 || port > 16384 {
        r.err("spec.peerPort", format!("{port} is out of range 1-16384"));
    }
    let hold_time =
        parse_duration_field(&mut r, "spec.holdTime", &s.hold_time).unwrap_or(DEFAULT_HOLD_TIME);
    let hold_secs = hold_time.as_secs();
    if hold_secs != 0 && hold_secs < 3 {
        r.err(
            "spec.holdTime",
            format!("{hold_time:?} is invalid: the hold time must be 0 or at least 3s"),
        );
    }
    let keepalive = parse_duration_field(&mut r, "spec.keepaliveTime", &s.keepalive_time);
    if keepalive.is_some() && !f.timers {
        r.unsupported("spec.keepaliveTime", "keepaliveTime");
    }
    let keepalive_time = keepalive.unwrap_or(hold_time / 3);
    if keepalive_time > hold_time {
        r.err(
            "spec.keepaliveTime",
            format!(
                "keepalive time {keepalive_time:?} must not exceed the hold time {hold_time:?}"
            ),
        );
    }
    let connect_time = parse_duration_field(&mut r, "spec.connectTime", &s.connect_time);
    if let Some(ct) = connect_time {
        if !f.timers {
            r.unsupported("spec.connectTime", "connectTime");
        }
        if ct.subsec_nanos() != 0 || !(1..=65535).contains(&ct.as_secs()) {
            r.err(
                "spec.connectTime",
                format!("{ct:?} must be a whole number of seconds from 1 to 65535"),
            );
        }
    }
    let router_id = s
        .router_id
        .as_deref()
        .filter(|a| !a.is_empty())
        .and_then(|a| match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => Some(v4),
            Ok(IpAddr::V6(_)) => {
                r.err(
                    "spec.routerID",
                    format!("{a:?} is not valid: a BGP router ID is an IPv4 address"),
                );
                None
            }
            Err(_) => {
                r.err(
                    "spec.routerID",
                    format!("{a:?} is not a valid router ID (an IPv4 address)"),
                );
                None
            }
        });
    let node_selectors = selectors(&mut r, "spec.nodeSelectors", &s.node_selectors);
    let mut password = s.password.clone().filter(|p| !p.is_empty());
    // Everything about the Secret is judged when the configuration loads, not at admission
    // (as in MetalLB): the Secret may be created after the peer, e.g. by a sealed-secrets or
    // external-secrets controller. A reference without a name is no reference (as in MetalLB).
    let secret_name = s
        .password_secret
        .as_ref()
        .and_then(|r| r.name.as_deref())
        .filter(|n| !n.is_empty());
    if let (Some(secret_ref), Some(secret_name)) = (&s.password_secret, secret_name) {
        if password.is_some() {
            r.reference(
                "spec.passwordSecret",
                "password and passwordSecret are mutually exclusive",
            );
        }
        if secret_ref
            .namespace
            .as_ref()
            .is_some_and(|ns| !ns.is_empty() && ns != &ctx.namespace)
        {
            r.reference(
                "spec.passwordSecret.namespace",
                format!(
                    "the Secret must be in ironlb's namespace {:?}",
                    ctx.namespace
                ),
            );
        } else {
            match objects.secrets.get(secret_name) {
                None => r.reference(
                    "spec.passwordSecret",
                    format!(
                        "Secret {secret_name:?} not found in namespace {:?}",
                        ctx.namespace
                    ),
                ),
                Some(secret) => {
                    if secret.type_.as_deref() != Some("kubernetes.io/basic-auth") {
                        r.reference(
                            "spec.passwordSecret",
                            format!(
                                "Secret {secret_name:?} must be of type kubernetes.io/basic-auth"
                            ),
                        );
                    }
                    match secret.data.get("password") {
                        Some(pw) => password = password.or(Some(pw.clone())),
                        None => r.reference(
                            "spec.passwordSecret",
                            format!("Secret {secret_name:?} has no key \"password\""),
                        ),
                    }
                }
            }
        }
    }
    if password.is_some() && !f.md5 {
        r.unsupported("spec.password", "TCP MD5 authentication (password)");
    }
    let bfd_profile = s.bfd_profile.clone().filter(|b| !b.is_empty());
    if let Some(b) = &bfd_profile {
        if !f.bfd {
            r.unsupported("spec.bfdProfile", "BFD");
        }
        if !objects
            .bfd_profiles
            .iter()
            .any(|x| name_of(&x.metadata) == b)
        {
            r.reference(
                "spec.bfdProfile",
                format!("BFDProfile {b:?} does not exist"),
            );
        }
    }
    let graceful_restart = s.enable_graceful_restart.unwrap_or(false);
    if graceful_restart && !f.graceful_restart {
        r.unsupported("spec.enableGracefulRestart", "graceful restart");
    }
    let vrf = s.vrf.clone().filter(|v| !v.is_empty());
    if vrf.is_some() && !f.vrf {
        r.unsupported("spec.vrf", "peering in a VRF");
    }
    if s.dual_stack_address_family && !f.bgp_ipv6 {
        r.unsupported(
            "spec.dualStackAddressFamily",
            "dualStackAddressFamily (IPv6 over BGP)",
        );
    }
    Peer {
        name: name.to_string(),
        my_asn,
        peer_asn,
        target: target.unwrap_or(PeerTarget::Interface(String::new())),
        port,
        source_address,
        hold_time,
        keepalive_time,
        connect_time,
        router_id,
        node_selectors,
        password,
        bfd_profile,
        graceful_restart,
        ebgp_multihop,
        vrf,
        dual_stack_address_family: s.dual_stack_address_family,
    }
}

fn check_bfd(b: &v1beta1::BfdProfile, ctx: &Context, errors: &mut Vec<ConfigError>) -> BfdProfile {
    let name = name_of(&b.metadata);
    let mut r = Report {
        kind: ObjectKind::BfdProfile,
        name,
        errors,
    };
    check_namespace(&mut r, &b.metadata, ctx);
    let s = &b.spec;
    // A value in its range, or the default (an out-of-range value is reported; the profile
    // built then is never used, since the configuration is invalid).
    let mut ranged = |field: &str, value: Option<u32>, lo: u32, hi: u32, default: u32| match value {
        Some(v) if (lo..=hi).contains(&v) => v,
        Some(v) => {
            r.err(field, format!("{v} is out of range {lo}-{hi}"));
            default
        }
        None => default,
    };
    let receive_interval = ranged(
        "spec.receiveInterval",
        s.receive_interval,
        10,
        60000,
        BfdProfile::DEFAULT_INTERVAL,
    );
    let transmit_interval = ranged(
        "spec.transmitInterval",
        s.transmit_interval,
        10,
        60000,
        BfdProfile::DEFAULT_INTERVAL,
    );
    let echo_interval = ranged(
        "spec.echoInterval",
        s.echo_interval,
        10,
        60000,
        BfdProfile::DEFAULT_ECHO_INTERVAL,
    );
    let detect_multiplier = ranged(
        "spec.detectMultiplier",
        s.detect_multiplier,
        2,
        255,
        BfdProfile::DEFAULT_DETECT_MULTIPLIER.into(),
    );
    let minimum_ttl = ranged(
        "spec.minimumTtl",
        s.minimum_ttl,
        1,
        254,
        BfdProfile::DEFAULT_MINIMUM_TTL.into(),
    );
    if s.echo_mode == Some(true) && !ctx.features.bfd_echo {
        r.unsupported("spec.echoMode", "BFD echo mode");
    }
    BfdProfile {
        name: name.to_string(),
        receive_interval,
        transmit_interval,
        detect_multiplier: u8::try_from(detect_multiplier)
            .unwrap_or(BfdProfile::DEFAULT_DETECT_MULTIPLIER),
        echo_interval,
        echo_mode: s.echo_mode.unwrap_or(false),
        passive_mode: s.passive_mode.unwrap_or(false),
        minimum_ttl: u8::try_from(minimum_ttl).unwrap_or(BfdProfile::DEFAULT_MINIMUM_TTL),
    }
}

/// Builds the configuration from every object, or returns every error (sorted, deduplicated).
pub fn build(objects: &Objects, ctx: &Context) -> Result<Config, Vec<ConfigError>> {
    build_with_warnings(objects, ctx).0
}

/// [`build`], and the warnings also when the configuration is invalid.
fn build_with_warnings(
    objects: &Objects,
    ctx: &Context,
) -> (Result<Config, Vec<ConfigError>>, Vec<ConfigError>) {
    let mut errors = Vec::new();

    let mut pools: Vec<CheckedPool> = objects
        .pools
        .iter()
        .map(|p| check_pool(p, ctx, &mut errors))
        .collect();
    check_overlaps(&pools, objects, &mut errors);

    let mut aliases: BTreeMap<String, BgpCommunity> = BTreeMap::new();
    let mut alias_owner: BTreeMap<String, String> = BTreeMap::new();
    for c in &objects.communities {
        let owner = name_of(&c.metadata).to_string();
        for (i, (alias, value)) in check_communities(c, ctx, &mut errors)
            .into_iter()
            .enumerate()
        {
            if let Some(first) = alias_owner.get(&alias) {
                errors.push(ConfigError::new(
                    ObjectKind::Community,
                    &owner,
                    format!("spec.communities[{i}].name"),
                    format!(
                        "duplicate community alias {alias:?} (also defined in Community {first:?})"
                    ),
                ));
                if first != &owner {
                    errors.push(ConfigError::new(
                        ObjectKind::Community,
                        first,
                        "spec.communities",
                        format!("duplicate community alias {alias:?} (also defined in Community {owner:?})"),
                    ));
                }
            } else {
                alias_owner.insert(alias.clone(), owner.clone());
                aliases.insert(alias, value);
            }
        }
    }

    let mut warnings = Vec::new();
    let mut l2: Vec<L2Advertisement> = objects
        .l2_advertisements
        .iter()
        .map(|a| check_l2(a, ctx, &pools, &mut errors, &mut warnings))
        .collect();
    let mut bgp: Vec<BgpAdvertisement> = objects
        .bgp_advertisements
        .iter()
        .map(|a| check_bgp_ad(a, ctx, &pools, &aliases, &mut errors, &mut warnings))
        .collect();
    bgp.sort_by(|a, b| a.name.cmp(&b.name));
    check_local_pref(&bgp, &pools, objects.nodes.as_deref(), &mut errors);

    let mut peers: Vec<Peer> = objects
        .peers
        .iter()
        .map(|p| check_peer(p, ctx, objects, &mut errors))
        .collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, a) in peers.iter().enumerate() {
        for b in peers.iter().skip(i + 1) {
            let same = Peer {
                name: String::new(),
                ..a.clone()
            } == Peer {
                name: String::new(),
                ..b.clone()
            };
            if same {
                for (x, y) in [(a, b), (b, a)] {
                    errors.push(ConfigError::new(
                        ObjectKind::BgpPeer,
                        &x.name,
                        "spec",
                        format!("identical to BGPPeer {:?}", y.name),
                    ));
                }
            }
        }
    }

    let bfd_profiles: BTreeMap<String, BfdProfile> = objects
        .bfd_profiles
        .iter()
        .map(|b| check_bfd(b, ctx, &mut errors))
        .map(|b| (b.name.clone(), b))
        .collect();

    warnings.sort();
    warnings.dedup();
    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        return (Err(errors), warnings);
    }
    pools.sort_by(|a, b| a.pool.name.cmp(&b.pool.name));
    l2.sort_by(|a, b| a.name.cmp(&b.name));
    let config = Config {
        warnings: warnings.clone(),
        pools: pools.into_iter().map(|p| p.pool).collect(),
        l2_advertisements: l2,
        bgp_advertisements: bgp,
        peers,
        bfd_profiles,
        communities: aliases,
    };
    (Ok(config), warnings)
}

fn key_of(object: &Object) -> (ObjectKind, String) {
    let (kind, meta) = match object {
        Object::Pool(o) => (ObjectKind::IpAddressPool, &o.metadata),
        Object::L2Advertisement(o) => (ObjectKind::L2Advertisement, &o.metadata),
        Object::BgpAdvertisement(o) => (ObjectKind::BgpAdvertisement, &o.metadata),
        Object::Peer(o) => (ObjectKind::BgpPeer, &o.metadata),
        Object::BfdProfile(o) => (ObjectKind::BfdProfile, &o.metadata),
        Object::Community(o) => (ObjectKind::Community, &o.metadata),
    };
    (kind, name_of(meta).to_string())
}

fn upsert<T: Clone>(list: &mut Vec<T>, item: &T, name: &str, meta: impl Fn(&T) -> &ObjectMeta) {
    list.retain(|x| name_of(meta(x)) != name);
    list.push(item.clone());
}

/// The admission webhook's verdict on one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Why the object is refused (empty: admitted).
    pub errors: Vec<ConfigError>,
    /// What the user should hear although the object is admitted: references that do not
    /// resolve yet (see [`ConfigError::reference`]), pools that do not exist yet, deprecated
    /// fields.
    pub warnings: Vec<String>,
}

/// Judges `object` as if it were created (or replaced the object of the same kind and name)
/// among `existing`: the errors and warnings attributable to it. References that do not
/// resolve yet are warnings, not errors: like MetalLB, admission makes no assumption about the
/// order in which objects are applied.
pub fn admit(existing: &Objects, ctx: &Context, object: &Object) -> Admission {
    let mut objects = existing.clone();
    let (kind, name) = key_of(object);
    let mut deprecated = Vec::new();
    match object {
        Object::Pool(o) => upsert(&mut objects.pools, o, &name, |x| &x.metadata),
        Object::L2Advertisement(o) => {
            upsert(&mut objects.l2_advertisements, o, &name, |x| &x.metadata)
        }
        Object::BgpAdvertisement(o) => {
            upsert(&mut objects.bgp_advertisements, o, &name, |x| &x.metadata)
        }
        Object::Peer(o) => {
            if o.spec.disable_mp {
                // MetalLB's words: it has no effect since MetalLB made it the default.
                deprecated.push(format!(
                    "BGPPeer {name:?}: spec.disableMP is deprecated and has no effect (separate sessions per address family are the default); use spec.dualStackAddressFamily to carry both families on one session"
                ));
            }
            upsert(&mut objects.peers, o, &name, |x| &x.metadata)
        }
        Object::BfdProfile(o) => upsert(&mut objects.bfd_profiles, o, &name, |x| &x.metadata),
        Object::Community(o) => upsert(&mut objects.communities, o, &name, |x| &x.metadata),
    }
    let (built, warnings) = build_with_warnings(&objects, ctx);
    let mine = |e: &ConfigError| e.kind == kind && e.name == name;
    let (pending, errors): (Vec<ConfigError>, Vec<ConfigError>) = built
        .err()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| mine(e))
        .partition(|e| e.reference);
    Admission {
        errors,
        warnings: pending
            .iter()
            .map(|e| {
                format!("{e}: the configuration waits for it (the last valid one keeps serving)")
            })
            .chain(warnings.iter().filter(|e| mine(e)).map(|e| e.to_string()))
            .chain(deprecated)
            .collect(),
    }
}

/// The errors for which the admission webhook refuses `object` ([`admit`]'s errors).
pub fn validate_object(existing: &Objects, ctx: &Context, object: &Object) -> Vec<ConfigError> {
    admit(existing, ctx, object).errors
}

/// Why deleting the object `kind`/`name` is refused, if it is: exactly what MetalLB refuses, a
/// BFDProfile that a BGPPeer still names. Every other delete is allowed, whatever names the
/// object (an advertisement's pool, a Community alias): the configuration reports what no
/// longer resolves, so that `kubectl delete -f` works in any order.
pub fn validate_delete(
    existing: &Objects,
    _ctx: &Context,
    kind: ObjectKind,
    name: &str,
) -> Vec<ConfigError> {
    if kind != ObjectKind::BfdProfile {
        return Vec::new();
    }
    existing
        .peers
        .iter()
        .filter(|p| p.spec.bfd_profile.as_deref() == Some(name))
        .map(|p| {
            ConfigError::new(
                kind,
                name,
                "metadata.name",
                format!(
                    "still used by BGPPeer {:?} (spec.bfdProfile); change or delete that peer first",
                    name_of(&p.metadata)
                ),
            )
        })
        .collect()
}
