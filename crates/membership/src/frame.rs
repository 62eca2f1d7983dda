//! Authenticated framing of every membership datagram (pure, no I/O).
//!
//! ```text
//!  0      2     3             11         12          12+n                 len-32      len
//!  +------+-----+-------------+----------+-----------+--------------------+-----------+
//!  | "IL" | ver | sent_us u64 | name_len | sender    | foca payload       | HMAC tag  |
//!  |      | =1  | big endian  | u8 = n   | n bytes   | (postcard)         | 32 bytes  |
//!  +------+-----+-------------+----------+-----------+--------------------+-----------+
//!  <------------------------ covered by HMAC-SHA256(frame key) -------------->
//! ```
//!
//! The frame key is derived from the raw bytes of the shared secret (the `secretkey` of the
//! `memberlist` Secret) with HMAC-SHA256 under a fixed label, so any length of secret works and the
//! secret itself never keys a MAC directly. The tag is checked (in constant time) before any field
//! is trusted; a frame with a missing, short or wrong tag is rejected as a whole.
//!
//! `sent_us` (sender wall clock, microseconds since the Unix epoch, strictly increasing per sender)
//! and `sender` (the node name) feed the [`crate::replay::ReplayGuard`]; both are under the tag.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The first two bytes of every frame.
pub const MAGIC: [u8; 2] = *b"IL";
/// The frame format version.
pub const VERSION: u8 = 1;
/// Length of the HMAC-SHA256 tag at the end of every frame.
pub const TAG_LEN: usize = 32;
/// Bytes before the sender name: magic, version, timestamp, name length.
pub const PREFIX_LEN: usize = 2 + 1 + 8 + 1;
/// The smallest possible frame: empty name, empty payload.
pub const MIN_FRAME_LEN: usize = PREFIX_LEN + TAG_LEN;
/// Label mixed into the key derivation so this key is never reused for anything else.
const KEY_LABEL: &[u8] = b"ironlb membership frame key v1";

/// The key every frame is authenticated with, derived from the shared secret.
#[derive(Clone)]
pub struct FrameKey {
    key: [u8; 32],
}

impl std::fmt::Debug for FrameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameKey(..)")
    }
}

impl FrameKey {
    /// Derives the frame key from the raw secret bytes (`HMAC-SHA256(secret, label)`).
    pub fn from_secret(secret: &[u8]) -> FrameKey {
        // HMAC accepts keys of any length (longer ones are hashed), so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(KEY_LABEL);
        FrameKey {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }
}

/// Why a datagram was not accepted as a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than the smallest possible frame.
    #[error("datagram too short for a frame")]
    TooShort,
    /// The tag does not match (wrong key, tampered or truncated bytes).
    #[error("authentication tag mismatch")]
    BadTag,
    /// Authentic but not a frame this version understands.
    #[error("unknown magic or version")]
    BadVersion,
    /// The name length points past the payload, or the name is not UTF-8.
    #[error("malformed sender name")]
    BadName,
}

/// The sender name is too long to frame (node names are at most 253 bytes; the field holds 255).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sender name longer than 255 bytes")]
pub struct NameTooLong;

/// An authenticated frame's contents, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The sender's node name.
    pub sender: &'a str,
    /// When the sender sent it (its wall clock, µs since the Unix epoch).
    pub sent_us: u64,
    /// The foca payload.
    pub payload: &'a [u8],
}

/// Appends one frame carrying `payload` from `sender` to `out` (cleared first).
pub fn seal(
    key: &FrameKey,
    sender: &str,
    sent_us: u64,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), NameTooLong> {
    let name_len = u8::try_from(sender.len()).map_err(|_| NameTooLong)?;
    out.clear();
    out.reserve(MIN_FRAME_LEN + sender.len() + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&sent_us.to_be_bytes());
    out.push(name_len);
    out.extend_from_slice(sender.as_bytes());
    out.extend_from_slice(payload);
    let mut mac = key.mac();
    mac.update(out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    Ok(())
}

/// Checks the tag of `datagram`, then parses it. Never panics, whatever the bytes.
pub fn open<'a>(key: &FrameKey, datagram: &'a [u8]) -> Result<Opened<'a>, FrameError> {
    if datagram.len() < MIN_FRAME_LEN {
        return Err(FrameError::TooShort);
    }
    let (body, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut mac = key.mac();
    mac.update(body);
    mac.verify_slice(tag).map_err(|_| FrameError::BadTag)?;

    if body[..2] != MAGIC || body[2] != VERSION {
        return Err(FrameError::BadVersion);
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&body[3..11]);
    let name_len = usize::from(body[11]);
    let rest = &body[PREFIX_LEN..];
    if name_len > rest.len() {
        return Err(FrameError::BadName);
    }
    let (name, payload) = rest.split_at(name_len);
    let sender = std::str::from_utf8(name).map_err(|_| FrameError::BadName)?;
    Ok(Opened {
        sender,
        sent_us: u64::from_be_bytes(ts),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> FrameKey {
        FrameKey::from_secret(b"a shared secret")
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        seal(&key(), "node1", 42, b"payload", &mut buf).expect("seal");
        assert_eq!(buf.len(), MIN_FRAME_LEN + 5 + 7);
        let opened = open(&key(), &buf).expect("open");
        assert_eq!(opened.sender, "node1");
        assert_eq!(opened.sent_us, 42);
        assert_eq!(opened.payload, b"payload");
    }

    #[test]
    fn wrong_key_is_rejected() {
        let mut buf = Vec::new();
        seal(&key(), "node1", 1, b"x", &mut buf).expect("seal");
        let other = FrameKey::from_secret(b"another secret");
        assert_eq!(open(&other, &buf), Err(FrameError::BadTag));
    }

    #[test]
    fn missing_tag_is_rejected() {
        let mut buf = Vec::new();
        seal(&key(), "node1", 1, &[7u8; 64], &mut buf).expect("seal");
        buf.truncate(buf.len() - TAG_LEN);
        assert_eq!(open(&key(), &buf), Err(FrameError::BadTag));
    }

    #[test]
    fn name_too_long_is_refused() {
        let mut buf = Vec::new();
        let name = "n".repeat(256);
        assert_eq!(seal(&key(), &name, 1, b"", &mut buf), Err(NameTooLong));
        seal(&key(), &name[..255], 1, b"", &mut buf).expect("255 bytes fit");
        assert_eq!(open(&key(), &buf).expect("open").sender.len(), 255);
    }

    #[test]
    fn authentic_but_malformed_is_rejected() {
        // Whoever holds the key could still send nonsense: the parser must not trust it.
        let k = key();
        let mut body = Vec::new();
        body.extend_from_slice(&MAGIC);
        body.push(VERSION);
        body.extend_from_slice(&5u64.to_be_bytes());
        body.push(200); // name length past the end
        body.extend_from_slice(b"abc");
        let mut mac = k.mac();
        mac.update(&body);
        body.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(open(&k, &body), Err(FrameError::BadName));
    }

    proptest! {
        #[test]
        fn any_single_bit_flip_is_rejected(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            name in "[a-z0-9.-]{0,40}",
            ts in any::<u64>(),
            pos in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut buf = Vec::new();
            seal(&key(), &name, ts, &payload, &mut buf).expect("seal");
            let i = pos.index(buf.len());
            buf[i] ^= 1 << bit;
            prop_assert!(open(&key(), &buf).is_err());
        }

        #[test]
        fn any_truncation_is_rejected(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            name in "[a-z0-9.-]{0,40}",
            cut in any::<prop::sample::Index>(),
        ) {
            let mut buf = Vec::new();
            seal(&key(), &name, 9, &payload, &mut buf).expect("seal");
            let keep = cut.index(buf.len()); // strictly shorter than the frame
            prop_assert!(open(&key(), &buf[..keep]).is_err());
        }

        #[test]
        fn appended_bytes_are_rejected(
            payload in proptest::collection::vec(any::<u8>(), 0..100),
            extra in proptest::collection::vec(any::<u8>(), 1..40),
        ) {
            let mut buf = Vec::new();
            seal(&key(), "node2", 9, &payload, &mut buf).expect("seal");
            buf.extend_from_slice(&extra);
            prop_assert!(open(&key(), &buf).is_err());
        }

        #[test]
        fn junk_never_panics_and_never_opens(junk in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert!(open(&key(), &junk).is_err());
        }

        #[test]
        fn round_trips(
            payload in proptest::collection::vec(any::<u8>(), 0..1400),
            name in "\\PC{0,60}",
            ts in any::<u64>(),
        ) {
            prop_assume!(name.len() <= 255);
            let mut buf = Vec::new();
            seal(&key(), &name, ts, &payload, &mut buf).expect("seal");
            let o = open(&key(), &buf).expect("open");
            prop_assert_eq!(o.sender, name.as_str());
            prop_assert_eq!(o.sent_us, ts);
            prop_assert_eq!(o.payload, payload.as_slice());
        }
    }
}
