//! `ironlb controller`: gives LoadBalancer Services their addresses (MetalLB's controller).
//!
//! ```text
//!   watch Services ---------------------------.
//!   ConfigStores (metallb.io kinds, Secrets,   |      main loop (one task)           Writer (N in flight)
//!     Namespaces) --Change-------------------->+--> State (pure decisions) --Write--> PATCH services/status
//!   Writer feedback (409 / failures) --------->'                          --Event--> EventSink
//!   tick (100 ms): config rebuild, start-up, pool status + metrics
//!
//!   HTTP :port /metrics /healthz /readyz      HTTPS webhook (validating, BGPPeer conversion)
//!   at start: the memberlist Secret, when missing (memberlist.rs)
//! ```

// The allocator's error type is large; it is passed through, not boxed.
#![allow(clippy::result_large_err)]

pub mod memberlist;
pub mod state;
pub mod webhook;
pub mod writer;

use anyhow::{Context as _, Result};
use futures::StreamExt;
use ironlb_allocator::ServiceKey;
use ironlb_config::{Context, Features};
use ironlb_k8s::events::{EventSink, Pending};
use ironlb_k8s::metrics::{K8sClientMetrics, MetricsRegistry, PoolMetrics};
use ironlb_k8s::stores::STORE_COUNT;
use ironlb_k8s::{Change, ConfigStores, ServiceInfo};
use k8s_openapi::api::core::v1::Service;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use state::{Action, EventType, State};
use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use writer::{Feedback, Writer};

/// When the webhook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookMode {
    /// Controller and webhook.
    Enabled,
    /// Controller only.
    Disabled,
    /// Webhook only.
    Onlywebhook,
}

/// `ironlb controller` flags (MetalLB's names, environment variables as MetalLB's manifests set).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The namespace ironlb runs in and reads its configuration from.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = ironlb_api::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Handle only Services with this spec.loadBalancerClass (default: only Services without one).
    #[arg(long, env = "METALLB_LB_CLASS")]
    pub lb_class: Option<String>,
    /// Address to serve metrics on.
    #[arg(long, env = "METALLB_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to serve /metrics (and /healthz, /readyz) on.
    #[arg(long, env = "METALLB_ML_PORT", default_value_t = 7472)]
    pub port: u16,
    /// Port to serve the health probes /healthz and /readyz on.
    #[arg(long, default_value_t = 17472)]
    pub health_probe_port: u16,
    /// Log level: all, debug, info, warn, error, none.
    #[arg(long, env = "METALLB_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Run the controller, the webhook, or both.
    #[arg(long, value_enum, default_value_t = WebhookMode::Enabled)]
    pub webhook_mode: WebhookMode,
    /// Where the webhook's certificate and key are written (tls.crt, tls.key).
    #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs")]
    pub cert_dir: PathBuf,
    /// The Service name the webhook certificate is issued for.
    #[arg(long, default_value = "metallb-webhook-service")]
    pub cert_service_name: String,
    /// The Secret that keeps the webhook certificate.
    #[arg(long, default_value = "metallb-webhook-cert")]
    pub webhook_secret: String,
    /// The ValidatingWebhookConfiguration whose caBundle the controller keeps current.
    #[arg(long, default_value = "metallb-webhook-configuration")]
    pub webhook_configuration: String,
    /// Where the webhook listens (HTTPS).
    #[arg(long, default_value = "0.0.0.0:9443")]
    pub webhook_listen: SocketAddr,
    /// Ignored; kept so that older command lines still parse. (It used to set the BGPPeer
    /// CRD's conversion webhook URL; the CRD now carries its conversion webhook as shipped, and
    /// the controller injects only the caBundle.)
    #[arg(long, hide = true)]
    pub webhook_url_base: Option<String>,
    /// Create the memberlist Secret of this name (key `secretkey`, 16 random bytes, base64)
    /// in --namespace when it is missing, as MetalLB's controller does; an existing one is
    /// never changed. Empty: do not.
    #[arg(long, env = "METALLB_ML_SECRET_NAME", default_value = "")]
    pub ml_secret_name: String,
    /// The controller's Deployment: owner of the memberlist Secret it creates, so that
    /// deleting the Deployment deletes the Secret (none when empty or not found).
    #[arg(long, env = "METALLB_DEPLOYMENT", default_value = "")]
    pub deployment: String,
    /// Do not manage the certificate (use tls.crt / tls.key in --cert-dir as they are).
    #[arg(long)]
    pub disable_cert_rotation: bool,
    /// How long a webhook certificate the controller makes is valid, in seconds; it is
    /// renewed when less than a third is left.
    #[arg(long, env = "IRONLB_WEBHOOK_CERT_VALIDITY_SECS", default_value_t = 365 * 24 * 3600)]
    pub cert_validity_secs: u64,
    /// Status writes in flight at once.
    #[arg(long, default_value_t = 32)]
    pub write_concurrency: usize,
    /// The kubeconfig to use (default: in-cluster or $KUBECONFIG).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

pub use ironlb_k8s::runtime::LogFormat;

/// What this build serves ([`Features::served`]: the speaker's answer too, so the webhook
/// accepts exactly what the speaker can serve).
pub fn features() -> Features {
    Features::served()
}

/// Shared readiness and metrics.
#[derive(Clone)]
pub struct Shared {
    /// Ready: initial sync done and (if enabled) the webhook serving.
    pub ready: Arc<AtomicBool>,
    /// The metrics registry.
    pub registry: Arc<MetricsRegistry>,
}

/// Runs the controller until SIGTERM / Ctrl-C.
pub async fn run(args: Args) -> Result<()> {
    ironlb_k8s::runtime::init_logging(&args.log_level, args.log_format);
    let client = ironlb_k8s::runtime::client(args.kubeconfig.as_deref()).await?;
    if !args.ml_secret_name.is_empty() {
        memberlist::ensure(
            &client,
            &args.namespace,
            &args.ml_secret_name,
            &args.deployment,
        )
        .await
        .context("the memberlist Secret")?;
    }
    let mut registry = MetricsRegistry::default();
    let k8s_metrics = K8sClientMetrics::register(&mut registry);
    let pool_metrics = PoolMetrics::register(&mut registry);
    let shared = Shared {
        ready: Arc::new(AtomicBool::new(false)),
        registry: Arc::new(registry),
    };
    let registry = shared.registry.clone();
    let http = ironlb_k8s::runtime::serve_http(ironlb_k8s::runtime::HttpServer {
        host: args.host.clone(),
        port: args.port,
        health_port: Some(args.health_probe_port),
        ready: shared.ready.clone(),
        render: move || ironlb_k8s::metrics::encode(&registry),
    })
    .await?;
    let ctx = Context {
        namespace: args.namespace.clone(),
        features: features(),
    };
    let (tx, rx) = mpsc::channel(4096);
    let stores = ConfigStores::spawn(&client, &args.namespace, tx);

    let webhook_ready = Arc::new(AtomicBool::new(args.webhook_mode == WebhookMode::Disabled));
    if args.webhook_mode != WebhookMode::Disabled {
        let wh = webhook::Webhook {
            client: client.clone(),
            stores: stores.clone(),
            ctx: ctx.clone(),
            args: args.clone(),
            ready: webhook_ready.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = wh.run().await {
                tracing::error!(error = format!("{e:#}"), "webhook stopped");
                std::process::exit(1);
            }
        });
    }

    let main = async {
        if args.webhook_mode == WebhookMode::Onlywebhook {
            loop {
                shared
                    .ready
                    .store(webhook_ready.load(Ordering::Relaxed), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let ctl = Controller {
            client: client.clone(),
            args: args.clone(),
            ctx,
            stores,
            k8s_metrics: k8s_metrics.clone(),
            pool_metrics,
            ready: shared.ready.clone(),
            webhook_ready,
        };
        ctl.run(rx).await
    };
    tokio::select! {
        r = main => r?,
        r = http => r?,
        _ = ironlb_k8s::shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

struct Controller {
    client: Client,
    args: Args,
    ctx: Context,
    stores: ConfigStores,
    k8s_metrics: K8sClientMetrics,
    pool_metrics: PoolMetrics,
    ready: Arc<AtomicBool>,
    webhook_ready: Arc<AtomicBool>,
}

impl Controller {
    async fn run(self, mut changes: mpsc::Receiver<Change>) -> Result<()> {
        let (fb_tx, mut feedback) = mpsc::unbounded_channel();
        let writer = Writer::new(
            self.client.clone(),
            self.args.write_concurrency,
            fb_tx,
            self.k8s_metrics.clone(),
        );
        let events = EventSink::spawn(
            self.client.clone(),
            ironlb_k8s::events::CONTROLLER_REPORTER,
            20_000,
            4,
        );
        let services = watcher(
            Api::<Service>::all(self.client.clone()),
            watcher::Config::default().page_size(500),
        )
        .default_backoff();
        let mut services = std::pin::pin!(services);
        let mut state = State::new(self.args.lb_class.clone());
        let mut synced: HashSet<&'static str> = HashSet::new();
        let mut services_synced = false;
        let mut relist: Option<HashSet<ServiceKey>> = None;
        let mut config_dirty = true;
        let mut follower = ironlb_k8s::runtime::ConfigFollower::new(
            self.client.clone(),
            &self.args.namespace,
            "controller",
            events.clone(),
            self.k8s_metrics.clone(),
        );
        let mut known_pools: BTreeSet<String> = BTreeSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stores = self.stores.clone();
        let ns_labels = move |ns: &str| stores.namespace_labels(ns);

        loop {
            let acts = tokio::select! {
                ev = services.next() => match ev {
                    Some(Ok(watcher::Event::Init)) => { relist = Some(HashSet::new()); Vec::new() }
                    Some(Ok(watcher::Event::InitApply(svc))) => {
                        let info = ServiceInfo::from_service(&svc);
                        if let Some(seen) = relist.as_mut() { seen.insert(info.key.clone()); }
                        state.upsert(info, &ns_labels)
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        services_synced = true;
                        let mut acts = Vec::new();
                        if let Some(seen) = relist.take() {
                            // Deleted while the watch was down.
                            for key in state.keys() {
                                if !seen.contains(&key) { acts.extend(state.remove(&key)); }
                            }
                        }
                        acts
                    }
                    Some(Ok(watcher::Event::Apply(svc))) => state.upsert(ServiceInfo::from_service(&svc), &ns_labels),
                    Some(Ok(watcher::Event::Delete(svc))) => state.remove(&ServiceInfo::from_service(&svc).key),
                    Some(Err(e)) => { tracing::warn!(error = %e, "service watch failed; retrying"); Vec::new() }
                    None => anyhow::bail!("service watch ended"),
                },
                ch = changes.recv() => match ch {
                    Some(Change::Synced(kind)) => { synced.insert(kind); Vec::new() }
                    Some(Change::Config) => { config_dirty = true; Vec::new() }
                    Some(Change::Namespace(ns)) => {
                        let mut acts = Vec::new();
                        for key in state.keys_in(&ns) { acts.extend(state.reconcile(&key, &ns_labels)); }
                        acts
                    }
                    Some(Change::AllNamespaces) => state.reprocess_all(&ns_labels),
                    None => anyhow::bail!("configuration watches ended"),
                },
                fb = feedback.recv() => match fb {
                    Some(Feedback::Failed(key)) => {
                        state.write_failed(&key);
                        state.reconcile(&key, &ns_labels)
                    }
                    Some(Feedback::Fresh(key, svc)) => {
                        state.write_failed(&key);
                        match svc {
                            Some(svc) => state.upsert(ServiceInfo::from_service(&svc), &ns_labels),
                            None => state.remove(&key),
                        }
                    }
                    None => Vec::new(),
                },
                _ = tick.tick() => {
                    let mut acts = Vec::new();
                    let all_synced = synced.len() == STORE_COUNT && services_synced;
                    if config_dirty && synced.len() == STORE_COUNT {
                        config_dirty = false;
                        let objects = self.stores.objects();
                        if let Some(config) = follower.load(&objects, &self.ctx, state.config().is_some()) {
                            if all_synced || state.started() {
                                acts = state.set_config(config, &ns_labels);
                            } else {
                                config_dirty = true;
                            }
                        }
                    }
                    if state.started() && all_synced {
                        self.ready.store(self.webhook_ready.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                    if state.take_pools_dirty() {
                        self.publish_pools(&state, &mut known_pools);
                    }
                    acts.extend(state.due_failures(Instant::now(), state::FAILURE_GRACE));
                    acts
                }
            };
            let retried = state.retry_failed(&ns_labels);
            for act in acts.into_iter().chain(retried) {
                match act {
                    Action::Write {
                        key,
                        uid,
                        ips,
                        pool,
                    } => writer.submit(key, uid, ips, pool),
                    Action::Event {
                        key,
                        uid,
                        type_,
                        reason,
                        note,
                    } => events.publish(Pending {
                        regarding: ironlb_k8s::events::service_reference(
                            &key.namespace,
                            &key.name,
                            &uid,
                        ),
                        type_: match type_ {
                            EventType::Normal => ironlb_k8s::events::Kind::Normal,
                            EventType::Warning => ironlb_k8s::events::Kind::Warning,
                        },
                        reason,
                        note,
                    }),
                }
            }
        }
    }

    /// Updates the pool metrics and (in the background) the IPAddressPool statuses.
    fn publish_pools(&self, state: &State, known: &mut BTreeSet<String>) {
        let figures = state.pool_figures();
        let now: BTreeSet<String> = figures.iter().map(|(n, _)| n.clone()).collect();
        for gone in known.difference(&now) {
            self.pool_metrics.remove(gone);
        }
        *known = now;
        for (name, f) in &figures {
            self.pool_metrics.set(name, *f);
        }
        let client = self.client.clone();
        let ns = self.args.namespace.clone();
        tokio::spawn(async move {
            for (name, f) in figures {
                if let Err(e) = ironlb_k8s::status::write_pool_status(&client, &ns, &name, f).await
                {
                    tracing::debug!(pool = name, error = %e, "cannot write IPAddressPool status");
                }
            }
        });
    }
}
