//! The component runtime both daemons share: logging, the API client, the metrics and health
//! server, and following the configuration (build it on every change, report the verdict).
//!
//! ```text
//!   --log-level / --log-format ------> init_logging (stderr; JSON lines as MetalLB, or text)
//!   --kubeconfig | in-cluster -------> client
//!   host:port      /metrics /healthz /readyz  ---.
//!   host:health    /healthz /readyz (optional) ---+--> serve_http (OpenMetrics text)
//!   Objects --ConfigFollower::load--> Config | keep the last valid one
//!                 '--> metallb_k8s_client_config_{loaded,stale}_bool, a log line,
//!                      ConfigurationState <name> (+ a ConfigurationInvalid Event)
//! ```

use crate::events::{EventSink, Kind, Pending};
use crate::metrics::K8sClientMetrics;
use anyhow::{Context as _, Result};
use ironlb_api::v1beta1::ConfigurationResult;
use ironlb_config::{Config, Context, Objects};
use kube::Client;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (MetalLB's format).
    Json,
    /// Human-readable text.
    Text,
}

/// The `tracing` filter for MetalLB's `--log-level` (all, debug, info, warn, error, none).
pub fn log_filter(level: &str) -> &'static str {
    match level {
        "all" | "debug" => "debug",
        "warn" => "warn",
        "error" => "error",
        "none" => "off",
        _ => "info",
    }
}

/// Sets up logging to stderr (`RUST_LOG` overrides the level).
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{},kube=warn", log_filter(level)))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests start several components in one process) keeps the first.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The API client: `--kubeconfig` if given, else the usual inference (in-cluster, $KUBECONFIG).
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// Where and what [`serve_http`] serves.
pub struct HttpServer<R> {
    /// Address to listen on.
    pub host: String,
    /// `/metrics`, `/healthz` and `/readyz`.
    pub port: u16,
    /// A second listener with `/healthz` and `/readyz` only (MetalLB's health probe port).
    pub health_port: Option<u16>,
    /// What `/readyz` answers: 200 while set, 503 otherwise.
    pub ready: Arc<AtomicBool>,
    /// Renders the metrics (OpenMetrics text).
    pub render: R,
}

/// Binds the listeners; the returned future serves them.
pub async fn serve_http<R>(server: HttpServer<R>) -> Result<impl Future<Output = Result<()>>>
where
    R: Fn() -> String + Clone + Send + Sync + 'static,
{
    use axum::routing::get;
    let ready = server.ready.clone();
    let health = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (axum::http::StatusCode::OK, "ready")
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        );
    let render = server.render.clone();
    let metrics = health.clone().route(
        "/metrics",
        get(move || {
            let text = render();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    let host = server.host.as_str();
    let metrics_l = tokio::net::TcpListener::bind((host, server.port))
        .await
        .with_context(|| format!("binding metrics port {host}:{}", server.port))?;
    let health_l = match server.health_port {
        Some(port) => Some(
            tokio::net::TcpListener::bind((host, port))
                .await
                .with_context(|| format!("binding health port {host}:{port}"))?,
        ),
        None => None,
    };
    tracing::info!(
        metrics = %metrics_l.local_addr()?,
        health = ?health_l.as_ref().and_then(|l| l.local_addr().ok()),
        "serving metrics and health probes"
    );
    Ok(async move {
        match health_l {
            Some(health_l) => {
                tokio::try_join!(
                    axum::serve(metrics_l, metrics),
                    axum::serve(health_l, health)
                )?;
            }
            None => axum::serve(metrics_l, metrics).await?,
        }
        Ok(())
    })
}

/// The verdict a ConfigurationState last got: (valid, error summary, warnings).
type Verdict = (bool, String, Vec<String>);

/// Follows the configuration for one component: builds it from the objects on every change,
/// reports each new verdict (metrics, a log line, its ConfigurationState, a Warning Event when
/// it became invalid) and hands over a valid configuration; an invalid one leaves the last
/// valid one in use.
pub struct ConfigFollower {
    client: Client,
    namespace: String,
    /// The ConfigurationState's name (`controller`, `speaker-<node>`).
    name: String,
    events: EventSink,
    metrics: K8sClientMetrics,
    last: Option<Verdict>,
}

impl ConfigFollower {
    /// A follower reporting as the ConfigurationState `namespace/name`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        events: EventSink,
        metrics: K8sClientMetrics,
    ) -> Self {
        ConfigFollower {
            client,
            namespace: namespace.to_string(),
            name: name.to_string(),
            events,
            metrics,
            last: None,
        }
    }

    /// Builds the configuration from `objects`; `Some` when it is valid. `in_use`: a valid
    /// configuration is in use already (an invalid one then makes it stale).
    pub fn load(&mut self, objects: &Objects, ctx: &Context, in_use: bool) -> Option<Config> {
        match ironlb_config::build(objects, ctx) {
            Ok(config) => {
                self.metrics.config_loaded.set(1);
                self.metrics.config_stale.set(0);
                let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
                if self.last.as_ref().is_none_or(|v| v.2 != warnings) {
                    for w in &warnings {
                        tracing::warn!(warning = %w, "configuration loaded with a part skipped");
                    }
                }
                self.report((true, String::new(), warnings));
                Some(config)
            }
            Err(errors) => {
                let summary = crate::status::error_summary(&errors);
                tracing::error!(errors = %summary, "invalid configuration; keeping the last good one");
                if in_use {
                    self.metrics.config_stale.set(1);
                }
                self.report((false, summary, Vec::new()));
                None
            }
        }
    }

    /// Writes the ConfigurationState when the verdict changed, with a Warning Event on it when
    /// the configuration became invalid.
    fn report(&mut self, verdict: Verdict) {
        if self.last.as_ref() == Some(&verdict) {
            return;
        }
        self.last = Some(verdict.clone());
        let (valid, summary, warnings) = verdict;
        if !valid {
            self.events.publish(Pending {
                regarding: crate::events::configuration_state_reference(
                    &self.namespace,
                    &self.name,
                ),
                type_: Kind::Warning,
                reason: "ConfigurationInvalid",
                note: format!("keeping the last valid configuration: {summary}"),
            });
        }
        let client = self.client.clone();
        let ns = self.namespace.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            let result = if valid {
                ConfigurationResult::Valid
            } else {
                ConfigurationResult::Invalid
            };
            let summary = (!summary.is_empty()).then_some(summary);
            if let Err(e) = crate::status::write_configuration_state(
                &client, &ns, &name, result, summary, &warnings,
            )
            .await
            {
                tracing::warn!(error = %e, "cannot write ConfigurationState");
            }
        });
    }
}
