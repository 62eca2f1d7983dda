//! Control packet encode / decode, ns per packet.
#![allow(missing_docs)]
use criterion::{Criterion, criterion_group, criterion_main};
use ironlb_bfd::packet::{ControlPacket, Diag, State};
use std::hint::black_box;

fn packet() -> ControlPacket {
    ControlPacket {
        diag: Diag::None,
        state: State::Up,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: 0x1234_5678,
        your_discriminator: 0x9abc_def0,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
    }
}

fn codec(c: &mut Criterion) {
    let p = packet();
    let bytes = p.encode();
    c.bench_function("bfd encode", |b| b.iter(|| black_box(&p).encode()));
    c.bench_function("bfd decode", |b| {
        b.iter(|| ControlPacket::decode(black_box(&bytes)))
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
