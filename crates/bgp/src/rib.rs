//! What the speaker wants the peer to have, what the peer has (Adj-RIB-Out), and the fewest
//! UPDATE messages that take it from one to the other. Pure.
//!
//! ```text
//!   Announcements (wanted) ──AdjRibOut::update_to──> Vec<UpdateMessage> (withdrawals first,
//!                                                    then one run of messages per attribute set)
//! ```

use crate::packet::attribute::{
    AsPath, Community, LargeCommunity, MpReach, MpUnreach, Origin, PathAttributes, prefix_wire_len,
};
use crate::packet::capability::Family;
use crate::packet::message::UpdateMessage;
use crate::packet::{EncodeContext, HEADER_LEN, MAX_MESSAGE_LEN};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// LOCAL_PREF sent on iBGP sessions for a prefix without its own (`localPref` unset); the
/// usual routers' default.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The attributes the speaker gives one announced prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteAttributes {
    /// Next hop; `None` means the session's own address of the prefix's family.
    pub next_hop: Option<IpAddr>,
    /// LOCAL_PREF, sent on iBGP sessions only ([`DEFAULT_LOCAL_PREF`] when `None`).
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// Standard communities.
    pub communities: Vec<Community>,
    /// Large communities.
    pub large_communities: Vec<LargeCommunity>,
    /// How many more times our AS goes before the path on eBGP sessions (`asPathPrepend`):
    /// the AS_PATH then holds `1 + as_path_prepend` copies of it. Ignored on iBGP sessions.
    pub as_path_prepend: u8,
}

/// The prefixes the speaker wants announced, with their attributes.
pub type Announcements = BTreeMap<IpNet, RouteAttributes>;

/// What packing needs to know about an established session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// Our ASN (prepended on eBGP).
    pub local_as: u32,
    /// The peer is in another AS.
    pub ebgp: bool,
    /// 4-octet ASNs negotiated.
    pub four_octet_as: bool,
    /// Families both sides support.
    pub families: Vec<Family>,
    /// Next hop for IPv4 prefixes without their own.
    pub ipv4_next_hop: Option<Ipv4Addr>,
    /// Next hop for IPv6 prefixes without their own.
    pub ipv6_next_hop: Option<Ipv6Addr>,
}

impl SessionParams {
    fn ctx(&self) -> EncodeContext {
        EncodeContext {
            four_octet_as: self.four_octet_as,
            ebgp: self.ebgp,
        }
    }

    fn supports(&self, prefix: &IpNet) -> bool {
        let family = match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        };
        self.families.contains(&family)
    }

    /// The next hop for `prefix`, if one of its family is known.
    fn next_hop(&self, prefix: &IpNet, attrs: &RouteAttributes) -> Option<IpAddr> {
        match (prefix, attrs.next_hop) {
            (IpNet::V4(_), Some(nh @ IpAddr::V4(_))) | (IpNet::V6(_), Some(nh @ IpAddr::V6(_))) => {
                Some(nh)
            }
            (IpNet::V4(_), _) => self.ipv4_next_hop.map(IpAddr::V4),
            (IpNet::V6(_), _) => self.ipv6_next_hop.map(IpAddr::V6),
        }
    }

    /// The AS_PATH we originate with, `prepend` extra copies of our AS on eBGP.
    ///
    /// eBGP: our AS once (RFC 4271 §5.1.2), then `prepend` more — what FRR sends for MetalLB's
    /// `set as-path prepend <myASN>` repeated `prepend` times, applied before FRR adds its own
    /// AS, so a router sees `1 + prepend` copies. iBGP: empty, prepend or not. A path prepended
    /// with our own AS would look like a loop to the router in that same AS (RFC 4271 §9.1.2,
    /// FRR drops it unless `allowas-in`), and inside one AS LOCAL_PREF is the knob that ranks
    /// routes, before path length is looked at.
    fn as_path(&self, prepend: u8) -> AsPath {
        if self.ebgp {
            AsPath::sequence(vec![self.local_as; 1 + usize::from(prepend)])
        } else {
            AsPath::default()
        }
    }

    /// The path attributes (without NLRI) for a group.
    fn path_attributes(&self, attrs: &RouteAttributes) -> PathAttributes {
        let mut communities = attrs.communities.clone();
        communities.sort();
        communities.dedup();
        let mut large = attrs.large_communities.clone();
        large.sort();
        large.dedup();
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(self.as_path(attrs.as_path_prepend)),
            med: attrs.med,
            // RFC 4271 §5.1.5: LOCAL_PREF is mandatory towards internal peers (FRR treats an
            // iBGP UPDATE without it as a withdrawal).
            local_pref: if self.ebgp {
                None
            } else {
                Some(attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
            },
            communities,
            large_communities: large,
            ..PathAttributes::default()
        }
    }

    /// One End-of-RIB UPDATE per negotiated family.
    pub fn end_of_rib(&self) -> Vec<UpdateMessage> {
        self.families
            .iter()
            .map(|f| UpdateMessage::end_of_rib(*f))
            .collect()
    }
}

/// Room left for prefixes in an UPDATE whose other parts take `fixed` octets.
fn room(fixed: usize) -> usize {
    MAX_MESSAGE_LEN.saturating_sub(fixed)
}

/// Splits `prefixes` into runs whose encoded size fits `room` octets each, in order: each
/// message takes prefixes until the next one does not fit.
fn chunk_by_size<T: Copy>(prefixes: &[T], len_of: impl Fn(&T) -> u8, room: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut used = 0;
    for p in prefixes {
        let n = prefix_wire_len(len_of(p));
        if used + n > room && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
            used = 0;
        }
        cur.push(*p);
        used += n;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Octets of an UPDATE besides attributes and NLRI: header, withdrawn length, attribute length.
const UPDATE_FIXED: usize = HEADER_LEN + 4;
/// An MP attribute header with extended length, plus AFI and SAFI.
const MP_FIXED: usize = 4 + 3;

/// The UPDATEs that withdraw `withdraw` and announce `announce`, packed into as few messages as
/// greedy filling gives: withdrawals first (IPv4 in the withdrawn routes field, IPv6 in
/// MP_UNREACH_NLRI), then for each distinct attribute set its prefixes (IPv4 in the NLRI field,
/// IPv6 in MP_REACH_NLRI). Every message fits in 4096 octets. Prefixes of a family the session
/// does not carry, or without a next hop, are left out.
pub fn pack_updates(
    announce: &[(IpNet, RouteAttributes)],
    withdraw: &[IpNet],
    params: &SessionParams,
) -> Vec<UpdateMessage> {
    let mut out = Vec::new();
    let w4: Vec<Ipv4Net> = withdraw
        .iter()
        .filter(|p| params.supports(p))
        .filter_map(|p| match p {
            IpNet::V4(p) => Some(*p),
            IpNet::V6(_) => None,
        })
        .collect();
    let w6: Vec<Ipv6Net> = withdraw
        .iter()
        .filter(|p| params.supports(p))
        .filter_map(|p| match p {
            IpNet::V6(p) => Some(*p),
            IpNet::V4(_) => None,
        })
        .collect();
    for chunk in chunk_by_size(&w4, |p| p.prefix_len(), room(UPDATE_FIXED)) {
        out.push(UpdateMessage {
            withdrawn: chunk,
            ..UpdateMessage::default()
        });
    }
    for chunk in chunk_by_size(&w6, |p| p.prefix_len(), room(UPDATE_FIXED + MP_FIXED)) {
        let mut u = UpdateMessage::default();
        u.attributes.mp_unreach = Some(MpUnreach::Ipv6Unicast(chunk));
        out.push(u);
    }

    // Group by (resolved next hop, attributes); the next hop decides the family.
    let mut groups: BTreeMap<(IpAddr, RouteAttributes), Vec<IpNet>> = BTreeMap::new();
    for (prefix, attrs) in announce {
        if !params.supports(prefix) {
            continue;
        }
        let Some(nh) = params.next_hop(prefix, attrs) else {
            continue;
        };
        let key = RouteAttributes {
            next_hop: None,
            ..attrs.clone()
        };
        groups.entry((nh, key)).or_default().push(*prefix);
    }
    let ctx = params.ctx();
    for ((nh, attrs), prefixes) in groups {
        let mut pa = params.path_attributes(&attrs);
        match nh {
            IpAddr::V4(nh) => {
                pa.next_hop = Some(nh);
                let fixed = UPDATE_FIXED + pa.encoded_len(&ctx);
                let v4: Vec<Ipv4Net> = prefixes
                    .iter()
                    .filter_map(|p| match p {
                        IpNet::V4(p) => Some(*p),
                        IpNet::V6(_) => None,
                    })
                    .collect();
                for chunk in chunk_by_size(&v4, |p| p.prefix_len(), room(fixed)) {
                    out.push(UpdateMessage {
                        attributes: pa.clone(),
                        nlri: chunk,
                        ..UpdateMessage::default()
                    });
                }
            }
            IpAddr::V6(nh) => {
                // AFI/SAFI, next hop length, next hop, reserved.
                let fixed = UPDATE_FIXED + pa.encoded_len(&ctx) + MP_FIXED + 1 + 16 + 1;
                let v6: Vec<Ipv6Net> = prefixes
                    .iter()
                    .filter_map(|p| match p {
                        IpNet::V6(p) => Some(*p),
                        IpNet::V4(_) => None,
                    })
                    .collect();
                for chunk in chunk_by_size(&v6, |p| p.prefix_len(), room(fixed)) {
                    let mut a = pa.clone();
                    a.mp_reach = Some(MpReach::Ipv6Unicast {
                        next_hop: nh,
                        link_local: None,
                        nlri: chunk,
                    });
                    out.push(UpdateMessage {
                        attributes: a,
                        ..UpdateMessage::default()
                    });
                }
            }
        }
    }
    out
}

/// The routes the peer has from us (Adj-RIB-Out), so that changes go out as minimal deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdjRibOut {
    sent: Announcements,
}

/// How [`AdjRibOut::update_to`] changed the peer's view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The UPDATEs to send, in order.
    pub updates: Vec<UpdateMessage>,
    /// Prefixes newly announced or re-announced with other attributes.
    pub announced: usize,
    /// Prefixes withdrawn.
    pub withdrawn: usize,
    /// Wanted prefixes that cannot be sent on this session (family not negotiated, no next hop).
    pub pending: usize,
}

impl AdjRibOut {
    /// An empty Adj-RIB-Out (a new session).
    pub fn new() -> Self {
        AdjRibOut::default()
    }

    /// Forgets everything (the session went down; the peer dropped our routes).
    pub fn clear(&mut self) {
        self.sent.clear();
    }

    /// The routes the peer has from us.
    pub fn routes(&self) -> &Announcements {
        &self.sent
    }

    /// The UPDATEs that take the peer from what it has to `wanted`; afterwards the peer is
    /// taken to have `wanted` (less what cannot be sent on this session).
    pub fn update_to(&mut self, wanted: &Announcements, params: &SessionParams) -> Delta {
        let sendable =
            |p: &IpNet, a: &RouteAttributes| params.supports(p) && params.next_hop(p, a).is_some();
        let mut announce = Vec::new();
        let mut pending = 0;
        for (p, a) in wanted {
            if !sendable(p, a) {
                pending += 1;
                continue;
            }
            if self.sent.get(p) != Some(a) {
                announce.push((*p, a.clone()));
            }
        }
        let withdraw: Vec<IpNet> = self
            .sent
            .keys()
            .filter(|p| wanted.get(p).is_none_or(|a| !sendable(p, a)))
            .copied()
            .collect();
        for p in &withdraw {
            self.sent.remove(p);
        }
        for (p, a) in &announce {
            self.sent.insert(*p, a.clone());
        }
        Delta {
            updates: pack_updates(&announce, &withdraw, params),
            announced: announce.len(),
            withdrawn: withdraw.len(),
            pending,
        }
    }
}
