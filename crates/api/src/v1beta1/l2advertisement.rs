//! L2Advertisement: which pools are announced with ARP / NDP, from which nodes and interfaces.

use crate::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

resource! {
    /// Announces the addresses of the selected pools on the local network (ARP / NDP).
    L2Advertisement {
        kind: "L2Advertisement",
        version: "v1beta1",
        plural: "l2advertisements",
        spec: L2AdvertisementSpec,
        status: L2AdvertisementStatus,
    }
}

/// `L2Advertisement.spec`. Everything is optional: an empty spec announces every pool from
/// every node on every interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools, by name. With `ipAddressPoolSelectors` also empty: every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    /// Pools, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce from (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// Services, by label, this advertisement applies to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub service_selectors: Vec<LabelSelector>,
    /// Soft preferences for the announcing node: matching nodes are tried first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_node_selectors: Vec<PreferredNodeSelector>,
}

/// One weighted node preference of `L2Advertisement.spec.preferredNodeSelectors`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreferredNodeSelector {
    /// Weight added to a node's score when it matches, 1-100.
    #[schemars(range(min = 1, max = 100))]
    pub weight: i32,
    /// The nodes this weight applies to.
    #[schemars(transform = crate::schema::label_selectors)]
    pub preference: LabelSelector,
}

/// `L2Advertisement.status` (empty, as in MetalLB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct L2AdvertisementStatus {}
