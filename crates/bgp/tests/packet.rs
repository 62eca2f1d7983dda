//! Golden-byte tests: every message kind against bytes written by hand from the RFC layouts,
//! and every error class against the NOTIFICATION (or RFC 7606 action) the RFCs prescribe.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ipnet::{Ipv4Net, Ipv6Net};
use ironlb_bgp::packet::attribute::{
    AsPath, Community, LargeCommunity, MpReach, MpUnreach, Origin, PathAttributes,
};
use ironlb_bgp::packet::capability::{Capability, Family, GracefulRestart, GracefulRestartFamily};
use ironlb_bgp::packet::error::{DecodeError, UpdateErrorAction, UpdateErrorSubcode};
use ironlb_bgp::packet::message::{
    Message, NotificationMessage, OpenMessage, RouteRefreshMessage, UpdateMessage,
};
use ironlb_bgp::packet::{DecodeContext, MAX_MESSAGE_LEN};
use ironlb_bgp::rib::{RouteAttributes, SessionParams, pack_updates};
use std::net::Ipv4Addr;

const AS4: DecodeContext = DecodeContext {
    four_octet_as: true,
    ebgp: true,
};
const AS2: DecodeContext = DecodeContext {
    four_octet_as: false,
    ebgp: true,
};

/// Header bytes: marker, length, type.
fn header(len: u16, kind: u8) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(kind);
    v
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn message(kind: u8, body: &str) -> Vec<u8> {
    let body = hex(body);
    let mut v = header((19 + body.len()) as u16, kind);
    v.extend_from_slice(&body);
    v
}

fn roundtrip(m: &Message, bytes: &[u8], ctx: DecodeContext) {
    assert_eq!(m.encode(&ctx), bytes, "encoding of {m:?}");
    let (decoded, used) = Message::decode(bytes, &ctx).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(&decoded, m);
}

fn notification_of(bytes: &[u8], ctx: DecodeContext) -> (u8, u8, Vec<u8>) {
    let e = Message::decode(bytes, &ctx).unwrap_err();
    let n = e.notification().unwrap();
    (n.code, n.subcode, n.data)
}

fn update_of(bytes: &[u8], ctx: DecodeContext) -> UpdateMessage {
    match Message::decode(bytes, &ctx).unwrap().0 {
        Message::Update(u) => u,
        other => panic!("not an UPDATE: {other:?}"),
    }
}

fn p4(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}
fn p6(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

#[test]
fn keepalive() {
    roundtrip(&Message::Keepalive, &header(19, 4), AS4);
}

#[test]
fn open_with_every_capability() {
    let open = OpenMessage::new(
        64513,
        90,
        Ipv4Addr::new(10, 0, 0, 231),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: false,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding_state: true,
                    },
                    GracefulRestartFamily {
                        family: Family::IPV6_UNICAST,
                        forwarding_state: false,
                    },
                ],
            }),
            Capability::Unknown {
                code: 70,
                value: vec![],
            },
        ],
    );
    let bytes = message(
        1,
        "04 fc01 005a 0a0000e7 2e
         02 06 41 04 0000fc01
         02 06 01 04 0001 00 01
         02 06 01 04 0002 00 01
         02 02 02 00
         02 0c 40 0a 8078 0001 01 80 0002 01 00
         02 02 46 00",
    );
    roundtrip(&Message::Open(open), &bytes, AS4);
}

#[test]
fn open_with_a_four_octet_asn_uses_as_trans() {
    let open = OpenMessage::new(4_200_000_000, 0, Ipv4Addr::new(1, 2, 3, 4), vec![]);
    assert_eq!(open.my_as, 23456);
    assert_eq!(open.asn(), 4_200_000_000);
    let bytes = message(
        "1".parse().unwrap(),
        "04 5ba0 0000 01020304 08 02 06 41 04 fa56ea00",
    );
    roundtrip(&Message::Open(open), &bytes, AS4);
}

#[test]
fn open_with_several_capabilities_in_one_parameter_decodes() {
    let bytes = message(
        1,
        "04 fc00 00b4 0a000001 10 02 0e 01 04 0001 00 01 02 00 41 04 0000fc00",
    );
    let Message::Open(open) = Message::decode(&bytes, &AS4).unwrap().0 else {
        panic!()
    };
    assert_eq!(open.asn(), 64512);
    assert_eq!(open.hold_time, 180);
    assert_eq!(open.families(), vec![Family::IPV4_UNICAST]);
    assert_eq!(open.capabilities.len(), 3);
}

fn ipv4_update() -> UpdateMessage {
    UpdateMessage {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![64513])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 231)),
            local_pref: None,
            communities: vec![Community::new(64512, 100)],
            large_communities: vec![LargeCommunity {
                global_admin: 64512,
                local_data1: 1,
                local_data2: 2,
            }],
            ..PathAttributes::default()
        },
        nlri: vec![p4("10.0.0.150/32"), p4("192.168.0.0/16")],
        ..UpdateMessage::default()
    }
}

#[test]
fn update_ipv4_with_communities() {
    let bytes = message(
        2,
        "0000 002a
         40 01 01 00
         40 02 06 02 01 0000fc01
         40 03 04 0a0000e7
         c0 08 04 fc000064
         c0 20 0c 0000fc00 00000001 00000002
         20 0a000096 10 c0a8",
    );
    roundtrip(&Message::Update(ipv4_update()), &bytes, AS4);
}

#[test]
fn update_ibgp_with_local_pref_and_med_on_a_two_octet_session() {
    let u = UpdateMessage {
        attributes: PathAttributes {
            origin: Some(Origin::Incomplete),
            as_path: Some(AsPath::default()),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 232)),
            med: Some(7),
            local_pref: Some(200),
            ..PathAttributes::default()
        },
        nlri: vec![p4("10.0.0.0/8")],
        ..UpdateMessage::default()
    };
    let bytes = message(
        2,
        "0000 001c 40 01 01 02 40 02 00 40 03 04 0a0000e8 80 04 04 00000007 40 05 04 000000c8
         08 0a",
    );
    roundtrip(
        &Message::Update(u),
        &bytes,
        DecodeContext {
            four_octet_as: false,
            ebgp: false,
        },
    );
}

#[test]
fn four_octet_asn_on_a_two_octet_session_goes_in_as4_path() {
    let u = UpdateMessage {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![4_200_000_000, 64513])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 231)),
            ..PathAttributes::default()
        },
        nlri: vec![p4("10.0.0.150/32")],
        ..UpdateMessage::default()
    };
    let bytes = message(
        2,
        "0000 0021 40 01 01 00 40 02 06 02 02 5ba0 fc01 40 03 04 0a0000e7
         c0 11 0a 02 02 fa56ea00 0000fc01
         20 0a000096",
    );
    roundtrip(&Message::Update(u), &bytes, AS2);
}

#[test]
fn as4_path_merge_keeps_leading_two_octet_asns() {
    // AS_PATH 65001 AS_TRANS 64513, AS4_PATH 4200000000 64513: a 2-octet speaker prepended 65001.
    let bytes = message(
        2,
        "0000 0023 40 01 01 00 40 02 08 02 03 fde9 5ba0 fc01 40 03 04 0a0000e7
         c0 11 0a 02 02 fa56ea00 0000fc01
         20 0a000096",
    );
    let u = update_of(&bytes, AS2);
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath {
            segments: vec![
                ironlb_bgp::packet::attribute::AsSegment {
                    kind: ironlb_bgp::packet::attribute::SegmentType::Sequence,
                    asns: vec![65001]
                },
                ironlb_bgp::packet::attribute::AsSegment {
                    kind: ironlb_bgp::packet::attribute::SegmentType::Sequence,
                    asns: vec![4_200_000_000, 64513]
                },
            ]
        })
    );
}

#[test]
fn update_ipv6_in_mp_reach() {
    let u = UpdateMessage {
        attributes: PathAttributes {
            mp_reach: Some(MpReach::Ipv6Unicast {
                next_hop: "fd10::231".parse().unwrap(),
                link_local: None,
                nlri: vec![p6("fd10::150/128"), p6("2001:db8::/32")],
            }),
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![64513])),
            ..PathAttributes::default()
        },
        ..UpdateMessage::default()
    };
    let bytes = message(
        2,
        "0000 003b
         80 0e 2b 0002 01 10 fd100000000000000000000000000231 00
            80 fd100000000000000000000000000150 20 20010db8
         40 01 01 00
         40 02 06 02 01 0000fc01",
    );
    roundtrip(&Message::Update(u), &bytes, AS4);
}

#[test]
fn update_ipv6_with_link_local_next_hop_decodes() {
    let bytes = message(
        2,
        "0000 003e
         80 0e 2e 0002 01 20 fd100000000000000000000000000001 fe800000000000000000000000000001 00
            40 fd11000000000000
         40 01 01 00 40 02 06 02 01 0000fc00",
    );
    let u = update_of(&bytes, AS4);
    assert_eq!(u.reachable(), vec!["fd11::/64".parse().unwrap()]);
    assert!(matches!(
        u.attributes.mp_reach,
        Some(MpReach::Ipv6Unicast {
            link_local: Some(_),
            ..
        })
    ));
}

// ---- AS_PATH prepending (asPathPrepend) ---------------------------------------------------

/// The one UPDATE the packer makes for 10.0.0.150/32 (next hop 10.0.0.231) with
/// `asPathPrepend: prepend`, from `local_as` on an eBGP or iBGP session of that ASN width.
fn prepended_update(local_as: u32, ebgp: bool, four_octet_as: bool, prepend: u8) -> UpdateMessage {
    let params = SessionParams {
        local_as,
        ebgp,
        four_octet_as,
        families: vec![Family::IPV4_UNICAST],
        ipv4_next_hop: Some(Ipv4Addr::new(10, 0, 0, 231)),
        ipv6_next_hop: None,
    };
    let attrs = RouteAttributes {
        as_path_prepend: prepend,
        ..RouteAttributes::default()
    };
    let mut updates = pack_updates(&[("10.0.0.150/32".parse().unwrap(), attrs)], &[], &params);
    assert_eq!(updates.len(), 1, "{updates:?}");
    updates.remove(0)
}

#[test]
fn ebgp_prepend_repeats_our_as_in_one_sequence() {
    // asPathPrepend 3: four copies of 64513 in one AS_SEQUENCE (type 2, count 4).
    let u = prepended_update(64513, true, true, 3);
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![64513; 4])));
    let bytes = message(
        2,
        "0000 0020
         40 01 01 00
         40 02 12 02 04 0000fc01 0000fc01 0000fc01 0000fc01
         40 03 04 0a0000e7
         20 0a000096",
    );
    roundtrip(&Message::Update(u), &bytes, AS4);
    // No prepend: our AS once, as before.
    let plain = prepended_update(64513, true, true, 0);
    assert_eq!(
        plain.attributes.as_path,
        Some(AsPath::sequence(vec![64513]))
    );
    roundtrip(
        &Message::Update(plain),
        &message(
            2,
            "0000 0014 40 01 01 00 40 02 06 02 01 0000fc01 40 03 04 0a0000e7 20 0a000096",
        ),
        AS4,
    );
}

#[test]
fn ebgp_prepend_of_a_four_octet_asn() {
    let u = prepended_update(4_200_000_000, true, true, 3);
    let bytes = message(
        2,
        "0000 0020
         40 01 01 00
         40 02 12 02 04 fa56ea00 fa56ea00 fa56ea00 fa56ea00
         40 03 04 0a0000e7
         20 0a000096",
    );
    roundtrip(&Message::Update(u), &bytes, AS4);
}

#[test]
fn ebgp_prepend_on_a_two_octet_session() {
    // A 2-octet ASN goes as it is, two octets each, and needs no AS4_PATH.
    let u = prepended_update(64513, true, false, 3);
    let bytes = message(
        2,
        "0000 0018
         40 01 01 00
         40 02 0a 02 04 fc01 fc01 fc01 fc01
         40 03 04 0a0000e7
         20 0a000096",
    );
    roundtrip(&Message::Update(u), &bytes, AS2);
    // A 4-octet ASN: AS_TRANS four times in AS_PATH, the real path in AS4_PATH (RFC 6793
    // §4.2.2); the receiver merges them back into four copies of our ASN.
    let u = prepended_update(4_200_000_000, true, false, 3);
    let bytes = message(
        2,
        "0000 002d
         40 01 01 00
         40 02 0a 02 04 5ba0 5ba0 5ba0 5ba0
         40 03 04 0a0000e7
         c0 11 12 02 04 fa56ea00 fa56ea00 fa56ea00 fa56ea00
         20 0a000096",
    );
    roundtrip(&Message::Update(u), &bytes, AS2);
    assert_eq!(
        update_of(&bytes, AS2).attributes.as_path,
        Some(AsPath::sequence(vec![4_200_000_000; 4]))
    );
}

#[test]
fn ibgp_ignores_the_prepend() {
    // Inside our own AS the path stays empty (a router of that AS would see a loop); the
    // UPDATE is byte for byte the one without prepend.
    let u = prepended_update(64512, false, true, 3);
    assert_eq!(u, prepended_update(64512, false, true, 0));
    let bytes = message(
        2,
        "0000 0015
         40 01 01 00
         40 02 00
         40 03 04 0a0000e7
         40 05 04 00000064
         20 0a000096",
    );
    roundtrip(
        &Message::Update(u),
        &bytes,
        DecodeContext {
            four_octet_as: true,
            ebgp: false,
        },
    );
}

#[test]
fn prefixes_with_different_prepends_go_in_separate_updates() {
    let params = SessionParams {
        local_as: 64513,
        ebgp: true,
        four_octet_as: true,
        families: vec![Family::IPV4_UNICAST],
        ipv4_next_hop: Some(Ipv4Addr::new(10, 0, 0, 231)),
        ipv6_next_hop: None,
    };
    let with = |n: u8| RouteAttributes {
        as_path_prepend: n,
        ..RouteAttributes::default()
    };
    let announce = [
        ("10.0.0.150/32".parse().unwrap(), with(3)),
        ("10.0.0.151/32".parse().unwrap(), with(0)),
        ("10.0.0.152/32".parse().unwrap(), with(3)),
    ];
    let updates = pack_updates(&announce, &[], &params);
    let mut got: Vec<(Vec<Ipv4Net>, Option<AsPath>)> = updates
        .into_iter()
        .map(|u| (u.nlri, u.attributes.as_path))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                vec![p4("10.0.0.150/32"), p4("10.0.0.152/32")],
                Some(AsPath::sequence(vec![64513; 4]))
            ),
            (
                vec![p4("10.0.0.151/32")],
                Some(AsPath::sequence(vec![64513]))
            ),
        ]
    );
}

#[test]
fn withdrawals() {
    let v4 = UpdateMessage {
        withdrawn: vec![p4("10.0.0.150/32"), p4("0.0.0.0/0")],
        ..UpdateMessage::default()
    };
    roundtrip(
        &Message::Update(v4),
        &message(2, "0006 20 0a000096 00 0000"),
        AS4,
    );
    let mut v6 = UpdateMessage::default();
    v6.attributes.mp_unreach = Some(MpUnreach::Ipv6Unicast(vec![p6("fd10::150/128")]));
    roundtrip(
        &Message::Update(v6),
        &message(
            2,
            "0000 0017 80 0f 14 0002 01 80 fd100000000000000000000000000150",
        ),
        AS4,
    );
}

#[test]
fn end_of_rib_markers() {
    let eor4 = UpdateMessage::end_of_rib(Family::IPV4_UNICAST);
    roundtrip(
        &Message::Update(eor4.clone()),
        &message(2, "0000 0000"),
        AS4,
    );
    assert_eq!(eor4.end_of_rib_family(), Some(Family::IPV4_UNICAST));
    let eor6 = UpdateMessage::end_of_rib(Family::IPV6_UNICAST);
    roundtrip(
        &Message::Update(eor6.clone()),
        &message(2, "0000 0006 80 0f 03 0002 01"),
        AS4,
    );
    assert_eq!(eor6.end_of_rib_family(), Some(Family::IPV6_UNICAST));
    assert_eq!(ipv4_update().end_of_rib_family(), None);
}

#[test]
fn notification_with_and_without_data() {
    roundtrip(
        &Message::Notification(NotificationMessage::new(4, 0)),
        &message(3, "04 00"),
        AS4,
    );
    roundtrip(
        &Message::Notification(NotificationMessage {
            code: 2,
            subcode: 1,
            data: vec![0, 4],
        }),
        &message(3, "02 01 0004"),
        AS4,
    );
}

#[test]
fn route_refresh() {
    roundtrip(
        &Message::RouteRefresh(RouteRefreshMessage {
            family: Family::IPV6_UNICAST,
            subtype: 0,
        }),
        &message(5, "0002 00 01"),
        AS4,
    );
    let (c, s, _) = notification_of(&message(5, "0002 00 01 00"), AS4);
    assert_eq!((c, s), (7, 1));
}

// ---- framing ------------------------------------------------------------------------------

#[test]
fn check_asks_for_more_bytes_until_the_message_is_complete() {
    let bytes = Message::Update(ipv4_update()).encode(&AS4);
    for cut in 0..bytes.len() {
        assert_eq!(
            Message::check(&bytes[..cut]),
            Err(DecodeError::Incomplete),
            "cut at {cut}"
        );
    }
    let mut two = bytes.clone();
    two.extend_from_slice(&header(19, 4));
    assert_eq!(Message::check(&two), Ok(bytes.len()));
    let (_, used) = Message::decode(&two, &AS4).unwrap();
    assert_eq!(
        Message::decode(&two[used..], &AS4).unwrap().0,
        Message::Keepalive
    );
}

#[test]
fn header_errors() {
    let mut bad_marker = header(19, 4);
    bad_marker[3] = 0;
    assert_eq!(notification_of(&bad_marker, AS4), (1, 1, vec![]));
    // Seen even before the whole header is in.
    assert!(matches!(
        Message::check(&bad_marker[..5]),
        Err(DecodeError::Header { .. })
    ));
    assert_eq!(notification_of(&header(18, 4), AS4), (1, 2, vec![0, 18]));
    assert_eq!(
        notification_of(&header(4097, 2), AS4),
        (1, 2, vec![0x10, 0x01])
    );
    assert_eq!(notification_of(&message(4, "00"), AS4), (1, 2, vec![0, 20]));
    assert_eq!(notification_of(&header(28, 1), AS4), (1, 2, vec![0, 28]));
    assert_eq!(notification_of(&header(22, 2), AS4), (1, 2, vec![0, 22]));
    assert_eq!(notification_of(&header(20, 3), AS4), (1, 2, vec![0, 20]));
    assert_eq!(notification_of(&header(19, 9), AS4), (1, 3, vec![9]));
    assert_eq!(notification_of(&header(19, 0), AS4), (1, 3, vec![0]));
}

// ---- OPEN errors --------------------------------------------------------------------------

#[test]
fn open_errors() {
    // Version 3: unsupported version, data = the version we support.
    assert_eq!(
        notification_of(&message(1, "03 fc01 005a 0a0000e7 00"), AS4),
        (2, 1, vec![0, 4])
    );
    assert_eq!(
        notification_of(&message(1, "04 fc01 0002 0a0000e7 00"), AS4).1,
        6,
        "hold time 2"
    );
    assert_eq!(
        notification_of(&message(1, "04 fc01 005a 00000000 00"), AS4).1,
        3,
        "identifier 0"
    );
    assert_eq!(
        notification_of(&message(1, "04 0000 005a 0a0000e7 00"), AS4).1,
        2,
        "AS 0"
    );
    assert_eq!(
        notification_of(
            &message(1, "04 5ba0 005a 0a0000e7 08 02 06 41 04 00000000"),
            AS4
        )
        .1,
        2,
        "4-octet AS 0"
    );
    assert_eq!(
        notification_of(&message(1, "04 fc01 005a 0a0000e7 04 01 02 0000"), AS4).1,
        4,
        "authentication parameter"
    );
    assert_eq!(
        notification_of(&message(1, "04 fc01 005a 0a0000e7 05 02 02 02 00"), AS4),
        (2, 0, vec![]),
        "parameter length larger than the parameters"
    );
    // Hold time 0 and 3 are fine.
    for hold in ["0000", "0003"] {
        let m = message(1, &format!("04 fc01 {hold} 0a0000e7 00"));
        assert!(Message::decode(&m, &AS4).is_ok());
    }
}

// ---- UPDATE errors: RFC 7606 ----------------------------------------------------------------

const GOOD_ATTRS: &str = "40 01 01 00 40 02 06 02 01 0000fc01 40 03 04 0a0000e7";

/// An UPDATE with `attrs` (hex) and NLRI 10.0.0.150/32.
fn update_with(attrs: &str) -> Vec<u8> {
    let a = hex(attrs);
    message(2, &format!("0000 {:04x} {attrs} 20 0a000096", a.len()))
}

fn issues(u: &UpdateMessage) -> Vec<(u8, UpdateErrorSubcode, UpdateErrorAction)> {
    u.issues
        .iter()
        .map(|i| (i.type_code, i.subcode, i.action))
        .collect()
}

use UpdateErrorAction::{AttributeDiscard, TreatAsWithdraw};

#[test]
fn good_update_has_no_issues() {
    let u = update_of(&update_with(GOOD_ATTRS), AS4);
    assert!(u.issues.is_empty());
    assert_eq!(u.reachable(), vec!["10.0.0.150/32".parse().unwrap()]);
    assert!(u.unreachable().is_empty());
}

#[test]
fn malformed_well_known_attributes_are_treat_as_withdraw() {
    let cases = [
        (
            "40 01 01 05 40 02 06 02 01 0000fc01 40 03 04 0a0000e7",
            (1, UpdateErrorSubcode::InvalidOriginAttribute),
        ),
        (
            "40 01 02 0000 40 02 06 02 01 0000fc01 40 03 04 0a0000e7",
            (1, UpdateErrorSubcode::InvalidOriginAttribute),
        ),
        (
            "40 01 01 00 40 02 06 07 01 0000fc01 40 03 04 0a0000e7",
            (2, UpdateErrorSubcode::MalformedAsPath),
        ),
        (
            "40 01 01 00 40 02 06 02 02 0000fc01 40 03 04 0a0000e7",
            (2, UpdateErrorSubcode::MalformedAsPath),
        ),
        (
            "40 01 01 00 40 02 02 02 00 40 03 04 0a0000e7",
            (2, UpdateErrorSubcode::MalformedAsPath),
        ),
        (
            "40 01 01 00 40 02 06 02 01 0000fc01 40 03 05 0a0000e700",
            (3, UpdateErrorSubcode::AttributeLengthError),
        ),
        (
            "40 01 01 00 40 02 06 02 01 0000fc01 40 03 04 00000000",
            (3, UpdateErrorSubcode::InvalidNextHopAttribute),
        ),
        (
            "40 01 01 00 40 02 06 02 01 0000fc01 40 03 04 e0000001",
            (3, UpdateErrorSubcode::InvalidNextHopAttribute),
        ),
        (
            &format!("{GOOD_ATTRS} 80 04 03 000001"),
            (4, UpdateErrorSubcode::AttributeLengthError),
        ),
        (
            &format!("{GOOD_ATTRS} c0 08 03 fc0000"),
            (8, UpdateErrorSubcode::OptionalAttributeError),
        ),
        (
            &format!("{GOOD_ATTRS} c0 20 08 0000fc00 00000001"),
            (32, UpdateErrorSubcode::OptionalAttributeError),
        ),
        (
            // ORIGIN sent as optional: flags error.
            "c0 01 01 00 40 02 06 02 01 0000fc01 40 03 04 0a0000e7",
            (1, UpdateErrorSubcode::AttributeFlagsError),
        ),
    ];
    for (attrs, (t, sub)) in cases {
        let u = update_of(&update_with(attrs), AS4);
        assert!(
            issues(&u).contains(&(t, sub, TreatAsWithdraw)),
            "{attrs}: {:?}",
            u.issues
        );
        assert!(u.treat_as_withdraw());
        assert!(u.reachable().is_empty());
        assert_eq!(u.unreachable(), vec!["10.0.0.150/32".parse().unwrap()]);
    }
}

#[test]
fn missing_mandatory_attributes_are_treat_as_withdraw() {
    let u = update_of(
        &update_with("40 02 06 02 01 0000fc01 40 03 04 0a0000e7"),
        AS4,
    );
    assert_eq!(
        issues(&u),
        vec![(
            1,
            UpdateErrorSubcode::MissingWellKnownAttribute,
            TreatAsWithdraw
        )]
    );
    let u = update_of(&update_with("40 01 01 00 40 02 06 02 01 0000fc01"), AS4);
    assert_eq!(
        issues(&u),
        vec![(
            3,
            UpdateErrorSubcode::MissingWellKnownAttribute,
            TreatAsWithdraw
        )]
    );
    // NLRI with no attributes at all.
    let u = update_of(&update_with(""), AS4);
    assert_eq!(issues(&u).len(), 3);
    // A pure withdrawal needs none.
    let u = update_of(&message(2, "0005 20 0a000096 0000"), AS4);
    assert!(u.issues.is_empty());
}

#[test]
fn attribute_discard_cases() {
    // LOCAL_PREF from an eBGP peer.
    let u = update_of(
        &update_with(&format!("{GOOD_ATTRS} 40 05 04 00000064")),
        AS4,
    );
    assert_eq!(
        issues(&u),
        vec![(
            5,
            UpdateErrorSubcode::AttributeLengthError,
            AttributeDiscard
        )]
    );
    assert_eq!(u.attributes.local_pref, None);
    assert!(!u.treat_as_withdraw());
    // ...but kept from an iBGP peer.
    let ibgp = DecodeContext {
        four_octet_as: true,
        ebgp: false,
    };
    let u = update_of(
        &update_with(&format!("{GOOD_ATTRS} 40 05 04 00000064")),
        ibgp,
    );
    assert_eq!(u.attributes.local_pref, Some(100));
    // ATOMIC_AGGREGATE with a value, AGGREGATOR of the wrong size.
    let u = update_of(
        &update_with(&format!("{GOOD_ATTRS} 40 06 01 00 c0 07 04 00000000")),
        AS4,
    );
    assert_eq!(issues(&u).len(), 2);
    assert!(issues(&u).iter().all(|i| i.2 == AttributeDiscard));
    assert!(!u.treat_as_withdraw());
    // A repeated attribute: the first is kept.
    let u = update_of(&update_with(&format!("{GOOD_ATTRS} 40 01 01 02")), AS4);
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    assert_eq!(
        issues(&u),
        vec![(
            1,
            UpdateErrorSubcode::MalformedAttributeList,
            AttributeDiscard
        )]
    );
}

#[test]
fn unknown_attributes() {
    // Optional transitive: passed on, marked partial.
    let u = update_of(&update_with(&format!("{GOOD_ATTRS} c0 63 02 abcd")), AS4);
    assert!(u.issues.is_empty());
    assert_eq!(u.attributes.other.len(), 1);
    assert_eq!(u.attributes.other[0].flags, 0xe0);
    // Optional non-transitive: dropped quietly.
    let u = update_of(&update_with(&format!("{GOOD_ATTRS} 80 63 02 abcd")), AS4);
    assert!(u.attributes.other.is_empty() && u.issues.is_empty());
    // Well-known but unknown: session reset 3/2 with the attribute as data.
    assert_eq!(
        notification_of(&update_with(&format!("{GOOD_ATTRS} 40 63 02 abcd")), AS4),
        (3, 2, hex("40 63 02 abcd"))
    );
}

#[test]
fn update_errors_that_reset_the_session() {
    // Withdrawn routes length runs past the message.
    assert_eq!(notification_of(&message(2, "0010 0000"), AS4).1, 1);
    // Total attribute length runs past the message.
    assert_eq!(
        notification_of(&message(2, "0000 0010 40 01 01 00"), AS4).1,
        1
    );
    // A prefix longer than 32 bits.
    assert_eq!(
        notification_of(
            &update_with(GOOD_ATTRS)
                .iter()
                .copied()
                .chain([33, 1, 2, 3, 4, 5])
                .collect::<Vec<_>>()
                .as_slice()
                .pipe_len(),
            AS4
        )
        .1,
        10
    );
    // MP_REACH twice.
    let mp = "80 0f 03 0002 01";
    assert_eq!(
        notification_of(&update_with(&format!("{mp} {mp} {GOOD_ATTRS}")), AS4).1,
        1
    );
    // MP_REACH with a 5-octet IPv6 next hop: the NLRI cannot be found.
    assert_eq!(
        notification_of(
            &update_with(&format!("{GOOD_ATTRS} 80 0e 0a 0002 01 05 0102030405 00")),
            AS4
        ),
        (3, 9, hex("80 0e 0a 0002 01 05 0102030405 00"))
    );
    // MP_UNREACH with a prefix overrun.
    assert_eq!(
        notification_of(
            &update_with(&format!("{GOOD_ATTRS} 80 0f 05 0002 01 80 fd")),
            AS4
        )
        .1,
        9
    );
}

/// Fixes the length field of a hand-extended message.
trait PipeLen {
    fn pipe_len(&self) -> Vec<u8>;
}
impl PipeLen for &[u8] {
    fn pipe_len(&self) -> Vec<u8> {
        let mut v = self.to_vec();
        let len = v.len() as u16;
        v[16..18].copy_from_slice(&len.to_be_bytes());
        v
    }
}

#[test]
fn attribute_running_past_the_list_is_treat_as_withdraw() {
    // A COMMUNITIES claiming 8 octets with 4 left: the list cannot be parsed further.
    let bytes = update_with(&format!("{GOOD_ATTRS} c0 08 08 fc000064"));
    let u = update_of(&bytes, AS4);
    assert!(u.treat_as_withdraw());
    assert_eq!(u.unreachable(), vec!["10.0.0.150/32".parse().unwrap()]);
}

#[test]
fn messages_are_at_most_4096_octets() {
    assert_eq!(MAX_MESSAGE_LEN, 4096);
    let mut big = header(4096, 2);
    big.resize(4096, 0);
    assert!(Message::check(&big).is_ok());
}
