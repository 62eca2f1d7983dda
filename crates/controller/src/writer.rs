//! Writes Service addresses to the API server, many at a time, latest wins.
//!
//! ```text
//!   submit(key, job) --> queue (latest job per key) --> N workers: PATCH services/<name>/status
//!                                                                 |
//!                                                                 v
//!                      ok -> metallb_k8s_client_updates_total    replaced -> GET, Feedback::Fresh
//!                      404 -> nothing (Service gone)              other -> retry 4x, Feedback::Failed
//! ```
//!
//! One write per Service: the status subresource of a Service accepts the
//! `metallb.io/ip-allocated-from-pool` annotation together with `status.loadBalancer`. The
//! Service's uid is part of the patch, so a Service deleted and re-created under the same name
//! refuses the write instead of receiving the old one's address: the API server answers 422
//! "metadata.uid: field is immutable" (not 409, as one might expect; checked against
//! kube-apiserver 1.34), and a 409 Conflict is treated the same way.

use ironlb_allocator::ServiceKey;
use ironlb_k8s::metrics::K8sClientMetrics;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// The API server refused the write because the Service is not the one the write was for (a
/// newer object under the same name) or changed under it: read it again rather than retry.
fn replaced(status: &kube::core::Status) -> bool {
    status.code == 409 || (status.code == 422 && status.message.contains("metadata.uid"))
}

/// What a write reports back to the main loop.
#[derive(Debug)]
pub enum Feedback {
    /// The write failed for good: reconcile again.
    Failed(ServiceKey),
    /// The write conflicted; here is the Service as it is now (None: gone).
    Fresh(ServiceKey, Option<Box<Service>>),
}

/// One queued write.
#[derive(Debug)]
struct Job {
    uid: String,
    ips: Vec<IpAddr>,
    pool: Option<String>,
}

/// Keys in arrival order, each with its latest job (a newer submit replaces an older one that
/// has not started yet).
#[derive(Debug, Default)]
struct Queue {
    order: VecDeque<ServiceKey>,
    jobs: HashMap<ServiceKey, Job>,
}

/// The concurrent status writer: a queue and a fixed set of workers (no task per write, so
/// 10,000 queued writes cost a few hundred bytes each, not a request future each).
#[derive(Clone)]
pub struct Writer {
    client: Client,
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
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
        let w = Writer {
            client,
            queue: Arc::default(),
            wake: Arc::new(Notify::new()),
            feedback,
            metrics,
        };
        for _ in 0..concurrency.max(1) {
            let w = w.clone();
            tokio::spawn(async move { w.work().await });
        }
        w
    }

    /// Queues a write of `ips` / `pool` (empty / None: clear) for the Service.
    pub fn submit(&self, key: ServiceKey, uid: String, ips: Vec<IpAddr>, pool: Option<String>) {
        if let Ok(mut q) = self.queue.lock()
            && q.jobs.insert(key.clone(), Job { uid, ips, pool }).is_none()
        {
            q.order.push_back(key);
        }
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<(ServiceKey, Job)> {
        let mut q = self.queue.lock().ok()?;
        while let Some(key) = q.order.pop_front() {
            if let Some(job) = q.jobs.remove(&key) {
                return Some((key, job));
            }
        }
        None
    }

    async fn work(&self) {
        loop {
            let notified = self.wake.notified();
            match self.pop() {
                Some((key, job)) => {
                    // More may be queued: let another worker look too.
                    self.wake.notify_one();
                    self.write(&key, &job.uid, &job.ips, job.pool.as_deref())
                        .await;
                }
                None => notified.await,
            }
        }
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
                Err(kube::Error::Api(s)) if replaced(&s) => {
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
