//! Watches and in-memory stores of the objects ironlb's configuration is made of.
//!
//! ```text
//!   API server --watch--> reflector (one per kind) --> Store<K>  --ConfigStores::objects()--> Objects
//!                              |
//!                              '--> Change::{Config, Namespace(name)} on an mpsc channel
//!
//!   metallb.io kinds + Secrets: in ironlb's namespace only;  Namespaces: cluster-wide (labels)
//! ```
//!
//! Watches resume by themselves (kube's watcher with backoff): after an API server restart they
//! re-list, the stores are replaced atomically and one [`Change::Config`] is sent.

use futures::StreamExt;
use ironlb_api::{v1beta1, v1beta2};
use ironlb_config::{Objects, SecretData};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use tokio::sync::mpsc;

/// What changed in the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A configuration object or Secret (or a whole kind, after a re-list).
    Config,
    /// A Namespace's labels may have changed.
    Namespace(String),
    /// Every Namespace was re-listed.
    AllNamespaces,
    /// A store has listed its kind for the first time (`kind`).
    Synced(&'static str),
}

/// Readers of every store.
#[derive(Clone)]
pub struct ConfigStores {
    /// IPAddressPools.
    pub pools: Store<v1beta1::IpAddressPool>,
    /// L2Advertisements.
    pub l2_advertisements: Store<v1beta1::L2Advertisement>,
    /// BGPAdvertisements.
    pub bgp_advertisements: Store<v1beta1::BgpAdvertisement>,
    /// BGPPeers (stored version).
    pub peers: Store<v1beta2::BgpPeer>,
    /// BFDProfiles.
    pub bfd_profiles: Store<v1beta1::BfdProfile>,
    /// Communities.
    pub communities: Store<v1beta1::Community>,
    /// Secrets of ironlb's namespace.
    pub secrets: Store<Secret>,
    /// Namespaces.
    pub namespaces: Store<Namespace>,
}

/// How many stores [`ConfigStores::spawn`] starts (each reports one [`Change::Synced`]).
pub const STORE_COUNT: usize = 8;

fn spawn_store<K>(
    api: Api<K>,
    kind: &'static str,
    tx: mpsc::Sender<Change>,
    change: fn(&K) -> Change,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut synced = false;
        let mut in_init = false;
        while let Some(event) = stream.next().await {
            let msg = match event {
                Ok(watcher::Event::Init) => {
                    in_init = true;
                    None
                }
                Ok(watcher::Event::InitApply(_)) => None,
                Ok(watcher::Event::InitDone) => {
                    in_init = false;
                    if !synced {
                        synced = true;
                        let _ = tx.send(Change::Synced(kind)).await;
                    }
                    Some(if kind == "Namespace" {
                        Change::AllNamespaces
                    } else {
                        Change::Config
                    })
                }
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) if !in_init => {
                    Some(change(&o))
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(kind, error = %e, "watch failed; retrying");
                    None
                }
            };
            if let Some(msg) = msg
                && tx.send(msg).await.is_err()
            {
                return;
            }
        }
    });
    reader
}

impl ConfigStores {
    /// Starts a watch and store for every kind; changes are sent on `tx`.
    pub fn spawn(client: &Client, namespace: &str, tx: mpsc::Sender<Change>) -> Self {
        ConfigStores {
            pools: spawn_store(
                Api::namespaced(client.clone(), namespace),
                "IPAddressPool",
                tx.clone(),
                |_| Change::Config,
            ),
            l2_advertisements: spawn_store(
                Api::namespaced(client.clone(), namespace),
                "L2Advertisement",
                tx.clone(),
                |_| Change::Config,
            ),
            bgp_advertisements: spawn_store(
                Api::namespaced(client.clone(), namespace),
                "BGPAdvertisement",
                tx.clone(),
                |_| Change::Config,
            ),
            peers: spawn_store(
                Api::namespaced(client.clone(), namespace),
                "BGPPeer",
                tx.clone(),
                |_| Change::Config,
            ),
            bfd_profiles: spawn_store(
                Api::namespaced(client.clone(), namespace),
                "BFDProfile",
                tx.clone(),
                |_| Change::Config,
            ),
            communities: spawn_store(
                Api::namespaced(client.clone(), namespace),
                "Community",
                tx.clone(),
                |_| Change::Config,
            ),
            secrets: spawn_store(
                Api::namespaced(client.clone(), namespace),
                "Secret",
                tx.clone(),
                |_| Change::Config,
            ),
            namespaces: spawn_store(
                Api::all(client.clone()),
                "Namespace",
                tx,
                |ns: &Namespace| Change::Namespace(ns.metadata.name.clone().unwrap_or_default()),
            ),
        }
    }

    /// The configuration objects as they are now (sorted by name, so the result is stable).
    pub fn objects(&self) -> Objects {
        fn sorted<K: Resource + Clone>(store: &Store<K>) -> Vec<K>
        where
            K::DynamicType: Eq + Hash + Clone,
        {
            let mut v: Vec<K> = store.state().iter().map(|o| (**o).clone()).collect();
            v.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
            v
        }
        Objects {
            pools: sorted(&self.pools),
            l2_advertisements: sorted(&self.l2_advertisements),
            bgp_advertisements: sorted(&self.bgp_advertisements),
            peers: sorted(&self.peers),
            bfd_profiles: sorted(&self.bfd_profiles),
            communities: sorted(&self.communities),
            secrets: self
                .secrets
                .state()
                .iter()
                .map(|s| (s.metadata.name.clone().unwrap_or_default(), secret_data(s)))
                .collect(),
            nodes: None,
        }
    }

    /// The labels of a Namespace (empty if unknown).
    pub fn namespace_labels(&self, name: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(&reflector::ObjectRef::new(name))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default()
    }
}

/// The configuration objects of `namespace` read straight from the API server (not from a
/// store). For the webhook's second look when the stores may lag behind a write that came
/// just before (a pool and the advertisement naming it in one `kubectl apply`).
pub async fn fetch_objects(client: &Client, namespace: &str) -> Result<Objects, kube::Error> {
    async fn list<K>(client: &Client, namespace: &str) -> Result<Vec<K>, kube::Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        let mut items = api.list(&Default::default()).await?.items;
        items.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        Ok(items)
    }
    let secrets: Vec<Secret> = list(client, namespace).await?;
    Ok(Objects {
        pools: list(client, namespace).await?,
        l2_advertisements: list(client, namespace).await?,
        bgp_advertisements: list(client, namespace).await?,
        peers: list(client, namespace).await?,
        bfd_profiles: list(client, namespace).await?,
        communities: list(client, namespace).await?,
        secrets: secrets
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap_or_default(), secret_data(s)))
            .collect(),
        nodes: None,
    })
}

/// The labels of every Node, read straight from the API server (for the rules that depend on
/// which Nodes exist: see [`Objects::nodes`]).
pub async fn fetch_node_labels(
    client: &Client,
) -> Result<Vec<BTreeMap<String, String>>, kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    Ok(api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|n| n.metadata.labels.unwrap_or_default())
        .collect())
}

/// A Secret as configuration sees it: its type and its data decoded as UTF-8 (keys whose value
/// is not UTF-8 are left out).
pub fn secret_data(secret: &Secret) -> SecretData {
    SecretData {
        type_: secret.type_.clone(),
        data: secret
            .data
            .iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
            .collect(),
    }
}
