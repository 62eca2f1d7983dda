//! Any capability code and value: no panic, and what decodes re-encodes to the same bytes.
#![no_main]
use ironlb_bgp::packet::capability::Capability;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&code, value)) = data.split_first() else {
        return;
    };
    let value = &value[..value.len().min(255)];
    if let Some(cap) = Capability::decode(code, value) {
        let mut out = Vec::new();
        cap.encode(&mut out);
        assert_eq!(Capability::decode(out[0], &out[2..]), Some(cap));
    }
});
