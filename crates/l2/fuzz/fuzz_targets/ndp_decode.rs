//! NDP decoder: never panics; whatever decodes re-encodes to a frame that decodes the same.
#![no_main]

use ironlb_l2::NdpFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = NdpFrame::decode(data) {
        assert_eq!(NdpFrame::decode(&frame.to_bytes()), Ok(frame));
    }
});
