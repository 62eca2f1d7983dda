//! `metallb.io/v1beta1`: every kind except the stored BGPPeer version (see [`crate::v1beta2`]).

mod bfdprofile;
mod bgpadvertisement;
mod bgppeer;
mod community;
mod ipaddresspool;
mod l2advertisement;
mod status;

pub use bfdprofile::{BfdProfile, BfdProfileSpec, BfdProfileStatus};
pub use bgpadvertisement::{BgpAdvertisement, BgpAdvertisementSpec, BgpAdvertisementStatus};
pub use bgppeer::{BgpPeer, BgpPeerSpec, BgpPeerStatus, LegacyMatchExpression, LegacyNodeSelector};
pub use community::{Community, CommunityAlias, CommunitySpec, CommunityStatus};
pub use ipaddresspool::{IpAddressPool, IpAddressPoolSpec, IpAddressPoolStatus, ServiceAllocation};
pub use l2advertisement::{
    L2Advertisement, L2AdvertisementSpec, L2AdvertisementStatus, PreferredNodeSelector,
};
pub use status::{
    ConfigurationResult, ConfigurationState, ConfigurationStateStatus, InterfaceInfo,
    ServiceBgpStatus, ServiceBgpStatusSpec, ServiceBgpStatusStatus, ServiceL2Status,
    ServiceL2StatusSpec, ServiceL2StatusStatus,
};

/// The version string of this module's types.
pub const VERSION: &str = "v1beta1";

pub(crate) fn default_true() -> Option<bool> {
    Some(true)
}
