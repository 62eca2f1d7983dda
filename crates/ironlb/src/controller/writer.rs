//! Writes Service addresses to the API server, many at a time, latest wins.
//!
//! ```text
//!   submit(key, patch) --> task waits for one of N permits --> still the latest for key?
//!                                                                 | yes: PATCH services/<name>/status
//!                                                                 v
//!                      ok -> metallb_k8s_client_updates_total    409 -> GET, Feedback::Fresh
//!                      404 -> nothing (Service gone)              other -> retry 4x, Feedback::Failed
//! ```
//!
//! One write per Service: the status subresource of a Service accepts the
//! `metallb.io/ip-allocated-from-pool` annotation together with `status.loadBalancer`. The
//! Service's uid is part of the patch, so a Service deleted and re-created under the same name
//! answers 409 instead of receiving the old one's address.

use ironlb_allocator::ServiceKey;
use ironlb_k8s::metrics::K8sClientMetrics;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// What a write reports back to the main loop.
#[derive(Debug)]
pub enum Feedback {
    /// The write failed for good: reconcile again.
    Failed(ServiceKey),
    /// The write conflicted; here is the Service as it is now (None: gone).
    Fresh(ServiceKey, Option<Box<Service>>),
}

/// The concurrent status writer.
#[derive(Clone)]
pub struct Writer {
    client: Client,
    latest: Arc<Mutex<HashMap<ServiceKey, u64>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
    permits: Arc<Semaphore>,
    feedback: mpsc::UnboundedSender<Feedback>,
    metrics: K8sClientMetrics,
}

impl Writer {
    /// A writer with `concurrency` writes in flight.
    pub fn new(
        client: Client,
        concurrency: usize,
        feedback: mpsc::UnboundedSender<Feedback>,
        metrics: K8sClientMetrics,
    ) -> Self {
        Writer {
            client,
            latest: Arc::default(),
            next: Arc::default(),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            feedback,
            metrics,
        }
    }

    /// Queues a write of `ips` / `pool` (empty / None: clear) for the Service.
    pub fn submit(&self, key: ServiceKey, uid: String, ips: Vec<IpAddr>, pool: Option<String>) {
        let generation = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut l) = self.latest.lock() {
            l.insert(key.clone(), generation);
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = this.permits.clone().acquire_owned().await else {
                return;
            };
            if !this.is_latest(&key, generation) {
                return;
            }
            this.write(&key, &uid, &ips, pool.as_deref()).await;
            if let Ok(mut l) = this.latest.lock()
                && l.get(&key) == Some(&generation)
            {
                l.remove(&key);
            }
        });
    }

    fn is_latest(&self, key: &ServiceKey, generation: u64) -> bool {
        self.latest
            .lock()
            .map(|l| l.get(key) == Some(&generation))
            .unwrap_or(false)
    }

    async fn write(&self, key: &ServiceKey, uid: &str, ips: &[IpAddr], pool: Option<&str>) {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
        let mut patch = ironlb_k8s::service::status_patch(ips, pool);
        if !uid.is_empty() {
            patch["metadata"]["uid"] = serde_json::Value::String(uid.to_string());
        }
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=5 {
            match api
                .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.metrics.updates.inc();
                    return;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => return,
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    self.metrics.update_errors.inc();
                    tracing::info!(service = %key, "write conflicted; reading the Service again");
                    let fresh = api.get_opt(&key.name).await.ok().flatten();
                    let _ = self
                        .feedback
                        .send(Feedback::Fresh(key.clone(), fresh.map(Box::new)));
                    return;
                }
                Err(e) => {
                    self.metrics.update_errors.inc();
                    tracing::warn!(service = %key, attempt, error = %e, "status write failed");
                    if attempt == 5 {
                        let _ = self.feedback.send(Feedback::Failed(key.clone()));
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
