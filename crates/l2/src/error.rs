//! Why a frame was dropped, and why one could not be written.

/// Why a received frame is not a valid ARP or NDP message. Each variant is a drop reason the
/// responder counts separately ([`DecodeError::reason`] is its metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than an Ethernet header.
    #[error("frame shorter than an Ethernet header")]
    TruncatedEthernet,
    /// The EtherType is not the one this decoder reads.
    #[error("unexpected EtherType")]
    UnexpectedEtherType,
    /// Shorter than an Ethernet/IPv4 ARP packet (28 bytes).
    #[error("ARP packet truncated")]
    TruncatedArp,
    /// ARP hardware type is not Ethernet (1), or its address length is not 6.
    #[error("ARP hardware is not Ethernet")]
    ArpHardware,
    /// ARP protocol type is not IPv4 (0x0800), or its address length is not 4.
    #[error("ARP protocol is not IPv4")]
    ArpProtocol,
    /// ARP operation is neither request (1) nor reply (2).
    #[error("ARP operation is neither request nor reply")]
    ArpOperation,
    /// Shorter than an IPv6 header, or the payload length runs past the frame.
    #[error("IPv6 packet truncated")]
    TruncatedIpv6,
    /// The IP version field is not 6.
    #[error("IP version is not 6")]
    Ipv6Version,
    /// The next header is not ICMPv6 (extension headers included: NDP never needs them).
    #[error("next header is not ICMPv6")]
    NotIcmpv6,
    /// Shorter than the fixed part of the ICMPv6 message.
    #[error("ICMPv6 message truncated")]
    TruncatedIcmpv6,
    /// The ICMPv6 checksum over the pseudo-header does not match.
    #[error("ICMPv6 checksum mismatch")]
    Checksum,
    /// ICMPv6 type is neither Neighbor Solicitation (135) nor Neighbor Advertisement (136).
    #[error("ICMPv6 type is not NS or NA")]
    Icmpv6Type,
    /// RFC 4861 7.1: hop limit must be 255 (so the sender is on-link).
    #[error("hop limit is not 255")]
    HopLimit,
    /// RFC 4861 7.1: ICMP code must be 0.
    #[error("ICMPv6 code is not 0")]
    Icmpv6Code,
    /// The target address is multicast.
    #[error("target address is multicast")]
    MulticastTarget,
    /// An option has length 0 or runs past the message.
    #[error("malformed NDP option")]
    Option,
    /// A link-layer address option is not 8 bytes (Ethernet).
    #[error("link-layer address option has the wrong length")]
    LinkLayerOption,
    /// RFC 4861 7.1.1: a NS from the unspecified address must go to a solicited-node group
    /// and carry no source link-layer address option.
    #[error("NS from :: breaks the DAD rules")]
    UnspecifiedSource,
    /// RFC 4861 7.1.2: a NA to a multicast address must not have the Solicited flag.
    #[error("solicited NA sent to a multicast address")]
    SolicitedToMulticast,
}

impl DecodeError {
    /// Every reason, in counter order.
    pub const ALL: [DecodeError; 19] = [
        DecodeError::TruncatedEthernet,
        DecodeError::UnexpectedEtherType,
        DecodeError::TruncatedArp,
        DecodeError::ArpHardware,
        DecodeError::ArpProtocol,
        DecodeError::ArpOperation,
        DecodeError::TruncatedIpv6,
        DecodeError::Ipv6Version,
        DecodeError::NotIcmpv6,
        DecodeError::TruncatedIcmpv6,
        DecodeError::Checksum,
        DecodeError::Icmpv6Type,
        DecodeError::HopLimit,
        DecodeError::Icmpv6Code,
        DecodeError::MulticastTarget,
        DecodeError::Option,
        DecodeError::LinkLayerOption,
        DecodeError::UnspecifiedSource,
        DecodeError::SolicitedToMulticast,
    ];

    /// A short snake_case label, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TruncatedEthernet => "truncated_ethernet",
            DecodeError::UnexpectedEtherType => "unexpected_ethertype",
            DecodeError::TruncatedArp => "truncated_arp",
            DecodeError::ArpHardware => "arp_hardware",
            DecodeError::ArpProtocol => "arp_protocol",
            DecodeError::ArpOperation => "arp_operation",
            DecodeError::TruncatedIpv6 => "truncated_ipv6",
            DecodeError::Ipv6Version => "ipv6_version",
            DecodeError::NotIcmpv6 => "not_icmpv6",
            DecodeError::TruncatedIcmpv6 => "truncated_icmpv6",
            DecodeError::Checksum => "checksum",
            DecodeError::Icmpv6Type => "icmpv6_type",
            DecodeError::HopLimit => "hop_limit",
            DecodeError::Icmpv6Code => "icmpv6_code",
            DecodeError::MulticastTarget => "multicast_target",
            DecodeError::Option => "option",
            DecodeError::LinkLayerOption => "link_layer_option",
            DecodeError::UnspecifiedSource => "unspecified_source",
            DecodeError::SolicitedToMulticast => "solicited_to_multicast",
        }
    }

    /// The position of this reason in [`DecodeError::ALL`].
    pub fn index(&self) -> usize {
        DecodeError::ALL
            .iter()
            .position(|r| r == self)
            .unwrap_or_default()
    }
}

/// The output buffer is too small for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("buffer of {have} bytes is too small, {need} needed")]
pub struct EncodeError {
    /// Bytes the message needs.
    pub need: usize,
    /// Bytes the buffer has.
    pub have: usize,
}
