//! BGPPeer v1beta1 -> v1beta2 -> v1beta1 gives back the same object.

use ironlb_api::conversion::{bgppeer_to_v1beta1, bgppeer_to_v1beta2};
use ironlb_api::v1beta1::{BgpPeer, BgpPeerSpec, LegacyMatchExpression, LegacyNodeSelector};
use proptest::prelude::*;

fn opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9.:]{0,12}")
}

fn selector() -> impl Strategy<Value = LegacyNodeSelector> {
    (
        proptest::collection::btree_map("[a-z]{1,5}", "[a-z]{0,5}", 0..3),
        proptest::collection::vec(
            (
                "[a-z]{1,5}",
                prop_oneof![Just("In"), Just("NotIn"), Just("Exists")],
                proptest::collection::vec("[a-z]{0,4}", 0..3),
            )
                .prop_map(|(key, op, values)| LegacyMatchExpression {
                    key,
                    operator: op.to_string(),
                    values,
                }),
            0..3,
        ),
    )
        .prop_map(|(match_labels, match_expressions)| LegacyNodeSelector {
            match_labels,
            match_expressions,
        })
}

fn peer() -> impl Strategy<Value = BgpPeer> {
    (
        (any::<u32>(), any::<u32>(), "[0-9a-f.:]{0,15}", opt_string()),
        (
            proptest::option::of(any::<u16>()),
            opt_string(),
            opt_string(),
            opt_string(),
        ),
        (
            proptest::collection::vec(selector(), 0..3),
            opt_string(),
            opt_string(),
            proptest::option::of(any::<bool>()),
        ),
        "[a-z]{1,8}",
    )
        .prop_map(|(a, b, c, name)| {
            let spec = BgpPeerSpec {
                my_asn: a.0,
                peer_asn: a.1,
                peer_address: a.2,
                source_address: a.3,
                peer_port: b.0,
                hold_time: b.1,
                keepalive_time: b.2,
                router_id: b.3,
                node_selectors: c.0,
                password: c.1,
                bfd_profile: c.2,
                ebgp_multi_hop: c.3,
            };
            BgpPeer::new(&name, "metallb-system", spec)
        })
}

proptest! {
    #[test]
    fn v1beta1_round_trips_through_v1beta2(p in peer()) {
        let stored = bgppeer_to_v1beta2(&p);
        prop_assert_eq!(bgppeer_to_v1beta1(&stored), p);
    }

    #[test]
    fn conversion_keeps_metadata_and_asns(p in peer()) {
        let stored = bgppeer_to_v1beta2(&p);
        prop_assert_eq!(&stored.metadata, &p.metadata);
        prop_assert_eq!(stored.spec.my_asn, p.spec.my_asn);
        prop_assert_eq!(stored.spec.peer_asn.unwrap_or(0), p.spec.peer_asn);
    }
}
