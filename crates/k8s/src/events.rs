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
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_in_task = dropped.clone();
        let reporter = reporter.to_string();
        let instance = std::env::var("METALLB_POD_NAME").unwrap_or_else(|_| reporter.clone());
        tokio::spawn(async move {
            tokio_stream(rx)
                .for_each_concurrent(concurrency, |p| {
                    let client = client.clone();
                    let reporter = reporter.clone();
                    let instance = instance.clone();
                    let dropped_in_task = dropped_in_task.clone();
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
                        create_with_retries(&api, &ev, p.reason, &dropped_in_task).await;
                    }
                })
                .await;
        });
        EventSink { tx, dropped }
    }

    /// Queues an Event; if the queue is full it is dropped (and counted).
    pub fn publish(&self, pending: Pending) {
        if self.tx.try_send(pending).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many Events were dropped: the queue was full, the API server refused them or
    /// stayed unreachable through every retry.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// How often an Event is tried before it is given up (client-go's recorder tries 12 times too).
const TRIES: u32 = 12;

/// Creates the Event, trying again while the API server is unreachable or overloaded, so an
/// Event queued just before an API server restart still arrives. The name is fixed before the
/// first try: if a create succeeded but its answer was lost, the retry gets 409 and stops there
/// instead of writing the Event twice.
async fn create_with_retries(api: &Api<Event>, ev: &Event, reason: &str, dropped: &AtomicU64) {
    for attempt in 0..TRIES {
        match api.create(&PostParams::default(), ev).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            Err(e) if attempt + 1 < TRIES && worth_retrying(&e) => {
                tracing::debug!(error = %e, reason, attempt, "event not published yet, retrying");
                tokio::time::sleep(retry_delay(attempt)).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, reason, "event not published");
                dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Whether a failed create may succeed later: the API server could not be reached, was
/// overloaded (429) or failed internally (5xx). A refusal (403, 404, 422) will not change.
fn worth_retrying(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// The wait before try `attempt + 1`: 250 ms doubling, at most 10 s (about 70 s in all).
fn retry_delay(attempt: u32) -> std::time::Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.min(16));
    std::time::Duration::from_millis(ms.min(10_000))
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

/// A reference to the ConfigurationState `namespace/name` (for Events about the
/// configuration a component loaded or refused).
pub fn configuration_state_reference(namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("metallb.io/v1beta1".into()),
        kind: Some("ConfigurationState".into()),
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("x", "y").with_code(code),
        ))
    }

    #[test]
    fn only_failures_that_can_pass_are_retried() {
        for code in [429, 500, 502, 503, 504] {
            assert!(worth_retrying(&api_error(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!worth_retrying(&api_error(code)), "{code}");
        }
        assert!(worth_retrying(&kube::Error::Service(
            "connection refused".into()
        )));
        assert!(!worth_retrying(
            &kube::Error::LinesCodecMaxLineLengthExceeded
        ));
    }

    #[test]
    fn retry_delays_grow_to_a_cap() {
        let d: Vec<u64> = (0..TRIES)
            .map(|a| retry_delay(a).as_millis() as u64)
            .collect();
        assert_eq!(&d[..6], &[250, 500, 1000, 2000, 4000, 8000]);
        assert!(d[6..].iter().all(|&x| x == 10_000));
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(10));
    }

    /// A narrow fake API server: answers the Event creates with the given status codes in
    /// order, and records the names it was asked to create.
    fn fake(codes: Vec<u16>) -> (Client, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let codes = Arc::new(Mutex::new(codes.into_iter()));
        let seen2 = seen.clone();
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let seen = seen2.clone();
            let code = codes.lock().unwrap().next().unwrap_or(500);
            async move {
                let body = req.into_body().collect_bytes().await.unwrap();
                let ev: Event = serde_json::from_slice(&body).unwrap();
                seen.lock().unwrap().push(ev.metadata.name.clone().unwrap());
                let reply = if code == 201 {
                    serde_json::to_string(&ev).unwrap()
                } else {
                    serde_json::to_string(&kube::core::Status::failure("no", "x").with_code(code))
                        .unwrap()
                };
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder().status(code).body(reply).unwrap(),
                )
            }
        });
        (Client::new(svc, "default"), seen)
    }

    fn pending() -> Pending {
        Pending {
            regarding: service_reference("default", "b", "u1"),
            type_: EventType::Normal,
            reason: "IPAllocated",
            note: "Assigned IP [\"10.0.0.151\"]".into(),
        }
    }

    /// A sink in front of `fake(codes)` with one Event published.
    fn publish_one(codes: Vec<u16>) -> (EventSink, Arc<Mutex<Vec<String>>>) {
        let (client, seen) = fake(codes);
        let sink = EventSink::spawn(client, CONTROLLER_REPORTER, 8, 1);
        sink.publish(pending());
        (sink, seen)
    }

    async fn wait_until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..400 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_is_retried_until_the_api_server_takes_it() {
        let (sink, seen) = publish_one(vec![503, 503, 201, 201]);
        wait_until("three tries", || seen.lock().unwrap().len() == 3).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let names = seen.lock().unwrap().clone();
        assert_eq!(names.len(), 3, "no try after the one that succeeded");
        assert!(names.iter().all(|n| n == &names[0]), "{names:?}");
        assert!(names[0].starts_with("b."), "{names:?}");
        assert_eq!(sink.dropped(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_not_written_twice_and_a_refusal_is_not_retried() {
        // 409: an earlier try had been stored; the Event is done.
        let (sink, seen) = publish_one(vec![500, 409]);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert_eq!(sink.dropped(), 0);

        // 403: RBAC refused it; trying again cannot help.
        let (sink, seen) = publish_one(vec![403, 201]);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(sink.dropped(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_server_that_stays_away_costs_a_bounded_number_of_tries() {
        let (sink, seen) = publish_one(vec![]);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(seen.lock().unwrap().len(), TRIES as usize);
        assert_eq!(sink.dropped(), 1);
    }
}
