//! The `metallb.io` custom resources, as Rust types, and the CRDs generated from them.
//!
//! ```text
//!   IPAddressPool <-- ipAddressPools / ipAddressPoolSelectors -- L2Advertisement
//!        ^                                                   \-- BGPAdvertisement --peers--> BGPPeer --bfdProfile--> BFDProfile
//!        |                                                          |                          |
//!        |                                              communities (aliases) --> Community    passwordSecret --> Secret
//!   status counts (controller)
//!
//!   written by ironlb: ServiceL2Status, ServiceBGPStatus (speaker), ConfigurationState (both)
//! ```
//!
//! Every kind keeps MetalLB's wire format (field names, defaults, ranges, CEL rules), so objects
//! written for MetalLB are read unchanged. BGPPeer has two versions: [`v1beta2`] is stored,
//! [`v1beta1`] is served and converted by the pure functions in [`conversion`].
//!
//! The root types are written by hand (see [`resource!`]) rather than by `#[derive(CustomResource)]`
//! because MetalLB lets `spec` be omitted (its documented `L2Advertisement` example has none), which
//! the derive cannot express.

#[macro_use]
mod macros;

pub mod conversion;
pub mod crd;
pub mod manifest;
mod schema;
pub mod v1beta1;
pub mod v1beta2;

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};

/// The API group of every kind: `metallb.io`.
pub const GROUP: &str = "metallb.io";

/// The namespace MetalLB (and so ironlb) runs in unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "metallb-system";

/// Parses a Go / `metav1.Duration` string (`"90s"`, `"1m30s"`, `"250ms"`) as MetalLB's fields
/// `holdTime`, `keepaliveTime` and `connectTime` hold them. Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let parsed: kube::core::Duration = text.trim().parse().map_err(|e| format!("{e}"))?;
    if parsed.is_negative() {
        return Err("a duration must not be negative".to_string());
    }
    Ok(parsed.into())
}
