//! Community aliases.

use super::{Report, check_namespace, name_of};
use crate::Context;
use crate::community::{BgpCommunity, looks_literal, parse_community};
use crate::error::{ConfigError, ObjectKind};
use ironlb_api::v1beta1;

pub(super) fn check_communities(
    c: &v1beta1::Community,
    ctx: &Context,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, BgpCommunity)> {
    let name = name_of(&c.metadata);
    let mut r = Report {
        kind: ObjectKind::Community,
        name,
        errors,
    };
    check_namespace(&mut r, &c.metadata, ctx);
    let mut out = Vec::new();
    for (i, alias) in c.spec.communities.iter().enumerate() {
        let field = format!("spec.communities[{i}]");
        if alias.name.is_empty() {
            r.err(format!("{field}.name"), "an alias needs a name");
        } else if looks_literal(&alias.name) {
            r.err(
                format!("{field}.name"),
                format!("alias {:?} must not contain ':'", alias.name),
            );
        }
        match parse_community(&alias.value) {
            Ok(v) => out.push((alias.name.clone(), v)),
            Err(message) => r.err(format!("{field}.value"), message),
        }
    }
    out
}
