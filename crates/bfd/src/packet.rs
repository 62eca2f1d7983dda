//! The BFD Control packet (RFC 5880 §4.1), pure: [`ControlPacket::encode`] and
//! [`ControlPacket::decode`], which applies the reception checks of §6.8.6 that need no session.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval (µs)               |
//! |                   Required Min RX Interval (µs)               |
//! |                 Required Min Echo RX Interval (µs)            |
//! ```

use std::fmt;
use std::time::Duration;

/// Length of a Control packet without an authentication section.
pub const CONTROL_LEN: usize = 24;
/// The protocol version this codec speaks.
pub const VERSION: u8 = 1;

/// Session state as carried in the `Sta` field (and as kept by the state machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Administratively held down.
    AdminDown,
    /// Down (or never up).
    Down,
    /// The remote system is heard, the three-way handshake is in progress.
    Init,
    /// The session is up.
    Up,
}

impl State {
    /// The 2-bit wire value.
    pub fn to_bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// From the 2-bit wire value (higher bits ignored).
    pub fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        })
    }
}

/// Diagnostic code (RFC 5880 §4.1): why the sender's session last left Up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diag {
    /// 0: no diagnostic.
    None,
    /// 1: Control Detection Time Expired.
    ControlDetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFunctionFailed,
    /// 3: Neighbor Signaled Session Down.
    NeighborSignaledSessionDown,
    /// 4: Forwarding Plane Reset.
    ForwardingPlaneReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdministrativelyDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9-31: reserved values, kept as received.
    Reserved(u8),
}

impl Diag {
    /// The 5-bit wire value.
    pub fn to_bits(self) -> u8 {
        match self {
            Diag::None => 0,
            Diag::ControlDetectionTimeExpired => 1,
            Diag::EchoFunctionFailed => 2,
            Diag::NeighborSignaledSessionDown => 3,
            Diag::ForwardingPlaneReset => 4,
            Diag::PathDown => 5,
            Diag::ConcatenatedPathDown => 6,
            Diag::AdministrativelyDown => 7,
            Diag::ReverseConcatenatedPathDown => 8,
            Diag::Reserved(v) => v & 0x1f,
        }
    }

    /// From the 5-bit wire value (higher bits ignored).
    pub fn from_bits(b: u8) -> Diag {
        match b & 0x1f {
            0 => Diag::None,
            1 => Diag::ControlDetectionTimeExpired,
            2 => Diag::EchoFunctionFailed,
            3 => Diag::NeighborSignaledSessionDown,
            4 => Diag::ForwardingPlaneReset,
            5 => Diag::PathDown,
            6 => Diag::ConcatenatedPathDown,
            7 => Diag::AdministrativelyDown,
            8 => Diag::ReverseConcatenatedPathDown,
            v => Diag::Reserved(v),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diag::None => f.write_str("No Diagnostic"),
            Diag::ControlDetectionTimeExpired => f.write_str("Control Detection Time Expired"),
            Diag::EchoFunctionFailed => f.write_str("Echo Function Failed"),
            Diag::NeighborSignaledSessionDown => f.write_str("Neighbor Signaled Session Down"),
            Diag::ForwardingPlaneReset => f.write_str("Forwarding Plane Reset"),
            Diag::PathDown => f.write_str("Path Down"),
            Diag::ConcatenatedPathDown => f.write_str("Concatenated Path Down"),
            Diag::AdministrativelyDown => f.write_str("Administratively Down"),
            Diag::ReverseConcatenatedPathDown => f.write_str("Reverse Concatenated Path Down"),
            Diag::Reserved(v) => write!(f, "Reserved ({v})"),
        }
    }
}

/// A BFD Control packet without an authentication section (we configure no authentication, so
/// packets carrying one are refused by [`ControlPacket::decode`]).
///
/// Intervals are in microseconds, as on the wire; see [`micros`] and [`from_micros`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    /// Diagnostic of the sender.
    pub diag: Diag,
    /// The sender's session state.
    pub state: State,
    /// P: the sender asks for verification of a parameter change (Poll).
    pub poll: bool,
    /// F: the answer to a Poll (Final).
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wants to operate in Demand mode.
    pub demand: bool,
    /// Detection time multiplier (never 0 on a valid packet).
    pub detect_mult: u8,
    /// The sender's discriminator for this session (never 0 on a valid packet).
    pub my_discriminator: u32,
    /// The receiver's discriminator as the sender knows it, or 0.
    pub your_discriminator: u32,
    /// Minimum interval the sender would like to transmit at (µs).
    pub desired_min_tx: u32,
    /// Minimum interval between received Control packets the sender supports (µs).
    pub required_min_rx: u32,
    /// Minimum interval between received Echo packets the sender supports (µs; 0: none).
    pub required_min_echo_rx: u32,
}

/// Why received bytes are not a usable Control packet (RFC 5880 §6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a Control packet's fixed part.
    #[error("truncated: {0} bytes")]
    Truncated(usize),
    /// The version is not 1.
    #[error("version {0}")]
    BadVersion(u8),
    /// The Length field is below the minimum, or beyond the bytes received.
    #[error("length field {length} with {received} bytes received")]
    BadLength {
        /// The Length field.
        length: u8,
        /// Bytes received.
        received: usize,
    },
    /// Detect Mult is 0.
    #[error("detect mult 0")]
    ZeroDetectMult,
    /// The Multipoint bit is set.
    #[error("multipoint bit set")]
    Multipoint,
    /// My Discriminator is 0.
    #[error("my discriminator 0")]
    ZeroMyDiscriminator,
    /// Your Discriminator is 0 while the sender is neither Down nor AdminDown.
    #[error("your discriminator 0 in state {0}")]
    ZeroYourDiscriminator(State),
    /// The Authentication Present bit is set: no authentication is configured here.
    #[error("authentication present (not configured)")]
    Authentication,
}

impl DecodeError {
    /// A short stable label, for counting drops by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Truncated(_) => "truncated",
            DecodeError::BadVersion(_) => "version",
            DecodeError::BadLength { .. } => "length",
            DecodeError::ZeroDetectMult => "detect_mult",
            DecodeError::Multipoint => "multipoint",
            DecodeError::ZeroMyDiscriminator => "my_discriminator",
            DecodeError::ZeroYourDiscriminator(_) => "your_discriminator",
            DecodeError::Authentication => "authentication",
        }
    }

    /// Every reason label, in a fixed order.
    pub const REASONS: [&'static str; 8] = [
        "truncated",
        "version",
        "length",
        "detect_mult",
        "multipoint",
        "my_discriminator",
        "your_discriminator",
        "authentication",
    ];
}

const P: u8 = 0x20;
const F: u8 = 0x10;
const C: u8 = 0x08;
const A: u8 = 0x04;
const D: u8 = 0x02;
const M: u8 = 0x01;

impl ControlPacket {
    /// Appends the 24 bytes of the packet (version 1, Length 24, A and M clear).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }

    /// The packet's bytes (version 1, Length 24, A and M clear).
    pub fn encode(&self) -> [u8; CONTROL_LEN] {
        let mut flags = self.state.to_bits() << 6;
        for (set, bit) in [
            (self.poll, P),
            (self.final_, F),
            (self.control_plane_independent, C),
            (self.demand, D),
        ] {
            if set {
                flags |= bit;
            }
        }
        let mut out = [0u8; CONTROL_LEN];
        out[0] = (VERSION << 5) | self.diag.to_bits();
        out[1] = flags;
        out[2] = self.detect_mult;
        out[3] = CONTROL_LEN as u8;
        for (i, v) in [
            self.my_discriminator,
            self.your_discriminator,
            self.desired_min_tx,
            self.required_min_rx,
            self.required_min_echo_rx,
        ]
        .into_iter()
        .enumerate()
        {
            out[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// Decodes one packet (a whole UDP payload), with the checks of RFC 5880 §6.8.6 that
    /// need no session state. Bytes past the Length field are ignored.
    pub fn decode(b: &[u8]) -> Result<ControlPacket, DecodeError> {
        if b.len() < CONTROL_LEN {
            return Err(DecodeError::Truncated(b.len()));
        }
        let version = b[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let flags = b[1];
        let length = b[3];
        let min = if flags & A != 0 {
            CONTROL_LEN + 2
        } else {
            CONTROL_LEN
        };
        if (length as usize) < min || length as usize > b.len() {
            return Err(DecodeError::BadLength {
                length,
                received: b.len(),
            });
        }
        let detect_mult = b[2];
        if detect_mult == 0 {
            return Err(DecodeError::ZeroDetectMult);
        }
        if flags & M != 0 {
            return Err(DecodeError::Multipoint);
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let my_discriminator = word(4);
        if my_discriminator == 0 {
            return Err(DecodeError::ZeroMyDiscriminator);
        }
        let state = State::from_bits(flags >> 6);
        let your_discriminator = word(8);
        if your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DecodeError::ZeroYourDiscriminator(state));
        }
        if flags & A != 0 {
            return Err(DecodeError::Authentication);
        }
        Ok(ControlPacket {
            diag: Diag::from_bits(b[0]),
            state,
            poll: flags & P != 0,
            final_: flags & F != 0,
            control_plane_independent: flags & C != 0,
            demand: flags & D != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
        })
    }
}

/// A duration as wire microseconds (saturating at `u32::MAX`).
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Wire microseconds as a duration.
pub fn from_micros(us: u32) -> Duration {
    Duration::from_micros(us as u64)
}
