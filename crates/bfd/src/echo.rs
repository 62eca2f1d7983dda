//! BFD Echo packets (RFC 5880 §6.4, RFC 5881 §4), pure: the Ethernet frame we send to the
//! peer's MAC with our own address as IPv4 source and destination, so the peer's forwarding
//! sends it straight back, and the parsing of what comes back.
//!
//! ```text
//!   Ethernet: dst = peer MAC, src = our MAC, type 0x0800
//!   IPv4:     src = dst = our address, TTL 255, protocol UDP, no options
//!   UDP:      src port = dst port = 3785, checksum set
//!   payload:  "ILBE" (4) | our discriminator (4) | sequence number (8), big endian
//! ```
//!
//! The payload is local to this implementation (RFC 5880 §6.4 leaves it to the sender); only
//! our own echoes are recognised, and only IPv4 is covered.

use std::net::Ipv4Addr;

/// The BFD echo UDP port.
pub const ECHO_PORT: u16 = 3785;
/// The first four payload bytes of our echoes.
pub const MAGIC: [u8; 4] = *b"ILBE";
/// Payload length.
pub const PAYLOAD_LEN: usize = 16;
const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// Length of an echo frame.
pub const FRAME_LEN: usize = ETH_LEN + IP_LEN + UDP_LEN + PAYLOAD_LEN;

/// What an echo carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    /// The sending session's local discriminator.
    pub discriminator: u32,
    /// Its echo sequence number.
    pub seq: u64,
}

impl Echo {
    /// The UDP payload.
    pub fn payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut p = [0u8; PAYLOAD_LEN];
        p[..4].copy_from_slice(&MAGIC);
        p[4..8].copy_from_slice(&self.discriminator.to_be_bytes());
        p[8..].copy_from_slice(&self.seq.to_be_bytes());
        p
    }

    /// Reads one of our payloads (None: not ours).
    pub fn from_payload(p: &[u8]) -> Option<Echo> {
        if p.len() != PAYLOAD_LEN || p[..4] != MAGIC {
            return None;
        }
        Some(Echo {
            discriminator: u32::from_be_bytes(p[4..8].try_into().ok()?),
            seq: u64::from_be_bytes(p[8..].try_into().ok()?),
        })
    }

    /// The whole Ethernet frame: from `src_mac` to `dst_mac` (the peer), IPv4 from and to
    /// `ip` (our address), UDP 3785 to 3785, TTL 255, `ident` as the IPv4 identification.
    pub fn frame(
        &self,
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        ip: Ipv4Addr,
        ident: u16,
    ) -> [u8; FRAME_LEN] {
        let mut f = [0u8; FRAME_LEN];
        f[..6].copy_from_slice(&dst_mac);
        f[6..12].copy_from_slice(&src_mac);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ipb = &mut f[ETH_LEN..ETH_LEN + IP_LEN];
        ipb[0] = 0x45;
        ipb[1] = 0xc0; // DSCP CS6 (network control), as for control packets
        ipb[2..4].copy_from_slice(&((IP_LEN + UDP_LEN + PAYLOAD_LEN) as u16).to_be_bytes());
        ipb[4..6].copy_from_slice(&ident.to_be_bytes());
        ipb[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
        ipb[8] = 255;
        ipb[9] = 17;
        ipb[12..16].copy_from_slice(&ip.octets());
        ipb[16..20].copy_from_slice(&ip.octets());
        let sum = fold(add_words(0, ipb));
        ipb[10..12].copy_from_slice(&sum.to_be_bytes());
        let udp_len = (UDP_LEN + PAYLOAD_LEN) as u16;
        let u = ETH_LEN + IP_LEN;
        f[u..u + 2].copy_from_slice(&ECHO_PORT.to_be_bytes());
        f[u + 2..u + 4].copy_from_slice(&ECHO_PORT.to_be_bytes());
        f[u + 4..u + 6].copy_from_slice(&udp_len.to_be_bytes());
        f[u + UDP_LEN..].copy_from_slice(&self.payload());
        // Pseudo header: source, destination, protocol, UDP length.
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&ip.octets());
        pseudo[4..8].copy_from_slice(&ip.octets());
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
        let mut sum = fold(add_words(add_words(0, &pseudo), &f[u..]));
        if sum == 0 {
            sum = 0xffff;
        }
        f[u + 6..u + 8].copy_from_slice(&sum.to_be_bytes());
        f
    }

    /// Reads an Ethernet frame carrying one of our echoes back to us: IPv4 without
    /// fragmentation, UDP to 3785, valid IPv4 header checksum; returns the echo and the IPv4
    /// source and destination (None: anything else).
    pub fn parse_frame(frame: &[u8]) -> Option<(Echo, Ipv4Addr, Ipv4Addr)> {
        if frame.len() < ETH_LEN + IP_LEN + UDP_LEN || frame[12..14] != [0x08, 0x00] {
            return None;
        }
        let ipb = &frame[ETH_LEN..];
        if ipb[0] >> 4 != 4 || ipb[9] != 17 {
            return None;
        }
        let ihl = (ipb[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([ipb[2], ipb[3]]) as usize;
        if ihl < IP_LEN || total < ihl + UDP_LEN || total > ipb.len() {
            return None;
        }
        if u16::from_be_bytes([ipb[6], ipb[7]]) & 0x3fff != 0
            || fold(add_words(0, &ipb[..ihl])) != 0
        {
            return None;
        }
        let udp = &ipb[ihl..total];
        if u16::from_be_bytes([udp[2], udp[3]]) != ECHO_PORT {
            return None;
        }
        let ulen = u16::from_be_bytes([udp[4], udp[5]]) as usize;
        if ulen < UDP_LEN || ulen > udp.len() {
            return None;
        }
        let echo = Echo::from_payload(&udp[UDP_LEN..ulen])?;
        let src = Ipv4Addr::new(ipb[12], ipb[13], ipb[14], ipb[15]);
        let dst = Ipv4Addr::new(ipb[16], ipb[17], ipb[18], ipb[19]);
        Some((echo, src, dst))
    }
}

/// Adds `data` as 16-bit big-endian words to the one's-complement accumulator `acc`.
fn add_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

/// The Internet checksum (RFC 1071) of an accumulated sum.
fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The MAC address and interface of `peer` in a `/proc/net/arp` table (complete entries
/// only, flag 0x2).
pub fn arp_lookup(table: &str, peer: Ipv4Addr) -> Option<([u8; 6], String)> {
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [ip, _hw_type, flags, mac, _mask, dev] = f[..] else {
            continue;
        };
        if ip.parse::<Ipv4Addr>().ok() != Some(peer) {
            continue;
        }
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        if flags & 0x2 == 0 {
            continue;
        }
        let mac = parse_mac(mac)?;
        if mac == [0; 6] {
            continue;
        }
        return Some((mac, dev.to_string()));
    }
    None
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}
