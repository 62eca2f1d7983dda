//! IP address allocation for LoadBalancer Services, with MetalLB's semantics.
//!
//! ```text
//!   Pool (validated by ironlb-config) --+
//!                                       +--> Allocator --> Assignment { pool, ips }
//!   ServiceRequest (from a Service) ----+
//! ```
//!
//! Pure: no I/O, no Kubernetes client. The controller feeds it pools and Services and writes
//! the answers back to the API server.
//!
//! Controller flow:
//! 1. [`Allocator::set_pools`] with the validated pools (again on every config change; clear
//!    the Services it reports in [`PoolsUpdate::invalidated`]);
//! 2. at start-up, [`Allocator::restore`] with every Service's current status addresses
//!    ([`Claim`]), then clear the rejected ones;
//! 3. [`Allocator::assign`] for every LoadBalancer Service (idempotent), [`Allocator::release`]
//!    when one is deleted or stops being ours;
//! 4. [`Allocator::counts`] for the pool metrics and IPAddressPool status.
//!
//! The free-address search is O(log n) per allocation (see [`AddressBlock`]), where MetalLB
//! walks every used address from the start of the pool.

mod allocator;
pub mod block;
mod error;
mod request;
pub mod selector;
mod service;

pub use allocator::{
    Allocator, Assignment, Claim, Invalidated, PoolCounts, PoolsUpdate, RestoreReport,
};
pub use block::AddressBlock;
pub use error::{AllocationError, PoolError, SharingConflict};
pub use request::{ServiceRequest, parse_load_balancer_ips};
pub use selector::{LabelSelector, Requirement, RequirementOperator};
pub use service::{IpFamily, IpFamilyPolicy, Protocol, ServiceKey, ServicePort};

use ipnet::IpNet;
use std::net::IpAddr;

/// One contiguous block of addresses of a pool: a CIDR or an inclusive `start-end` range
/// (MetalLB accepts both; a range never crosses address families).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AddressRange {
    /// `10.0.0.0/24`
    Cidr(IpNet),
    /// `10.0.0.150-10.0.0.180`, both ends included.
    Range {
        /// First address.
        start: IpAddr,
        /// Last address (>= start, same family).
        end: IpAddr,
    },
}

impl AddressRange {
    /// The first and the last address of the block (a CIDR's network and broadcast addresses).
    pub fn bounds(&self) -> (IpAddr, IpAddr) {
        match self {
            AddressRange::Cidr(net) => (net.network(), net.broadcast()),
            AddressRange::Range { start, end } => (*start, *end),
        }
    }

    /// Whether `ip` is in the block: the one "address in pool" rule, for the allocator and for
    /// the speakers, which find a Service's pool by its address as MetalLB's do.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (start, end) = self.bounds();
        start.is_ipv4() == ip.is_ipv4() && start <= ip && ip <= end
    }
}

/// Which Services a pool is reserved for, and with what priority (IPAddressPool
/// `spec.serviceAllocation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceAllocation {
    /// Lower numbers are tried first; 0 means "no priority" and sorts after every set priority.
    pub priority: i32,
    /// Namespaces by name.
    pub namespaces: Vec<String>,
    /// Namespaces by label.
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services by label.
    pub service_selectors: Vec<LabelSelector>,
}

/// A validated address pool (one IPAddressPool object).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pool {
    /// The IPAddressPool's name.
    pub name: String,
    /// Its address blocks, in the order the user wrote them.
    pub ranges: Vec<AddressRange>,
    /// `spec.autoAssign` (default true): may Services that did not ask for this pool get from it.
    pub auto_assign: bool,
    /// `spec.avoidBuggyIPs`: never hand out IPv4 addresses ending in .0 or .255.
    pub avoid_buggy_ips: bool,
    /// `spec.serviceAllocation`, if set.
    pub service_allocation: Option<ServiceAllocation>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod range_tests {
    use super::AddressRange;
    use std::net::IpAddr;

    #[test]
    fn contains_is_inclusive_and_never_crosses_families() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cidr = AddressRange::Cidr("10.0.0.0/30".parse().unwrap());
        assert_eq!(cidr.bounds(), (ip("10.0.0.0"), ip("10.0.0.3")));
        assert!(cidr.contains(ip("10.0.0.0")) && cidr.contains(ip("10.0.0.3")));
        assert!(!cidr.contains(ip("10.0.0.4")) && !cidr.contains(ip("::a00:1")));
        let range = AddressRange::Range {
            start: ip("10.0.0.150"),
            end: ip("10.0.0.180"),
        };
        assert!(range.contains(ip("10.0.0.150")) && range.contains(ip("10.0.0.180")));
        assert!(!range.contains(ip("10.0.0.149")) && !range.contains(ip("10.0.0.181")));
        // An IPv6 address between the two as numbers is still not in an IPv4 range.
        let v6 = AddressRange::Range {
            start: ip("fd10::150"),
            end: ip("fd10::180"),
        };
        assert!(v6.contains(ip("fd10::160")) && !v6.contains(ip("10.0.0.160")));
    }
}
