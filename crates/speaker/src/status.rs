//! ServiceL2Status and ServiceBGPStatus objects: one per Service this node announces, owned
//! by the speaker Pod. One writer serves both kinds ([`StatusKind`]).
//!
//! ```text
//!   watch::Receiver<DesiredStatuses>  (service key -> interfaces / peers; coalesced)
//!        |
//!        v  StatusWriter::run_for::<K>: list ours (label metallb.io/node=<node>) at start and
//!           every 5 min, then create (generateName l2- / bgp-, labels, ownerReference; status
//!           via the subresource), patch the list, delete what is no longer ours; failures
//!           retried after 1 s
//! ```

use futures::StreamExt;
use ironlb_api::v1beta1::{
    InterfaceInfo, ServiceBgpStatus, ServiceBgpStatusStatus, ServiceL2Status, ServiceL2StatusStatus,
};
use ironlb_k8s::metrics::K8sClientMetrics;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// A per-Service, per-node status kind the speaker writes.
pub trait StatusKind:
    kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + serde::Serialize
    + Send
    + Sync
    + 'static
{
    /// `generateName` of new objects (`l2-`, `bgp-`).
    const PREFIX: &'static str;
    /// A new object without status.
    fn with_metadata(metadata: ObjectMeta) -> Self;
    /// The list the status holds (interfaces, peers).
    fn items(&self) -> Vec<String>;
    /// The `status` for Service `key` announced from `node` with `items`.
    fn status_json(key: &str, node: &str, items: &[String]) -> serde_json::Value;
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

impl StatusKind for ServiceL2Status {
    const PREFIX: &'static str = "l2-";
    fn with_metadata(metadata: ObjectMeta) -> Self {
        ServiceL2Status {
            metadata,
            spec: Default::default(),
            status: None,
        }
    }
    fn items(&self) -> Vec<String> {
        self.status
            .as_ref()
            .map(|s| s.interfaces.iter().filter_map(|i| i.name.clone()).collect())
            .unwrap_or_default()
    }
    fn status_json(key: &str, node: &str, items: &[String]) -> serde_json::Value {
        let (ns, name) = split_key(key);
        serde_json::json!(ServiceL2StatusStatus {
            node: Some(node.to_string()),
            service_name: Some(name.to_string()),
            service_namespace: Some(ns.to_string()),
            interfaces: items
                .iter()
                .map(|i| InterfaceInfo {
                    name: Some(i.clone()),
                })
                .collect(),
        })
    }
}

impl StatusKind for ServiceBgpStatus {
    const PREFIX: &'static str = "bgp-";
    fn with_metadata(metadata: ObjectMeta) -> Self {
        ServiceBgpStatus {
            metadata,
            spec: Default::default(),
            status: None,
        }
    }
    fn items(&self) -> Vec<String> {
        self.status
            .as_ref()
            .map(|s| s.peers.clone())
            .unwrap_or_default()
    }
    fn status_json(key: &str, node: &str, items: &[String]) -> serde_json::Value {
        let (ns, name) = split_key(key);
        serde_json::json!(ServiceBgpStatusStatus {
            node: Some(node.to_string()),
            service_name: Some(name.to_string()),
            service_namespace: Some(ns.to_string()),
            peers: items.to_vec(),
        })
    }
}

/// Label: the announcing node.
pub const LABEL_NODE: &str = "metallb.io/node";
/// Label: the Service's name.
pub const LABEL_SERVICE_NAME: &str = "metallb.io/service-name";
/// Label: the Service's namespace.
pub const LABEL_SERVICE_NAMESPACE: &str = "metallb.io/service-namespace";

/// What should exist: Service key (`namespace/name`) -> the interfaces (L2) or peers (BGP) it
/// is announced on.
pub type DesiredStatuses = BTreeMap<String, Vec<String>>;

/// Writes this node's ServiceL2Status or ServiceBGPStatus objects.
pub struct StatusWriter {
    /// The client (the speaker's ServiceAccount).
    pub client: Client,
    /// ironlb's namespace (where the objects live).
    pub namespace: String,
    /// This node.
    pub node: String,
    /// The speaker Pod, when it exists: the objects' owner (garbage-collected with it).
    pub owner: Option<OwnerReference>,
    /// Write counters.
    pub metrics: K8sClientMetrics,
}

#[derive(Debug, Clone)]
struct Existing {
    name: String,
    interfaces: Vec<String>,
}

enum Op {
    Create(String, Vec<String>),
    Patch(String, String, Vec<String>),
    Delete(String, String),
}

impl StatusWriter {
    async fn list<K: StatusKind>(&self, api: &Api<K>) -> kube::Result<BTreeMap<String, Existing>> {
        let list = api
            .list(&ListParams::default().labels(&format!("{LABEL_NODE}={}", self.node)))
            .await?;
        let mut out = BTreeMap::new();
        for o in list.items {
            let labels = o.meta().labels.clone().unwrap_or_default();
            let (Some(ns), Some(name), Some(obj)) = (
                labels.get(LABEL_SERVICE_NAMESPACE),
                labels.get(LABEL_SERVICE_NAME),
                o.meta().name.clone(),
            ) else {
                continue;
            };
            let key = format!("{ns}/{name}");
            let interfaces = o.items();
            if let Some(dup) = out.insert(
                key,
                Existing {
                    name: obj,
                    interfaces,
                },
            ) {
                // Two objects for one Service: keep one, delete the other.
                let _ = api.delete(&dup.name, &DeleteParams::default()).await;
            }
        }
        Ok(out)
    }

    async fn apply<K: StatusKind>(
        &self,
        api: &Api<K>,
        op: Op,
    ) -> Result<(String, Option<Existing>), String> {
        self.metrics.updates.inc();
        let result = match op {
            Op::Create(key, interfaces) => {
                let (ns, name) = key.split_once('/').unwrap_or(("", &key));
                let obj = K::with_metadata(ObjectMeta {
                    generate_name: Some(K::PREFIX.into()),
                    namespace: Some(self.namespace.clone()),
                    labels: Some(
                        [
                            (LABEL_NODE.to_string(), self.node.clone()),
                            (LABEL_SERVICE_NAME.to_string(), name.to_string()),
                            (LABEL_SERVICE_NAMESPACE.to_string(), ns.to_string()),
                        ]
                        .into(),
                    ),
                    owner_references: self.owner.clone().map(|o| vec![o]),
                    ..Default::default()
                });
                let created = api.create(&PostParams::default(), &obj).await;
                match created.map(|c| c.meta().name.clone()) {
                    Ok(Some(obj_name)) => {
                        let patch = serde_json::json!({"status": K::status_json(&key, &self.node, &interfaces)});
                        match api
                            .patch_status(&obj_name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                        {
                            Ok(_) => Ok((
                                key,
                                Some(Existing {
                                    name: obj_name,
                                    interfaces,
                                }),
                            )),
                            // The object exists without interfaces: retried as a patch.
                            Err(e) => {
                                tracing::warn!(kind = %K::kind(&()), service = %key, error = %e, "writing the status");
                                Ok((
                                    key,
                                    Some(Existing {
                                        name: obj_name,
                                        interfaces: vec!["?".into()],
                                    }),
                                ))
                            }
                        }
                    }
                    Ok(None) => Err(key),
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&()), service = %key, error = %e, "creating a status object");
                        Err(key)
                    }
                }
            }
            Op::Patch(key, obj_name, interfaces) => {
                let patch =
                    serde_json::json!({"status": K::status_json(&key, &self.node, &interfaces)});
                match api
                    .patch_status(&obj_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Ok((
                        key,
                        Some(Existing {
                            name: obj_name,
                            interfaces,
                        }),
                    )),
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&()), service = %key, error = %e, "updating a status object");
                        Err(key)
                    }
                }
            }
            Op::Delete(key, obj_name) => {
                match api.delete(&obj_name, &DeleteParams::default()).await {
                    Ok(_) => Ok((key, None)),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok((key, None)),
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&()), service = %key, error = %e, "deleting a status object");
                        Err(key)
                    }
                }
            }
        };
        if result.is_err() {
            self.metrics.update_errors.inc();
        }
        result
    }

    /// Keeps the ServiceL2Status objects equal to the latest desired set until the sender is
    /// dropped.
    pub async fn run(self, desired: watch::Receiver<DesiredStatuses>) {
        self.run_for::<ServiceL2Status>(desired).await;
    }

    /// Keeps the ServiceL2Status objects equal to the latest desired set until the sender is
    /// dropped; re-reads what exists whenever `relist` changes (a peer came back: while this
    /// node was cut off, the others may have deleted its objects).
    pub async fn run_with_relist(
        self,
        desired: watch::Receiver<DesiredStatuses>,
        relist: watch::Receiver<()>,
    ) {
        self.run_relisting::<ServiceL2Status>(desired, Some(relist))
            .await;
    }

    /// Keeps the objects of kind `K` equal to the latest desired set until the sender is
    /// dropped.
    pub async fn run_for<K: StatusKind>(self, desired: watch::Receiver<DesiredStatuses>) {
        self.run_relisting::<K>(desired, None).await;
    }

    async fn run_relisting<K: StatusKind>(
        self,
        mut desired: watch::Receiver<DesiredStatuses>,
        mut relist_on: Option<watch::Receiver<()>>,
    ) {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut existing: Option<BTreeMap<String, Existing>> = None;
        let mut retry = false;
        let mut relist = tokio::time::interval(Duration::from_secs(300));
        relist.tick().await;
        loop {
            if existing.is_none() {
                match self.list(&api).await {
                    Ok(e) => existing = Some(e),
                    Err(e) => {
                        tracing::warn!(kind = %K::kind(&()), error = %e, "listing status objects");
                        retry = true;
                    }
                }
            }
            if let Some(current) = existing.as_mut() {
                let want = desired.borrow_and_update().clone();
                let mut ops = Vec::new();
                for (key, interfaces) in &want {
                    match current.get(key) {
                        None => ops.push(Op::Create(key.clone(), interfaces.clone())),
                        Some(e) if e.interfaces != *interfaces => {
                            ops.push(Op::Patch(key.clone(), e.name.clone(), interfaces.clone()))
                        }
                        Some(_) => {}
                    }
                }
                for (key, e) in current.iter() {
                    if !want.contains_key(key) {
                        ops.push(Op::Delete(key.clone(), e.name.clone()));
                    }
                }
                let results: Vec<_> = futures::stream::iter(ops)
                    .map(|op| self.apply(&api, op))
                    .buffer_unordered(16)
                    .collect()
                    .await;
                retry = false;
                for r in results {
                    match r {
                        Ok((key, Some(e))) => {
                            current.insert(key, e);
                        }
                        Ok((key, None)) => {
                            current.remove(&key);
                        }
                        Err(_) => retry = true,
                    }
                }
            }
            let wait_retry = async {
                if retry {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                } else {
                    futures::future::pending::<()>().await;
                }
            };
            let asked = async {
                let asked = match relist_on.as_mut() {
                    Some(r) => r.changed().await.is_ok(),
                    None => false,
                };
                if !asked {
                    futures::future::pending::<()>().await;
                }
            };
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                _ = wait_retry => {}
                _ = relist.tick() => existing = None,
                _ = asked => existing = None,
            }
        }
    }
}

/// A status object left by a node that is no longer a live member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftBehind {
    /// The object's name.
    pub name: String,
    /// The Service it describes (`namespace/name`, from its labels).
    pub service: String,
    /// When it was created (Unix seconds; the API server keeps whole seconds).
    pub created: i64,
}

/// Which objects of a departed node this speaker deletes, so that exactly one live speaker
/// deletes each: the Service's new owner deletes it (`owned_here`); a Service that nobody owns
/// now (`has_owner` lacks it, or it no longer exists) is cleaned up by the `sweeper` (the live
/// speaker with the smallest node name). Objects created after the departure (`departed_at`,
/// Unix seconds) are kept: the node came back and wrote them again.
pub fn left_behind_to_delete<'a>(
    objects: &'a [LeftBehind],
    departed_at: i64,
    owned_here: &std::collections::BTreeSet<String>,
    has_owner: &std::collections::BTreeSet<String>,
    sweeper: bool,
) -> Vec<&'a LeftBehind> {
    objects
        .iter()
        .filter(|o| o.created <= departed_at)
        .filter(|o| owned_here.contains(&o.service) || (sweeper && !has_owner.contains(&o.service)))
        .collect()
}

/// Deletes the ServiceL2Status objects of `departed` (a node whose speaker is no longer a live
/// member) that [`left_behind_to_delete`] gives this speaker; returns how many it deleted.
pub async fn delete_left_behind(
    client: Client,
    namespace: String,
    departed: String,
    departed_at: i64,
    owned_here: std::collections::BTreeSet<String>,
    has_owner: std::collections::BTreeSet<String>,
    sweeper: bool,
) -> kube::Result<usize> {
    let api: Api<ServiceL2Status> = Api::namespaced(client, &namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{LABEL_NODE}={departed}")))
        .await?;
    let objects: Vec<LeftBehind> = list
        .items
        .iter()
        .filter_map(|o| {
            let labels = o.metadata.labels.as_ref()?;
            Some(LeftBehind {
                name: o.metadata.name.clone()?,
                service: format!(
                    "{}/{}",
                    labels.get(LABEL_SERVICE_NAMESPACE)?,
                    labels.get(LABEL_SERVICE_NAME)?
                ),
                created: o
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(i64::MAX, |t| t.0.as_second()),
            })
        })
        .collect();
    let mut deleted = 0;
    for o in left_behind_to_delete(&objects, departed_at, &owned_here, &has_owner, sweeper) {
        match api.delete(&o.name, &DeleteParams::default()).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
        tracing::info!(object = %o.name, service = %o.service, node = %departed, "deleted the ServiceL2Status of a departed node");
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn obj(name: &str, service: &str, created: i64) -> LeftBehind {
        LeftBehind {
            name: name.into(),
            service: service.into(),
            created,
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_new_owner_deletes_and_the_sweeper_takes_the_ownerless() {
        let objects = [
            obj("l2-a", "default/a", 100),
            obj("l2-b", "default/b", 100),
            obj("l2-gone", "default/gone", 100),
            obj("l2-new", "default/a", 106),
        ];
        let names = |v: Vec<&LeftBehind>| v.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
        // a is owned here, b elsewhere; gone has no owner (or no Service any more).
        let has_owner = set(&["default/a", "default/b"]);
        let mine = set(&["default/a"]);
        assert_eq!(
            names(left_behind_to_delete(
                &objects, 105, &mine, &has_owner, false
            )),
            ["l2-a"]
        );
        assert_eq!(
            names(left_behind_to_delete(
                &objects, 105, &mine, &has_owner, true
            )),
            ["l2-a", "l2-gone"]
        );
        // The owner of b deletes b, the sweeper nothing more; nobody deletes l2-new (written
        // after the departure: the node came back).
        let theirs = set(&["default/b"]);
        assert_eq!(
            names(left_behind_to_delete(
                &objects, 105, &theirs, &has_owner, false
            )),
            ["l2-b"]
        );
        assert!(left_behind_to_delete(&objects, 99, &mine, &has_owner, true).is_empty());
    }
}
