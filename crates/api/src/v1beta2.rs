//! `metallb.io/v1beta2`: BGPPeer, the stored version.

use crate::LabelSelector;
use k8s_openapi::api::core::v1::SecretReference;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version string of this module's types.
pub const VERSION: &str = "v1beta2";

/// The default BGP port.
pub const DEFAULT_PEER_PORT: u16 = 179;

resource! {
    /// A BGP router to peer with.
    BgpPeer {
        kind: "BGPPeer",
        version: "v1beta2",
        plural: "bgppeers",
        spec: BgpPeerSpec,
        status: BgpPeerStatus,
    }
}

fn default_peer_port() -> Option<u16> {
    Some(DEFAULT_PEER_PORT)
}

/// How the peer's AS number is found when `peerASN` is not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsn {
    /// The peer must use our AS number (iBGP).
    Internal,
    /// The peer must use another AS number (eBGP).
    External,
}

/// `BGPPeer.spec` in v1beta2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerSpec {
    /// Local AS number.
    #[serde(rename = "myASN")]
    #[schemars(range(min = 0, max = 4294967295u32), transform = crate::schema::int64)]
    pub my_asn: u32,
    /// AS number the peer must announce. Exactly one of `peerASN` and `dynamicASN` is required.
    #[serde(default, rename = "peerASN", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295u32), transform = crate::schema::int64)]
    pub peer_asn: Option<u32>,
    /// The AS number to present to this peer instead of `myASN` (MetalLB: FRR's `local-as
    /// <ASN> no-prepend replace-as`; not supported by MetalLB's native mode).
    #[serde(default, rename = "localASN", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4294967295u32), transform = crate::schema::int64)]
    pub local_asn: Option<u32>,
    /// Accept the peer's AS number if it is ours (`internal`) or not ours (`external`).
    #[serde(
        default,
        rename = "dynamicASN",
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicAsn>,
    /// Address to connect to. Exactly one of `peerAddress` and `interface` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<String>,
    /// Local address to connect from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// TCP port to connect to (1-16384, default 179).
    #[serde(default = "default_peer_port")]
    #[schemars(range(min = 1, max = 16384), transform = crate::schema::no_format)]
    pub peer_port: Option<u16>,
    /// Requested hold time, a Go duration such as `90s` (0 or at least 3 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<String>,
    /// Requested keepalive interval, a Go duration (at most the hold time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<String>,
    /// How long to wait between connection attempts, whole seconds from 1 to 65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new("duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535")
            .message("connect time must be between 1 and 65535 seconds"),
        validation = Rule::new("duration(self).getMilliseconds() % 1000 == 0")
            .message("connect time must be a whole number of seconds")
    )]
    pub connect_time: Option<String>,
    /// BGP router ID to send.
    #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// Peer only from nodes matching one of these (empty: all nodes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::label_selectors)]
    pub node_selectors: Vec<LabelSelector>,
    /// TCP MD5 password (or use `passwordSecret`, not both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A `kubernetes.io/basic-auth` Secret in ironlb's namespace whose key `password` holds the
    /// TCP MD5 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-map-type" = "atomic"))]
    pub password_secret: Option<SecretReference>,
    /// Name of the BFDProfile for this session (unset: no BFD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_profile: Option<String>,
    /// Negotiate graceful restart. Cannot be changed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("EnableGracefulRestart cannot be changed after creation"))]
    pub enable_graceful_restart: Option<bool>,
    /// The eBGP peer is more than one hop away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebgp_multi_hop: Option<bool>,
    /// Peer through an interface of this host VRF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    /// Peer unnumbered over this interface instead of `peerAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Deprecated (use `dualStackAddressFamily`): separate sessions per address family.
    #[serde(default, rename = "disableMP")]
    pub disable_mp: bool,
    /// Also exchange the other address family's prefixes over this session.
    #[serde(default)]
    pub dual_stack_address_family: bool,
}

impl Default for BgpPeerSpec {
    /// Nothing set but MetalLB's defaults (`peerPort: 179`).
    fn default() -> Self {
        Self {
            my_asn: 0,
            peer_asn: None,
            local_asn: None,
            dynamic_asn: None,
            peer_address: None,
            source_address: None,
            peer_port: default_peer_port(),
            hold_time: None,
            keepalive_time: None,
            connect_time: None,
            router_id: None,
            node_selectors: Vec::new(),
            password: None,
            password_secret: None,
            bfd_profile: None,
            enable_graceful_restart: None,
            ebgp_multi_hop: None,
            vrf: None,
            interface: None,
            disable_mp: false,
            dual_stack_address_family: false,
        }
    }
}

/// `BGPPeer.status` (empty, as in MetalLB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BgpPeerStatus {}
