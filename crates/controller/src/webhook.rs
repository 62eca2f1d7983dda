//! The admission webhook: validation of every `metallb.io` kind with the configuration crate's
//! own rules, BGPPeer v1beta1 <-> v1beta2 conversion, and a certificate the controller makes,
//! keeps in a Secret, rotates and injects as `caBundle` itself.
//!
//! ```text
//!   kube-apiserver --HTTPS--> POST /validate-metallb-io-<version>-<kind>  AdmissionReview
//!                                  object + ConfigStores::objects() -> config::validate_object /
//!                                  validate_delete -> allowed | denied "<Kind> "<name>": <field>: <why>"
//!                  --HTTPS--> POST /convert  ConversionReview (BGPPeer)
//!
//!   Secret metallb-webhook-cert {ca.crt, ca.key, tls.crt, tls.key} + annotation with not-after
//!     -> TLS resolver (swapped in place on rotation)
//!     -> ValidatingWebhookConfiguration webhooks[*].clientConfig.caBundle
//!     -> CRD bgppeers.metallb.io spec.conversion.webhook.clientConfig.caBundle (only: the
//!        strategy and the Service are the manifest's, as MetalLB ships them)
//! ```

use anyhow::{Context as _, Result, bail};
use axum::Json;
use axum::extract::{Path, State};
use axum::routing::post;
use base64::Engine;
use ironlb_api::{conversion, v1beta1, v1beta2};
use ironlb_config::{Context, Object, ObjectKind};
use ironlb_k8s::ConfigStores;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The Secret annotation holding the certificate's expiry (Unix seconds).
const NOT_AFTER_ANNOTATION: &str = "ironlb.io/not-after";

/// The CRD whose conversion webhook the controller serves.
const BGPPEER_CRD: &str = "bgppeers.metallb.io";

/// What the BGPPeer CRD needs for its conversion webhook to trust the controller's CA.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversionCa {
    /// Its caBundle is the CA already.
    UpToDate,
    /// It does not convert through a webhook (this strategy): nothing to inject into.
    NoWebhook(String),
    /// This merge patch sets the caBundle (and nothing else).
    Patch(Value),
}

/// Decides how to make the CRD's conversion webhook trust `ca_pem` (a pure function of the CRD).
pub fn conversion_ca_patch(crd: &CustomResourceDefinition, ca_pem: &str) -> ConversionCa {
    let Some(conversion) = crd.spec.conversion.as_ref() else {
        return ConversionCa::NoWebhook("None".into());
    };
    let client_config = conversion
        .webhook
        .as_ref()
        .and_then(|w| w.client_config.as_ref());
    let Some(client_config) = client_config.filter(|_| conversion.strategy == "Webhook") else {
        return ConversionCa::NoWebhook(conversion.strategy.clone());
    };
    if client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(ca_pem.as_bytes()) {
        return ConversionCa::UpToDate;
    }
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    ConversionCa::Patch(
        json!({"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": ca}}}}}),
    )
}

/// The webhook server.
pub struct Webhook {
    /// API client (certificate Secret, caBundle injection).
    pub client: Client,
    /// The configuration objects as they are now.
    pub stores: ConfigStores,
    /// Namespace and features (the controller's: both apply the same rules).
    pub ctx: Context,
    /// The controller's flags.
    pub args: super::Args,
    /// Set once serving with the caBundle injected.
    pub ready: Arc<AtomicBool>,
}

/// A certificate and key, PEM, with the CA that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertBundle {
    /// The CA certificate (the caBundle).
    pub ca_crt: String,
    /// The CA key (to sign the next serving certificate).
    pub ca_key: String,
    /// The serving certificate.
    pub tls_crt: String,
    /// The serving key.
    pub tls_key: String,
    /// Expiry of the serving certificate, Unix seconds.
    pub not_after: i64,
}

/// Makes a CA and a serving certificate for `dns_names` and 127.0.0.1, valid for `validity`.
pub fn generate(dns_names: &[String], validity: Duration) -> Result<CertBundle> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let now = time::OffsetDateTime::now_utc();
    let not_after = now + validity;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "ironlb-webhook-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - Duration::from_secs(300);
    // The CA outlives the serving certificate so a rotation never races a stale caBundle.
    ca.not_after = not_after + validity;
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(Vec::<String>::new())?;
    server
        .distinguished_name
        .push(DnType::CommonName, "ironlb-webhook");
    let mut sans = vec![SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]))];
    for name in dns_names {
        sans.push(SanType::DnsName(name.as_str().try_into()?));
    }
    server.subject_alt_names = sans;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = now - Duration::from_secs(300);
    server.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = server.signed_by(&key, &issuer)?;
    Ok(CertBundle {
        ca_crt: ca_pem,
        ca_key: ca_key_pem,
        tls_crt: cert.pem(),
        tls_key: key.serialize_pem(),
        not_after: not_after.unix_timestamp(),
    })
}

impl CertBundle {
    fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let get = |k: &str| String::from_utf8(data.get(k)?.0.clone()).ok();
        Some(CertBundle {
            ca_crt: get("ca.crt")?,
            ca_key: get("ca.key")?,
            tls_crt: get("tls.crt")?,
            tls_key: get("tls.key")?,
            not_after: secret
                .metadata
                .annotations
                .as_ref()?
                .get(NOT_AFTER_ANNOTATION)?
                .parse()
                .ok()?,
        })
    }

    fn to_secret(&self, name: &str, namespace: &str) -> Secret {
        let data: BTreeMap<String, ByteString> = [
            ("ca.crt", &self.ca_crt),
            ("ca.key", &self.ca_key),
            ("tls.crt", &self.tls_crt),
            ("tls.key", &self.tls_key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                annotations: Some(
                    [(NOT_AFTER_ANNOTATION.to_string(), self.not_after.to_string())]
                        .into_iter()
                        .collect(),
                ),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        }
    }

    fn certified_key(&self) -> Result<Arc<CertifiedKey>> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.tls_crt.as_bytes())
                .collect::<Result<_, _>>()
                .context("parsing tls.crt")?;
        let key =
            PrivateKeyDer::from_pem_slice(self.tls_key.as_bytes()).context("parsing tls.key")?;
        let provider = rustls::crypto::ring::default_provider();
        Ok(Arc::new(CertifiedKey::from_der(certs, key, &provider)?))
    }
}

/// The serving certificate, replaceable while serving.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|k| k.clone())
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Webhook {
    fn dns_names(&self) -> Vec<String> {
        let (svc, ns) = (&self.args.cert_service_name, &self.args.namespace);
        vec![
            svc.clone(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
            "localhost".into(),
        ]
    }

    /// The certificate in the Secret, made (or renewed) when missing or near expiry.
    async fn ensure_cert(&self) -> Result<CertBundle> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.args.namespace);
        let name = &self.args.webhook_secret;
        let validity = self.validity();
        for _ in 0..5 {
            let existing = secrets.get_opt(name).await?;
            let current = existing.as_ref().and_then(CertBundle::from_secret);
            if let Some(b) = &current
                && b.not_after - now_unix() > (validity.as_secs() / 3) as i64
                && b.certified_key().is_ok()
            {
                return Ok(b.clone());
            }
            let fresh = generate(&self.dns_names(), validity)?;
            let mut secret = fresh.to_secret(name, &self.args.namespace);
            let result = match existing {
                None => secrets.create(&PostParams::default(), &secret).await,
                Some(old) => {
                    secret.metadata.resource_version = old.metadata.resource_version;
                    secrets.replace(name, &PostParams::default(), &secret).await
                }
            };
            match result {
                Ok(_) => {
                    tracing::info!(secret = %name, "webhook certificate created");
                    return Ok(fresh);
                }
                // Another replica got there first: read theirs.
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        bail!("the webhook certificate Secret keeps changing under us")
    }

    fn validity(&self) -> Duration {
        Duration::from_secs(self.args.cert_validity_secs.max(3))
    }

    /// Puts the CA into the webhook configuration and the BGPPeer CRD's conversion webhook.
    async fn inject(&self, ca_pem: &str) -> Result<()> {
        let ca = ByteString(ca_pem.as_bytes().to_vec());
        let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(self.client.clone());
        for _ in 0..5 {
            let Some(mut vwc) = vwcs.get_opt(&self.args.webhook_configuration).await? else {
                tracing::warn!(name = %self.args.webhook_configuration, "no ValidatingWebhookConfiguration to inject the caBundle into");
                break;
            };
            let mut changed = false;
            for hook in vwc.webhooks.iter_mut().flatten() {
                if hook.client_config.ca_bundle.as_ref() != Some(&ca) {
                    hook.client_config.ca_bundle = Some(ca.clone());
                    changed = true;
                }
            }
            if !changed {
                break;
            }
            match vwcs
                .replace(
                    &self.args.webhook_configuration,
                    &PostParams::default(),
                    &vwc,
                )
                .await
            {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        self.inject_conversion_ca(ca_pem).await
    }

    /// Puts the CA into the BGPPeer CRD's conversion webhook, and nothing else: the strategy,
    /// the Service (or URL) and the review versions are the manifest's, as in MetalLB, so
    /// re-applying the manifest (client- or server-side) never fights the controller.
    async fn inject_conversion_ca(&self, ca_pem: &str) -> Result<()> {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let Some(crd) = crds.get_opt(BGPPEER_CRD).await? else {
            tracing::warn!(
                crd = BGPPEER_CRD,
                "no BGPPeer CRD to inject the caBundle into"
            );
            return Ok(());
        };
        match conversion_ca_patch(&crd, ca_pem) {
            ConversionCa::UpToDate => Ok(()),
            ConversionCa::NoWebhook(strategy) => {
                tracing::warn!(
                    crd = BGPPEER_CRD,
                    %strategy,
                    "the BGPPeer CRD does not convert through the webhook (re-apply ironlb's CRDs): v1beta1 BGPPeers are converted by apiVersion only"
                );
                Ok(())
            }
            ConversionCa::Patch(patch) => {
                crds.patch(BGPPEER_CRD, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                tracing::info!(crd = BGPPEER_CRD, "conversion webhook caBundle injected");
                Ok(())
            }
        }
    }

    /// Serves until an error.
    pub async fn run(self) -> Result<()> {
        let (ck, ca) = if self.args.disable_cert_rotation {
            let crt = std::fs::read_to_string(self.args.cert_dir.join("tls.crt"))?;
            let key = std::fs::read_to_string(self.args.cert_dir.join("tls.key"))?;
            let b = CertBundle {
                ca_crt: String::new(),
                ca_key: String::new(),
                tls_crt: crt,
                tls_key: key,
                not_after: 0,
            };
            (b.certified_key()?, None)
        } else {
            let b = self.ensure_cert().await?;
            self.inject(&b.ca_crt).await?;
            (b.certified_key()?, Some(b))
        };
        let resolver = Arc::new(Resolver(RwLock::new(ck)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind(self.args.webhook_listen)
            .await
            .with_context(|| format!("binding the webhook on {}", self.args.webhook_listen))?;
        tracing::info!(listen = %listener.local_addr()?, "webhook serving");
        let this = Arc::new(self);
        let app = axum::Router::new()
            .route("/convert", post(convert))
            .route("/{hook}", post(validate))
            .with_state(this.clone());
        this.ready.store(true, Ordering::Relaxed);

        if let Some(mut bundle) = ca {
            let this = this.clone();
            let resolver = resolver.clone();
            tokio::spawn(async move {
                let period = Duration::from_secs((this.validity().as_secs() / 10).clamp(1, 3600));
                loop {
                    tokio::time::sleep(period).await;
                    match this.ensure_cert().await {
                        Ok(b) if b != bundle => {
                            // Every renewal makes a new CA. Until the API server has seen the
                            // new caBundle it must still accept the old certificate, and after
                            // the swap the new one: trust both for one period, then only the
                            // new CA (the re-injection below).
                            let both = format!("{}{}", b.ca_crt, bundle.ca_crt);
                            if let Err(e) = this.inject(&both).await {
                                tracing::warn!(error = %e, "cannot inject the new caBundle");
                                continue;
                            }
                            match b.certified_key() {
                                Ok(k) => {
                                    if let Ok(mut slot) = resolver.0.write() {
                                        *slot = k;
                                    }
                                    tracing::info!("webhook certificate rotated");
                                    bundle = b;
                                }
                                Err(e) => tracing::warn!(error = %e, "bad rotated certificate"),
                            }
                        }
                        Ok(_) => {
                            // Someone may have reset the caBundle (e.g. re-applied manifests).
                            if let Err(e) = this.inject(&bundle.ca_crt).await {
                                tracing::warn!(error = %e, "cannot re-inject the caBundle");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot check the webhook certificate")
                        }
                    }
                }
            });
        }

        loop {
            let (tcp, peer) = listener.accept().await?;
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "webhook connection ended");
                }
            });
        }
    }
}

/// The kind served at `/validate-metallb-io-<version>-<kind>`.
fn kind_of_path(hook: &str) -> Option<ObjectKind> {
    let kind = hook.rsplit('-').next()?;
    Some(match kind {
        "ipaddresspool" => ObjectKind::IpAddressPool,
        "l2advertisement" => ObjectKind::L2Advertisement,
        "bgpadvertisement" => ObjectKind::BgpAdvertisement,
        "bgppeer" => ObjectKind::BgpPeer,
        "bfdprofile" => ObjectKind::BfdProfile,
        "community" => ObjectKind::Community,
        _ => return None,
    })
}

fn parse_object(kind: ObjectKind, mut value: Value, namespace: &str) -> Result<Object, String> {
    if value["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        value["metadata"]["namespace"] = Value::String(namespace.to_string());
    }
    let bad = |e: serde_json::Error| format!("cannot decode the {kind}: {e}");
    Ok(match kind {
        ObjectKind::IpAddressPool => Object::Pool(serde_json::from_value(value).map_err(bad)?),
        ObjectKind::L2Advertisement => {
            Object::L2Advertisement(serde_json::from_value(value).map_err(bad)?)
        }
        ObjectKind::BgpAdvertisement => {
            Object::BgpAdvertisement(serde_json::from_value(value).map_err(bad)?)
        }
        ObjectKind::BgpPeer => {
            if value["apiVersion"] == "metallb.io/v1beta1" {
                let old: v1beta1::BgpPeer = serde_json::from_value(value).map_err(bad)?;
                Object::Peer(conversion::bgppeer_to_v1beta2(&old))
            } else {
                Object::Peer(serde_json::from_value::<v1beta2::BgpPeer>(value).map_err(bad)?)
            }
        }
        ObjectKind::BfdProfile => Object::BfdProfile(serde_json::from_value(value).map_err(bad)?),
        ObjectKind::Community => Object::Community(serde_json::from_value(value).map_err(bad)?),
    })
}

/// The verdict on one admission request: `Ok(warnings)` allowed (with what `kubectl` should
/// print as warnings), `Err(message)` denied.
pub fn review(
    kind: ObjectKind,
    request: &Value,
    existing: &ironlb_config::Objects,
    ctx: &Context,
) -> Result<Vec<String>, String> {
    let namespace = request["namespace"].as_str().unwrap_or_default();
    let name = request["name"].as_str().unwrap_or_default();
    match request["operation"].as_str() {
        Some("DELETE") => {
            let errors = ironlb_config::validate_delete(existing, ctx, kind, name);
            if errors.is_empty() {
                Ok(Vec::new())
            } else {
                Err(join(&errors))
            }
        }
        Some("CREATE") | Some("UPDATE") => {
            let object = parse_object(kind, request["object"].clone(), namespace)?;
            let verdict = ironlb_config::admit(existing, ctx, &object);
            if verdict.errors.is_empty() {
                Ok(verdict.warnings)
            } else {
                Err(join(&verdict.errors))
            }
        }
        _ => Ok(Vec::new()),
    }
}

fn join(errors: &[ironlb_config::ConfigError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

async fn validate(
    State(wh): State<Arc<Webhook>>,
    Path(hook): Path<String>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let request = &body["request"];
    let uid = request["uid"].clone();
    let verdict = match kind_of_path(&hook) {
        // Whether two BGPAdvertisements conflict depends on which Nodes both select: judged
        // on what the API server holds now, Nodes included, as MetalLB does.
        Some(kind @ ObjectKind::BgpAdvertisement) => match live_objects(&wh).await {
            Ok(live) => review(kind, request, &live, &wh.ctx),
            Err(e) => Err(format!("cannot read the configuration and the Nodes: {e}")),
        },
        Some(kind) => match review(kind, request, &wh.stores.objects(), &wh.ctx) {
            Ok(warnings) if warnings.is_empty() => Ok(warnings),
            // The stores may not have seen a write made an instant ago (the pool an
            // advertisement names, the other half of a conflict, in the same `kubectl
            // apply`): before denying or warning, look again at what the API server holds
            // now. Both are rare, so the extra reads are cheap.
            cached => match ironlb_k8s::fetch_objects(&wh.client, &wh.ctx.namespace).await {
                Ok(live) => review(kind, request, &live, &wh.ctx),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-read the configuration; judging from the cache");
                    cached
                }
            },
        },
        None => Err(format!("no webhook at /{hook}")),
    };
    let response = match verdict {
        Ok(warnings) if warnings.is_empty() => json!({"uid": uid, "allowed": true}),
        Ok(warnings) => json!({"uid": uid, "allowed": true, "warnings": warnings}),
        Err(message) => {
            tracing::info!(hook, %message, "admission denied");
            json!({"uid": uid, "allowed": false, "status": {"code": 422, "reason": "Invalid", "message": message}})
        }
    };
    Json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }))
}

/// The configuration objects and the Nodes' labels, read from the API server now.
async fn live_objects(wh: &Webhook) -> Result<ironlb_config::Objects, kube::Error> {
    let mut objects = ironlb_k8s::fetch_objects(&wh.client, &wh.ctx.namespace).await?;
    objects.nodes = Some(ironlb_k8s::fetch_node_labels(&wh.client).await?);
    Ok(objects)
}

/// Converts BGPPeers to `desired` (`metallb.io/v1beta1` or `metallb.io/v1beta2`).
pub fn convert_objects(objects: &[Value], desired: &str) -> Result<Vec<Value>, String> {
    objects
        .iter()
        .map(|o| {
            if o["apiVersion"] == desired {
                return Ok(o.clone());
            }
            let bad = |e: serde_json::Error| format!("cannot decode BGPPeer: {e}");
            match desired {
                "metallb.io/v1beta2" => {
                    let old: v1beta1::BgpPeer = serde_json::from_value(o.clone()).map_err(bad)?;
                    serde_json::to_value(conversion::bgppeer_to_v1beta2(&old)).map_err(bad)
                }
                "metallb.io/v1beta1" => {
                    let new: v1beta2::BgpPeer = serde_json::from_value(o.clone()).map_err(bad)?;
                    serde_json::to_value(conversion::bgppeer_to_v1beta1(&new)).map_err(bad)
                }
                other => Err(format!("cannot convert to {other}")),
            }
        })
        .collect()
}

async fn convert(Json(body): Json<Value>) -> Json<Value> {
    Json(conversion_review(&body))
}

/// The answer to a ConversionReview (`body`): the objects converted, or a failure naming why.
pub fn conversion_review(body: &Value) -> Value {
    let request = &body["request"];
    let desired = request["desiredAPIVersion"].as_str().unwrap_or_default();
    let objects = request["objects"].as_array().cloned().unwrap_or_default();
    let response = match convert_objects(&objects, desired) {
        Ok(converted) => json!({
            "uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"},
        }),
        Err(message) => json!({
            "uid": request["uid"], "convertedObjects": [],
            "result": {"status": "Failure", "message": message},
        }),
    };
    // Answer in the version asked in: a CRD written for MetalLB lists
    // `conversionReviewVersions: [v1beta1, v1beta2]`, and then the API server sends
    // apiextensions.k8s.io/v1beta1 reviews (the same shape as v1).
    const V1BETA1: &str = "apiextensions.k8s.io/v1beta1";
    let api_version = if body["apiVersion"] == V1BETA1 {
        V1BETA1
    } else {
        "apiextensions.k8s.io/v1"
    };
    json!({
        "apiVersion": api_version,
        "kind": "ConversionReview",
        "response": response,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bgppeer_crd(conversion: Value) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "metadata": {"name": "bgppeers.metallb.io"},
            "spec": {"group": "metallb.io", "scope": "Namespaced",
                "names": {"kind": "BGPPeer", "plural": "bgppeers"}, "versions": [],
                "conversion": conversion},
        }))
        .unwrap()
    }

    #[test]
    fn only_the_ca_bundle_of_a_webhook_conversion_is_patched() {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let shipped = json!({"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "metallb-webhook-service",
                "namespace": "metallb-system", "path": "/convert"}}}});
        let ConversionCa::Patch(patch) = conversion_ca_patch(&bgppeer_crd(shipped.clone()), ca)
        else {
            panic!("no patch for a CRD without caBundle");
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(ca);
        // Nothing but the caBundle: no strategy, no Service, no review versions.
        assert_eq!(
            patch,
            json!({"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": b64}}}}})
        );
        let mut injected = shipped.clone();
        injected["webhook"]["clientConfig"]["caBundle"] = json!(b64);
        assert_eq!(
            conversion_ca_patch(&bgppeer_crd(injected.clone()), ca),
            ConversionCa::UpToDate
        );
        // A rotated CA is patched in again.
        assert!(matches!(
            conversion_ca_patch(&bgppeer_crd(injected), "another CA"),
            ConversionCa::Patch(_)
        ));
        // A CRD that does not convert through a webhook is left alone (the API server would
        // refuse a caBundle there).
        assert_eq!(
            conversion_ca_patch(&bgppeer_crd(json!({"strategy": "None"})), ca),
            ConversionCa::NoWebhook("None".into())
        );
    }

    #[test]
    fn conversion_reviews_are_answered_in_their_own_version() {
        let request = |api_version: &str| {
            json!({"apiVersion": api_version, "kind": "ConversionReview", "request": {
                "uid": "u1", "desiredAPIVersion": "metallb.io/v1beta2", "objects": [{
                    "apiVersion": "metallb.io/v1beta1", "kind": "BGPPeer",
                    "metadata": {"name": "p", "namespace": "metallb-system"},
                    "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "10.0.0.1"}}]}})
        };
        for version in ["apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1"] {
            let answer = conversion_review(&request(version));
            assert_eq!(answer["apiVersion"], version);
            assert_eq!(answer["response"]["uid"], "u1");
            assert_eq!(answer["response"]["result"]["status"], "Success");
            assert_eq!(
                answer["response"]["convertedObjects"][0]["apiVersion"],
                "metallb.io/v1beta2"
            );
        }
        let mut bad = request("apiextensions.k8s.io/v1");
        bad["request"]["desiredAPIVersion"] = json!("metallb.io/v9");
        assert_eq!(
            conversion_review(&bad)["response"]["result"]["status"],
            "Failure"
        );
    }

    #[test]
    fn paths_name_kinds() {
        assert_eq!(
            kind_of_path("validate-metallb-io-v1beta1-ipaddresspool"),
            Some(ObjectKind::IpAddressPool)
        );
        assert_eq!(
            kind_of_path("validate-metallb-io-v1beta2-bgppeer"),
            Some(ObjectKind::BgpPeer)
        );
        assert_eq!(kind_of_path("validate-nothing"), None);
    }

    #[test]
    fn review_names_the_field() {
        let ctx = Context::default();
        let req = json!({
            "operation": "CREATE", "namespace": "metallb-system", "name": "bad",
            "object": {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                "metadata": {"name": "bad"}, "spec": {"addresses": ["10.0.0.300/24"]}},
        });
        let err = review(
            ObjectKind::IpAddressPool,
            &req,
            &ironlb_config::Objects::default(),
            &ctx,
        )
        .unwrap_err();
        assert!(err.contains("spec.addresses[0]"), "{err}");
        let ok = json!({
            "operation": "CREATE", "namespace": "metallb-system", "name": "good",
            "object": {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                "metadata": {"name": "good"}, "spec": {"addresses": ["10.0.0.0/24"]}},
        });
        assert!(
            review(
                ObjectKind::IpAddressPool,
                &ok,
                &ironlb_config::Objects::default(),
                &ctx
            )
            .is_ok()
        );
    }

    #[test]
    fn references_and_deprecations_are_admitted_with_warnings() {
        let ctx = Context {
            features: crate::features(),
            ..Context::default()
        };
        let req = json!({
            "operation": "CREATE", "namespace": "metallb-system", "name": "p",
            "object": {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
                "metadata": {"name": "p"},
                "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "10.0.0.1",
                    "bfdProfile": "later", "passwordSecret": {"name": "later"}, "disableMP": true}},
        });
        let none = ironlb_config::Objects::default();
        let warnings = review(ObjectKind::BgpPeer, &req, &none, &ctx).unwrap();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0..2].iter().any(|w| w.contains("spec.bfdProfile")));
        assert!(
            warnings[0..2]
                .iter()
                .any(|w| w.contains("spec.passwordSecret"))
        );
        assert!(warnings[2].contains("spec.disableMP is deprecated"));
        // The same peer with a real error is still refused, naming only that error.
        let mut bad = req.clone();
        bad["object"]["spec"]["holdTime"] = json!("1s");
        let err = review(ObjectKind::BgpPeer, &bad, &none, &ctx).unwrap_err();
        assert!(
            err.contains("spec.holdTime") && !err.contains("bfdProfile"),
            "{err}"
        );
        // Deletes are refused only for a BFDProfile a peer names.
        let peer: ironlb_api::v1beta2::BgpPeer =
            serde_json::from_value(req["object"].clone()).unwrap();
        let with_peer = ironlb_config::Objects {
            peers: vec![peer],
            ..Default::default()
        };
        let delete = |kind, name: &str| {
            review(
                kind,
                &json!({"operation": "DELETE", "namespace": "metallb-system", "name": name}),
                &with_peer,
                &ctx,
            )
        };
        let err = delete(ObjectKind::BfdProfile, "later").unwrap_err();
        assert!(err.contains("still used by BGPPeer \"p\""), "{err}");
        assert_eq!(delete(ObjectKind::BfdProfile, "other"), Ok(Vec::new()));
        assert_eq!(delete(ObjectKind::IpAddressPool, "any"), Ok(Vec::new()));
    }

    #[test]
    fn conversion_round_trips() {
        let v1 = json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPPeer",
            "metadata": {"name": "p", "namespace": "metallb-system"},
            "spec": {"myASN": 64513, "peerASN": 64512, "peerAddress": "10.0.0.1"}});
        let v2 = convert_objects(std::slice::from_ref(&v1), "metallb.io/v1beta2").unwrap();
        assert_eq!(v2[0]["apiVersion"], "metallb.io/v1beta2");
        assert_eq!(v2[0]["spec"]["peerASN"], 64512);
        let back = convert_objects(&v2, "metallb.io/v1beta1").unwrap();
        assert_eq!(back[0]["spec"]["peerAddress"], "10.0.0.1");
        assert!(convert_objects(&v2, "metallb.io/v9").is_err());
    }

    #[test]
    fn generated_certificates_load() {
        let b = generate(&["svc.ns.svc".into()], Duration::from_secs(3600)).unwrap();
        assert!(b.certified_key().is_ok());
        assert!(b.not_after > now_unix());
    }
}
