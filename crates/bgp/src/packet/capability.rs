//! OPEN capabilities (RFC 5492): multiprotocol (RFC 4760), route refresh (RFC 2918),
//! graceful restart (RFC 4724), 4-octet ASN (RFC 6793); unknown ones are kept as they came.

use super::Reader;

/// Capability codes.
pub mod code {
    /// Multiprotocol extensions.
    pub const MULTIPROTOCOL: u8 = 1;
    /// Route refresh.
    pub const ROUTE_REFRESH: u8 = 2;
    /// Graceful restart.
    pub const GRACEFUL_RESTART: u8 = 64;
    /// 4-octet AS number.
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// An address family: AFI and SAFI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Family {
    /// Address family identifier.
    pub afi: u16,
    /// Subsequent address family identifier.
    pub safi: u8,
}

impl Family {
    /// IPv4 unicast.
    pub const IPV4_UNICAST: Family = Family { afi: 1, safi: 1 };
    /// IPv6 unicast.
    pub const IPV6_UNICAST: Family = Family { afi: 2, safi: 1 };
}

/// One family in the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    /// The family.
    pub family: Family,
    /// F bit: forwarding state for this family was preserved across the restart.
    pub forwarding_state: bool,
}

/// The graceful restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit (RFC 8538): the sender supports graceful restart for NOTIFICATIONs.
    pub notification: bool,
    /// Seconds the peer should keep our routes while we restart (12 bits).
    pub restart_time: u16,
    /// Families with preserved state.
    pub families: Vec<GracefulRestartFamily>,
}

/// One capability of an OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// Multiprotocol extensions for one family.
    Multiprotocol(Family),
    /// Route refresh.
    RouteRefresh,
    /// Graceful restart.
    GracefulRestart(GracefulRestart),
    /// 4-octet AS number support, with the sender's real ASN.
    FourOctetAs(u32),
    /// A capability this speaker does not interpret, kept as received.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::GracefulRestart(_) => code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Appends code, length and value. A value longer than 255 octets is cut (only possible for
    /// a graceful restart capability listing more than 63 families, or an unknown capability).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut value = Vec::new();
        match self {
            Capability::Multiprotocol(f) => {
                value.extend_from_slice(&f.afi.to_be_bytes());
                value.push(0);
                value.push(f.safi);
            }
            Capability::RouteRefresh => {}
            Capability::GracefulRestart(gr) => {
                let mut flags_time = gr.restart_time & 0x0fff;
                if gr.restart_state {
                    flags_time |= 0x8000;
                }
                if gr.notification {
                    flags_time |= 0x4000;
                }
                value.extend_from_slice(&flags_time.to_be_bytes());
                for f in &gr.families {
                    value.extend_from_slice(&f.family.afi.to_be_bytes());
                    value.push(f.family.safi);
                    value.push(if f.forwarding_state { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => value.extend_from_slice(&asn.to_be_bytes()),
            Capability::Unknown { value: v, .. } => value.extend_from_slice(v),
        }
        value.truncate(255);
        out.push(self.code());
        out.push(value.len() as u8);
        out.extend_from_slice(&value);
    }

    /// Decodes one capability's value; `None` if the value does not fit the code's layout.
    pub fn decode(code: u8, value: &[u8]) -> Option<Capability> {
        let mut r = Reader::new(value);
        let cap = match code {
            code::MULTIPROTOCOL => {
                let afi = r.u16()?;
                let _reserved = r.u8()?;
                let safi = r.u8()?;
                Capability::Multiprotocol(Family { afi, safi })
            }
            code::ROUTE_REFRESH => Capability::RouteRefresh,
            code::GRACEFUL_RESTART => {
                let flags_time = r.u16()?;
                if !r.remaining().is_multiple_of(4) {
                    return None;
                }
                let mut families = Vec::new();
                while !r.is_empty() {
                    let afi = r.u16()?;
                    let safi = r.u8()?;
                    let flags = r.u8()?;
                    families.push(GracefulRestartFamily {
                        family: Family { afi, safi },
                        forwarding_state: flags & 0x80 != 0,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: flags_time & 0x8000 != 0,
                    notification: flags_time & 0x4000 != 0,
                    restart_time: flags_time & 0x0fff,
                    families,
                })
            }
            code::FOUR_OCTET_AS => Capability::FourOctetAs(r.u32()?),
            _ => {
                return Some(Capability::Unknown {
                    code,
                    value: value.to_vec(),
                });
            }
        };
        // Route refresh has an empty value; the others must be consumed exactly.
        if !r.is_empty() {
            return None;
        }
        Some(cap)
    }
}
