//! BGPPeer conversion between v1beta1 (served) and v1beta2 (stored), for the conversion webhook.
//!
//! ```text
//!   v1beta1::BgpPeer --to_v1beta2--> v1beta2::BgpPeer   (lossless)
//!   v1beta2::BgpPeer --to_v1beta1--> v1beta1::BgpPeer   (drops fields v1beta1 lacks)
//! ```
//!
//! v1beta1 -> v1beta2 -> v1beta1 gives back the same object. The other way round loses what
//! v1beta1 cannot say (dynamicASN, interface, connectTime, passwordSecret, vrf, graceful restart,
//! disableMP, dualStackAddressFamily, localASN), exactly as MetalLB's conversion does; clients should use
//! v1beta2.

use crate::{LabelSelector, LabelSelectorRequirement, v1beta1, v1beta2};

/// Converts a served v1beta1 BGPPeer into the stored v1beta2 form.
pub fn bgppeer_to_v1beta2(peer: &v1beta1::BgpPeer) -> v1beta2::BgpPeer {
    let s = &peer.spec;
    v1beta2::BgpPeer {
        metadata: peer.metadata.clone(),
        spec: v1beta2::BgpPeerSpec {
            my_asn: s.my_asn,
            // v1beta1 has no way to leave the ASN out: 0 is its "unset".
            peer_asn: (s.peer_asn != 0).then_some(s.peer_asn),
            peer_address: (!s.peer_address.is_empty()).then(|| s.peer_address.clone()),
            source_address: s.source_address.clone(),
            peer_port: s.peer_port,
            hold_time: s.hold_time.clone(),
            keepalive_time: s.keepalive_time.clone(),
            router_id: s.router_id.clone(),
            node_selectors: s
                .node_selectors
                .iter()
                .map(legacy_to_label_selector)
                .collect(),
            password: s.password.clone(),
            bfd_profile: s.bfd_profile.clone(),
            ebgp_multi_hop: s.ebgp_multi_hop,
            ..Default::default()
        },
        status: peer.status.as_ref().map(|_| v1beta2::BgpPeerStatus {}),
    }
}

/// Converts a stored v1beta2 BGPPeer into the served v1beta1 form (lossy, see the module doc).
pub fn bgppeer_to_v1beta1(peer: &v1beta2::BgpPeer) -> v1beta1::BgpPeer {
    let s = &peer.spec;
    v1beta1::BgpPeer {
        metadata: peer.metadata.clone(),
        spec: v1beta1::BgpPeerSpec {
            my_asn: s.my_asn,
            peer_asn: s.peer_asn.unwrap_or(0),
            peer_address: s.peer_address.clone().unwrap_or_default(),
            source_address: s.source_address.clone(),
            peer_port: s.peer_port,
            hold_time: s.hold_time.clone(),
            keepalive_time: s.keepalive_time.clone(),
            router_id: s.router_id.clone(),
            node_selectors: s
                .node_selectors
                .iter()
                .map(label_selector_to_legacy)
                .collect(),
            password: s.password.clone(),
            bfd_profile: s.bfd_profile.clone(),
            ebgp_multi_hop: s.ebgp_multi_hop,
        },
        status: peer.status.as_ref().map(|_| v1beta1::BgpPeerStatus {}),
    }
}

fn legacy_to_label_selector(sel: &v1beta1::LegacyNodeSelector) -> LabelSelector {
    LabelSelector {
        match_labels: (!sel.match_labels.is_empty()).then(|| sel.match_labels.clone()),
        match_expressions: (!sel.match_expressions.is_empty()).then(|| {
            sel.match_expressions
                .iter()
                .map(|e| LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: Some(e.values.clone()),
                })
                .collect()
        }),
    }
}

fn label_selector_to_legacy(sel: &LabelSelector) -> v1beta1::LegacyNodeSelector {
    v1beta1::LegacyNodeSelector {
        match_labels: sel.match_labels.clone().unwrap_or_default(),
        match_expressions: sel
            .match_expressions
            .iter()
            .flatten()
            .map(|e| v1beta1::LegacyMatchExpression {
                key: e.key.clone(),
                operator: e.operator.clone(),
                values: e.values.clone().unwrap_or_default(),
            })
            .collect(),
    }
}
