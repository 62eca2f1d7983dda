//! Writers of the status objects: `ConfigurationState` and `IPAddressPool.status`.
//!
//! ```text
//!   ConfigurationState <ns>/<name>   status {result: Valid|Invalid, errorSummary,
//!                                            conditions: [Valid: True|False, reason, message]}
//!   IPAddressPool <ns>/<pool>        status {assignedIPv4, assignedIPv6, availableIPv4, availableIPv6}
//! ```

use ironlb_api::v1beta1::{
    ConfigurationResult, ConfigurationState, ConfigurationStateStatus, IpAddressPool,
    IpAddressPoolStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::metrics::{PoolFigures, saturate};

/// The field manager ironlb writes with.
pub const FIELD_MANAGER: &str = "metallb-controller";

/// The one condition ironlb writes on a ConfigurationState: `Valid`, whose message says what
/// is wrong (`Invalid`) or what was skipped although the configuration loaded (`warnings`,
/// e.g. an advertisement naming a pool that does not exist yet).
pub fn configuration_condition(
    result: ConfigurationResult,
    error_summary: Option<&str>,
    warnings: &[String],
) -> Condition {
    let (status, reason, message) = match result {
        ConfigurationResult::Valid if warnings.is_empty() => ("True", "Loaded", String::new()),
        ConfigurationResult::Valid => ("True", "LoadedWithWarnings", self::error_summary(warnings)),
        ConfigurationResult::Invalid => (
            "False",
            "ConfigError",
            error_summary.unwrap_or_default().to_string(),
        ),
        ConfigurationResult::Unknown => ("Unknown", "Unknown", String::new()),
    };
    Condition {
        type_: "Valid".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
        observed_generation: None,
    }
}

/// Creates (if missing) the ConfigurationState `namespace/name` and sets its status: the
/// result, the errors (`Invalid`) and the warnings of a configuration that loaded.
pub async fn write_configuration_state(
    client: &Client,
    namespace: &str,
    name: &str,
    result: ConfigurationResult,
    error_summary: Option<String>,
    warnings: &[String],
) -> Result<(), kube::Error> {
    let api: Api<ConfigurationState> = Api::namespaced(client.clone(), namespace);
    let object = ConfigurationState {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        status: None,
    };
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e),
    }
    let condition = configuration_condition(result, error_summary.as_deref(), warnings);
    let status = ConfigurationStateStatus {
        result: Some(result),
        error_summary: Some(error_summary.unwrap_or_default()),
        conditions: vec![condition],
    };
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The IPAddressPool status for these counts.
pub fn pool_status(f: PoolFigures) -> IpAddressPoolStatus {
    IpAddressPoolStatus {
        assigned_ipv4: saturate(f.in_use_v4),
        assigned_ipv6: saturate(f.in_use_v6),
        available_ipv4: saturate(f.total_v4 - f.in_use_v4),
        available_ipv6: saturate(f.total_v6 - f.in_use_v6),
    }
}

/// Sets `IPAddressPool.status` of `namespace/pool`.
pub async fn write_pool_status(
    client: &Client,
    namespace: &str,
    pool: &str,
    figures: PoolFigures,
) -> Result<(), kube::Error> {
    let api: Api<IpAddressPool> = Api::namespaced(client.clone(), namespace);
    let patch = serde_json::json!({ "status": pool_status(figures) });
    api.patch_status(pool, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The `errorSummary` for a list of errors: one per line, at most 20, then a count.
pub fn error_summary<E: std::fmt::Display>(errors: &[E]) -> String {
    let mut lines: Vec<String> = errors.iter().take(20).map(|e| e.to_string()).collect();
    if errors.len() > 20 {
        lines.push(format!("... and {} more", errors.len() - 20));
    }
    lines.join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_says_what_is_wrong_or_skipped() {
        let c = configuration_condition(ConfigurationResult::Valid, None, &[]);
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("Valid", "True", "Loaded")
        );
        assert!(c.message.is_empty());
        let c = configuration_condition(ConfigurationResult::Valid, None, &["skipped x".into()]);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "LoadedWithWarnings")
        );
        assert_eq!(c.message, "skipped x");
        let c = configuration_condition(ConfigurationResult::Invalid, Some("bad y"), &[]);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "ConfigError")
        );
        assert_eq!(c.message, "bad y");
    }

    #[test]
    fn pool_status_counts_free_addresses() {
        let s = pool_status(PoolFigures {
            total_v4: 31,
            total_v6: 10,
            in_use_v4: 3,
            in_use_v6: 1,
        });
        assert_eq!(
            (
                s.assigned_ipv4,
                s.available_ipv4,
                s.assigned_ipv6,
                s.available_ipv6
            ),
            (3, 28, 1, 9)
        );
    }

    #[test]
    fn summary_is_bounded() {
        let errs: Vec<String> = (0..25).map(|i| format!("e{i}")).collect();
        let s = error_summary(&errs);
        assert_eq!(s.lines().count(), 21);
        assert!(s.ends_with("... and 5 more"));
    }
}
