//! Kubernetes Events, published in the background so that a slow API server never stalls
//! reconciliation.
//!
//! ```text
//!   EventSink::publish(ObjectReference, type, reason, note)  --bounded queue-->  task
//!        (drops and counts when the queue is full)                 kube::runtime::events::Recorder
//!                                                                 (reporter metallb-controller)
//! ```

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
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
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: reporter.to_string(),
                instance: std::env::var("METALLB_POD_NAME").ok(),
            },
        );
        tokio::spawn(async move {
            tokio_stream(rx)
                .for_each_concurrent(concurrency, |p| {
                    let recorder = recorder.clone();
                    async move {
                        let ev = Event {
                            type_: p.type_,
                            reason: p.reason.to_string(),
                            note: Some(p.note),
                            action: p.reason.to_string(),
                            secondary: None,
                        };
                        if let Err(e) = recorder.publish(&ev, &p.regarding).await {
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
