//! The controller's decisions, free of I/O: Services and configuration in, [`Action`]s out.
//!
//! ```text
//!   ServiceInfo (watch) --upsert/remove-->  State { allocator, services, written }  --> Vec<Action>
//!   Config (valid)      --start/set_config-->                                          Write | Event
//! ```
//!
//! Nothing is decided before [`State::start`]: at start-up every existing assignment is
//! restored into the allocator (oldest Service first) before anything new is handed out, so a
//! restart never moves or duplicates an address.
//!
//! A failure to allocate is reported (`AllocationFailed`) only once it has lasted
//! [`FAILURE_GRACE`] ([`State::due_failures`]): a Service applied together with its pool is
//! often seen an instant before the pool (two watches), and a user reading Events should not
//! see a failure that never was.

use ironlb_allocator::{Allocator, Claim, ServiceKey};
use ironlb_config::Config;
use ironlb_k8s::ServiceInfo;
use ironlb_k8s::metrics::PoolFigures;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long an allocation failure must last before it is reported. Longer than the skew
/// between the Service watch and the configuration watches plus one configuration rebuild.
pub const FAILURE_GRACE: Duration = Duration::from_secs(1);

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Informational.
    Normal,
    /// Something is wrong.
    Warning,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Set the Service's addresses and pool annotation (empty `ips`: clear both).
    Write {
        /// The Service.
        key: ServiceKey,
        /// Its uid (a precondition of the write).
        uid: String,
        /// The addresses.
        ips: Vec<IpAddr>,
        /// The pool they come from.
        pool: Option<String>,
    },
    /// Publish an Event about the Service.
    Event {
        /// The Service.
        key: ServiceKey,
        /// Its uid.
        uid: String,
        /// Normal or Warning.
        type_: EventType,
        /// MetalLB's reason.
        reason: &'static str,
        /// The message.
        note: String,
    },
}

/// Namespace name -> labels.
pub type NamespaceLabels<'a> = &'a dyn Fn(&str) -> BTreeMap<String, String>;

/// What the controller knows and holds.
#[derive(Debug, Default)]
pub struct State {
    lb_class: Option<String>,
    allocator: Allocator,
    /// Services that are (or were) LoadBalancers or carry our annotation.
    /// Boxed: the map's table then holds a pointer per slot, not a whole `ServiceInfo`
    /// (about 400 bytes) for every slot, used or empty, and growing it copies little.
    services: HashMap<ServiceKey, Box<ServiceInfo>>,
    /// What we last asked to write and have not yet seen come back: (ips, pool).
    written: HashMap<ServiceKey, (Vec<IpAddr>, Option<String>)>,
    /// The configuration in use (the last valid one).
    config: Option<Config>,
    started: bool,
    warned_deprecated: HashSet<ServiceKey>,
    last_failure: HashMap<ServiceKey, String>,
    /// Failures not reported yet (their note is in `last_failure`; see [`FAILURE_GRACE`]), and
    /// when [`State::due_failures`] first saw each.
    pending_failures: HashMap<ServiceKey, Option<Instant>>,
    pools_dirty: bool,
    /// Addresses were freed since the last [`State::retry_failed`].
    freed: bool,
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

impl State {
    /// A controller that handles Services of class `lb_class` (None: Services without a class).
    pub fn new(lb_class: Option<String>) -> Self {
        State {
            lb_class,
            ..Default::default()
        }
    }

    /// Whether [`State::start`] has run.
    pub fn started(&self) -> bool {
        self.started
    }

    /// The configuration in use.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// Keys of every Service known.
    pub fn keys(&self) -> Vec<ServiceKey> {
        self.services.keys().cloned().collect()
    }

    /// Keys of the known Services in a namespace.
    pub fn keys_in(&self, namespace: &str) -> Vec<ServiceKey> {
        self.services
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect()
    }

    /// Takes "pool counts changed" (for metrics and IPAddressPool status).
    pub fn take_pools_dirty(&mut self) -> bool {
        std::mem::take(&mut self.pools_dirty)
    }

    /// Counts of every pool.
    pub fn pool_figures(&self) -> Vec<(String, PoolFigures)> {
        self.allocator
            .pools()
            .filter_map(|p| {
                let c = self.allocator.counts(&p.name)?;
                Some((
                    p.name.clone(),
                    PoolFigures {
                        total_v4: c.total_v4,
                        total_v6: c.total_v6,
                        in_use_v4: c.in_use_v4,
                        in_use_v6: c.in_use_v6,
                    },
                ))
            })
            .collect()
    }

    /// A Service was added or changed.
    pub fn upsert(&mut self, info: ServiceInfo, ns: NamespaceLabels<'_>) -> Vec<Action> {
        let key = info.key.clone();
        if let Some(old) = self.services.get(&key)
            && old.uid != info.uid
        {
            // Deleted and re-created while we were not looking.
            let mut acts = self.remove(&key);
            acts.extend(self.upsert(info, ns));
            return acts;
        }
        if let Some((ips, pool)) = self.written.get(&key)
            && same_set(ips, &info.status_ips)
            && pool == &info.allocated_from_pool
        {
            self.written.remove(&key);
        }
        let keep = info.is_load_balancer
            || info.allocated_from_pool.is_some()
            || self.allocator.assignment(&key).is_some();
        if !keep {
            self.services.remove(&key);
            self.written.remove(&key);
            return Vec::new();
        }
        self.services.insert(key.clone(), Box::new(info));
        if self.started {
            self.reconcile(&key, ns)
        } else {
            Vec::new()
        }
    }

    /// A Service was deleted: its addresses are free again.
    pub fn remove(&mut self, key: &ServiceKey) -> Vec<Action> {
        self.services.remove(key);
        self.written.remove(key);
        self.warned_deprecated.remove(key);
        self.last_failure.remove(key);
        self.pending_failures.remove(key);
        if self.allocator.release(key).is_some() {
            self.pools_dirty = true;
            self.freed = true;
        }
        Vec::new()
    }

    /// If addresses were freed since the last call, processes again the Services whose
    /// allocation failed (one may now fit).
    pub fn retry_failed(&mut self, ns: NamespaceLabels<'_>) -> Vec<Action> {
        if !std::mem::take(&mut self.freed) {
            return Vec::new();
        }
        let mut keys: Vec<ServiceKey> = self.last_failure.keys().cloned().collect();
        keys.sort();
        let mut acts = Vec::new();
        for key in keys {
            acts.extend(self.reconcile(&key, ns));
        }
        acts
    }

    /// A write failed for good: forget it, so the next reconcile writes again.
    pub fn write_failed(&mut self, key: &ServiceKey) {
        self.written.remove(key);
    }

    /// Starts allocating with the first valid configuration: restores every existing
    /// assignment, then processes every Service.
    pub fn start(&mut self, config: Config, ns: NamespaceLabels<'_>) -> Vec<Action> {
        let mut acts = Vec::new();
        if let Err(e) = self.allocator.set_pools(config.pools.clone()) {
            // build() validated the pools; a refusal here is a bug, not a user error.
            tracing::error!(error = %e, "allocator refused validated pools");
            return acts;
        }
        self.config = Some(config);
        let mut claims = Vec::new();
        for info in self.services.values() {
            if !info.is_ours(self.lb_class.as_deref()) || info.status_ips.is_empty() {
                continue;
            }
            if let Ok(request) = info.request(&ns(&info.key.namespace)) {
                claims.push(Claim {
                    request,
                    ips: info.status_ips.clone(),
                    created: info.created,
                });
            }
        }
        let report = self.allocator.restore(claims);
        tracing::info!(
            restored = report.restored.len(),
            rejected = report.rejected.len(),
            "restored existing assignments"
        );
        for inv in report.rejected {
            if let Some(info) = self.services.get(&inv.service) {
                acts.push(clear_event(info, &inv.ips, &inv.reason.to_string()));
            }
        }
        self.started = true;
        self.pools_dirty = true;
        acts.extend(self.reprocess_all(ns));
        acts
    }

    /// A new valid configuration: pools are replaced, holdings outside them are cleared
    /// (`ClearAssignment`), and every Service is processed again.
    pub fn set_config(&mut self, config: Config, ns: NamespaceLabels<'_>) -> Vec<Action> {
        if self.config.as_ref() == Some(&config) {
            return Vec::new();
        }
        if !self.started {
            return self.start(config, ns);
        }
        let mut acts = Vec::new();
        match self.allocator.set_pools(config.pools.clone()) {
            Ok(update) => {
                for inv in update.invalidated {
                    if let Some(info) = self.services.get(&inv.service) {
                        acts.push(clear_event(info, &inv.ips, &inv.reason.to_string()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "allocator refused validated pools");
                return acts;
            }
        }
        self.config = Some(config);
        self.pools_dirty = true;
        acts.extend(self.reprocess_all(ns));
        acts
    }

    /// Processes every Service: those holding addresses first (so they keep them), then the
    /// others oldest first.
    pub fn reprocess_all(&mut self, ns: NamespaceLabels<'_>) -> Vec<Action> {
        let mut keys: Vec<(bool, i64, ServiceKey)> = self
            .services
            .values()
            .map(|i| {
                (
                    self.allocator.assignment(&i.key).is_none(),
                    i.created,
                    i.key.clone(),
                )
            })
            .collect();
        keys.sort();
        let mut acts = Vec::new();
        for (_, _, key) in keys {
            acts.extend(self.reconcile(&key, ns));
        }
        acts
    }

    /// Decides one Service.
    pub fn reconcile(&mut self, key: &ServiceKey, ns: NamespaceLabels<'_>) -> Vec<Action> {
        let mut acts = Vec::new();
        if !self.started {
            return acts;
        }
        let Some(info) = self.services.get(key) else {
            return acts;
        };
        let info = info.clone();
        if !info.is_ours(self.lb_class.as_deref()) {
            self.last_failure.remove(key);
            self.pending_failures.remove(key);
            let held = self.allocator.release(key);
            if held.is_some() {
                self.pools_dirty = true;
                self.freed = true;
            }
            // Clear what we wrote: the annotation always, the addresses if we gave them (a
            // Service that changed class may belong to another load balancer now).
            if held.is_some() || info.allocated_from_pool.is_some() {
                let ips = if info.is_load_balancer && held.is_none() {
                    info.status_ips.clone()
                } else {
                    Vec::new()
                };
                self.write(&info, ips, None, &mut acts);
            }
            if !info.is_load_balancer {
                self.services.remove(key);
            }
            return acts;
        }
        if !info.deprecated.is_empty() && self.warned_deprecated.insert(key.clone()) {
            for old in &info.deprecated {
                let new = ironlb_k8s::service::DEPRECATED_ANNOTATIONS
                    .iter()
                    .find(|(o, _)| o == old)
                    .map(|(_, n)| *n)
                    .unwrap_or_default();
                acts.push(Action::Event {
                    key: key.clone(),
                    uid: info.uid.clone(),
                    type_: EventType::Warning,
                    reason: "deprecatedAnnotation",
                    note: format!("annotation {old} is deprecated, please use {new}"),
                });
            }
        }
        let before = self.allocator.assignment(key).map(|a| a.ips.clone());
        let result = info
            .request(&ns(&key.namespace))
            .and_then(|req| self.allocator.assign(&req));
        self.pools_dirty = true;
        let after = self.allocator.assignment(key).map(|a| a.ips.clone());
        if let Some(before) = before
            && after.is_none_or(|a| before.iter().any(|ip| !a.contains(ip)))
        {
            self.freed = true;
        }
        match result {
            Ok(a) => {
                self.last_failure.remove(key);
                self.pending_failures.remove(key);
                let (cur_ips, _) = self.current(&info);
                if !same_set(&cur_ips, &a.ips) {
                    acts.push(Action::Event {
                        key: key.clone(),
                        uid: info.uid.clone(),
                        type_: EventType::Normal,
                        reason: "IPAllocated",
                        note: format!(
                            "Assigned IP {:?}",
                            a.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>()
                        ),
                    });
                }
                self.write(&info, a.ips, Some(a.pool), &mut acts);
            }
            Err(e) => {
                let note = format!("Failed to allocate IP for \"{key}\": {e}");
                if self.last_failure.get(key) != Some(&note) {
                    self.last_failure.insert(key.clone(), note);
                    self.pending_failures.entry(key.clone()).or_insert(None);
                }
                self.write(&info, Vec::new(), None, &mut acts);
            }
        }
        acts
    }

    /// The `AllocationFailed` Events of failures that have lasted `grace` (the runtime calls
    /// this on its tick with [`FAILURE_GRACE`]). A failure is first stamped with `now`, then
    /// reported on a later call; a Service that got its address in between is never reported.
    pub fn due_failures(&mut self, now: Instant, grace: Duration) -> Vec<Action> {
        let mut due: Vec<ServiceKey> = Vec::new();
        for (key, seen) in &mut self.pending_failures {
            match *seen {
                None => *seen = Some(now),
                Some(seen) if now.saturating_duration_since(seen) >= grace => due.push(key.clone()),
                Some(_) => {}
            }
        }
        due.sort();
        due.into_iter()
            .filter_map(|key| {
                self.pending_failures.remove(&key)?;
                let note = self.last_failure.get(&key)?.clone();
                let uid = self.services.get(&key)?.uid.clone();
                Some(Action::Event {
                    key,
                    uid,
                    type_: EventType::Warning,
                    reason: "AllocationFailed",
                    note,
                })
            })
            .collect()
    }

    /// What the Service has (or will have once our pending write lands).
    fn current(&self, info: &ServiceInfo) -> (Vec<IpAddr>, Option<String>) {
        match self.written.get(&info.key) {
            Some(w) => w.clone(),
            None => (info.status_ips.clone(), info.allocated_from_pool.clone()),
        }
    }

    fn write(
        &mut self,
        info: &ServiceInfo,
        ips: Vec<IpAddr>,
        pool: Option<String>,
        acts: &mut Vec<Action>,
    ) {
        let (cur_ips, cur_pool) = self.current(info);
        // Hostname entries in status are not ours to keep when we assign addresses.
        if (ips.is_empty() || !info.status_other) && cur_pool == pool && same_set(&cur_ips, &ips) {
            return;
        }
        self.written
            .insert(info.key.clone(), (ips.clone(), pool.clone()));
        acts.push(Action::Write {
            key: info.key.clone(),
            uid: info.uid.clone(),
            ips,
            pool,
        });
    }
}

fn clear_event(info: &ServiceInfo, ips: &[IpAddr], reason: &str) -> Action {
    Action::Event {
        key: info.key.clone(),
        uid: info.uid.clone(),
        type_: EventType::Warning,
        reason: "ClearAssignment",
        note: format!(
            "current IP {:?} not allowed by config, clearing: {reason}",
            ips.iter().map(|i| i.to_string()).collect::<Vec<_>>()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ironlb_allocator::{AddressRange, Pool};

    fn mk_config(range: (&str, &str)) -> Config {
        Config {
            pools: vec![Pool {
                name: "p".into(),
                ranges: vec![AddressRange::Range {
                    start: range.0.parse().unwrap(),
                    end: range.1.parse().unwrap(),
                }],
                auto_assign: true,
                avoid_buggy_ips: false,
                service_allocation: None,
            }],
            ..Default::default()
        }
    }

    fn mk_info(name: &str, created: i64, status: &[&str]) -> ServiceInfo {
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"], "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": status.iter().map(|ip| serde_json::json!({"ip": ip})).collect::<Vec<_>>()}},
        }))
        .unwrap();
        let mut info = ServiceInfo::from_service(&svc);
        info.created = created;
        info
    }

    fn no_labels(_: &str) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn writes(acts: &[Action]) -> Vec<(String, Vec<IpAddr>)> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Write { key, ips, .. } => Some((key.name.clone(), ips.clone())),
                _ => None,
            })
            .collect()
    }

    fn reasons(acts: &[Action], name: &str) -> Vec<&'static str> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Event { key, reason, .. } if key.name == name => Some(*reason),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn nothing_happens_before_start() {
        let mut st = State::new(None);
        assert!(st.upsert(mk_info("a", 1, &[]), &no_labels).is_empty());
    }

    #[test]
    fn existing_assignments_are_restored_before_new_ones() {
        let mut st = State::new(None);
        // "new" sorts first and is oldest, but has no address: it must not take .150.
        st.upsert(mk_info("new", 0, &[]), &no_labels);
        st.upsert(mk_info("old", 5, &["10.0.0.150"]), &no_labels);
        let acts = st.start(mk_config(("10.0.0.150", "10.0.0.160")), &no_labels);
        let w = writes(&acts);
        // "old" already has its address and pool annotation is missing: one write of the same
        // address (annotation only); "new" gets .151.
        assert!(w.contains(&("old".into(), vec!["10.0.0.150".parse().unwrap()])));
        assert!(w.contains(&("new".into(), vec!["10.0.0.151".parse().unwrap()])));
        assert!(
            reasons(&acts, "old").is_empty(),
            "no IPAllocated for a kept address"
        );
        assert_eq!(reasons(&acts, "new"), vec!["IPAllocated"]);
    }

    #[test]
    fn of_two_claims_the_older_wins() {
        let mut st = State::new(None);
        st.upsert(mk_info("young", 10, &["10.0.0.150"]), &no_labels);
        st.upsert(mk_info("elder", 1, &["10.0.0.150"]), &no_labels);
        let acts = st.start(mk_config(("10.0.0.150", "10.0.0.160")), &no_labels);
        assert_eq!(
            reasons(&acts, "young"),
            vec!["ClearAssignment", "IPAllocated"]
        );
        assert!(writes(&acts).contains(&("young".into(), vec!["10.0.0.151".parse().unwrap()])));
    }

    #[test]
    fn leaving_load_balancer_releases_and_clears_the_annotation() {
        let mut st = State::new(None);
        st.start(mk_config(("10.0.0.150", "10.0.0.160")), &no_labels);
        let mut a = mk_info("a", 1, &["10.0.0.150"]);
        a.allocated_from_pool = Some("p".into());
        assert!(
            st.upsert(a.clone(), &no_labels).is_empty(),
            "already correct"
        );
        a.is_load_balancer = false;
        a.status_ips.clear();
        let acts = st.upsert(a, &no_labels);
        assert_eq!(writes(&acts), vec![("a".into(), vec![])]);
        // The address is free again.
        let acts = st.upsert(mk_info("b", 2, &[]), &no_labels);
        assert_eq!(
            writes(&acts),
            vec![("b".into(), vec!["10.0.0.150".parse().unwrap()])]
        );
    }

    #[test]
    fn failures_are_retried_when_addresses_free_up() {
        let mut st = State::new(None);
        st.start(mk_config(("10.0.0.150", "10.0.0.150")), &no_labels);
        st.upsert(mk_info("a", 1, &[]), &no_labels);
        let acts = st.upsert(mk_info("b", 2, &[]), &no_labels);
        assert!(
            reasons(&acts, "b").is_empty(),
            "reported only once it lasts"
        );
        let t0 = Instant::now();
        assert!(st.due_failures(t0, FAILURE_GRACE).is_empty(), "stamped");
        // The same failure again is not reported twice.
        assert!(st.upsert(mk_info("b", 2, &[]), &no_labels).is_empty());
        let acts = st.due_failures(t0 + FAILURE_GRACE, FAILURE_GRACE);
        assert_eq!(reasons(&acts, "b"), vec!["AllocationFailed"]);
        assert!(
            st.due_failures(t0 + FAILURE_GRACE * 2, FAILURE_GRACE)
                .is_empty()
        );
        st.remove(&ServiceKey::new("ns", "a"));
        let acts = st.retry_failed(&no_labels);
        assert_eq!(
            writes(&acts),
            vec![("b".into(), vec!["10.0.0.150".parse().unwrap()])]
        );
    }

    #[test]
    fn a_failure_that_ends_within_the_grace_is_never_reported() {
        // The Service is seen before the pool it needs (one `kubectl apply` of both).
        let mut st = State::new(None);
        st.start(mk_config(("10.0.0.150", "10.0.0.150")), &no_labels);
        st.upsert(mk_info("a", 1, &[]), &no_labels);
        let t0 = Instant::now();
        assert!(reasons(&st.upsert(mk_info("b", 2, &[]), &no_labels), "b").is_empty());
        assert!(st.due_failures(t0, FAILURE_GRACE).is_empty());
        // The pool grows before the grace is over: b gets its address, and no failure at all.
        let acts = st.set_config(mk_config(("10.0.0.150", "10.0.0.151")), &no_labels);
        assert_eq!(reasons(&acts, "b"), vec!["IPAllocated"]);
        assert!(
            st.due_failures(t0 + FAILURE_GRACE * 3, FAILURE_GRACE)
                .is_empty()
        );
        // A later failure of the same Service is reported as usual.
        st.remove(&ServiceKey::new("ns", "a"));
        st.remove(&ServiceKey::new("ns", "b"));
        st.upsert(mk_info("c", 3, &[]), &no_labels);
        st.upsert(mk_info("d", 4, &[]), &no_labels);
        st.upsert(mk_info("b", 5, &[]), &no_labels);
        let t1 = t0 + FAILURE_GRACE * 4;
        assert!(st.due_failures(t1, FAILURE_GRACE).is_empty());
        let acts = st.due_failures(t1 + FAILURE_GRACE, FAILURE_GRACE);
        assert_eq!(reasons(&acts, "b"), vec!["AllocationFailed"]);
    }
}
