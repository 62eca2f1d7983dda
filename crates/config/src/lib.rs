//! The `metallb.io` objects -> one validated ironlb configuration, or every reason why not.
//!
//! ```text
//!   Objects { pools, l2 ads, bgp ads, peers, bfd profiles, communities, secrets }
//!      + Context { namespace, features }
//!        |
//!        v  build()                      validate_object() / validate_delete(): the webhook's view,
//!   Config { pools: Vec<allocator::Pool>,  the same rules restricted to one object
//!            l2_advertisements, bgp_advertisements, peers, bfd_profiles, communities }
//!   or Vec<ConfigError>  ("<Kind> \"<name>\": <field path>: <message>")
//! ```
//!
//! Pure: no I/O, no client. The controller and the speaker build their configuration with
//! [`build`]; the admission webhook calls [`validate_object`] and [`validate_delete`] so both
//! apply exactly the same rules. Every rule is in `validate/` (one module per kind).
//!
//! Differences from MetalLB, on purpose: features this build cannot serve yet are rejected
//! with "... is not supported by this ironlb build yet" instead of being ignored; a BGPPeer's
//! `routerID` must be IPv4 (a BGP identifier is 32 bits); an advertisement naming a pool that
//! does not exist is skipped as in MetalLB, but not silently: it is in [`Config::warnings`].
//!
//! References to other objects (a BGPPeer's `bfdProfile` and `passwordSecret`, a Community
//! alias) are judged when the configuration loads, never at admission, so any apply order
//! works ([`ConfigError::reference`]); deleting is refused only for a BFDProfile in use.

mod address;
mod community;
mod error;
mod selector;
mod validate;

pub use community::{BgpCommunity, parse_community};
pub use error::{ConfigError, ObjectKind};
pub use ironlb_allocator::{AddressRange, LabelSelector, Pool, ServiceAllocation};
pub use validate::{Admission, admit, build, validate_delete, validate_object};

use ironlb_api::{v1beta1, v1beta2};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The optional capabilities of the running ironlb build. A configuration that needs one the
/// build lacks is rejected, never silently ignored. `Default` is "nothing optional".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// BGP at all (BGPPeer and BGPAdvertisement objects).
    pub bgp: bool,
    /// IPv6 over BGP: IPv6 peers, advertising IPv6 pools, `dualStackAddressFamily`.
    pub bgp_ipv6: bool,
    /// BFD (`BGPPeer.spec.bfdProfile`).
    pub bfd: bool,
    /// BFD's Echo function (`BFDProfile.spec.echoMode: true`).
    pub bfd_echo: bool,
    /// Graceful restart (`enableGracefulRestart`).
    pub graceful_restart: bool,
    /// Large communities (`large:a:b:c`).
    pub large_communities: bool,
    /// Configurable `keepaliveTime` and `connectTime`.
    pub timers: bool,
    /// `ebgpMultiHop`.
    pub ebgp_multihop: bool,
    /// `dynamicASN`.
    pub dynamic_asn: bool,
    /// TCP MD5 authentication (`password`, `passwordSecret`).
    pub md5: bool,
    /// Peering in a host VRF (`vrf`).
    pub vrf: bool,
    /// Unnumbered peering over an interface (`interface`).
    pub unnumbered: bool,
    /// `BGPAdvertisement.spec.asPathPrepend`.
    pub as_path_prepend: bool,
}

impl Features {
    /// Every capability (for tests and for the eventual full build).
    pub fn all() -> Self {
        Self {
            bgp: true,
            bgp_ipv6: true,
            bfd: true,
            bfd_echo: true,
            graceful_restart: true,
            large_communities: true,
            timers: true,
            ebgp_multihop: true,
            dynamic_asn: true,
            md5: true,
            vrf: true,
            unnumbered: true,
            as_path_prepend: true,
        }
    }

    /// What ironlb's native BGP does: everything but VRF and unnumbered peering.
    pub fn native_bgp() -> Self {
        Self {
            vrf: false,
            unnumbered: false,
            ..Self::all()
        }
    }

    /// What this ironlb build serves: native BGP (IPv4 and IPv6 sessions and prefixes,
    /// graceful restart, large communities, timers, multi-hop, dynamic ASN, MD5, asPathPrepend)
    /// with BFD (asynchronous mode, and the Echo function for IPv4 sessions), without VRF and
    /// unnumbered peering. The one answer the controller, its webhook and the speaker all use,
    /// so that the webhook admits exactly what the speaker can serve.
    pub fn served() -> Self {
        Self {
            bfd_echo: true,
            ..Self::native_bgp()
        }
    }
}

/// A Secret of ironlb's namespace, as far as configuration needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretData {
    /// The Secret's `type` (BGP passwords need `kubernetes.io/basic-auth`).
    pub type_: Option<String>,
    /// The decoded `data`, key -> UTF-8 value.
    pub data: BTreeMap<String, String>,
}

/// Everything the configuration is made of, as read from the API server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Objects {
    /// IPAddressPools.
    pub pools: Vec<v1beta1::IpAddressPool>,
    /// L2Advertisements.
    pub l2_advertisements: Vec<v1beta1::L2Advertisement>,
    /// BGPAdvertisements.
    pub bgp_advertisements: Vec<v1beta1::BgpAdvertisement>,
    /// BGPPeers (stored version).
    pub peers: Vec<v1beta2::BgpPeer>,
    /// BFDProfiles.
    pub bfd_profiles: Vec<v1beta1::BfdProfile>,
    /// Communities.
    pub communities: Vec<v1beta1::Community>,
    /// Secrets of ironlb's namespace referenced by `passwordSecret`, by name.
    pub secrets: BTreeMap<String, SecretData>,
    /// The labels of every Node, when the reader knows them (the speaker, the webhook). Two
    /// BGPAdvertisements conflict on localPref or asPathPrepend only if a Node is selected by
    /// both, as in MetalLB; without the Nodes (the controller, which uses neither attribute)
    /// that rule is not checked.
    pub nodes: Option<Vec<BTreeMap<String, String>>>,
}

/// One configuration object, for [`validate_object`].
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// An IPAddressPool.
    Pool(v1beta1::IpAddressPool),
    /// An L2Advertisement.
    L2Advertisement(v1beta1::L2Advertisement),
    /// A BGPAdvertisement.
    BgpAdvertisement(v1beta1::BgpAdvertisement),
    /// A BGPPeer.
    Peer(v1beta2::BgpPeer),
    /// A BFDProfile.
    BfdProfile(v1beta1::BfdProfile),
    /// A Community.
    Community(v1beta1::Community),
}

/// Where and what ironlb runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The namespace ironlb runs in; objects elsewhere are rejected.
    pub namespace: String,
    /// What this build supports.
    pub features: Features,
}

impl Default for Context {
    fn default() -> Self {
        Self {
            namespace: ironlb_api::DEFAULT_NAMESPACE.to_string(),
            features: Features::default(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Address pools, sorted by name, for the allocator.
    pub pools: Vec<Pool>,
    /// Layer 2 advertisements, sorted by name.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// BGP advertisements, sorted by name.
    pub bgp_advertisements: Vec<BgpAdvertisement>,
    /// BGP peers, sorted by name.
    pub peers: Vec<Peer>,
    /// BFD profiles by name.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
    /// Community aliases by name, resolved.
    pub communities: BTreeMap<String, BgpCommunity>,
    /// What was skipped but did not make the configuration invalid: an advertisement naming a
    /// pool that does not exist (yet), which MetalLB skips silently. Sorted.
    pub warnings: Vec<ConfigError>,
}

/// A validated L2Advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Advertisement {
    /// The object's name.
    pub name: String,
    /// The pools it announces, resolved (names and selectors; all pools when neither given).
    pub pools: Vec<String>,
    /// Nodes that may announce; empty = all.
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to announce on; empty = all.
    pub interfaces: Vec<String>,
    /// Services it applies to; empty = all.
    pub service_selectors: Vec<LabelSelector>,
    /// Weighted node preferences for choosing the announcing node.
    pub preferred_nodes: Vec<(i32, LabelSelector)>,
}

/// A validated BGPAdvertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpAdvertisement {
    /// The object's name.
    pub name: String,
    /// The pools it announces, resolved.
    pub pools: Vec<String>,
    /// IPv4 prefix length to announce (1..=32).
    pub aggregation_length: u8,
    /// IPv6 prefix length to announce (1..=128).
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF, sent to iBGP peers only (ignored for eBGP, as in MetalLB).
    pub local_pref: Option<u32>,
    /// How many times to prepend our AS to the AS_PATH on eBGP sessions (0: none; 1..=10).
    pub as_path_prepend: u8,
    /// Communities, aliases resolved, in the order written.
    pub communities: Vec<BgpCommunity>,
    /// Nodes that announce; empty = all.
    pub node_selectors: Vec<LabelSelector>,
    /// BGPPeer names to announce to; empty = all.
    pub peers: Vec<String>,
    /// Services it applies to; empty = all.
    pub service_selectors: Vec<LabelSelector>,
}

/// The remote AS of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAsn {
    /// Exactly this AS.
    Fixed(u32),
    /// Whatever the peer says, as long as it equals our AS.
    DynamicInternal,
    /// Whatever the peer says, as long as it differs from our AS.
    DynamicExternal,
}

/// Where a session goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerTarget {
    /// A numbered peer.
    Address(IpAddr),
    /// An unnumbered peer on this interface.
    Interface(String),
}

/// A validated BGPPeer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The object's name.
    pub name: String,
    /// Our AS on this session: `localASN` when set, else `myASN`.
    pub my_asn: u32,
    /// The peer's AS.
    pub peer_asn: PeerAsn,
    /// Where to connect.
    pub target: PeerTarget,
    /// TCP port (default 179).
    pub port: u16,
    /// Local address to connect from.
    pub source_address: Option<IpAddr>,
    /// Hold time to propose (default 90 s; 0 disables keepalives).
    pub hold_time: Duration,
    /// Keepalive interval (default hold time / 3).
    pub keepalive_time: Duration,
    /// Time between connection attempts, if set.
    pub connect_time: Option<Duration>,
    /// Router ID to send, if set.
    pub router_id: Option<Ipv4Addr>,
    /// Nodes that peer; empty = all.
    pub node_selectors: Vec<LabelSelector>,
    /// TCP MD5 password (from `password` or the Secret).
    pub password: Option<String>,
    /// BFD profile name, if any (it exists).
    pub bfd_profile: Option<String>,
    /// Negotiate graceful restart.
    pub graceful_restart: bool,
    /// The eBGP peer is several hops away.
    pub ebgp_multihop: bool,
    /// Host VRF to peer in.
    pub vrf: Option<String>,
    /// Carry both address families over this session.
    pub dual_stack_address_family: bool,
}

/// A validated BFDProfile with MetalLB's defaults applied: the BFD session parameters, every
/// value within its range (the ranges are checked here and nowhere else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdProfile {
    /// The object's name.
    pub name: String,
    /// `receiveInterval`, ms (10-60000, default 300).
    pub receive_interval: u32,
    /// `transmitInterval`, ms (10-60000, default 300).
    pub transmit_interval: u32,
    /// `detectMultiplier` (2-255, default 3).
    pub detect_multiplier: u8,
    /// `echoInterval`, ms (10-60000, default 50); used only with `echo_mode`.
    pub echo_interval: u32,
    /// `echoMode`.
    pub echo_mode: bool,
    /// `passiveMode`.
    pub passive_mode: bool,
    /// `minimumTtl` (1-254, default 254).
    pub minimum_ttl: u8,
}

impl BfdProfile {
    /// MetalLB's `receiveInterval` and `transmitInterval` default, ms.
    pub const DEFAULT_INTERVAL: u32 = 300;
    /// MetalLB's `detectMultiplier` default.
    pub const DEFAULT_DETECT_MULTIPLIER: u8 = 3;
    /// MetalLB's `echoInterval` default, ms.
    pub const DEFAULT_ECHO_INTERVAL: u32 = 50;
    /// MetalLB's `minimumTtl` default.
    pub const DEFAULT_MINIMUM_TTL: u8 = 254;
}
