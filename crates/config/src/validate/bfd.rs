//! BFDProfiles: ranges and MetalLB's defaults.

use super::{Report, check_namespace, name_of};
use crate::error::{ConfigError, ObjectKind};
use crate::{BfdProfile, Context};
use ironlb_api::v1beta1;

pub(super) fn check_bfd(
    b: &v1beta1::BfdProfile,
    ctx: &Context,
    errors: &mut Vec<ConfigError>,
) -> BfdProfile {
    let name = name_of(&b.metadata);
    let mut r = Report {
        kind: ObjectKind::BfdProfile,
        name,
        errors,
    };
    check_namespace(&mut r, &b.metadata, ctx);
    let s = &b.spec;
    // A value in its range, or the default (an out-of-range value is reported; the profile
    // built then is never used, since the configuration is invalid).
    let mut ranged = |field: &str, value: Option<u32>, lo: u32, hi: u32, default: u32| match value {
        Some(v) if (lo..=hi).contains(&v) => v,
        Some(v) => {
            r.err(field, format!("{v} is out of range {lo}-{hi}"));
            default
        }
        None => default,
    };
    let receive_interval = ranged(
        "spec.receiveInterval",
        s.receive_interval,
        10,
        60000,
        BfdProfile::DEFAULT_INTERVAL,
    );
    let transmit_interval = ranged(
        "spec.transmitInterval",
        s.transmit_interval,
        10,
        60000,
        BfdProfile::DEFAULT_INTERVAL,
    );
    let echo_interval = ranged(
        "spec.echoInterval",
        s.echo_interval,
        10,
        60000,
        BfdProfile::DEFAULT_ECHO_INTERVAL,
    );
    let detect_multiplier = ranged(
        "spec.detectMultiplier",
        s.detect_multiplier,
        2,
        255,
        BfdProfile::DEFAULT_DETECT_MULTIPLIER.into(),
    );
    let minimum_ttl = ranged(
        "spec.minimumTtl",
        s.minimum_ttl,
        1,
        254,
        BfdProfile::DEFAULT_MINIMUM_TTL.into(),
    );
    if s.echo_mode == Some(true) && !ctx.features.bfd_echo {
        r.unsupported("spec.echoMode", "BFD echo mode");
    }
    BfdProfile {
        name: name.to_string(),
        receive_interval,
        transmit_interval,
        detect_multiplier: u8::try_from(detect_multiplier)
            .unwrap_or(BfdProfile::DEFAULT_DETECT_MULTIPLIER),
        echo_interval,
        echo_mode: s.echo_mode.unwrap_or(false),
        passive_mode: s.passive_mode.unwrap_or(false),
        minimum_ttl: u8::try_from(minimum_ttl).unwrap_or(BfdProfile::DEFAULT_MINIMUM_TTL),
    }
}
