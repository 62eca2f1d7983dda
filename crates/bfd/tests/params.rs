//! BFDProfile -> BfdParams: MetalLB's defaults and ranges; echo mode with its interval.
#![allow(clippy::unwrap_used)] // tests may unwrap

use ironlb_api::v1beta1::BfdProfileSpec;
use ironlb_bfd::params::{BfdParams, ParamsError};
use std::time::Duration;

#[test]
fn defaults_fields_ranges_and_echo() {
    let d = BfdParams::from_profile(&BfdProfileSpec::default()).unwrap();
    assert_eq!(d, BfdParams::default());
    assert_eq!(d.desired_min_tx, Duration::from_millis(300));
    assert_eq!(d.required_min_rx, Duration::from_millis(300));
    assert_eq!((d.detect_mult, d.passive, d.minimum_ttl), (3, false, 254));

    let spec = BfdProfileSpec {
        receive_interval: Some(100),
        transmit_interval: Some(200),
        detect_multiplier: Some(5),
        echo_interval: Some(50),
        echo_mode: Some(false),
        passive_mode: Some(true),
        minimum_ttl: Some(10),
    };
    let p = BfdParams::from_profile(&spec).unwrap();
    assert_eq!(p.required_min_rx, Duration::from_millis(100));
    assert_eq!(p.desired_min_tx, Duration::from_millis(200));
    assert_eq!((p.detect_mult, p.passive, p.minimum_ttl), (5, true, 10));
    assert_eq!(p.echo_interval, None, "echoInterval without echoMode");

    let echo = BfdProfileSpec {
        echo_mode: Some(true),
        ..BfdProfileSpec::default()
    };
    assert_eq!(
        BfdParams::from_profile(&echo).unwrap().echo_interval,
        Some(Duration::from_millis(50)),
        "MetalLB's default echoInterval"
    );
    let echo = BfdProfileSpec {
        echo_mode: Some(true),
        echo_interval: Some(20),
        ..BfdProfileSpec::default()
    };
    assert_eq!(
        BfdParams::from_profile(&echo).unwrap().echo_interval,
        Some(Duration::from_millis(20))
    );
    let bad = BfdProfileSpec {
        echo_mode: Some(true),
        echo_interval: Some(9),
        ..BfdProfileSpec::default()
    };
    assert!(matches!(
        BfdParams::from_profile(&bad),
        Err(ParamsError::OutOfRange {
            field: "echoInterval",
            ..
        })
    ));
    let bad = BfdProfileSpec {
        detect_multiplier: Some(256),
        ..BfdProfileSpec::default()
    };
    assert!(matches!(
        BfdParams::from_profile(&bad),
        Err(ParamsError::OutOfRange {
            field: "detectMultiplier",
            ..
        })
    ));
    let bad = BfdProfileSpec {
        transmit_interval: Some(9),
        ..BfdProfileSpec::default()
    };
    assert!(BfdParams::from_profile(&bad).is_err());
}
