//! Properties: valid random pools always build, deterministically and independent of input
//! order; junk address strings never panic.

use ironlb_api::v1beta1;
use ironlb_config::{Context, Objects, build};
use proptest::prelude::*;

/// Non-overlapping pools: pool i owns 10.i.0.0/16, carved into a CIDR and a range.
fn valid_pools() -> impl Strategy<Value = Vec<v1beta1::IpAddressPool>> {
    proptest::collection::vec(
        (
            16u8..=30,
            0u8..=255,
            0u8..=254,
            any::<bool>(),
            any::<bool>(),
        ),
        1..12,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (len, a, b, auto, buggy))| {
                let (lo, hi) = (a.min(b), a.max(b));
                let addresses = vec![
                    format!("10.{i}.0.0/{}", len.max(17)),
                    format!("10.{i}.200.{lo}-10.{i}.200.{hi}"),
                    format!("fc00:{i:x}::/120"),
                ];
                v1beta1::IpAddressPool::new(
                    &format!("pool-{i}"),
                    "metallb-system",
                    v1beta1::IpAddressPoolSpec {
                        addresses,
                        auto_assign: Some(auto),
                        avoid_buggy_ips: buggy,
                        service_allocation: None,
                    },
                )
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn valid_pools_build_deterministically(pools in valid_pools(), rotate in 0usize..12) {
        let objects = Objects { pools: pools.clone(), ..Default::default() };
        let first = build(&objects, &Context::default());
        prop_assert!(first.is_ok(), "{:?}", first.err());
        prop_assert_eq!(&first, &build(&objects, &Context::default()));
        let mut shuffled = pools;
        let n = shuffled.len();
        shuffled.rotate_left(rotate % n);
        let again = build(&Objects { pools: shuffled, ..Default::default() }, &Context::default());
        prop_assert_eq!(first, again);
    }

    #[test]
    fn junk_addresses_never_panic(junk in proptest::collection::vec(".{0,40}", 0..6)) {
        let pool = v1beta1::IpAddressPool::new(
            "junk",
            "metallb-system",
            v1beta1::IpAddressPoolSpec { addresses: junk, ..Default::default() },
        );
        let _ = build(&Objects { pools: vec![pool], ..Default::default() }, &Context::default());
    }

    #[test]
    fn junk_address_like_strings_never_panic(
        a in "[0-9a-f:./-]{0,30}",
        b in "[0-9.]{0,20}-[0-9.:]{0,20}",
    ) {
        let pool = v1beta1::IpAddressPool::new(
            "junk",
            "metallb-system",
            v1beta1::IpAddressPoolSpec { addresses: vec![a, b], ..Default::default() },
        );
        let _ = build(&Objects { pools: vec![pool], ..Default::default() }, &Context::default());
    }
}
