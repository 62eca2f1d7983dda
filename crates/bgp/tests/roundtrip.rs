//! Property tests: encode → decode gives back the message; decoding arbitrary or mutated bytes
//! never panics; the UPDATE packer's messages fit in 4096 octets and carry exactly the prefixes.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::attribute::{
    AsPath, AsSegment, Community, LargeCommunity, MpReach, MpUnreach, Origin, PathAttributes,
    SegmentType,
};
use ironlb_bgp::packet::capability::{Capability, Family, GracefulRestart, GracefulRestartFamily};
use ironlb_bgp::packet::message::{
    Message, NotificationMessage, OpenMessage, RouteRefreshMessage, UpdateMessage,
};
use ironlb_bgp::rib::{AdjRibOut, Announcements, RouteAttributes, SessionParams, pack_updates};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn v4net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}
fn v6net() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}
fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Family { afi, safi })
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        family().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            prop::collection::vec((family(), any::<bool>()), 0..4)
        )
            .prop_map(
                |(r, n, t, fams)| Capability::GracefulRestart(GracefulRestart {
                    restart_state: r,
                    notification: n,
                    restart_time: t,
                    families: fams
                        .into_iter()
                        .map(|(family, forwarding_state)| GracefulRestartFamily {
                            family,
                            forwarding_state
                        })
                        .collect(),
                })
            ),
        (3u8..64, prop::collection::vec(any::<u8>(), 0..10))
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn open() -> impl Strategy<Value = OpenMessage> {
    (
        1u32..,
        prop_oneof![Just(0u16), 3u16..],
        1u32..,
        prop::collection::vec(capability(), 0..6),
    )
        .prop_map(|(asn, hold, id, caps)| OpenMessage::new(asn, hold, Ipv4Addr::from(id), caps))
}

fn as_path(four: bool) -> impl Strategy<Value = AsPath> {
    let asn = if four { 1u32..=u32::MAX } else { 1u32..=65535 };
    prop::collection::vec(
        (
            prop_oneof![
                Just(SegmentType::Set),
                Just(SegmentType::Sequence),
                Just(SegmentType::ConfedSequence),
                Just(SegmentType::ConfedSet)
            ],
            prop::collection::vec(asn, 1..20),
        ),
        0..3,
    )
    .prop_map(|segs| AsPath {
        segments: segs
            .into_iter()
            .map(|(kind, asns)| AsSegment { kind, asns })
            .collect(),
    })
}

fn attributes(four: bool) -> impl Strategy<Value = PathAttributes> {
    (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(four),
        (1u32..0xe000_0000).prop_map(Ipv4Addr::from),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        prop::collection::vec(any::<u32>().prop_map(Community), 0..5),
        prop::collection::vec(
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| LargeCommunity {
                global_admin: a,
                local_data1: b,
                local_data2: c,
            }),
            0..4,
        ),
        proptest::option::of((
            any::<u128>().prop_map(Ipv6Addr::from),
            proptest::option::of(any::<u128>().prop_map(Ipv6Addr::from)),
            prop::collection::vec(v6net(), 0..20),
        )),
        proptest::option::of(prop::collection::vec(v6net(), 0..20)),
    )
        .prop_map(
            |(origin, path, nh, med, lp, atomic, comms, large, reach, unreach)| PathAttributes {
                origin: Some(origin),
                as_path: Some(path),
                next_hop: Some(nh),
                med,
                local_pref: lp,
                atomic_aggregate: atomic,
                communities: comms,
                large_communities: large,
                mp_reach: reach.map(|(next_hop, link_local, nlri)| MpReach::Ipv6Unicast {
                    next_hop,
                    link_local,
                    nlri,
                }),
                mp_unreach: unreach.map(MpUnreach::Ipv6Unicast),
                other: vec![],
            },
        )
}

fn update(four: bool) -> impl Strategy<Value = UpdateMessage> {
    (
        prop::collection::vec(v4net(), 0..30),
        attributes(four),
        prop::collection::vec(v4net(), 0..30),
    )
        .prop_map(|(withdrawn, attributes, nlri)| UpdateMessage {
            withdrawn,
            attributes,
            nlri,
            issues: vec![],
        })
}

fn message(four: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(four).prop_map(Message::Update),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..30)
        )
            .prop_map(
                |(code, subcode, data)| Message::Notification(NotificationMessage {
                    code,
                    subcode,
                    data
                })
            ),
        Just(Message::Keepalive),
        (family(), 0u8..3).prop_map(|(family, subtype)| Message::RouteRefresh(
            RouteRefreshMessage { family, subtype }
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn encode_then_decode_is_identity(four in any::<bool>(), m in message(true)) {
        // On 2-octet sessions, 4-octet ASNs travel as AS_TRANS plus AS4_PATH and come back.
        let ctx = DecodeContext { four_octet_as: four, ebgp: false };
        let bytes = m.encode(&ctx);
        prop_assume!(bytes.len() <= 4096);
        let (decoded, used) = Message::decode(&bytes, &ctx).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, m);
    }

    #[test]
    fn two_octet_sessions_round_trip_any_asn(m in update(true)) {
        // AS_TRANS + AS4_PATH must bring back the 4-octet path (sequences only: RFC 6793
        // counts sets and confederation segments differently, so keep to plain sequences).
        let mut m = m;
        if let Some(p) = m.attributes.as_path.as_mut() {
            p.segments.retain(|s| s.kind == SegmentType::Sequence);
        }
        let ctx = DecodeContext { four_octet_as: false, ebgp: false };
        let bytes = Message::Update(m.clone()).encode(&ctx);
        prop_assume!(bytes.len() <= 4096);
        let (decoded, _) = Message::decode(&bytes, &ctx).unwrap();
        prop_assert_eq!(decoded, Message::Update(m));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), four in any::<bool>()) {
        let mut framed = vec![0xff; 16];
        framed.extend_from_slice(&((19 + bytes.len()) as u16).to_be_bytes());
        framed.extend_from_slice(&bytes);
        for ctx in [DecodeContext { four_octet_as: four, ebgp: true }, DecodeContext::default()] {
            let _ = Message::decode(&framed, &ctx);
            let _ = Message::decode(&bytes, &ctx);
        }
    }

    #[test]
    fn mutated_messages_never_panic(m in message(true), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let ctx = DecodeContext { four_octet_as: true, ebgp: true };
        let mut bytes = m.encode(&ctx);
        for (i, b) in flips {
            let i = i.index(bytes.len());
            if i >= 19 { bytes[i] = b; }
        }
        if let Err(e) = Message::decode(&bytes, &ctx) {
            // Every error other than Incomplete names a NOTIFICATION.
            prop_assert!(e.notification().is_some() || e == ironlb_bgp::packet::error::DecodeError::Incomplete);
        }
    }

    #[test]
    fn packer_fits_every_prefix_in_4096_octet_messages(
        v4 in prop::collection::btree_set(v4net(), 0..3000),
        v6 in prop::collection::btree_set(v6net(), 0..1500),
        withdraw in prop::collection::btree_set(prop_oneof![v4net().prop_map(IpNet::V4), v6net().prop_map(IpNet::V6)], 0..2000),
        communities in prop::collection::vec(any::<u32>().prop_map(Community), 0..40),
        four in any::<bool>(),
    ) {
        let attrs = RouteAttributes { communities, local_pref: Some(100), ..RouteAttributes::default() };
        let announce: Vec<(IpNet, RouteAttributes)> = v4.iter().map(|p| IpNet::V4(*p))
            .chain(v6.iter().map(|p| IpNet::V6(*p)))
            .map(|p| (p, attrs.clone()))
            .collect();
        let withdraw: Vec<IpNet> = withdraw.into_iter().collect();
        let params = SessionParams {
            local_as: 4_200_000_000, ebgp: true, four_octet_as: four,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            ipv4_next_hop: Some(Ipv4Addr::new(10, 0, 0, 231)),
            ipv6_next_hop: Some("fd10::231".parse().unwrap()),
        };
        let updates = pack_updates(&announce, &withdraw, &params);
        let ctx = DecodeContext { four_octet_as: four, ebgp: true };
        let mut reach = BTreeSet::new();
        let mut unreach = BTreeSet::new();
        let mut total = 0;
        for u in &updates {
            let bytes = Message::Update(u.clone()).encode(&ctx);
            prop_assert!(bytes.len() <= 4096, "{} octets", bytes.len());
            total += bytes.len();
            let Message::Update(d) = Message::decode(&bytes, &ctx).unwrap().0 else { panic!() };
            prop_assert!(d.issues.is_empty());
            reach.extend(d.reachable());
            unreach.extend(d.unreachable());
        }
        let want: BTreeSet<IpNet> = announce.iter().map(|(p, _)| *p).collect();
        prop_assert_eq!(reach, want);
        prop_assert_eq!(unreach, withdraw.iter().copied().collect::<BTreeSet<_>>());
        // Fewest messages: at most one more per kind (v4/v6 withdraw, v4/v6 announce) than
        // the bytes strictly need.
        let lower_bound = total.div_ceil(4096);
        prop_assert!(updates.len() <= lower_bound + 4, "{} messages for {} octets", updates.len(), total);
    }
}

#[test]
fn adj_rib_out_sends_minimal_deltas() {
    let params = SessionParams {
        local_as: 64513,
        ebgp: true,
        four_octet_as: true,
        families: vec![Family::IPV4_UNICAST],
        ipv4_next_hop: Some(Ipv4Addr::new(10, 0, 0, 231)),
        ipv6_next_hop: None,
    };
    let mut rib = AdjRibOut::new();
    let mut wanted = Announcements::new();
    for i in 0..1000u32 {
        wanted.insert(
            IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap()),
            RouteAttributes::default(),
        );
    }
    // An IPv6 prefix cannot go on this IPv4-only session: pending.
    wanted.insert("fd10::150/128".parse().unwrap(), RouteAttributes::default());
    let d = rib.update_to(&wanted, &params);
    assert_eq!((d.announced, d.withdrawn, d.pending), (1000, 0, 1));
    // 1000 × 5 octets of NLRI: two messages.
    assert_eq!(d.updates.len(), 2);
    // Nothing changed: nothing sent.
    let d = rib.update_to(&wanted, &params);
    assert!(d.updates.is_empty());
    // One prefix gets a community, one goes away: one withdrawal and one announcement.
    let first = *wanted.keys().next().unwrap();
    let last = *wanted.keys().rfind(|p| p.addr().is_ipv4()).unwrap();
    wanted.get_mut(&first).unwrap().communities = vec![Community::new(64512, 1)];
    wanted.remove(&last);
    let d = rib.update_to(&wanted, &params);
    assert_eq!((d.announced, d.withdrawn), (1, 1));
    assert_eq!(d.updates.len(), 2);
    assert_eq!(
        d.updates[0].withdrawn,
        vec![last.to_string().parse::<Ipv4Net>().unwrap()]
    );
    assert_eq!(
        d.updates[1].attributes.communities,
        vec![Community::new(64512, 1)]
    );
    assert_eq!(rib.routes().len(), 999);
    // Per-prefix next hops and iBGP LOCAL_PREF.
    let ibgp = SessionParams {
        ebgp: false,
        ..params
    };
    let mut rib = AdjRibOut::new();
    let mut w = Announcements::new();
    w.insert(
        "10.0.0.150/32".parse().unwrap(),
        RouteAttributes {
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))),
            local_pref: Some(150),
            ..RouteAttributes::default()
        },
    );
    let d = rib.update_to(&w, &ibgp);
    let a = &d.updates[0].attributes;
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(10, 0, 0, 9)));
    assert_eq!(a.local_pref, Some(150));
    assert_eq!(a.as_path, Some(AsPath::default()));
    // Without a localPref, iBGP still carries LOCAL_PREF (mandatory towards internal peers);
    // eBGP never does.
    let mut rib = AdjRibOut::new();
    let mut w = Announcements::new();
    w.insert("10.0.0.151/32".parse().unwrap(), RouteAttributes::default());
    let d = rib.update_to(&w, &ibgp);
    assert_eq!(
        d.updates[0].attributes.local_pref,
        Some(ironlb_bgp::rib::DEFAULT_LOCAL_PREF)
    );
    let ebgp = SessionParams {
        ebgp: true,
        ..ibgp.clone()
    };
    let mut rib = AdjRibOut::new();
    let d = rib.update_to(&w, &ebgp);
    assert_eq!(d.updates[0].attributes.local_pref, None);
}
