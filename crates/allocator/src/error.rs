//! Why an allocation or a pool set was refused. The `Display` text is written for people: the
//! controller puts it verbatim in an `AllocationFailed` Event.

use std::net::IpAddr;

use crate::service::{IpFamily, IpFamilyPolicy, ServiceKey, ServicePort};

/// Why a Service did not get (or may not keep) addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// A field the controller parsed had a value that is not allowed.
    #[error("invalid {field}: {value:?}")]
    InvalidField {
        /// The field or annotation.
        field: &'static str,
        /// The offending text.
        value: String,
    },
    /// `spec.ipFamilies` was empty.
    #[error("the service has no spec.ipFamilies")]
    NoIpFamilies,
    /// `spec.loadBalancerIP` and `metallb.io/loadBalancerIPs` were both set.
    #[error(
        "spec.loadBalancerIP and the metallb.io/loadBalancerIPs annotation cannot be used together"
    )]
    LoadBalancerIpWithAnnotation,
    /// More than two addresses were requested.
    #[error("at most two addresses (one per family) may be requested, got {ips:?}")]
    TooManyRequestedAddresses {
        /// What was requested.
        ips: Vec<IpAddr>,
    },
    /// Two requested addresses of one family.
    #[error("requested addresses {a} and {b} are of the same family")]
    RequestedAddressesSameFamily {
        /// The first.
        a: IpAddr,
        /// The second.
        b: IpAddr,
    },
    /// The requested addresses do not match the Service's families and policy.
    #[error(
        "requested addresses {ips:?} do not match ipFamilyPolicy {policy} with ipFamilies {families:?}"
    )]
    RequestedFamilyMismatch {
        /// What was requested.
        ips: Vec<IpAddr>,
        /// The Service's policy.
        policy: IpFamilyPolicy,
        /// The Service's families.
        families: Vec<IpFamily>,
    },
    /// The requested pool does not exist.
    #[error("unknown address pool {pool:?}")]
    UnknownPool {
        /// The requested pool's name.
        pool: String,
    },
    /// An address lies in no pool.
    #[error("{ip} is not in any address pool")]
    AddressNotInAnyPool {
        /// The address.
        ip: IpAddr,
    },
    /// An address of a pool with `avoidBuggyIPs` ends in .0 or .255.
    #[error("{ip} ends in .0 or .255 and pool {pool:?} has avoidBuggyIPs")]
    BuggyAddress {
        /// The address.
        ip: IpAddr,
        /// The pool.
        pool: String,
    },
    /// Two requested addresses lie in different pools (dual-stack comes from one pool).
    #[error("{a} (pool {pool_a:?}) and {b} (pool {pool_b:?}) are in different pools")]
    AddressesInDifferentPools {
        /// The first address.
        a: IpAddr,
        /// Its pool.
        pool_a: String,
        /// The second address.
        b: IpAddr,
        /// Its pool.
        pool_b: String,
    },
    /// A requested address is not in the requested pool.
    #[error("{ip} is in pool {actual:?}, not in the requested pool {requested:?}")]
    AddressNotInRequestedPool {
        /// The address.
        ip: IpAddr,
        /// The pool it is in.
        actual: String,
        /// The pool the Service asked for.
        requested: String,
    },
    /// The Service holds addresses other than the ones it now requests.
    #[error("the service holds {held:?} but requests {requested:?}")]
    HeldAddressesNotRequested {
        /// What it holds.
        held: Vec<IpAddr>,
        /// What it requests.
        requested: Vec<IpAddr>,
    },
    /// The Service holds addresses whose families no longer fit its policy.
    #[error(
        "the held addresses {held:?} do not match ipFamilyPolicy {policy} with ipFamilies {families:?}"
    )]
    HeldFamilyMismatch {
        /// What it holds.
        held: Vec<IpAddr>,
        /// The Service's policy.
        policy: IpFamilyPolicy,
        /// The Service's families.
        families: Vec<IpFamily>,
    },
    /// The pool's `serviceAllocation` does not select this Service.
    #[error("pool {pool:?} is reserved by serviceAllocation for other namespaces or services")]
    PoolNotAllowedForService {
        /// The pool.
        pool: String,
    },
    /// The address is held by another Service that may not share it with this one.
    #[error("{ip} is in use by {holder}: {conflict}")]
    AddressInUse {
        /// The address.
        ip: IpAddr,
        /// One Service holding it.
        holder: ServiceKey,
        /// Why the two may not share it.
        conflict: SharingConflict,
    },
    /// The requested pool has no block of the needed family.
    #[error("pool {pool:?} has no {family} addresses")]
    FamilyNotInPool {
        /// The pool.
        pool: String,
        /// The family.
        family: IpFamily,
    },
    /// The requested pool has no free (or shareable) address of the needed family.
    #[error("no available {family} address in pool {pool:?}")]
    PoolExhausted {
        /// The pool.
        pool: String,
        /// The family.
        family: IpFamily,
    },
    /// RequireDualStack: no single pool (of those tried) has a free address of both families.
    #[error("no pool has free IPv4 and IPv6 addresses for RequireDualStack (tried {tried:?})")]
    NoDualStackPool {
        /// The pools tried, in order.
        tried: Vec<String>,
    },
    /// No pool that this Service may use automatically had a free address.
    #[error("no available {wanted} address in any pool this service may use (tried {tried:?})")]
    NoAvailableAddress {
        /// What was looked for, e.g. `IPv4` or `IPv6 or IPv4`.
        wanted: String,
        /// The pools tried, in order (empty: no pool may serve it automatically).
        tried: Vec<String>,
    },
    /// At restore, another claim for the same Service (with other addresses) was restored first.
    #[error("the service already holds {held:?}")]
    AlreadyHolds {
        /// What it holds.
        held: Vec<IpAddr>,
    },
}

/// Why two Services may not share an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharingConflict {
    /// The holder has no `metallb.io/allow-shared-ip` key.
    #[error("it does not allow sharing")]
    HolderDoesNotShare,
    /// This Service has no `metallb.io/allow-shared-ip` key.
    #[error("this service does not allow sharing")]
    RequesterDoesNotShare,
    /// The keys differ.
    #[error("sharing key {requester:?} differs from {holder:?}")]
    DifferentSharingKey {
        /// The holder's key.
        holder: String,
        /// This Service's key.
        requester: String,
    },
    /// The backend keys (externalTrafficPolicy Local selectors) differ.
    #[error("backend key {requester:?} differs from {holder:?} (externalTrafficPolicy / selector)")]
    DifferentBackend {
        /// The holder's backend key.
        holder: String,
        /// This Service's backend key.
        requester: String,
    },
    /// Both use the same protocol and port.
    #[error("both use port {port}")]
    PortInUse {
        /// The port.
        port: ServicePort,
    },
}

/// Why [`crate::Allocator::set_pools`] refused a set of pools (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Two pools with one name.
    #[error("duplicate pool name {0:?}")]
    DuplicateName(String),
    /// A range whose ends are of different families.
    #[error("pool {pool:?}: range {start}-{end} mixes address families")]
    MixedFamilies {
        /// The pool.
        pool: String,
        /// Range start.
        start: IpAddr,
        /// Range end.
        end: IpAddr,
    },
    /// A range whose start is after its end.
    #[error("pool {pool:?}: range start {start} is after end {end}")]
    StartAfterEnd {
        /// The pool.
        pool: String,
        /// Range start.
        start: IpAddr,
        /// Range end.
        end: IpAddr,
    },
    /// Two blocks (in one pool or in two) share addresses.
    #[error("pool {pool_a:?} and pool {pool_b:?} overlap at {at}")]
    Overlap {
        /// One pool.
        pool_a: String,
        /// The other (may be the same pool).
        pool_b: String,
        /// An address in both.
        at: IpAddr,
    },
    /// A pool covering the whole IPv6 space: 2^128 addresses do not fit in a u128 count.
    #[error("pool {0:?} covers the whole IPv6 address space")]
    TooLarge(String),
}
