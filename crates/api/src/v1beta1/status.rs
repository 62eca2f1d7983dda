//! The objects ironlb writes for users to read: ServiceL2Status, ServiceBGPStatus and
//! ConfigurationState.

use crate::ObjectMeta;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

resource! {
    /// Which node announces a Service in layer 2 mode, and on which interfaces (one object per
    /// Service and node, written by the speaker, named `l2-...`).
    ServiceL2Status {
        kind: "ServiceL2Status",
        version: "v1beta1",
        plural: "servicel2statuses",
        spec: ServiceL2StatusSpec,
        status: ServiceL2StatusStatus,
    }
}

/// `ServiceL2Status.spec` (empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceL2StatusSpec {}

/// `ServiceL2Status.status`. Node and Service never change once set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceL2StatusStatus {
    /// The node that receives the Service's traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("Value is immutable"))]
    pub node: Option<String>,
    /// The Service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("Value is immutable"))]
    pub service_name: Option<String>,
    /// The Service's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("Value is immutable"))]
    pub service_namespace: Option<String>,
    /// The interfaces the address is announced on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceInfo>,
}

/// One interface of a [`ServiceL2StatusStatus`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InterfaceInfo {
    /// The interface's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

resource! {
    /// Which BGP peers a node announces a Service to (one object per Service and node, written
    /// by the speaker, named `bgp-...`).
    ServiceBgpStatus {
        kind: "ServiceBGPStatus",
        version: "v1beta1",
        plural: "servicebgpstatuses",
        spec: ServiceBgpStatusSpec,
        status: ServiceBgpStatusStatus,
    }
}

/// `ServiceBGPStatus.spec` (empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceBgpStatusSpec {}

/// `ServiceBGPStatus.status`. Node and Service never change once set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBgpStatusStatus {
    /// The announcing node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("Value is immutable"))]
    pub node: Option<String>,
    /// The Service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("Value is immutable"))]
    pub service_name: Option<String>,
    /// The Service's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("Value is immutable"))]
    pub service_namespace: Option<String>,
    /// The BGPPeers the Service is configured to be announced to from this node (whether a
    /// session is up is not shown here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

/// Whether a component's configuration was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConfigurationResult {
    /// The configuration is valid and in use.
    Valid,
    /// The configuration has errors (see `errorSummary`); the last good one stays in use.
    Invalid,
    /// The component has not reported yet.
    Unknown,
}

/// `ConfigurationState.status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateStatus {
    /// The verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ConfigurationResult>,
    /// The errors, summarised; empty when the result is `Valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    /// Conditions from the component's reconcilers, one per `type`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]),
        transform = crate::schema::conditions
    )]
    pub conditions: Vec<Condition>,
}

/// A status-only object reporting whether a component (the controller, or the speaker of one
/// node: named `controller` / `speaker-<node>`) accepted the configuration.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationState {
    /// Standard object metadata.
    #[serde(default)]
    #[schemars(skip)]
    pub metadata: ObjectMeta,
    /// The verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConfigurationStateStatus>,
}

impl ConfigurationState {
    /// The `kind` of this resource.
    pub const KIND: &'static str = "ConfigurationState";
    /// The version of this type.
    pub const VERSION: &'static str = "v1beta1";
    /// The plural resource name.
    pub const PLURAL: &'static str = "configurationstates";
}

impl Serialize for ConfigurationState {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut obj = ser.serialize_struct("ConfigurationState", 4)?;
        obj.serialize_field("apiVersion", "metallb.io/v1beta1")?;
        obj.serialize_field("kind", Self::KIND)?;
        obj.serialize_field("metadata", &self.metadata)?;
        if let Some(status) = &self.status {
            obj.serialize_field("status", status)?;
        }
        obj.end()
    }
}

impl kube::Resource for ConfigurationState {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        Self::KIND.into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        crate::GROUP.into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        Self::VERSION.into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        Self::PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
