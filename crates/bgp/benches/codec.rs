//! Codec throughput: packing and encoding 10,000 IPv4 and IPv6 prefixes into UPDATEs, decoding
//! them back, and the small messages.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::attribute::Community;
use ironlb_bgp::packet::capability::{Capability, Family};
use ironlb_bgp::packet::message::{Message, OpenMessage};
use ironlb_bgp::rib::{RouteAttributes, SessionParams, pack_updates};
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

const N: usize = 10_000;
const CTX: DecodeContext = DecodeContext {
    four_octet_as: true,
    ebgp: true,
};

fn params() -> SessionParams {
    SessionParams {
        local_as: 64513,
        ebgp: true,
        four_octet_as: true,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        ipv4_next_hop: Some(Ipv4Addr::new(10, 0, 0, 231)),
        ipv6_next_hop: Some("fd10::231".parse().unwrap_or(Ipv6Addr::LOCALHOST)),
    }
}

fn prefixes(v6: bool) -> Vec<(IpNet, RouteAttributes)> {
    let attrs = RouteAttributes {
        communities: vec![Community::new(64512, 100)],
        ..RouteAttributes::default()
    };
    (0..N as u32)
        .map(|i| {
            let p = if v6 {
                IpNet::V6(
                    Ipv6Net::new(
                        Ipv6Addr::from(0xfd10_0000_0000_0000_0000_0000_0001_0000 + i as u128),
                        128,
                    )
                    .unwrap_or_default(),
                )
            } else {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a01_0000 + i), 32).unwrap_or_default())
            };
            (p, attrs.clone())
        })
        .collect()
}

fn encode_all(announce: &[(IpNet, RouteAttributes)]) -> Vec<u8> {
    let mut out = Vec::new();
    for u in pack_updates(announce, &[], &params()) {
        Message::Update(u).encode_into(&CTX, &mut out);
    }
    out
}

fn decode_all(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    while let Ok((m, used)) = Message::decode(bytes, &CTX) {
        if let Message::Update(u) = m {
            n += u.reachable().len();
        }
        bytes = &bytes[used..];
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("update");
    g.throughput(Throughput::Elements(N as u64));
    for (name, v6) in [("ipv4", false), ("ipv6", true)] {
        let announce = prefixes(v6);
        let bytes = encode_all(&announce);
        assert_eq!(decode_all(&bytes), N);
        g.bench_function(format!("pack+encode 10k {name} prefixes"), |b| {
            b.iter(|| encode_all(black_box(&announce)))
        });
        g.bench_function(format!("decode 10k {name} prefixes"), |b| {
            b.iter(|| decode_all(black_box(&bytes)))
        });
    }
    // Baseline: one UPDATE per prefix, as MetalLB's native speaker sends them.
    let announce = prefixes(false);
    let one_each = || {
        let mut out = Vec::new();
        for p in &announce {
            for u in pack_updates(std::slice::from_ref(p), &[], &params()) {
                Message::Update(u).encode_into(&CTX, &mut out);
            }
        }
        out
    };
    let (packed, single) = (encode_all(&announce), one_each());
    println!(
        "10k IPv4 prefixes: packed into {} octets ({} UPDATEs), one UPDATE per prefix: {} octets (10000 UPDATEs)",
        packed.len(),
        pack_updates(&announce, &[], &params()).len(),
        single.len()
    );
    g.bench_function("encode 10k ipv4 prefixes one UPDATE each (baseline)", |b| {
        b.iter(one_each)
    });
    g.finish();
    let open = Message::Open(OpenMessage::new(
        64513,
        90,
        Ipv4Addr::new(10, 0, 0, 231),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
        ],
    ));
    let open_bytes = open.encode(&CTX);
    c.bench_function("open encode", |b| b.iter(|| black_box(&open).encode(&CTX)));
    c.bench_function("open decode", |b| {
        b.iter(|| Message::decode(black_box(&open_bytes), &CTX))
    });
    let ka = Message::Keepalive.encode(&CTX);
    c.bench_function("keepalive decode", |b| {
        b.iter(|| Message::decode(black_box(&ka), &CTX))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
