//! The BGP wire format, pure: `encode` into a `Vec<u8>`, `check` then `parse` from a byte buffer.
//!
//! ```text
//!   bytes ──check──> complete frame length | Incomplete | header error (NOTIFICATION 1/x)
//!   frame ──parse──> Message | DecodeError (the NOTIFICATION to send)
//!   UPDATE errors that RFC 7606 handles without a reset stay inside the UpdateMessage
//!   (`treat_as_withdraw`, `discarded`), so the session lives on.
//! ```

pub mod attribute;
pub mod capability;
pub mod error;
pub mod message;

/// The 16 all-ones octets that start every message.
pub const MARKER: [u8; 16] = [0xff; 16];
/// Length of the fixed message header.
pub const HEADER_LEN: usize = 19;
/// The largest message RFC 4271 allows (without RFC 8654 extended messages).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The 2-octet ASN that stands in for a 4-octet one (RFC 6793).
pub const AS_TRANS: u16 = 23456;
/// The BGP version spoken.
pub const BGP_VERSION: u8 = 4;

/// Address family identifiers used here.
pub mod afi {
    /// IPv4.
    pub const IPV4: u16 = 1;
    /// IPv6.
    pub const IPV6: u16 = 2;
}

/// Subsequent address family identifiers used here.
pub mod safi {
    /// Unicast.
    pub const UNICAST: u8 = 1;
}

/// What the decoder needs to know about the session (negotiated in OPEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeContext {
    /// Both sides announced the 4-octet ASN capability: AS_PATH carries 4-octet ASNs.
    pub four_octet_as: bool,
    /// The peer is in another AS (eBGP): a LOCAL_PREF from it is discarded (RFC 7606 §7.5).
    pub ebgp: bool,
}

/// What the encoder needs to know about the session.
pub type EncodeContext = DecodeContext;

/// A reader over a byte slice that never panics: every read checks the remaining length.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}
