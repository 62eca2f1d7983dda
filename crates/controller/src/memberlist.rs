//! The `memberlist` Secret: the key the speakers authenticate their membership probes with.
//! As MetalLB's controller does, ours creates it when it is missing, so a fresh install needs
//! nothing made by hand; one that exists (made by an earlier start, by MetalLB, or by the
//! user) is never changed, or the speakers would stop understanding each other.
//!
//! ```text
//!   controller start, --ml-secret-name memberlist (METALLB_ML_SECRET_NAME)
//!     GET  secrets/memberlist  -- exists --> done
//!     GET  deployments/<--deployment>        (owner, so uninstalling deletes the Secret)
//!     POST secrets  {secretkey: base64(16 random bytes)}   (409: another replica won: done)
//!   speaker: volume secret/memberlist at METALLB_ML_SECRET_KEY_PATH, reads <path>/secretkey
//! ```

use anyhow::{Context as _, Result};
use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// The key of the Secret that holds the membership key (MetalLB's `MLSecretKeyName`).
pub const SECRET_KEY: &str = "secretkey";

/// Random bytes in a key: 128 bits, as MetalLB's.
const KEY_BYTES: usize = 16;

/// What [`ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The Secret was there already and was left as it is.
    Existed,
    /// The Secret was missing and has been created.
    Created,
}

/// A fresh membership key: [`KEY_BYTES`] random bytes, base64 without padding (what MetalLB
/// writes, so its speakers and ours read the same kind of key).
pub fn generate_key() -> Result<String> {
    let mut bytes = [0u8; KEY_BYTES];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
}

/// The Secret `namespace/name` holding `key`, owned by `owner` when given.
pub fn secret(name: &str, namespace: &str, key: &str, owner: Option<&Deployment>) -> Secret {
    let owner_references = owner.and_then(|d| {
        Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: d.metadata.name.clone()?,
            uid: d.metadata.uid.clone()?,
            ..Default::default()
        }])
    });
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            owner_references,
            ..Default::default()
        },
        data: Some(
            [(SECRET_KEY.to_string(), ByteString(key.as_bytes().to_vec()))]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    }
}

/// Creates the Secret `namespace/name` when it is missing, owned by the Deployment
/// `deployment` if that is given and found; never touches an existing one.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    name: &str,
    deployment: &str,
) -> Result<Outcome> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if secrets
        .get_opt(name)
        .await
        .with_context(|| format!("reading Secret {namespace}/{name}"))?
        .is_some()
    {
        return Ok(Outcome::Existed);
    }
    let owner = if deployment.is_empty() {
        None
    } else {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        match deployments.get_opt(deployment).await {
            Ok(Some(d)) => Some(d),
            Ok(None) => {
                tracing::warn!(%deployment, secret = %name, "no such Deployment: the memberlist Secret gets no owner");
                None
            }
            Err(e) => {
                tracing::warn!(%deployment, secret = %name, error = %e, "cannot read the Deployment: the memberlist Secret gets no owner");
                None
            }
        }
    };
    let secret = secret(name, namespace, &generate_key()?, owner.as_ref());
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = %name, "memberlist Secret created");
            Ok(Outcome::Created)
        }
        // Another replica created it between our read and our create: theirs stands.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Outcome::Existed),
        Err(e) => Err(e).with_context(|| format!("creating Secret {namespace}/{name}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_16_random_bytes_in_unpadded_base64() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_eq!(a.len(), 22, "{a}");
        assert!(!a.ends_with('='), "{a}");
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&a)
            .unwrap();
        assert_eq!(bytes.len(), 16);
        assert_ne!(a, b, "two keys alike");
    }

    #[test]
    fn the_secret_holds_the_key_under_secretkey_and_names_its_owner() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "controller", "namespace": "metallb-system", "uid": "u-1"},
        }))
        .unwrap();
        let s = secret("memberlist", "metallb-system", "k3y", Some(&deployment));
        assert_eq!(s.metadata.name.as_deref(), Some("memberlist"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("metallb-system"));
        assert_eq!(s.data.as_ref().unwrap()["secretkey"].0, b"k3y");
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            ("apps/v1", "Deployment", "controller", "u-1")
        );
        let orphan = secret("memberlist", "metallb-system", "k3y", None);
        assert_eq!(orphan.metadata.owner_references, None);
    }
}
