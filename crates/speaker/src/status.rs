//! ServiceL2Status objects: one per Service this node announces, owned by the speaker Pod.
//!
//! ```text
//!   watch::Receiver<DesiredStatuses>  (service key -> interfaces; coalesced: only the latest)
//!        |
//!        v  StatusWriter::run: list ours (label metallb.io/node=<node>) at start and every 5 min,
//!           then create (generateName l2-, labels, ownerReference; status via the subresource),
//!           patch interfaces, delete what is no longer ours; failures retried after 1 s
//! ```

use futures::StreamExt;
use ironlb_api::v1beta1::{InterfaceInfo, ServiceL2Status, ServiceL2StatusStatus};
use ironlb_k8s::metrics::K8sClientMetrics;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// Label: the announcing node.
pub const LABEL_NODE: &str = "metallb.io/node";
/// Label: the Service's name.
pub const LABEL_SERVICE_NAME: &str = "metallb.io/service-name";
/// Label: the Service's namespace.
pub const LABEL_SERVICE_NAMESPACE: &str = "metallb.io/service-namespace";

/// What should exist: Service key (`namespace/name`) -> the interfaces it is announced on.
pub type DesiredStatuses = BTreeMap<String, Vec<String>>;

/// Writes this node's ServiceL2Status objects.
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

fn status_of(key: &str, node: &str, interfaces: &[String]) -> ServiceL2StatusStatus {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    ServiceL2StatusStatus {
        node: Some(node.to_string()),
        service_name: Some(name.to_string()),
        service_namespace: Some(ns.to_string()),
        interfaces: interfaces
            .iter()
            .map(|i| InterfaceInfo {
                name: Some(i.clone()),
            })
            .collect(),
    }
}

enum Op {
    Create(String, Vec<String>),
    Patch(String, String, Vec<String>),
    Delete(String, String),
}

impl StatusWriter {
    async fn list(&self, api: &Api<ServiceL2Status>) -> kube::Result<BTreeMap<String, Existing>> {
        let list = api
            .list(&ListParams::default().labels(&format!("{LABEL_NODE}={}", self.node)))
            .await?;
        let mut out = BTreeMap::new();
        for o in list.items {
            let labels = o.metadata.labels.clone().unwrap_or_default();
            let (Some(ns), Some(name), Some(obj)) = (
                labels.get(LABEL_SERVICE_NAMESPACE),
                labels.get(LABEL_SERVICE_NAME),
                o.metadata.name.clone(),
            ) else {
                continue;
            };
            let key = format!("{ns}/{name}");
            let interfaces = o
                .status
                .as_ref()
                .map(|s| s.interfaces.iter().filter_map(|i| i.name.clone()).collect())
                .unwrap_or_default();
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

    async fn apply(
        &self,
        api: &Api<ServiceL2Status>,
        op: Op,
    ) -> Result<(String, Option<Existing>), String> {
        self.metrics.updates.inc();
        let result = match op {
            Op::Create(key, interfaces) => {
                let (ns, name) = key.split_once('/').unwrap_or(("", &key));
                let obj = ServiceL2Status {
                    metadata: kube::api::ObjectMeta {
                        generate_name: Some("l2-".into()),
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
                    },
                    spec: Default::default(),
                    status: None,
                };
                let created = api.create(&PostParams::default(), &obj).await;
                match created.map(|c| c.metadata.name) {
                    Ok(Some(obj_name)) => {
                        let patch =
                            serde_json::json!({"status": status_of(&key, &self.node, &interfaces)});
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
                                tracing::warn!(service = %key, error = %e, "ServiceL2Status status");
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
                        tracing::warn!(service = %key, error = %e, "creating ServiceL2Status");
                        Err(key)
                    }
                }
            }
            Op::Patch(key, obj_name, interfaces) => {
                let patch = serde_json::json!({"status": status_of(&key, &self.node, &interfaces)});
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
                        tracing::warn!(service = %key, error = %e, "updating ServiceL2Status");
                        Err(key)
                    }
                }
            }
            Op::Delete(key, obj_name) => {
                match api.delete(&obj_name, &DeleteParams::default()).await {
                    Ok(_) => Ok((key, None)),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok((key, None)),
                    Err(e) => {
                        tracing::warn!(service = %key, error = %e, "deleting ServiceL2Status");
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

    /// Keeps the objects equal to the latest desired set until the sender is dropped.
    pub async fn run(self, mut desired: watch::Receiver<DesiredStatuses>) {
        let api: Api<ServiceL2Status> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut existing: Option<BTreeMap<String, Existing>> = None;
        let mut retry = false;
        let mut relist = tokio::time::interval(Duration::from_secs(300));
        relist.tick().await;
        loop {
            if existing.is_none() {
                match self.list(&api).await {
                    Ok(e) => existing = Some(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "listing ServiceL2Status objects");
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
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                _ = wait_retry => {}
                _ = relist.tick() => existing = None,
            }
        }
    }
}
