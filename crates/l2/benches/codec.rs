//! Decode and encode throughput of the ARP and NDP codecs.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ironlb_l2::{ArpFrame, ArpOperation, MacAddr, NdpFrame};
use std::hint::black_box;
use std::net::Ipv6Addr;

fn codec(c: &mut Criterion) {
    let client = MacAddr([2, 0x1b, 0, 0, 0, 0x64]);
    let node = MacAddr([2, 0x1b, 0, 0, 0, 0xe7]);
    let request = ArpFrame {
        eth_dst: MacAddr::BROADCAST,
        eth_src: client,
        operation: ArpOperation::Request,
        sender_mac: client,
        sender_ip: "10.0.0.100".parse().unwrap(),
        target_mac: MacAddr::ZERO,
        target_ip: "10.0.0.150".parse().unwrap(),
    };
    let request_bytes = request.to_bytes();
    let vip6: Ipv6Addr = "fd10::150".parse().unwrap();
    let ns = NdpFrame::solicitation("fd10::100".parse().unwrap(), client, vip6);
    let ns_bytes = ns.to_bytes();
    let mut buf = [0u8; 128];

    let mut g = c.benchmark_group("l2_codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("arp_decode_request", |b| {
        b.iter(|| ArpFrame::decode(black_box(&request_bytes)))
    });
    g.bench_function("arp_encode_reply", |b| {
        b.iter(|| black_box(&request).reply(node).encode(&mut buf))
    });
    g.bench_function("ndp_decode_solicitation", |b| {
        b.iter(|| NdpFrame::decode(black_box(&ns_bytes)))
    });
    g.bench_function("ndp_encode_advertisement", |b| {
        b.iter(|| {
            black_box(&ns)
                .advertisement_for(node, vip6, false)
                .map(|na| na.encode(&mut buf))
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
