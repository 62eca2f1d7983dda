//! The CustomResourceDefinitions of every kind, generated from the Rust types.
//!
//! `cargo run -p ironlb-api --bin crdgen` writes them to `deploy/crds/`, one file per CRD; a test
//! fails when the committed files differ from what the types generate.
//!
//! BGPPeer's CRD carries both versions (v1beta2 stored) and, as MetalLB ships it, a conversion
//! webhook: `strategy: Webhook` to `/convert` of the Service `metallb-webhook-service` in
//! `metallb-system` (the controller serves it). The manifest carries no `caBundle`: the
//! controller makes the webhook's CA and injects it, and only it, when it starts, so
//! re-applying the manifest (client-side or server-side) never fights the controller over the
//! conversion settings. Until the controller has started, reads and writes of v1beta1 objects
//! fail; v1beta2 (the stored version) needs no conversion.

use crate::{GROUP, v1beta1, v1beta2};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceConversion, CustomResourceDefinition,
    CustomResourceDefinitionNames, CustomResourceDefinitionSpec, CustomResourceDefinitionVersion,
    CustomResourceSubresourceStatus, CustomResourceSubresources, CustomResourceValidation,
    JSONSchemaProps, ServiceReference, WebhookClientConfig, WebhookConversion,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde_json::{Value, json};

/// A column of `kubectl get`: name, type, JSON path, priority.
type Column = (&'static str, &'static str, &'static str, i32);

/// How one version of a kind appears in its CRD.
struct Version {
    name: &'static str,
    schema: Value,
    served: bool,
    storage: bool,
    deprecation_warning: Option<&'static str>,
    columns: &'static [Column],
    spec_required: bool,
}

/// The Service in front of the controller's webhook (validation and BGPPeer conversion).
pub const WEBHOOK_SERVICE: &str = "metallb-webhook-service";

/// The path of the BGPPeer conversion webhook.
pub const CONVERSION_PATH: &str = "/convert";

/// The OpenAPI v3 schema of `T` in the structural form the API server requires, without
/// `nullable` (MetalLB's schemas have none).
fn schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .with_transform(crate::schema::remove_nullable)
        .into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null)
}

/// Tidies the root schema: the standard `apiVersion` / `kind` / `metadata` properties, no
/// `default` on `spec` / `status` (a defaulted `spec: {}` would fail kinds whose spec has
/// required fields), and `spec` required only where MetalLB requires it.
fn finish_root(mut schema: Value, spec_required: bool) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("title");
        obj.insert("type".into(), json!("object"));
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            for field in ["spec", "status"] {
                if let Some(p) = props.get_mut(field).and_then(Value::as_object_mut) {
                    p.remove("default");
                    p.remove("nullable");
                }
            }
            props.insert("apiVersion".into(), json!({"type": "string"}));
            props.insert("kind".into(), json!({"type": "string"}));
            props.insert("metadata".into(), json!({"type": "object"}));
        }
        if spec_required {
            obj.insert("required".into(), json!(["spec"]));
        } else {
            obj.remove("required");
        }
    }
    schema
}

fn crd(
    kind: &str,
    plural: &str,
    versions: Vec<Version>,
    conversion: Option<CustomResourceConversion>,
) -> CustomResourceDefinition {
    let versions = versions
        .into_iter()
        .map(|v| {
            let schema: Option<JSONSchemaProps> =
                serde_json::from_value(finish_root(v.schema, v.spec_required)).ok();
            let columns: Vec<CustomResourceColumnDefinition> = v
                .columns
                .iter()
                .map(
                    |(name, type_, path, priority)| CustomResourceColumnDefinition {
                        name: (*name).into(),
                        type_: (*type_).into(),
                        json_path: (*path).into(),
                        priority: (*priority != 0).then_some(*priority),
                        ..Default::default()
                    },
                )
                .collect();
            CustomResourceDefinitionVersion {
                name: v.name.into(),
                served: v.served,
                storage: v.storage,
                deprecated: v.deprecation_warning.map(|_| true),
                deprecation_warning: v.deprecation_warning.map(Into::into),
                additional_printer_columns: (!columns.is_empty()).then_some(columns),
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: schema,
                }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(json!({}))),
                    scale: None,
                }),
                selectable_fields: None,
            }
        })
        .collect();
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{plural}.{GROUP}")),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: kind.into(),
                list_kind: Some(format!("{kind}List")),
                plural: plural.into(),
                singular: Some(kind.to_ascii_lowercase()),
                ..Default::default()
            },
            scope: "Namespaced".into(),
            versions,
            conversion,
            preserve_unknown_fields: None,
        },
        status: None,
    }
}

/// BGPPeer's conversion as MetalLB ships it: the controller's webhook behind its Service,
/// without a `caBundle` (the controller injects it).
fn bgppeer_conversion() -> CustomResourceConversion {
    CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            client_config: Some(WebhookClientConfig {
                service: Some(ServiceReference {
                    name: WEBHOOK_SERVICE.into(),
                    namespace: crate::DEFAULT_NAMESPACE.into(),
                    path: Some(CONVERSION_PATH.into()),
                    port: None,
                }),
                ca_bundle: None,
                url: None,
            }),
            conversion_review_versions: vec!["v1".into()],
        }),
    }
}

// The `kubectl get` columns of each kind, as MetalLB's CRDs have them.

const BFD_PROFILE_COLUMNS: &[Column] = &[
    ("Passive Mode", "boolean", ".spec.passiveMode", 0),
    ("Transmit Interval", "integer", ".spec.transmitInterval", 0),
    ("Receive Interval", "integer", ".spec.receiveInterval", 0),
    ("Multiplier", "integer", ".spec.detectMultiplier", 0),
];

const BGP_ADVERTISEMENT_COLUMNS: &[Column] = &[
    ("IPAddressPools", "string", ".spec.ipAddressPools", 0),
    (
        "IPAddressPool Selectors",
        "string",
        ".spec.ipAddressPoolSelectors",
        0,
    ),
    ("Peers", "string", ".spec.peers", 0),
    ("Node Selectors", "string", ".spec.nodeSelectors", 10),
];

const BGP_PEER_COLUMNS: &[Column] = &[
    ("Address", "string", ".spec.peerAddress", 0),
    ("ASN", "string", ".spec.peerASN", 0),
    ("BFD Profile", "string", ".spec.bfdProfile", 0),
    ("Multi Hops", "string", ".spec.ebgpMultiHop", 0),
];

const CONFIGURATION_STATE_COLUMNS: &[Column] = &[
    ("Result", "string", ".status.result", 0),
    ("ErrorSummary", "string", ".status.errorSummary", 0),
    ("Age", "date", ".metadata.creationTimestamp", 0),
];

const IP_ADDRESS_POOL_COLUMNS: &[Column] = &[
    ("Auto Assign", "boolean", ".spec.autoAssign", 0),
    ("Avoid Buggy IPs", "boolean", ".spec.avoidBuggyIPs", 0),
    ("Addresses", "string", ".spec.addresses", 0),
];

const L2_ADVERTISEMENT_COLUMNS: &[Column] = &[
    ("IPAddressPools", "string", ".spec.ipAddressPools", 0),
    (
        "IPAddressPool Selectors",
        "string",
        ".spec.ipAddressPoolSelectors",
        0,
    ),
    ("Interfaces", "string", ".spec.interfaces", 0),
    ("Node Selectors", "string", ".spec.nodeSelectors", 10),
];

const SERVICE_BGP_STATUS_COLUMNS: &[Column] = &[
    ("Node", "string", ".status.node", 0),
    ("Service Name", "string", ".status.serviceName", 0),
    ("Service Namespace", "string", ".status.serviceNamespace", 0),
];

const SERVICE_L2_STATUS_COLUMNS: &[Column] = &[
    ("Allocated Node", "string", ".status.node", 0),
    ("Service Name", "string", ".status.serviceName", 0),
    ("Service Namespace", "string", ".status.serviceNamespace", 0),
];

/// The CRD of a kind served in v1beta1 only (every kind but BGPPeer).
fn v1beta1_only<T: JsonSchema>(
    kind: &str,
    plural: &str,
    columns: &'static [Column],
    spec_required: bool,
) -> CustomResourceDefinition {
    let version = Version {
        name: v1beta1::VERSION,
        schema: schema_of::<T>(),
        served: true,
        storage: true,
        deprecation_warning: None,
        columns,
        spec_required,
    };
    crd(kind, plural, vec![version], None)
}

/// BGPPeer's CRD: v1beta1 (deprecated) and v1beta2 (stored), converted by the controller's
/// webhook.
fn bgppeer() -> CustomResourceDefinition {
    let version = |name, schema, storage, deprecation_warning| Version {
        name,
        schema,
        served: true,
        storage,
        deprecation_warning,
        columns: BGP_PEER_COLUMNS,
        spec_required: false,
    };
    crd(
        "BGPPeer",
        v1beta2::BgpPeer::PLURAL,
        vec![
            version(
                v1beta1::VERSION,
                schema_of::<v1beta1::BgpPeer>(),
                false,
                Some("v1beta1 is deprecated, please use v1beta2"),
            ),
            version(
                v1beta2::VERSION,
                schema_of::<v1beta2::BgpPeer>(),
                true,
                None,
            ),
        ],
        Some(bgppeer_conversion()),
    )
}

/// Every CRD, with the file name `crdgen` writes it to, in a stable order.
pub fn all() -> Vec<(String, CustomResourceDefinition)> {
    use v1beta1::{
        BfdProfile, BgpAdvertisement, Community, ConfigurationState, IpAddressPool,
        L2Advertisement, ServiceBgpStatus, ServiceL2Status,
    };
    let crds = vec![
        v1beta1_only::<BfdProfile>("BFDProfile", BfdProfile::PLURAL, BFD_PROFILE_COLUMNS, false),
        v1beta1_only::<BgpAdvertisement>(
            "BGPAdvertisement",
            BgpAdvertisement::PLURAL,
            BGP_ADVERTISEMENT_COLUMNS,
            false,
        ),
        bgppeer(),
        v1beta1_only::<Community>("Community", Community::PLURAL, &[], false),
        v1beta1_only::<ConfigurationState>(
            "ConfigurationState",
            ConfigurationState::PLURAL,
            CONFIGURATION_STATE_COLUMNS,
            false,
        ),
        v1beta1_only::<IpAddressPool>(
            "IPAddressPool",
            IpAddressPool::PLURAL,
            IP_ADDRESS_POOL_COLUMNS,
            true,
        ),
        v1beta1_only::<L2Advertisement>(
            "L2Advertisement",
            L2Advertisement::PLURAL,
            L2_ADVERTISEMENT_COLUMNS,
            false,
        ),
        v1beta1_only::<ServiceBgpStatus>(
            "ServiceBGPStatus",
            ServiceBgpStatus::PLURAL,
            SERVICE_BGP_STATUS_COLUMNS,
            false,
        ),
        v1beta1_only::<ServiceL2Status>(
            "ServiceL2Status",
            ServiceL2Status::PLURAL,
            SERVICE_L2_STATUS_COLUMNS,
            false,
        ),
    ];
    crds.into_iter()
        .map(|c| (format!("{GROUP}_{}.yaml", c.spec.names.plural), c))
        .collect()
}

/// The YAML text `crdgen` writes for one CRD (with a generated-file header).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    let body = to_yaml_body(crd)?;
    Ok(format!(
        "# Generated by `cargo run -p ironlb-api --bin crdgen`: do not edit.\n---\n{body}"
    ))
}

/// One CRD as a YAML document, without header or separator.
pub fn to_yaml_body(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    let mut value =
        serde_json::to_value(crd).map_err(<serde_yaml::Error as serde::ser::Error>::custom)?;
    integral_floats_to_integers(&mut value);
    serde_yaml::to_string(&value)
}

/// `JSONSchemaProps` keeps `minimum` / `maximum` as floats; write `1` rather than `1.0`.
fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = json!(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}
