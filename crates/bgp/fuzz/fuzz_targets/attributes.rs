//! Any path attribute list: no panic, and an issue-free result round-trips.
#![no_main]
use ironlb_bgp::packet::DecodeContext;
use ironlb_bgp::packet::attribute::PathAttributes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let ctx = DecodeContext {
        four_octet_as: flags & 1 != 0,
        ebgp: flags & 2 != 0,
    };
    if let Ok(d) = PathAttributes::decode(data, &ctx, flags & 4 != 0) {
        if d.issues.is_empty() && d.attributes.other.is_empty() {
            let mut out = Vec::new();
            d.attributes.encode(&ctx, &mut out);
            let again = PathAttributes::decode(&out, &ctx, flags & 4 != 0);
            assert_eq!(again.map(|a| a.attributes), Ok(d.attributes));
        }
    }
});
