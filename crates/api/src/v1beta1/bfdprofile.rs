//! BFDProfile: the timers of a BFD session that watches a BGP session.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

resource! {
    /// Settings of a BFD session that a BGPPeer may use (`spec.bfdProfile`).
    BfdProfile {
        kind: "BFDProfile",
        version: "v1beta1",
        plural: "bfdprofiles",
        spec: BfdProfileSpec,
        status: BfdProfileStatus,
    }
}

/// `BFDProfile.spec`. Unset values take the BFD implementation's defaults (300 ms intervals,
/// multiplier 3, 50 ms echo interval).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BfdProfileSpec {
    /// Minimum interval between received control packets, in milliseconds (10-60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000), transform = crate::schema::int32)]
    pub receive_interval: Option<u32>,
    /// Minimum interval between sent control packets, in milliseconds (10-60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000), transform = crate::schema::int32)]
    pub transmit_interval: Option<u32>,
    /// Packets that may be lost before the session is declared down (2-255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255), transform = crate::schema::int32)]
    pub detect_multiplier: Option<u32>,
    /// Minimum interval between echo packets, in milliseconds (10-60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000), transform = crate::schema::int32)]
    pub echo_interval: Option<u32>,
    /// Use echo mode (single-hop sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// Wait for the peer's control packets instead of starting the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// Multi-hop sessions: the minimum TTL expected on received packets (1-254).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254), transform = crate::schema::int32)]
    pub minimum_ttl: Option<u32>,
}

/// `BFDProfile.status` (empty, as in MetalLB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BfdProfileStatus {}
