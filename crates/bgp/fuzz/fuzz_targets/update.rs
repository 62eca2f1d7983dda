//! Any body behind a valid header of type 2 (update): the decoder never panics.
#![no_main]
use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = &data[..data.len().min(4096 - 19)];
    let mut framed = vec![0xff; 16];
    framed.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    framed.push(2);
    framed.extend_from_slice(body);
    for four_octet_as in [false, true] {
        for ebgp in [false, true] {
            let _ = Message::decode(
                &framed,
                &DecodeContext {
                    four_octet_as,
                    ebgp,
                },
            );
        }
    }
});
