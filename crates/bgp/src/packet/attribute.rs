//! UPDATE path attributes (RFC 4271 §5, RFC 4760, RFC 6793, RFC 1997, RFC 8092) and prefixes,
//! with the error handling of RFC 7606: each malformed attribute is classified as
//! attribute-discard, treat-as-withdraw or session reset.

use super::error::{AttributeIssue, DecodeError, UpdateErrorAction, UpdateErrorSubcode};
use super::{AS_TRANS, DecodeContext, EncodeContext, Reader, afi, safi};
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Attribute flag bits.
pub mod flags {
    /// Optional (not well-known).
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial.
    pub const PARTIAL: u8 = 0x20;
    /// The length field is two octets.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes.
pub mod type_code {
    /// ORIGIN.
    pub const ORIGIN: u8 = 1;
    /// AS_PATH.
    pub const AS_PATH: u8 = 2;
    /// NEXT_HOP.
    pub const NEXT_HOP: u8 = 3;
    /// MULTI_EXIT_DISC.
    pub const MED: u8 = 4;
    /// LOCAL_PREF.
    pub const LOCAL_PREF: u8 = 5;
    /// ATOMIC_AGGREGATE.
    pub const ATOMIC_AGGREGATE: u8 = 6;
    /// AGGREGATOR.
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES.
    pub const COMMUNITIES: u8 = 8;
    /// ORIGINATOR_ID.
    pub const ORIGINATOR_ID: u8 = 9;
    /// CLUSTER_LIST.
    pub const CLUSTER_LIST: u8 = 10;
    /// MP_REACH_NLRI.
    pub const MP_REACH_NLRI: u8 = 14;
    /// MP_UNREACH_NLRI.
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// AS4_PATH.
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR.
    pub const AS4_AGGREGATOR: u8 = 18;
    /// LARGE_COMMUNITY.
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// ORIGIN values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// Learned by an interior protocol (what ironlb announces).
    Igp = 0,
    /// Learned by EGP.
    Egp = 1,
    /// Learned some other way.
    Incomplete = 2,
}

/// AS_PATH segment types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SegmentType {
    /// AS_SET.
    Set = 1,
    /// AS_SEQUENCE.
    Sequence = 2,
    /// AS_CONFED_SEQUENCE (RFC 5065).
    ConfedSequence = 3,
    /// AS_CONFED_SET (RFC 5065).
    ConfedSet = 4,
}

impl SegmentType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsSegment {
    /// Segment type.
    pub kind: SegmentType,
    /// The ASNs (1..=255 of them on the wire).
    pub asns: Vec<u32>,
}

/// An AS_PATH, always held with 4-octet ASNs; the wire width depends on the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsPath {
    /// Segments, leftmost first.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: Vec<u32>) -> Self {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// The path length for RFC 6793 §4.2.3: an AS_SET counts one, confederation segments none.
    fn count(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    fn needs_as4(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|a| *a > u16::MAX as u32))
    }

    fn encode_value(&self, four_octet: bool, out: &mut Vec<u8>) {
        for seg in &self.segments {
            // A segment holds at most 255 ASNs: split longer ones.
            for chunk in seg.asns.chunks(255) {
                out.push(seg.kind as u8);
                out.push(chunk.len() as u8);
                for asn in chunk {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let two = u16::try_from(*asn).unwrap_or(AS_TRANS);
                        out.extend_from_slice(&two.to_be_bytes());
                    }
                }
            }
        }
    }

    /// Decodes an AS_PATH value; `None` if malformed (RFC 7606 §7.2: overrun, underrun, zero
    /// segment length, unknown segment type).
    fn decode_value(buf: &[u8], four_octet: bool) -> Option<AsPath> {
        let width = if four_octet { 4 } else { 2 };
        let mut r = Reader::new(buf);
        let mut segments = Vec::new();
        while !r.is_empty() {
            let kind = SegmentType::from_u8(r.u8()?)?;
            let len = r.u8()? as usize;
            if len == 0 {
                return None;
            }
            let raw = r.take(len * width)?;
            let asns = raw
                .chunks_exact(width)
                .map(|c| {
                    if four_octet {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]]) as u32
                    }
                })
                .collect();
            segments.push(AsSegment { kind, asns });
        }
        Some(AsPath { segments })
    }

    /// Merges an AS4_PATH into a 2-octet AS_PATH (RFC 6793 §4.2.3): the leading ASNs of the
    /// AS_PATH that the AS4_PATH does not cover, then the AS4_PATH.
    fn merge_as4(self, as4: AsPath) -> AsPath {
        let (n, n4) = (self.count(), as4.count());
        if n < n4 {
            return self;
        }
        let mut keep = n - n4;
        let mut segments = Vec::new();
        for seg in self.segments {
            if keep == 0 {
                break;
            }
            match seg.kind {
                SegmentType::Sequence => {
                    let take = keep.min(seg.asns.len());
                    keep -= take;
                    segments.push(AsSegment {
                        kind: seg.kind,
                        asns: seg.asns[..take].to_vec(),
                    });
                }
                SegmentType::Set => {
                    keep -= 1;
                    segments.push(seg);
                }
                _ => segments.push(seg),
            }
        }
        segments.extend(as4.segments);
        AsPath { segments }
    }
}

/// A standard community (RFC 1997): `asn:value` in 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

impl Community {
    /// `high:low`.
    pub fn new(high: u16, low: u16) -> Self {
        Community(((high as u32) << 16) | low as u32)
    }
}

/// A large community (RFC 8092): three 32-bit numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    /// Global administrator (an ASN).
    pub global_admin: u32,
    /// First local data part.
    pub local_data1: u32,
    /// Second local data part.
    pub local_data2: u32,
}

/// MP_REACH_NLRI (RFC 4760 §3) for the families this speaker knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpReach {
    /// IPv4 unicast with an IPv4 next hop.
    Ipv4Unicast {
        /// Next hop.
        next_hop: Ipv4Addr,
        /// Prefixes.
        nlri: Vec<Ipv4Net>,
    },
    /// IPv6 unicast with a global and an optional link-local next hop.
    Ipv6Unicast {
        /// Global next hop.
        next_hop: Ipv6Addr,
        /// Link-local next hop (next hop length 32).
        link_local: Option<Ipv6Addr>,
        /// Prefixes.
        nlri: Vec<Ipv6Net>,
    },
    /// Another family, kept undecoded.
    Other {
        /// AFI.
        afi: u16,
        /// SAFI.
        safi: u8,
        /// The rest of the attribute after AFI and SAFI.
        value: Vec<u8>,
    },
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpUnreach {
    /// IPv4 unicast withdrawals.
    Ipv4Unicast(Vec<Ipv4Net>),
    /// IPv6 unicast withdrawals (empty: End-of-RIB for IPv6).
    Ipv6Unicast(Vec<Ipv6Net>),
    /// Another family, kept undecoded.
    Other {
        /// AFI.
        afi: u16,
        /// SAFI.
        safi: u8,
        /// The withdrawn routes, undecoded.
        value: Vec<u8>,
    },
}

/// An attribute this speaker does not interpret (optional, so allowed), kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute {
    /// Flags as received (without the extended length bit).
    pub flags: u8,
    /// Type code.
    pub type_code: u8,
    /// Value.
    pub value: Vec<u8>,
}

/// The path attributes of one UPDATE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathAttributes {
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH (merged with AS4_PATH on 2-octet sessions).
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (IPv4 NLRI field only).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF (iBGP only).
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// COMMUNITIES (empty: attribute absent).
    pub communities: Vec<Community>,
    /// LARGE_COMMUNITY (empty: attribute absent).
    pub large_communities: Vec<LargeCommunity>,
    /// MP_REACH_NLRI.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI.
    pub mp_unreach: Option<MpUnreach>,
    /// Other optional attributes (AGGREGATOR, extended communities, ...), passed through.
    pub other: Vec<RawAttribute>,
}

/// Appends one prefix in NLRI encoding: length in bits, then the significant octets.
pub fn encode_prefix(len: u8, octets: &[u8], out: &mut Vec<u8>) {
    out.push(len);
    let n = (len as usize).div_ceil(8).min(octets.len());
    out.extend_from_slice(&octets[..n]);
}

/// The encoded size of a prefix of `len` bits.
pub fn prefix_wire_len(len: u8) -> usize {
    1 + (len as usize).div_ceil(8)
}

/// Appends IPv4 prefixes in NLRI encoding.
pub fn encode_ipv4_prefixes(prefixes: &[Ipv4Net], out: &mut Vec<u8>) {
    for p in prefixes {
        encode_prefix(p.prefix_len(), &p.network().octets(), out);
    }
}

/// Appends IPv6 prefixes in NLRI encoding.
pub fn encode_ipv6_prefixes(prefixes: &[Ipv6Net], out: &mut Vec<u8>) {
    for p in prefixes {
        encode_prefix(p.prefix_len(), &p.network().octets(), out);
    }
}

fn decode_prefix<const N: usize>(r: &mut Reader<'_>) -> Option<(u8, [u8; N])> {
    let len = r.u8()?;
    if len as usize > N * 8 {
        return None;
    }
    let bytes = r.take((len as usize).div_ceil(8))?;
    let mut octets = [0u8; N];
    octets[..bytes.len()].copy_from_slice(bytes);
    Some((len, octets))
}

/// Decodes IPv4 prefixes; `None` if a length exceeds 32 or a prefix overruns the buffer.
/// Host bits beyond the length are cleared.
pub fn decode_ipv4_prefixes(buf: &[u8]) -> Option<Vec<Ipv4Net>> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (len, o) = decode_prefix::<4>(&mut r)?;
        out.push(Ipv4Net::new(Ipv4Addr::from(o), len).ok()?.trunc());
    }
    Some(out)
}

/// Decodes IPv6 prefixes; `None` if a length exceeds 128 or a prefix overruns the buffer.
pub fn decode_ipv6_prefixes(buf: &[u8]) -> Option<Vec<Ipv6Net>> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (len, o) = decode_prefix::<16>(&mut r)?;
        out.push(Ipv6Net::new(Ipv6Addr::from(o), len).ok()?.trunc());
    }
    Some(out)
}

fn push_attribute(out: &mut Vec<u8>, flags_: u8, type_code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.push(flags_ | flags::EXTENDED_LENGTH);
        out.push(type_code);
        out.extend_from_slice(&(value.len().min(u16::MAX as usize) as u16).to_be_bytes());
    } else {
        out.push(flags_ & !flags::EXTENDED_LENGTH);
        out.push(type_code);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
}

const WELL_KNOWN: u8 = flags::TRANSITIVE;
const OPTIONAL_TRANSITIVE: u8 = flags::OPTIONAL | flags::TRANSITIVE;
const OPTIONAL_NON_TRANSITIVE: u8 = flags::OPTIONAL;

/// The optional and transitive bits each known attribute must carry.
fn expected_flags(type_code: u8) -> Option<u8> {
    use type_code::*;
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => WELL_KNOWN,
        MED | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            OPTIONAL_NON_TRANSITIVE
        }
        AGGREGATOR | COMMUNITIES | AS4_PATH | AS4_AGGREGATOR | LARGE_COMMUNITY => {
            OPTIONAL_TRANSITIVE
        }
        _ => return None,
    })
}

impl MpReach {
    fn encode_value(&self, out: &mut Vec<u8>) {
        match self {
            MpReach::Ipv4Unicast { next_hop, nlri } => {
                out.extend_from_slice(&afi::IPV4.to_be_bytes());
                out.push(safi::UNICAST);
                out.push(4);
                out.extend_from_slice(&next_hop.octets());
                out.push(0);
                encode_ipv4_prefixes(nlri, out);
            }
            MpReach::Ipv6Unicast {
                next_hop,
                link_local,
                nlri,
            } => {
                out.extend_from_slice(&afi::IPV6.to_be_bytes());
                out.push(safi::UNICAST);
                out.push(if link_local.is_some() { 32 } else { 16 });
                out.extend_from_slice(&next_hop.octets());
                if let Some(ll) = link_local {
                    out.extend_from_slice(&ll.octets());
                }
                out.push(0);
                encode_ipv6_prefixes(nlri, out);
            }
            MpReach::Other { afi, safi, value } => {
                out.extend_from_slice(&afi.to_be_bytes());
                out.push(*safi);
                out.extend_from_slice(value);
            }
        }
    }

    /// `None` when malformed: RFC 7606 §7.11 calls for a session reset then, because the NLRI
    /// cannot be located reliably.
    fn decode_value(buf: &[u8]) -> Option<MpReach> {
        let mut r = Reader::new(buf);
        let afi_ = r.u16()?;
        let safi_ = r.u8()?;
        match (afi_, safi_) {
            (afi::IPV4, safi::UNICAST) => {
                let nh_len = r.u8()?;
                if nh_len != 4 {
                    return None;
                }
                let nh = r.take(4)?;
                let _reserved = r.u8()?;
                Some(MpReach::Ipv4Unicast {
                    next_hop: Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3]),
                    nlri: decode_ipv4_prefixes(r.rest())?,
                })
            }
            (afi::IPV6, safi::UNICAST) => {
                let nh_len = r.u8()?;
                if nh_len != 16 && nh_len != 32 {
                    return None;
                }
                let global = ipv6(r.take(16)?)?;
                let link_local = if nh_len == 32 {
                    Some(ipv6(r.take(16)?)?)
                } else {
                    None
                };
                let _reserved = r.u8()?;
                Some(MpReach::Ipv6Unicast {
                    next_hop: global,
                    link_local,
                    nlri: decode_ipv6_prefixes(r.rest())?,
                })
            }
            _ => Some(MpReach::Other {
                afi: afi_,
                safi: safi_,
                value: r.rest().to_vec(),
            }),
        }
    }
}

impl MpUnreach {
    fn encode_value(&self, out: &mut Vec<u8>) {
        match self {
            MpUnreach::Ipv4Unicast(p) => {
                out.extend_from_slice(&afi::IPV4.to_be_bytes());
                out.push(safi::UNICAST);
                encode_ipv4_prefixes(p, out);
            }
            MpUnreach::Ipv6Unicast(p) => {
                out.extend_from_slice(&afi::IPV6.to_be_bytes());
                out.push(safi::UNICAST);
                encode_ipv6_prefixes(p, out);
            }
            MpUnreach::Other { afi, safi, value } => {
                out.extend_from_slice(&afi.to_be_bytes());
                out.push(*safi);
                out.extend_from_slice(value);
            }
        }
    }

    fn decode_value(buf: &[u8]) -> Option<MpUnreach> {
        let mut r = Reader::new(buf);
        let afi_ = r.u16()?;
        let safi_ = r.u8()?;
        Some(match (afi_, safi_) {
            (afi::IPV4, safi::UNICAST) => MpUnreach::Ipv4Unicast(decode_ipv4_prefixes(r.rest())?),
            (afi::IPV6, safi::UNICAST) => MpUnreach::Ipv6Unicast(decode_ipv6_prefixes(r.rest())?),
            _ => MpUnreach::Other {
                afi: afi_,
                safi: safi_,
                value: r.rest().to_vec(),
            },
        })
    }
}

fn ipv6(b: &[u8]) -> Option<Ipv6Addr> {
    let o: [u8; 16] = b.try_into().ok()?;
    Some(Ipv6Addr::from(o))
}

fn u32_of(value: &[u8]) -> Option<u32> {
    let o: [u8; 4] = value.try_into().ok()?;
    Some(u32::from_be_bytes(o))
}

/// The result of decoding an attribute list that did not call for a session reset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedAttributes {
    /// The attributes that survived.
    pub attributes: PathAttributes,
    /// The RFC 7606 decisions taken.
    pub issues: Vec<AttributeIssue>,
}

impl DecodedAttributes {
    /// True if some error makes every prefix of the UPDATE count as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == UpdateErrorAction::TreatAsWithdraw)
    }
}

impl PathAttributes {
    /// Appends the attributes in type-code order, MP_REACH/MP_UNREACH first (RFC 7606 §5.1
    /// asks for them first, so a receiver can find the NLRI even if a later attribute is bad).
    /// On a 2-octet session an AS_PATH with large ASNs is sent with AS_TRANS plus AS4_PATH.
    pub fn encode(&self, ctx: &EncodeContext, out: &mut Vec<u8>) {
        use type_code::*;
        let mut v = Vec::new();
        if let Some(mp) = &self.mp_reach {
            mp.encode_value(&mut v);
            push_attribute(out, OPTIONAL_NON_TRANSITIVE, MP_REACH_NLRI, &v);
        }
        if let Some(mp) = &self.mp_unreach {
            v.clear();
            mp.encode_value(&mut v);
            push_attribute(out, OPTIONAL_NON_TRANSITIVE, MP_UNREACH_NLRI, &v);
        }
        if let Some(origin) = self.origin {
            push_attribute(out, WELL_KNOWN, ORIGIN, &[origin as u8]);
        }
        if let Some(path) = &self.as_path {
            v.clear();
            path.encode_value(ctx.four_octet_as, &mut v);
            push_attribute(out, WELL_KNOWN, AS_PATH, &v);
        }
        if let Some(nh) = self.next_hop {
            push_attribute(out, WELL_KNOWN, NEXT_HOP, &nh.octets());
        }
        if let Some(med) = self.med {
            push_attribute(out, OPTIONAL_NON_TRANSITIVE, MED, &med.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            push_attribute(out, WELL_KNOWN, LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            push_attribute(out, WELL_KNOWN, ATOMIC_AGGREGATE, &[]);
        }
        if !self.communities.is_empty() {
            v.clear();
            for c in &self.communities {
                v.extend_from_slice(&c.0.to_be_bytes());
            }
            push_attribute(out, OPTIONAL_TRANSITIVE, COMMUNITIES, &v);
        }
        if let Some(path) = &self.as_path
            && !ctx.four_octet_as
            && path.needs_as4()
        {
            v.clear();
            path.encode_value(true, &mut v);
            push_attribute(out, OPTIONAL_TRANSITIVE, AS4_PATH, &v);
        }
        if !self.large_communities.is_empty() {
            v.clear();
            for c in &self.large_communities {
                v.extend_from_slice(&c.global_admin.to_be_bytes());
                v.extend_from_slice(&c.local_data1.to_be_bytes());
                v.extend_from_slice(&c.local_data2.to_be_bytes());
            }
            push_attribute(out, OPTIONAL_TRANSITIVE, LARGE_COMMUNITY, &v);
        }
        for raw in &self.other {
            push_attribute(out, raw.flags, raw.type_code, &raw.value);
        }
    }

    /// The encoded size of these attributes.
    pub fn encoded_len(&self, ctx: &EncodeContext) -> usize {
        let mut v = Vec::new();
        self.encode(ctx, &mut v);
        v.len()
    }

    /// Decodes the path attribute area of an UPDATE. Errors RFC 7606 answers with
    /// attribute-discard or treat-as-withdraw come back in [`DecodedAttributes::issues`]; an
    /// `Err` is a session reset. `has_nlri` says whether the UPDATE's IPv4 NLRI field is
    /// non-empty (NEXT_HOP is then mandatory).
    pub fn decode(
        buf: &[u8],
        ctx: &DecodeContext,
        has_nlri: bool,
    ) -> Result<DecodedAttributes, DecodeError> {
        let mut list = AttributeListDecoder::new(ctx);
        let mut r = Reader::new(buf);
        while !r.is_empty() {
            // RFC 7606 §4: a header or length running past the attribute area makes the rest
            // unparsable; treat-as-withdraw.
            let Some(attr) = WireAttribute::read(&mut r) else {
                list.issue(
                    0,
                    UpdateErrorSubcode::AttributeLengthError,
                    UpdateErrorAction::TreatAsWithdraw,
                );
                break;
            };
            list.accept(&attr)?;
        }
        Ok(list.finish(has_nlri))
    }
}

/// One attribute as framed on the wire (RFC 4271 §4.3), its value not yet interpreted.
struct WireAttribute<'a> {
    /// Flags as received, extended length bit included.
    flags: u8,
    type_code: u8,
    value: &'a [u8],
    /// Header and value: the NOTIFICATION data when the attribute resets the session.
    whole: &'a [u8],
}

impl<'a> WireAttribute<'a> {
    /// Reads flags, type, length and value; `None` if any of them runs past the buffer.
    fn read(r: &mut Reader<'a>) -> Option<Self> {
        let start = r.rest();
        let flags = r.u8()?;
        let type_code = r.u8()?;
        let len = if flags & flags::EXTENDED_LENGTH != 0 {
            r.u16()? as usize
        } else {
            r.u8()? as usize
        };
        let value = r.take(len)?;
        let whole = &start[..start.len() - r.remaining()];
        Some(WireAttribute {
            flags,
            type_code,
            value,
            whole,
        })
    }

    /// The attribute as passed on or kept: flags without the extended length bit.
    fn raw(&self, flags_: u8) -> RawAttribute {
        RawAttribute {
            flags: flags_ & !flags::EXTENDED_LENGTH,
            type_code: self.type_code,
            value: self.value.to_vec(),
        }
    }

    /// The session reset for a malformed MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 7606 §7.11).
    fn optional_attribute_error(&self) -> DecodeError {
        DecodeError::update(
            UpdateErrorSubcode::OptionalAttributeError,
            self.whole.to_vec(),
        )
    }
}

/// The RFC 7606 verdict on one attribute's value: `None` when it is fine, else what is done
/// instead of a session reset.
type Verdict = Option<UpdateErrorAction>;
const ACCEPT: Verdict = None;
const WITHDRAW: Verdict = Some(UpdateErrorAction::TreatAsWithdraw);
const DISCARD: Verdict = Some(UpdateErrorAction::AttributeDiscard);

/// The subcode RFC 4271 would have sent for a bad attribute of `type_code`, recorded with the
/// RFC 7606 decision taken instead.
fn issue_subcode(type_code: u8, value_len: usize) -> UpdateErrorSubcode {
    use type_code::*;
    match type_code {
        ORIGIN => UpdateErrorSubcode::InvalidOriginAttribute,
        AS_PATH => UpdateErrorSubcode::MalformedAsPath,
        NEXT_HOP if value_len == 4 => UpdateErrorSubcode::InvalidNextHopAttribute,
        COMMUNITIES | LARGE_COMMUNITY | AS4_PATH | AGGREGATOR | AS4_AGGREGATOR => {
            UpdateErrorSubcode::OptionalAttributeError
        }
        _ => UpdateErrorSubcode::AttributeLengthError,
    }
}

/// The state of decoding one attribute list: what survived so far, the decisions taken, which
/// type codes were seen, and an AS4_PATH waiting to be merged into the AS_PATH.
struct AttributeListDecoder<'c> {
    ctx: &'c DecodeContext,
    out: DecodedAttributes,
    seen: [bool; 256],
    as4_path: Option<AsPath>,
}

impl<'c> AttributeListDecoder<'c> {
    fn new(ctx: &'c DecodeContext) -> Self {
        AttributeListDecoder {
            ctx,
            out: DecodedAttributes::default(),
            seen: [false; 256],
            as4_path: None,
        }
    }

    fn issue(&mut self, type_code: u8, subcode: UpdateErrorSubcode, action: UpdateErrorAction) {
        self.out.issues.push(AttributeIssue {
            type_code,
            subcode,
            action,
        });
    }

    /// Takes one attribute: repeats, unknown types and wrong flags first, then its value.
    fn accept(&mut self, attr: &WireAttribute<'_>) -> Result<(), DecodeError> {
        use type_code::*;
        let t = attr.type_code;
        if self.seen[t as usize] {
            return self.repeated(t);
        }
        self.seen[t as usize] = true;
        let Some(expected) = expected_flags(t) else {
            return self.unknown(attr);
        };
        let mp = t == MP_REACH_NLRI || t == MP_UNREACH_NLRI;
        if attr.flags & (flags::OPTIONAL | flags::TRANSITIVE) != expected && !mp {
            // RFC 7606 §3 (c).
            self.issue(
                t,
                UpdateErrorSubcode::AttributeFlagsError,
                UpdateErrorAction::TreatAsWithdraw,
            );
            return Ok(());
        }
        if let Some(action) = self.known(attr)? {
            self.issue(t, issue_subcode(t, attr.value.len()), action);
        }
        Ok(())
    }

    /// RFC 7606 §3 (g): a repeated MP_(UN)REACH resets; other repeats are dropped.
    fn repeated(&mut self, t: u8) -> Result<(), DecodeError> {
        if t == type_code::MP_REACH_NLRI || t == type_code::MP_UNREACH_NLRI {
            return Err(DecodeError::update(
                UpdateErrorSubcode::MalformedAttributeList,
                Vec::new(),
            ));
        }
        self.issue(
            t,
            UpdateErrorSubcode::MalformedAttributeList,
            UpdateErrorAction::AttributeDiscard,
        );
        Ok(())
    }

    /// An attribute type this speaker does not know: a reset if marked well-known; else passed
    /// on if transitive (marked partial), dropped if not.
    fn unknown(&mut self, attr: &WireAttribute<'_>) -> Result<(), DecodeError> {
        if attr.flags & flags::OPTIONAL == 0 {
            return Err(DecodeError::update(
                UpdateErrorSubcode::UnrecognizedWellKnownAttribute,
                attr.whole.to_vec(),
            ));
        }
        if attr.flags & flags::TRANSITIVE != 0 {
            (self.out.attributes.other).push(attr.raw(attr.flags | flags::PARTIAL));
        }
        Ok(())
    }

    /// Interprets a known attribute with the right flags; `Err` only for MP_(UN)REACH.
    fn known(&mut self, attr: &WireAttribute<'_>) -> Result<Verdict, DecodeError> {
        use type_code::*;
        let (ctx, a, value) = (self.ctx, &mut self.out.attributes, attr.value);
        Ok(match attr.type_code {
            ORIGIN => origin(a, value),
            AS_PATH => as_path(a, value, ctx),
            NEXT_HOP => next_hop(a, value),
            MED => med(a, value),
            LOCAL_PREF => local_pref(a, value, ctx),
            ATOMIC_AGGREGATE => atomic_aggregate(a, value),
            AGGREGATOR | AS4_AGGREGATOR => aggregator(a, attr, ctx),
            COMMUNITIES => communities(a, value),
            LARGE_COMMUNITY => large_communities(a, value),
            ORIGINATOR_ID | CLUSTER_LIST => route_reflection(a, attr),
            AS4_PATH => as4_path(&mut self.as4_path, value, ctx),
            MP_REACH_NLRI => mp_reach(a, attr)?,
            MP_UNREACH_NLRI => mp_unreach(a, attr)?,
            _ => ACCEPT,
        })
    }

    /// Merges the AS4_PATH, then RFC 7606 §3 (d): a missing mandatory attribute on an UPDATE
    /// with reachable prefixes is treat-as-withdraw. Attributes dropped above count as missing
    /// only if they were absent; their own issue already decided the outcome.
    fn finish(mut self, has_nlri: bool) -> DecodedAttributes {
        use type_code::*;
        if let Some(as4) = self.as4_path.take()
            && let Some(path) = self.out.attributes.as_path.take()
        {
            self.out.attributes.as_path = Some(path.merge_as4(as4));
        }
        let a = &self.out.attributes;
        let reach = has_nlri || a.mp_reach.is_some();
        let mut missing = Vec::new();
        if reach && a.origin.is_none() && !self.seen[ORIGIN as usize] {
            missing.push(ORIGIN);
        }
        if reach && a.as_path.is_none() && !self.seen[AS_PATH as usize] {
            missing.push(AS_PATH);
        }
        if has_nlri && a.next_hop.is_none() && !self.seen[NEXT_HOP as usize] {
            missing.push(NEXT_HOP);
        }
        for t in missing {
            self.issue(
                t,
                UpdateErrorSubcode::MissingWellKnownAttribute,
                UpdateErrorAction::TreatAsWithdraw,
            );
        }
        self.out
    }
}

// One function per attribute type: each stores a good value and returns the RFC 7606 verdict
// on a bad one (`ACCEPT` when it is fine).

/// ORIGIN: one octet, 0 to 2.
fn origin(a: &mut PathAttributes, value: &[u8]) -> Verdict {
    a.origin = Some(match value {
        [0] => Origin::Igp,
        [1] => Origin::Egp,
        [2] => Origin::Incomplete,
        _ => return WITHDRAW,
    });
    ACCEPT
}

/// AS_PATH, 2- or 4-octet ASNs as negotiated.
fn as_path(a: &mut PathAttributes, value: &[u8], ctx: &DecodeContext) -> Verdict {
    let Some(p) = AsPath::decode_value(value, ctx.four_octet_as) else {
        return WITHDRAW;
    };
    a.as_path = Some(p);
    ACCEPT
}

/// NEXT_HOP: an IPv4 unicast address.
fn next_hop(a: &mut PathAttributes, value: &[u8]) -> Verdict {
    match u32_of(value).map(Ipv4Addr::from) {
        Some(nh) if !nh.is_unspecified() && !nh.is_multicast() && !nh.is_broadcast() => {
            a.next_hop = Some(nh);
            ACCEPT
        }
        _ => WITHDRAW,
    }
}

/// MULTI_EXIT_DISC: four octets.
fn med(a: &mut PathAttributes, value: &[u8]) -> Verdict {
    let Some(v) = u32_of(value) else {
        return WITHDRAW;
    };
    a.med = Some(v);
    ACCEPT
}

/// LOCAL_PREF: four octets; RFC 7606 §7.5: from an external peer it is discarded.
fn local_pref(a: &mut PathAttributes, value: &[u8], ctx: &DecodeContext) -> Verdict {
    match u32_of(value) {
        Some(_) if ctx.ebgp => DISCARD,
        Some(v) => {
            a.local_pref = Some(v);
            ACCEPT
        }
        None => WITHDRAW,
    }
}

/// ATOMIC_AGGREGATE: empty.
fn atomic_aggregate(a: &mut PathAttributes, value: &[u8]) -> Verdict {
    if !value.is_empty() {
        return DISCARD;
    }
    a.atomic_aggregate = true;
    ACCEPT
}

/// AGGREGATOR (6 or 8 octets, as the ASN width) and AS4_AGGREGATOR (8 octets, and only from a
/// 2-octet speaker): passed on as received.
fn aggregator(a: &mut PathAttributes, attr: &WireAttribute<'_>, ctx: &DecodeContext) -> Verdict {
    let as4 = attr.type_code == type_code::AS4_AGGREGATOR;
    let len = if ctx.four_octet_as || as4 { 8 } else { 6 };
    if attr.value.len() != len || (as4 && ctx.four_octet_as) {
        return DISCARD;
    }
    a.other.push(attr.raw(attr.flags));
    ACCEPT
}

/// COMMUNITIES: a non-empty multiple of four octets.
fn communities(a: &mut PathAttributes, value: &[u8]) -> Verdict {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return WITHDRAW;
    }
    a.communities = value
        .chunks_exact(4)
        .map(|c| Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    ACCEPT
}

/// LARGE_COMMUNITY: a non-empty multiple of twelve octets.
fn large_communities(a: &mut PathAttributes, value: &[u8]) -> Verdict {
    if value.is_empty() || !value.len().is_multiple_of(12) {
        return WITHDRAW;
    }
    a.large_communities = value
        .chunks_exact(12)
        .map(|c| LargeCommunity {
            global_admin: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            local_data1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            local_data2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
        })
        .collect();
    ACCEPT
}

/// ORIGINATOR_ID (four octets) and CLUSTER_LIST (a non-empty multiple of four), passed on as
/// received.
fn route_reflection(a: &mut PathAttributes, attr: &WireAttribute<'_>) -> Verdict {
    let value = attr.value;
    let good = if attr.type_code == type_code::ORIGINATOR_ID {
        value.len() == 4
    } else {
        !value.is_empty() && value.len().is_multiple_of(4)
    };
    if !good {
        return WITHDRAW;
    }
    a.other.push(attr.raw(attr.flags));
    ACCEPT
}

/// AS4_PATH (RFC 6793): kept for merging into a 2-octet AS_PATH; ignored from a 4-octet
/// speaker; malformed → attribute discard.
fn as4_path(slot: &mut Option<AsPath>, value: &[u8], ctx: &DecodeContext) -> Verdict {
    match AsPath::decode_value(value, true) {
        Some(_) if ctx.four_octet_as => DISCARD,
        Some(p) => {
            *slot = Some(p);
            ACCEPT
        }
        None => DISCARD,
    }
}

/// MP_REACH_NLRI: malformed resets the session.
fn mp_reach(a: &mut PathAttributes, attr: &WireAttribute<'_>) -> Result<Verdict, DecodeError> {
    let m = MpReach::decode_value(attr.value).ok_or_else(|| attr.optional_attribute_error())?;
    a.mp_reach = Some(m);
    Ok(ACCEPT)
}

/// MP_UNREACH_NLRI: malformed resets the session.
fn mp_unreach(a: &mut PathAttributes, attr: &WireAttribute<'_>) -> Result<Verdict, DecodeError> {
    let m = MpUnreach::decode_value(attr.value).ok_or_else(|| attr.optional_attribute_error())?;
    a.mp_unreach = Some(m);
    Ok(ACCEPT)
}
