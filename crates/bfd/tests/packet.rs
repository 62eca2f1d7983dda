//! Control packet codec: golden bytes both ways, every §6.8.6 check, and properties (round
//! trip; random and truncated bytes never panic).
#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_bfd::packet::{ControlPacket, DecodeError, Diag, State};
use proptest::prelude::*;

fn golden() -> Vec<(ControlPacket, Vec<u8>)> {
    vec![
        (
            // A session starting: Down, slow transmit, Your Discriminator still 0.
            ControlPacket {
                diag: Diag::None,
                state: State::Down,
                poll: false,
                final_: false,
                control_plane_independent: false,
                demand: false,
                detect_mult: 3,
                my_discriminator: 1,
                your_discriminator: 0,
                desired_min_tx: 1_000_000,
                required_min_rx: 300_000,
                required_min_echo_rx: 50_000,
            },
            vec![
                0x20, 0x40, 0x03, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
                0x42, 0x40, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0xc3, 0x50,
            ],
        ),
        (
            // Up with a Poll for faster timers.
            ControlPacket {
                diag: Diag::None,
                state: State::Up,
                poll: true,
                final_: false,
                control_plane_independent: false,
                demand: false,
                detect_mult: 5,
                my_discriminator: 0xdead_beef,
                your_discriminator: 0x0102_0304,
                desired_min_tx: 100_000,
                required_min_rx: 100_000,
                required_min_echo_rx: 0,
            },
            vec![
                0x20, 0xe0, 0x05, 0x18, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x00, 0x01,
                0x86, 0xa0, 0x00, 0x01, 0x86, 0xa0, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        (
            // Down after a detection timeout, answering a Poll, with C and D.
            ControlPacket {
                diag: Diag::ControlDetectionTimeExpired,
                state: State::Down,
                poll: false,
                final_: true,
                control_plane_independent: true,
                demand: true,
                detect_mult: 255,
                my_discriminator: 0xffff_ffff,
                your_discriminator: 7,
                desired_min_tx: 10_000,
                required_min_rx: 60_000_000,
                required_min_echo_rx: 1,
            },
            vec![
                0x21, 0x5a, 0xff, 0x18, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
                0x27, 0x10, 0x03, 0x93, 0x87, 0x00, 0x00, 0x00, 0x00, 0x01,
            ],
        ),
        (
            // AdminDown, Administratively Down.
            ControlPacket {
                diag: Diag::AdministrativelyDown,
                state: State::AdminDown,
                poll: false,
                final_: false,
                control_plane_independent: false,
                demand: false,
                detect_mult: 3,
                my_discriminator: 0x0a0b_0c0d,
                your_discriminator: 0,
                desired_min_tx: 1_000_000,
                required_min_rx: 300_000,
                required_min_echo_rx: 0,
            },
            vec![
                0x27, 0x00, 0x03, 0x18, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
                0x42, 0x40, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        (
            // Init, Neighbor Signaled Session Down; a reserved diagnostic survives as is.
            ControlPacket {
                diag: Diag::Reserved(31),
                state: State::Init,
                poll: false,
                final_: false,
                control_plane_independent: false,
                demand: false,
                detect_mult: 1,
                my_discriminator: 2,
                your_discriminator: 3,
                desired_min_tx: 0,
                required_min_rx: 0,
                required_min_echo_rx: 0,
            },
            vec![
                0x3f, 0x80, 0x01, 0x18, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
    ]
}

#[test]
fn golden_bytes_encode_and_decode() {
    for (p, bytes) in golden() {
        assert_eq!(p.encode().to_vec(), bytes, "{p:?}");
        assert_eq!(ControlPacket::decode(&bytes), Ok(p));
    }
}

#[test]
fn diag_names_and_values() {
    for v in 0..32u8 {
        assert_eq!(Diag::from_bits(v).to_bits(), v);
    }
    assert_eq!(
        Diag::ControlDetectionTimeExpired.to_string(),
        "Control Detection Time Expired"
    );
    assert_eq!(Diag::from_bits(3), Diag::NeighborSignaledSessionDown);
    assert_eq!(Diag::from_bits(7), Diag::AdministrativelyDown);
}

/// The first golden packet's bytes with `f` applied.
fn bytes_with(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = golden()[1].1.clone();
    f(&mut b);
    b
}

#[test]
fn every_reception_check_of_6_8_6() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (golden()[1].1[..23].to_vec(), DecodeError::Truncated(23)),
        (Vec::new(), DecodeError::Truncated(0)),
        (bytes_with(|b| b[0] = 0x00), DecodeError::BadVersion(0)),
        (bytes_with(|b| b[0] = 0x40), DecodeError::BadVersion(2)),
        (
            bytes_with(|b| b[3] = 23),
            DecodeError::BadLength {
                length: 23,
                received: 24,
            },
        ),
        (
            bytes_with(|b| b[3] = 25),
            DecodeError::BadLength {
                length: 25,
                received: 24,
            },
        ),
        (
            // A set: 26 bytes at least, even if that many arrived.
            bytes_with(|b| {
                b[1] |= 0x04;
                b[3] = 25;
                b.extend([0, 0]);
            }),
            DecodeError::BadLength {
                length: 25,
                received: 26,
            },
        ),
        (bytes_with(|b| b[2] = 0), DecodeError::ZeroDetectMult),
        (bytes_with(|b| b[1] |= 0x01), DecodeError::Multipoint),
        (
            bytes_with(|b| b[4..8].fill(0)),
            DecodeError::ZeroMyDiscriminator,
        ),
        (
            bytes_with(|b| b[8..12].fill(0)),
            DecodeError::ZeroYourDiscriminator(State::Up),
        ),
        (
            bytes_with(|b| {
                b[8..12].fill(0);
                b[1] = 0x80;
            }),
            DecodeError::ZeroYourDiscriminator(State::Init),
        ),
        (
            bytes_with(|b| {
                b[1] |= 0x04;
                b[3] = 28;
                b.extend([1, 4, 0, 0]);
            }),
            DecodeError::Authentication,
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(ControlPacket::decode(&bytes), Err(want), "{bytes:02x?}");
        assert!(DecodeError::REASONS.contains(&want.reason()));
    }
}

#[test]
fn bytes_past_the_length_field_are_ignored_and_zero_your_discriminator_ok_when_down() {
    let mut b = golden()[0].1.clone();
    b.extend([0xaa; 8]);
    assert_eq!(ControlPacket::decode(&b), Ok(golden()[0].0));
    // A longer Length (covering the extra bytes) is accepted too.
    b[3] = 32;
    assert_eq!(ControlPacket::decode(&b), Ok(golden()[0].0));
}

fn arb_state() -> impl Strategy<Value = State> {
    (0u8..4).prop_map(State::from_bits)
}

prop_compose! {
    fn arb_packet()(
        diag in 0u8..32, state in arb_state(), poll: bool, final_: bool, c: bool, d: bool,
        detect_mult in 1u8..=255, my in 1u32.., your: u32,
        tx: u32, rx: u32, echo: u32,
    ) -> ControlPacket {
        let your = if matches!(state, State::Down | State::AdminDown) { your } else { your.max(1) };
        ControlPacket {
            diag: Diag::from_bits(diag), state, poll, final_, control_plane_independent: c,
            demand: d, detect_mult, my_discriminator: my, your_discriminator: your,
            desired_min_tx: tx, required_min_rx: rx, required_min_echo_rx: echo,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn round_trip(p in arb_packet()) {
        let bytes = p.encode();
        prop_assert_eq!(ControlPacket::decode(&bytes), Ok(p));
    }

    /// Random bytes never panic; what decodes re-encodes to the same 24 bytes (Length
    /// normalised to 24).
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = ControlPacket::decode(&b) {
            let mut want = b[..24].to_vec();
            want[3] = 24;
            prop_assert_eq!(p.encode().to_vec(), want);
        }
    }

    /// Every prefix of a valid packet, and a valid packet with one byte flipped, decode or
    /// fail without a panic.
    #[test]
    fn truncated_and_mutated_never_panic(p in arb_packet(), cut in 0usize..24, at in 0usize..24, x: u8) {
        let bytes = p.encode();
        prop_assert!(ControlPacket::decode(&bytes[..cut]).is_err());
        let mut m = bytes;
        m[at] ^= x;
        let _ = ControlPacket::decode(&m);
    }
}
