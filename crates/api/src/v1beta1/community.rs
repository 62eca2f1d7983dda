//! Community: named aliases for BGP community values.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

resource! {
    /// Names for BGP communities, usable in `BGPAdvertisement.spec.communities`.
    Community {
        kind: "Community",
        version: "v1beta1",
        plural: "communities",
        spec: CommunitySpec,
        status: CommunityStatus,
    }
}

/// `Community.spec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommunitySpec {
    /// The aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityAlias>,
}

/// One alias: a name and the community it stands for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommunityAlias {
    /// The alias.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `a:b` (standard community) or `large:a:b:c` (large community).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// `Community.status` (empty, as in MetalLB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommunityStatus {}
