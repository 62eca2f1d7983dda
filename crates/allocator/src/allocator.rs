//! The allocation engine the controller drives.
//!
//! ```text
//!   set_pools(Vec<Pool>) ------> pools (by name) -> AddressBlock per range (used runs)
//!        | PoolsUpdate.invalidated: holdings that no longer fit (already released)
//!   restore(Vec<Claim>) -------> holdings rebuilt from Service status, oldest claim first
//!   assign(&ServiceRequest) ---> Assignment { pool, ips }  or  AllocationError (for the Event)
//!   release(&ServiceKey)
//!   counts(pool) --------------> PoolCounts (exact, u128)
//! ```
//!
//! Pool order for automatic allocation (MetalLB's rule, made deterministic):
//! 1. "pinned" pools: `autoAssign` pools whose `serviceAllocation` names or selects the
//!    Service's namespace and/or the Service, sorted by priority (lower first; 0 or negative =
//!    unset, after all set priorities), ties by pool name;
//! 2. then every other `autoAssign` pool that has no namespace/service restriction, in the same
//!    order (priority, then name). MetalLB walks these in Go's random map order; ironlb walks them
//!    by name so that the same inputs always give the same address.
//!
//! Within a pool the address is MetalLB's first fit: blocks in the order the user wrote them,
//! the lowest address that is free or may be shared with this Service.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::Pool;
use crate::block::{AddressBlock, to_u128};
use crate::error::{AllocationError, PoolError, SharingConflict};
use crate::request::{FamilyPlan, ServiceRequest};
use crate::service::{IpFamily, ServiceKey, ServicePort};

/// Addresses a Service holds, and the pool they come from (for
/// `metallb.io/ip-allocated-from-pool`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    /// The pool's name.
    pub pool: String,
    /// One or two addresses (two: one per family, the Service's primary family first).
    pub ips: Vec<IpAddr>,
}

/// Exact address counts of one pool, per family (the `metallb_allocator_*` metrics and the
/// IPAddressPool status). Assignable addresses only: .0/.255 are not counted under
/// `avoidBuggyIPs`. An address shared by several Services counts once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PoolCounts {
    /// IPv4 addresses in the pool.
    pub total_v4: u128,
    /// IPv6 addresses in the pool.
    pub total_v6: u128,
    /// IPv4 addresses held by at least one Service.
    pub in_use_v4: u128,
    /// IPv6 addresses held by at least one Service.
    pub in_use_v6: u128,
}

impl PoolCounts {
    /// All addresses (never overflows: [`Allocator::set_pools`] refuses pools where it would).
    pub fn total(&self) -> u128 {
        self.total_v4 + self.total_v6
    }

    /// All addresses in use.
    pub fn in_use(&self) -> u128 {
        self.in_use_v4 + self.in_use_v6
    }

    /// Free IPv4 addresses.
    pub fn available_v4(&self) -> u128 {
        self.total_v4 - self.in_use_v4
    }

    /// Free IPv6 addresses.
    pub fn available_v6(&self) -> u128 {
        self.total_v6 - self.in_use_v6
    }
}

/// A Service's claim, read from its `status.loadBalancer.ingress` at start-up, to addresses it
/// held before the controller restarted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    /// The Service as it is now.
    pub request: ServiceRequest,
    /// The addresses in its status.
    pub ips: Vec<IpAddr>,
    /// `metadata.creationTimestamp` as Unix seconds: the older claim wins a conflict (then
    /// namespace/name, then the addresses, so the order is total).
    pub created: i64,
}

/// What [`Allocator::restore`] did with each claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Claims now held, in the order they were processed.
    pub restored: Vec<(ServiceKey, Assignment)>,
    /// Claims refused: the controller clears their status (`ClearAssignment`) and allocates
    /// them anew with [`Allocator::assign`].
    pub rejected: Vec<Invalidated>,
}

/// A holding (or claim) that is not (or no longer) valid, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidated {
    /// The Service.
    pub service: ServiceKey,
    /// The addresses it held or claimed.
    pub ips: Vec<IpAddr>,
    /// Why they were taken away or refused.
    pub reason: AllocationError,
}

/// What [`Allocator::set_pools`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolsUpdate {
    /// Services whose addresses no longer lie in a pool (pool removed or shrunk, or
    /// `avoidBuggyIPs` turned on); they have been released. Sorted by Service.
    pub invalidated: Vec<Invalidated>,
}

/// What the allocator remembers about a Service holding addresses. Kept small: it exists once
/// per Service, a million times in a big cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holding {
    /// Shared with the pool's own name.
    pool: Arc<str>,
    ips: Box<[IpAddr]>,
    /// Only for Services with a sharing key: the ports and backend matter only then.
    sharing: Option<Box<Sharing>>,
}

/// How a Service that allows sharing uses its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sharing {
    key: String,
    backend: String,
    ports: Vec<ServicePort>,
}

impl Holding {
    fn assignment(&self) -> Assignment {
        Assignment {
            pool: self.pool.to_string(),
            ips: self.ips.to_vec(),
        }
    }

    fn sharing_key(&self) -> Option<&str> {
        self.sharing.as_ref().map(|s| s.key.as_str())
    }
}

/// A pool and the state of its blocks.
#[derive(Debug, Clone)]
struct PoolState {
    pool: Pool,
    /// `pool.name`, shared by every holding from this pool.
    name: Arc<str>,
    /// One per `pool.ranges`, same order.
    blocks: Vec<AddressBlock>,
    /// Indices of blocks that are not full, per family (`[v4, v6]`).
    open: [BTreeSet<usize>; 2],
    /// Whether the pool has any block of the family (`[v4, v6]`).
    has: [bool; 2],
}

fn fam_idx(f: IpFamily) -> usize {
    match f {
        IpFamily::V4 => 0,
        IpFamily::V6 => 1,
    }
}

impl PoolState {
    fn restricts(&self) -> bool {
        self.pool.service_allocation.as_ref().is_some_and(|sa| {
            !sa.namespaces.is_empty()
                || !sa.namespace_selectors.is_empty()
                || !sa.service_selectors.is_empty()
        })
    }

    /// Whether `serviceAllocation` lets this Service use the pool at all.
    fn allows(&self, req: &ServiceRequest) -> bool {
        let Some(sa) = &self.pool.service_allocation else {
            return true;
        };
        let ns_unrestricted = sa.namespaces.is_empty() && sa.namespace_selectors.is_empty();
        let ns_ok = ns_unrestricted
            || sa.namespaces.contains(&req.key.namespace)
            || sa
                .namespace_selectors
                .iter()
                .any(|s| s.matches(&req.namespace_labels));
        let svc_ok = sa.service_selectors.is_empty()
            || sa.service_selectors.iter().any(|s| s.matches(&req.labels));
        ns_ok && svc_ok
    }

    /// Sort rank: set priorities (> 0) ascending, then unset ones.
    fn priority_rank(&self) -> (u8, i32) {
        match self.pool.service_allocation.as_ref().map(|sa| sa.priority) {
            Some(p) if p > 0 => (0, p),
            _ => (1, 0),
        }
    }

    fn counts(&self) -> PoolCounts {
        let mut c = PoolCounts::default();
        for b in &self.blocks {
            match b.family() {
                IpFamily::V4 => {
                    c.total_v4 += b.capacity();
                    c.in_use_v4 += b.in_use();
                }
                IpFamily::V6 => {
                    c.total_v6 += b.capacity();
                    c.in_use_v6 += b.in_use();
                }
            }
        }
        c
    }
}

/// The allocator: pools, who holds which address, and the rules to hand out more.
///
/// Deterministic: the same sequence of calls gives the same results (no randomness; hash maps
/// are only looked up, or sorted before their order can show).
#[derive(Debug, Clone, Default)]
pub struct Allocator {
    /// Sorted by name.
    pools: Vec<PoolState>,
    /// Block start -> (pool index, block index).
    index: BTreeMap<(IpFamily, u128), (usize, usize)>,
    /// Looked up only, never iterated where order matters (sorted first there).
    services: HashMap<Arc<ServiceKey>, Holding>,
    /// Address -> Services holding it (sorted; more than one only when shared).
    users: HashMap<IpAddr, Vec<Arc<ServiceKey>>>,
    /// Sharing key -> addresses currently held under it.
    shared: HashMap<String, BTreeSet<IpAddr>>,
}

impl Allocator {
    /// An allocator with no pools and no holdings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the pools. Holdings whose addresses still lie (all in one) pool are kept —
    /// moved to the new pool if the address changed pool; the others are released and
    /// returned so the controller can clear them and allocate again. On error nothing changes.
    ///
    /// Afterwards the controller should call [`Allocator::assign`] for every Service: that
    /// re-checks what depends on the Service (requested pool, `serviceAllocation`).
    pub fn set_pools(&mut self, pools: Vec<Pool>) -> Result<PoolsUpdate, PoolError> {
        let (states, index) = build_pools(pools)?;
        let mut old: Vec<(Arc<ServiceKey>, Holding)> =
            std::mem::take(&mut self.services).into_iter().collect();
        old.sort_by(|a, b| a.0.cmp(&b.0));
        self.users.clear();
        self.shared.clear();
        self.pools = states;
        self.index = index;
        let mut update = PoolsUpdate::default();
        for (key, mut holding) in old {
            match self.resolve_pool(&holding.ips) {
                Ok(pi) => {
                    holding.pool = Arc::clone(&self.pools[pi].name);
                    self.insert_holding(key, holding, pi);
                }
                Err(reason) => update.invalidated.push(Invalidated {
                    service: ServiceKey::clone(&key),
                    ips: holding.ips.to_vec(),
                    reason,
                }),
            }
        }
        Ok(update)
    }

    /// Rebuilds holdings from Services' status after a restart; call after
    /// [`Allocator::set_pools`] and before any [`Allocator::assign`]. Claims are processed
    /// oldest first (then by namespace/name), each checked by the same rules as an explicit
    /// request, so of two Services claiming an address they may not share, the older keeps it
    /// and the other is rejected — the result does not depend on the order of `claims`.
    pub fn restore(&mut self, mut claims: Vec<Claim>) -> RestoreReport {
        claims.sort_by(|a, b| {
            (a.created, &a.request.key, &a.ips).cmp(&(b.created, &b.request.key, &b.ips))
        });
        let mut report = RestoreReport::default();
        for claim in claims {
            let key = claim.request.key.clone();
            if let Some(h) = self.services.get(&key) {
                if same_set(&h.ips, &claim.ips) {
                    report.restored.push((key, h.assignment()));
                } else {
                    report.rejected.push(Invalidated {
                        service: key,
                        ips: claim.ips,
                        reason: AllocationError::AlreadyHolds {
                            held: h.ips.to_vec(),
                        },
                    });
                }
                continue;
            }
            let checked = claim.request.plan().and_then(|plan| {
                let wanted = claim.request.wanted_ips(plan)?;
                self.check_held(&claim.request, plan, &wanted, &claim.ips)
            });
            match checked {
                Ok(pi) => {
                    let a = self.place(&claim.request, pi, claim.ips);
                    report.restored.push((key, a));
                }
                Err(reason) => report.rejected.push(Invalidated {
                    service: key,
                    ips: claim.ips,
                    reason,
                }),
            }
        }
        report
    }

    /// Gives the Service its addresses, or says why not.
    ///
    /// Idempotent: a Service that already holds addresses that still satisfy the request keeps
    /// them (its ports and keys are updated; a PreferDualStack Service holding one family gets
    /// the other from the same pool if one is now free). If what it holds no longer satisfies
    /// the request, it is released first and allocated anew (as MetalLB clears it). On error
    /// the Service holds nothing.
    pub fn assign(&mut self, req: &ServiceRequest) -> Result<Assignment, AllocationError> {
        let checked = req.plan().and_then(|p| req.wanted_ips(p).map(|w| (p, w)));
        let (plan, wanted) = match checked {
            Ok(pw) => pw,
            Err(e) => {
                self.release(&req.key);
                return Err(e);
            }
        };

        if let Some(h) = self.services.get(&req.key) {
            let held = h.ips.to_vec();
            match self.check_held(req, plan, &wanted, &held) {
                Ok(pi) => return Ok(self.refresh(req, plan, &wanted, pi, held)),
                Err(_) => {
                    self.release(&req.key);
                }
            }
        }

        let (pi, ips) = if !wanted.is_empty() {
            (self.check_specific(req, &wanted)?, wanted)
        } else if let Some(name) = &req.requested_pool {
            let pi = self.pool_index(name)?;
            if !self.pools[pi].allows(req) {
                return Err(AllocationError::PoolNotAllowedForService { pool: name.clone() });
            }
            match self.choose(req, plan, &[pi]) {
                Some(found) => found,
                None => return Err(self.pool_failure(pi, plan)),
            }
        } else {
            let candidates = self.auto_pools(req);
            match self.choose(req, plan, &candidates) {
                Some(found) => found,
                None => {
                    let tried = candidates
                        .iter()
                        .map(|&i| self.pools[i].pool.name.clone())
                        .collect();
                    return Err(match plan {
                        FamilyPlan::Single(f) => AllocationError::NoAvailableAddress {
                            wanted: f.to_string(),
                            tried,
                        },
                        FamilyPlan::Dual { .. } => AllocationError::NoDualStackPool { tried },
                        FamilyPlan::PreferDual { primary } => AllocationError::NoAvailableAddress {
                            wanted: format!("{primary} or {}", primary.other()),
                            tried,
                        },
                    });
                }
            }
        };
        Ok(self.place(req, pi, ips))
    }

    /// Releases everything the Service holds; returns what it held.
    pub fn release(&mut self, key: &ServiceKey) -> Option<Assignment> {
        let holding = self.services.remove(key)?;
        for ip in &holding.ips {
            let now_free = match self.users.get_mut(ip) {
                Some(users) => {
                    users.retain(|u| **u != *key);
                    users.is_empty()
                }
                None => false,
            };
            if now_free {
                self.users.remove(ip);
                if let Some(k) = holding.sharing_key()
                    && let Some(set) = self.shared.get_mut(k)
                {
                    set.remove(ip);
                    if set.is_empty() {
                        self.shared.remove(k);
                    }
                }
                if let Some((pi, bi)) = self.locate(*ip) {
                    let p = &mut self.pools[pi];
                    if p.blocks[bi].mark_free(*ip) {
                        p.open[fam_idx(p.blocks[bi].family())].insert(bi);
                    }
                }
            }
        }
        Some(holding.assignment())
    }

    /// What the Service holds, if anything.
    pub fn assignment(&self, key: &ServiceKey) -> Option<Assignment> {
        self.services.get(key).map(Holding::assignment)
    }

    /// Every holding, sorted by Service.
    pub fn assignments(&self) -> Vec<(&ServiceKey, Assignment)> {
        let mut all: Vec<_> = self
            .services
            .iter()
            .map(|(k, h)| (&**k, h.assignment()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all
    }

    /// How many Services hold addresses.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether no Service holds addresses.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The Services holding an address (sorted; empty if free).
    pub fn holders(&self, ip: IpAddr) -> Vec<&ServiceKey> {
        self.users
            .get(&ip)
            .map(|users| users.iter().map(|k| &**k).collect())
            .unwrap_or_default()
    }

    /// The pool whose blocks contain the address (whether or not it is assignable).
    pub fn pool_of(&self, ip: IpAddr) -> Option<&str> {
        self.locate(ip)
            .map(|(pi, _)| self.pools[pi].pool.name.as_str())
    }

    /// The pools, sorted by name.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.pools.iter().map(|p| &p.pool)
    }

    /// Exact counts of a pool; `None` if there is no such pool.
    pub fn counts(&self, pool: &str) -> Option<PoolCounts> {
        self.pool_index(pool).ok().map(|pi| self.pools[pi].counts())
    }

    // ---- internals -------------------------------------------------------------------------

    fn pool_index(&self, name: &str) -> Result<usize, AllocationError> {
        self.pools
            .binary_search_by(|p| p.pool.name.as_str().cmp(name))
            .map_err(|_| AllocationError::UnknownPool {
                pool: name.to_string(),
            })
    }

    /// The (pool, block) whose block contains the address.
    fn locate(&self, ip: IpAddr) -> Option<(usize, usize)> {
        let (family, n) = to_u128(ip);
        let (_, &(pi, bi)) = self.index.range(..=(family, n)).next_back()?;
        self.pools[pi].blocks[bi].contains(ip).then_some((pi, bi))
    }

    /// The one pool in which all the addresses are assignable.
    fn resolve_pool(&self, ips: &[IpAddr]) -> Result<usize, AllocationError> {
        let mut found: Option<(usize, IpAddr)> = None;
        for &ip in ips {
            let Some((pi, bi)) = self.locate(ip) else {
                return Err(AllocationError::AddressNotInAnyPool { ip });
            };
            if !self.pools[pi].blocks[bi].is_assignable(ip) {
                return Err(AllocationError::BuggyAddress {
                    ip,
                    pool: self.pools[pi].pool.name.clone(),
                });
            }
            match found {
                Some((other, a)) if other != pi => {
                    return Err(AllocationError::AddressesInDifferentPools {
                        a,
                        pool_a: self.pools[other].pool.name.clone(),
                        b: ip,
                        pool_b: self.pools[pi].pool.name.clone(),
                    });
                }
                Some(_) => {}
                None => found = Some((pi, ip)),
            }
        }
        found.map(|(pi, _)| pi).ok_or(AllocationError::NoIpFamilies)
    }

    /// Whether this Service may use these exact addresses: one pool, the requested one if any,
    /// allowed by `serviceAllocation`, and shareable with every other holder.
    fn check_specific(
        &self,
        req: &ServiceRequest,
        ips: &[IpAddr],
    ) -> Result<usize, AllocationError> {
        let pi = self.resolve_pool(ips)?;
        let name = &self.pools[pi].pool.name;
        if let Some(requested) = &req.requested_pool
            && requested != name
        {
            self.pool_index(requested)?;
            return Err(AllocationError::AddressNotInRequestedPool {
                ip: ips.first().copied().ok_or(AllocationError::NoIpFamilies)?,
                actual: name.clone(),
                requested: requested.clone(),
            });
        }
        if !self.pools[pi].allows(req) {
            return Err(AllocationError::PoolNotAllowedForService { pool: name.clone() });
        }
        for &ip in ips {
            self.check_sharing(ip, req)?;
        }
        Ok(pi)
    }

    /// Whether addresses the Service holds (or claims) still satisfy its request.
    fn check_held(
        &self,
        req: &ServiceRequest,
        plan: FamilyPlan,
        wanted: &[IpAddr],
        held: &[IpAddr],
    ) -> Result<usize, AllocationError> {
        if !wanted.is_empty() && !same_set(wanted, held) {
            return Err(AllocationError::HeldAddressesNotRequested {
                held: held.to_vec(),
                requested: wanted.to_vec(),
            });
        }
        if !plan.fits(held) {
            return Err(AllocationError::HeldFamilyMismatch {
                held: held.to_vec(),
                policy: req.ip_family_policy,
                families: req.ip_families.clone(),
            });
        }
        self.check_specific(req, held)
    }

    /// May `req` use `ip` alongside its current holders (other than itself)?
    fn check_sharing(&self, ip: IpAddr, req: &ServiceRequest) -> Result<(), AllocationError> {
        let Some(users) = self.users.get(&ip) else {
            return Ok(());
        };
        for holder in users.iter().filter(|u| ***u != req.key) {
            let Some(h) = self.services.get(&**holder) else {
                continue;
            };
            if let Some(conflict) = sharing_conflict(h, req) {
                return Err(AllocationError::AddressInUse {
                    ip,
                    holder: ServiceKey::clone(holder),
                    conflict,
                });
            }
        }
        Ok(())
    }

    /// Pools to try for automatic allocation, in order (see the module doc).
    fn auto_pools(&self, req: &ServiceRequest) -> Vec<usize> {
        let mut pinned: Vec<usize> = Vec::new();
        let mut others: Vec<usize> = Vec::new();
        for (i, p) in self.pools.iter().enumerate() {
            if !p.pool.auto_assign {
                continue;
            }
            if p.restricts() {
                if p.allows(req) {
                    pinned.push(i);
                }
            } else {
                others.push(i);
            }
        }
        // Stable sorts over name-sorted indices: ties stay in name order.
        pinned.sort_by_key(|&i| self.pools[i].priority_rank());
        others.sort_by_key(|&i| self.pools[i].priority_rank());
        pinned.extend(others);
        pinned
    }

    /// MetalLB's pool choice: the first pool giving what the plan needs; for PreferDualStack
    /// without any dual pool, the first pool with the primary family, else the first with the
    /// other one.
    fn choose(
        &self,
        req: &ServiceRequest,
        plan: FamilyPlan,
        candidates: &[usize],
    ) -> Option<(usize, Vec<IpAddr>)> {
        let mut first_primary = None;
        let mut first_secondary = None;
        for &pi in candidates {
            match plan {
                FamilyPlan::Single(f) => {
                    if let Some(ip) = self.candidate(pi, f, req) {
                        return Some((pi, vec![ip]));
                    }
                }
                FamilyPlan::Dual { primary } => {
                    if let (Some(a), Some(b)) = (
                        self.candidate(pi, primary, req),
                        self.candidate(pi, primary.other(), req),
                    ) {
                        return Some((pi, vec![a, b]));
                    }
                }
                FamilyPlan::PreferDual { primary } => {
                    let a = self.candidate(pi, primary, req);
                    let b = self.candidate(pi, primary.other(), req);
                    match (a, b) {
                        (Some(a), Some(b)) => return Some((pi, vec![a, b])),
                        (Some(a), None) => {
                            first_primary.get_or_insert((pi, vec![a]));
                        }
                        (None, Some(b)) => {
                            first_secondary.get_or_insert((pi, vec![b]));
                        }
                        (None, None) => {}
                    }
                }
            }
        }
        first_primary.or(first_secondary)
    }

    /// The first address of the family in the pool that is free or shareable with `req`
    /// (MetalLB's first fit: block order, then address order). O(log used) for the free part,
    /// plus one check per address already shared under the Service's sharing key.
    fn candidate(&self, pi: usize, family: IpFamily, req: &ServiceRequest) -> Option<IpAddr> {
        let p = &self.pools[pi];
        let mut best: Option<(usize, u128, IpAddr)> = p.open[fam_idx(family)]
            .first()
            .and_then(|&bi| p.blocks[bi].first_free().map(|ip| (bi, to_u128(ip).1, ip)));
        if !req.sharing_key.is_empty()
            && let Some(set) = self.shared.get(&req.sharing_key)
        {
            for &ip in set {
                if IpFamily::of(ip) != family {
                    continue;
                }
                let Some((pj, bi)) = self.locate(ip) else {
                    continue;
                };
                let rank = (bi, to_u128(ip).1);
                if pj != pi || best.is_some_and(|(b, n, _)| (b, n) <= rank) {
                    continue;
                }
                if self.check_sharing(ip, req).is_ok() {
                    best = Some((rank.0, rank.1, ip));
                }
            }
        }
        best.map(|(_, _, ip)| ip)
    }

    /// The error for a requested pool that could not serve the plan.
    fn pool_failure(&self, pi: usize, plan: FamilyPlan) -> AllocationError {
        let p = &self.pools[pi];
        let pool = p.pool.name.clone();
        let needed: Vec<IpFamily> = match plan {
            FamilyPlan::Single(f) => vec![f],
            FamilyPlan::Dual { primary } => vec![primary, primary.other()],
            FamilyPlan::PreferDual { primary } => {
                // Either family would have done: report the primary one.
                if !p.has[0] && !p.has[1] {
                    vec![primary]
                } else {
                    return AllocationError::PoolExhausted {
                        pool,
                        family: primary,
                    };
                }
            }
        };
        for &f in &needed {
            if !p.has[fam_idx(f)] {
                return AllocationError::FamilyNotInPool { pool, family: f };
            }
        }
        let family = needed
            .iter()
            .copied()
            .find(|&f| p.open[fam_idx(f)].is_empty())
            .unwrap_or(needed[0]);
        AllocationError::PoolExhausted { pool, family }
    }

    /// Keeps a valid holding: updates ports and keys, and adds the missing family of a
    /// PreferDualStack Service when its pool now has one.
    fn refresh(
        &mut self,
        req: &ServiceRequest,
        plan: FamilyPlan,
        wanted: &[IpAddr],
        pi: usize,
        mut ips: Vec<IpAddr>,
    ) -> Assignment {
        self.release(&req.key);
        if let (FamilyPlan::PreferDual { primary }, [only], true) =
            (plan, &ips[..], wanted.is_empty())
        {
            let have = IpFamily::of(*only);
            if let Some(extra) = self.candidate(pi, have.other(), req) {
                ips.push(extra);
                if have != primary {
                    ips.reverse();
                }
            }
        }
        self.place(req, pi, ips)
    }

    /// Records a checked holding.
    fn place(&mut self, req: &ServiceRequest, pi: usize, ips: Vec<IpAddr>) -> Assignment {
        let sharing = (!req.sharing_key.is_empty()).then(|| {
            Box::new(Sharing {
                key: req.sharing_key.clone(),
                backend: req.backend_key.clone(),
                ports: req.ports.clone(),
            })
        });
        let holding = Holding {
            pool: Arc::clone(&self.pools[pi].name),
            ips: ips.into_boxed_slice(),
            sharing,
        };
        let assignment = holding.assignment();
        self.insert_holding(Arc::new(req.key.clone()), holding, pi);
        assignment
    }

    fn insert_holding(&mut self, key: Arc<ServiceKey>, holding: Holding, pi: usize) {
        for &ip in &holding.ips {
            let users = self.users.entry(ip).or_default();
            if let Err(pos) = users.binary_search(&key) {
                users.insert(pos, Arc::clone(&key));
            }
            if let Some(k) = holding.sharing_key() {
                match self.shared.get_mut(k) {
                    Some(set) => {
                        set.insert(ip);
                    }
                    None => {
                        self.shared.insert(k.to_string(), BTreeSet::from([ip]));
                    }
                }
            }
            if let Some((pj, bi)) = self.locate(ip)
                && pj == pi
            {
                let p = &mut self.pools[pi];
                if p.blocks[bi].mark_used(ip) && p.blocks[bi].is_full() {
                    p.open[fam_idx(p.blocks[bi].family())].remove(&bi);
                }
            }
        }
        self.services.insert(key, holding);
    }
}

/// Why `req` may not share an address with the holder `h`, if it may not.
fn sharing_conflict(h: &Holding, req: &ServiceRequest) -> Option<SharingConflict> {
    let Some(held) = &h.sharing else {
        return Some(SharingConflict::HolderDoesNotShare);
    };
    if req.sharing_key.is_empty() {
        return Some(SharingConflict::RequesterDoesNotShare);
    }
    if held.key != req.sharing_key {
        return Some(SharingConflict::DifferentSharingKey {
            holder: held.key.clone(),
            requester: req.sharing_key.clone(),
        });
    }
    if held.backend != req.backend_key {
        return Some(SharingConflict::DifferentBackend {
            holder: held.backend.clone(),
            requester: req.backend_key.clone(),
        });
    }
    req.ports
        .iter()
        .find(|p| held.ports.contains(p))
        .map(|&port| SharingConflict::PortInUse { port })
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    let a: BTreeSet<_> = a.iter().collect();
    let b: BTreeSet<_> = b.iter().collect();
    a == b
}

type PoolIndex = BTreeMap<(IpFamily, u128), (usize, usize)>;

/// Validates and builds pool states (sorted by name) and the block index.
fn build_pools(mut pools: Vec<Pool>) -> Result<(Vec<PoolState>, PoolIndex), PoolError> {
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = pools.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(PoolError::DuplicateName(w[0].name.clone()));
    }
    let mut states = Vec::with_capacity(pools.len());
    for pool in pools {
        let mut blocks = Vec::with_capacity(pool.ranges.len());
        for r in &pool.ranges {
            let (start, end) = r.bounds();
            if IpFamily::of(start) != IpFamily::of(end) {
                return Err(PoolError::MixedFamilies {
                    pool: pool.name.clone(),
                    start,
                    end,
                });
            }
            if start > end {
                return Err(PoolError::StartAfterEnd {
                    pool: pool.name.clone(),
                    start,
                    end,
                });
            }
            let block = AddressBlock::new(start, end, pool.avoid_buggy_ips)
                .ok_or_else(|| PoolError::TooLarge(pool.name.clone()))?;
            blocks.push(block);
        }
        let mut open = [BTreeSet::new(), BTreeSet::new()];
        let mut has = [false, false];
        let mut totals = [0u128, 0u128];
        for (i, b) in blocks.iter().enumerate() {
            let f = fam_idx(b.family());
            has[f] = true;
            totals[f] = totals[f]
                .checked_add(b.capacity())
                .ok_or_else(|| PoolError::TooLarge(pool.name.clone()))?;
            if !b.is_full() {
                open[f].insert(i);
            }
        }
        totals[0]
            .checked_add(totals[1])
            .ok_or_else(|| PoolError::TooLarge(pool.name.clone()))?;
        states.push(PoolState {
            name: Arc::from(pool.name.as_str()),
            pool,
            blocks,
            open,
            has,
        });
    }
    let mut index = PoolIndex::new();
    for (pi, p) in states.iter().enumerate() {
        for (bi, b) in p.blocks.iter().enumerate() {
            let (family, first) = to_u128(b.first());
            index.insert((family, first), (pi, bi));
        }
    }
    // Blocks sorted by start: any overlap shows between neighbours (a block starting at the
    // same address as another replaced it in the map, so compare against all blocks).
    let mut all: Vec<(IpFamily, u128, u128, usize)> = states
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| {
            p.blocks.iter().map(move |b| {
                let (f, s) = to_u128(b.first());
                (f, s, to_u128(b.last()).1, pi)
            })
        })
        .collect();
    all.sort();
    let mut reach: Option<(IpFamily, u128, usize)> = None;
    for &(f, s, e, pi) in &all {
        if let Some((rf, re, rpi)) = reach
            && rf == f
            && s <= re
        {
            return Err(PoolError::Overlap {
                pool_a: states[rpi].pool.name.clone(),
                pool_b: states[pi].pool.name.clone(),
                at: crate::block::from_u128(f, s),
            });
        }
        if reach.is_none_or(|(rf, re, _)| rf != f || e > re) {
            reach = Some((f, e, pi));
        }
    }
    Ok((states, index))
}
