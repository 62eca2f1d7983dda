//! What the controller knows about one Service, in the allocator's words.
//!
//! ```text
//!   Service (spec, annotations, labels) + its Namespace's labels
//!        |  the controller copies the fields below, nothing else
//!        v
//!   ServiceRequest { key, labels, requested pool / addresses, families, sharing, ports, backend }
//! ```
//!
//! The field types themselves (`ServiceKey`, `IpFamily`, `ServicePort`, ...) live in `service`;
//! their parsing from Kubernetes' spellings lives here, since it fails with an [`AllocationError`].

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::AllocationError;
use crate::service::{IpFamily, IpFamilyPolicy, Protocol, ServiceKey, ServicePort};

/// Everything about one `type: LoadBalancer` Service that decides its addresses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceRequest {
    /// `namespace/name`.
    pub key: ServiceKey,
    /// The labels of the Service's Namespace (for `serviceAllocation.namespaceSelectors`).
    pub namespace_labels: BTreeMap<String, String>,
    /// The Service's own labels (for `serviceAllocation.serviceSelectors`).
    pub labels: BTreeMap<String, String>,
    /// `metallb.io/address-pool`: allocate from this pool only (bypasses `autoAssign`).
    pub requested_pool: Option<String>,
    /// `metallb.io/loadBalancerIPs`: at most two addresses of different families (see
    /// [`parse_load_balancer_ips`]).
    pub requested_ips: Vec<IpAddr>,
    /// `spec.loadBalancerIP` (deprecated by Kubernetes); an error together with `requested_ips`.
    pub load_balancer_ip: Option<IpAddr>,
    /// `spec.ipFamilyPolicy`.
    pub ip_family_policy: IpFamilyPolicy,
    /// `spec.ipFamilies` (set by the API server; the first is the primary family).
    pub ip_families: Vec<IpFamily>,
    /// `metallb.io/allow-shared-ip`; empty means "never share".
    pub sharing_key: String,
    /// `spec.ports` as `(protocol, port)`.
    pub ports: Vec<ServicePort>,
    /// For `externalTrafficPolicy: Local` the pod selector as a string, for `Cluster` empty:
    /// Services sharing an address must have the same one.
    pub backend_key: String,
}

impl ServiceRequest {
    /// A SingleStack IPv4 Service with no annotations, labels or ports; set the rest by field.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            key: ServiceKey::new(namespace, name),
            namespace_labels: BTreeMap::new(),
            labels: BTreeMap::new(),
            requested_pool: None,
            requested_ips: Vec::new(),
            load_balancer_ip: None,
            ip_family_policy: IpFamilyPolicy::SingleStack,
            ip_families: vec![IpFamily::V4],
            sharing_key: String::new(),
            ports: Vec::new(),
            backend_key: String::new(),
        }
    }

    /// The addresses asked for by annotation or `spec.loadBalancerIP`, checked for count and
    /// families (but not yet against pools).
    pub(crate) fn wanted_ips(&self, plan: FamilyPlan) -> Result<Vec<IpAddr>, AllocationError> {
        let ips = match (&self.load_balancer_ip, self.requested_ips.is_empty()) {
            (Some(_), false) => return Err(AllocationError::LoadBalancerIpWithAnnotation),
            (Some(ip), true) => vec![*ip],
            (None, _) => self.requested_ips.clone(),
        };
        if ips.len() > 2 {
            return Err(AllocationError::TooManyRequestedAddresses { ips });
        }
        if let [a, b] = ips[..]
            && IpFamily::of(a) == IpFamily::of(b)
        {
            return Err(AllocationError::RequestedAddressesSameFamily { a, b });
        }
        if !ips.is_empty() && !plan.fits(&ips) {
            return Err(AllocationError::RequestedFamilyMismatch {
                ips,
                policy: self.ip_family_policy,
                families: self.ip_families.clone(),
            });
        }
        Ok(ips)
    }

    /// Which families this Service needs.
    pub(crate) fn plan(&self) -> Result<FamilyPlan, AllocationError> {
        let Some(&primary) = self.ip_families.first() else {
            return Err(AllocationError::NoIpFamilies);
        };
        let dual_cluster = self.ip_families.iter().any(|f| *f != primary);
        Ok(match self.ip_family_policy {
            IpFamilyPolicy::SingleStack => FamilyPlan::Single(primary),
            IpFamilyPolicy::RequireDualStack => FamilyPlan::Dual { primary },
            // On a single-stack cluster the API server gives a PreferDualStack Service one
            // family only; MetalLB then treats it as single-stack, and so do we.
            IpFamilyPolicy::PreferDualStack if dual_cluster => FamilyPlan::PreferDual { primary },
            IpFamilyPolicy::PreferDualStack => FamilyPlan::Single(primary),
        })
    }
}

impl FromStr for IpFamily {
    type Err = AllocationError;

    /// Parses Kubernetes' spelling, `IPv4` / `IPv6`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "IPv4" => Ok(IpFamily::V4),
            "IPv6" => Ok(IpFamily::V6),
            other => Err(AllocationError::InvalidField {
                field: "spec.ipFamilies",
                value: other.to_string(),
            }),
        }
    }
}

impl FromStr for IpFamilyPolicy {
    type Err = AllocationError;

    /// Parses Kubernetes' spelling, e.g. `PreferDualStack`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "SingleStack" => Ok(IpFamilyPolicy::SingleStack),
            "PreferDualStack" => Ok(IpFamilyPolicy::PreferDualStack),
            "RequireDualStack" => Ok(IpFamilyPolicy::RequireDualStack),
            other => Err(AllocationError::InvalidField {
                field: "spec.ipFamilyPolicy",
                value: other.to_string(),
            }),
        }
    }
}

impl FromStr for Protocol {
    type Err = AllocationError;

    /// Parses Kubernetes' spelling, `TCP` / `UDP` / `SCTP`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            other => Err(AllocationError::InvalidField {
                field: "spec.ports[].protocol",
                value: other.to_string(),
            }),
        }
    }
}

/// Parses the `metallb.io/loadBalancerIPs` annotation: comma-separated addresses, blanks
/// around them ignored. Count and families are checked when allocating.
pub fn parse_load_balancer_ips(annotation: &str) -> Result<Vec<IpAddr>, AllocationError> {
    annotation
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| AllocationError::InvalidField {
                field: "metallb.io/loadBalancerIPs",
                value: s.to_string(),
            })
        })
        .collect()
}

/// The families a Service needs, derived from its policy and `ipFamilies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FamilyPlan {
    /// Exactly one address of this family.
    Single(IpFamily),
    /// One address of each family; `primary` first.
    Dual { primary: IpFamily },
    /// Both if one pool has both, else one (the primary preferred).
    PreferDual { primary: IpFamily },
}

impl FamilyPlan {
    /// Whether a set of addresses (a holding or a request) has the families this plan allows.
    pub(crate) fn fits(self, ips: &[IpAddr]) -> bool {
        match (self, ips) {
            (FamilyPlan::Single(f), [a]) => IpFamily::of(*a) == f,
            (FamilyPlan::Dual { .. } | FamilyPlan::PreferDual { .. }, [a, b]) => {
                IpFamily::of(*a) != IpFamily::of(*b)
            }
            (FamilyPlan::PreferDual { .. }, [_]) => true,
            _ => false,
        }
    }
}
