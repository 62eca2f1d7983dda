//! Kubernetes Events, published in the background so that a slow API server never stalls
//! reconciliation.
//!
//! ```text
//!   EventSink::publish(ObjectReference, type, reason, note)  --bounded queue-->  task
//!        (drops and counts when the queue is full)                 POST events.k8s.io/v1 Event
//!                                                                 (reporter metallb-controller)
//! ```
//!
//! kube's `Recorder` keeps every Event it sent for six minutes to turn repeats into series;
//! with 10,000 Services that cache alone is ~10 MiB. The controller already emits an Event only
//! when something changed, so Events are created directly, with the same fields.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::events::EventType;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// The reporter name MetalLB's controller uses.
pub const CONTROLLER_REPORTER: &str = "metallb-controller";

/// Normal or Warning.
pub use kube::runtime::events::EventType as Kind;

/// One Event to publish.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The object it is about.
    pub regarding: ObjectReference,
    /// Normal or Warning.
    pub type_: EventType,
    /// MetalLB's reason, e.g. `IPAllocated`.
    pub reason: &'static str,
    /// The message.
    pub note: String,
}

/// A handle that queues Events for publishing.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// Starts the publishing task with `concurrency` requests in flight and a queue of
    /// `capacity` Events.
    pub fn spawn(client: Client, reporter: &str, capacity: usize, concurrency: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Pending>(capacity);
        let reporter = reporter.to_string();
        let instance = std::env::var("METALLB_POD_NAME").unwrap_or_else(|_| reporter.clone());
        tokio::spawn(async move {
            tokio_stream(rx)
                .for_each_concurrent(concurrency, |p| {
                    let client = client.clone();
                    let reporter = reporter.clone();
                    let instance = instance.clone();
                    async move {
                        let ns = p
                            .regarding
                            .namespace
                            .clone()
                            .unwrap_or_else(|| "default".into());
                        let now = k8s_openapi::jiff::Timestamp::now();
                        let ev = Event {
                            metadata: kube::api::ObjectMeta {
                                name: Some(format!(
                                    "{}.{:x}",
                                    p.regarding.name.as_deref().unwrap_or(&reporter),
                                    now.as_nanosecond()
                                )),
                                namespace: Some(ns.clone()),
                                ..Default::default()
                            },
                            action: Some(p.reason.to_string()),
                            reason: Some(p.reason.to_string()),
                            note: Some(p.note),
                            event_time: Some(MicroTime(now)),
                            regarding: Some(p.regarding),
                            reporting_controller: Some(reporter),
                            reporting_instance: Some(instance),
                            type_: Some(match p.type_ {
                                EventType::Normal => "Normal".into(),
                                EventType::Warning => "Warning".into(),
                            }),
                            ..Default::default()
                        };
                        let api: Api<Event> = Api::namespaced(client, &ns);
                        if let Err(e) = api.create(&PostParams::default(), &ev).await {
                            tracing::debug!(error = %e, reason = p.reason, "event not published");
                        }
                    }
                })
                .await;
        });
        EventSink {
            tx,
            dropped: Arc::default(),
        }
    }

    /// Queues an Event; if the queue is full it is dropped (and counted).
    pub fn publish(&self, pending: Pending) {
        if self.tx.try_send(pending).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many Events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn tokio_stream<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A reference to a Service for an Event.
pub fn service_reference(namespace: &str, name: &str, uid: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        uid: (!uid.is_empty()).then(|| uid.to_string()),
        ..Default::default()
    }
}
