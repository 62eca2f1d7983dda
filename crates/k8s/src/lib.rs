//! Kubernetes client plumbing shared by ironlb's controller and speaker.
//!
//! ```text
//!   stores   watches + reflector stores of the metallb.io kinds, Secrets, Namespaces -> Objects
//!   service  Service -> ServiceInfo -> allocator::ServiceRequest; the status patch (pure)
//!   status   ConfigurationState and IPAddressPool status writers
//!   events   Events in the background (reporter metallb-controller)
//!   metrics  metallb_k8s_client_* and metallb_allocator_* (prometheus-client)
//! ```
//!
//! Everything that decides is elsewhere (allocator, config); this crate only moves objects
//! between the API server and those pure crates.

// AllocationError (the allocator's, passed through unchanged) is large; boxing it here would only
// move the allocation.
#![allow(clippy::result_large_err)]

pub mod events;
pub mod metrics;
pub mod runtime;
pub mod service;
pub mod status;
pub mod stores;

/// Resolves when the process is asked to stop (SIGTERM, as Kubernetes sends, or Ctrl-C).
/// Shared by the controller and the speaker so both shut down the same way.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

pub use service::ServiceInfo;
pub use stores::{Change, ConfigStores, fetch_node_labels, fetch_objects};
