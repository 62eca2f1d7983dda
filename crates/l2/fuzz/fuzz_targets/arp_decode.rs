//! ARP decoder: never panics; whatever decodes re-encodes to the same 42 leading bytes.
#![no_main]

use ironlb_l2::ArpFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = ArpFrame::decode(data) {
        let bytes = frame.to_bytes();
        assert_eq!(&bytes[..], &data[..bytes.len()]);
        assert_eq!(ArpFrame::decode(&bytes), Ok(frame));
    }
});
