//! IPv6 Neighbor Discovery (RFC 4861): Neighbor Solicitation and Neighbor Advertisement in
//! Ethernet frames, with the link-layer address options and the ICMPv6 checksum.
//!
//! ```text
//!  Ethernet (14) | IPv6 header (40): ver 6, payload len, next hdr 58, hop limit 255, src, dst
//!                | ICMPv6 (24): type 135 NS / 136 NA, code 0, checksum, flags R S O (NA),
//!                |              target address
//!                | options: type 1 source / 2 target link-layer address, len 1 (x 8 bytes), MAC
//! ```
//! The checksum covers the pseudo-header: source, destination, upper-layer length (32 bits),
//! three zero bytes and next header 58 (RFC 8200 8.1), then the ICMPv6 message.

use crate::ethernet::{ETHERNET_HEADER_LEN, ETHERTYPE_IPV6, EthernetHeader};
use crate::{DecodeError, EncodeError, MacAddr};
use std::net::Ipv6Addr;

/// IPv6 next header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// ICMPv6 type of a Neighbor Solicitation.
pub const TYPE_NEIGHBOR_SOLICITATION: u8 = 135;
/// ICMPv6 type of a Neighbor Advertisement.
pub const TYPE_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Length of the IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Length of a NS or NA without options.
pub const NDP_MESSAGE_LEN: usize = 24;
/// Length of a link-layer address option for Ethernet.
pub const LINK_LAYER_OPTION_LEN: usize = 8;
/// All-nodes multicast address, where unsolicited advertisements go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Largest NS/NA frame this crate writes.
pub const NDP_MAX_FRAME_LEN: usize =
    ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + NDP_MESSAGE_LEN + LINK_LAYER_OPTION_LEN;

const OPTION_SOURCE_LINK_LAYER: u8 = 1;
const OPTION_TARGET_LINK_LAYER: u8 = 2;
const HOP_LIMIT: u8 = 255;

/// The solicited-node multicast group of `ip`: `ff02::1:ffXX:XXXX` with the low 24 bits of `ip`
/// (RFC 4291 2.7.1). Neighbor Solicitations for `ip` are sent there.
pub fn solicited_node_multicast(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet multicast address of an IPv6 multicast group: `33:33` and the group's low 32
/// bits (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The flags of a Neighbor Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AdvertisementFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in answer to a solicitation.
    pub solicited: bool,
    /// O: override an existing cache entry.
    pub override_: bool,
}

/// The NDP message carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdpMessage {
    /// Neighbor Solicitation: who has `target`?
    NeighborSolicitation {
        /// The address asked about.
        target: Ipv6Addr,
        /// The asker's MAC (source link-layer address option), if sent.
        source_mac: Option<MacAddr>,
    },
    /// Neighbor Advertisement: `target` is at `target_mac`.
    NeighborAdvertisement {
        /// R, S, O.
        flags: AdvertisementFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// Its MAC (target link-layer address option), if sent.
        target_mac: Option<MacAddr>,
    },
}

impl NdpMessage {
    /// The target address.
    pub fn target(&self) -> Ipv6Addr {
        match self {
            NdpMessage::NeighborSolicitation { target, .. }
            | NdpMessage::NeighborAdvertisement { target, .. } => *target,
        }
    }
}

/// One NS or NA in an Ethernet frame. The hop limit is always 255 (checked on decode, written
/// on encode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NdpFrame {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// IPv6 source.
    pub ip_src: Ipv6Addr,
    /// IPv6 destination.
    pub ip_dst: Ipv6Addr,
    /// The message.
    pub message: NdpMessage,
}

impl NdpFrame {
    /// Decodes and validates (RFC 4861 7.1.1 / 7.1.2) an Ethernet frame holding a NS or NA.
    /// Trailing bytes after the IPv6 payload are ignored; unknown options are skipped. Never
    /// panics.
    pub fn decode(frame: &[u8]) -> Result<NdpFrame, DecodeError> {
        let (eth, ip) = EthernetHeader::decode(frame)?;
        if eth.ethertype != ETHERTYPE_IPV6 {
            return Err(DecodeError::UnexpectedEtherType);
        }
        if ip.len() < IPV6_HEADER_LEN {
            return Err(DecodeError::TruncatedIpv6);
        }
        if ip[0] >> 4 != 6 {
            return Err(DecodeError::Ipv6Version);
        }
        let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let payload = ip
            .get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len)
            .ok_or(DecodeError::TruncatedIpv6)?;
        if ip[6] != NEXT_HEADER_ICMPV6 {
            return Err(DecodeError::NotIcmpv6);
        }
        let hop_limit = ip[7];
        let ip_src = addr_at(ip, 8);
        let ip_dst = addr_at(ip, 24);
        if payload.len() < 4 {
            return Err(DecodeError::TruncatedIcmpv6);
        }
        let kind = payload[0];
        if kind != TYPE_NEIGHBOR_SOLICITATION && kind != TYPE_NEIGHBOR_ADVERTISEMENT {
            return Err(DecodeError::Icmpv6Type);
        }
        if payload.len() < NDP_MESSAGE_LEN {
            return Err(DecodeError::TruncatedIcmpv6);
        }
        if hop_limit != HOP_LIMIT {
            return Err(DecodeError::HopLimit);
        }
        if payload[1] != 0 {
            return Err(DecodeError::Icmpv6Code);
        }
        if icmpv6_checksum(ip_src, ip_dst, payload) != 0 {
            return Err(DecodeError::Checksum);
        }
        let target = addr_at(payload, 8);
        if target.is_multicast() {
            return Err(DecodeError::MulticastTarget);
        }
        let mut source_mac = None;
        let mut target_mac = None;
        let mut options = &payload[NDP_MESSAGE_LEN..];
        while !options.is_empty() {
            if options.len() < 2 {
                return Err(DecodeError::Option);
            }
            let len = usize::from(options[1]) * 8;
            if len == 0 || len > options.len() {
                return Err(DecodeError::Option);
            }
            let (option, rest) = options.split_at(len);
            match option[0] {
                OPTION_SOURCE_LINK_LAYER | OPTION_TARGET_LINK_LAYER => {
                    if len != LINK_LAYER_OPTION_LEN {
                        return Err(DecodeError::LinkLayerOption);
                    }
                    let mac = crate::ethernet::mac_at(option, 2);
                    if option[0] == OPTION_SOURCE_LINK_LAYER {
                        source_mac = Some(mac);
                    } else {
                        target_mac = Some(mac);
                    }
                }
                // RFC 4861 4.6: options a receiver does not know are skipped.
                _ => {}
            }
            options = rest;
        }
        let message = if kind == TYPE_NEIGHBOR_SOLICITATION {
            if ip_src.is_unspecified()
                && (source_mac.is_some() || solicited_node_multicast(target) != ip_dst)
            {
                return Err(DecodeError::UnspecifiedSource);
            }
            NdpMessage::NeighborSolicitation { target, source_mac }
        } else {
            let flags = AdvertisementFlags {
                router: payload[4] & 0x80 != 0,
                solicited: payload[4] & 0x40 != 0,
                override_: payload[4] & 0x20 != 0,
            };
            if flags.solicited && ip_dst.is_multicast() {
                return Err(DecodeError::SolicitedToMulticast);
            }
            NdpMessage::NeighborAdvertisement {
                flags,
                target,
                target_mac,
            }
        };
        Ok(NdpFrame {
            eth_dst: eth.dst,
            eth_src: eth.src,
            ip_src,
            ip_dst,
            message,
        })
    }

    /// The encoded length of this frame.
    pub fn len(&self) -> usize {
        let option = match self.message {
            NdpMessage::NeighborSolicitation { source_mac: m, .. }
            | NdpMessage::NeighborAdvertisement { target_mac: m, .. } => m.is_some(),
        };
        ETHERNET_HEADER_LEN
            + IPV6_HEADER_LEN
            + NDP_MESSAGE_LEN
            + if option { LINK_LAYER_OPTION_LEN } else { 0 }
    }

    /// Never empty; present because `len` is.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the frame to the start of `buf`, checksum included; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.len();
        if buf.len() < len {
            return Err(EncodeError {
                need: len,
                have: buf.len(),
            });
        }
        let buf = &mut buf[..len];
        EthernetHeader {
            dst: self.eth_dst,
            src: self.eth_src,
            ethertype: ETHERTYPE_IPV6,
        }
        .write(buf);
        let (ip, payload) = buf[ETHERNET_HEADER_LEN..].split_at_mut(IPV6_HEADER_LEN);
        let payload_len = payload.len() as u16;
        ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
        ip[4..6].copy_from_slice(&payload_len.to_be_bytes());
        ip[6] = NEXT_HEADER_ICMPV6;
        ip[7] = HOP_LIMIT;
        ip[8..24].copy_from_slice(&self.ip_src.octets());
        ip[24..40].copy_from_slice(&self.ip_dst.octets());
        payload.fill(0);
        let (kind, flags, target, option) = match self.message {
            NdpMessage::NeighborSolicitation { target, source_mac } => (
                TYPE_NEIGHBOR_SOLICITATION,
                0,
                target,
                source_mac.map(|m| (OPTION_SOURCE_LINK_LAYER, m)),
            ),
            NdpMessage::NeighborAdvertisement {
                flags,
                target,
                target_mac,
            } => (
                TYPE_NEIGHBOR_ADVERTISEMENT,
                u8::from(flags.router) << 7
                    | u8::from(flags.solicited) << 6
                    | u8::from(flags.override_) << 5,
                target,
                target_mac.map(|m| (OPTION_TARGET_LINK_LAYER, m)),
            ),
        };
        payload[0] = kind;
        payload[4] = flags;
        payload[8..24].copy_from_slice(&target.octets());
        if let Some((option_type, mac)) = option {
            payload[24] = option_type;
            payload[25] = 1;
            payload[26..32].copy_from_slice(&mac.0);
        }
        let sum = icmpv6_checksum(self.ip_src, self.ip_dst, payload);
        payload[2..4].copy_from_slice(&sum.to_be_bytes());
        Ok(len)
    }

    /// The encoded frame as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.len()];
        // The buffer is exactly the right size.
        let _ = self.encode(&mut buf);
        buf
    }

    /// A Neighbor Solicitation for `target` from `ip_src` / `mac`, to the target's
    /// solicited-node group, with the source link-layer address option.
    pub fn solicitation(ip_src: Ipv6Addr, mac: MacAddr, target: Ipv6Addr) -> NdpFrame {
        let group = solicited_node_multicast(target);
        NdpFrame {
            eth_dst: multicast_mac(group),
            eth_src: mac,
            ip_src,
            ip_dst: group,
            message: NdpMessage::NeighborSolicitation {
                target,
                source_mac: Some(mac),
            },
        }
    }

    /// A duplicate-address-detection probe for `target` (RFC 4862 5.4.2): from `::`, to the
    /// solicited-node group, no option. Whoever holds `target` answers to all-nodes.
    pub fn probe(target: Ipv6Addr, mac: MacAddr) -> NdpFrame {
        let group = solicited_node_multicast(target);
        NdpFrame {
            eth_dst: multicast_mac(group),
            eth_src: mac,
            ip_src: Ipv6Addr::UNSPECIFIED,
            ip_dst: group,
            message: NdpMessage::NeighborSolicitation {
                target,
                source_mac: None,
            },
        }
    }

    /// The answer to this Neighbor Solicitation from the owner of its target, whose interface
    /// has `mac`, sent from `source` (the responder uses the target address itself, as the
    /// Linux kernel does: `ndisc6` ignores answers from a link-local source), with S=1 and
    /// O=`override_` (MetalLB sends O=0). A solicitation from `::` (DAD) is answered to
    /// all-nodes without S (RFC 4861 7.2.4). `None` if this is not a NS.
    pub fn advertisement_for(
        &self,
        mac: MacAddr,
        source: Ipv6Addr,
        override_: bool,
    ) -> Option<NdpFrame> {
        let NdpMessage::NeighborSolicitation { target, source_mac } = self.message else {
            return None;
        };
        let (eth_dst, ip_dst, solicited) = if self.ip_src.is_unspecified() {
            (multicast_mac(ALL_NODES), ALL_NODES, false)
        } else {
            (source_mac.unwrap_or(self.eth_src), self.ip_src, true)
        };
        Some(NdpFrame {
            eth_dst,
            eth_src: mac,
            ip_src: source,
            ip_dst,
            message: NdpMessage::NeighborAdvertisement {
                flags: AdvertisementFlags {
                    router: false,
                    solicited,
                    override_,
                },
                target,
                target_mac: Some(mac),
            },
        })
    }

    /// An unsolicited Neighbor Advertisement telling every node that `ip` is now at `mac`:
    /// to ff02::1, O=1, S=0, from `source` (the responder uses `ip` itself).
    pub fn unsolicited_advertisement(ip: Ipv6Addr, mac: MacAddr, source: Ipv6Addr) -> NdpFrame {
        NdpFrame {
            eth_dst: multicast_mac(ALL_NODES),
            eth_src: mac,
            ip_src: source,
            ip_dst: ALL_NODES,
            message: NdpMessage::NeighborAdvertisement {
                flags: AdvertisementFlags {
                    router: false,
                    solicited: false,
                    override_: true,
                },
                target: ip,
                target_mac: Some(mac),
            },
        }
    }
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

/// The ICMPv6 checksum of `message` between `src` and `dst`. Computed over a message whose
/// checksum field is zero it gives the value to write; over a received message it gives 0 when
/// the checksum is right.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u64::from(*last) << 8;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(message.len() as u32).to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
