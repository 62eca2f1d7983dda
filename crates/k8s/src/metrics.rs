//! Prometheus metrics shared by ironlb's components, with MetalLB's names.
//!
//! ```text
//!   Registry --+-- K8sClientMetrics  metallb_k8s_client_{updates_total, update_errors_total,
//!              |                                         config_loaded_bool, config_stale_bool}
//!              +-- PoolMetrics       metallb_allocator_{,ipv4_,ipv6_}addresses{,_in_use}_total{pool}
//!   encode(&Registry) -> text exposition for GET /metrics
//! ```

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use prometheus_client::registry::Registry as MetricsRegistry;

/// `metallb_k8s_client_*`: how writes to the API server and configuration loads went.
#[derive(Debug, Clone, Default)]
pub struct K8sClientMetrics {
    /// Writes (status updates) sent to the API server.
    pub updates: Counter,
    /// Writes that failed.
    pub update_errors: Counter,
    /// 1 once a valid configuration has been loaded.
    pub config_loaded: Gauge,
    /// 1 while the newest configuration is invalid and an older one is in use.
    pub config_stale: Gauge,
}

impl K8sClientMetrics {
    /// Creates the metrics and registers them (`metallb_k8s_client_*`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        // Counters get `_total` appended by the encoder.
        registry.register(
            "metallb_k8s_client_updates",
            "Number of k8s object updates that have been processed.",
            m.updates.clone(),
        );
        registry.register(
            "metallb_k8s_client_update_errors",
            "Number of k8s object updates that failed for some reason.",
            m.update_errors.clone(),
        );
        registry.register(
            "metallb_k8s_client_config_loaded_bool",
            "1 if the MetalLB configuration was successfully loaded at least once.",
            m.config_loaded.clone(),
        );
        registry.register(
            "metallb_k8s_client_config_stale_bool",
            "1 if running on a stale configuration, because the latest config failed to load.",
            m.config_stale.clone(),
        );
        m
    }
}

/// The `pool` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PoolLabel {
    /// The IPAddressPool's name.
    pub pool: String,
}

/// `metallb_allocator_*{pool}`: address counts per pool.
#[derive(Debug, Clone, Default)]
pub struct PoolMetrics {
    addresses: Family<PoolLabel, Gauge>,
    ipv4_addresses: Family<PoolLabel, Gauge>,
    ipv6_addresses: Family<PoolLabel, Gauge>,
    in_use: Family<PoolLabel, Gauge>,
    ipv4_in_use: Family<PoolLabel, Gauge>,
    ipv6_in_use: Family<PoolLabel, Gauge>,
}

/// Counts of one pool for [`PoolMetrics::set`] (u128, as the allocator counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// IPv4 addresses in the pool.
    pub total_v4: u128,
    /// IPv6 addresses in the pool.
    pub total_v6: u128,
    /// IPv4 addresses in use.
    pub in_use_v4: u128,
    /// IPv6 addresses in use.
    pub in_use_v6: u128,
}

/// A count as a gauge value: saturates at `i64::MAX` (a /64 pool has 2^64 addresses; MetalLB
/// overflows there, ironlb saturates).
pub fn saturate(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PoolMetrics {
    /// Creates the metrics and registers them (`metallb_allocator_*`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        for (name, help, fam) in [
            (
                "metallb_allocator_addresses_total",
                "Number of usable IP addresses, per pool",
                &m.addresses,
            ),
            (
                "metallb_allocator_ipv4_addresses_total",
                "Number of usable IPv4 addresses, per pool",
                &m.ipv4_addresses,
            ),
            (
                "metallb_allocator_ipv6_addresses_total",
                "Number of usable IPv6 addresses, per pool",
                &m.ipv6_addresses,
            ),
            (
                "metallb_allocator_addresses_in_use_total",
                "Number of IP addresses in use, per pool",
                &m.in_use,
            ),
            (
                "metallb_allocator_ipv4_addresses_in_use_total",
                "Number of IPv4 addresses in use, per pool",
                &m.ipv4_in_use,
            ),
            (
                "metallb_allocator_ipv6_addresses_in_use_total",
                "Number of IPv6 addresses in use, per pool",
                &m.ipv6_in_use,
            ),
        ] {
            registry.register(name, help, fam.clone());
        }
        m
    }

    /// Sets the gauges of one pool.
    pub fn set(&self, pool: &str, f: PoolFigures) {
        let l = PoolLabel {
            pool: pool.to_string(),
        };
        self.addresses
            .get_or_create(&l)
            .set(saturate(f.total_v4 + f.total_v6));
        self.ipv4_addresses
            .get_or_create(&l)
            .set(saturate(f.total_v4));
        self.ipv6_addresses
            .get_or_create(&l)
            .set(saturate(f.total_v6));
        self.in_use
            .get_or_create(&l)
            .set(saturate(f.in_use_v4 + f.in_use_v6));
        self.ipv4_in_use
            .get_or_create(&l)
            .set(saturate(f.in_use_v4));
        self.ipv6_in_use
            .get_or_create(&l)
            .set(saturate(f.in_use_v6));
    }

    /// Removes a pool that no longer exists.
    pub fn remove(&self, pool: &str) {
        let l = PoolLabel {
            pool: pool.to_string(),
        };
        for fam in [
            &self.addresses,
            &self.ipv4_addresses,
            &self.ipv6_addresses,
            &self.in_use,
            &self.ipv4_in_use,
            &self.ipv6_in_use,
        ] {
            fam.remove(&l);
        }
    }
}

/// The registry in Prometheus' text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_metallbs() {
        let mut r = Registry::default();
        let k = K8sClientMetrics::register(&mut r);
        let p = PoolMetrics::register(&mut r);
        k.updates.inc();
        p.set(
            "linuxnet",
            PoolFigures {
                total_v4: 31,
                in_use_v4: 1,
                ..Default::default()
            },
        );
        let text = encode(&r);
        assert!(
            text.contains("metallb_k8s_client_updates_total 1"),
            "{text}"
        );
        assert!(
            text.contains("metallb_allocator_addresses_total{pool=\"linuxnet\"} 31"),
            "{text}"
        );
        assert!(
            text.contains("metallb_allocator_ipv4_addresses_in_use_total{pool=\"linuxnet\"} 1")
        );
        p.remove("linuxnet");
        assert!(!encode(&r).contains("linuxnet"));
        assert_eq!(saturate(u128::MAX), i64::MAX);
    }
}
