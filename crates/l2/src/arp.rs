//! ARP for IPv4 over Ethernet (RFC 826), with the gratuitous forms of RFC 5227.
//!
//! ```text
//!  0      6      12   14    16    18  19  20    22        28       32        38       42
//!  | dst  | src  |0806| htype=1| ptype=0800|6|4| oper | sha | spa | tha | tpa |
//!  '--- Ethernet ---''------------------------- ARP (28 bytes) -----------------------'
//! ```

use crate::ethernet::{ETHERNET_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetHeader, mac_at};
use crate::{DecodeError, EncodeError, MacAddr};
use std::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet without the Ethernet header.
pub const ARP_PACKET_LEN: usize = 28;
/// Length of a whole ARP frame (header + packet, before any padding).
pub const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + ARP_PACKET_LEN;

/// The ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1: who has `target_ip`?
    Request,
    /// 2: `sender_ip` is at `sender_mac`.
    Reply,
}

impl ArpOperation {
    fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// One ARP frame: the Ethernet addresses and the ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpFrame {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpFrame {
    /// Decodes an Ethernet frame holding an Ethernet/IPv4 ARP packet. Trailing bytes (the
    /// padding to 60 bytes that real links add) are ignored. Never panics.
    pub fn decode(frame: &[u8]) -> Result<ArpFrame, DecodeError> {
        let (eth, p) = EthernetHeader::decode(frame)?;
        if eth.ethertype != ETHERTYPE_ARP {
            return Err(DecodeError::UnexpectedEtherType);
        }
        if p.len() < ARP_PACKET_LEN {
            return Err(DecodeError::TruncatedArp);
        }
        let htype = u16::from_be_bytes([p[0], p[1]]);
        let ptype = u16::from_be_bytes([p[2], p[3]]);
        if htype != 1 || p[4] != 6 {
            return Err(DecodeError::ArpHardware);
        }
        if ptype != ETHERTYPE_IPV4 || p[5] != 4 {
            return Err(DecodeError::ArpProtocol);
        }
        let operation = match u16::from_be_bytes([p[6], p[7]]) {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            _ => return Err(DecodeError::ArpOperation),
        };
        Ok(ArpFrame {
            eth_dst: eth.dst,
            eth_src: eth.src,
            operation,
            sender_mac: mac_at(p, 8),
            sender_ip: Ipv4Addr::new(p[14], p[15], p[16], p[17]),
            target_mac: mac_at(p, 18),
            target_ip: Ipv4Addr::new(p[24], p[25], p[26], p[27]),
        })
    }

    /// Writes the frame ([`ARP_FRAME_LEN`] bytes) to the start of `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if buf.len() < ARP_FRAME_LEN {
            return Err(EncodeError {
                need: ARP_FRAME_LEN,
                have: buf.len(),
            });
        }
        EthernetHeader {
            dst: self.eth_dst,
            src: self.eth_src,
            ethertype: ETHERTYPE_ARP,
        }
        .write(buf);
        let p = &mut buf[ETHERNET_HEADER_LEN..ARP_FRAME_LEN];
        p[0..2].copy_from_slice(&1u16.to_be_bytes());
        p[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        p[4] = 6;
        p[5] = 4;
        p[6..8].copy_from_slice(&self.operation.code().to_be_bytes());
        p[8..14].copy_from_slice(&self.sender_mac.0);
        p[14..18].copy_from_slice(&self.sender_ip.octets());
        p[18..24].copy_from_slice(&self.target_mac.0);
        p[24..28].copy_from_slice(&self.target_ip.octets());
        Ok(ARP_FRAME_LEN)
    }

    /// The encoded frame as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; ARP_FRAME_LEN];
        // The buffer is exactly the right size.
        let _ = self.encode(&mut buf);
        buf
    }

    /// The reply to this request from the owner of `target_ip`, whose interface has `mac`:
    /// unicast back to the asker.
    pub fn reply(&self, mac: MacAddr) -> ArpFrame {
        ArpFrame {
            eth_dst: self.sender_mac,
            eth_src: mac,
            operation: ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }

    /// A gratuitous ARP request announcing that `ip` is at `mac`: broadcast, sender IP =
    /// target IP = `ip`, target hardware address zero (RFC 5227's ARP Announcement).
    pub fn gratuitous_request(ip: Ipv4Addr, mac: MacAddr) -> ArpFrame {
        ArpFrame {
            eth_dst: MacAddr::BROADCAST,
            eth_src: mac,
            operation: ArpOperation::Request,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// A gratuitous ARP reply announcing that `ip` is at `mac`: broadcast, sender IP = target
    /// IP = `ip`, target hardware address broadcast.
    pub fn gratuitous_reply(ip: Ipv4Addr, mac: MacAddr) -> ArpFrame {
        ArpFrame {
            eth_dst: MacAddr::BROADCAST,
            eth_src: mac,
            operation: ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::BROADCAST,
            target_ip: ip,
        }
    }

    /// An ARP Probe (RFC 5227): who has `ip`? asked from sender IP 0.0.0.0, so no host's
    /// cache changes; any answer means somebody else uses `ip`.
    pub fn probe(ip: Ipv4Addr, mac: MacAddr) -> ArpFrame {
        ArpFrame {
            eth_dst: MacAddr::BROADCAST,
            eth_src: mac,
            operation: ArpOperation::Request,
            sender_mac: mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// Sender IP equals target IP: an announcement, not a question.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}
