//! BGPAdvertisement: which pools are announced over BGP, to which peers, with which attributes.

use crate::LabelSelector;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

resource! {
    /// Announces the addresses of the selected pools to BGP peers.
    BgpAdvertisement {
        kind: "BGPAdvertisement",
        version: "v1beta1",
        plural: "bgpadvertisements",
        spec: BgpAdvertisementSpec,
        status: BgpAdvertisementStatus,
    }
}

/// The default IPv4 aggregation length: announce each address as a /32.
pub const DEFAULT_AGGREGATION_LENGTH: i32 = 32;
/// The default IPv6 aggregation length: announce each address as a /128.
pub const DEFAULT_AGGREGATION_LENGTH_V6: i32 = 128;

fn default_aggregation_length() -> Option<i32> {
    Some(DEFAULT_AGGREGATION_LENGTH)
}

fn default_aggregation_length_v6() -> Option<i32> {
    Some(DEFAULT_AGGREGATION_LENGTH_V6)
}

/// `BGPAdvertisement.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.serviceSelectors) || self.serviceSelectors.size() == 0 || ((!has(self.aggregationLength) || self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))"
).message("serviceSelectors can only be used with the default aggregationLength (32) and aggregationLengthV6 (128)"))]
pub struct BgpAdvertisementSpec {
    /// Announce IPv4 addresses rolled up into prefixes of this length (default 32).
    #[serde(default = "default_aggregation_length")]
    #[schemars(range(min = 1))]
    pub aggregation_length: Option<i32>,
    /// Announce IPv6 addresses rolled up into prefixes of this length (default 128).
    #[serde(default = "default_aggregation_length_v6")]
    pub aggregation_length_v6: Option<i32>,
    /// The LOCAL_PREF attribute (sent to iBGP peers only).
    // Unlike MetalLB's schema (format int32, no bounds) ours keeps u32's `minimum: 0`: the API
    // server refuses a negative value, which neither MetalLB's uint32 nor ours could read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::schema::int32)]
    pub local_pref: Option<u32>,
    /// Prepend our AS number this many times (1-10) to the AS_PATH of these prefixes on eBGP
    /// sessions, to make the path look longer (MetalLB v0.16.2; there in frr-k8s mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10), transform = crate::schema::no_format)]
    pub as_path_prepend: Option<u8>,
    /// Communities: `a:b` (standard), `large:a:b:c` (large) or the name of a Community alias.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    /// Pools, by name. With `ipAddressPoolSelectors` also empty: every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    /// Pools, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that announce (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub node_selectors: Vec<LabelSelector>,
    /// BGPPeer names to announce to (empty: all peers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Services, by label, this advertisement applies to (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub service_selectors: Vec<LabelSelector>,
}

impl Default for BgpAdvertisementSpec {
    /// The spec of an advertisement written without one: MetalLB's defaults.
    fn default() -> Self {
        Self {
            aggregation_length: default_aggregation_length(),
            aggregation_length_v6: default_aggregation_length_v6(),
            local_pref: None,
            as_path_prepend: None,
            communities: Vec::new(),
            ip_address_pools: Vec::new(),
            ip_address_pool_selectors: Vec::new(),
            node_selectors: Vec::new(),
            peers: Vec::new(),
            service_selectors: Vec::new(),
        }
    }
}

/// `BGPAdvertisement.status` (empty, as in MetalLB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BgpAdvertisementStatus {}
