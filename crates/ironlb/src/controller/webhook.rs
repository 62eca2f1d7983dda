//! The validating and conversion webhook (work in progress).

use ironlb_config::Context;
use ironlb_k8s::ConfigStores;
use kube::Client;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The webhook server.
#[allow(dead_code)]
pub struct Webhook {
    /// API client (certificate Secret, caBundle injection).
    pub client: Client,
    /// The configuration objects as they are now.
    pub stores: ConfigStores,
    /// Namespace and features.
    pub ctx: Context,
    /// The controller's flags.
    pub args: super::Args,
    /// Set once serving.
    pub ready: Arc<AtomicBool>,
}

impl Webhook {
    /// Serves until an error.
    pub async fn run(self) -> anyhow::Result<()> {
        anyhow::bail!("the webhook is not built yet: run with --webhook-mode disabled")
    }
}
