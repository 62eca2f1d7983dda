//! Every validation rule, one module per kind, plus the cross-object rules and the admission
//! webhook's view.
//!
//! ```text
//!   Objects -> pool.rs (pools, overlaps) -> advertisement.rs (L2/BGP ads, pools they name,
//!              localPref / asPathPrepend conflicts) -> community.rs -> peer.rs -> bfd.rs
//!           -> Config | Vec<ConfigError> (+ warnings)      admit() / validate_delete(): per object
//! ```

mod advertisement;
mod bfd;
mod community;
mod peer;
mod pool;

use crate::community::BgpCommunity;
use crate::error::{ConfigError, ObjectKind, UNSUPPORTED};
use crate::selector;
use crate::{
    BfdProfile, BgpAdvertisement, Config, Context, L2Advertisement, LabelSelector, Object, Objects,
    Peer,
};
use advertisement::{check_bgp_ad, check_l2, check_local_pref};
use bfd::check_bfd;
use community::check_communities;
use ironlb_api::ObjectMeta;
use peer::check_peer;
use pool::{CheckedPool, check_overlaps, check_pool};
use std::collections::{BTreeMap, BTreeSet};

/// Collects errors for one object.
pub(super) struct Report<'a> {
    pub(super) kind: ObjectKind,
    pub(super) name: &'a str,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

impl Report<'_> {
    pub(super) fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.kind, self.name, field, message));
    }

    /// A reference that does not resolve (yet): reported when the configuration loads, not at
    /// admission (see [`ConfigError::reference`]).
    pub(super) fn reference(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::reference(self.kind, self.name, field, message));
    }

    pub(super) fn unsupported(&mut self, field: impl Into<String>, what: &str) {
        self.err(field, format!("{what} {UNSUPPORTED}"));
    }
}

pub(super) fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

pub(super) fn check_namespace(r: &mut Report<'_>, meta: &ObjectMeta, ctx: &Context) {
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
pub(super) fn selectors(
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

pub(super) fn no_duplicates(r: &mut Report<'_>, field: &str, what: &str, list: &[String]) {
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
