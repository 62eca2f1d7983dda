//! IPAddressPool: the addresses ironlb may hand out.

use crate::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

resource! {
    /// A pool of addresses that LoadBalancer Services get their external IPs from.
    IpAddressPool {
        kind: "IPAddressPool",
        version: "v1beta1",
        plural: "ipaddresspools",
        spec: IpAddressPoolSpec,
        status: IpAddressPoolStatus,
    }
}

/// `IPAddressPool.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpAddressPoolSpec {
    /// The address blocks: each is a CIDR (`10.0.0.0/24`) or an inclusive range
    /// (`10.0.0.150-10.0.0.180`). All blocks share the pool's settings.
    pub addresses: Vec<String>,
    /// Whether Services that did not ask for this pool may get addresses from it (default true).
    #[serde(
        default = "super::default_true",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_assign: Option<bool>,
    /// Never hand out IPv4 addresses ending in `.0` or `.255` (default false).
    #[serde(default, rename = "avoidBuggyIPs")]
    pub avoid_buggy_ips: bool,
    /// Restricts the pool to some namespaces / Services and gives it a priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

impl Default for IpAddressPoolSpec {
    /// No addresses, MetalLB's defaults otherwise (`autoAssign: true`).
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            auto_assign: super::default_true(),
            avoid_buggy_ips: false,
            service_allocation: None,
        }
    }
}

/// `IPAddressPool.spec.serviceAllocation`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Lower values are tried first; 0 (unset) comes after every pool with a priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::schema::no_format)]
    pub priority: Option<i64>,
    /// Namespaces, by name, whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Namespaces, by label, whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services, by label, that may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub service_selectors: Vec<LabelSelector>,
}

/// `IPAddressPool.status`, kept up to date by the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IpAddressPoolStatus {
    /// How many IPv4 addresses of the pool are assigned to Services.
    #[serde(rename = "assignedIPv4")]
    pub assigned_ipv4: i64,
    /// How many IPv6 addresses of the pool are assigned to Services.
    #[serde(rename = "assignedIPv6")]
    pub assigned_ipv6: i64,
    /// How many IPv4 addresses are still free (saturates at `i64::MAX`).
    #[serde(rename = "availableIPv4")]
    pub available_ipv4: i64,
    /// How many IPv6 addresses are still free (saturates at `i64::MAX`).
    #[serde(rename = "availableIPv6")]
    pub available_ipv6: i64,
}
