//! Golden bytes: every message written out by hand from the RFC 826 / RFC 4861 layouts (the
//! ICMPv6 checksums computed independently, with a few lines of Python, from RFC 8200 8.1).

#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_l2::ndp::{multicast_mac, solicited_node_multicast};
use ironlb_l2::{
    AdvertisementFlags, ArpFrame, ArpOperation, DecodeError, MacAddr, NdpFrame, NdpMessage,
};
use std::net::{Ipv4Addr, Ipv6Addr};

const CLIENT_MAC: MacAddr = MacAddr([0x02, 0x1b, 0, 0, 0, 0x64]);
const NODE1_MAC: MacAddr = MacAddr([0x02, 0x1b, 0, 0, 0, 0xe7]);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 150);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

fn vip6() -> Ipv6Addr {
    "fd10::150".parse().unwrap()
}
fn client6() -> Ipv6Addr {
    "fd10::100".parse().unwrap()
}
fn node1_ll() -> Ipv6Addr {
    "fe80::1b:ff:fe00:e7".parse().unwrap()
}

#[rustfmt::skip]
const ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   // eth dst: broadcast
    0x02, 0x1b, 0x00, 0x00, 0x00, 0x64,   // eth src: client
    0x08, 0x06,                           // EtherType ARP
    0x00, 0x01,                           // htype Ethernet
    0x08, 0x00,                           // ptype IPv4
    0x06, 0x04,                           // hlen, plen
    0x00, 0x01,                           // oper request
    0x02, 0x1b, 0x00, 0x00, 0x00, 0x64,   // sha
    0x0a, 0x00, 0x00, 0x64,               // spa 10.0.0.100
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,   // tha unknown
    0x0a, 0x00, 0x00, 0x96,               // tpa 10.0.0.150
];

#[rustfmt::skip]
const ARP_REPLY: [u8; 42] = [
    0x02, 0x1b, 0x00, 0x00, 0x00, 0x64,   // eth dst: the asker
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,   // eth src: node1
    0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04,
    0x00, 0x02,                           // oper reply
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,   // sha node1
    0x0a, 0x00, 0x00, 0x96,               // spa 10.0.0.150
    0x02, 0x1b, 0x00, 0x00, 0x00, 0x64,   // tha client
    0x0a, 0x00, 0x00, 0x64,               // tpa 10.0.0.100
];

#[rustfmt::skip]
const GARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04,
    0x00, 0x01,                           // request
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x0a, 0x00, 0x00, 0x96,               // spa = VIP
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0a, 0x00, 0x00, 0x96,               // tpa = VIP
];

#[rustfmt::skip]
const GARP_REPLY: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04,
    0x00, 0x02,                           // reply
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x0a, 0x00, 0x00, 0x96,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x0a, 0x00, 0x00, 0x96,
];

#[rustfmt::skip]
const ARP_PROBE: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x08, 0x06,
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04,
    0x00, 0x01,
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x00, 0x00, 0x00, 0x00,               // spa 0.0.0.0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0a, 0x00, 0x00, 0x96,
];

#[rustfmt::skip]
const NS: [u8; 86] = [
    0x33, 0x33, 0xff, 0x00, 0x01, 0x50,   // eth dst: 33:33 + solicited-node group low 32 bits
    0x02, 0x1b, 0x00, 0x00, 0x00, 0x64,
    0x86, 0xdd,
    0x60, 0x00, 0x00, 0x00,               // version 6, tc 0, flow 0
    0x00, 0x20,                           // payload length 32
    0x3a, 0xff,                           // next header ICMPv6, hop limit 255
    0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,          // fd10::100
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x01, 0x50, // ff02::1:ff00:150
    0x87, 0x00, 0x79, 0x5e,               // type 135, code 0, checksum
    0x00, 0x00, 0x00, 0x00,               // reserved
    0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x50,          // target fd10::150
    0x01, 0x01, 0x02, 0x1b, 0x00, 0x00, 0x00, 0x64,                      // SLLA option
];

#[rustfmt::skip]
const NA_SOLICITED: [u8; 86] = [
    0x02, 0x1b, 0x00, 0x00, 0x00, 0x64,   // back to the asker's MAC
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x86, 0xdd,
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x1b, 0x00, 0xff, 0xfe, 0x00, 0x00, 0xe7, // fe80::1b:ff:fe00:e7
    0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,                   // fd10::100
    0x88, 0x00, 0x37, 0xad,               // type 136, checksum
    0x40, 0x00, 0x00, 0x00,               // R=0 S=1 O=0
    0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x50,
    0x02, 0x01, 0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,                               // TLLA option
];

#[rustfmt::skip]
const NA_UNSOLICITED: [u8; 86] = [
    0x33, 0x33, 0x00, 0x00, 0x00, 0x01,   // all-nodes MAC
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x86, 0xdd,
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x1b, 0x00, 0xff, 0xfe, 0x00, 0x00, 0xe7,
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,                      // ff02::1
    0x88, 0x00, 0x56, 0xba,
    0x20, 0x00, 0x00, 0x00,               // R=0 S=0 O=1
    0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x50,
    0x02, 0x01, 0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
];

#[rustfmt::skip]
const NS_DAD: [u8; 78] = [
    0x33, 0x33, 0xff, 0x00, 0x01, 0x50,
    0x02, 0x1b, 0x00, 0x00, 0x00, 0xe7,
    0x86, 0xdd,
    0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x3a, 0xff,                               // payload 24
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,                               // ::
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x01, 0x50,
    0x87, 0x00, 0x7a, 0xf7,
    0x00, 0x00, 0x00, 0x00,
    0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x50,
];

#[test]
fn arp_request_decodes_and_reencodes() {
    let f = ArpFrame::decode(&ARP_REQUEST).unwrap();
    assert_eq!(
        f,
        ArpFrame {
            eth_dst: MacAddr::BROADCAST,
            eth_src: CLIENT_MAC,
            operation: ArpOperation::Request,
            sender_mac: CLIENT_MAC,
            sender_ip: CLIENT_IP,
            target_mac: MacAddr::ZERO,
            target_ip: VIP,
        }
    );
    assert_eq!(f.to_bytes(), ARP_REQUEST);
    assert!(!f.is_gratuitous());
}

#[test]
fn arp_reply_builder_matches_golden_bytes() {
    let request = ArpFrame::decode(&ARP_REQUEST).unwrap();
    let reply = request.reply(NODE1_MAC);
    assert_eq!(reply.to_bytes(), ARP_REPLY);
    assert_eq!(ArpFrame::decode(&ARP_REPLY).unwrap(), reply);
}

#[test]
fn gratuitous_and_probe_builders_match_golden_bytes() {
    let req = ArpFrame::gratuitous_request(VIP, NODE1_MAC);
    assert_eq!(req.to_bytes(), GARP_REQUEST);
    assert!(req.is_gratuitous());
    let rep = ArpFrame::gratuitous_reply(VIP, NODE1_MAC);
    assert_eq!(rep.to_bytes(), GARP_REPLY);
    assert!(rep.is_gratuitous());
    assert_eq!(ArpFrame::probe(VIP, NODE1_MAC).to_bytes(), ARP_PROBE);
}

#[test]
fn arp_padding_to_sixty_bytes_is_ignored() {
    let mut padded = ARP_REQUEST.to_vec();
    padded.resize(60, 0);
    assert_eq!(
        ArpFrame::decode(&padded).unwrap(),
        ArpFrame::decode(&ARP_REQUEST).unwrap()
    );
}

#[test]
fn arp_malformed_frames_have_typed_reasons() {
    assert_eq!(
        ArpFrame::decode(&ARP_REQUEST[..13]),
        Err(DecodeError::TruncatedEthernet)
    );
    assert_eq!(
        ArpFrame::decode(&ARP_REQUEST[..41]),
        Err(DecodeError::TruncatedArp)
    );
    let mut f = ARP_REQUEST;
    f[12] = 0x08;
    f[13] = 0x00;
    assert_eq!(ArpFrame::decode(&f), Err(DecodeError::UnexpectedEtherType));
    let mut f = ARP_REQUEST;
    f[15] = 6; // htype 6 (IEEE 802)
    assert_eq!(ArpFrame::decode(&f), Err(DecodeError::ArpHardware));
    let mut f = ARP_REQUEST;
    f[18] = 8; // hlen 8
    assert_eq!(ArpFrame::decode(&f), Err(DecodeError::ArpHardware));
    let mut f = ARP_REQUEST;
    f[16] = 0x86;
    f[17] = 0xdd;
    assert_eq!(ArpFrame::decode(&f), Err(DecodeError::ArpProtocol));
    let mut f = ARP_REQUEST;
    f[19] = 16;
    assert_eq!(ArpFrame::decode(&f), Err(DecodeError::ArpProtocol));
    let mut f = ARP_REQUEST;
    f[21] = 3; // RARP request
    assert_eq!(ArpFrame::decode(&f), Err(DecodeError::ArpOperation));
}

#[test]
fn encode_into_a_short_buffer_is_an_error() {
    let mut small = [0u8; 41];
    let e = ArpFrame::gratuitous_request(VIP, NODE1_MAC)
        .encode(&mut small)
        .unwrap_err();
    assert_eq!((e.need, e.have), (42, 41));
    let mut small = [0u8; 85];
    let e = NdpFrame::unsolicited_advertisement(vip6(), NODE1_MAC, node1_ll())
        .encode(&mut small)
        .unwrap_err();
    assert_eq!((e.need, e.have), (86, 85));
}

#[test]
fn solicited_node_group_and_multicast_mac() {
    assert_eq!(
        solicited_node_multicast(vip6()),
        "ff02::1:ff00:150".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        solicited_node_multicast("2001:db8::abcd:ef12:3456".parse().unwrap()),
        "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        multicast_mac("ff02::1:ff12:3456".parse().unwrap()),
        MacAddr([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
    );
    assert_eq!(
        multicast_mac("ff02::1".parse().unwrap()).to_string(),
        "33:33:00:00:00:01"
    );
}

#[test]
fn neighbor_solicitation_decodes_and_reencodes() {
    let f = NdpFrame::decode(&NS).unwrap();
    assert_eq!(
        f,
        NdpFrame {
            eth_dst: MacAddr([0x33, 0x33, 0xff, 0, 0x01, 0x50]),
            eth_src: CLIENT_MAC,
            ip_src: client6(),
            ip_dst: "ff02::1:ff00:150".parse().unwrap(),
            message: NdpMessage::NeighborSolicitation {
                target: vip6(),
                source_mac: Some(CLIENT_MAC),
            },
        }
    );
    assert_eq!(f.to_bytes(), NS);
    assert_eq!(NdpFrame::solicitation(client6(), CLIENT_MAC, vip6()), f);
}

#[test]
fn solicited_advertisement_matches_golden_bytes() {
    let ns = NdpFrame::decode(&NS).unwrap();
    let na = ns.advertisement_for(NODE1_MAC, node1_ll(), false).unwrap();
    assert_eq!(na.to_bytes(), NA_SOLICITED);
    let decoded = NdpFrame::decode(&NA_SOLICITED).unwrap();
    assert_eq!(decoded, na);
    assert_eq!(
        decoded.message,
        NdpMessage::NeighborAdvertisement {
            flags: AdvertisementFlags {
                router: false,
                solicited: true,
                override_: false
            },
            target: vip6(),
            target_mac: Some(NODE1_MAC),
        }
    );
    // An advertisement is not a solicitation: nothing to answer.
    assert_eq!(
        decoded.advertisement_for(NODE1_MAC, node1_ll(), false),
        None
    );
}

#[test]
fn unsolicited_advertisement_matches_golden_bytes() {
    let na = NdpFrame::unsolicited_advertisement(vip6(), NODE1_MAC, node1_ll());
    assert_eq!(na.to_bytes(), NA_UNSOLICITED);
    assert_eq!(NdpFrame::decode(&NA_UNSOLICITED).unwrap(), na);
}

#[test]
fn dad_probe_matches_golden_bytes_and_is_answered_to_all_nodes() {
    let probe = NdpFrame::probe(vip6(), NODE1_MAC);
    assert_eq!(probe.to_bytes(), NS_DAD);
    assert_eq!(NdpFrame::decode(&NS_DAD).unwrap(), probe);
    let answer = probe
        .advertisement_for(CLIENT_MAC, "fe80::1".parse().unwrap(), false)
        .unwrap();
    assert_eq!(answer.ip_dst, "ff02::1".parse::<Ipv6Addr>().unwrap());
    let NdpMessage::NeighborAdvertisement { flags, .. } = answer.message else {
        panic!("an advertisement")
    };
    assert!(!flags.solicited);
}

#[test]
fn ndp_malformed_frames_have_typed_reasons() {
    assert_eq!(
        NdpFrame::decode(&NS[..10]),
        Err(DecodeError::TruncatedEthernet)
    );
    assert_eq!(
        NdpFrame::decode(&ARP_REQUEST),
        Err(DecodeError::UnexpectedEtherType)
    );
    assert_eq!(NdpFrame::decode(&NS[..50]), Err(DecodeError::TruncatedIpv6));
    // Payload length says 32 but only 31 bytes follow.
    assert_eq!(NdpFrame::decode(&NS[..85]), Err(DecodeError::TruncatedIpv6));
    let with = |i: usize, v: u8| {
        let mut f = NS;
        f[i] = v;
        f
    };
    assert_eq!(
        NdpFrame::decode(&with(14, 0x40)),
        Err(DecodeError::Ipv6Version)
    );
    assert_eq!(NdpFrame::decode(&with(20, 17)), Err(DecodeError::NotIcmpv6));
    assert_eq!(NdpFrame::decode(&with(20, 0)), Err(DecodeError::NotIcmpv6)); // hop-by-hop
    assert_eq!(NdpFrame::decode(&with(21, 64)), Err(DecodeError::HopLimit));
    assert_eq!(
        NdpFrame::decode(&with(54, 128)),
        Err(DecodeError::Icmpv6Type)
    ); // echo request
    assert_eq!(NdpFrame::decode(&with(55, 1)), Err(DecodeError::Icmpv6Code));
    assert_eq!(
        NdpFrame::decode(&with(57, 0x5f)),
        Err(DecodeError::Checksum)
    );
    // Payload length 4 with a NS type: shorter than the fixed part.
    let mut short = NS;
    short[19] = 4;
    assert_eq!(NdpFrame::decode(&short), Err(DecodeError::TruncatedIcmpv6));
    // Re-checksummed mutations, so the later checks are reached.
    let resum = |mut f: [u8; 86]| {
        f[56] = 0;
        f[57] = 0;
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
        let sum = ironlb_l2::ndp::icmpv6_checksum(src, dst, &f[54..]);
        f[56..58].copy_from_slice(&sum.to_be_bytes());
        f
    };
    assert_eq!(
        NdpFrame::decode(&resum(with(62, 0xff))),
        Err(DecodeError::MulticastTarget)
    );
    assert_eq!(
        NdpFrame::decode(&resum(with(79, 0))),
        Err(DecodeError::Option)
    );
    assert_eq!(
        NdpFrame::decode(&resum(with(79, 2))),
        Err(DecodeError::Option)
    );
    // An option of 16 bytes claimed as a link-layer address: make the payload fit it.
    let mut long = [0u8; 94];
    long[..86].copy_from_slice(&NS);
    long[19] = 40;
    long[79] = 2;
    long[56] = 0;
    long[57] = 0;
    let sum = ironlb_l2::ndp::icmpv6_checksum(
        client6(),
        "ff02::1:ff00:150".parse().unwrap(),
        &long[54..],
    );
    long[56..58].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(NdpFrame::decode(&long), Err(DecodeError::LinkLayerOption));
    // An unknown option type of the right size is skipped.
    assert!(NdpFrame::decode(&resum(with(78, 14))).is_ok());
    // DAD: a NS from :: carrying a source link-layer option is invalid.
    let mut dad_with_option = NS;
    dad_with_option[22..38].fill(0);
    assert_eq!(
        NdpFrame::decode(&resum(dad_with_option)),
        Err(DecodeError::UnspecifiedSource)
    );
    // A solicited NA to a multicast destination is invalid.
    let mut na = NA_UNSOLICITED;
    na[58] = 0x60;
    let na = {
        let mut f = na;
        f[56] = 0;
        f[57] = 0;
        let sum = ironlb_l2::ndp::icmpv6_checksum(node1_ll(), "ff02::1".parse().unwrap(), &f[54..]);
        f[56..58].copy_from_slice(&sum.to_be_bytes());
        f
    };
    assert_eq!(
        NdpFrame::decode(&na),
        Err(DecodeError::SolicitedToMulticast)
    );
}

#[test]
fn every_reason_has_a_distinct_label_and_index() {
    let labels: std::collections::BTreeSet<_> =
        DecodeError::ALL.iter().map(|e| e.reason()).collect();
    assert_eq!(labels.len(), DecodeError::ALL.len());
    for (i, e) in DecodeError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
    }
}

#[test]
fn mac_addresses_parse_and_print() {
    let m: MacAddr = "02:1b:00:00:00:e7".parse().unwrap();
    assert_eq!(m, NODE1_MAC);
    assert_eq!(m.to_string(), "02:1b:00:00:00:e7");
    assert!("02:1b:00:00:00".parse::<MacAddr>().is_err());
    assert!("02:1b:00:00:00:e7:01".parse::<MacAddr>().is_err());
    assert!("zz:1b:00:00:00:e7".parse::<MacAddr>().is_err());
    assert!(MacAddr::BROADCAST.is_multicast());
    assert!(!m.is_multicast());
}
