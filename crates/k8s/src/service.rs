//! What ironlb keeps of a Service, and how a Service becomes an allocator request.
//!
//! ```text
//!   v1::Service --ServiceInfo::from_service--> ServiceInfo (small: no managedFields, no spec copy)
//!                                                 | + the Namespace's labels
//!                                                 v  ServiceInfo::request
//!                                            allocator::ServiceRequest
//! ```
//!
//! Pure: no client. The controller keeps one [`ServiceInfo`] per Service (10,000 Services fit in
//! a few MiB) instead of the full objects a reflector would hold.

use ironlb_allocator::{
    AllocationError, IpFamily, IpFamilyPolicy, Protocol, ServiceKey, ServicePort, ServiceRequest,
    parse_load_balancer_ips,
};
use k8s_openapi::api::core::v1::Service;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// `metallb.io/address-pool`: allocate from this pool.
pub const ANNOTATION_ADDRESS_POOL: &str = "metallb.io/address-pool";
/// `metallb.io/loadBalancerIPs`: these addresses, comma-separated.
pub const ANNOTATION_LOAD_BALANCER_IPS: &str = "metallb.io/loadBalancerIPs";
/// `metallb.io/allow-shared-ip`: the sharing key.
pub const ANNOTATION_ALLOW_SHARED_IP: &str = "metallb.io/allow-shared-ip";
/// `metallb.io/ip-allocated-from-pool`: written by the controller.
pub const ANNOTATION_ALLOCATED_FROM_POOL: &str = "metallb.io/ip-allocated-from-pool";

/// The deprecated `metallb.universe.tf/*` spellings and their current names.
pub const DEPRECATED_ANNOTATIONS: [(&str, &str); 3] = [
    ("metallb.universe.tf/address-pool", ANNOTATION_ADDRESS_POOL),
    (
        "metallb.universe.tf/loadBalancerIPs",
        ANNOTATION_LOAD_BALANCER_IPS,
    ),
    (
        "metallb.universe.tf/allow-shared-ip",
        ANNOTATION_ALLOW_SHARED_IP,
    ),
];

/// The fields of a Service that address allocation depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// `namespace/name`.
    pub key: ServiceKey,
    /// `metadata.uid` (a deleted and re-created Service is a new one).
    pub uid: String,
    /// `metadata.creationTimestamp`, Unix seconds (older claims win at restore).
    pub created: i64,
    /// `spec.type == LoadBalancer`.
    pub is_load_balancer: bool,
    /// `spec.loadBalancerClass`.
    pub load_balancer_class: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// The requested pool (current annotation, else the deprecated one).
    pub address_pool: Option<String>,
    /// The requested addresses annotation, unparsed (current, else deprecated).
    pub load_balancer_ips: Option<String>,
    /// The sharing key (current, else deprecated); empty = no sharing.
    pub sharing_key: String,
    /// The deprecated annotations this Service uses (their names).
    pub deprecated: Vec<&'static str>,
    /// `metallb.io/ip-allocated-from-pool` as the Service carries it now.
    pub allocated_from_pool: Option<String>,
    /// `spec.loadBalancerIP`, unparsed.
    pub load_balancer_ip: Option<String>,
    /// `spec.ipFamilyPolicy`, unparsed.
    pub ip_family_policy: Option<String>,
    /// `spec.ipFamilies`, unparsed.
    pub ip_families: Vec<String>,
    /// `spec.ports` as (protocol, port), unparsed protocol.
    pub ports: Vec<(String, i32)>,
    /// `spec.externalTrafficPolicy == Local`.
    pub traffic_policy_local: bool,
    /// `spec.selector` as `k=v,k2=v2` (sorted by key): all that sharing needs of it, in a few
    /// bytes instead of a map (a one-entry `BTreeMap` costs over 500 bytes, and the controller
    /// keeps one `ServiceInfo` per Service).
    pub selector: String,
    /// `status.loadBalancer.ingress[*].ip` that parse as addresses.
    pub status_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress` has entries that are not addresses (hostnames).
    pub status_other: bool,
}

fn annotation(
    annotations: &BTreeMap<String, String>,
    current: &str,
    deprecated: &mut Vec<&'static str>,
) -> Option<String> {
    if let Some(v) = annotations.get(current) {
        return Some(v.clone());
    }
    let (old, _) = DEPRECATED_ANNOTATIONS
        .iter()
        .find(|(_, new)| *new == current)?;
    let v = annotations.get(*old)?;
    deprecated.push(old);
    Some(v.clone())
}

impl ServiceInfo {
    /// Extracts what allocation needs from a Service object.
    pub fn from_service(svc: &Service) -> Self {
        let meta = &svc.metadata;
        let empty = BTreeMap::new();
        let annotations = meta.annotations.as_ref().unwrap_or(&empty);
        let mut deprecated = Vec::new();
        let address_pool = annotation(annotations, ANNOTATION_ADDRESS_POOL, &mut deprecated);
        let load_balancer_ips =
            annotation(annotations, ANNOTATION_LOAD_BALANCER_IPS, &mut deprecated);
        let sharing_key = annotation(annotations, ANNOTATION_ALLOW_SHARED_IP, &mut deprecated)
            .unwrap_or_default();
        let spec = svc.spec.clone().unwrap_or_default();
        let mut status_ips = Vec::new();
        let mut status_other = false;
        for ingress in svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
        {
            match ingress.ip.as_deref().map(str::parse::<IpAddr>) {
                Some(Ok(ip)) => status_ips.push(ip),
                _ => status_other = true,
            }
        }
        ServiceInfo {
            key: ServiceKey::new(
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            ),
            uid: meta.uid.clone().unwrap_or_default(),
            created: meta
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or_default(),
            is_load_balancer: spec.type_.as_deref() == Some("LoadBalancer"),
            load_balancer_class: spec.load_balancer_class,
            labels: meta.labels.clone().unwrap_or_default(),
            address_pool,
            load_balancer_ips,
            sharing_key,
            deprecated,
            allocated_from_pool: annotations.get(ANNOTATION_ALLOCATED_FROM_POOL).cloned(),
            load_balancer_ip: spec.load_balancer_ip.filter(|s| !s.is_empty()),
            ip_family_policy: spec.ip_family_policy,
            ip_families: spec.ip_families.unwrap_or_default(),
            ports: spec
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.protocol.unwrap_or_else(|| "TCP".into()), p.port))
                .collect(),
            traffic_policy_local: spec.external_traffic_policy.as_deref() == Some("Local"),
            selector: spec
                .selector
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            status_ips,
            status_other,
        }
    }

    /// Whether a controller started with `--lb-class` = `lb_class` handles this Service: it is
    /// a LoadBalancer and its class is exactly ours (no class when we have none).
    pub fn is_ours(&self, lb_class: Option<&str>) -> bool {
        self.is_load_balancer && self.load_balancer_class.as_deref() == lb_class
    }

    /// The backend key for sharing: for `externalTrafficPolicy: Local` the selector as
    /// `k=v,k2=v2` (sorted), else empty.
    pub fn backend_key(&self) -> String {
        if !self.traffic_policy_local {
            return String::new();
        }
        self.selector.clone()
    }

    /// The allocator's view of this Service, given its Namespace's labels.
    pub fn request(
        &self,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Result<ServiceRequest, AllocationError> {
        let requested_ips = match &self.load_balancer_ips {
            Some(text) => parse_load_balancer_ips(text)?,
            None => Vec::new(),
        };
        let load_balancer_ip =
            match &self.load_balancer_ip {
                Some(text) => Some(text.trim().parse::<IpAddr>().map_err(|_| {
                    AllocationError::InvalidField {
                        field: "spec.loadBalancerIP",
                        value: text.clone(),
                    }
                })?),
                None => None,
            };
        let ip_family_policy = match &self.ip_family_policy {
            Some(p) => p.parse::<IpFamilyPolicy>()?,
            None => IpFamilyPolicy::SingleStack,
        };
        let mut ip_families = self
            .ip_families
            .iter()
            .map(|f| f.parse::<IpFamily>())
            .collect::<Result<Vec<_>, _>>()?;
        if ip_families.is_empty() {
            // The API server always fills ipFamilies; a Service from an old cluster may not.
            ip_families.push(IpFamily::V4);
        }
        let ports = self
            .ports
            .iter()
            .map(|(proto, port)| {
                let protocol = proto.parse::<Protocol>()?;
                let port = u16::try_from(*port).map_err(|_| AllocationError::InvalidField {
                    field: "spec.ports[].port",
                    value: port.to_string(),
                })?;
                Ok(ServicePort::new(protocol, port))
            })
            .collect::<Result<Vec<_>, AllocationError>>()?;
        Ok(ServiceRequest {
            key: self.key.clone(),
            namespace_labels: namespace_labels.clone(),
            labels: self.labels.clone(),
            requested_pool: self.address_pool.clone().filter(|p| !p.is_empty()),
            requested_ips,
            load_balancer_ip,
            ip_family_policy,
            ip_families,
            sharing_key: self.sharing_key.clone(),
            ports,
            backend_key: self.backend_key(),
        })
    }
}

/// The JSON merge patch for `services/<name>/status` that sets the Service's addresses and
/// the `metallb.io/ip-allocated-from-pool` annotation in one write (the status subresource of
/// a Service accepts metadata changes). Empty `ips` clears both.
pub fn status_patch(ips: &[IpAddr], pool: Option<&str>) -> serde_json::Value {
    let ingress = if ips.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Array(
            ips.iter()
                .map(|ip| serde_json::json!({"ip": ip.to_string()}))
                .collect(),
        )
    };
    serde_json::json!({
        "metadata": {"annotations": {ANNOTATION_ALLOCATED_FROM_POOL: pool}},
        "status": {"loadBalancer": {"ingress": ingress}},
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServicePort as KPort, ServiceSpec, ServiceStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn mk_service(annotations: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                ip_families: Some(vec!["IPv4".into()]),
                ports: Some(vec![KPort {
                    port: 80,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(vec![LoadBalancerIngress {
                        ip: Some("10.0.0.150".into()),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn current_annotations_win_over_deprecated_ones() {
        let svc = mk_service(&[
            ("metallb.io/address-pool", "new"),
            ("metallb.universe.tf/address-pool", "old"),
            ("metallb.universe.tf/allow-shared-ip", "k"),
        ]);
        let info = ServiceInfo::from_service(&svc);
        assert_eq!(info.address_pool.as_deref(), Some("new"));
        assert_eq!(info.sharing_key, "k");
        assert_eq!(info.deprecated, vec!["metallb.universe.tf/allow-shared-ip"]);
        assert_eq!(
            info.status_ips,
            vec!["10.0.0.150".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn request_carries_ports_and_requested_addresses() {
        let svc = mk_service(&[("metallb.io/loadBalancerIPs", "10.0.0.160, fd10::160")]);
        let req = ServiceInfo::from_service(&svc)
            .request(&BTreeMap::new())
            .unwrap();
        assert_eq!(req.requested_ips.len(), 2);
        assert_eq!(req.ports, vec![ServicePort::new(Protocol::Tcp, 80)]);
        let bad = mk_service(&[("metallb.io/loadBalancerIPs", "10.0.0.999")]);
        assert!(
            ServiceInfo::from_service(&bad)
                .request(&BTreeMap::new())
                .is_err()
        );
    }

    #[test]
    fn lb_class_filter_is_exact() {
        let mut info = ServiceInfo::from_service(&mk_service(&[]));
        assert!(info.is_ours(None));
        assert!(!info.is_ours(Some("ironlb")));
        info.load_balancer_class = Some("ironlb".into());
        assert!(info.is_ours(Some("ironlb")));
        assert!(!info.is_ours(None));
        info.is_load_balancer = false;
        assert!(!info.is_ours(Some("ironlb")));
    }

    #[test]
    fn backend_key_only_for_local_policy() {
        let mut svc = mk_service(&[]);
        if let Some(spec) = svc.spec.as_mut() {
            spec.selector = Some(
                [("b".to_string(), "2".to_string()), ("a".into(), "1".into())]
                    .into_iter()
                    .collect(),
            );
        }
        let mut info = ServiceInfo::from_service(&svc);
        assert_eq!(info.backend_key(), "");
        info.traffic_policy_local = true;
        assert_eq!(info.backend_key(), "a=1,b=2");
    }

    #[test]
    fn status_patch_clears_with_nulls() {
        let p = status_patch(&[], None);
        assert!(p["status"]["loadBalancer"]["ingress"].is_null());
        assert!(p["metadata"]["annotations"][ANNOTATION_ALLOCATED_FROM_POOL].is_null());
        let p = status_patch(&["10.0.0.150".parse().unwrap()], Some("linuxnet"));
        assert_eq!(
            p["status"]["loadBalancer"]["ingress"][0]["ip"],
            "10.0.0.150"
        );
        assert_eq!(
            p["metadata"]["annotations"][ANNOTATION_ALLOCATED_FROM_POOL],
            "linuxnet"
        );
    }
}
