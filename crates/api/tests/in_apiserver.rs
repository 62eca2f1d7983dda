//! The generated CRDs installed into the lab's real kube-apiserver (1.34): MetalLB's documented
//! example objects are accepted and come back with MetalLB's defaults, and the server itself
//! rejects (HTTP 422 Invalid, naming the field) everything the schema's ranges, enums,
//! required fields and CEL rules forbid. One lab for the whole file; needs root.
//!
//! Every check runs even when an earlier one failed; the test fails at the end listing them all.

use ironlb_api::{crd, v1beta1, v1beta2};
use ironlb_lab::{Lab, LabOptions};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use std::time::Duration;

const NS: &str = "metallb-system";

/// The lab's API server with the CRDs installed, and the tally of checks.
struct Server {
    client: Client,
    failures: Vec<String>,
    passed: usize,
}

/// The `ApiResource` of `apiVersion` / `kind`, its plural taken from the generated CRDs.
fn resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').expect("group/version");
    let plural = crd::all()
        .into_iter()
        .find(|(_, c)| c.spec.names.kind == kind)
        .map(|(_, c)| c.spec.names.plural)
        .unwrap_or_else(|| panic!("no CRD for kind {kind}"));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("test YAML: {e}\n{text}"))
}

fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

/// Follows a dotted path (`spec.peerPort`) into a JSON value.
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .unwrap_or(&Value::Null)
}

impl Server {
    fn api(&self, api_version: &str, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), NS, &resource(api_version, kind))
    }

    fn api_of(&self, obj: &Value) -> Api<DynamicObject> {
        let api_version = obj["apiVersion"].as_str().expect("apiVersion");
        let kind = obj["kind"].as_str().expect("kind");
        self.api(api_version, kind)
    }

    fn pass(&mut self, what: &str) {
        self.passed += 1;
        eprintln!("ok   {what}");
    }

    fn fail(&mut self, what: &str, why: String) {
        eprintln!("FAIL {what}: {why}");
        self.failures.push(format!("{what}: {why}"));
    }

    /// Asserts `cond` as a recorded check.
    fn check(&mut self, what: &str, cond: bool, detail: impl FnOnce() -> String) {
        if cond {
            self.pass(what);
        } else {
            self.fail(what, detail());
        }
    }

    /// Asserts that `path` of `obj` equals `want`.
    fn expect_at(&mut self, what: &str, obj: &Value, path: &str, want: Value) {
        let got = at(obj, path).clone();
        self.check(&format!("{what}: {path} == {want}"), got == want, || {
            format!("got {got}")
        });
    }

    async fn post(&self, obj: &Value, dry_run: bool) -> Result<Value, kube::Error> {
        let object: DynamicObject = serde_json::from_value(obj.clone()).expect("object JSON");
        let params = PostParams {
            dry_run,
            ..Default::default()
        };
        let created = self.api_of(obj).create(&params, &object).await?;
        Ok(serde_json::to_value(created).expect("object to JSON"))
    }

    /// Creates the object (for real) and returns what the server stored, defaults included.
    async fn accept(&mut self, what: &str, text: &str) -> Option<Value> {
        match self.post(&yaml(text), false).await {
            Ok(created) => {
                self.pass(&format!("accepted: {what}"));
                Some(created)
            }
            Err(e) => {
                self.fail(&format!("accepted: {what}"), describe(&e));
                None
            }
        }
    }

    /// The server accepts the object in a dry run (a boundary value of a range, ...).
    async fn accept_dry(&mut self, what: &str, obj: Value) {
        match self.post(&obj, true).await {
            Ok(_) => self.pass(&format!("accepted (dry run): {what}")),
            Err(e) => self.fail(&format!("accepted (dry run): {what}"), describe(&e)),
        }
    }

    /// Records whether `result` is a 422 Invalid whose message holds every one of `needles`.
    fn expect_invalid<T>(&mut self, what: &str, result: Result<T, kube::Error>, needles: &[&str]) {
        let what = format!("rejected: {what}");
        match result {
            Ok(_) => self.fail(&what, "the server accepted it".into()),
            Err(kube::Error::Api(s)) => {
                let missing: Vec<&&str> = needles
                    .iter()
                    .filter(|n| !s.message.contains(**n))
                    .collect();
                if s.code == 422 && s.reason == "Invalid" && missing.is_empty() {
                    eprintln!("     -> {}", s.message);
                    self.pass(&what);
                } else {
                    self.fail(
                        &what,
                        format!(
                            "HTTP {} {} (message lacks {missing:?}): {}",
                            s.code, s.reason, s.message
                        ),
                    );
                }
            }
            Err(e) => self.fail(&what, describe(&e)),
        }
    }

    /// The server refuses to create the object (dry run): 422 Invalid naming `needles`.
    async fn reject(&mut self, what: &str, obj: Value, needles: &[&str]) {
        let result = self.post(&obj, true).await;
        self.expect_invalid(what, result, needles);
    }

    /// Merge-patches the status sub-resource of `name`.
    async fn patch_status(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        status: Value,
    ) -> Result<Value, kube::Error> {
        let patched = self
            .api(api_version, kind)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await?;
        Ok(serde_json::to_value(patched).expect("object to JSON"))
    }

    /// Merge-patches `spec` of `name`.
    async fn patch_spec(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        spec: Value,
    ) -> Result<Value, kube::Error> {
        let patched = self
            .api(api_version, kind)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await?;
        Ok(serde_json::to_value(patched).expect("object to JSON"))
    }

    async fn get(&self, api_version: &str, kind: &str, name: &str) -> Result<Value, kube::Error> {
        let got = self.api(api_version, kind).get(name).await?;
        Ok(serde_json::to_value(got).expect("object to JSON"))
    }
}

/// An object of `kind` named `name` in [`NS`] with this spec.
fn object(api_version: &str, kind: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

/// Every generated CRD as this test installs it: BGPPeer's conversion webhook lives in the
/// controller, which this test does not run, so here its CRD converts by `apiVersion` only
/// (`strategy: None`, enough for the schema checks of this file). The conversion webhook is
/// tested against this API server in crates/ironlb (e2e_webhooks).
fn crds_without_conversion_webhook() -> Vec<(String, CustomResourceDefinition)> {
    let mut all = crd::all();
    for (_, definition) in &mut all {
        if let Some(conversion) = definition.spec.conversion.as_mut() {
            conversion.strategy = "None".into();
            conversion.webhook = None;
        }
    }
    all
}

/// Installs every generated CRD and waits until each is Established and its kind is served.
async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (file, definition) in crds_without_conversion_webhook() {
        crds.create(&PostParams::default(), &definition)
            .await
            .unwrap_or_else(|e| panic!("the API server refuses {file}: {}", describe(&e)));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (file, definition) in crd::all() {
        let name = definition.metadata.name.clone().expect("CRD name");
        loop {
            let current = crds.get(&name).await.expect("get CRD");
            let established = current
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{file} not Established: {:?}",
                current.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Established can precede the handler being routable for a moment: wait for a list.
        for version in &definition.spec.versions {
            let api_version = format!("{}/{}", definition.spec.group, version.name);
            let api: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                NS,
                &resource(&api_version, &definition.spec.names.kind),
            );
            while let Err(e) = api.list(&Default::default()).await {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{api_version} {} not served: {}",
                    definition.spec.names.kind,
                    describe(&e)
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crds_in_the_real_api_server() {
    let lab = Lab::start(LabOptions::for_test())
        .await
        .expect("lab starts (needs root)");
    let client = lab.client().await.expect("admin client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}})).expect("namespace"),
        )
        .await
        .expect("create metallb-system");
    install_crds(&client).await;

    let mut s = Server {
        client,
        failures: Vec::new(),
        passed: 0,
    };
    ip_address_pools(&mut s).await;
    l2_advertisements(&mut s).await;
    bgp_advertisements(&mut s).await;
    bgp_peers_v1beta2(&mut s).await;
    bgp_peers_v1beta1(&mut s).await;
    bfd_profiles(&mut s).await;
    communities(&mut s).await;
    service_statuses(&mut s).await;
    configuration_states(&mut s).await;

    eprintln!("{} checks passed, {} failed", s.passed, s.failures.len());
    drop(lab);
    assert!(
        s.failures.is_empty(),
        "{} of {} checks failed:\n{}",
        s.failures.len(),
        s.passed + s.failures.len(),
        s.failures.join("\n")
    );
}

const V1: &str = "metallb.io/v1beta1";
const V2: &str = "metallb.io/v1beta2";

async fn ip_address_pools(s: &mut Server) {
    if let Some(pool) = s
        .accept(
            "IPAddressPool with CIDRs and a range",
            r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: first-pool, namespace: metallb-system}
spec:
  addresses:
  - 192.168.10.0/24
  - 192.168.9.1-192.168.9.5
  - fc00:f853:0ccd:e799::/124
"#,
        )
        .await
    {
        s.expect_at("first-pool", &pool, "spec.autoAssign", json!(true));
        s.expect_at("first-pool", &pool, "spec.avoidBuggyIPs", json!(false));
        let typed: Result<v1beta1::IpAddressPool, _> = serde_json::from_value(pool.clone());
        s.check(
            "first-pool reads back into v1beta1::IpAddressPool",
            typed
                .as_ref()
                .is_ok_and(|p| p.spec.addresses.len() == 3 && p.spec.auto_assign == Some(true)),
            || format!("{typed:?}"),
        );
    }
    if let Some(pool) = s
        .accept(
            "IPAddressPool with autoAssign false, avoidBuggyIPs, serviceAllocation",
            r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: expensive, namespace: metallb-system}
spec:
  addresses:
  - 42.176.25.64/30
  autoAssign: false
  avoidBuggyIPs: true
  serviceAllocation:
    priority: 50
    namespaces: [namespace-a, namespace-b]
    namespaceSelectors:
    - matchLabels: {foo: bar}
    serviceSelectors:
    - matchExpressions:
      - {key: app, operator: In, values: [bar]}
"#,
        )
        .await
    {
        s.expect_at("expensive", &pool, "spec.autoAssign", json!(false));
        s.expect_at(
            "expensive",
            &pool,
            "spec.serviceAllocation.priority",
            json!(50),
        );
    }
    // The status sub-resource takes the controller's counts, all four required.
    let counts =
        json!({"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 260, "availableIPv6": 16});
    match s
        .patch_status(V1, "IPAddressPool", "first-pool", counts.clone())
        .await
    {
        Ok(pool) => s.expect_at("first-pool status", &pool, "status", counts),
        Err(e) => s.fail("IPAddressPool status counts written", describe(&e)),
    }
    let partial = s
        .patch_status(V1, "IPAddressPool", "expensive", json!({"assignedIPv4": 1}))
        .await;
    s.expect_invalid(
        "IPAddressPool status without every count",
        partial,
        &["status.assignedIPv6", "Required value"],
    );

    s.reject(
        "IPAddressPool without spec",
        json!({"apiVersion": V1, "kind": "IPAddressPool", "metadata": {"name": "nospec", "namespace": NS}}),
        &["spec", "Required value"],
    )
    .await;
    s.reject(
        "IPAddressPool without addresses",
        object(V1, "IPAddressPool", "noaddr", json!({"autoAssign": true})),
        &["spec.addresses", "Required value"],
    )
    .await;
    s.reject(
        "IPAddressPool autoAssign not a boolean",
        object(
            V1,
            "IPAddressPool",
            "badbool",
            json!({"addresses": ["10.0.0.0/24"], "autoAssign": "yes"}),
        ),
        &["spec.autoAssign", "boolean"],
    )
    .await;
}

async fn l2_advertisements(s: &mut Server) {
    if let Some(ad) = s
        .accept(
            "L2Advertisement without spec",
            r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: example, namespace: metallb-system}
"#,
        )
        .await
    {
        let typed: Result<v1beta1::L2Advertisement, _> = serde_json::from_value(ad.clone());
        s.check(
            "spec-less L2Advertisement reads back with an empty spec",
            typed
                .as_ref()
                .is_ok_and(|a| a.spec == v1beta1::L2AdvertisementSpec::default()),
            || format!("{ad} -> {typed:?}"),
        );
    }
    if let Some(ad) = s
        .accept(
            "L2Advertisement with pools, selectors, interfaces, preferences",
            r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2adv, namespace: metallb-system}
spec:
  ipAddressPools: [first-pool]
  ipAddressPoolSelectors:
  - matchExpressions:
    - {key: pool, operator: In, values: [a, b]}
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: NodeA
  interfaces: [eth3, eth4]
  serviceSelectors:
  - matchLabels: {app: web}
  preferredNodeSelectors:
  - weight: 100
    preference:
      matchLabels: {zone: a}
  - weight: 1
    preference:
      matchExpressions:
      - {key: zone, operator: Exists}
"#,
        )
        .await
    {
        s.expect_at("l2adv", &ad, "spec.interfaces", json!(["eth3", "eth4"]));
        let typed: Result<v1beta1::L2Advertisement, _> = serde_json::from_value(ad.clone());
        s.check(
            "l2adv reads back into v1beta1::L2Advertisement",
            typed.as_ref().is_ok_and(|a| {
                a.spec.preferred_node_selectors.len() == 2
                    && a.spec.preferred_node_selectors[0].weight == 100
            }),
            || format!("{typed:?}"),
        );
    }
    for weight in [1, 100] {
        s.accept_dry(
            &format!("preferredNodeSelectors weight {weight}"),
            object(
                V1,
                "L2Advertisement",
                "w-ok",
                json!({"preferredNodeSelectors": [{"weight": weight, "preference": {}}]}),
            ),
        )
        .await;
    }
    for (weight, bound) in [
        (0, "greater than or equal to 1"),
        (101, "less than or equal to 100"),
    ] {
        s.reject(
            &format!("preferredNodeSelectors weight {weight}"),
            object(
                V1,
                "L2Advertisement",
                "w-bad",
                json!({"preferredNodeSelectors": [{"weight": weight, "preference": {}}]}),
            ),
            &["spec.preferredNodeSelectors[0].weight", bound],
        )
        .await;
    }
    s.reject(
        "preferredNodeSelectors entry without preference",
        object(
            V1,
            "L2Advertisement",
            "w-nopref",
            json!({"preferredNodeSelectors": [{"weight": 5}]}),
        ),
        &[
            "spec.preferredNodeSelectors[0].preference",
            "Required value",
        ],
    )
    .await;
    s.reject(
        "nodeSelectors expression without operator",
        object(
            V1,
            "L2Advertisement",
            "noop",
            json!({"nodeSelectors": [{"matchExpressions": [{"key": "a"}]}]}),
        ),
        &[
            "spec.nodeSelectors[0].matchExpressions[0].operator",
            "Required value",
        ],
    )
    .await;
}

async fn bgp_advertisements(s: &mut Server) {
    if let Some(ad) = s
        .accept(
            "BGPAdvertisement without spec",
            r#"
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: example, namespace: metallb-system}
"#,
        )
        .await
    {
        // As with MetalLB's schema, defaults apply only inside a `spec` that is present: the
        // server stores none, and readers fall back to 32 / 128 themselves.
        s.expect_at("bgp example", &ad, "spec", Value::Null);
        let typed: Result<v1beta1::BgpAdvertisement, _> = serde_json::from_value(ad.clone());
        s.check(
            "spec-less BGPAdvertisement reads back with MetalLB's default spec",
            typed
                .as_ref()
                .is_ok_and(|a| a.spec == v1beta1::BgpAdvertisementSpec::default()),
            || format!("{typed:?}"),
        );
    }
    if let Some(ad) = s
        .accept(
            "BGPAdvertisement with an empty spec",
            r#"
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: empty, namespace: metallb-system}
spec: {}
"#,
        )
        .await
    {
        s.expect_at("empty", &ad, "spec.aggregationLength", json!(32));
        s.expect_at("empty", &ad, "spec.aggregationLengthV6", json!(128));
    }
    if let Some(ad) = s
        .accept(
            "BGPAdvertisement with localPref and communities",
            r#"
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: local, namespace: metallb-system}
spec:
  ipAddressPools: [bgp-pool]
  aggregationLength: 32
  localPref: 100
  communities: [65535:65282, large:123:456:789, vpn-only]
"#,
        )
        .await
    {
        s.expect_at("local", &ad, "spec.localPref", json!(100));
        s.expect_at("local", &ad, "spec.aggregationLengthV6", json!(128));
    }
    if let Some(ad) = s
        .accept(
            "BGPAdvertisement with aggregationLength, peers and node selectors",
            r#"
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: external, namespace: metallb-system}
spec:
  ipAddressPools: [bgp-pool]
  ipAddressPoolSelectors:
  - matchLabels: {zone: east}
  aggregationLength: 24
  aggregationLengthV6: 64
  peers: [peer1]
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: hostA
"#,
        )
        .await
    {
        s.expect_at("external", &ad, "spec.aggregationLength", json!(24));
        s.expect_at("external", &ad, "spec.aggregationLengthV6", json!(64));
    }
    s.accept_dry(
        "serviceSelectors with the default aggregation lengths",
        object(
            V1,
            "BGPAdvertisement",
            "svcsel",
            json!({"serviceSelectors": [{"matchLabels": {"app": "web"}}]}),
        ),
    )
    .await;
    s.accept_dry(
        "serviceSelectors with aggregationLength 32 / V6 128 written out",
        object(
            V1,
            "BGPAdvertisement",
            "svcsel",
            json!({"serviceSelectors": [{"matchLabels": {"app": "web"}}], "aggregationLength": 32, "aggregationLengthV6": 128}),
        ),
    )
    .await;
    s.accept_dry(
        "aggregationLength 1",
        object(
            V1,
            "BGPAdvertisement",
            "agg1",
            json!({"aggregationLength": 1}),
        ),
    )
    .await;
    s.reject(
        "aggregationLength 0",
        object(
            V1,
            "BGPAdvertisement",
            "agg0",
            json!({"aggregationLength": 0}),
        ),
        &["spec.aggregationLength", "greater than or equal to 1"],
    )
    .await;
    let cel = "serviceSelectors can only be used with the default aggregationLength";
    s.reject(
        "serviceSelectors with aggregationLength 24 (CEL)",
        object(
            V1,
            "BGPAdvertisement",
            "svcsel-agg",
            json!({"serviceSelectors": [{"matchLabels": {"app": "web"}}], "aggregationLength": 24}),
        ),
        &["spec", cel],
    )
    .await;
    s.reject(
        "serviceSelectors with aggregationLengthV6 64 (CEL)",
        object(
            V1,
            "BGPAdvertisement",
            "svcsel-agg6",
            json!({"serviceSelectors": [{"matchLabels": {"app": "web"}}], "aggregationLengthV6": 64}),
        ),
        &["spec", cel],
    )
    .await;
    s.reject(
        "localPref negative",
        object(V1, "BGPAdvertisement", "lp", json!({"localPref": -1})),
        &["spec.localPref", "greater than or equal to 0"],
    )
    .await;
    s.reject(
        "communities not a list of strings",
        object(
            V1,
            "BGPAdvertisement",
            "comm",
            json!({"communities": [65535]}),
        ),
        &["spec.communities[0]", "string"],
    )
    .await;
}

async fn bgp_peers_v1beta2(s: &mut Server) {
    if let Some(peer) = s
        .accept(
            "BGPPeer v1beta2 minimal",
            r#"
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: sample, namespace: metallb-system}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 10.0.0.1
"#,
        )
        .await
    {
        s.expect_at("sample", &peer, "spec.peerPort", json!(179));
        s.expect_at("sample", &peer, "spec.disableMP", json!(false));
        s.expect_at("sample", &peer, "spec.dualStackAddressFamily", json!(false));
        let typed: Result<v1beta2::BgpPeer, _> = serde_json::from_value(peer.clone());
        s.check(
            "sample reads back into v1beta2::BgpPeer",
            typed.as_ref().is_ok_and(|p| {
                p.spec.peer_port == Some(179)
                    && p.spec.peer_asn == Some(64501)
                    && p.spec.peer_address.as_deref() == Some("10.0.0.1")
            }),
            || format!("{typed:?}"),
        );
    }
    if let Some(peer) = s
        .accept(
            "BGPPeer v1beta2 with every option",
            r#"
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: full, namespace: metallb-system}
spec:
  myASN: 4200000000
  dynamicASN: external
  peerAddress: fd10::1
  sourceAddress: fd10::231
  peerPort: 1179
  holdTime: 90s
  keepaliveTime: 30s
  connectTime: 5s
  routerID: 10.10.10.10
  nodeSelectors:
  - matchLabels: {rack: frontend}
    matchExpressions:
    - {key: network-speed, operator: NotIn, values: [slow]}
  passwordSecret: {name: secretname, namespace: metallb-system}
  bfdProfile: full1
  enableGracefulRestart: true
  ebgpMultiHop: true
  vrf: red
  dualStackAddressFamily: true
"#,
        )
        .await
    {
        s.expect_at("full", &peer, "spec.myASN", json!(4_200_000_000u32));
        s.expect_at("full", &peer, "spec.peerPort", json!(1179));
        let typed: Result<v1beta2::BgpPeer, _> = serde_json::from_value(peer.clone());
        s.check(
            "full reads back into v1beta2::BgpPeer",
            typed.as_ref().is_ok_and(|p| {
                p.spec.dynamic_asn == Some(v1beta2::DynamicAsn::External)
                    && p.spec.my_asn == 4_200_000_000
                    && p.spec.enable_graceful_restart == Some(true)
            }),
            || format!("{typed:?}"),
        );
    }
    s.accept(
        "BGPPeer v1beta2 unnumbered (interface)",
        r#"
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: unnumbered, namespace: metallb-system}
spec:
  myASN: 64500
  dynamicASN: internal
  interface: net0
"#,
    )
    .await;

    let peer = |spec: Value| {
        let mut base = json!({"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"});
        if let (Some(b), Some(extra)) = (base.as_object_mut(), spec.as_object()) {
            b.extend(extra.clone());
        }
        object(V2, "BGPPeer", "p", base)
    };
    for port in [1, 16384] {
        s.accept_dry(
            &format!("v1beta2 peerPort {port}"),
            peer(json!({"peerPort": port})),
        )
        .await;
    }
    s.reject(
        "v1beta2 peerPort 0",
        peer(json!({"peerPort": 0})),
        &["spec.peerPort", "greater than or equal to 1"],
    )
    .await;
    s.reject(
        "v1beta2 peerPort 16385",
        peer(json!({"peerPort": 16385})),
        &["spec.peerPort", "less than or equal to 16384"],
    )
    .await;
    s.accept_dry(
        "v1beta2 myASN 4294967295",
        peer(json!({"myASN": 4_294_967_295u32})),
    )
    .await;
    s.reject(
        "v1beta2 myASN 4294967296",
        peer(json!({"myASN": 4_294_967_296u64})),
        &["spec.myASN", "less than or equal to 4294967295"],
    )
    .await;
    s.reject(
        "v1beta2 peerASN -1",
        peer(json!({"peerASN": -1})),
        &["spec.peerASN", "greater than or equal to 0"],
    )
    .await;
    s.reject(
        "v1beta2 without myASN",
        object(
            V2,
            "BGPPeer",
            "nomy",
            json!({"peerASN": 64501, "peerAddress": "10.0.0.1"}),
        ),
        &["spec.myASN", "Required value"],
    )
    .await;
    s.reject(
        "v1beta2 dynamicASN not internal/external",
        peer(json!({"dynamicASN": "sometimes"})),
        &[
            "spec.dynamicASN",
            "Unsupported value",
            "internal",
            "external",
        ],
    )
    .await;
    for ok in ["1s", "65535s", "2m", "1h0m0s"] {
        s.accept_dry(
            &format!("connectTime {ok}"),
            peer(json!({"connectTime": ok})),
        )
        .await;
    }
    for bad in ["0s", "500ms", "65536s", "-5s", "19h"] {
        s.reject(
            &format!("connectTime {bad} (CEL range)"),
            peer(json!({"connectTime": bad})),
            &[
                "spec.connectTime",
                "connect time must be between 1 and 65535 seconds",
            ],
        )
        .await;
    }
    s.reject(
        "connectTime 1500ms (CEL whole seconds)",
        peer(json!({"connectTime": "1500ms"})),
        &[
            "spec.connectTime",
            "connect time must be a whole number of seconds",
        ],
    )
    .await;
    s.reject(
        "connectTime not a duration (CEL)",
        peer(json!({"connectTime": "soon"})),
        &["spec.connectTime"],
    )
    .await;

    // enableGracefulRestart: `self == oldSelf`.
    let same = s
        .patch_spec(
            V2,
            "BGPPeer",
            "full",
            json!({"enableGracefulRestart": true, "holdTime": "180s"}),
        )
        .await;
    match same {
        Ok(p) => s.expect_at("full updated", &p, "spec.holdTime", json!("180s")),
        Err(e) => s.fail(
            "BGPPeer updated with enableGracefulRestart unchanged",
            describe(&e),
        ),
    }
    let flipped = s
        .patch_spec(
            V2,
            "BGPPeer",
            "full",
            json!({"enableGracefulRestart": false}),
        )
        .await;
    s.expect_invalid(
        "enableGracefulRestart changed after creation (CEL)",
        flipped,
        &[
            "spec.enableGracefulRestart",
            "EnableGracefulRestart cannot be changed after creation",
        ],
    );
}

async fn bgp_peers_v1beta1(s: &mut Server) {
    if let Some(peer) = s
        .accept(
            "BGPPeer v1beta1 with legacy node selectors",
            r#"
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: legacy, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64512
  peerAddress: 172.30.0.3
  peerPort: 180
  holdTime: 90s
  password: secret
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: kind-worker
    matchExpressions:
    - key: rack
      operator: In
      values: [a, b]
"#,
        )
        .await
    {
        s.expect_at("legacy (as v1beta1)", &peer, "apiVersion", json!(V1));
        s.check(
            "legacy (as v1beta1) has no v1beta2-only fields",
            at(&peer, "spec.disableMP").is_null()
                && at(&peer, "spec.dualStackAddressFamily").is_null(),
            || format!("{peer}"),
        );
    }
    // Conversion strategy None: the server stores it as v1beta2 rewriting only apiVersion, and
    // reads it back as v1beta2 with v1beta2's defaults.
    match s.get(V2, "BGPPeer", "legacy").await {
        Ok(peer) => {
            s.expect_at("legacy read as v1beta2", &peer, "apiVersion", json!(V2));
            s.expect_at("legacy read as v1beta2", &peer, "spec.peerPort", json!(180));
            s.expect_at(
                "legacy read as v1beta2",
                &peer,
                "spec.disableMP",
                json!(false),
            );
            let expression = &at(&peer, "spec.nodeSelectors")[0]["matchExpressions"][0];
            s.check(
                "legacy read as v1beta2 keeps its node selector expression",
                expression == &json!({"key": "rack", "operator": "In", "values": ["a", "b"]}),
                || format!("{peer}"),
            );
            let typed: Result<v1beta2::BgpPeer, _> = serde_json::from_value(peer.clone());
            let want = ironlb_api::conversion::bgppeer_to_v1beta2;
            let legacy: v1beta1::BgpPeer = serde_json::from_value(yaml(
                r#"
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: legacy, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64512
  peerAddress: 172.30.0.3
  peerPort: 180
  holdTime: 90s
  password: secret
  nodeSelectors:
  - matchLabels:
      kubernetes.io/hostname: kind-worker
    matchExpressions:
    - key: rack
      operator: In
      values: [a, b]
"#,
            ))
            .expect("legacy YAML");
            let converted = want(&legacy);
            s.check(
                "legacy read as v1beta2 equals ironlb's own v1beta1 -> v1beta2 conversion (spec)",
                typed.as_ref().is_ok_and(|p| p.spec == converted.spec),
                || format!("server: {typed:?}\nconversion: {converted:?}"),
            );
        }
        Err(e) => s.fail("legacy read as v1beta2", describe(&e)),
    }
    if let Some(peer) = s
        .accept(
            "BGPPeer v1beta1 without peerPort",
            r#"
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: legacy-default, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.1}
"#,
        )
        .await
    {
        // v1beta1 has no default of its own, but the object is stored as v1beta2 and every
        // read (the create response included) applies the storage version's defaults.
        s.expect_at(
            "legacy-default (as v1beta1)",
            &peer,
            "spec.peerPort",
            json!(179),
        );
    }
    match s.get(V2, "BGPPeer", "legacy-default").await {
        Ok(peer) => s.expect_at(
            "legacy-default read as v1beta2",
            &peer,
            "spec.peerPort",
            json!(179),
        ),
        Err(e) => s.fail("legacy-default read as v1beta2", describe(&e)),
    }

    // v1beta1 allows peerPort 0; strategy None stores it unchanged, so a v1beta2 reader sees a
    // port its own schema forbids (reads are not validated): consumers must not trust the range.
    if s.accept(
        "BGPPeer v1beta1 with peerPort 0",
        r#"
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: legacy-port0, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.1, peerPort: 0}
"#,
    )
    .await
    .is_some()
    {
        match s.get(V2, "BGPPeer", "legacy-port0").await {
            Ok(peer) => s.expect_at(
                "legacy-port0 read as v1beta2",
                &peer,
                "spec.peerPort",
                json!(0),
            ),
            Err(e) => s.fail("legacy-port0 read as v1beta2", describe(&e)),
        }
    }

    let legacy = |spec: Value| {
        let mut base = json!({"myASN": 64512, "peerASN": 64513, "peerAddress": "10.0.0.1"});
        if let (Some(b), Some(extra)) = (base.as_object_mut(), spec.as_object()) {
            b.extend(extra.clone());
        }
        object(V1, "BGPPeer", "l", base)
    };
    s.accept_dry(
        "v1beta1 peerPort 0 (its range is 0-16384)",
        legacy(json!({"peerPort": 0})),
    )
    .await;
    s.reject(
        "v1beta1 peerPort 16385",
        legacy(json!({"peerPort": 16385})),
        &["spec.peerPort", "less than or equal to 16384"],
    )
    .await;
    s.reject(
        "v1beta1 without peerAddress",
        object(
            V1,
            "BGPPeer",
            "l",
            json!({"myASN": 64512, "peerASN": 64513}),
        ),
        &["spec.peerAddress", "Required value"],
    )
    .await;
    s.reject(
        "v1beta1 without peerASN",
        object(
            V1,
            "BGPPeer",
            "l",
            json!({"myASN": 64512, "peerAddress": "10.0.0.1"}),
        ),
        &["spec.peerASN", "Required value"],
    )
    .await;
    s.reject(
        "v1beta1 node selector expression without values",
        legacy(
            json!({"nodeSelectors": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]}),
        ),
        &[
            "spec.nodeSelectors[0].matchExpressions[0].values",
            "Required value",
        ],
    )
    .await;
    s.reject(
        "v1beta1 node selector expression with empty values",
        legacy(json!({"nodeSelectors": [{"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}]})),
        &["spec.nodeSelectors[0].matchExpressions[0].values", "at least 1 items"],
    )
    .await;
    s.reject(
        "v1beta1 myASN 4294967296",
        legacy(json!({"myASN": 4_294_967_296u64})),
        &["spec.myASN", "less than or equal to 4294967295"],
    )
    .await;
}

async fn bfd_profiles(s: &mut Server) {
    if let Some(p) = s
        .accept(
            "BFDProfile with intervals",
            r#"
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: testbfdprofile, namespace: metallb-system}
spec:
  receiveInterval: 380
  transmitInterval: 270
"#,
        )
        .await
    {
        s.expect_at("testbfdprofile", &p, "spec.receiveInterval", json!(380));
        // As in MetalLB, the schema has no defaults: unset timers stay unset (the BFD
        // implementation applies 300 ms / x3 / 50 ms).
        for field in [
            "detectMultiplier",
            "echoInterval",
            "echoMode",
            "passiveMode",
            "minimumTtl",
        ] {
            s.expect_at("testbfdprofile", &p, &format!("spec.{field}"), Value::Null);
        }
    }
    if let Some(p) = s
        .accept(
            "BFDProfile with every field",
            r#"
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: full1, namespace: metallb-system}
spec:
  receiveInterval: 300
  transmitInterval: 300
  detectMultiplier: 37
  echoInterval: 62
  echoMode: true
  passiveMode: true
  minimumTtl: 254
"#,
        )
        .await
    {
        let typed: Result<v1beta1::BfdProfile, _> = serde_json::from_value(p.clone());
        s.check(
            "full1 reads back into v1beta1::BfdProfile",
            typed.as_ref().is_ok_and(|b| {
                b.spec.detect_multiplier == Some(37)
                    && b.spec.minimum_ttl == Some(254)
                    && b.spec.echo_mode == Some(true)
            }),
            || format!("{typed:?}"),
        );
    }
    let bfd = |field: &str, value: i64| object(V1, "BFDProfile", "b", json!({ field: value }));
    let ranges: [(&str, i64, i64); 5] = [
        ("receiveInterval", 10, 60000),
        ("transmitInterval", 10, 60000),
        ("echoInterval", 10, 60000),
        ("detectMultiplier", 2, 255),
        ("minimumTtl", 1, 254),
    ];
    for (field, min, max) in ranges {
        s.accept_dry(&format!("BFD {field} {min}"), bfd(field, min))
            .await;
        s.accept_dry(&format!("BFD {field} {max}"), bfd(field, max))
            .await;
        s.reject(
            &format!("BFD {field} {}", min - 1),
            bfd(field, min - 1),
            &[
                &format!("spec.{field}"),
                &format!("greater than or equal to {min}"),
            ],
        )
        .await;
        s.reject(
            &format!("BFD {field} {}", max + 1),
            bfd(field, max + 1),
            &[
                &format!("spec.{field}"),
                &format!("less than or equal to {max}"),
            ],
        )
        .await;
    }
}

async fn communities(s: &mut Server) {
    if let Some(c) = s
        .accept(
            "Community aliases",
            r#"
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec:
  communities:
  - name: vpn-only
    value: 1234:1
  - name: NO_ADVERTISE
    value: 65535:65282
  - name: large-one
    value: large:123:456:789
"#,
        )
        .await
    {
        let typed: Result<v1beta1::Community, _> = serde_json::from_value(c.clone());
        s.check(
            "communities reads back into v1beta1::Community",
            typed.as_ref().is_ok_and(|c| {
                c.spec.communities.len() == 3 && c.spec.communities[0].value == "1234:1"
            }),
            || format!("{typed:?}"),
        );
    }
    s.reject(
        "Community value not a string",
        object(
            V1,
            "Community",
            "c",
            json!({"communities": [{"name": "x", "value": 7}]}),
        ),
        &["spec.communities[0].value", "string"],
    )
    .await;
}

/// ServiceL2Status and ServiceBGPStatus: created by the speaker, status written through the
/// status sub-resource, node and Service immutable once set.
async fn service_statuses(s: &mut Server) {
    let cases = [
        (
            "ServiceL2Status",
            "l2-abc12",
            json!({"interfaces": [{"name": "eth0"}]}),
            json!({"interfaces": [{"name": "eth1"}]}),
        ),
        (
            "ServiceBGPStatus",
            "bgp-abc12",
            json!({"peers": ["peer1"]}),
            json!({"peers": ["peer1", "peer2"]}),
        ),
    ];
    for (kind, name, first, second) in cases {
        let created = s
            .accept(
                &format!("{kind} as the speaker creates it"),
                &format!(
                    "apiVersion: metallb.io/v1beta1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: metallb-system\n  labels:\n    metallb.io/node: node1\n    metallb.io/service-name: web\n    metallb.io/service-namespace: default\nspec: {{}}\n"
                ),
            )
            .await;
        if created.is_none() {
            continue;
        }
        let mut status =
            json!({"node": "node1", "serviceName": "web", "serviceNamespace": "default"});
        if let (Some(st), Some(extra)) = (status.as_object_mut(), first.as_object()) {
            st.extend(extra.clone());
        }
        match s.patch_status(V1, kind, name, status.clone()).await {
            Ok(obj) => {
                s.expect_at(kind, &obj, "status", status);
                let typed_ok = match kind {
                    "ServiceL2Status" => serde_json::from_value::<v1beta1::ServiceL2Status>(
                        obj.clone(),
                    )
                    .is_ok_and(|o| {
                        o.status.is_some_and(|st| {
                            st.node.as_deref() == Some("node1") && st.interfaces.len() == 1
                        })
                    }),
                    _ => serde_json::from_value::<v1beta1::ServiceBgpStatus>(obj.clone())
                        .is_ok_and(|o| {
                            o.status.is_some_and(|st| {
                                st.node.as_deref() == Some("node1") && st.peers == ["peer1"]
                            })
                        }),
                };
                s.check(
                    &format!("{kind} reads back into ironlb's type"),
                    typed_ok,
                    || format!("{obj}"),
                );
            }
            Err(e) => s.fail(&format!("{kind} status set"), describe(&e)),
        }
        match s.patch_status(V1, kind, name, second.clone()).await {
            Ok(obj) => {
                let field = second
                    .as_object()
                    .and_then(|o| o.keys().next().cloned())
                    .unwrap_or_default();
                s.expect_at(
                    &format!("{kind} (mutable list)"),
                    &obj,
                    &format!("status.{field}"),
                    second[&field].clone(),
                );
            }
            Err(e) => s.fail(&format!("{kind} interfaces/peers may change"), describe(&e)),
        }
        for (field, value) in [
            ("node", "node2"),
            ("serviceName", "other"),
            ("serviceNamespace", "other"),
        ] {
            let changed = s
                .patch_status(V1, kind, name, json!({ field: value }))
                .await;
            s.expect_invalid(
                &format!("{kind} status.{field} changed (CEL)"),
                changed,
                &[&format!("status.{field}"), "Value is immutable"],
            );
        }
    }
}

async fn configuration_states(s: &mut Server) {
    if s.accept(
        "ConfigurationState as the controller creates it",
        r#"
apiVersion: metallb.io/v1beta1
kind: ConfigurationState
metadata: {name: controller, namespace: metallb-system}
"#,
    )
    .await
    .is_none()
    {
        return;
    }
    let status = json!({
        "result": "Invalid",
        "errorSummary": "IPAddressPool pool1: invalid CIDR \"10.0.0.0/33\"",
        "conditions": [{
            "type": "ConfigReconciled",
            "status": "False",
            "reason": "ConfigError",
            "message": "invalid CIDR",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    });
    match s
        .patch_status(V1, "ConfigurationState", "controller", status.clone())
        .await
    {
        Ok(obj) => {
            s.expect_at("controller", &obj, "status.result", json!("Invalid"));
            let typed: Result<v1beta1::ConfigurationState, _> = serde_json::from_value(obj.clone());
            s.check(
                "controller reads back into v1beta1::ConfigurationState",
                typed.as_ref().is_ok_and(|c| {
                    c.status.as_ref().is_some_and(|st| {
                        st.result == Some(v1beta1::ConfigurationResult::Invalid)
                            && st.conditions.len() == 1
                    })
                }),
                || format!("{typed:?}"),
            );
        }
        Err(e) => s.fail("ConfigurationState status set", describe(&e)),
    }
    let bad = s
        .patch_status(
            V1,
            "ConfigurationState",
            "controller",
            json!({"result": "Great"}),
        )
        .await;
    s.expect_invalid(
        "ConfigurationState result not Valid/Invalid/Unknown",
        bad,
        &["status.result", "Unsupported value", "Valid"],
    );
    let dup = s
        .patch_status(
            V1,
            "ConfigurationState",
            "controller",
            json!({"conditions": [
                {"type": "A", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "A", "status": "False", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ]}),
        )
        .await;
    s.expect_invalid(
        "ConfigurationState two conditions of one type (list-map key)",
        dup,
        &["status.conditions[1]", "Duplicate value"],
    );
    // A Kubernetes Condition's own limits, as in MetalLB's schema.
    for (what, condition, needles) in [
        (
            "a condition status other than True/False/Unknown",
            json!({"type": "A", "status": "Maybe", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}),
            &["status.conditions[0].status", "Unsupported value"][..],
        ),
        (
            "a condition reason that is not CamelCase",
            json!({"type": "A", "status": "True", "reason": "not ok!", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}),
            &["status.conditions[0].reason", "should match"][..],
        ),
        (
            "a condition type that is not a qualified name",
            json!({"type": "a b", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}),
            &["status.conditions[0].type", "should match"][..],
        ),
    ] {
        let bad = s
            .patch_status(
                V1,
                "ConfigurationState",
                "controller",
                json!({"conditions": [condition]}),
            )
            .await;
        s.expect_invalid(&format!("ConfigurationState with {what}"), bad, needles);
    }
}
