//! Echo frames: the bytes we send (Ethernet to the peer's MAC, IPv4 and UDP headers with their
//! checksums, our payload), what comes back (TTL decremented by the router) is recognised,
//! anything else is not; the neighbour table lookup.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_bfd::echo::{ECHO_PORT, Echo, FRAME_LEN, arp_lookup, parse_mac};
use std::net::Ipv4Addr;

const PEER: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
const US: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 0xe7];

/// RFC 1071, written out independently of the crate: the one's-complement sum of 16-bit words.
fn ones_sum(data: &[u8]) -> u16 {
    let mut s: u64 = 0;
    for (i, b) in data.iter().enumerate() {
        s += if i % 2 == 0 {
            u64::from(*b) << 8
        } else {
            u64::from(*b)
        };
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn echo() -> Echo {
    Echo {
        discriminator: 0xdead_beef,
        seq: 0x0102_0304_0506_0708,
    }
}

#[test]
fn frame_layout_and_checksums() {
    let ip = Ipv4Addr::new(10, 0, 0, 231);
    let f = echo().frame(PEER, US, ip, 0x1234);
    assert_eq!(f.len(), FRAME_LEN);
    assert_eq!(FRAME_LEN, 14 + 20 + 8 + 16);
    // Ethernet.
    assert_eq!(&f[..6], &PEER);
    assert_eq!(&f[6..12], &US);
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    // IPv4: version 4, IHL 5, total length, identification, DF, TTL 255, UDP, src = dst = us.
    let h = &f[14..34];
    assert_eq!(h[0], 0x45);
    assert_eq!(u16::from_be_bytes([h[2], h[3]]), 44);
    assert_eq!(u16::from_be_bytes([h[4], h[5]]), 0x1234);
    assert_eq!(&h[6..8], &[0x40, 0x00]);
    assert_eq!(h[8], 255);
    assert_eq!(h[9], 17);
    assert_eq!(&h[12..16], &ip.octets());
    assert_eq!(&h[16..20], &ip.octets());
    assert_eq!(ones_sum(h), 0xffff, "IPv4 header checksum");
    // UDP: 3785 -> 3785, length, checksum over the pseudo header.
    let u = &f[34..];
    assert_eq!(u16::from_be_bytes([u[0], u[1]]), ECHO_PORT);
    assert_eq!(u16::from_be_bytes([u[2], u[3]]), ECHO_PORT);
    assert_eq!(u16::from_be_bytes([u[4], u[5]]), 24);
    assert_ne!(u16::from_be_bytes([u[6], u[7]]), 0, "checksum present");
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip.octets());
    pseudo.extend_from_slice(&ip.octets());
    pseudo.extend_from_slice(&[0, 17, 0, 24]);
    pseudo.extend_from_slice(u);
    assert_eq!(ones_sum(&pseudo), 0xffff, "UDP checksum");
    // Payload.
    assert_eq!(&u[8..12], b"ILBE");
    assert_eq!(&u[12..16], &0xdead_beefu32.to_be_bytes());
    assert_eq!(&u[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
}

/// What the router sends back: the same frame with MACs swapped, TTL 254 and the header
/// checksum updated.
fn forwarded(mut f: [u8; FRAME_LEN]) -> [u8; FRAME_LEN] {
    let (dst, src) = (f[..6].to_vec(), f[6..12].to_vec());
    f[..6].copy_from_slice(&src);
    f[6..12].copy_from_slice(&dst);
    f[14 + 8] -= 1;
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = !ones_sum(&f[14..34]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

#[test]
fn our_echo_comes_back_and_is_recognised() {
    let ip = Ipv4Addr::new(10, 0, 0, 231);
    let back = forwarded(echo().frame(PEER, US, ip, 7));
    assert_eq!(Echo::parse_frame(&back), Some((echo(), ip, ip)));
    // Trailing Ethernet padding is ignored.
    let mut padded = back.to_vec();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(Echo::parse_frame(&padded), Some((echo(), ip, ip)));
}

#[test]
fn anything_else_is_not_an_echo_of_ours() {
    let ip = Ipv4Addr::new(10, 0, 0, 231);
    let good = forwarded(echo().frame(PEER, US, ip, 7));
    type Spoil = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("truncated", Box::new(|f| f.truncate(40))),
        (
            "not IPv4",
            Box::new(|f| f[12..14].copy_from_slice(&[0x86, 0xdd])),
        ),
        ("bad header checksum", Box::new(|f| f[24] ^= 0xff)),
        ("a fragment", Box::new(|f| f[20] |= 0x20)),
        (
            "other port",
            Box::new(|f| f[36..38].copy_from_slice(&3784u16.to_be_bytes())),
        ),
        ("not our magic", Box::new(|f| f[42] = b'X')),
        (
            "short payload",
            Box::new(|f| f[38..40].copy_from_slice(&20u16.to_be_bytes())),
        ),
        (
            "IPv4 total length past the frame",
            Box::new(|f| {
                f[16..18].copy_from_slice(&200u16.to_be_bytes());
                f[24..26].copy_from_slice(&[0, 0]);
                let sum = !ones_sum(&f[14..34]);
                f[24..26].copy_from_slice(&sum.to_be_bytes());
            }),
        ),
    ];
    for (what, spoil) in cases {
        let mut f = good.to_vec();
        spoil(&mut f);
        assert_eq!(Echo::parse_frame(&f), None, "{what}");
    }
    for n in 0..good.len() {
        // Never panics on a cut frame.
        let _ = Echo::parse_frame(&good[..n]);
    }
}

#[test]
fn payload_round_trip() {
    let e = echo();
    assert_eq!(Echo::from_payload(&e.payload()), Some(e));
    assert_eq!(Echo::from_payload(&e.payload()[..15]), None);
}

#[test]
fn neighbour_table() {
    let table = "IP address       HW type     Flags       HW address            Mask     Device
10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.0.1         0x1         0x2         02:aa:00:00:00:01     *        eth0
10.0.0.100       0x1         0x2         02:1b:00:00:00:64     *        eth1
";
    assert_eq!(
        arp_lookup(table, Ipv4Addr::new(10, 0, 0, 1)),
        Some((PEER, "eth0".to_string()))
    );
    assert_eq!(
        arp_lookup(table, Ipv4Addr::new(10, 0, 0, 100)).unwrap().1,
        "eth1"
    );
    assert_eq!(
        arp_lookup(table, Ipv4Addr::new(10, 0, 0, 2)),
        None,
        "incomplete"
    );
    assert_eq!(arp_lookup(table, Ipv4Addr::new(10, 0, 0, 3)), None);
    assert_eq!(parse_mac("02:AA:00:00:00:01"), Some(PEER));
    assert_eq!(parse_mac("02:aa:00:00:00"), None);
    assert_eq!(parse_mac("02:aa:00:00:00:01:02"), None);
}
