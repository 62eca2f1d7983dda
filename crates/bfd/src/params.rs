//! Session parameters, from a MetalLB `BFDProfile`.

#[cfg(feature = "profile")]
use ironlb_api::v1beta1::BfdProfileSpec;
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

/// MetalLB's defaults: 300 ms both ways, multiplier 3, active, minimum TTL 254.
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
/// Default `echoInterval` (ms).
pub const DEFAULT_ECHO_INTERVAL_MS: u32 = 50;
/// Default `minimumTtl`.
pub const DEFAULT_MINIMUM_TTL: u8 = 254;

/// A profile this implementation cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// A field outside its range.
    #[error("{field} {value} out of range {min}-{max}")]
    OutOfRange {
        /// The profile field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// Lowest allowed.
        min: u32,
        /// Highest allowed.
        max: u32,
    },
}

#[cfg(feature = "profile")]
fn ranged(
    field: &'static str,
    v: Option<u32>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ParamsError> {
    let value = v.unwrap_or(default);
    if value < min || value > max {
        return Err(ParamsError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(value)
}

#[cfg(feature = "profile")]
impl BfdParams {
    /// The parameters of a `BFDProfile` (same ranges and defaults as MetalLB). `echoInterval`
    /// only matters with `echoMode`.
    pub fn from_profile(spec: &BfdProfileSpec) -> Result<BfdParams, ParamsError> {
        let echo = ranged(
            "echoInterval",
            spec.echo_interval,
            DEFAULT_ECHO_INTERVAL_MS,
            10,
            60000,
        )?;
        let rx = ranged(
            "receiveInterval",
            spec.receive_interval,
            DEFAULT_INTERVAL_MS,
            10,
            60000,
        )?;
        let tx = ranged(
            "transmitInterval",
            spec.transmit_interval,
            DEFAULT_INTERVAL_MS,
            10,
            60000,
        )?;
        let mult = ranged(
            "detectMultiplier",
            spec.detect_multiplier,
            DEFAULT_DETECT_MULT as u32,
            2,
            255,
        )?;
        let ttl = ranged(
            "minimumTtl",
            spec.minimum_ttl,
            DEFAULT_MINIMUM_TTL as u32,
            1,
            254,
        )?;
        Ok(BfdParams {
            desired_min_tx: Duration::from_millis(tx as u64),
            required_min_rx: Duration::from_millis(rx as u64),
            detect_mult: mult as u8,
            passive: spec.passive_mode.unwrap_or(false),
            minimum_ttl: ttl as u8,
            echo_interval: (spec.echo_mode == Some(true))
                .then(|| Duration::from_millis(echo as u64)),
        })
    }
}
