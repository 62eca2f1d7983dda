//! Any bytes through the Control packet decoder: no panic; whatever decodes re-encodes to the
//! same first 24 bytes (Length normalised to 24) and decodes to the same packet again.
#![no_main]
use ironlb_bfd::packet::ControlPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ControlPacket::decode(data) {
        let bytes = p.encode();
        let mut want = data[..24].to_vec();
        want[3] = 24;
        assert_eq!(bytes.to_vec(), want);
        assert_eq!(ControlPacket::decode(&bytes), Ok(p));
    }
});
