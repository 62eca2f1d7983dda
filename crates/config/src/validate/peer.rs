//! BGPPeers.

use super::{Report, check_namespace, name_of, selectors};
use crate::error::{ConfigError, ObjectKind};
use crate::{Context, Features, Objects, Peer, PeerAsn, PeerTarget};
use ironlb_api::v1beta2;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);

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

/// A BGPPeer's fields, in named steps (each reports on the fields it reads).
pub(super) fn check_peer(
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
    let (my_asn, peer_asn, ebgp_multihop) = autonomous_systems(&mut r, s, f);
    let target = target(&mut r, s, f);
    let source_address = source_address(&mut r, s, target.as_ref());
    let port = s.peer_port.unwrap_or(v1beta2::DEFAULT_PEER_PORT);
    if port == 0 || port > 16384 {
        r.err("spec.peerPort", format!("{port} is out of range 1-16384"));
    }
    let Timers {
        hold_time,
        keepalive_time,
        connect_time,
    } = timers(&mut r, s, f);
    let router_id = router_id(&mut r, s);
    let node_selectors = selectors(&mut r, "spec.nodeSelectors", &s.node_selectors);
    let password = password(&mut r, s, ctx, objects);
    let (bfd_profile, graceful_restart, vrf) = optional_features(&mut r, s, f, objects);
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

/// `myASN`, `localASN`, `peerASN` / `dynamicASN`, and `ebgpMultiHop` (which needs eBGP): our AS
/// on the session, the peer's, and whether the session is multi-hop.
fn autonomous_systems(
    r: &mut Report<'_>,
    s: &v1beta2::BgpPeerSpec,
    f: Features,
) -> (u32, PeerAsn, bool) {
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
    (my_asn, peer_asn, ebgp_multihop)
}

/// `peerAddress` or `interface` (exactly one).
fn target(r: &mut Report<'_>, s: &v1beta2::BgpPeerSpec, f: Features) -> Option<PeerTarget> {
    let address = s.peer_address.as_deref().filter(|a| !a.is_empty());
    let interface = s.interface.as_deref().filter(|i| !i.is_empty());
    match (address, interface) {
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
    }
}

/// `sourceAddress`, of the peer address's family.
fn source_address(
    r: &mut Report<'_>,
    s: &v1beta2::BgpPeerSpec,
    target: Option<&PeerTarget>,
) -> Option<IpAddr> {
    s.source_address
        .as_deref()
        .filter(|a| !a.is_empty())
        .and_then(|a| match a.parse::<IpAddr>() {
            Ok(ip) => {
                if let Some(PeerTarget::Address(peer)) = target
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
        })
}

/// The session's timers.
struct Timers {
    hold_time: Duration,
    keepalive_time: Duration,
    connect_time: Option<Duration>,
}

/// `holdTime` (0 or at least 3 s), `keepaliveTime` (at most the hold time), `connectTime`.
fn timers(r: &mut Report<'_>, s: &v1beta2::BgpPeerSpec, f: Features) -> Timers {
    let hold_time =
        parse_duration_field(r, "spec.holdTime", &s.hold_time).unwrap_or(DEFAULT_HOLD_TIME);
    let hold_secs = hold_time.as_secs();
    if hold_secs != 0 && hold_secs < 3 {
        r.err(
            "spec.holdTime",
            format!("{hold_time:?} is invalid: the hold time must be 0 or at least 3s"),
        );
    }
    let keepalive = parse_duration_field(r, "spec.keepaliveTime", &s.keepalive_time);
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
    let connect_time = parse_duration_field(r, "spec.connectTime", &s.connect_time);
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
    Timers {
        hold_time,
        keepalive_time,
        connect_time,
    }
}

/// `routerID`: an IPv4 address (a BGP identifier is 32 bits).
fn router_id(r: &mut Report<'_>, s: &v1beta2::BgpPeerSpec) -> Option<Ipv4Addr> {
    s.router_id
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
        })
}

/// The TCP MD5 password: `password`, or the `password` key of the `passwordSecret`.
fn password(
    r: &mut Report<'_>,
    s: &v1beta2::BgpPeerSpec,
    ctx: &Context,
    objects: &Objects,
) -> Option<String> {
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
    if password.is_some() && !ctx.features.md5 {
        r.unsupported("spec.password", "TCP MD5 authentication (password)");
    }
    password
}

/// `bfdProfile` (it must exist), `enableGracefulRestart`, `vrf`, `dualStackAddressFamily`: what
/// the build must serve.
fn optional_features(
    r: &mut Report<'_>,
    s: &v1beta2::BgpPeerSpec,
    f: Features,
    objects: &Objects,
) -> (Option<String>, bool, Option<String>) {
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
    (bfd_profile, graceful_restart, vrf)
}
