//! BGP messages (RFC 4271 §4, RFC 2918 / 7313 route refresh, RFC 4724 End-of-RIB) and framing:
//! [`Message::check`] finds a complete message in a buffer, [`Message::parse`] decodes it.

use super::attribute::{
    DecodedAttributes, MpReach, MpUnreach, PathAttributes, decode_ipv4_prefixes,
    encode_ipv4_prefixes,
};
use super::capability::{Capability, Family};
use super::error::{
    AttributeIssue, DecodeError, HeaderErrorSubcode, OpenErrorSubcode, UpdateErrorAction,
    UpdateErrorSubcode,
};
// NOTIFICATION lives with the error codes it carries (in `error`, which every decoder uses);
// it is re-exported here beside the other messages.
pub use super::error::NotificationMessage;
use super::{AS_TRANS, BGP_VERSION, DecodeContext, EncodeContext, HEADER_LEN, MARKER};
use super::{MAX_MESSAGE_LEN, Reader};
use ipnet::{IpNet, Ipv4Net};
use std::net::Ipv4Addr;

/// Message type codes.
pub mod message_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// A BGP message.
// UPDATE is the big one and also the common one: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(OpenMessage),
    /// UPDATE.
    Update(UpdateMessage),
    /// NOTIFICATION.
    Notification(NotificationMessage),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefreshMessage),
}

/// OPEN (RFC 4271 §4.2) with the capabilities optional parameter (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenMessage {
    /// Protocol version (4).
    pub version: u8,
    /// The 2-octet "My Autonomous System" field (AS_TRANS for a 4-octet ASN).
    pub my_as: u16,
    /// Proposed hold time in seconds (0 or at least 3).
    pub hold_time: u16,
    /// BGP identifier.
    pub identifier: Ipv4Addr,
    /// Capabilities, in the order received.
    pub capabilities: Vec<Capability>,
}

impl OpenMessage {
    /// An OPEN for `asn`: `my_as` is the ASN or AS_TRANS, and a 4-octet ASN capability is added
    /// first (RFC 6793 says to always send it).
    pub fn new(asn: u32, hold_time: u16, identifier: Ipv4Addr, mut caps: Vec<Capability>) -> Self {
        caps.retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        caps.insert(0, Capability::FourOctetAs(asn));
        OpenMessage {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            identifier,
            capabilities: caps,
        }
    }

    /// The ASN from the 4-octet ASN capability, if announced.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// The sender's real ASN.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(self.my_as as u32)
    }

    /// The families announced with the multiprotocol capability.
    pub fn families(&self) -> Vec<Family> {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect()
    }
}

/// UPDATE (RFC 4271 §4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateMessage {
    /// Withdrawn IPv4 prefixes.
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes (IPv6 and MP IPv4 prefixes are in MP_REACH / MP_UNREACH).
    pub attributes: PathAttributes,
    /// Reachable IPv4 prefixes.
    pub nlri: Vec<Ipv4Net>,
    /// RFC 7606 decisions taken while decoding (never encoded).
    pub issues: Vec<AttributeIssue>,
}

impl UpdateMessage {
    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE holding only an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Self {
        let mut u = UpdateMessage::default();
        if family != Family::IPV4_UNICAST {
            u.attributes.mp_unreach = Some(if family == Family::IPV6_UNICAST {
                MpUnreach::Ipv6Unicast(Vec::new())
            } else {
                MpUnreach::Other {
                    afi: family.afi,
                    safi: family.safi,
                    value: Vec::new(),
                }
            });
        }
        u
    }

    /// The family this UPDATE marks End-of-RIB for, if it is such a marker.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.issues.is_empty() {
            return None;
        }
        let a = &self.attributes;
        if a == &PathAttributes::default() {
            return Some(Family::IPV4_UNICAST);
        }
        let only_unreach = PathAttributes {
            mp_unreach: a.mp_unreach.clone(),
            ..PathAttributes::default()
        };
        if a != &only_unreach {
            return None;
        }
        match a.mp_unreach.as_ref()? {
            MpUnreach::Ipv6Unicast(p) if p.is_empty() => Some(Family::IPV6_UNICAST),
            MpUnreach::Ipv4Unicast(p) if p.is_empty() => Some(Family::IPV4_UNICAST),
            MpUnreach::Other { afi, safi, value } if value.is_empty() => Some(Family {
                afi: *afi,
                safi: *safi,
            }),
            _ => None,
        }
    }

    /// True if an RFC 7606 error turned every prefix of this UPDATE into a withdrawal.
    pub fn treat_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == UpdateErrorAction::TreatAsWithdraw)
    }

    /// The prefixes this UPDATE makes reachable (none if treat-as-withdraw applies).
    pub fn reachable(&self) -> Vec<IpNet> {
        if self.treat_as_withdraw() {
            return Vec::new();
        }
        self.announced_prefixes()
    }

    fn announced_prefixes(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self.nlri.iter().map(|p| IpNet::V4(*p)).collect();
        match &self.attributes.mp_reach {
            Some(MpReach::Ipv4Unicast { nlri, .. }) => v.extend(nlri.iter().map(|p| IpNet::V4(*p))),
            Some(MpReach::Ipv6Unicast { nlri, .. }) => v.extend(nlri.iter().map(|p| IpNet::V6(*p))),
            _ => {}
        }
        v
    }

    /// The prefixes this UPDATE withdraws, including those of treat-as-withdraw.
    pub fn unreachable(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self.withdrawn.iter().map(|p| IpNet::V4(*p)).collect();
        match &self.attributes.mp_unreach {
            Some(MpUnreach::Ipv4Unicast(p)) => v.extend(p.iter().map(|p| IpNet::V4(*p))),
            Some(MpUnreach::Ipv6Unicast(p)) => v.extend(p.iter().map(|p| IpNet::V6(*p))),
            _ => {}
        }
        if self.treat_as_withdraw() {
            v.extend(self.announced_prefixes());
        }
        v
    }

    fn encode_body(&self, ctx: &EncodeContext, out: &mut Vec<u8>) {
        let mut w = Vec::new();
        encode_ipv4_prefixes(&self.withdrawn, &mut w);
        out.extend_from_slice(&(w.len() as u16).to_be_bytes());
        out.extend_from_slice(&w);
        let mut a = Vec::new();
        self.attributes.encode(ctx, &mut a);
        out.extend_from_slice(&(a.len() as u16).to_be_bytes());
        out.extend_from_slice(&a);
        encode_ipv4_prefixes(&self.nlri, out);
    }

    fn decode_body(body: &[u8], ctx: &DecodeContext) -> Result<UpdateMessage, DecodeError> {
        let malformed =
            || DecodeError::update(UpdateErrorSubcode::MalformedAttributeList, Vec::new());
        let mut r = Reader::new(body);
        let wlen = r.u16().ok_or_else(malformed)? as usize;
        let wbytes = r.take(wlen).ok_or_else(malformed)?;
        let alen = r.u16().ok_or_else(malformed)? as usize;
        let abytes = r.take(alen).ok_or_else(malformed)?;
        let invalid = || DecodeError::update(UpdateErrorSubcode::InvalidNetworkField, Vec::new());
        let withdrawn = decode_ipv4_prefixes(wbytes).ok_or_else(invalid)?;
        let nlri = decode_ipv4_prefixes(r.rest()).ok_or_else(invalid)?;
        let DecodedAttributes { attributes, issues } =
            PathAttributes::decode(abytes, ctx, !nlri.is_empty())?;
        Ok(UpdateMessage {
            withdrawn,
            attributes,
            nlri,
            issues,
        })
    }
}

/// ROUTE-REFRESH (RFC 2918; subtype from RFC 7313).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefreshMessage {
    /// The family to refresh.
    pub family: Family,
    /// 0 = normal request, 1 = BoRR, 2 = EoRR.
    pub subtype: u8,
}

fn encode_open_body(o: &OpenMessage, out: &mut Vec<u8>) {
    out.push(o.version);
    out.extend_from_slice(&o.my_as.to_be_bytes());
    out.extend_from_slice(&o.hold_time.to_be_bytes());
    out.extend_from_slice(&o.identifier.octets());
    // One Capabilities parameter per capability, as common implementations send them; each
    // parameter holds at most 255 octets.
    let mut params = Vec::new();
    for c in &o.capabilities {
        let mut cap = Vec::new();
        c.encode(&mut cap);
        params.push(2u8);
        params.push(cap.len() as u8);
        params.extend_from_slice(&cap);
    }
    params.truncate(255);
    out.push(params.len() as u8);
    out.extend_from_slice(&params);
}

fn decode_open_body(body: &[u8]) -> Result<OpenMessage, DecodeError> {
    let unspecific = || DecodeError::open(OpenErrorSubcode::Unspecific);
    let mut r = Reader::new(body);
    let version = r.u8().ok_or_else(unspecific)?;
    if version != BGP_VERSION {
        return Err(DecodeError::Open {
            subcode: OpenErrorSubcode::UnsupportedVersionNumber,
            data: (BGP_VERSION as u16).to_be_bytes().to_vec(),
        });
    }
    let my_as = r.u16().ok_or_else(unspecific)?;
    let hold_time = r.u16().ok_or_else(unspecific)?;
    let identifier = Ipv4Addr::from(r.u32().ok_or_else(unspecific)?);
    let opt_len = r.u8().ok_or_else(unspecific)? as usize;
    if opt_len != r.remaining() {
        return Err(unspecific());
    }
    let mut capabilities = Vec::new();
    while !r.is_empty() {
        let ptype = r.u8().ok_or_else(unspecific)?;
        let plen = r.u8().ok_or_else(unspecific)? as usize;
        let pvalue = r.take(plen).ok_or_else(unspecific)?;
        if ptype != 2 {
            return Err(DecodeError::Open {
                subcode: OpenErrorSubcode::UnsupportedOptionalParameter,
                data: Vec::new(),
            });
        }
        let mut pr = Reader::new(pvalue);
        while !pr.is_empty() {
            let code = pr.u8().ok_or_else(unspecific)?;
            let len = pr.u8().ok_or_else(unspecific)? as usize;
            let value = pr.take(len).ok_or_else(unspecific)?;
            // A known capability whose value does not fit its layout is kept as unknown
            // rather than failing the session.
            capabilities.push(Capability::decode(code, value).unwrap_or_else(|| {
                Capability::Unknown {
                    code,
                    value: value.to_vec(),
                }
            }));
        }
    }
    let open = OpenMessage {
        version,
        my_as,
        hold_time,
        identifier,
        capabilities,
    };
    if hold_time == 1 || hold_time == 2 {
        return Err(DecodeError::open(OpenErrorSubcode::UnacceptableHoldTime));
    }
    if identifier.is_unspecified() {
        return Err(DecodeError::open(OpenErrorSubcode::BadBgpIdentifier));
    }
    // RFC 7607: AS 0 is never valid.
    if my_as == 0 || open.four_octet_as() == Some(0) {
        return Err(DecodeError::open(OpenErrorSubcode::BadPeerAs));
    }
    Ok(open)
}

impl Message {
    /// The message type code.
    pub fn message_type(&self) -> u8 {
        match self {
            Message::Open(_) => message_type::OPEN,
            Message::Update(_) => message_type::UPDATE,
            Message::Notification(_) => message_type::NOTIFICATION,
            Message::Keepalive => message_type::KEEPALIVE,
            Message::RouteRefresh(_) => message_type::ROUTE_REFRESH,
        }
    }

    /// Appends the message with its header. The caller keeps UPDATEs within
    /// [`MAX_MESSAGE_LEN`] (see [`crate::rib`], which packs them).
    pub fn encode_into(&self, ctx: &EncodeContext, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&MARKER);
        out.extend_from_slice(&[0, 0, self.message_type()]);
        match self {
            Message::Open(o) => encode_open_body(o, out),
            Message::Update(u) => u.encode_body(ctx, out),
            Message::Notification(n) => {
                out.push(n.code);
                out.push(n.subcode);
                out.extend_from_slice(&n.data);
            }
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => {
                out.extend_from_slice(&rr.family.afi.to_be_bytes());
                out.push(rr.subtype);
                out.push(rr.family.safi);
            }
        }
        let len = (out.len() - start).min(u16::MAX as usize) as u16;
        out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
    }

    /// The message with its header.
    pub fn encode(&self, ctx: &EncodeContext) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(ctx, &mut out);
        out
    }

    /// Checks the header at the start of `buf`: `Ok(len)` when a whole message of `len` bytes
    /// is there, [`DecodeError::Incomplete`] when more bytes are needed, a header error
    /// (NOTIFICATION 1/x) when the marker, length or type is bad.
    pub fn check(buf: &[u8]) -> Result<usize, DecodeError> {
        if buf.len() < HEADER_LEN {
            // A bad marker is reported as soon as it can be seen.
            if buf.iter().take(16).any(|b| *b != 0xff) {
                return Err(DecodeError::header(
                    HeaderErrorSubcode::ConnectionNotSynchronized,
                    Vec::new(),
                ));
            }
            return Err(DecodeError::Incomplete);
        }
        if buf[..16] != MARKER {
            return Err(DecodeError::header(
                HeaderErrorSubcode::ConnectionNotSynchronized,
                Vec::new(),
            ));
        }
        let len = u16::from_be_bytes([buf[16], buf[17]]) as usize;
        let kind = buf[18];
        let min = match kind {
            message_type::OPEN => 29,
            message_type::UPDATE => 23,
            message_type::NOTIFICATION => 21,
            message_type::KEEPALIVE => 19,
            message_type::ROUTE_REFRESH => 19,
            _ => {
                return Err(DecodeError::header(
                    HeaderErrorSubcode::BadMessageType,
                    vec![kind],
                ));
            }
        };
        let bad_len = len < min
            || len > MAX_MESSAGE_LEN
            || (kind == message_type::KEEPALIVE && len != HEADER_LEN);
        if bad_len {
            return Err(DecodeError::header(
                HeaderErrorSubcode::BadMessageLength,
                (len as u16).to_be_bytes().to_vec(),
            ));
        }
        if buf.len() < len {
            return Err(DecodeError::Incomplete);
        }
        Ok(len)
    }

    /// Decodes the message that [`Message::check`] found at the start of `buf`.
    pub fn parse(buf: &[u8], ctx: &DecodeContext) -> Result<Message, DecodeError> {
        let len = Message::check(buf)?;
        let body = &buf[HEADER_LEN..len];
        Ok(match buf[18] {
            message_type::OPEN => Message::Open(decode_open_body(body)?),
            message_type::UPDATE => Message::Update(UpdateMessage::decode_body(body, ctx)?),
            message_type::NOTIFICATION => Message::Notification(NotificationMessage {
                code: body[0],
                subcode: body[1],
                data: body[2..].to_vec(),
            }),
            message_type::KEEPALIVE => Message::Keepalive,
            _ => {
                // RFC 7313 §5: a ROUTE-REFRESH whose body is not 4 octets.
                let [a0, a1, subtype, safi] = body else {
                    return Err(DecodeError::RouteRefreshLength {
                        data: buf[..len].to_vec(),
                    });
                };
                Message::RouteRefresh(RouteRefreshMessage {
                    family: Family {
                        afi: u16::from_be_bytes([*a0, *a1]),
                        safi: *safi,
                    },
                    subtype: *subtype,
                })
            }
        })
    }

    /// [`Message::check`] then [`Message::parse`]: the message and how many bytes it used.
    pub fn decode(buf: &[u8], ctx: &DecodeContext) -> Result<(Message, usize), DecodeError> {
        let len = Message::check(buf)?;
        Ok((Message::parse(buf, ctx)?, len))
    }
}
