//! BGPPeer v1beta1: the deprecated, served-but-not-stored version. New code uses
//! [`crate::v1beta2::BgpPeer`]; [`crate::conversion`] converts between the two.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

resource! {
    /// A BGP router to peer with (deprecated version: use metallb.io/v1beta2).
    BgpPeer {
        kind: "BGPPeer",
        version: "v1beta1",
        plural: "bgppeers",
        spec: BgpPeerSpec,
        status: BgpPeerStatus,
    }
}

/// `BGPPeer.spec` in v1beta1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerSpec {
    /// Local AS number.
    #[serde(rename = "myASN")]
    #[schemars(range(min = 0, max = 4294967295u32), transform = crate::schema::int64)]
    pub my_asn: u32,
    /// AS number the peer must announce.
    #[serde(rename = "peerASN")]
    #[schemars(range(min = 0, max = 4294967295u32), transform = crate::schema::int64)]
    pub peer_asn: u32,
    /// Address to connect to.
    pub peer_address: String,
    /// Local address to connect from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// TCP port to connect to (0-16384; unset: 179).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16384), transform = crate::schema::no_format)]
    pub peer_port: Option<u16>,
    /// Requested hold time, a Go duration such as `90s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<String>,
    /// Requested keepalive interval, a Go duration such as `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<String>,
    /// BGP router ID to send.
    #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// Peer only from nodes matching one of these (v1beta1's own selector type).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LegacyNodeSelector>,
    /// TCP MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Name of the BFDProfile for this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    /// The eBGP peer is more than one hop away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebgp_multi_hop: Option<bool>,
}

/// v1beta1's node selector: like a `LabelSelector`, but every expression must carry values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyNodeSelector {
    /// Every pair must be present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Every expression must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LegacyMatchExpression>,
}

/// One expression of a [`LegacyNodeSelector`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LegacyMatchExpression {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values compared with the label's value.
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

/// `BGPPeer.status` (empty, as in MetalLB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BgpPeerStatus {}
