//! Session parameters. The configuration crate validates a MetalLB `BFDProfile` (ranges,
//! defaults) and the speaker turns it into these; nothing here checks them again.

use std::time::Duration;

/// What one session is configured with (a `BFDProfile`'s fields, defaults applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdParams {
    /// `transmitInterval`: the fastest we want to send once Up (bfd.DesiredMinTxInterval).
    pub desired_min_tx: Duration,
    /// `receiveInterval`: the fastest we accept packets (bfd.RequiredMinRxInterval).
    pub required_min_rx: Duration,
    /// `detectMultiplier` (bfd.DetectMult).
    pub detect_mult: u8,
    /// `passiveMode`: send nothing until the peer has been heard.
    pub passive: bool,
    /// `minimumTtl`: received packets with a lower TTL / hop limit are dropped.
    pub minimum_ttl: u8,
    /// `echoMode` with its `echoInterval`: the fastest we want to send Echo packets (None:
    /// the Echo function is off). Echoes run only while Up and while the peer advertises a
    /// non-zero Required Min Echo RX Interval (RFC 5880 §6.8.9).
    pub echo_interval: Option<Duration>,
}

/// MetalLB's defaults: 300 ms both ways, multiplier 3, active, minimum TTL 254 (for tests and
/// tools; the speaker builds its parameters from a validated profile).
impl Default for BfdParams {
    fn default() -> Self {
        BfdParams {
            desired_min_tx: Duration::from_millis(DEFAULT_INTERVAL_MS as u64),
            required_min_rx: Duration::from_millis(DEFAULT_INTERVAL_MS as u64),
            detect_mult: DEFAULT_DETECT_MULT,
            passive: false,
            minimum_ttl: DEFAULT_MINIMUM_TTL,
            echo_interval: None,
        }
    }
}

/// Default `receiveInterval` / `transmitInterval` (ms).
pub const DEFAULT_INTERVAL_MS: u32 = 300;
/// Default `detectMultiplier`.
pub const DEFAULT_DETECT_MULT: u8 = 3;
/// Default `minimumTtl`.
pub const DEFAULT_MINIMUM_TTL: u8 = 254;
