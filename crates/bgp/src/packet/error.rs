//! Errors in received messages, classified as RFC 4271 §6 and RFC 7606 say, and the
//! NOTIFICATION each one turns into.
//!
//! A leaf of the codec: it imports no other `packet` module, so the decoders above it report
//! errors without an import cycle.
//!
//! ```text
//!   message ──> attribute ──┐
//!      │                    v
//!      └──────────────────> error (codes, DecodeError, NotificationMessage)
//! ```

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313).
pub mod code {
    /// Message Header Error.
    pub const MESSAGE_HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN_MESSAGE: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE_MESSAGE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error (subcodes RFC 6608).
    pub const FSM: u8 = 5;
    /// Cease (subcodes RFC 4486).
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH: u8 = 7;
}

/// NOTIFICATION (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationMessage {
    /// Error code (see [`code`]).
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Data.
    pub data: Vec<u8>,
}

impl NotificationMessage {
    /// A NOTIFICATION without data.
    pub fn new(code: u8, subcode: u8) -> Self {
        NotificationMessage {
            code,
            subcode,
            data: Vec::new(),
        }
    }
}

impl std::fmt::Display for NotificationMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.code, self.subcode)?;
        if !self.data.is_empty() {
            write!(f, " data ")?;
            for b in &self.data {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// Message Header Error subcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HeaderErrorSubcode {
    /// The marker is not all ones.
    ConnectionNotSynchronized = 1,
    /// The length field is out of range for the message type.
    BadMessageLength = 2,
    /// Unknown message type.
    BadMessageType = 3,
}

/// OPEN Message Error subcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpenErrorSubcode {
    /// No more specific subcode fits (lengths inside the OPEN inconsistent).
    Unspecific = 0,
    /// Version other than 4.
    UnsupportedVersionNumber = 1,
    /// The peer's AS is not the expected one.
    BadPeerAs = 2,
    /// Invalid BGP identifier.
    BadBgpIdentifier = 3,
    /// An optional parameter other than Capabilities.
    UnsupportedOptionalParameter = 4,
    /// Hold time 1 or 2 seconds.
    UnacceptableHoldTime = 6,
    /// A capability we need is missing (RFC 5492).
    UnsupportedCapability = 7,
}

/// UPDATE Message Error subcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UpdateErrorSubcode {
    /// Lengths inconsistent, or MP_REACH/MP_UNREACH repeated.
    MalformedAttributeList = 1,
    /// A well-known attribute we don't know.
    UnrecognizedWellKnownAttribute = 2,
    /// ORIGIN, AS_PATH or NEXT_HOP missing.
    MissingWellKnownAttribute = 3,
    /// Flags inconsistent with the attribute type.
    AttributeFlagsError = 4,
    /// Length inconsistent with the attribute type.
    AttributeLengthError = 5,
    /// ORIGIN value undefined.
    InvalidOriginAttribute = 6,
    /// NEXT_HOP syntactically or semantically invalid.
    InvalidNextHopAttribute = 8,
    /// An optional attribute is malformed.
    OptionalAttributeError = 9,
    /// A prefix in the NLRI or withdrawn routes is malformed.
    InvalidNetworkField = 10,
    /// AS_PATH malformed.
    MalformedAsPath = 11,
}

/// FSM Error subcodes (RFC 6608).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FsmErrorSubcode {
    /// Unexpected message in OpenSent.
    UnexpectedMessageInOpenSent = 1,
    /// Unexpected message in OpenConfirm.
    UnexpectedMessageInOpenConfirm = 2,
    /// Unexpected message in Established.
    UnexpectedMessageInEstablished = 3,
}

/// Cease subcodes (RFC 4486).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CeaseSubcode {
    /// Administrative shutdown.
    AdministrativeShutdown = 2,
    /// Peer de-configured.
    PeerDeconfigured = 3,
    /// Administrative reset.
    AdministrativeReset = 4,
    /// Connection rejected.
    ConnectionRejected = 5,
    /// Connection collision resolution (RFC 4271 §6.8).
    ConnectionCollisionResolution = 7,
}

/// A received message that ends the session: what was wrong, and the NOTIFICATION to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer holds only part of a message: read more bytes.
    #[error("incomplete message")]
    Incomplete,
    /// Message Header Error (code 1).
    #[error("message header error {subcode:?}")]
    Header {
        /// Subcode.
        subcode: HeaderErrorSubcode,
        /// NOTIFICATION data (the bad length or type).
        data: Vec<u8>,
    },
    /// OPEN Message Error (code 2).
    #[error("OPEN message error {subcode:?}")]
    Open {
        /// Subcode.
        subcode: OpenErrorSubcode,
        /// NOTIFICATION data.
        data: Vec<u8>,
    },
    /// UPDATE Message Error (code 3) that RFC 7606 answers with a session reset.
    #[error("UPDATE message error {subcode:?}")]
    Update {
        /// Subcode.
        subcode: UpdateErrorSubcode,
        /// NOTIFICATION data (usually the offending attribute).
        data: Vec<u8>,
    },
    /// ROUTE-REFRESH Message Error, Invalid Message Length (RFC 7313).
    #[error("ROUTE-REFRESH message of bad length")]
    RouteRefreshLength {
        /// The whole message.
        data: Vec<u8>,
    },
}

impl DecodeError {
    pub(crate) fn header(subcode: HeaderErrorSubcode, data: Vec<u8>) -> Self {
        DecodeError::Header { subcode, data }
    }
    pub(crate) fn open(subcode: OpenErrorSubcode) -> Self {
        DecodeError::Open {
            subcode,
            data: Vec::new(),
        }
    }
    pub(crate) fn update(subcode: UpdateErrorSubcode, data: Vec<u8>) -> Self {
        DecodeError::Update { subcode, data }
    }

    /// The NOTIFICATION this error calls for; `None` for [`DecodeError::Incomplete`].
    pub fn notification(&self) -> Option<NotificationMessage> {
        let (code, subcode, data) = match self {
            DecodeError::Incomplete => return None,
            DecodeError::Header { subcode, data } => (code::MESSAGE_HEADER, *subcode as u8, data),
            DecodeError::Open { subcode, data } => (code::OPEN_MESSAGE, *subcode as u8, data),
            DecodeError::Update { subcode, data } => (code::UPDATE_MESSAGE, *subcode as u8, data),
            DecodeError::RouteRefreshLength { data } => (code::ROUTE_REFRESH, 1, data),
        };
        Some(NotificationMessage {
            code,
            subcode,
            data: data.clone(),
        })
    }
}

/// How an UPDATE error that does not reset the session was handled (RFC 7606 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateErrorAction {
    /// The attribute was dropped and the UPDATE processed without it.
    AttributeDiscard,
    /// Every prefix of the UPDATE is to be taken as withdrawn.
    TreatAsWithdraw,
}

/// One RFC 7606 decision taken while decoding an UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeIssue {
    /// The attribute type code (0 when the attribute list itself was unparsable).
    pub type_code: u8,
    /// What RFC 4271 would have sent.
    pub subcode: UpdateErrorSubcode,
    /// What was done instead.
    pub action: UpdateErrorAction,
}
